//! `extra_hardware`: keeps the ramdisk's extra hardware report (`data`, eDeploy's
//! hardware-detection lists) in Swift and hands rules a nested form of it.
//!
//! Ports `ExtraHardwareHook` of `ironic_inspector/plugins/extra_hardware.py`: `data` is
//! stored as JSON in the object `extra_hardware-<uuid>`; when every item is a 4-item list
//! `[a, b, c, d]` the data gets `extra = {a: {b: {c: d}}}` (with `d` as an integer when it
//! reads as one); `data` is removed and the node's `extra.hardware_swift_object` names the
//! object. Swift failures fail processing with Swift's message (a 400).

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::ProcessingHook;
use crate::data::IntrospectionData;
use crate::error::{Error, Result};
use crate::ironic_node::IronicNode;
use crate::py;
use crate::swift::{EXTRA_HARDWARE_PREFIX, SwiftClient, object_name};

/// Items of an eDeploy report have this many elements.
const EDEPLOY_ITEM_SIZE: usize = 4;

/// The `extra_hardware` hook.
#[derive(Clone, Debug)]
pub struct ExtraHardware {
    /// Where the data goes; `None` when Swift is not configured.
    swift: Option<SwiftClient>,
}

impl ExtraHardware {
    /// The hook storing through `swift`.
    pub fn new(swift: Option<SwiftClient>) -> ExtraHardware {
        ExtraHardware { swift }
    }
}

/// Whether `data` is an eDeploy report: every item a list of four.
pub fn is_edeploy_data(data: &[Value]) -> bool {
    data.iter().all(|item| {
        item.as_array()
            .is_some_and(|item| item.len() == EDEPLOY_ITEM_SIZE)
    })
}

/// `[[a, b, c, d], ...]` as `{a: {b: {c: d}}}`; a later item for the same `a, b, c`
/// wins. Keys that are not strings are written as Python's `str()` would.
pub fn convert_edeploy_data(data: &[Value]) -> Map<String, Value> {
    let mut converted = Map::new();
    for item in data {
        let Some([a, b, c, d]) = item
            .as_array()
            .and_then(|i| <&[Value; 4]>::try_from(i.as_slice()).ok())
        else {
            continue;
        };
        let level_a = converted
            .entry(py::to_str(a))
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(level_a) = level_a else {
            continue;
        };
        let level_b = level_a
            .entry(py::to_str(b))
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(level_b) = level_b else {
            continue;
        };
        level_b.insert(py::to_str(c), python_int(d).unwrap_or_else(|| d.clone()));
    }
    converted
}

/// Python's `int(value)` where it succeeds: integers, floats truncated, booleans, and
/// strings holding a (signed, space-padded) decimal integer. `None` where Python raised
/// (upstream then kept the value as is; for `null`, lists and objects upstream failed, the
/// port keeps those as is too).
pub fn python_int(value: &Value) -> Option<Value> {
    let int = py::int(value).ok()?;
    i64::try_from(int)
        .map(Value::from)
        .or_else(|_| u64::try_from(int).map(Value::from))
        .ok()
}

