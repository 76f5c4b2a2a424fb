//! `IronicNode`'s Ironic calls and the processing hooks' effects on Ironic (and Swift),
//! against the fake Ironic. The hooks' decisions are unit-tested next to them; these tests
//! check the requests that carry them out.

use std::sync::Arc;

use ironic_inspector::Error;
use ironic_inspector::data::IntrospectionData;
use ironic_inspector::hooks::{self, ProcessingHook};
use ironic_inspector::ironic::IronicClient;
use ironic_inspector::ironic_node::IronicNode;
use ironic_inspector::mac::Mac;
use ironic_inspector::swift::SwiftClient;
use serde_json::{Map, Value, json};

use crate::fake_ironic::{FakeIronic, Recorded, Reply, ironic_error, node_json, port_json};
use crate::helpers::{init_logging, test_config};

const NODE: &str = "5e4b8f1a-9c2d-4e6f-8a1b-3c5d7e9f0a12";
const NODE_PATH: &str = "/v1/nodes/5e4b8f1a-9c2d-4e6f-8a1b-3c5d7e9f0a12";
const PORTS_PATH: &str = "/v1/nodes/5e4b8f1a-9c2d-4e6f-8a1b-3c5d7e9f0a12/ports/detail";
const GIB: u64 = 1 << 30;

fn mac(text: &str) -> Mac {
    text.parse().unwrap()
}

/// An Ironic client of `fake`: noauth, no retries.
pub fn ironic_for(fake: &FakeIronic) -> IronicClient {
    init_logging();
    let config = test_config(
        &std::env::temp_dir(),
        &format!(
            "[ironic]\nauth_strategy = noauth\nironic_url = {}\nmax_retries = 0\n\
             retry_interval = 0\n",
            fake.url
        ),
    );
    IronicClient::from_config(&config).unwrap()
}

/// A node document with these properties and extra.
fn node_with(properties: Value, extra: Value) -> Value {
    let mut node = node_json(NODE);
    node["properties"] = properties;
    node["extra"] = extra;
    node
}

fn ports_reply(macs: &[&str]) -> Reply {
    let ports: Vec<Value> = macs
        .iter()
        .enumerate()
        .map(|(i, mac)| port_json(&format!("port-{i}"), NODE, mac))
        .collect();
    Reply::Json(200, json!({"ports": ports}))
}

/// A fake Ironic serving the node and its ports, and the loaded `IronicNode`.
async fn loaded(node: Value, macs: &[&str]) -> (FakeIronic, IronicNode) {
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node)]);
    fake.on("GET", PORTS_PATH, [ports_reply(macs)]);
    let info = IronicNode::load(ironic_for(&fake), NODE).await.unwrap();
    (fake, info)
}

/// The requests after loading (the node and ports GETs), as `METHOD path`.
fn calls_after_load(fake: &FakeIronic) -> Vec<String> {
    fake.requests()
        .iter()
        .skip(2)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn patches(fake: &FakeIronic) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect()
}

fn data(value: Value) -> IntrospectionData {
    let Value::Object(map) = value else {
        panic!("not an object")
    };
    IntrospectionData::from_payload(map, true).unwrap()
}

fn hooks_config(text: &str) -> Arc<ironic_inspector::config::Config> {
    Arc::new(test_config(&std::env::temp_dir(), text))
}

/// The one processing hook `[processing]` text enables.
fn hook(processing: &str) -> Arc<dyn ProcessingHook> {
    let config = hooks_config(&format!("[processing]\n{processing}\n"));
    let mut hooks = hooks::load(&config, None).unwrap();
    assert_eq!(hooks.processing.len(), 1);
    hooks.processing.remove(0)
}

// --- IronicNode ---

