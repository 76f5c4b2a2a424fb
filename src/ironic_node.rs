//! The Ironic half of a node under processing: its node document and ports, cached, and the
//! changes hooks and rules make to them.
//!
//! Ports the Ironic part of upstream's `NodeInfo` class in `ironic_inspector/node_cache.py` (`node()`,
//! `ports()`, `create_ports`, `patch`, `patch_port`, `delete_port`, `update_properties`,
//! `update_capabilities`, `get_by_path`, `replace_field`) and the capabilities codec of
//! `ironic_inspector/utils.py` (`capabilities_to_dict`, `dict_to_capabilities`). The
//! database half (upstream's other `NodeInfo` half) is [`crate::node_cache::IntrospectionRecord`].
//!
//! Departures from 2.2.2: an empty patch sends nothing; ports are keyed
//! by [`Mac`], so a ramdisk reporting upper-case MACs matches Ironic's ports; a port
//! Ironic no longer knows is dropped from the cache instead of failing the delete.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::ironic::{IronicClient, IronicError, Node, Port};
use crate::mac::Mac;

/// A node being processed, with its ports, and the client that changes them.
#[derive(Clone, Debug)]
pub struct IronicNode {
    /// The node's UUID.
    pub uuid: String,
    node: Node,
    /// Ports by MAC.
    ports: BTreeMap<Mac, Port>,
    ironic: IronicClient,
    /// While a batch is open ([`IronicNode::begin_batch`]): the node PATCHes held back,
    /// one list per [`IronicNode::patch`] call, already applied to `node`.
    held: Option<Vec<Vec<Value>>>,
}

impl IronicNode {
    /// Reads the node and all its ports from Ironic.
    pub async fn load(ironic: IronicClient, uuid: &str) -> Result<IronicNode, IronicError> {
        let node = ironic.get_node(uuid).await?;
        let ports = ironic.node_ports(uuid).await?;
        Ok(IronicNode::from_parts(ironic, node, ports))
    }

    /// Builds from a node and its ports already read (the UUID is the node's).
    pub fn from_parts(ironic: IronicClient, node: Node, ports: Vec<Port>) -> IronicNode {
        IronicNode {
            uuid: node.uuid.clone(),
            node,
            ports: ports_by_mac(ports),
            ironic,
            held: None,
        }
    }

    /// The cached node document.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The cached ports, by MAC.
    pub fn ports(&self) -> &BTreeMap<Mac, Port> {
        &self.ports
    }

    /// The client used for changes.
    pub fn ironic(&self) -> &IronicClient {
        &self.ironic
    }

    /// `PATCH`es the node with an RFC 6902 list and caches the node Ironic answers. An
    /// empty list sends nothing. In a batch ([`IronicNode::begin_batch`]) the list is applied
    /// to the cached node and held back, when it only adds, replaces or removes object
    /// fields that can be applied here; anything else sends what is held, then the list.
    pub async fn patch(&mut self, ops: &[Value]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        if self.held.is_some() {
            let mut raw = self.node.raw.clone();
            let applied = apply_locally(&mut raw, ops)
                .then(|| Node::try_from(raw).ok())
                .flatten();
            if let (Some(node), Some(held)) = (applied, self.held.as_mut()) {
                tracing::debug!(node.uuid = %self.uuid, patch = ?masked(ops), "node update held back for the batch");
                self.node = node;
                held.push(ops.to_vec());
                return Ok(());
            }
            self.send_held().await?;
        }
        tracing::debug!(node.uuid = %self.uuid, patch = ?masked(ops), "updating node");
        self.node = self.ironic.patch_node(&self.uuid, ops).await?;
        Ok(())
    }

    /// Opens a batch: the node PATCHes that follow are held back and sent as one by
    /// [`IronicNode::end_batch`] (see [`IronicNode::patch`]). Reads of the node see them at
    /// once. Meant for a stretch of work whose only effect on Ironic is node PATCHes (the
    /// introspection rules), so that sending them later changes nothing but the number of
    /// requests.
    pub fn begin_batch(&mut self) {
        self.held.get_or_insert_with(Vec::new);
    }

