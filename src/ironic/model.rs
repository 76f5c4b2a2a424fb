//! The Ironic resources we read, as Ironic's v1 API shows them at the version we pin.
//!
//! Ports the attribute access upstream did on python-ironicclient's `Node`, `Port` and
//! validation objects (`introspect.py`, `process.py`, `node_cache.py`, `firewall.py`). Fields
//! we do not read are not modelled; [`Node::raw`] keeps the whole document for the JSON-path
//! lookups of introspection rules.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::mac::Mac;
use crate::py;

/// A node, from `GET /v1/nodes/<uuid>` or `PATCH /v1/nodes/<uuid>`.
///
/// `null` in an object or flag field reads as empty or false. Ironic masks passwords in
/// `driver_info` (`******`), so printing a node shows no secret it did not already hide.
#[derive(Clone, Deserialize)]
#[serde(try_from = "Value")]
pub struct Node {
    /// The node's UUID.
    pub uuid: String,
    /// Driver (classic driver or hardware type) name.
    pub driver: String,
    /// How to reach the BMC (`ipmi_address`, `ipmi_username`, ...).
    pub driver_info: Map<String, Value>,
    /// Provision state, e.g. `enroll`, `manageable`, `inspecting`. At API 1.6 Ironic shows
    /// its later `inspect wait` state as `inspecting`.
    pub provision_state: Option<String>,
    /// Maintenance mode.
    pub maintenance: bool,
    /// Hardware properties (`cpus`, `memory_mb`, `local_gb`, `cpu_arch`, `capabilities`).
    pub properties: Map<String, Value>,
    /// Free-form extra data.
    pub extra: Map<String, Value>,
    /// Power state, e.g. `power on`, `power off`; `None` while unknown.
    pub power_state: Option<String>,
    /// The whole document as Ironic sent it.
    pub raw: Value,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `raw` repeats everything; leave it out.
        f.debug_struct("Node")
            .field("uuid", &self.uuid)
            .field("driver", &self.driver)
            .field("driver_info", &self.driver_info)
            .field("provision_state", &self.provision_state)
            .field("maintenance", &self.maintenance)
            .field("properties", &self.properties)
            .field("extra", &self.extra)
            .field("power_state", &self.power_state)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// The BMC address as `driver_info` holds it (an IP address or a host name, as text):
    /// `ipmi_address`, else the first set field of `extra_fields` (`[DEFAULT]
    /// ipmi_address_fields`). `None` when none is set, and when IPMI bridging is on (the
    /// address then belongs to the bridge, not to this node).
    pub fn bmc_address_field(&self, extra_fields: &[String]) -> Option<String> {
        let bridging = self
            .driver_info
            .get("ipmi_bridging")
            .map(value_text)
            .unwrap_or_else(|| "no".to_string());
        if bridging != "no" {
            return None;
        }
        std::iter::once("ipmi_address")
            .chain(extra_fields.iter().map(String::as_str))
            .find_map(|field| self.driver_info.get(field).filter(|v| py::truthy(v)))
            .map(value_text)
    }
}

/// A `driver_info` value as text: a string as it is, anything else as JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The fields of [`Node`] as they come off the wire.
#[derive(Deserialize)]
struct NodeFields {
    uuid: String,
    driver: String,
    #[serde(default, deserialize_with = "null_as_default")]
    driver_info: Map<String, Value>,
    #[serde(default)]
    provision_state: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    maintenance: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    properties: Map<String, Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    extra: Map<String, Value>,
    #[serde(default)]
    power_state: Option<String>,
}

impl TryFrom<Value> for Node {
    type Error = serde_json::Error;

    fn try_from(raw: Value) -> Result<Self, Self::Error> {
        let fields = NodeFields::deserialize(&raw)?;
        Ok(Node {
            uuid: fields.uuid,
            driver: fields.driver,
            driver_info: fields.driver_info,
            provision_state: fields.provision_state,
            maintenance: fields.maintenance,
            properties: fields.properties,
            extra: fields.extra,
            power_state: fields.power_state,
            raw,
        })
    }
}

/// A port (one NIC's MAC address registered for a node), from the detailed port lists or
/// from creating or patching a port.
#[derive(Clone, Debug, Deserialize)]
pub struct Port {
    /// The port's UUID.
    pub uuid: String,
    /// MAC address; Ironic stores it in lower case.
    pub address: String,
    /// The node it belongs to.
    #[serde(default)]
    pub node_uuid: Option<String>,
    /// Free-form extra data.
    #[serde(default, deserialize_with = "null_as_default")]
    pub extra: Map<String, Value>,
}

impl Port {
    /// The port's MAC, `None` when its address is not one (Ironic refuses such addresses,
    /// so this is a guard, not an expected case). The address stays text here: reading a
    /// port list never fails on one odd port.
    pub fn mac(&self) -> Option<Mac> {
        self.address.parse().ok()
    }
}

