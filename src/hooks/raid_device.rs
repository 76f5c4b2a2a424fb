//! `raid_device` (and its deprecated name `root_device_hint`): learns the root device of a
//! node whose RAID volume was just created, over two introspections.
//!
//! Ports `RaidDeviceDetection` of `ironic_inspector/plugins/raid_device.py`. The first run
//! saves the block device serials in `extra.block_devices`; a later run that finds exactly
//! one new serial stores it as the `root_device` hint and removes the saved list. Before
//! the lookup it fakes `local_gb = 1` when the ramdisk found no volume, so `scheduler`
//! does not fail (it must run before `scheduler` for that).

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::ProcessingHook;
use crate::data::IntrospectionData;
use crate::error::{Error, Result};
use crate::ironic_node::IronicNode;
use crate::py;

/// The `raid_device` hook, under the name it was enabled with.
#[derive(Clone, Debug)]
pub struct RaidDevice {
    name: &'static str,
}

impl RaidDevice {
    /// The hook, reporting itself as `name` (`raid_device` or `root_device_hint`).
    pub fn new(name: &'static str) -> RaidDevice {
        RaidDevice { name }
    }

    /// The serials the ramdisk reports: non-empty `inventory.disks[].serial` when the data
    /// has an inventory, else `block_devices.serials`.
    pub fn serials(data: &IntrospectionData) -> Vec<Value> {
        if let Some(inventory) = data.get("inventory") {
            return match inventory.get("disks") {
                Some(Value::Array(disks)) => disks
                    .iter()
                    .filter_map(|disk| disk.get("serial"))
                    .filter(|serial| py::truthy(serial))
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
        }
        match data.get("block_devices").and_then(|b| b.get("serials")) {
            Some(Value::Array(serials)) => serials.clone(),
            _ => Vec::new(),
        }
    }

    /// The node PATCH for these serials; empty when there is nothing to change.
    ///
    /// # Errors
    /// A malformed saved `extra.block_devices` is an unexpected failure, as upstream.
    pub fn patch_for(
        current: Vec<Value>,
        properties: &Map<String, Value>,
        extra: &Map<String, Value>,
    ) -> Result<Vec<Value>> {
        if current.is_empty() {
            tracing::warn!("No block device was received from ramdisk");
            return Ok(Vec::new());
        }
        if properties.contains_key("root_device") {
            tracing::info!("Root device is already known for the node");
            return Ok(Vec::new());
        }
        let Some(saved) = extra.get("block_devices") else {
            return Ok(vec![json!({
                "op": "add", "path": "/extra/block_devices", "value": {"serials": current},
            })]);
        };
        let Some(Value::Array(previous)) = saved.get("serials") else {
            return Err(Error::internal(
                "BlockDevicesError",
                format!("extra.block_devices of the node is malformed: {saved}"),
            ));
        };
        let new: Vec<Value> = current
            .into_iter()
            .filter(|serial| !previous.contains(serial))
            .collect();
        match new.as_slice() {
            [serial] => Ok(vec![
                json!({"op": "remove", "path": "/extra/block_devices"}),
                json!({"op": "add", "path": "/properties/root_device", "value": {"serial": serial}}),
            ]),
            [] => {
                tracing::warn!("No new devices were found");
                Ok(Vec::new())
            }
            _ => {
                tracing::warn!(
                    "Root device cannot be identified because multiple new devices were found"
                );
                Ok(Vec::new())
            }
        }
    }
}

#[async_trait]
impl ProcessingHook for RaidDevice {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn before_processing(&self, data: &mut IntrospectionData) -> Result<()> {
        if !data.is_truthy("local_gb") {
            tracing::info!("No volume is found on the node. Adding a fake value for \"local_gb\"");
            data.insert("local_gb", Value::from(1));
        }
        Ok(())
    }

    async fn before_update(
        &self,
        data: &mut IntrospectionData,
        node: &mut IronicNode,
    ) -> Result<()> {
        let ops = Self::patch_for(
            Self::serials(data),
            &node.node().properties,
            &node.node().extra,
        )?;
        node.patch(&ops).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::data;

    fn map(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            unreachable!()
        };
        map
    }