    /// Closes the batch and sends what it held, as one PATCH, caching Ironic's answer.
    ///
    /// When Ironic refuses the whole (a 4xx answer), the lists are sent again one by one, in
    /// order, as they would have been without the batch: those before the refused one are
    /// applied, and the error is the refused one's, Ironic's own message for it.
    ///
    /// # Errors
    /// Ironic failures. Temporary ones (Ironic away, 5xx) come as they are: nothing of the
    /// batch was applied, and the whole work can be done again.
    pub async fn end_batch(&mut self) -> Result<()> {
        let outcome = self.send_held().await;
        self.held = None;
        outcome
    }

    /// Sends what the batch holds (the batch stays open).
    async fn send_held(&mut self) -> Result<()> {
        let held = match self.held.as_mut() {
            Some(held) if !held.is_empty() => std::mem::take(held),
            _ => return Ok(()),
        };
        let all: Vec<Value> = held.iter().flatten().cloned().collect();
        tracing::debug!(node.uuid = %self.uuid, patch = ?masked(&all), patches = held.len(), "updating node");
        match self.ironic.patch_node(&self.uuid, &all).await {
            Ok(node) => {
                self.node = node;
                Ok(())
            }
            Err(err) if held.len() == 1 || err.is_ironic_failure() => Err(err.into()),
            Err(err) => {
                tracing::info!(node.uuid = %self.uuid, error = %err, "Ironic refused the batched node update; sending its parts one by one");
                for ops in &held {
                    self.node = self.ironic.patch_node(&self.uuid, ops).await?;
                }
                Ok(())
            }
        }
    }

    /// Sets node properties, one `add /properties/<key>` per entry, in one PATCH.
    pub async fn update_properties(&mut self, props: Map<String, Value>) -> Result<()> {
        self.patch(&properties_patch(props)).await
    }

    /// Merges `caps` into the node's `properties.capabilities` string: existing keys keep
    /// their place, new keys are appended in the given order, `None` removes a key. Always
    /// patches, even when nothing changed (as upstream).
    pub async fn update_capabilities(&mut self, caps: &[(String, Option<String>)]) -> Result<()> {
        let existing = match self.node.properties.get("capabilities") {
            Some(Value::String(text)) => capabilities_to_map(text),
            None | Some(Value::Null) => Vec::new(),
            Some(other) => {
                tracing::warn!(
                    node.uuid = %self.uuid,
                    capabilities = %other,
                    "node capabilities are not a string, replacing them"
                );
                Vec::new()
            }
        };
        let merged = merge_capabilities(existing, caps);
        let mut props = Map::new();
        props.insert(
            "capabilities".to_string(),
            Value::String(map_to_capabilities(&merged)),
        );
        self.update_properties(props).await
    }

    /// Registers a port for each MAC the node does not have yet. A MAC already known is
    /// skipped with a warning; so is one Ironic answers 409 for (another node may own it),
    /// after which the ports are read again. Other failures stop and are returned.
    ///
    /// The MACs are the ramdisk's text, sent to Ironic as written: a text that is not a MAC
    /// is sent too, and Ironic's refusal (400) stops processing with Ironic's message.
    pub async fn create_ports(&mut self, macs: &[String]) -> Result<()> {
        let mut stale = false;
        for mac in macs {
            let known = Mac::parse(mac).is_ok_and(|key| self.ports.contains_key(&key));
            if known {
                tracing::warn!(node.uuid = %self.uuid, mac = %mac, "Port {mac} already exists for node {}, skipping", self.uuid);
                continue;
            }
            match self.ironic.create_port(&self.uuid, mac).await {
                Ok(port) => {
                    tracing::info!(node.uuid = %self.uuid, mac = %mac, port.uuid = %port.uuid, "port created");
                    if let Some(key) = port_key(&port) {
                        self.ports.insert(key, port);
                    }
                }
                Err(IronicError::AlreadyExists(message) | IronicError::Conflict(message)) => {
                    tracing::warn!(node.uuid = %self.uuid, mac = %mac, error = %message, "Port {mac} already exists for node {}, skipping", self.uuid);
                    stale = true;
                }
                Err(other) => return Err(other.into()),
            }
        }
        if stale {
            // Ironic did not say which port exists: read them again.
            self.reload_ports().await?;
        }
        Ok(())
    }

    /// Deletes the port with this MAC. A port Ironic no longer knows counts as deleted.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the node has no such port in the cache; Ironic failures.
    pub async fn delete_port(&mut self, mac: &Mac) -> Result<()> {
        let port_uuid = self.port_uuid(mac)?;
        match self.ironic.delete_port(&port_uuid).await {
            Ok(()) => {}
            Err(IronicError::NotFound(message)) => {
                tracing::warn!(node.uuid = %self.uuid, port.uuid = %port_uuid, error = %message, "port was already deleted");
            }
            Err(other) => return Err(other.into()),
        }
        self.ports.remove(mac);
        Ok(())
    }