#[tokio::test]
async fn load_reads_node_and_ports_by_lower_case_mac() {
    let (fake, info) = loaded(node_json(NODE), &["AA:BB:CC:DD:EE:FF", "11:22:33:44:55:66"]).await;
    assert_eq!(info.uuid, NODE);
    assert_eq!(info.node().driver, "fake-hardware");
    let macs: Vec<String> = info.ports().keys().map(Mac::to_string).collect();
    assert_eq!(macs, ["11:22:33:44:55:66", "aa:bb:cc:dd:ee:ff"]);
    let seen: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        seen,
        [format!("GET {NODE_PATH}"), format!("GET {PORTS_PATH}")]
    );
}

#[tokio::test]
async fn load_of_an_unknown_node_is_not_found() {
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [ironic_error(404, "Node not found.")]);
    let err = IronicNode::load(ironic_for(&fake), NODE).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn patch_sends_the_list_and_caches_the_answer() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    info.patch(&[]).await.unwrap();
    assert!(
        calls_after_load(&fake).is_empty(),
        "an empty patch sends nothing"
    );

    let ops = vec![json!({"op": "add", "path": "/extra/foo", "value": "bar"})];
    fake.on(
        "PATCH",
        NODE_PATH,
        [Reply::Json(
            200,
            node_with(json!({}), json!({"foo": "bar"})),
        )],
    );
    info.patch(&ops).await.unwrap();
    let sent = patches(&fake);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].json(), Value::Array(ops));
    assert_eq!(info.node().extra["foo"], "bar");
    assert_eq!(info.get_by_path("/extra/foo"), Some(json!("bar")));
}

#[tokio::test]
async fn patch_failure_is_returned() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    fake.on("PATCH", NODE_PATH, [ironic_error(400, "Invalid patch")]);
    let err = info
        .patch(&[json!({"op": "remove", "path": "/extra/x"})])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadRequest(m) if m == "Invalid patch"),
        "{err:?}"
    );
}

#[tokio::test]
async fn update_properties_is_one_patch_of_adds() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    let Value::Object(props) = json!({"cpus": "4", "memory_mb": "1024"}) else {
        unreachable!()
    };
    info.update_properties(props).await.unwrap();
    let sent = patches(&fake);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json(),
        json!([
            {"op": "add", "path": "/properties/cpus", "value": "4"},
            {"op": "add", "path": "/properties/memory_mb", "value": "1024"},
        ])
    );
    info.update_properties(Map::new()).await.unwrap();
    assert_eq!(patches(&fake).len(), 1, "nothing to update sends nothing");
}

#[tokio::test]
async fn update_capabilities_merges_in_order() {
    let node = node_with(json!({"capabilities": "a:1,b:2,url:http://x:1"}), json!({}));
    let (fake, mut info) = loaded(node, &[]).await;
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    let caps = [
        ("b".to_string(), Some("20".to_string())),
        ("c".to_string(), Some("3".to_string())),
        ("a".to_string(), None),
    ];
    info.update_capabilities(&caps).await.unwrap();
    assert_eq!(
        patches(&fake)[0].json(),
        json!([{"op": "add", "path": "/properties/capabilities", "value": "b:20,url:http://x:1,c:3"}])
    );

    // Unchanged still patches, as upstream; no capabilities yet starts from empty.
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    info.update_capabilities(&[]).await.unwrap();
    assert_eq!(
        patches(&fake)[0].json(),
        json!([{"op": "add", "path": "/properties/capabilities", "value": ""}])
    );
}

#[tokio::test]
async fn create_ports_skips_existing_and_creates_new() {
    let (fake, mut info) = loaded(node_json(NODE), &["11:11:11:11:11:11"]).await;
    fake.on(
        "POST",
        "/v1/ports",
        [Reply::Json(
            201,
            port_json("port-new", NODE, "22:22:22:22:22:22"),
        )],
    );
    info.create_ports(&[
        "11:11:11:11:11:11".to_string(),
        "22:22:22:22:22:22".to_string(),
    ])
    .await
    .unwrap();
    let posts: Vec<Recorded> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].json(),
        json!({"node_uuid": NODE, "address": "22:22:22:22:22:22"})
    );
    assert_eq!(info.ports()[&mac("22:22:22:22:22:22")].uuid, "port-new");
    assert_eq!(info.ports().len(), 2);
}

