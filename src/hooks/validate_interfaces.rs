//! `validate_interfaces`: picks the NICs that become ports (and lookup MACs), and drops
//! ports the node should no longer have.
//!
//! Ports `ValidateInterfacesHook` of `ironic_inspector/plugins/standard.py`: before the
//! lookup it sets `all_interfaces` (what the ramdisk sent), `interfaces` (the eligible
//! ones under `[processing] add_ports`) and `macs`; after the lookup it deletes ports as
//! `[processing] keep_ports` says.
//!
//! Departures: a colon-form `boot_interface` is lower-cased like the PXE form; ports are compared with the ramdisk's MACs case-insensitively (upstream
//! compared Ironic's lower-case addresses with the MACs as sent, so upper-case MACs from a
//! ramdisk would have deleted every port).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::ProcessingHook;
use crate::config::{AddPorts, KeepPorts};
use crate::data::IntrospectionData;
use crate::error::{Error, Result};
use crate::ironic::Port;
use crate::ironic_node::IronicNode;
use crate::mac::Mac;
use crate::py;

/// The `validate_interfaces` hook.
#[derive(Clone, Debug)]
pub struct ValidateInterfaces {
    /// `[processing] add_ports`.
    add_ports: AddPorts,
    /// `[processing] keep_ports`.
    keep_ports: KeepPorts,
}

impl ValidateInterfaces {
    /// The hook with `[processing] add_ports` and `keep_ports`.
    pub fn new(add_ports: AddPorts, keep_ports: KeepPorts) -> ValidateInterfaces {
        ValidateInterfaces {
            add_ports,
            keep_ports,
        }
    }

    /// The work of `before_processing`, without I/O.
    pub fn select(&self, data: &mut IntrospectionData) -> Result<()> {
        let bmc_address = data.get("ipmi_address").cloned().unwrap_or(Value::Null);
        let interfaces = match data.get("interfaces") {
            Some(value) if py::truthy(value) => value.clone(),
            _ => {
                return Err(Error::BadRequest(
                    "No interfaces supplied by the ramdisk".to_string(),
                ));
            }
        };
        let Value::Object(all) = &interfaces else {
            return Err(Error::internal(
                "InterfacesError",
                "interfaces is not an object",
            ));
        };
        let mut valid: Map<String, Value> = all
            .iter()
            .filter(|(_, iface)| {
                iface
                    .get("mac")
                    .and_then(Value::as_str)
                    .is_some_and(|mac| mac.parse::<Mac>().is_ok())
            })
            .map(|(name, iface)| (name.clone(), iface.clone()))
            .collect();

        let pxe_mac = data.get_str("boot_interface").filter(|m| !m.is_empty());
        match (self.add_ports, pxe_mac) {
            (AddPorts::Pxe, Some(pxe_mac)) => {
                tracing::info!("PXE boot interface was {pxe_mac}");
                // A boot interface that names no MAC matches no interface.
                let pxe_mac = boot_interface_mac(pxe_mac);
                valid.retain(|_, iface| {
                    let mac = iface.get("mac").and_then(Value::as_str);
                    pxe_mac.is_some() && mac.and_then(|m| m.parse::<Mac>().ok()) == pxe_mac
                });
            }
            (AddPorts::All, _) => {}
            _ => valid.retain(|_, iface| iface.get("ip").is_some_and(py::truthy)),
        }

        let shown_bmc = py::to_str(&bmc_address);
        if valid.is_empty() {
            return Err(Error::BadRequest(format!(
                "No valid interfaces found for node with BMC {shown_bmc}, got {}",
                py::repr(&interfaces)
            )));
        }
        if valid.len() != all.len() {
            let excluded: Vec<&String> = all.keys().filter(|n| !valid.contains_key(*n)).collect();
            tracing::warn!(
                bmc_address = %shown_bmc,
                excluded = ?excluded,
                "some interfaces were invalid or not eligible and were excluded"
            );
            tracing::info!(eligible = ?valid.keys().collect::<Vec<_>>(), "eligible interfaces");
        }
        let macs: Vec<Value> = valid
            .values()
            .filter_map(|iface| iface.get("mac").cloned())
            .collect();
        data.insert("all_interfaces", interfaces);
        data.insert("interfaces", Value::Object(valid));
        data.insert("macs", Value::Array(macs));
        Ok(())
    }

