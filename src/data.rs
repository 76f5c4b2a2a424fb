//! The ramdisk's report, as posted to `/v1/continue`: one JSON object, normalised and
//! type-checked once, then read and extended by the processing hooks.
//!
//! Upstream 2.2.2 (`ironic_inspector/process.py`, `plugins/standard.py`) read the body as a
//! plain dict and never checked it, so a wrong type surfaced as "Unexpected exception"
//! somewhere in a hook. Here [`IntrospectionData::from_payload`] checks every field a hook
//! reads and answers a 400 naming the field instead.
//!
//! Two ramdisk formats arrive here:
//! - the Liberty flat format (`cpus`, `cpu_arch`, `memory_mb`, `local_gb`, `interfaces`,
//!   `ipmi_address`, ...), which passes through unchanged;
//! - the ironic-python-agent format, which sends only `inventory` (plus `root_disk`,
//!   `boot_interface`, `logs`, `error`): the flat fields are derived from it, so the hooks
//!   see one shape. A flat field the ramdisk did send wins over the derived one.
//!
//! Integers (`cpus`, `memory_mb`, `local_gb`, the inventory's counts and sizes) are accepted
//! as JSON integers, as integral JSON numbers (`4.0`) and as strings of digits (`"4"`, what
//! a shell-script ramdisk may send), and are stored as JSON integers: the values patched
//! into Ironic are the same strings upstream produced (`"4"`). Disk sizes must not be
//! negative. `null` is accepted for every field and means "not sent", as upstream's
//! `dict.get` did.
//!
//! The Python semantics upstream's hooks and messages depend on (truth value, `repr`, `==`) are
//! in [`crate::py`].

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::py;

/// Bytes in a GiB (upstream's `units.Gi`).
pub const GIB: u64 = 1 << 30;

/// The BMC address the agent reports for a node without a BMC.
const NO_BMC_ADDRESS: &str = "0.0.0.0";

/// Longest excerpt of an offending value quoted in an error message.
const MAX_QUOTED: usize = 80;

/// The ramdisk's report. `Debug` shows the keys only: the payload carries logs and may
/// carry credentials, and must never reach the logs.
#[derive(Clone, PartialEq)]
pub struct IntrospectionData(Map<String, Value>);

impl fmt::Debug for IntrospectionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionData")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl IntrospectionData {
    /// Checks and normalises a payload (see the module doc).
    ///
    /// `disk_partitioning_spacing` is `[processing] disk_partitioning_spacing`, used when
    /// `local_gb` is derived from the agent's `root_disk`.
    ///
    /// # Errors
    /// [`Error::BadRequest`] `Invalid value for "<field>": expected <what>, got <value>`
    /// for the first field of the wrong type; nested fields are named by their path
    /// (`inventory.cpu.count`, `interfaces.eth0.mac`, `inventory.disks[1].size`).
    pub fn from_payload(
        raw: Map<String, Value>,
        disk_partitioning_spacing: bool,
    ) -> Result<IntrospectionData> {
        let mut map = raw;
        check_flat_fields(&mut map)?;
        if let Some(inventory) = map.get_mut("inventory") {
            check_inventory(inventory)?;
        }
        if map.get("inventory").is_some_and(Value::is_object) {
            derive_from_inventory(&mut map, disk_partitioning_spacing);
        }
        Ok(IntrospectionData(map))
    }

    /// Wraps a map as is, without checks or derivation: for data that was checked before
    /// (stored data) and for tests.
    pub fn from_map_unchecked(map: Map<String, Value>) -> IntrospectionData {
        IntrospectionData(map)
    }

    /// The BMC address the ramdisk reported (`ipmi_address`), when it is a non-empty
    /// string (upstream's lookup ignored falsy values).
    pub fn ipmi_address(&self) -> Option<&str> {
        self.get_str("ipmi_address").filter(|s| !s.is_empty())
    }

    /// The `macs` list (set by `validate_interfaces`, or sent by an old ramdisk), as
    /// written; entries that are not strings are skipped.
    pub fn macs(&self) -> Vec<String> {
        match self.0.get("macs") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A top-level field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A top-level field when it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// Whether a top-level field is present and truthy in Python's sense (see [`py::truthy`]).
    pub fn is_truthy(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(py::truthy)
    }

    /// Sets a top-level field, replacing any previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.0.insert(key.into(), value);
    }

    /// Removes a top-level field and answers its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// The whole object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The whole object, as JSON (what is stored and what the rules read).
    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// `local_gb` for a root disk of `size` bytes: whole GiB, less one GiB for partitioning when