/// The answer of `GET /v1/nodes/<uuid>/validate`: one entry per driver interface.
#[derive(Clone, Debug, Deserialize)]
pub struct Validation {
    /// The power interface, the only one introspection checks.
    pub power: InterfaceValidation,
    /// The other interfaces (`boot`, `deploy`, `management`, ...), as sent.
    #[serde(flatten)]
    pub others: BTreeMap<String, Value>,
}

/// Whether one driver interface is usable for the node.
#[derive(Clone, Debug, Deserialize)]
pub struct InterfaceValidation {
    /// `true` when the interface validated; `null` (not supported) reads as `false`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub result: bool,
    /// Why not, when `result` is false.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Target of `PUT /v1/nodes/<uuid>/states/power`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerTarget {
    /// `rebooting`: power cycle (introspection start uses this, also for a node that is off).
    Reboot,
    /// `power off` (end of introspection).
    Off,
    /// `power on`.
    On,
}

impl PowerTarget {
    /// The value Ironic expects in `{"target": ...}`.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerTarget::Reboot => "rebooting",
            PowerTarget::Off => "power off",
            PowerTarget::On => "power on",
        }
    }
}

impl fmt::Display for PowerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads `null` as the type's default (Ironic sends `null` for unset objects and flags).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_bmc_address_is_the_first_set_field_unless_bridged() {
        let node = |driver_info: Value| {
            Node::try_from(json!({"uuid": "u", "driver": "ipmi", "driver_info": driver_info}))
                .unwrap()
        };
        let fields = ["ilo_address".to_string(), "drac_host".to_string()];
        let address = |info: Value| node(info).bmc_address_field(&fields);
        assert_eq!(address(json!({})), None);
        assert_eq!(
            address(json!({"ipmi_address": "192.0.2.1", "ilo_address": "192.0.2.2"})),
            Some("192.0.2.1".to_string())
        );
        // Empty values are skipped, as upstream's truth test did; the order is the list's.
        assert_eq!(
            address(
                json!({"ipmi_address": "", "drac_host": "bmc.example", "ilo_address": "192.0.2.2"})
            ),
            Some("192.0.2.2".to_string())
        );
        assert_eq!(
            address(json!({"drac_host": "bmc.example"})),
            Some("bmc.example".to_string())
        );
        assert_eq!(address(json!({"ipmi_address": 17})), Some("17".to_string()));
        assert_eq!(
            address(json!({"ipmi_address": "192.0.2.1", "ipmi_bridging": "single"})),
            None
        );
        assert_eq!(
            address(json!({"ipmi_address": "192.0.2.1", "ipmi_bridging": "no"})),
            Some("192.0.2.1".to_string())
        );
    }

    #[test]
    fn node_reads_what_ironic_sends_and_keeps_the_document() {
        let doc = json!({
            "uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
            "driver": "ipmi",
            "driver_info": {"ipmi_address": "10.0.0.1", "ipmi_password": "******"},
            "provision_state": "manageable",
            "maintenance": false,
            "properties": {"cpus": 4},
            "extra": null,
            "power_state": null,
            "links": [],
        });
        let node: Node = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(node.uuid, "1be26c0b-03f2-4d2e-ae87-c02d7f33c123");
        assert_eq!(node.driver_info["ipmi_address"], "10.0.0.1");
        assert_eq!(node.provision_state.as_deref(), Some("manageable"));
        assert!(node.extra.is_empty());
        assert_eq!(node.power_state, None);
        assert_eq!(node.raw, doc);
        assert!(!format!("{node:?}").contains("links"));
    }

    #[test]
    fn node_without_uuid_is_an_error() {
        assert!(serde_json::from_value::<Node>(json!({"driver": "ipmi"})).is_err());
        assert!(serde_json::from_value::<Node>(json!([1, 2])).is_err());
    }

    #[test]
    fn maintenance_null_is_false() {
        let node: Node =
            serde_json::from_value(json!({"uuid": "u", "driver": "d", "maintenance": null}))
                .unwrap();
        assert!(!node.maintenance);
    }

    #[test]
    fn validation_reads_power_and_keeps_the_rest() {
        let v: Validation = serde_json::from_value(json!({
            "power": {"result": false, "reason": "Missing ipmi_address"},
            "boot": {"result": true},
            "console": {"result": null, "reason": "not supported"},
        }))
        .unwrap();
        assert!(!v.power.result);
        assert_eq!(v.power.reason.as_deref(), Some("Missing ipmi_address"));
        assert_eq!(v.others.len(), 2);
        assert!(serde_json::from_value::<Validation>(json!({"boot": {}})).is_err());
    }

    #[test]
    fn power_targets_are_ironics_words() {
        assert_eq!(PowerTarget::Reboot.as_str(), "rebooting");
        assert_eq!(PowerTarget::Off.as_str(), "power off");
        assert_eq!(PowerTarget::On.to_string(), "power on");
    }
}