    /// The MACs whose ports are kept under `keep_ports`; `None` keeps every port. Text
    /// the ramdisk reported that is not a MAC keeps no port (Ironic holds only MACs).
    pub fn expected_macs(&self, data: &IntrospectionData) -> Result<Option<BTreeSet<Mac>>> {
        Ok(self.kept_macs(data)?.map(|kept| parsed(&kept)))
    }

    /// The ramdisk's texts behind [`ValidateInterfaces::expected_macs`], as reported.
    fn kept_macs<'a>(&self, data: &'a IntrospectionData) -> Result<Option<Vec<&'a str>>> {
        let macs: Vec<&str> = match self.keep_ports {
            KeepPorts::All => return Ok(None),
            KeepPorts::Present => match data.get("all_interfaces") {
                Some(Value::Object(all)) => all
                    .values()
                    .filter_map(|iface| iface.get("mac").and_then(Value::as_str))
                    .collect(),
                _ => return Err(missing_field("all_interfaces")),
            },
            KeepPorts::Added => match data.get("macs") {
                Some(Value::Array(macs)) => macs.iter().filter_map(Value::as_str).collect(),
                _ => return Err(missing_field("macs")),
            },
        };
        Ok(Some(macs))
    }
}

/// The MACs among `texts`; the rest is left out.
fn parsed(texts: &[&str]) -> BTreeSet<Mac> {
    texts.iter().filter_map(|text| text.parse().ok()).collect()
}

/// The MAC a `boot_interface` names: PXELinux form `01-aa-bb-cc-dd-ee-ff` (everything up
/// to the first `-` is the hardware type, the rest may use `-` or `:`) or a plain MAC, in
/// either case; `None` when it names none.
pub fn boot_interface_mac(boot_interface: &str) -> Option<Mac> {
    match boot_interface.split_once('-') {
        Some((_, rest)) => rest.replace('-', ":").parse().ok(),
        None => boot_interface.parse().ok(),
    }
}

/// The MACs (cache keys) of the ports not in `expected`.
pub fn ports_to_delete(ports: &BTreeMap<Mac, Port>, expected: &BTreeSet<Mac>) -> Vec<Mac> {
    ports
        .keys()
        .filter(|mac| !expected.contains(*mac))
        .copied()
        .collect()
}

/// A field `before_processing` sets is gone: the data did not come through this hook.
fn missing_field(field: &str) -> Error {
    Error::internal(
        "KeyError",
        format!("introspection data has no usable \"{field}\""),
    )
}

