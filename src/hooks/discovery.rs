//! `enroll`: the node-not-found hook that makes a machine Ironic does not know a node.
//!
//! Ports the behaviour of upstream's later `ironic_inspector/plugins/discovery.py` (the
//! `enroll` entry point, 3.x on) and of `node_cache.create_node`. It runs when no node
//! under introspection matches a report:
//! - a machine Ironic already knows (a port with one of the report's MACs, or a node whose
//!   BMC address, `driver_info[ipmi_address]` or `[DEFAULT] ipmi_address_fields`, is the
//!   report's) is answered as that node, and processed as it. Upstream refused such
//!   reports; we process them, and the usual provision-state check then refuses a node
//!   introspection must not touch (`active`, say) with its usual message;
//! - any other machine becomes a new node: driver `[discovery] enroll_node_driver`,
//!   `driver_info[ipmi_address]` from the report's BMC address (without one the node is
//!   created without it, with a warning), and `[discovery] enroll_node_fields`. The report
//!   gets `auto_discovered: true`, which introspection rules can match on (the usual recipe
//!   is a rule that sets the driver's credentials).
//!
//! The caller ([`crate::process`]) serialises the hook's runs and starts the node's
//! introspection record, so that one machine reporting twice, even at the same moment,
//! makes one node.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::NodeNotFoundHook;
use crate::data::IntrospectionData;
use crate::error::{Error, Result};
use crate::ironic::IronicClient;
use crate::ironic_node::resolve_bmc_address;
use crate::mac::Mac;

/// The data key set on the report of a machine enrolled just now.
pub const AUTO_DISCOVERED: &str = "auto_discovered";

/// The `enroll` node-not-found hook.
pub struct Enroll {
    ironic: IronicClient,
    driver: String,
    fields: BTreeMap<String, String>,
    ipmi_address_fields: Vec<String>,
}

impl Enroll {
    /// The hook, creating nodes with `driver` and the extra `fields` through `ironic`;
    /// `ipmi_address_fields` are the `driver_info` keys read, after `ipmi_address`, for an
    /// existing node's BMC address.
    pub fn new(
        ironic: IronicClient,
        driver: String,
        fields: BTreeMap<String, String>,
        ipmi_address_fields: Vec<String>,
    ) -> Enroll {
        Enroll {
            ironic,
            driver,
            fields,
            ipmi_address_fields,
        }
    }