#[tokio::test]
async fn create_ports_conflict_is_skipped_and_ports_are_read_again() {
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    fake.on(
        "GET",
        PORTS_PATH,
        [ports_reply(&[]), ports_reply(&["22:22:22:22:22:22"])],
    );
    let mut info = IronicNode::load(ironic_for(&fake), NODE).await.unwrap();
    fake.on(
        "POST",
        "/v1/ports",
        [ironic_error(
            409,
            "A port with MAC address 22:22:22:22:22:22 already exists.",
        )],
    );
    info.create_ports(&["22:22:22:22:22:22".to_string()])
        .await
        .unwrap();
    assert_eq!(
        calls_after_load(&fake),
        ["POST /v1/ports".to_string(), format!("GET {PORTS_PATH}")]
    );
    assert!(info.ports().contains_key(&mac("22:22:22:22:22:22")));
}

#[tokio::test]
async fn create_ports_other_failures_stop() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    fake.on(
        "POST",
        "/v1/ports",
        [ironic_error(400, "Invalid MAC address")],
    );
    let err = info
        .create_ports(&["bad".to_string(), "11:11:11:11:11:11".to_string()])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Invalid MAC address");
    assert_eq!(calls_after_load(&fake), ["POST /v1/ports"]);
}

#[tokio::test]
async fn delete_and_patch_port_by_mac() {
    let (fake, mut info) =
        loaded(node_json(NODE), &["11:11:11:11:11:11", "22:22:22:22:22:22"]).await;
    fake.on("DELETE", "/v1/ports/port-0", [Reply::Empty(204)]);
    info.delete_port(&mac("11:11:11:11:11:11")).await.unwrap();
    assert!(!info.ports().contains_key(&mac("11:11:11:11:11:11")));

    let mut patched = port_json("port-1", NODE, "22:22:22:22:22:22");
    patched["extra"] = json!({"a": 1});
    fake.on("PATCH", "/v1/ports/port-1", [Reply::Json(200, patched)]);
    let ops = [json!({"op": "add", "path": "/extra/a", "value": 1})];
    info.patch_port(&mac("22:22:22:22:22:22"), &ops)
        .await
        .unwrap();
    assert_eq!(info.ports()[&mac("22:22:22:22:22:22")].extra["a"], 1);
    assert_eq!(
        calls_after_load(&fake),
        ["DELETE /v1/ports/port-0", "PATCH /v1/ports/port-1"]
    );

    let err = info
        .delete_port(&mac("33:33:33:33:33:33"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let err = info
        .patch_port(&mac("11:11:11:11:11:11"), &ops)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(
        calls_after_load(&fake).len(),
        2,
        "unknown ports send nothing"
    );
}

#[tokio::test]
async fn deleting_a_port_ironic_already_lost_succeeds() {
    let (fake, mut info) = loaded(node_json(NODE), &["11:11:11:11:11:11"]).await;
    fake.on(
        "DELETE",
        "/v1/ports/port-0",
        [ironic_error(404, "Port not found.")],
    );
    info.delete_port(&mac("11:11:11:11:11:11")).await.unwrap();
    assert!(info.ports().is_empty());
}

#[tokio::test]
async fn replace_field_patches_only_changes() {
    let node = node_with(json!({}), json!({"list": [1]}));
    let (fake, mut info) = loaded(node, &[]).await;
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);

    let append = |mut v: Value| {
        if let Some(items) = v.as_array_mut() {
            items.push(json!(2));
        }
        v
    };
    info.replace_field("/extra/list", append, Some(json!([])))
        .await
        .unwrap();
    info.replace_field("/extra/other", append, Some(json!([])))
        .await
        .unwrap();
    info.replace_field("/extra/same", |v| v, Some(json!([])))
        .await
        .unwrap();
    let err = info
        .replace_field("/extra/none", |v| v, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");

    let sent: Vec<Value> = patches(&fake).iter().map(Recorded::json).collect();
    assert_eq!(
        sent,
        [
            json!([{"op": "replace", "path": "/extra/list", "value": [1, 2]}]),
            json!([{"op": "add", "path": "/extra/other", "value": [2]}]),
        ]
    );
}

// --- hooks against Ironic ---

#[tokio::test]
async fn scheduler_patches_strings() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    let mut d = data(json!({"cpus": 4, "cpu_arch": "x86_64", "memory_mb": 12288, "local_gb": 464}));
    hook("processing_hooks = scheduler")
        .before_update(&mut d, &mut info)
        .await
        .unwrap();
    assert_eq!(
        patches(&fake)[0].json(),
        json!([
            {"op": "add", "path": "/properties/cpus", "value": "4"},
            {"op": "add", "path": "/properties/cpu_arch", "value": "x86_64"},
            {"op": "add", "path": "/properties/memory_mb", "value": "12288"},
            {"op": "add", "path": "/properties/local_gb", "value": "464"},
        ])
    );
}

#[tokio::test]
async fn scheduler_without_overwrite_patches_missing_keys_or_nothing() {
    let node = node_with(json!({"memory_mb": "4096", "cpu_arch": "i686"}), json!({}));
    let (fake, mut info) = loaded(node, &[]).await;
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    let scheduler = hook("processing_hooks = scheduler\noverwrite_existing = false");
    let mut d = data(json!({"cpus": 2, "cpu_arch": "x86_64", "memory_mb": 1024, "local_gb": 20}));
    scheduler.before_update(&mut d, &mut info).await.unwrap();
    assert_eq!(
        patches(&fake)[0].json(),
        json!([
            {"op": "add", "path": "/properties/cpus", "value": "2"},
            {"op": "add", "path": "/properties/local_gb", "value": "20"},
        ])
    );

    let full = json!({"cpus": "1", "cpu_arch": "x", "memory_mb": "1", "local_gb": "1"});
    let (fake, mut info) = loaded(node_with(full, json!({})), &[]).await;
    scheduler.before_update(&mut d, &mut info).await.unwrap();
    assert!(calls_after_load(&fake).is_empty(), "no empty PATCH");
}

#[tokio::test]
async fn scheduler_missing_keys_send_nothing() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    let mut d = data(json!({"cpus": 2, "cpu_arch": "x86_64"}));
    let err = hook("processing_hooks = scheduler")
        .before_update(&mut d, &mut info)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "The following required parameters are missing: ['memory_mb', 'local_gb']"
    );
    assert!(calls_after_load(&fake).is_empty());
}