/// `disk_partitioning_spacing` is set. A disk under 1 GiB gives 0 (upstream gave -1, which
/// it then patched into Ironic); 0 makes the scheduler report `local_gb` as missing.
pub fn local_gb_from_size(size: u64, disk_partitioning_spacing: bool) -> u64 {
    let gib = size / GIB;
    if disk_partitioning_spacing {
        gib.saturating_sub(1)
    } else {
        gib
    }
}

/// The 400 for a field of the wrong type.
fn invalid(field: &str, expected: &str, got: &Value) -> Error {
    let text = got.to_string();
    let quoted = if text.chars().count() > MAX_QUOTED {
        let mut short: String = text.chars().take(MAX_QUOTED).collect();
        short.push_str("...");
        short
    } else {
        text
    };
    Error::BadRequest(format!(
        "Invalid value for \"{field}\": expected {expected}, got {quoted}"
    ))
}

/// An integer in one of the accepted forms (see the module doc), as a JSON integer.
fn as_integer(value: &Value) -> Option<Value> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(value.clone()),
        Value::Number(n) => {
            let f = n.as_f64()?;
            // Integral and within i64: the cast is exact.
            (f.fract() == 0.0 && f.abs() < 9.0e15).then(|| Value::from(f as i64))
        }
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse::<i64>()
                .map(Value::from)
                .ok()
                .or_else(|| s.parse::<u64>().map(Value::from).ok())
        }
        _ => None,
    }
}

/// Checks `map[key]` is an integer (or null or absent) and stores it as a JSON integer.
fn normalise_int(map: &mut Map<String, Value>, key: &str, path: &str) -> Result<()> {
    match map.get_mut(key) {
        None | Some(Value::Null) => Ok(()),
        Some(value) => match as_integer(value) {
            Some(normalised) => {
                *value = normalised;
                Ok(())
            }
            None => Err(invalid(path, "an integer", value)),
        },
    }
}

/// Checks `map[key]` is a size in bytes: a non-negative integer (or null or absent).
fn normalise_size(map: &mut Map<String, Value>, key: &str, path: &str) -> Result<()> {
    normalise_int(map, key, path)?;
    match map.get(key) {
        Some(size) if size.as_i64().is_some_and(|n| n < 0) => {
            Err(invalid(path, "a non-negative integer", size))
        }
        _ => Ok(()),
    }
}

/// Checks `map[key]` is a string (or null or absent).
fn check_str(map: &Map<String, Value>, key: &str, path: &str) -> Result<()> {
    match map.get(key) {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(other) => Err(invalid(path, "a string", other)),
    }
}

/// Checks `map[key]` is a list of strings (or null or absent).
fn check_str_list(map: &Map<String, Value>, key: &str, path: &str) -> Result<()> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(other) => Err(invalid(path, "a list of strings", other)),
    }
}

/// `map[key]` as an object to check further; `Ok(None)` when null or absent.
fn object_field<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a mut Map<String, Value>>> {
    match map.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(other) => Err(invalid(path, "an object", other)),
    }
}