    /// `PATCH`es the port with this MAC and caches Ironic's answer. An empty list sends
    /// nothing.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the node has no such port in the cache; Ironic failures.
    pub async fn patch_port(&mut self, mac: &Mac, ops: &[Value]) -> Result<()> {
        let port_uuid = self.port_uuid(mac)?;
        if ops.is_empty() {
            return Ok(());
        }
        tracing::debug!(node.uuid = %self.uuid, port.uuid = %port_uuid, patch = ?ops, "updating port");
        let port = self.ironic.patch_port(&port_uuid, ops).await?;
        self.ports.insert(*mac, port);
        Ok(())
    }

    /// A field of the node by Ironic-style path, as upstream read it: slashes around the
    /// path are ignored; `/a` is the top-level field `a`; `/a/b/c` is the key `b/c` of
    /// the object `a` (the rest is one key, not a deeper path). `None` when absent; a
    /// field set to `null` is `Some(Value::Null)`.
    pub fn get_by_path(&self, path: &str) -> Option<Value> {
        get_by_path(&self.node.raw, path)
    }

    /// Replaces a field with `f(old value)`, patching only when the value changes: `replace`
    /// when the field exists, else `add` of `f(default)`.
    ///
    /// # Errors
    /// [`Error::BadRequest`] when the field is absent and there is no default; Ironic
    /// failures.
    pub async fn replace_field(
        &mut self,
        path: &str,
        f: impl FnOnce(Value) -> Value,
        default: Option<Value>,
    ) -> Result<()> {
        let (op, old) = match (self.get_by_path(path), default) {
            (Some(value), _) => ("replace", value),
            (None, Some(default)) => ("add", default),
            (None, None) => {
                return Err(Error::BadRequest(format!(
                    "Field {path} was not found on node {}",
                    self.uuid
                )));
            }
        };
        let new = f(old.clone());
        if new == old {
            return Ok(());
        }
        self.patch(&[json!({"op": op, "path": path, "value": new})])
            .await
    }

    /// The UUID of the cached port with this MAC.
    fn port_uuid(&self, key: &Mac) -> Result<String> {
        self.ports
            .get(key)
            .map(|port| port.uuid.clone())
            .ok_or_else(|| {
                Error::NotFound(format!("Port {key} was not found for node {}", self.uuid))
            })
    }

    async fn reload_ports(&mut self) -> Result<(), IronicError> {
        self.ports = ports_by_mac(self.ironic.node_ports(&self.uuid).await?);
        Ok(())
    }
}

/// Applies an RFC 6902 list to a node document the way Ironic would, for the operations
/// that need no more than that: `add`, `replace` and `remove` of object members whose
/// parents exist (RFC 6901 paths, `~1` and `~0` unescaped). False, with `doc` in any
/// state, for anything else (another operation, an array on the way, a missing parent or
/// field): the caller then lets Ironic apply it.
fn apply_locally(doc: &mut Value, ops: &[Value]) -> bool {
    ops.iter().all(|op| apply_one(doc, op).is_some())
}

fn apply_one(doc: &mut Value, op: &Value) -> Option<()> {
    let path = op.get("path")?.as_str()?;
    let mut keys: Vec<String> = path
        .strip_prefix('/')?
        .split('/')
        .map(|key| key.replace("~1", "/").replace("~0", "~"))
        .collect();
    let last = keys.pop()?;
    let mut parent = doc;
    for key in &keys {
        parent = parent.as_object_mut()?.get_mut(key)?;
    }
    let parent = parent.as_object_mut()?;
    match op.get("op")?.as_str()? {
        "add" => {
            parent.insert(last, op.get("value")?.clone());
        }
        "replace" => {
            let value = op.get("value")?.clone();
            *parent.get_mut(&last)? = value;
        }
        "remove" => {
            parent.remove(&last)?;
        }
        _ => return None,
    }
    Some(())
}

fn ports_by_mac(ports: Vec<Port>) -> BTreeMap<Mac, Port> {
    ports
        .into_iter()
        .filter_map(|port| Some((port_key(&port)?, port)))
        .collect()
}