/// Upstream's functional `test_root_device_hints`: the hint picks the 20 GiB disk, so
/// `local_gb` is 19.
#[tokio::test]
async fn root_device_hints_pick_the_disk_scheduler_sizes() {
    let node = node_with(json!({"root_device": {"size": 20}}), json!({}));
    let (fake, mut info) = loaded(node, &[]).await;
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    let mut d = data(json!({
        "cpus": 4, "cpu_arch": "x86_64", "memory_mb": 12288, "local_gb": 464,
        "inventory": {"disks": [
            {"name": "/dev/sda", "model": "Big Data Disk", "size": 1000 * GIB},
            {"name": "/dev/sdb", "model": "Small OS Disk", "size": 20 * GIB},
        ]},
        "root_disk": {"name": "/dev/sda", "model": "Big Data Disk", "size": 1000 * GIB},
    }));
    let config = hooks_config("[processing]\nprocessing_hooks = root_disk_selection,scheduler\n");
    let hooks = hooks::load(&config, None).unwrap();
    assert_eq!(hooks.names(), ["root_disk_selection", "scheduler"]);
    for hook in &hooks.processing {
        hook.before_update(&mut d, &mut info).await.unwrap();
    }
    assert_eq!(d.get("root_disk").unwrap()["name"], "/dev/sdb");
    let sent = patches(&fake);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json()[3],
        json!({"op": "add", "path": "/properties/local_gb", "value": "19"})
    );
}

