//! Generators shared by the property tests, and what the unit tests share (built only for
//! `cargo test`): a configuration read from text for the clients built from it, a ramdisk
//! payload for the hooks, the next datagram on a test socket, and the migrated database the
//! node cache runs on.
//!
//! Two kinds: hostile text ([`text`]: Unicode, NUL and control characters, the separators
//! our parsers split on, long runs) and structure-aware JSON ([`json_value`] for arbitrary
//! documents, [`mutated`] for a known-good document with a few values replaced by wrong
//! types, removed, or joined by extra keys), so the tests reach past the first type check.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Number, Value, json};

/// The configuration `text` (an `inspector.conf`) describes, as the daemon reads it.
pub fn config(text: &str) -> crate::config::Config {
    let mut raw = crate::config::oslo::RawConfig::default();
    raw.merge_str(text, std::path::Path::new("test.conf"))
        .unwrap();
    crate::config::Config::from_raw(&raw).unwrap().0
}

/// The ramdisk payload `value` (a JSON object) as the hooks receive it.
pub fn data(value: Value) -> crate::data::IntrospectionData {
    let Value::Object(map) = value else {
        panic!("a ramdisk payload is a JSON object, not {value}")
    };
    crate::data::IntrospectionData::from_payload(map, true).unwrap()
}

/// The next datagram on `socket` (up to 4 KiB), as text: what a log or notification
/// socket received.
pub fn receive_datagram(socket: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Characters parsers treat specially, plus ones that break naive byte handling.
const SPECIAL: &[char] = &[
    '\0', '\t', '\n', '\r', '\u{b}', '\u{c}', ' ', '\u{a0}', '\u{2028}', '\u{feff}', '$', '{', '}',
    '[', ']', '(', ')', ':', '=', ',', ';', '#', '.', '-', '+', '/', '\\', '\'', '"', '`', '@',
    '?', '%', '*', '&', '|', '0', '9', 'a', 'F', 'é', 'ß', 'İ', 'K', '０', '٣', '😀',
];

/// One character: mostly from [`SPECIAL`], sometimes any `char`.
pub fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(SPECIAL),
        2 => prop::char::range('a', 'z'),
        1 => any::<char>(),
    ]
}

/// Hostile text: short mixes of special characters, arbitrary Unicode, and the odd long run.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(hostile_char(), 0..24).prop_map(|c| c.into_iter().collect()),
        2 => any::<String>(),
        1 => (hostile_char(), 1_000..5_000usize).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// Numbers at the edges: zero, signs, the ends of i64 and u64, fractions, huge floats.
pub fn edge_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![
            json!(0),
            json!(-1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(0.5),
            json!(-0.0),
            json!(4.0),
            json!(1e300),
            json!(-1e300),
            json!(9.007_199_254_740_993e15),
        ]),
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
    ]
}

/// Strings where numbers go, and other text a ramdisk or client might send.
pub fn edge_string() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "4",
            "4.0",
            " 4 ",
            "-1",
            "+1",
            "0x10",
            "1e3",
            "99999999999999999999",
            "NaN",
            "inf",
            "true",
            "null",
            "[]",
            "{}",
            "$",
            "01-52-54-00-00-00-01",
            "52:54:00:00:00:01",
            "192.0.2.1",
            "0.0.0.0",
        ])
        .prop_map(Value::from),
        text().prop_map(Value::from),
    ]
}

/// A JSON scalar of any kind.
pub fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        edge_number(),
        edge_string(),
    ]
}

/// An arbitrary JSON document, nested a few levels.
pub fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object key: usually a plain name, sometimes hostile text.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z_]{1,10}",
        1 => text(),
    ]
}

/// One change to a document, at the node that `at` picks among all its nodes.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Replace the node with another value (wrong type, edge number, hostile string...).
    Replace(Index, Value),
    /// Remove the node from its parent (a key or a list element).
    Remove(Index),
    /// Add a key to an object (or an element to a list); other nodes are replaced.
    Insert(Index, String, Value),
    /// A number becomes its text, a string of digits its number, anything else a string.
    Retype(Index),
    /// Wrap the node in a list, or in an object under `key`.
    Wrap(Index, bool),
}

/// A few mutations.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        3 => (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => any::<Index>().prop_map(Mutation::Remove),
        2 => (any::<Index>(), key(), json_value()).prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
        2 => any::<Index>().prop_map(Mutation::Retype),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(i, b)| Mutation::Wrap(i, b)),
    ];
    prop::collection::vec(one, 1..4)
}