/// The MAC a port is cached under. Ironic accepts only MACs as port addresses; a port
/// whose address is not one is left out of the cache, with a warning.
fn port_key(port: &Port) -> Option<Mac> {
    let key = port.mac();
    if key.is_none() {
        tracing::warn!(port.uuid = %port.uuid, address = %port.address, "the port's address is not a MAC; ignoring the port");
    }
    key
}

/// The PATCH setting these properties (`add /properties/<key>` each), in the given order.
pub fn properties_patch<K: fmt::Display>(
    props: impl IntoIterator<Item = (K, Value)>,
) -> Vec<Value> {
    props
        .into_iter()
        .map(|(key, value)| json!({"op": "add", "path": format!("/properties/{key}"), "value": value}))
        .collect()
}

/// [`IronicNode::get_by_path`] on a node document.
pub fn get_by_path(node: &Value, path: &str) -> Option<Value> {
    let path = path.trim_matches('/');
    if path.is_empty() {
        return None;
    }
    match path.split_once('/') {
        Some((field, key)) => node.get(field)?.as_object()?.get(key).cloned(),
        None => node.get(path).cloned(),
    }
}

/// Parses a capabilities string `k1:v1,k2:v2`: each item splits at its first `:` (values
/// may hold more colons). Empty items are skipped; an item without `:` is a key with an
/// empty value (upstream failed on it). A key given twice keeps its first place and its
/// last value.
pub fn capabilities_to_map(s: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in s.split(',').filter(|item| !item.is_empty()) {
        let (key, value) = item.split_once(':').unwrap_or((item, ""));
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => out.push((key.to_string(), value.to_string())),
        }
    }
    out
}

/// Serialises capabilities as `k1:v1,k2:v2`, in the given order.
pub fn map_to_capabilities(caps: &[(String, String)]) -> String {
    caps.iter()
        .map(|(key, value)| format!("{key}:{value}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Merges `changes` into `existing` (see [`IronicNode::update_capabilities`]).
pub fn merge_capabilities(
    existing: Vec<(String, String)>,
    changes: &[(String, Option<String>)],
) -> Vec<(String, String)> {
    let mut merged: Vec<(String, Option<String>)> = existing
        .into_iter()
        .map(|(key, value)| (key, Some(value)))
        .collect();
    for (key, value) in changes {
        match merged.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.clone(),
            None => merged.push((key.clone(), value.clone())),
        }
    }
    merged
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key, value)))
        .collect()
}

/// `ops` for the log: the value of an operation on a field named like a secret (e.g.
/// `/driver_info/ipmi_password`, set with new IPMI credentials or by a rule) is replaced.
fn masked(ops: &[Value]) -> Vec<Value> {
    const SECRET_WORDS: &[&str] = &["password", "secret", "token", "key"];
    ops.iter()
        .map(|op| {
            let field = op
                .get("path")
                .and_then(Value::as_str)
                .and_then(|path| path.rsplit('/').next())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let mut op = op.clone();
            if SECRET_WORDS.iter().any(|word| field.contains(word))
                && let Some(value) = op.get_mut("value")
            {
                *value = Value::String("***".to_string());
            }
            op
        })
        .collect()
}