    fn inventory(serials: &[&str]) -> IntrospectionData {
        let disks: Vec<Value> = serials
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"name": format!("/dev/sd{i}"), "serial": s}))
            .collect();
        data(json!({"inventory": {"disks": disks}}))
    }

    fn run(d: &IntrospectionData, properties: Value, extra: Value) -> Vec<Value> {
        RaidDevice::patch_for(RaidDevice::serials(d), &map(properties), &map(extra)).unwrap()
    }

    #[tokio::test]
    async fn fakes_missing_local_gb_only() {
        let hook = RaidDevice::new("raid_device");
        let mut d = data(json!({}));
        hook.before_processing(&mut d).await.unwrap();
        assert_eq!(d.get("local_gb"), Some(&json!(1)));
        let mut d = data(json!({"local_gb": 0}));
        hook.before_processing(&mut d).await.unwrap();
        assert_eq!(d.get("local_gb"), Some(&json!(1)));
        let mut d = data(json!({"local_gb": 42}));
        hook.before_processing(&mut d).await.unwrap();
        assert_eq!(d.get("local_gb"), Some(&json!(42)));
    }

    #[test]
    fn names() {
        assert_eq!(
            RaidDevice::new("root_device_hint").name(),
            "root_device_hint"
        );
    }

    #[test]
    fn first_run_saves_serials() {
        assert_eq!(
            run(&inventory(&["foo", "bar"]), json!({}), json!({})),
            vec![
                json!({"op": "add", "path": "/extra/block_devices", "value": {"serials": ["foo", "bar"]}})
            ]
        );
    }

    #[test]
    fn first_run_old_ramdisk() {
        let d = data(json!({"block_devices": {"serials": ["foo", "bar"]}}));
        assert_eq!(
            run(&d, json!({}), json!({})),
            vec![
                json!({"op": "add", "path": "/extra/block_devices", "value": {"serials": ["foo", "bar"]}})
            ]
        );
    }

    #[test]
    fn one_new_serial_becomes_the_root_device() {
        let expected = vec![
            json!({"op": "remove", "path": "/extra/block_devices"}),
            json!({"op": "add", "path": "/properties/root_device", "value": {"serial": "baz"}}),
        ];
        let saved = json!({"block_devices": {"serials": ["foo", "bar"]}});
        assert_eq!(
            run(&inventory(&["foo", "baz"]), json!({}), saved.clone()),
            expected
        );
        let old = data(json!({"block_devices": {"serials": ["foo", "baz"]}}));
        assert_eq!(run(&old, json!({}), saved), expected);
    }

    #[test]
    fn nothing_to_do() {
        let saved = json!({"block_devices": {"serials": ["foo", "bar"]}});
        assert!(
            run(
                &inventory(&["foo", "baz"]),
                json!({"root_device": {"serial": "foo"}}),
                json!({})
            )
            .is_empty()
        );
        assert!(
            run(&inventory(&["foo", "baz", "qux"]), json!({}), saved.clone()).is_empty(),
            "multiple new"
        );
        assert!(
            run(&inventory(&["foo", "bar"]), json!({}), saved.clone()).is_empty(),
            "none new"
        );
        assert!(
            run(&data(json!({})), json!({}), json!({})).is_empty(),
            "no devices"
        );
        assert!(
            run(&inventory(&[""]), json!({}), json!({})).is_empty(),
            "empty serials skipped"
        );
    }

    #[test]
    fn malformed_saved_serials_are_unexpected() {
        let err = RaidDevice::patch_for(
            vec![json!("a")],
            &Map::new(),
            &map(json!({"block_devices": "x"})),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Internal { .. }));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{json_value, mutated_payload};

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    proptest! {
        #[test]
        fn patches_follow_the_saved_serials(
            payload in mutated_payload(),
            properties in json_value(),
            saved in prop_oneof![
                Just(None),
                prop::collection::vec("[A-Z0-9]{1,4}", 0..4).prop_map(|s| Some(json!({"serials": s}))),
                json_value().prop_map(Some),
            ],
        ) {
            let Value::Object(map) = payload else { return Ok(()) };
            let Ok(data) = IntrospectionData::from_payload(map, true) else { return Ok(()) };
            let serials = RaidDevice::serials(&data);
            let extra = saved
                .clone()
                .map(|s| Map::from_iter([("block_devices".to_string(), s)]))
                .unwrap_or_default();
            let properties = object(properties);
            match RaidDevice::patch_for(serials.clone(), &properties, &extra) {
                Ok(ops) if ops.is_empty() => {}
                Ok(ops) if ops.len() == 1 => {
                    prop_assert!(saved.is_none());
                    prop_assert_eq!(&ops[0]["value"]["serials"], &Value::Array(serials));
                }
                Ok(ops) => {
                    prop_assert_eq!(ops.len(), 2);
                    let new = &ops[1]["value"]["serial"];
                    prop_assert!(serials.contains(new));
                    let previous = saved.as_ref().and_then(|s| s["serials"].as_array()).unwrap();
                    prop_assert!(!previous.contains(new));
                }
                // A saved list that is not {"serials": [...]} fails as upstream did.
                Err(Error::Internal { .. }) => {
                    prop_assert!(!saved.as_ref().is_some_and(|s| s["serials"].is_array()));
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