/// `map[key]` as a list of objects to check further; `Ok(None)` when null or absent.
fn object_list_field<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<Vec<&'a mut Map<String, Value>>>> {
    match map.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            let mut objects = Vec::with_capacity(items.len());
            for (i, item) in items.iter_mut().enumerate() {
                match item {
                    Value::Object(inner) => objects.push(inner),
                    other => return Err(invalid(&format!("{path}[{i}]"), "an object", other)),
                }
            }
            Ok(Some(objects))
        }
        Some(other) => Err(invalid(path, "a list of objects", other)),
    }
}

/// The top-level fields the hooks and the lookup read.
fn check_flat_fields(map: &mut Map<String, Value>) -> Result<()> {
    for key in ["cpus", "memory_mb", "local_gb"] {
        normalise_int(map, key, key)?;
    }
    for key in [
        "cpu_arch",
        "ipmi_address",
        "boot_interface",
        "logs",
        "error",
    ] {
        check_str(map, key, key)?;
    }
    check_str_list(map, "macs", "macs")?;
    if let Some(interfaces) = object_field(map, "interfaces", "interfaces")? {
        for (name, iface) in interfaces.iter_mut() {
            let path = format!("interfaces.{name}");
            let Value::Object(iface) = iface else {
                return Err(invalid(&path, "an object", iface));
            };
            check_str(iface, "mac", &format!("{path}.mac"))?;
            check_str(iface, "ip", &format!("{path}.ip"))?;
        }
    }
    if let Some(root_disk) = object_field(map, "root_disk", "root_disk")? {
        normalise_size(root_disk, "size", "root_disk.size")?;
        // Upstream read `size` of any non-empty root disk.
        if !root_disk.is_empty() && !root_disk.get("size").is_some_and(Value::is_number) {
            let got = Value::Object(root_disk.clone());
            return Err(invalid(
                "root_disk",
                "an object with an integer \"size\"",
                &got,
            ));
        }
    }
    if let Some(block_devices) = object_field(map, "block_devices", "block_devices")? {
        check_str_list(block_devices, "serials", "block_devices.serials")?;
    }
    match map.get("data") {
        None | Some(Value::Null | Value::Array(_)) => {}
        Some(other) => return Err(invalid("data", "a list", other)),
    }
    match map.get("inventory") {
        None | Some(Value::Null | Value::Object(_)) => Ok(()),
        Some(other) => Err(invalid("inventory", "an object", other)),
    }
}

/// The parts of the agent's `inventory` that are derived from or read by hooks.
fn check_inventory(inventory: &mut Value) -> Result<()> {
    let Value::Object(inventory) = inventory else {
        return Ok(());
    };
    if let Some(cpu) = object_field(inventory, "cpu", "inventory.cpu")? {
        normalise_int(cpu, "count", "inventory.cpu.count")?;
        check_str(cpu, "architecture", "inventory.cpu.architecture")?;
    }
    if let Some(memory) = object_field(inventory, "memory", "inventory.memory")? {
        normalise_int(memory, "physical_mb", "inventory.memory.physical_mb")?;
    }
    if let Some(interfaces) = object_list_field(inventory, "interfaces", "inventory.interfaces")? {
        for (i, iface) in interfaces.into_iter().enumerate() {
            for key in ["name", "mac_address", "ipv4_address"] {
                check_str(iface, key, &format!("inventory.interfaces[{i}].{key}"))?;
            }
        }
    }
    if let Some(disks) = object_list_field(inventory, "disks", "inventory.disks")? {
        for (i, disk) in disks.into_iter().enumerate() {
            normalise_size(disk, "size", &format!("inventory.disks[{i}].size"))?;
            check_str(disk, "serial", &format!("inventory.disks[{i}].serial"))?;
        }
    }
    check_str(inventory, "bmc_address", "inventory.bmc_address")
}

/// Whether a top-level field is missing or null (so a derived value may fill it).
fn absent(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).is_none_or(Value::is_null)
}

