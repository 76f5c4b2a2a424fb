//! `scheduler`: writes the properties Nova's scheduler needs (`cpus`, `cpu_arch`,
//! `memory_mb`, `local_gb`) into the node.
//!
//! Ports `SchedulerHook` of `ironic_inspector/plugins/standard.py`. Values are patched as
//! strings (`"4"`), as upstream did. Departure: nothing is sent when there is nothing to
//! update.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::ProcessingHook;
use crate::data::{IntrospectionData, local_gb_from_size};
use crate::error::{Error, Result};
use crate::ironic_node::{IronicNode, properties_patch};
use crate::py;

/// The properties written, in upstream's order.
pub const KEYS: [&str; 4] = ["cpus", "cpu_arch", "memory_mb", "local_gb"];

/// The `scheduler` hook.
#[derive(Clone, Debug)]
pub struct Scheduler {
    /// `[processing] overwrite_existing`.
    overwrite_existing: bool,
    /// `[processing] disk_partitioning_spacing`.
    disk_partitioning_spacing: bool,
}

impl Scheduler {
    /// The hook with `[processing] overwrite_existing` and `disk_partitioning_spacing`.
    pub fn new(overwrite_existing: bool, disk_partitioning_spacing: bool) -> Scheduler {
        Scheduler {
            overwrite_existing,
            disk_partitioning_spacing,
        }
    }

    /// The properties to patch, as strings, in the order of [`KEYS`]. Sets `local_gb` in the data from `root_disk`
    /// when there is one.
    ///
    /// # Errors
    /// `The following required parameters are missing: ['cpus', ...]` when any of
    /// [`KEYS`] is missing or falsy.
    pub fn properties(
        &self,
        data: &mut IntrospectionData,
        node_properties: &Map<String, Value>,
    ) -> Result<Vec<(&'static str, Value)>> {
        if let Some(root_disk) = data.get("root_disk").filter(|d| py::truthy(d)) {
            let size = root_disk
                .get("size")
                .and_then(Value::as_u64)
                .ok_or_else(|| Error::internal("RootDiskError", "root_disk has no usable size"))?;
            let local_gb = local_gb_from_size(size, self.disk_partitioning_spacing);
            data.insert("local_gb", Value::from(local_gb));
        }
        let missing: Vec<Value> = KEYS
            .iter()
            .filter(|key| !data.is_truthy(key))
            .map(|key| Value::from(*key))
            .collect();
        if !missing.is_empty() {
            return Err(Error::BadRequest(format!(
                "The following required parameters are missing: {}",
                py::repr(&Value::Array(missing))
            )));
        }
        let shown = |key: &str| data.get(key).map(py::to_str).unwrap_or_default();
        tracing::info!(
            "Discovered data: CPUs: {} {}, memory {} MiB, disk {} GiB",
            shown("cpus"),
            shown("cpu_arch"),
            shown("memory_mb"),
            shown("local_gb")
        );
        Ok(KEYS
            .into_iter()
            .filter(|key| {
                self.overwrite_existing || !node_properties.get(*key).is_some_and(py::truthy)
            })
            .map(|key| (key, Value::String(shown(key))))
            .collect())
    }
}

