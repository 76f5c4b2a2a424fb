//! `root_disk_selection`: picks the root disk from the agent's inventory using the node's
//! root device hints, so that `scheduler` computes `local_gb` from it.
//!
//! Ports `RootDiskSelectionHook` of `ironic_inspector/plugins/standard.py`. Must run before
//! `scheduler`. A hint matches when it equals the disk's field (Python equality, so `10`
//! matches `10.0` but not `"10"`); `size` is compared in whole GiB.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::ProcessingHook;
use crate::data::{GIB, IntrospectionData};
use crate::error::{Error, Result};
use crate::ironic_node::IronicNode;
use crate::py;

/// Hint names Ironic knows (for reference; any field of a disk can be hinted).
pub const KNOWN_ROOT_DEVICE_HINTS: [&str; 6] = ["model", "vendor", "serial", "wwn", "hctl", "size"];

/// The `root_disk_selection` hook.
#[derive(Clone, Copy, Debug, Default)]
pub struct RootDiskSelection;

/// What the hints select.
#[derive(Debug, PartialEq)]
pub enum Selection {
    /// The node has no hints: nothing to do.
    NoHints,
    /// The data has no inventory (not the agent): nothing to do, logged as an error.
    NoInventory,
    /// This disk, as the agent described it.
    Disk(Value),
}

impl RootDiskSelection {
    /// The disk the node's `root_device` hints select in the data.
    ///
    /// # Errors
    /// `No disks found on a node <uuid>`; `No disks satisfied root device hints for node
    /// <uuid>`; hints that are not an object are an unexpected failure, as upstream.
    pub fn select(
        uuid: &str,
        node_properties: &Map<String, Value>,
        data: &IntrospectionData,
    ) -> Result<Selection> {
        let hints = match node_properties.get("root_device") {
            Some(hints) if py::truthy(hints) => hints,
            _ => return Ok(Selection::NoHints),
        };
        let Value::Object(hints) = hints else {
            return Err(Error::internal(
                "RootDeviceHintsError",
                format!("root device hints of node {uuid} are not an object: {hints}"),
            ));
        };
        let inventory = match data.get("inventory") {
            Some(inventory) if py::truthy(inventory) => inventory,
            _ => return Ok(Selection::NoInventory),
        };
        let disks: &[Value] = match inventory.get("disks") {
            Some(Value::Array(disks)) => disks,
            _ => &[],
        };
        if disks.is_empty() {
            return Err(Error::BadRequest(format!(
                "No disks found on a node {uuid}"
            )));
        }
        for disk in disks {
            if hints.iter().all(|(name, value)| {
                let actual = disk_field(disk, name);
                let ok = py::eq(&actual, value);
                if !ok {
                    tracing::debug!(
                        node.uuid = %uuid,
                        disk = ?disk.get("name"),
                        hint = %name,
                        "disk does not satisfy hint {name}={value}, actual value is {actual}"
                    );
                }
                ok
            }) {
                return Ok(Selection::Disk(disk.clone()));
            }
        }
        Err(Error::BadRequest(format!(
            "No disks satisfied root device hints for node {uuid}"
        )))
    }
}

/// A disk's field for comparison with a hint: `size` in whole GiB; absent is `null`.
fn disk_field(disk: &Value, name: &str) -> Value {
    let value = disk.get(name).cloned().unwrap_or(Value::Null);
    if name == "size" {
        if let Some(bytes) = value.as_u64() {
            return Value::from(bytes / GIB);
        }
        if let Some(bytes) = value.as_i64() {
            return Value::from(bytes.div_euclid(1 << 30));
        }
    }
    value
}