/// Upstream's functional `test_bmc`: the agent's root disk gives 999 with spacing; an old
/// ramdisk's `local_gb` is used as sent.
#[tokio::test]
async fn local_gb_from_the_root_disk_or_as_sent() {
    for (payload_extra, expected) in [
        (
            json!({"root_disk": {"name": "/dev/sda", "size": 1000 * GIB}}),
            "999",
        ),
        (json!({}), "464"),
    ] {
        let (fake, mut info) = loaded(node_json(NODE), &[]).await;
        fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
        let mut payload =
            json!({"cpus": 4, "cpu_arch": "x86_64", "memory_mb": 12288, "local_gb": 464});
        for (k, v) in payload_extra.as_object().unwrap() {
            payload[k] = v.clone();
        }
        let mut d = data(payload);
        hook("processing_hooks = scheduler")
            .before_update(&mut d, &mut info)
            .await
            .unwrap();
        assert_eq!(patches(&fake)[0].json()[3]["value"], expected);
    }
}

fn interfaces_payload() -> Value {
    json!({
        "interfaces": {
            "em1": {"mac": "11:11:11:11:11:11", "ip": "1.1.1.1"},
            "em2": {"mac": "22:22:22:22:22:22", "ip": "2.2.2.2"},
            "em3": {"mac": "33:33:33:33:33:33"},
        },
        "boot_interface": "01-22-22-22-22-22-22",
    })
}

/// Runs `validate_interfaces` (both steps) with `keep_ports`, on a node with ports for
/// 11:.. and 44:..; answers the ports deleted.
async fn deleted_ports(keep_ports: &str) -> Vec<String> {
    let (fake, mut info) =
        loaded(node_json(NODE), &["11:11:11:11:11:11", "44:44:44:44:44:44"]).await;
    fake.on("DELETE", "/v1/ports/port-0", [Reply::Empty(204)]);
    fake.on("DELETE", "/v1/ports/port-1", [Reply::Empty(204)]);
    let validate = hook(&format!(
        "processing_hooks = validate_interfaces\nkeep_ports = {keep_ports}"
    ));
    let mut d = data(interfaces_payload());
    validate.before_processing(&mut d).await.unwrap();
    validate.before_update(&mut d, &mut info).await.unwrap();
    let deleted = calls_after_load(&fake);
    assert_eq!(info.ports().len(), 2 - deleted.len());
    deleted
}

#[tokio::test]
async fn keep_ports_decides_which_ports_are_deleted() {
    assert!(deleted_ports("all").await.is_empty());
    assert_eq!(deleted_ports("present").await, ["DELETE /v1/ports/port-1"]);
    assert_eq!(
        deleted_ports("added").await,
        ["DELETE /v1/ports/port-0", "DELETE /v1/ports/port-1"]
    );
}

#[tokio::test]
async fn raid_device_saves_serials_then_finds_the_new_one() {
    let raid = hook("processing_hooks = raid_device");
    let payload = |serials: &[&str]| {
        let disks: Vec<Value> = serials
            .iter()
            .map(|s| json!({"name": "/dev/sdx", "serial": s}))
            .collect();
        data(json!({"inventory": {"disks": disks}}))
    };

    // First run: the serials are saved in extra.
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    let saved = node_with(
        json!({}),
        json!({"block_devices": {"serials": ["foo", "bar"]}}),
    );
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, saved.clone())]);
    let mut d = payload(&["foo", "bar"]);
    raid.before_processing(&mut d).await.unwrap();
    assert_eq!(d.get("local_gb"), Some(&json!(1)), "fake local_gb");
    raid.before_update(&mut d, &mut info).await.unwrap();
    assert_eq!(
        patches(&fake)[0].json(),
        json!([{"op": "add", "path": "/extra/block_devices", "value": {"serials": ["foo", "bar"]}}])
    );

    // Second run on the node as patched: one new serial becomes the root device.
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    let mut d = payload(&["foo", "baz"]);
    raid.before_update(&mut d, &mut info).await.unwrap();
    assert_eq!(
        patches(&fake)[1].json(),
        json!([
            {"op": "remove", "path": "/extra/block_devices"},
            {"op": "add", "path": "/properties/root_device", "value": {"serial": "baz"}},
        ])
    );

    // Nothing new on a node that already has a root device: no request.
    let node = node_with(json!({"root_device": {"serial": "foo"}}), json!({}));
    let (fake, mut info) = loaded(node, &[]).await;
    raid.before_update(&mut payload(&["foo", "qux"]), &mut info)
        .await
        .unwrap();
    assert!(calls_after_load(&fake).is_empty());
}