#[async_trait]
impl ProcessingHook for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    async fn before_update(
        &self,
        data: &mut IntrospectionData,
        node: &mut IronicNode,
    ) -> Result<()> {
        let props = self.properties(data, &node.node().properties)?;
        node.patch(&properties_patch(props)).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::data::GIB;
    use crate::testing::data;

    fn full() -> IntrospectionData {
        data(json!({"local_gb": 20, "memory_mb": 1024, "cpus": 2, "cpu_arch": "x86_64"}))
    }

    fn as_object(props: Vec<(&'static str, Value)>) -> Value {
        Value::Object(props.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn props(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            unreachable!()
        };
        map
    }

    #[test]
    fn every_property_as_a_string() {
        let got = Scheduler::new(true, true)
            .properties(&mut full(), &Map::new())
            .unwrap();
        let order: Vec<&str> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(order, KEYS, "upstream's order");
        assert_eq!(
            as_object(got),
            json!({"cpus": "2", "cpu_arch": "x86_64", "memory_mb": "1024", "local_gb": "20"})
        );
    }

    #[test]
    fn missing_keys_are_listed() {
        for key in KEYS {
            let mut d = full();
            d.remove(key);
            let err = Scheduler::new(true, true)
                .properties(&mut d, &Map::new())
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("The following required parameters are missing: ['{key}']")
            );
        }
        let mut d = data(json!({"cpus": 0, "cpu_arch": "", "memory_mb": 1}));
        let err = Scheduler::new(true, true)
            .properties(&mut d, &Map::new())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "The following required parameters are missing: ['cpus', 'cpu_arch', 'local_gb']"
        );
        assert!(matches!(err, Error::BadRequest(_)));
    }

    #[test]
    fn no_overwrite_patches_only_what_the_node_lacks() {
        let existing =
            props(json!({"memory_mb": "4096", "cpu_arch": "i686", "cpus": "", "local_gb": null}));
        let got = Scheduler::new(false, true)
            .properties(&mut full(), &existing)
            .unwrap();
        assert_eq!(as_object(got), json!({"cpus": "2", "local_gb": "20"}));

        let complete =
            props(json!({"cpus": "1", "cpu_arch": "a", "memory_mb": "1", "local_gb": "1"}));
        let got = Scheduler::new(false, true)
            .properties(&mut full(), &complete)
            .unwrap();
        assert!(got.is_empty());
    }

    /// The `local_gb` that [`full`] data with `root_disk` gets (overwriting), and the data
    /// after the hook.
    fn local_gb_with(root_disk: Value, spacing: bool) -> (Value, IntrospectionData) {
        let mut d = full();
        d.insert("root_disk", root_disk);
        let got = Scheduler::new(true, spacing)
            .properties(&mut d, &Map::new())
            .unwrap();
        (as_object(got)["local_gb"].clone(), d)
    }

    #[test]
    fn root_disk_gives_local_gb_with_and_without_spacing() {
        for (spacing, expected) in [(true, "41"), (false, "42")] {
            let disk = json!({"name": "/dev/sda", "size": 42 * GIB});
            let (got, d) = local_gb_with(disk, spacing);
            assert_eq!(got, json!(expected));
            assert_eq!(
                d.get("local_gb"),
                Some(&json!(expected.parse::<u64>().unwrap()))
            );
        }
    }

    #[test]
    fn functional_root_disk_of_1000_gib() {
        for (spacing, expected) in [(true, "999"), (false, "1000")] {
            let (got, _) = local_gb_with(json!({"size": 1000 * GIB}), spacing);
            assert_eq!(got, json!(expected), "spacing {spacing}");
        }
    }

    #[test]
    fn empty_root_disk_is_ignored() {
        assert_eq!(local_gb_with(json!({}), true).0, json!("20"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{json_value, mutated_payload};

    proptest! {
        #[test]
        fn accepted_payloads_give_string_properties_or_a_400(
            payload in mutated_payload(),
            node in json_value(),
            overwrite in any::<bool>(),
            spacing in any::<bool>(),
        ) {
            let Value::Object(map) = payload else { return Ok(()) };
            let Ok(mut data) = IntrospectionData::from_payload(map, spacing) else { return Ok(()) };
            let node_properties = match node {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            match Scheduler::new(overwrite, spacing).properties(&mut data, &node_properties) {
                Ok(props) => {
                    for (key, value) in props {
                        let expected = py::to_str(data.get(key).unwrap());
                        prop_assert_eq!(value, Value::String(expected));
                    }
                }
                Err(Error::BadRequest(message)) => {
                    prop_assert!(message.starts_with("The following required parameters are missing: ["), "{message}");
                }
                Err(other) => prop_assert!(false, "not a 400: {other:?}"),
            }
        }
    }
}