#[async_trait]
impl ProcessingHook for ValidateInterfaces {
    fn name(&self) -> &'static str {
        "validate_interfaces"
    }

    async fn before_processing(&self, data: &mut IntrospectionData) -> Result<()> {
        self.select(data)
    }

    async fn before_update(
        &self,
        data: &mut IntrospectionData,
        node: &mut IronicNode,
    ) -> Result<()> {
        let Some(kept) = self.kept_macs(data)? else {
            return Ok(());
        };
        let doomed = ports_to_delete(node.ports(), &parsed(&kept));
        // The log shows what the ramdisk reported, lower-cased, MAC or not.
        let shown: BTreeSet<String> = kept.iter().map(|mac| mac.to_lowercase()).collect();
        for mac in doomed {
            let port_uuid = node
                .ports()
                .get(&mac)
                .map(|p| p.uuid.clone())
                .unwrap_or_default();
            tracing::info!(
                node.uuid = %node.uuid,
                port.uuid = %port_uuid,
                mac = %mac,
                expected = ?shown,
                "Deleting port {port_uuid} as its MAC {mac} is not in the expected MAC list"
            );
            node.delete_port(&mac).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::data;

    fn interfaces() -> Value {
        json!({
            "em1": {"mac": "11:11:11:11:11:11", "ip": "1.1.1.1"},
            "em2": {"mac": "22:22:22:22:22:22", "ip": "2.2.2.2"},
            "em3": {"mac": "33:33:33:33:33:33"},
        })
    }

    fn sample() -> IntrospectionData {
        data(json!({"interfaces": interfaces(), "boot_interface": "01-22-22-22-22-22-22"}))
    }

    fn hook(add: AddPorts) -> ValidateInterfaces {
        ValidateInterfaces::new(add, KeepPorts::All)
    }

    fn active() -> Value {
        json!({
            "em1": {"mac": "11:11:11:11:11:11", "ip": "1.1.1.1"},
            "em2": {"mac": "22:22:22:22:22:22", "ip": "2.2.2.2"},
        })
    }

    #[test]
    fn no_interfaces() {
        for payload in [
            json!({}),
            json!({"interfaces": {}}),
            json!({"interfaces": null}),
        ] {
            let err = hook(AddPorts::Pxe).select(&mut data(payload)).unwrap_err();
            assert_eq!(err.to_string(), "No interfaces supplied by the ramdisk");
        }
    }

    #[test]
    fn only_pxe_in_pxelinux_form() {
        let mut d = sample();
        hook(AddPorts::Pxe).select(&mut d).unwrap();
        assert_eq!(
            d.get("interfaces"),
            Some(&json!({"em2": {"mac": "22:22:22:22:22:22", "ip": "2.2.2.2"}}))
        );
        assert_eq!(d.macs(), vec!["22:22:22:22:22:22"]);
        assert_eq!(d.get("all_interfaces"), Some(&interfaces()));
    }

    #[test]
    fn only_pxe_in_mac_form_any_case() {
        for boot in ["22:22:22:22:22:22", "01-22-22-22-22-22-22"] {
            let mut d = sample();
            d.insert("boot_interface", json!(boot));
            hook(AddPorts::Pxe).select(&mut d).unwrap();
            assert_eq!(d.macs(), vec!["22:22:22:22:22:22"]);
        }
        let mut d = data(json!({
            "interfaces": {"eth0": {"mac": "AA:BB:CC:DD:EE:FF"}, "eth1": {"mac": "aa:bb:cc:dd:ee:00"}},
            "boot_interface": "AA:BB:CC:DD:EE:FF",
        }));
        hook(AddPorts::Pxe).select(&mut d).unwrap();
        assert_eq!(d.macs(), vec!["AA:BB:CC:DD:EE:FF"], "original case kept");
        assert_eq!(
            boot_interface_mac("01-AA-BB-CC-DD-EE-FF").map(|m| m.to_string()),
            Some("aa:bb:cc:dd:ee:ff".to_string())
        );
    }

    #[test]
    fn pxe_not_found() {
        let mut d = sample();
        d.insert("boot_interface", json!("aa:bb:cc:dd:ee:ff"));
        d.insert("ipmi_address", json!("1.2.3.4"));
        let err = hook(AddPorts::Pxe).select(&mut d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No valid interfaces found for node with BMC 1.2.3.4, got \
             {'em1': {'ip': '1.1.1.1', 'mac': '11:11:11:11:11:11'}, \
             'em2': {'ip': '2.2.2.2', 'mac': '22:22:22:22:22:22'}, \
             'em3': {'mac': '33:33:33:33:33:33'}}"
        );
        let mut d = data(json!({"interfaces": {"em1": {"mac": "bad"}}}));
        let err = hook(AddPorts::All).select(&mut d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No valid interfaces found for node with BMC None, got {'em1': {'mac': 'bad'}}"
        );
    }

    #[test]
    fn pxe_without_boot_interface_acts_as_active() {
        let mut d = sample();
        d.remove("boot_interface");
        hook(AddPorts::Pxe).select(&mut d).unwrap();
        assert_eq!(d.get("interfaces"), Some(&active()));
        assert_eq!(d.macs(), vec!["11:11:11:11:11:11", "22:22:22:22:22:22"]);
    }

    #[test]
    fn active_and_all() {
        let mut d = sample();
        hook(AddPorts::Active).select(&mut d).unwrap();
        assert_eq!(d.get("interfaces"), Some(&active()));
        assert_eq!(d.get("all_interfaces"), Some(&interfaces()));

        let mut d = sample();
        hook(AddPorts::All).select(&mut d).unwrap();
        assert_eq!(d.get("interfaces"), Some(&interfaces()));
        assert_eq!(
            d.macs(),
            vec![
                "11:11:11:11:11:11",
                "22:22:22:22:22:22",
                "33:33:33:33:33:33"
            ]
        );
    }

    #[test]
    fn invalid_macs_are_dropped() {
        let mut d = data(json!({"interfaces": {
            "em1": {"mac": "11:11:11:11:11:11"},
            "lo": {"mac": "00:00:00:00:00"},
            "ib0": {"mac": null},
            "bad": {"mac": "gg:11:11:11:11:11"},
            "up": {"mac": "AB:CD:EF:01:23:45"},
            "nomac": {"ip": "1.1.1.1"},
        }}));
        hook(AddPorts::All).select(&mut d).unwrap();
        assert_eq!(d.macs(), vec!["11:11:11:11:11:11", "AB:CD:EF:01:23:45"]);
        assert_eq!(
            d.get("all_interfaces").unwrap().as_object().unwrap().len(),
            6
        );
        assert!("aa:BB:cc:dd:ee:ff".parse::<Mac>().is_ok());
        assert!("aa-bb-cc-dd-ee-ff".parse::<Mac>().is_err());
        assert!("aa:bb:cc:dd:ee:ff:00".parse::<Mac>().is_err());
        assert!("".parse::<Mac>().is_err());
    }

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    fn ports(macs: &[&str]) -> BTreeMap<Mac, Port> {
        macs.iter()
            .enumerate()
            .map(|(i, mac)| {
                let port: Port =
                    serde_json::from_value(json!({"uuid": format!("p{i}"), "address": mac}))
                        .unwrap();
                (self::mac(mac), port)
            })
            .collect()
    }

    fn validated() -> IntrospectionData {
        let mut d = sample();
        hook(AddPorts::Pxe).select(&mut d).unwrap();
        d
    }

    #[test]
    fn keep_all_deletes_nothing() {
        let h = ValidateInterfaces::new(AddPorts::Pxe, KeepPorts::All);
        assert_eq!(h.expected_macs(&validated()).unwrap(), None);
    }

    #[test]
    fn keep_present_deletes_ports_the_ramdisk_did_not_see() {
        let h = ValidateInterfaces::new(AddPorts::Pxe, KeepPorts::Present);
        let expected = h.expected_macs(&validated()).unwrap().unwrap();
        let existing = ports(&["11:11:11:11:11:11", "44:44:44:44:44:44"]);
        assert_eq!(
            ports_to_delete(&existing, &expected),
            vec![mac("44:44:44:44:44:44")]
        );
    }

    #[test]
    fn keep_added_deletes_every_port_not_added() {
        let h = ValidateInterfaces::new(AddPorts::Pxe, KeepPorts::Added);
        let expected = h.expected_macs(&validated()).unwrap().unwrap();
        let existing = ports(&[
            "11:11:11:11:11:11",
            "22:22:22:22:22:22",
            "44:44:44:44:44:44",
        ]);
        assert_eq!(
            ports_to_delete(&existing, &expected),
            vec![mac("11:11:11:11:11:11"), mac("44:44:44:44:44:44")]
        );
    }

    #[test]
    fn upper_case_ramdisk_macs_keep_their_ports() {
        let h = ValidateInterfaces::new(AddPorts::All, KeepPorts::Present);
        let mut d = data(json!({"interfaces": {"eth0": {"mac": "AA:BB:CC:DD:EE:FF"}}}));
        h.select(&mut d).unwrap();
        let expected = h.expected_macs(&d).unwrap().unwrap();
        assert!(ports_to_delete(&ports(&["aa:bb:cc:dd:ee:ff"]), &expected).is_empty());
    }

    #[test]
    fn keeping_ports_without_validated_data_is_an_error() {
        let h = ValidateInterfaces::new(AddPorts::All, KeepPorts::Present);
        assert!(matches!(
            h.expected_macs(&data(json!({}))),
            Err(Error::Internal { .. })
        ));
        let h = ValidateInterfaces::new(AddPorts::All, KeepPorts::Added);
        assert!(matches!(
            h.expected_macs(&data(json!({}))),
            Err(Error::Internal { .. })
        ));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{mac, mutated_payload, text};

    fn hook(add_ports: AddPorts, keep_ports: KeepPorts) -> ValidateInterfaces {
        ValidateInterfaces::new(add_ports, keep_ports)
    }

    fn add_ports() -> impl Strategy<Value = AddPorts> {
        prop::sample::select(vec![AddPorts::All, AddPorts::Active, AddPorts::Pxe])
    }

    fn flat(interfaces: &[(String, bool)], boot_interface: Option<String>) -> IntrospectionData {
        let interfaces: Map<String, Value> = interfaces
            .iter()
            .enumerate()
            .map(|(i, (mac, active))| {
                let ip = if *active {
                    json!(format!("192.0.2.{i}"))
                } else {
                    Value::Null
                };
                (format!("eth{i}"), json!({"mac": mac, "ip": ip}))
            })
            .collect();
        let mut map = Map::from_iter([("interfaces".to_string(), Value::Object(interfaces))]);
        if let Some(boot) = boot_interface {
            map.insert("boot_interface".to_string(), Value::String(boot));
        }
        IntrospectionData::from_payload(map, true).unwrap()
    }

    proptest! {
        #[test]
        fn pxelinux_and_colon_forms_name_the_same_mac(mac in mac(), upper in any::<bool>()) {
            let dashed = format!("01-{}", mac.replace(':', "-"));
            let dashed = if upper { dashed.to_uppercase() } else { dashed };
            let canonical = mac.to_lowercase();
            let expected = Some(canonical.clone());
            prop_assert_eq!(boot_interface_mac(&dashed).map(|m| m.to_string()), expected.clone());
            prop_assert_eq!(boot_interface_mac(&mac).map(|m| m.to_string()), expected.clone());
            prop_assert_eq!(boot_interface_mac(&canonical).map(|m| m.to_string()), expected);
        }

        #[test]
        fn the_mac_a_boot_interface_names_reads_back(s in text()) {
            if let Some(mac) = boot_interface_mac(&s) {
                prop_assert_eq!(boot_interface_mac(&mac.to_string()), Some(mac));
            }
        }

        #[test]
        fn selection_of_mutated_payloads_is_consistent_or_a_400(
            payload in mutated_payload(),
            add in add_ports(),
        ) {
            let Value::Object(map) = payload else { return Ok(()) };
            let Ok(mut data) = IntrospectionData::from_payload(map, true) else { return Ok(()) };
            match hook(add, KeepPorts::All).select(&mut data) {
                Ok(()) => {
                    let all = data.get("all_interfaces").and_then(Value::as_object).unwrap();
                    let chosen = data.get("interfaces").and_then(Value::as_object).unwrap();
                    prop_assert!(!chosen.is_empty());
                    let mut macs = Vec::new();
                    for (name, iface) in chosen {
                        prop_assert_eq!(all.get(name), Some(iface));
                        let mac = iface.get("mac").and_then(Value::as_str).unwrap();
                        prop_assert!(mac.parse::<Mac>().is_ok());
                        macs.push(mac.to_string());
                    }
                    prop_assert_eq!(data.macs(), macs);
                    let reported: BTreeSet<Mac> = all
                        .values()
                        .filter_map(|iface| iface.get("mac")?.as_str()?.parse().ok())
                        .collect();
                    for keep in [KeepPorts::Present, KeepPorts::Added] {
                        let expected = hook(add, keep).expected_macs(&data).unwrap().unwrap();
                        prop_assert!(expected.is_subset(&reported));
                    }
                }
                Err(Error::BadRequest(message)) => prop_assert!(!message.is_empty()),
                Err(other) => prop_assert!(false, "not a 400: {other:?}"),
            }
        }

        #[test]
        fn selection_ignores_the_case_of_macs(
            interfaces in prop::collection::vec((mac(), any::<bool>()), 1..5),
            boot in prop::option::of(any::<prop::sample::Index>()),
            pxelinux in any::<bool>(),
            add in add_ports(),
        ) {
            let boot_mac = boot.map(|i| interfaces[i.index(interfaces.len())].0.clone());
            let boot_text = |mac: &str| if pxelinux { format!("01-{}", mac.replace(':', "-")) } else { mac.to_string() };
            let chosen = |interfaces: &[(String, bool)], boot: Option<String>| {
                let mut data = flat(interfaces, boot);
                hook(add, KeepPorts::All).select(&mut data).map(|()| {
                    let mut names: Vec<String> = data
                        .get("interfaces")
                        .and_then(Value::as_object)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    names.sort();
                    names
                })
            };
            let lower: Vec<(String, bool)> = interfaces.iter().map(|(m, a)| (m.to_lowercase(), *a)).collect();
            let upper: Vec<(String, bool)> = interfaces.iter().map(|(m, a)| (m.to_uppercase(), *a)).collect();
            let reference = chosen(&lower, boot_mac.as_deref().map(|m| boot_text(&m.to_lowercase())));
            let other = chosen(&upper, boot_mac.as_deref().map(|m| boot_text(&m.to_uppercase())));
            prop_assert_eq!(reference.as_ref().ok(), other.as_ref().ok());
            if let (AddPorts::Pxe, Some(mac)) = (add, &boot_mac) {
                // The PXE interface is always chosen, whatever case the ramdisk used.
                let names = reference.unwrap();
                prop_assert!(!names.is_empty());
                for name in &names {
                    let i: usize = name.trim_start_matches("eth").parse().unwrap();
                    prop_assert_eq!(interfaces[i].0.to_lowercase(), mac.to_lowercase());
                }
            }
        }
    }
}