// --- loading ---

#[test]
fn hooks_load_by_name_in_order() {
    let config = hooks_config(
        "[processing]\nprocessing_hooks = ramdisk_error,root_disk_selection,scheduler,\
         validate_interfaces,example,extra_hardware,raid_device,root_device_hint,scheduler\n\
         node_not_found_hook = example\n",
    );
    let hooks = hooks::load(&config, None).unwrap();
    assert_eq!(
        hooks.names(),
        [
            "ramdisk_error",
            "root_disk_selection",
            "scheduler",
            "validate_interfaces",
            "example",
            "extra_hardware",
            "raid_device",
            "root_device_hint",
        ]
    );
    assert_eq!(
        hooks.node_not_found.as_ref().map(|h| h.name()),
        Some("example")
    );
    let shown = format!("{hooks:?}");
    assert!(shown.contains("root_device_hint"), "{shown}");
}

#[test]
fn default_hooks_and_no_node_not_found_hook() {
    let hooks = hooks::load(&hooks_config(""), None).unwrap();
    assert_eq!(
        hooks.names(),
        [
            "ramdisk_error",
            "root_disk_selection",
            "scheduler",
            "validate_interfaces"
        ]
    );
    assert!(hooks.node_not_found.is_none());
}

#[test]
fn unknown_hooks_fail_to_load() {
    let err = hooks::load(
        &hooks_config("[processing]\nprocessing_hooks = scheduler,foo\n"),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Hook foo failed to load or was not found: [processing] processing_hooks takes the \
         built-in hooks scheduler, validate_interfaces, ramdisk_error, root_disk_selection, \
         example, extra_hardware, raid_device, root_device_hint or an external program as \
         exec:/absolute/path (see PLUGINS.md)"
    );
    let err = hooks::load(
        &hooks_config("[processing]\nnode_not_found_hook = no_such_hook\n"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(
            "Hook no_such_hook failed to load or was not found: [processing] \
             node_not_found_hook takes the built-in hooks "
        ),
        "{err}"
    );
    assert!(
        err.ends_with("or an external program as exec:/absolute/path (see PLUGINS.md)"),
        "{err}"
    );
}

#[tokio::test]
async fn example_node_not_found_hook_finds_nothing() {
    let hooks = hooks::load(
        &hooks_config("[processing]\nnode_not_found_hook = example\n"),
        None,
    )
    .unwrap();
    let found = hooks
        .node_not_found
        .unwrap()
        .run(&mut data(json!({"ipmi_address": "1.2.3.4"})))
        .await
        .unwrap();
    assert_eq!(found, None);
}

// --- extra_hardware, with Swift behind a fake Keystone ---

/// A Keystone v3 that accepts any login and lists `swift_url` as the internal
/// object-store endpoint; answers its v3 URL.
async fn fake_keystone(swift_url: &str) -> String {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    let catalog = json!({"token": {
        "expires_at": "2999-01-01T00:00:00.000000Z",
        "roles": [{"name": "admin"}],
        "catalog": [{"type": "object-store", "endpoints": [
            {"interface": "internal", "url": swift_url},
        ]}],
    }});
    let login = move || {
        let body = catalog.clone();
        async move {
            (
                StatusCode::CREATED,
                [("X-Subject-Token", "fake-token")],
                axum::Json(body),
            )
                .into_response()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = axum::Router::new().route("/v3/auth/tokens", axum::routing::post(login));
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://127.0.0.1:{port}/v3")
}

/// A Swift client whose Swift is `fake` (at `/v1/AUTH_test`), container `c`.
async fn swift_on(fake: &FakeIronic) -> SwiftClient {
    let keystone = fake_keystone(&format!("{}/v1/AUTH_test", fake.url)).await;
    let config = test_config(
        &std::env::temp_dir(),
        &format!(
            "[swift]\nos_auth_url = {keystone}\nos_auth_version = 3\nusername = u\n\
             password = p\ntenant_name = t\ncontainer = c\nmax_retries = 0\n"
        ),
    );
    SwiftClient::from_config(&config).unwrap()
}

fn extra_hardware(swift: Option<SwiftClient>) -> Arc<dyn ProcessingHook> {
    let config = hooks_config("[processing]\nprocessing_hooks = extra_hardware\n");
    let mut hooks = hooks::load(&config, swift).unwrap();
    hooks.processing.remove(0)
}

#[tokio::test]
async fn extra_hardware_stores_converts_and_patches() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    let object = format!("/v1/AUTH_test/c/extra_hardware-{NODE}");
    fake.on("PUT", "/v1/AUTH_test/c", [Reply::Empty(201)]);
    fake.on("PUT", &object, [Reply::Empty(201)]);
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    let hook = extra_hardware(Some(swift_on(&fake).await));
    let items = json!([
        ["memory", "total", "size", "4294967296"],
        ["cpu", "physical", "number", "1"],
        ["cpu", "logical", "number", "1"],
    ]);
    let mut d = data(json!({"data": items.clone(), "cpus": 2}));
    hook.before_processing(&mut d).await.unwrap();
    hook.before_update(&mut d, &mut info).await.unwrap();

    let stored = fake
        .requests()
        .into_iter()
        .find(|r| r.path == object)
        .unwrap();
    assert_eq!(stored.json(), items);
    assert_eq!(
        patches(&fake)[0].json(),
        json!([{"op": "add", "path": "/extra/hardware_swift_object", "value": format!("extra_hardware-{NODE}")}])
    );
    assert_eq!(
        d.get("extra"),
        Some(&json!({
            "memory": {"total": {"size": 4_294_967_296_u64}},
            "cpu": {"physical": {"number": 1}, "logical": {"number": 1}},
        }))
    );
    assert!(d.get("data").is_none());
}

#[tokio::test]
async fn extra_hardware_non_edeploy_data_is_stored_without_extra() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    fake.on("PUT", "/v1/AUTH_test/c", [Reply::Empty(202)]);
    fake.on(
        "PUT",
        &format!("/v1/AUTH_test/c/extra_hardware-{NODE}"),
        [Reply::Empty(201)],
    );
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    let hook = extra_hardware(Some(swift_on(&fake).await));
    let mut d = data(json!({"data": [["memory", "total", "size", "1"], {"interface": "eth1"}]}));
    hook.before_update(&mut d, &mut info).await.unwrap();
    assert!(d.get("extra").is_none());
    assert!(d.get("data").is_none());
    assert_eq!(patches(&fake).len(), 1);
}

#[tokio::test]
async fn extra_hardware_without_data_does_nothing() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    let hook = extra_hardware(Some(swift_on(&fake).await));
    let mut d = data(json!({"cats": "meow"}));
    hook.before_update(&mut d, &mut info).await.unwrap();
    assert!(calls_after_load(&fake).is_empty());
    assert_eq!(d.as_map().len(), 1);
}