/// `base` with `changes` applied in order (see [`Mutation`]).
pub fn mutate(mut base: Value, changes: &[Mutation]) -> Value {
    for change in changes {
        let paths = node_paths(&base);
        let pick = |at: &Index| paths[at.index(paths.len())].clone();
        match change {
            Mutation::Replace(at, value) => {
                if let Some(node) = node_at(&mut base, &pick(at)) {
                    *node = value.clone();
                }
            }
            Mutation::Remove(at) => {
                let path = pick(at);
                if let Some((last, parent)) = path.split_last()
                    && let Some(parent) = node_at(&mut base, parent)
                {
                    match (parent, last) {
                        (Value::Object(map), Step::Key(key)) => {
                            map.remove(key);
                        }
                        (Value::Array(items), Step::Item(i)) if *i < items.len() => {
                            items.remove(*i);
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Insert(at, key, value) => match node_at(&mut base, &pick(at)) {
                Some(Value::Object(map)) => {
                    map.insert(key.clone(), value.clone());
                }
                Some(Value::Array(items)) => items.push(value.clone()),
                Some(other) => *other = value.clone(),
                None => {}
            },
            Mutation::Retype(at) => {
                if let Some(node) = node_at(&mut base, &pick(at)) {
                    *node = retyped(node);
                }
            }
            Mutation::Wrap(at, as_list) => {
                if let Some(node) = node_at(&mut base, &pick(at)) {
                    let inner = node.take();
                    *node = if *as_list {
                        Value::Array(vec![inner])
                    } else {
                        Value::Object(Map::from_iter([("key".to_string(), inner)]))
                    };
                }
            }
        }
    }
    base
}

fn retyped(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => match s.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::from(s.len()),
        },
        Value::Bool(b) => Value::String(if *b { "True" } else { "False" }.to_string()),
        Value::Null => Value::String("None".to_string()),
        other => Value::String(other.to_string()),
    }
}

/// One step from a node to a child.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Item(usize),
}

/// The path of every node, the root first, in document order.
fn node_paths(value: &Value) -> Vec<Vec<Step>> {
    fn walk(value: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(here.clone());
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    here.push(Step::Key(key.clone()));
                    walk(child, here, out);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    here.push(Step::Item(i));
                    walk(child, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn node_at<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get_mut(key.as_str()),
        Step::Item(i) => node.get_mut(*i),
    })
}

/// A document from `base` with a few mutations (see [`mutate`]).
pub fn mutated(base: Value) -> impl Strategy<Value = Value> {
    mutations().prop_map(move |changes| mutate(base.clone(), &changes))
}

/// The ramdisk payload fixtures of `tests/fixtures`, parsed.
pub fn payload_fixtures() -> Vec<Value> {
    [
        include_str!("../tests/fixtures/ipa-inventory.json"),
        include_str!("../tests/fixtures/ipa-inventory-no-bmc.json"),
        include_str!("../tests/fixtures/liberty-flat.json"),
        include_str!("../tests/fixtures/liberty-error.json"),
        include_str!("../tests/fixtures/liberty-bash-dib.json"),
    ]
    .iter()
    .map(|text| serde_json::from_str(text).unwrap())
    .collect()
}

/// The fields of a ramdisk payload that the hooks read, as JSON pointers.
const PAYLOAD_FIELDS: &[&str] = &[
    "/cpus",
    "/memory_mb",
    "/local_gb",
    "/cpu_arch",
    "/ipmi_address",
    "/boot_interface",
    "/macs",
    "/error",
    "/logs",
    "/data",
    "/interfaces",
    "/interfaces/eth0",
    "/interfaces/eth0/mac",
    "/interfaces/eth1/ip",
    "/root_disk",
    "/root_disk/size",
    "/block_devices/serials",
    "/inventory",
    "/inventory/bmc_address",
    "/inventory/cpu/count",
    "/inventory/cpu/architecture",
    "/inventory/memory/physical_mb",
    "/inventory/interfaces",
    "/inventory/interfaces/0/name",
    "/inventory/interfaces/0/mac_address",
    "/inventory/interfaces/1/ipv4_address",
    "/inventory/disks",
    "/inventory/disks/0/size",
    "/inventory/disks/1/serial",
];

/// Sets the field at `pointer` when its parent exists (an object key or a list index).
fn set_field(doc: &mut Value, pointer: &str, value: Value) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last.to_string(), value);
        }
        Some(Value::Array(items)) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = value;
            }
        }
        _ => {}
    }
}

/// A fixture payload, mutated: known fields set to edge values (wrong types, negative or
/// huge numbers, digits in strings), and random nodes changed as [`mutate`] does.
pub fn mutated_payload() -> impl Strategy<Value = Value> {
    let field_changes = prop::collection::vec(
        (
            prop::sample::select(PAYLOAD_FIELDS),
            prop_oneof![3 => json_leaf(), 1 => json_value()],
        ),
        0..3,
    );
    (
        prop::sample::select(payload_fixtures()),
        field_changes,
        prop::collection::vec(mutations(), 0..2),
    )
        .prop_map(|(mut base, fields, changes)| {
            for (pointer, value) in fields {
                set_field(&mut base, pointer, value);
            }
            mutate(base, &changes.concat())
        })
}

/// Six random bytes as a MAC in colon form, each hex digit in a random case.
pub fn mac() -> impl Strategy<Value = String> {
    (any::<[u8; 6]>(), any::<[bool; 12]>()).prop_map(|(bytes, upper)| {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let digits: Vec<char> = hex
            .chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        digits
            .chunks(2)
            .map(|pair| pair.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// A SQLite file in a temp dir, migrated to the head revision. The dir must outlive the
/// handle.
pub async fn migrated_sqlite() -> (crate::db::Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("inspector.db").display());
    let db = crate::db::Db::connect_url(&url).await.unwrap();
    crate::db::migrate::upgrade(&db, "head", |_| {})
        .await
        .unwrap();
    (db, dir)
}

/// Text that is almost a MAC: one character of a real one replaced or dropped.
pub fn near_mac() -> impl Strategy<Value = String> {
    (mac(), any::<Index>(), hostile_char(), any::<bool>()).prop_map(|(mac, at, c, drop)| {
        let mut chars: Vec<char> = mac.chars().collect();
        let i = at.index(chars.len());
        if drop {
            chars.remove(i);
        } else {
            chars[i] = c;
        }
        chars.into_iter().collect()
    })
}