#[async_trait]
impl ProcessingHook for RootDiskSelection {
    fn name(&self) -> &'static str {
        "root_disk_selection"
    }

    async fn before_update(
        &self,
        data: &mut IntrospectionData,
        node: &mut IronicNode,
    ) -> Result<()> {
        match Self::select(&node.uuid, &node.node().properties, data)? {
            Selection::NoHints => {
                tracing::debug!(node.uuid = %node.uuid, "Root device hints are not provided");
            }
            Selection::NoInventory => {
                tracing::error!(
                    node.uuid = %node.uuid,
                    "Root device selection require ironic-python-agent as an inspection ramdisk"
                );
            }
            Selection::Disk(disk) => {
                tracing::debug!(node.uuid = %node.uuid, disk = ?disk.get("name"), "disk satisfies root device hints");
                data.insert("root_disk", disk);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const UUID: &str = "uuid-1";

    fn data() -> IntrospectionData {
        crate::testing::data(json!({"inventory": {"disks": [
            {"model": "Model 1", "size": 20 * GIB, "name": "/dev/sdb"},
            {"model": "Model 2", "size": 5 * GIB, "name": "/dev/sda"},
            {"model": "Model 3", "size": 10 * GIB, "name": "/dev/sdc"},
            {"model": "Model 4", "size": 4 * GIB, "name": "/dev/sdd"},
            {"model": "Too Small", "size": GIB, "name": "/dev/sde"},
        ]}}))
    }

    fn hints(value: Value) -> Map<String, Value> {
        let mut props = Map::new();
        props.insert("root_device".to_string(), value);
        props
    }

    fn matched() -> Value {
        json!({"model": "Model 3", "size": 10 * GIB, "name": "/dev/sdc"})
    }

    #[test]
    fn no_hints() {
        assert_eq!(
            RootDiskSelection::select(UUID, &Map::new(), &data()).unwrap(),
            Selection::NoHints
        );
        assert_eq!(
            RootDiskSelection::select(UUID, &hints(json!({})), &data()).unwrap(),
            Selection::NoHints
        );
    }

    #[test]
    fn no_inventory() {
        let d = IntrospectionData::from_map_unchecked(Map::new());
        assert_eq!(
            RootDiskSelection::select(UUID, &hints(json!({"model": "foo"})), &d).unwrap(),
            Selection::NoInventory
        );
    }

    #[test]
    fn no_disks() {
        let Value::Object(map) = json!({"inventory": {"disks": []}}) else {
            unreachable!()
        };
        let d = IntrospectionData::from_map_unchecked(map);
        let err = RootDiskSelection::select(UUID, &hints(json!({"size": 10})), &d).unwrap_err();
        assert_eq!(err.to_string(), "No disks found on a node uuid-1");
        let Value::Object(map) = json!({"inventory": {"cpu": {}}}) else {
            unreachable!()
        };
        let d = IntrospectionData::from_map_unchecked(map);
        assert!(RootDiskSelection::select(UUID, &hints(json!({"size": 10})), &d).is_err());
    }

    #[test]
    fn one_matches() {
        let got = RootDiskSelection::select(UUID, &hints(json!({"size": 10})), &data()).unwrap();
        assert_eq!(got, Selection::Disk(matched()));
    }

    #[test]
    fn all_hints_must_match() {
        let got = RootDiskSelection::select(
            UUID,
            &hints(json!({"size": 10, "model": "Model 3"})),
            &data(),
        )
        .unwrap();
        assert_eq!(got, Selection::Disk(matched()));
        let got = RootDiskSelection::select(UUID, &hints(json!({"size": 10.0})), &data()).unwrap();
        assert_eq!(got, Selection::Disk(matched()), "Python: 10 == 10.0");
    }

    #[test]
    fn first_of_several_matches() {
        let got =
            RootDiskSelection::select(UUID, &hints(json!({"name": "/dev/sdb"})), &data()).unwrap();
        assert_eq!(
            got,
            Selection::Disk(json!({"model": "Model 1", "size": 20 * GIB, "name": "/dev/sdb"}))
        );
        let Value::Object(map) = json!({"inventory": {"disks": [
            {"name": "/dev/sda", "size": GIB, "vendor": "v"},
            {"name": "/dev/sdb", "size": GIB, "vendor": "v"},
        ]}}) else {
            unreachable!()
        };
        let d = IntrospectionData::from_map_unchecked(map);
        match RootDiskSelection::select(UUID, &hints(json!({"vendor": "v"})), &d).unwrap() {
            Selection::Disk(disk) => assert_eq!(disk["name"], "/dev/sda"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn none_matches() {
        for h in [
            json!({"size": 10, "model": "Model 42"}),
            json!({"size": "10"}),
            json!({"wwn": "x"}),
        ] {
            let err = RootDiskSelection::select(UUID, &hints(h), &data()).unwrap_err();
            assert_eq!(
                err.to_string(),
                "No disks satisfied root device hints for node uuid-1"
            );
        }
    }

    #[test]
    fn malformed_hints_are_unexpected() {
        let err = RootDiskSelection::select(UUID, &hints(json!("sda")), &data()).unwrap_err();
        assert!(matches!(err, Error::Internal { .. }));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{json_value, mutated, mutated_payload};

    fn hints() -> impl Strategy<Value = Value> {
        prop_oneof![
            mutated(json!({"size": 465, "model": "EXAMPLE HDD 500G"})),
            mutated(json!({"serial": "FAKESERIAL1000B"})),
            json_value(),
        ]
    }

    proptest! {
        #[test]
        fn a_selected_disk_is_one_that_satisfies_every_hint(
            payload in mutated_payload(),
            hints in hints(),
        ) {
            let Value::Object(map) = payload else { return Ok(()) };
            let Ok(data) = IntrospectionData::from_payload(map, true) else { return Ok(()) };
            let properties = Map::from_iter([("root_device".to_string(), hints.clone())]);
            match RootDiskSelection::select("u", &properties, &data) {
                Ok(Selection::Disk(disk)) => {
                    let disks = data.get("inventory").and_then(|i| i.get("disks")).and_then(Value::as_array).unwrap();
                    prop_assert!(disks.contains(&disk));
                    for (name, value) in hints.as_object().unwrap() {
                        prop_assert!(py::eq(&disk_field(&disk, name), value), "{name}");
                    }
                }
                Ok(Selection::NoHints) => prop_assert!(!py::truthy(&hints)),
                Ok(Selection::NoInventory) => prop_assert!(!data.is_truthy("inventory")),
                Err(Error::BadRequest(message)) => prop_assert!(message.starts_with("No disks"), "{message}"),
                // Hints that are not an object fail as upstream did.
                Err(Error::Internal { .. }) => prop_assert!(!hints.is_object()),
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn size_hints_are_whole_gib(size in any::<u64>()) {
            let disk = json!({"size": size});
            prop_assert_eq!(disk_field(&disk, "size"), json!(size / GIB));
        }
    }
}