/// Fills the flat fields the agent does not send from its (already checked) inventory.
fn derive_from_inventory(map: &mut Map<String, Value>, disk_partitioning_spacing: bool) {
    let Some(Value::Object(inventory)) = map.get("inventory") else {
        return;
    };
    let mut derived: Vec<(&str, Value)> = Vec::new();
    let nested = |outer: &str, inner: &str| {
        inventory
            .get(outer)
            .and_then(|o| o.get(inner))
            .filter(|v| !v.is_null())
            .cloned()
    };
    if let Some(count) = nested("cpu", "count") {
        derived.push(("cpus", count));
    }
    if let Some(arch) = nested("cpu", "architecture") {
        derived.push(("cpu_arch", arch));
    }
    if let Some(memory) = nested("memory", "physical_mb") {
        derived.push(("memory_mb", memory));
    }
    if let Some(size) = map
        .get("root_disk")
        .and_then(|d| d.get("size"))
        .and_then(Value::as_u64)
    {
        let local_gb = local_gb_from_size(size, disk_partitioning_spacing);
        derived.push(("local_gb", Value::from(local_gb)));
    }
    if let Some(Value::Array(list)) = inventory.get("interfaces") {
        let mut interfaces = Map::new();
        for iface in list {
            let Some(name) = iface.get("name").and_then(Value::as_str) else {
                continue;
            };
            let mut flat = Map::new();
            flat.insert(
                "mac".to_string(),
                iface.get("mac_address").cloned().unwrap_or(Value::Null),
            );
            flat.insert(
                "ip".to_string(),
                iface.get("ipv4_address").cloned().unwrap_or(Value::Null),
            );
            interfaces.insert(name.to_string(), Value::Object(flat));
        }
        derived.push(("interfaces", Value::Object(interfaces)));
    }
    if let Some(bmc) = inventory.get("bmc_address").and_then(Value::as_str)
        && !bmc.is_empty()
        && bmc != NO_BMC_ADDRESS
    {
        derived.push(("ipmi_address", Value::from(bmc)));
    }
    for (key, value) in derived {
        if absent(map, key) {
            map.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<IntrospectionData> {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        IntrospectionData::from_payload(map, true)
    }

    fn message(value: Value) -> String {
        match parse(value) {
            Err(Error::BadRequest(msg)) => msg,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    fn ipa_payload() -> Value {
        json!({
            "inventory": {
                "interfaces": [
                    {"name": "eth0", "mac_address": "52:54:00:aa:bb:cc",
                     "ipv4_address": "192.0.2.10", "has_carrier": true},
                    {"name": "eth1", "mac_address": "52:54:00:aa:bb:dd",
                     "ipv4_address": null},
                ],
                "cpu": {"model_name": "QEMU", "count": 4, "architecture": "x86_64"},
                "memory": {"total": 12_884_901_888_u64, "physical_mb": 12288},
                "disks": [{"name": "/dev/sda", "size": 1_073_741_824_000_u64,
                           "serial": "s1", "rotational": true}],
                "bmc_address": "192.0.2.1",
            },
            "root_disk": {"name": "/dev/sda", "size": 1_073_741_824_000_u64},
            "boot_interface": "01-52-54-00-aa-bb-cc",
            "logs": "bG9n",
            "error": null,
        })
    }

    #[test]
    fn flat_payload_passes_through() {
        let payload = json!({
            "cpus": 2, "cpu_arch": "x86_64", "memory_mb": 1024, "local_gb": 20,
            "interfaces": {"em1": {"mac": "11:11:11:11:11:11", "ip": "1.1.1.1"}},
            "ipmi_address": "1.2.3.4", "something": {"else": [1, 2]},
        });
        let data = parse(payload.clone()).unwrap();
        assert_eq!(data.clone().into_value(), payload);
        assert_eq!(data.ipmi_address(), Some("1.2.3.4"));
        assert!(data.macs().is_empty());
    }

    #[test]
    fn agent_payload_gets_the_flat_fields() {
        let data = parse(ipa_payload()).unwrap();
        assert_eq!(data.get("cpus"), Some(&json!(4)));
        assert_eq!(data.get("cpu_arch"), Some(&json!("x86_64")));
        assert_eq!(data.get("memory_mb"), Some(&json!(12288)));
        assert_eq!(
            data.get("local_gb"),
            Some(&json!(999)),
            "1000 GiB less spacing"
        );
        assert_eq!(
            data.get("interfaces"),
            Some(&json!({
                "eth0": {"mac": "52:54:00:aa:bb:cc", "ip": "192.0.2.10"},
                "eth1": {"mac": "52:54:00:aa:bb:dd", "ip": null},
            }))
        );
        assert_eq!(data.ipmi_address(), Some("192.0.2.1"));
        assert_eq!(data.get_str("boot_interface"), Some("01-52-54-00-aa-bb-cc"));
        assert!(data.get("inventory").is_some(), "the inventory is kept");
    }

    #[test]
    fn spacing_off_keeps_every_gib_and_tiny_disks_stay_zero() {
        let Value::Object(map) = ipa_payload() else {
            unreachable!()
        };
        let data = IntrospectionData::from_payload(map, false).unwrap();
        assert_eq!(data.get("local_gb"), Some(&json!(1000)));
        assert_eq!(local_gb_from_size(GIB - 1, true), 0);
        assert_eq!(local_gb_from_size(GIB, true), 0);
        assert_eq!(local_gb_from_size(2 * GIB, true), 1);
        assert_eq!(local_gb_from_size(GIB - 1, false), 0);
    }

    #[test]
    fn flat_fields_win_over_the_inventory() {
        let mut payload = ipa_payload();
        payload["cpus"] = json!(8);
        payload["ipmi_address"] = json!("10.0.0.9");
        payload["interfaces"] = json!({"em9": {"mac": "99:99:99:99:99:99"}});
        payload["local_gb"] = json!(5);
        let data = parse(payload).unwrap();
        assert_eq!(data.get("cpus"), Some(&json!(8)));
        assert_eq!(data.get("memory_mb"), Some(&json!(12288)), "still derived");
        assert_eq!(data.ipmi_address(), Some("10.0.0.9"));
        assert_eq!(data.get("local_gb"), Some(&json!(5)));
        assert_eq!(
            data.get("interfaces"),
            Some(&json!({"em9": {"mac": "99:99:99:99:99:99"}}))
        );
    }

    #[test]
    fn null_flat_fields_are_filled_from_the_inventory() {
        let mut payload = ipa_payload();
        payload["cpus"] = Value::Null;
        let data = parse(payload).unwrap();
        assert_eq!(data.get("cpus"), Some(&json!(4)));
    }

    #[test]
    fn agent_without_bmc_gives_no_ipmi_address() {
        for bmc in [json!("0.0.0.0"), json!(""), Value::Null] {
            let mut payload = ipa_payload();
            payload["inventory"]["bmc_address"] = bmc;
            let data = parse(payload).unwrap();
            assert_eq!(data.ipmi_address(), None);
            assert!(data.get("ipmi_address").is_none());
        }
    }

    #[test]
    fn integers_are_accepted_in_several_forms_and_stored_as_integers() {
        let data = parse(json!({"cpus": "4", "memory_mb": 2048.0, "local_gb": 0})).unwrap();
        assert_eq!(data.get("cpus"), Some(&json!(4)));
        assert_eq!(data.get("memory_mb"), Some(&json!(2048)));
        assert_eq!(data.get("local_gb"), Some(&json!(0)));
        let data = parse(json!({"inventory": {"cpu": {"count": "2"}}})).unwrap();
        assert_eq!(data.get("cpus"), Some(&json!(2)));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            (
                json!({"cpus": "many"}),
                r#"Invalid value for "cpus": expected an integer, got "many""#,
            ),
            (
                json!({"memory_mb": 1.5}),
                r#"Invalid value for "memory_mb": expected an integer, got 1.5"#,
            ),
            (
                json!({"local_gb": true}),
                r#"Invalid value for "local_gb": expected an integer, got true"#,
            ),
            (
                json!({"cpu_arch": 64}),
                r#"Invalid value for "cpu_arch": expected a string, got 64"#,
            ),
            (
                json!({"interfaces": ["eth0"]}),
                r#"Invalid value for "interfaces": expected an object, got ["eth0"]"#,
            ),
            (
                json!({"interfaces": {"eth0": "aa"}}),
                r#"Invalid value for "interfaces.eth0": expected an object, got "aa""#,
            ),
            (
                json!({"interfaces": {"eth0": {"mac": 42}}}),
                r#"Invalid value for "interfaces.eth0.mac": expected a string, got 42"#,
            ),
            (
                json!({"ipmi_address": ["1.2.3.4"]}),
                r#"Invalid value for "ipmi_address": expected a string, got ["1.2.3.4"]"#,
            ),
            (
                json!({"macs": "11:22:33:44:55:66"}),
                r#"Invalid value for "macs": expected a list of strings, got "11:22:33:44:55:66""#,
            ),
            (
                json!({"macs": [1]}),
                r#"Invalid value for "macs": expected a list of strings, got [1]"#,
            ),
            (
                json!({"logs": {"a": 1}}),
                r#"Invalid value for "logs": expected a string, got {"a":1}"#,
            ),
            (
                json!({"error": false}),
                r#"Invalid value for "error": expected a string, got false"#,
            ),
            (
                json!({"inventory": []}),
                r#"Invalid value for "inventory": expected an object, got []"#,
            ),
            (
                json!({"root_disk": {"name": "/dev/sda"}}),
                r#"Invalid value for "root_disk": expected an object with an integer "size", got {"name":"/dev/sda"}"#,
            ),
            (
                json!({"root_disk": {"size": "big"}}),
                r#"Invalid value for "root_disk.size": expected an integer, got "big""#,
            ),
            (
                json!({"block_devices": {"serials": "abc"}}),
                r#"Invalid value for "block_devices.serials": expected a list of strings, got "abc""#,
            ),
            (
                json!({"data": {"a": 1}}),
                r#"Invalid value for "data": expected a list, got {"a":1}"#,
            ),
            (
                json!({"inventory": {"cpu": {"count": "x"}}}),
                r#"Invalid value for "inventory.cpu.count": expected an integer, got "x""#,
            ),
            (
                json!({"inventory": {"memory": {"physical_mb": []}}}),
                r#"Invalid value for "inventory.memory.physical_mb": expected an integer, got []"#,
            ),
            (
                json!({"inventory": {"interfaces": [{"name": "a"}, 5]}}),
                r#"Invalid value for "inventory.interfaces[1]": expected an object, got 5"#,
            ),
            (
                json!({"inventory": {"disks": [{"size": 1}, {"size": -1.5}]}}),
                r#"Invalid value for "inventory.disks[1].size": expected an integer, got -1.5"#,
            ),
            (
                json!({"inventory": {"bmc_address": 1}}),
                r#"Invalid value for "inventory.bmc_address": expected a string, got 1"#,
            ),
            // Found by the property tests: a negative size passed here and made the
            // scheduler fail with "Unexpected exception during processing".
            (
                json!({"root_disk": {"size": -1}}),
                r#"Invalid value for "root_disk.size": expected a non-negative integer, got -1"#,
            ),
            (
                json!({"inventory": {"disks": [{"size": "-1073741824"}]}}),
                r#"Invalid value for "inventory.disks[0].size": expected a non-negative integer, got -1073741824"#,
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(message(payload), expected);
        }
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let msg = message(json!({"cpus": "x".repeat(500)}));
        assert!(msg.ends_with("..."), "{msg}");
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn nulls_and_empty_objects_are_accepted() {
        let data = parse(json!({
            "cpus": null, "interfaces": null, "root_disk": {}, "inventory": null,
            "macs": null, "data": null, "block_devices": {},
        }))
        .unwrap();
        assert!(!data.is_truthy("cpus"));
        assert!(data.macs().is_empty());
    }

    #[test]
    fn debug_shows_keys_only() {
        let data = parse(json!({"logs": "c2VjcmV0", "ipmi_password": "hunter2"})).unwrap();
        let shown = format!("{data:?}");
        assert!(shown.contains("ipmi_password"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }

    #[test]
    fn accessors_and_mutation() {
        let mut data =
            parse(json!({"macs": ["AA:bb:cc:dd:ee:ff", "x"], "ipmi_address": ""})).unwrap();
        assert_eq!(data.macs(), vec!["AA:bb:cc:dd:ee:ff", "x"]);
        assert_eq!(data.ipmi_address(), None, "empty is no address");
        data.insert("local_gb", json!(1));
        assert_eq!(data.remove("local_gb"), Some(json!(1)));
        assert_eq!(data.remove("local_gb"), None);
        assert_eq!(data.as_map().len(), 2);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{json_value, mutated_payload, payload_fixtures, text};

    const INT_FIELDS: [&str; 3] = ["cpus", "memory_mb", "local_gb"];

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => Map::from_iter([("data".to_string(), other)]),
        }
    }

    /// `kept` is `sent`, except that integers sent in another form (`"4"`, `4.0`) are
    /// integers now.
    fn same_but_integers(kept: &Value, sent: &Value) -> bool {
        match (kept, sent) {
            (Value::Object(k), Value::Object(s)) => {
                k.len() == s.len()
                    && k.iter()
                        .all(|(key, v)| s.get(key).is_some_and(|o| same_but_integers(v, o)))
            }
            (Value::Array(k), Value::Array(s)) => {
                k.len() == s.len() && k.iter().zip(s).all(|(k, s)| same_but_integers(k, s))
            }
            (Value::Number(_), sent) if kept != sent => as_integer(sent).as_ref() == Some(kept),
            _ => kept == sent,
        }
    }

    /// Checks what holds for every accepted payload and every refusal.
    fn check(input: Map<String, Value>, spacing: bool) -> std::result::Result<(), TestCaseError> {
        match IntrospectionData::from_payload(input.clone(), spacing) {
            Ok(data) => {
                // Normalising again changes nothing.
                let again = IntrospectionData::from_payload(data.as_map().clone(), spacing);
                prop_assert_eq!(
                    again.as_ref().ok(),
                    Some(&data),
                    "{:?}",
                    again.as_ref().err()
                );
                // What the ramdisk sent is kept; integers may only change form.
                for (key, sent) in &input {
                    if sent.is_null() {
                        continue;
                    }
                    let kept = data.get(key).unwrap();
                    if INT_FIELDS.contains(&key.as_str()) {
                        prop_assert!(kept.is_i64() || kept.is_u64(), "{key}: {kept}");
                        prop_assert!(py::eq(kept, &as_integer(sent).unwrap()));
                    } else {
                        prop_assert!(same_but_integers(kept, sent), "{key}: {kept} from {sent}");
                    }
                }
                for key in INT_FIELDS {
                    let value = data.get(key).unwrap_or(&Value::Null);
                    prop_assert!(
                        value.is_null() || value.is_i64() || value.is_u64(),
                        "{key}: {value}"
                    );
                }
                if let Some(address) = data.ipmi_address() {
                    prop_assert!(!address.is_empty());
                }
            }
            Err(Error::BadRequest(message)) => {
                prop_assert!(message.starts_with("Invalid value for \""), "{message}");
                prop_assert!(message.contains(": expected "), "{message}");
            }
            Err(other) => prop_assert!(false, "not a 400: {other:?}"),
        }
        Ok(())
    }

    /// An integer and the forms a ramdisk may send it in.
    fn integer_forms() -> impl Strategy<Value = (Value, Vec<Value>)> {
        prop_oneof![
            any::<i64>().prop_map(|n| {
                let mut forms = vec![json!(n), json!(n.to_string())];
                if n.unsigned_abs() < 9_000_000_000_000_000 {
                    forms.push(json!(n as f64));
                }
                (json!(n), forms)
            }),
            (i64::MAX as u64..=u64::MAX)
                .prop_map(|n| (json!(n), vec![json!(n), json!(n.to_string())])),
        ]
    }

    proptest! {
        #[test]
        fn mutated_fixtures_are_normalised_or_refused(payload in mutated_payload(), spacing in any::<bool>()) {
            check(object(payload), spacing)?;
        }

        #[test]
        fn arbitrary_objects_are_normalised_or_refused(payload in json_value(), spacing in any::<bool>()) {
            check(object(payload), spacing)?;
        }

        #[test]
        fn known_fields_of_any_type_are_normalised_or_refused(
            values in prop::collection::vec((
                prop::sample::select(vec![
                    "cpus", "memory_mb", "local_gb", "cpu_arch", "ipmi_address", "boot_interface",
                    "logs", "error", "macs", "interfaces", "root_disk", "block_devices", "data",
                    "inventory",
                ]),
                json_value(),
            ), 1..6),
        ) {
            let map: Map<String, Value> =
                values.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            check(map, true)?;
        }

        #[test]
        fn integers_in_every_accepted_form_are_stored_as_integers(
            (expected, forms) in integer_forms(),
            field in prop::sample::select(INT_FIELDS.to_vec()),
        ) {
            for form in forms {
                let data = IntrospectionData::from_payload(object(json!({field: form})), true).unwrap();
                prop_assert_eq!(data.get(field), Some(&expected));
            }
        }

        #[test]
        fn non_integers_are_refused_with_the_field_name(
            value in prop_oneof![
                text().prop_filter("not digits", |s| as_integer(&Value::from(s.as_str())).is_none()).prop_map(Value::from),
                (-1.0e6f64..1.0e6).prop_filter("fraction", |f| f.fract() != 0.0).prop_map(Value::from),
                Just(json!(true)), Just(json!([1])), Just(json!({"a": 1})), Just(json!(1e20)),
            ],
            field in prop::sample::select(INT_FIELDS.to_vec()),
        ) {
            let err = IntrospectionData::from_payload(object(json!({field: value})), true).unwrap_err();
            let message = err.to_string();
            prop_assert!(message.starts_with(&format!("Invalid value for \"{field}\": expected an integer, got ")), "{message}");
            prop_assert!(message.chars().count() < 200, "{message}");
        }

        #[test]
        fn the_inventory_fills_only_what_the_ramdisk_left_out(
            count in 1u64..1024, memory in 1u64..1 << 40, size in 0u64..1 << 50,
            flat in prop::collection::vec(prop::sample::select(vec!["cpus", "memory_mb", "local_gb", "cpu_arch", "ipmi_address"]), 0..5),
            spacing in any::<bool>(),
        ) {
            let mut payload = payload_fixtures()[0].clone();
            payload["inventory"]["cpu"]["count"] = json!(count);
            payload["inventory"]["memory"]["physical_mb"] = json!(memory);
            payload["root_disk"]["size"] = json!(size);
            let flat_value = |key: &str| if INT_FIELDS.contains(&key) { json!(7) } else { json!("flat") };
            for key in &flat {
                payload[*key] = flat_value(key);
            }
            let data = IntrospectionData::from_payload(object(payload), spacing).unwrap();
            let derived = [
                ("cpus", json!(count)),
                ("memory_mb", json!(memory)),
                ("local_gb", json!(local_gb_from_size(size, spacing))),
                ("cpu_arch", json!("x86_64")),
                ("ipmi_address", json!("192.0.2.100")),
            ];
            for (key, value) in derived {
                let expected = if flat.contains(&key) { flat_value(key) } else { value };
                prop_assert_eq!(data.get(key), Some(&expected), "{}", key);
            }
        }
    }
}