#[async_trait]
impl ProcessingHook for ExtraHardware {
    fn name(&self) -> &'static str {
        "extra_hardware"
    }

    async fn before_update(
        &self,
        data: &mut IntrospectionData,
        node: &mut IronicNode,
    ) -> Result<()> {
        let items = match data.get("data") {
            None | Some(Value::Null) => {
                tracing::warn!(node.uuid = %node.uuid, "No extra hardware information was received from the ramdisk");
                return Ok(());
            }
            Some(Value::Array(items)) => items.clone(),
            Some(_) => {
                return Err(Error::internal("ExtraHardwareError", "data is not a list"));
            }
        };
        let name = object_name(EXTRA_HARDWARE_PREFIX, &node.uuid);
        let Some(swift) = &self.swift else {
            return Err(Error::BadRequest(format!(
                "Cannot store object {name}: Swift is not configured"
            )));
        };
        let body =
            serde_json::to_vec(&items).map_err(|err| Error::internal("ExtraHardwareError", err))?;
        swift.store_object(&name, body).await?;

        if is_edeploy_data(&items) {
            tracing::debug!(node.uuid = %node.uuid, "Extra hardware data is in eDeploy format, converting to usable format");
            data.insert("extra", Value::Object(convert_edeploy_data(&items)));
        } else {
            tracing::warn!(
                node.uuid = %node.uuid,
                "Extra hardware data was not in a recognised format (eDeploy), and will not \
                 be forwarded to introspection rules"
            );
        }
        data.remove("data");
        node.patch(&[json!({"op": "add", "path": "/extra/hardware_swift_object", "value": name})])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(value: Value) -> Vec<Value> {
        let Value::Array(items) = value else {
            unreachable!()
        };
        items
    }

    #[test]
    fn edeploy_data_is_nested_with_integers() {
        let data = items(json!([
            ["memory", "total", "size", "4294967296"],
            ["cpu", "physical", "number", "1"],
            ["cpu", "logical", "number", "1"],
            ["cpu", "logical", "vendor", "GenuineIntel"],
            ["disk", "sda", "size", 10],
        ]));
        assert!(is_edeploy_data(&data));
        assert_eq!(
            Value::Object(convert_edeploy_data(&data)),
            json!({
                "memory": {"total": {"size": 4_294_967_296_u64}},
                "cpu": {"physical": {"number": 1}, "logical": {"number": 1, "vendor": "GenuineIntel"}},
                "disk": {"sda": {"size": 10}},
            })
        );
    }

    /// 2.2.6's fix: a value `int()` cannot take (null, a list, an object, a word) is kept
    /// as it was instead of failing the hook.
    #[test]
    fn values_that_are_not_integers_are_kept() {
        let data = items(json!([
            ["disk", "sdb", "vendor", null],
            ["disk", "sdb", "model", "Ultrastar 7K4000"],
            ["nic", "eth0", "flags", ["up", "broadcast"]],
            ["nic", "eth0", "speed", {"mbps": 1000}],
            ["disk", "sdb", "size", "2000"],
        ]));
        assert!(is_edeploy_data(&data));
        assert_eq!(
            Value::Object(convert_edeploy_data(&data)),
            json!({
                "disk": {"sdb": {"vendor": null, "model": "Ultrastar 7K4000", "size": 2000}},
                "nic": {"eth0": {"flags": ["up", "broadcast"], "speed": {"mbps": 1000}}},
            })
        );
    }

    #[test]
    fn non_edeploy_data() {
        let data = items(json!([["memory", "total", "size", "1"], {"interface": "eth1"}]));
        assert!(!is_edeploy_data(&data));
        assert!(!is_edeploy_data(&items(json!([["a", "b", "c"]]))));
        assert!(is_edeploy_data(&[]), "vacuously, as Python's all()");
    }

    #[test]
    fn python_int_semantics() {
        assert_eq!(python_int(&json!(" 42 ")), Some(json!(42)));
        assert_eq!(python_int(&json!("-7")), Some(json!(-7)));
        assert_eq!(python_int(&json!("+7")), Some(json!(7)));
        assert_eq!(python_int(&json!("4.5")), None);
        assert_eq!(python_int(&json!("0x10")), None);
        assert_eq!(python_int(&json!("")), None);
        assert_eq!(python_int(&json!(4.9)), Some(json!(4)));
        assert_eq!(python_int(&json!(true)), Some(json!(1)));
        assert_eq!(python_int(&Value::Null), None);
        assert_eq!(
            python_int(&json!("18446744073709551615")),
            Some(json!(u64::MAX))
        );
    }

    #[test]
    fn non_string_keys_read_as_python_str() {
        let data = items(json!([[1, true, null, "x"]]));
        assert_eq!(
            Value::Object(convert_edeploy_data(&data)),
            json!({"1": {"True": {"None": "x"}}})
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{json_leaf, json_value, text};

    fn edeploy_item() -> impl Strategy<Value = Value> {
        let part = prop_oneof![3 => "[a-z]{1,3}".prop_map(Value::from), 1 => json_leaf()];
        (part.clone(), part.clone(), part, json_leaf()).prop_map(|(a, b, c, d)| json!([a, b, c, d]))
    }

    proptest! {
        #[test]
        fn edeploy_items_nest_and_the_last_one_wins(items in prop::collection::vec(edeploy_item(), 0..12)) {
            prop_assert!(is_edeploy_data(&items));
            let converted = convert_edeploy_data(&items);
            for item in &items {
                let [a, b, c, _] = item.as_array().unwrap().as_slice() else { unreachable!() };
                let (a, b, c) = (py::to_str(a), py::to_str(b), py::to_str(c));
                let last = items
                    .iter()
                    .rev()
                    .find(|i| (py::to_str(&i[0]), py::to_str(&i[1]), py::to_str(&i[2])) == (a.clone(), b.clone(), c.clone()))
                    .unwrap();
                let expected = python_int(&last[3]).unwrap_or_else(|| last[3].clone());
                prop_assert_eq!(&converted[&a][&b][&c], &expected);
            }
        }

        #[test]
        fn any_list_converts_without_panicking(items in prop::collection::vec(json_value(), 0..8)) {
            let _ = is_edeploy_data(&items);
            let _ = convert_edeploy_data(&items);
        }

        #[test]
        fn python_int_reads_what_int_reads(n in any::<i64>(), pad in prop::sample::select(vec!["", " ", "\t", " \n"]), plus in any::<bool>()) {
            let sign = if plus && n >= 0 { "+" } else { "" };
            prop_assert_eq!(python_int(&json!(format!("{pad}{sign}{n}{pad}"))), Some(json!(n)));
            prop_assert_eq!(python_int(&json!(n)), Some(json!(n)));
        }

        #[test]
        fn python_int_refuses_other_text(s in text()) {
            let t = s.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            if !plain {
                prop_assert_eq!(python_int(&json!(s)), None);
            }
        }
    }
}