#[tokio::test]
async fn extra_hardware_swift_failure_fails_processing_and_patches_nothing() {
    let (fake, mut info) = loaded(node_json(NODE), &[]).await;
    fake.on("PUT", "/v1/AUTH_test/c", [Reply::Empty(201)]);
    fake.on(
        "PUT",
        &format!("/v1/AUTH_test/c/extra_hardware-{NODE}"),
        [Reply::Empty(422)],
    );
    let hook = extra_hardware(Some(swift_on(&fake).await));
    let mut d = data(json!({"data": []}));
    let err = hook.before_update(&mut d, &mut info).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Swift failed to create object extra_hardware-{NODE} in container c. \
             Error was: Object PUT failed: 422 Unprocessable Entity"
        )
    );
    assert!(matches!(err, Error::BadRequest(_)));
    assert!(patches(&fake).is_empty());
    assert!(d.get("data").is_some(), "data kept on failure");

    let hook = extra_hardware(None);
    let err = hook.before_update(&mut d, &mut info).await.unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    assert!(patches(&fake).is_empty());
}

// --- the ramdisk payload fixtures (tests/fixtures) through the default hooks ---

async fn fixture(name: &str) -> IntrospectionData {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = tokio::fs::read_to_string(&path).await.unwrap();
    let Value::Object(map) = serde_json::from_str(&text).unwrap() else {
        panic!("{name} is not an object")
    };
    IntrospectionData::from_payload(map, true).unwrap()
}