    /// The Ironic node this machine already is, if any, by its MACs' ports and by its BMC
    /// address. Several nodes matching is an error naming them.
    async fn existing_node(&self, bmc: Option<&str>, macs: &[Mac]) -> Result<Option<String>> {
        let mut by_mac = BTreeSet::new();
        for mac in macs {
            let port = self
                .ironic
                .port_by_address(&mac.to_string())
                .await
                .map_err(|e| named("looking up the port of a MAC", e))?;
            if let Some(node) = port.and_then(|p| p.node_uuid) {
                by_mac.insert(node);
            }
        }
        let shown_macs = || {
            macs.iter()
                .map(Mac::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if by_mac.len() > 1 {
            return Err(Error::BadRequest(format!(
                "MAC addresses {} correspond to more than one node: {}",
                shown_macs(),
                join(&by_mac)
            )));
        }

        let mut by_bmc = BTreeSet::new();
        if let Some(bmc) = bmc {
            let wanted = resolve_bmc_address(bmc)
                .await
                .unwrap_or_else(|| bmc.to_string());
            let nodes = self
                .ironic
                .list_nodes()
                .await
                .map_err(|e| named("listing the nodes", e))?;
            for node in nodes {
                let Some(field) = node.bmc_address_field(&self.ipmi_address_fields) else {
                    continue;
                };
                let address = resolve_bmc_address(&field).await.unwrap_or(field);
                if address == wanted {
                    by_bmc.insert(node.uuid);
                }
            }
            if by_bmc.len() > 1 {
                return Err(Error::BadRequest(format!(
                    "BMC address {bmc} corresponds to more than one node: {}",
                    join(&by_bmc)
                )));
            }
        }

        match (by_mac.pop_first(), by_bmc.pop_first()) {
            (Some(mac_node), Some(bmc_node)) if mac_node != bmc_node => {
                Err(Error::BadRequest(format!(
                    "MAC addresses {} and BMC address {} correspond to different nodes: \
                     {mac_node} and {bmc_node}",
                    shown_macs(),
                    bmc.unwrap_or_default()
                )))
            }
            (mac_node, bmc_node) => Ok(mac_node.or(bmc_node)),
        }
    }
}

#[async_trait]
impl NodeNotFoundHook for Enroll {
    fn name(&self) -> &'static str {
        "enroll"
    }

    async fn run(&self, data: &mut IntrospectionData) -> Result<Option<String>> {
        let bmc = data.ipmi_address().map(str::to_string);
        let macs = report_macs(data);
        if macs.is_empty() {
            tracing::warn!(
                "the report has no usable MAC address (is validate_interfaces among the \
                 processing hooks?); looking the machine up by its BMC address only"
            );
        }
        if let Some(uuid) = self.existing_node(bmc.as_deref(), &macs).await? {
            tracing::info!(
                node.uuid = %uuid,
                "the machine is already a node in Ironic; processing the report as that node"
            );
            return Ok(Some(uuid));
        }
        if bmc.is_none() {
            tracing::warn!(
                "no BMC address in the report; the new node is enrolled without \
                 driver_info/ipmi_address"
            );
        }
        let document = node_document(&self.driver, &self.fields, bmc.as_deref());
        let node = self
            .ironic
            .create_node(&document)
            .await
            .map_err(|e| named("creating the node", e))?;
        // Rules tell a node enrolled this way from one enrolled by hand by this mark.
        data.insert(AUTO_DISCOVERED, Value::Bool(true));
        tracing::info!(
            node.uuid = %node.uuid,
            node.driver = %self.driver,
            bmc_address = bmc.as_deref().unwrap_or(""),
            "enrolled a new node for a machine Ironic did not know"
        );
        Ok(Some(node.uuid))
    }
}

/// The new node's fields: the operator's extra fields, the driver, and the BMC address.
fn node_document(
    driver: &str,
    fields: &BTreeMap<String, String>,
    bmc: Option<&str>,
) -> Map<String, Value> {
    let mut document: Map<String, Value> = fields
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    let mut driver_info = Map::new();
    if let Some(bmc) = bmc {
        driver_info.insert("ipmi_address".to_string(), json!(bmc));
    }
    document.insert("driver".to_string(), json!(driver));
    document.insert("driver_info".to_string(), Value::Object(driver_info));
    document
}

/// Every MAC the ramdisk reported: those of all its interfaces (`all_interfaces`, set by
/// `validate_interfaces`, else `interfaces`) and the `macs` list, each once. An existing
/// node may have a port for any NIC, not only for those `add_ports` keeps.
fn report_macs(data: &IntrospectionData) -> Vec<Mac> {
    let mut macs = BTreeSet::new();
    let interfaces = data
        .get("all_interfaces")
        .or_else(|| data.get("interfaces"))
        .and_then(Value::as_object);
    for interface in interfaces.into_iter().flat_map(|map| map.values()) {
        if let Some(mac) = interface
            .get("mac")
            .and_then(Value::as_str)
            .and_then(|m| m.parse::<Mac>().ok())
        {
            macs.insert(mac);
        }
    }
    macs.extend(data.macs().iter().filter_map(|m| m.parse::<Mac>().ok()));
    macs.into_iter().collect()
}

/// An Ironic failure of the hook, saying what it was doing. Ironic being away stays a 503
/// (the ramdisk posts again); anything else is the hook's failure.
fn named(doing: &str, err: crate::ironic::IronicError) -> Error {
    match Error::from(err) {
        Error::ServiceUnavailable(message) => {
            Error::ServiceUnavailable(format!("Enroll hook, {doing}: {message}"))
        }
        other => Error::BadRequest(format!("Ironic refused {doing}: {other}")),
    }
}

fn join(uuids: &BTreeSet<String>) -> String {
    uuids.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(value: Value) -> IntrospectionData {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        IntrospectionData::from_map_unchecked(map)
    }

    #[test]
    fn the_new_node_has_the_driver_the_bmc_address_and_the_extra_fields() {
        let fields = BTreeMap::from([("resource_class".to_string(), "baremetal".to_string())]);
        assert_eq!(
            Value::Object(node_document("ipmi", &fields, Some("192.0.2.1"))),
            json!({
                "driver": "ipmi",
                "driver_info": {"ipmi_address": "192.0.2.1"},
                "resource_class": "baremetal",
            })
        );
        assert_eq!(
            Value::Object(node_document("fake-hardware", &BTreeMap::new(), None)),
            json!({"driver": "fake-hardware", "driver_info": {}})
        );
    }

    #[test]
    fn every_reported_mac_counts_once() {
        let report = data(json!({
            "all_interfaces": {
                "eth0": {"mac": "52:54:00:00:00:01", "ip": "10.0.0.1"},
                "eth1": {"mac": "52:54:00:AA:00:02"},
                "eth2": {"mac": "52-54-00-00-00-04"},
                "lo": {"mac": null},
                "bad": {"mac": "not a mac"},
            },
            "interfaces": {"eth9": {"mac": "52:54:00:00:00:09"}},
            "macs": ["52:54:00:00:00:01", "52:54:00:00:00:03"],
        }));
        let shown: Vec<String> = report_macs(&report).iter().map(Mac::to_string).collect();
        assert_eq!(
            shown,
            [
                "52:54:00:00:00:01",
                "52:54:00:00:00:03",
                "52:54:00:aa:00:02"
            ]
        );
        // Without validate_interfaces' all_interfaces, the ramdisk's interfaces are read.
        let report = data(json!({"interfaces": {"eth9": {"mac": "52:54:00:00:00:09"}}}));
        let shown: Vec<String> = report_macs(&report).iter().map(Mac::to_string).collect();
        assert_eq!(shown, ["52:54:00:00:00:09"]);
    }
}