/// A BMC address as an IP: itself when it is one, else the host name's first IPv4
/// address (as 2.2's `gethostbyname`); `None` when it does not resolve.
pub async fn resolve_bmc_address(value: &str) -> Option<String> {
    if let Ok(ip) = value.parse::<std::net::IpAddr>() {
        return Some(ip.to_string());
    }
    tokio::net::lookup_host((value, 0))
        .await
        .ok()
        .and_then(|mut addrs| addrs.find(|a| a.is_ipv4()))
        .map(|a| a.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(uuid: &str, address: &str) -> Port {
        serde_json::from_value(json!({"uuid": uuid, "address": address})).unwrap()
    }

    #[test]
    fn ports_are_keyed_by_mac_and_odd_addresses_left_out() {
        let ports = ports_by_mac(vec![
            port("p1", "AA:BB:CC:DD:EE:FF"),
            port("p2", "11:22:33:44:55:66"),
            port("p3", "not a mac"),
        ]);
        let keys: Vec<String> = ports.keys().map(Mac::to_string).collect();
        assert_eq!(keys, ["11:22:33:44:55:66", "aa:bb:cc:dd:ee:ff"]);
        assert_eq!(
            ports[&Mac::new([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])].uuid,
            "p1"
        );
    }

    #[test]
    fn patches_apply_locally_as_ironic_would_or_not_at_all() {
        let node = json!({
            "uuid": "u", "extra": {"a": {"b": 1}, "x/y": 2}, "properties": {"cpus": "4"},
            "list": [1, 2],
        });
        let apply = |ops: Value| {
            let mut doc = node.clone();
            apply_locally(&mut doc, ops.as_array().unwrap()).then_some(doc)
        };
        let done = apply(json!([
            {"op": "add", "path": "/properties/memory_mb", "value": "1024"},
            {"op": "replace", "path": "/properties/cpus", "value": "8"},
            {"op": "add", "path": "/extra/a/c", "value": [3]},
            {"op": "remove", "path": "/extra/x~1y"},
            {"op": "add", "path": "/extra/t~0", "value": null},
        ]))
        .unwrap();
        assert_eq!(
            done["properties"],
            json!({"cpus": "8", "memory_mb": "1024"})
        );
        assert_eq!(done["extra"], json!({"a": {"b": 1, "c": [3]}, "t~": null}));
        for refused in [
            json!([{"op": "remove", "path": "/extra/nothing"}]),
            json!([{"op": "replace", "path": "/extra/nothing", "value": 1}]),
            json!([{"op": "add", "path": "/extra/no/parent", "value": 1}]),
            json!([{"op": "add", "path": "/list/0", "value": 0}]),
            json!([{"op": "add", "path": "/list/-", "value": 3}]),
            json!([{"op": "move", "from": "/extra/a", "path": "/extra/b"}]),
            json!([{"op": "test", "path": "/uuid", "value": "u"}]),
            json!([{"op": "add", "path": "properties", "value": {}}]),
            json!([{"op": "add", "path": "/extra/v"}]),
        ] {
            assert_eq!(apply(refused.clone()), None, "{refused}");
        }
    }

    #[test]
    fn patches_are_logged_without_secret_values() {
        let ops = [
            json!({"op": "add", "path": "/driver_info/ipmi_username", "value": "root"}),
            json!({"op": "add", "path": "/driver_info/ipmi_password", "value": "Secret42"}),
            json!({"op": "replace", "path": "/extra/Auth_Token", "value": {"a": 1}}),
            json!({"op": "remove", "path": "/driver_info/snmp_auth_key"}),
        ];
        let logged = format!("{:?}", masked(&ops));
        assert!(
            !logged.contains("Secret42") && !logged.contains("\"a\""),
            "{logged}"
        );
        assert!(
            logged.contains("root") && logged.contains("ipmi_password"),
            "{logged}"
        );
        assert_eq!(masked(&ops)[3], ops[3]);
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn capabilities_round_trip() {
        let caps = capabilities_to_map("a:b,c:d");
        assert_eq!(caps, pairs(&[("a", "b"), ("c", "d")]));
        assert_eq!(map_to_capabilities(&caps), "a:b,c:d");
        assert!(capabilities_to_map("").is_empty());
        assert_eq!(map_to_capabilities(&[]), "");
    }

    #[test]
    fn capability_values_may_hold_colons() {
        let caps = capabilities_to_map("boot_mode:uefi,url:http://x:80/y");
        assert_eq!(
            caps,
            pairs(&[("boot_mode", "uefi"), ("url", "http://x:80/y")])
        );
        assert_eq!(
            map_to_capabilities(&caps),
            "boot_mode:uefi,url:http://x:80/y"
        );
    }

    #[test]
    fn odd_capability_strings() {
        assert_eq!(
            capabilities_to_map("a:1,,b"),
            pairs(&[("a", "1"), ("b", "")])
        );
        assert_eq!(
            capabilities_to_map("a:1,b:2,a:3"),
            pairs(&[("a", "3"), ("b", "2")])
        );
    }

    #[test]
    fn merge_keeps_order_appends_and_removes() {
        let merged = merge_capabilities(
            pairs(&[("a", "1"), ("b", "2"), ("c", "3")]),
            &[
                ("b".to_string(), Some("20".to_string())),
                ("d".to_string(), Some("4".to_string())),
                ("a".to_string(), None),
                ("zz".to_string(), None),
            ],
        );
        assert_eq!(merged, pairs(&[("b", "20"), ("c", "3"), ("d", "4")]));
    }

    #[test]
    fn paths_follow_upstream() {
        let node = json!({
            "uuid": "u", "driver": "fake", "maintenance": false, "instance_info": null,
            "extra": {"foo": 1, "a/b": "slash", "nested": {"x": 2}},
            "properties": {"cpus": "4"},
        });
        assert_eq!(get_by_path(&node, "/driver"), Some(json!("fake")));
        assert_eq!(get_by_path(&node, "driver/"), Some(json!("fake")));
        assert_eq!(get_by_path(&node, "/maintenance"), Some(json!(false)));
        assert_eq!(get_by_path(&node, "/instance_info"), Some(Value::Null));
        assert_eq!(get_by_path(&node, "/extra/foo"), Some(json!(1)));
        assert_eq!(get_by_path(&node, "/extra/a/b"), Some(json!("slash")));
        assert_eq!(
            get_by_path(&node, "/extra/nested/x"),
            None,
            "no deep traversal"
        );
        assert_eq!(get_by_path(&node, "/extra/nested"), Some(json!({"x": 2})));
        assert_eq!(get_by_path(&node, "/properties/cpus"), Some(json!("4")));
        assert_eq!(get_by_path(&node, "/properties/memory_mb"), None);
        assert_eq!(get_by_path(&node, "/nothing"), None);
        assert_eq!(get_by_path(&node, "/driver/x"), None, "not an object");
        assert_eq!(get_by_path(&node, "/"), None);
        assert_eq!(get_by_path(&node, ""), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{json_value, text};

    /// Capabilities as Ironic understands them: unique keys without `,` or `:`, values
    /// without `,`.
    fn capabilities() -> impl Strategy<Value = Vec<(String, String)>> {
        let key = prop_oneof![
            "[a-z_]{1,8}",
            text().prop_map(|s| s.replace([',', ':'], ""))
        ];
        let value = prop_oneof![
            "[a-z0-9:/._-]{0,10}",
            text().prop_map(|s| s.replace(',', ""))
        ];
        prop::collection::vec((key, value), 0..6).prop_map(|pairs| {
            let mut unique: Vec<(String, String)> = Vec::new();
            for (k, v) in pairs {
                if !unique.iter().any(|(u, _)| *u == k) {
                    unique.push((k, v));
                }
            }
            unique
        })
    }

    proptest! {
        #[test]
        fn parsed_capabilities_are_well_formed(s in prop_oneof![text(), "[a-c:,]{0,16}"]) {
            let caps = capabilities_to_map(&s);
            for (i, (key, value)) in caps.iter().enumerate() {
                prop_assert!(!key.contains([',', ':']) && !value.contains(','), "{key:?}:{value:?}");
                prop_assert!(caps[..i].iter().all(|(k, _)| k != key), "{key:?} twice");
            }
            // Formatting what was read and reading it again changes nothing.
            prop_assert_eq!(capabilities_to_map(&map_to_capabilities(&caps)), caps);
        }

        #[test]
        fn formatted_capabilities_read_back(caps in capabilities()) {
            let text = map_to_capabilities(&caps);
            prop_assert_eq!(capabilities_to_map(&text), caps);
        }

        #[test]
        fn merging_sets_and_removes_in_place(
            existing in capabilities(),
            changes in prop::collection::vec(("[a-e]", prop::option::of("[a-z0-9]{0,4}")), 0..6),
        ) {
            prop_assert_eq!(merge_capabilities(existing.clone(), &[]), existing.clone());
            let merged = merge_capabilities(existing.clone(), &changes);
            for (key, _) in &changes {
                let last = changes.iter().rev().find(|(k, _)| k == key).unwrap();
                let found = merged.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                prop_assert_eq!(found, last.1.as_ref());
            }
            // Keys that were there keep their order, new ones come after them.
            let untouched: Vec<&(String, String)> = existing
                .iter()
                .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
                .collect();
            let kept: Vec<&(String, String)> = merged
                .iter()
                .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
                .collect();
            prop_assert_eq!(kept, untouched);
            prop_assert_eq!(capabilities_to_map(&map_to_capabilities(&merged)), merged);
        }

        #[test]
        fn node_paths_never_panic(node in json_value(), path in prop_oneof![text(), "/?[a-z]{0,3}(/[a-z]{0,3}){0,2}/?"]) {
            if let Some(found) = get_by_path(&node, &path) {
                let (field, key) = path.trim_matches('/').split_once('/').unwrap_or((path.trim_matches('/'), ""));
                let parent = &node[field];
                prop_assert!(key.is_empty() && parent == &found || parent.get(key) == Some(&found));
            }
        }
    }
}