#[tokio::test]
async fn every_fixture_describes_the_same_node() {
    use ironic_inspector::config::{AddPorts, KeepPorts};
    use ironic_inspector::hooks::scheduler::Scheduler;
    use ironic_inspector::hooks::validate_interfaces::ValidateInterfaces;

    for (name, bmc) in [
        ("ipa-inventory.json", Some("192.0.2.100")),
        ("ipa-inventory-no-bmc.json", None),
        ("liberty-flat.json", Some("192.0.2.100")),
        ("liberty-bash-dib.json", Some("192.0.2.100")),
        ("liberty-error.json", Some("192.0.2.100")),
    ] {
        let mut d = fixture(name).await;
        assert_eq!(d.ipmi_address(), bmc, "{name}");

        ValidateInterfaces::new(AddPorts::Pxe, KeepPorts::All)
            .select(&mut d)
            .unwrap();
        assert_eq!(d.macs(), ["52:54:00:00:00:01"], "{name}: the PXE NIC");
        let mut active = fixture(name).await;
        ValidateInterfaces::new(AddPorts::Active, KeepPorts::All)
            .select(&mut active)
            .unwrap();
        let expected_active: &[&str] =
            if name.starts_with("liberty-flat") || name.starts_with("ipa") {
                &["52:54:00:00:00:01", "52:54:00:00:00:02"]
            } else {
                &["52:54:00:00:00:01"] // eth1 has "ip": "" or null
            };
        assert_eq!(active.macs(), expected_active, "{name}");

        let props = Scheduler::new(true, true)
            .properties(&mut d, &Map::new())
            .unwrap();
        let values: Vec<&str> = props.iter().filter_map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["4", "x86_64", "16384", "464"], "{name}");
    }
}

#[tokio::test]
async fn the_ramdisk_error_fixture_fails_and_keeps_its_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = hooks_config(&format!(
        "[processing]\nprocessing_hooks = ramdisk_error\nramdisk_logs_dir = {}\n",
        dir.path().display()
    ));
    let hooks = hooks::load(&config, None).unwrap();
    let mut d = fixture("liberty-error.json").await;
    let err = hooks.processing[0]
        .before_processing(&mut d)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "Ramdisk reported error: The following errors were encountered during hardware \
             discovery:\n* "
        ),
        "{err}"
    );
    let mut entries = tokio::fs::read_dir(dir.path()).await.unwrap();
    let entry = entries.next_entry().await.unwrap().unwrap();
    assert!(entries.next_entry().await.unwrap().is_none(), "one file");
    let name = entry.file_name().into_string().unwrap();
    assert!(name.starts_with("bmc_192.0.2.100_"), "{name}");
    let bytes = tokio::fs::read(entry.path()).await.unwrap();
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "a gzip'd tarball");

    // The agent's successful payload has logs too: kept only with always_store_ramdisk_logs.
    let mut d = fixture("ipa-inventory.json").await;
    hooks.processing[0].before_processing(&mut d).await.unwrap();
    let mut entries = tokio::fs::read_dir(dir.path()).await.unwrap();
    let mut count = 0;
    while entries.next_entry().await.unwrap().is_some() {
        count += 1;
    }
    assert_eq!(count, 1, "no new file");
}
