//! An `exec:` hook's changes to Ironic (PLUGINS.md, `before_update`), against the fake
//! Ironic: what the program is given, the patches it answers, and the failures around them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ironic_inspector::Error;
use ironic_inspector::data::IntrospectionData;
use ironic_inspector::hooks::{self, ProcessingHook};
use ironic_inspector::ironic_node::IronicNode;
use serde_json::{Value, json};

use crate::fake_ironic::{FakeIronic, Reply, ironic_error, node_json, port_json};
use crate::helpers::{init_logging, test_config};

const NODE: &str = "0c7b4a53-55e4-4c4c-9a7e-2f3c6d1f8e21";
const NODE_PATH: &str = "/v1/nodes/0c7b4a53-55e4-4c4c-9a7e-2f3c6d1f8e21";
const PORTS_PATH: &str = "/v1/nodes/0c7b4a53-55e4-4c4c-9a7e-2f3c6d1f8e21/ports/detail";
const MAC: &str = "52:54:00:aa:bb:01";

/// A fake Ironic serving the node with one port, and the loaded node.
async fn loaded() -> (FakeIronic, IronicNode) {
    init_logging();
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    let ports = json!({"ports": [port_json("port-1", NODE, MAC)]});
    fake.on("GET", PORTS_PATH, [Reply::Json(200, ports)]);
    let node = IronicNode::load(crate::hooks::ironic_for(&fake), NODE)
        .await
        .unwrap();
    (fake, node)
}

/// An executable `/bin/sh` program in `dir`.
fn program(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("hook.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The hook `exec:<path>`, loaded through the registry.
fn exec_hook(path: &Path) -> Arc<dyn ProcessingHook> {
    let config = test_config(
        &std::env::temp_dir(),
        &format!("[processing]\nprocessing_hooks = exec:{}\n", path.display()),
    );
    let mut hooks = hooks::load(&Arc::new(config), None).unwrap();
    assert_eq!(hooks.names(), [format!("exec:{}", path.display())]);
    hooks.processing.remove(0)
}

fn data() -> IntrospectionData {
    IntrospectionData::from_map_unchecked(json!({"cpus": 2}).as_object().unwrap().clone())
}

/// The PATCH requests the fake got, as `(path, body)`.
fn patches(fake: &FakeIronic) -> Vec<(String, Value)> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.path, serde_json::from_slice(&r.body).unwrap()))
        .collect()
}

#[tokio::test]
async fn before_update_gets_node_and_ports_and_its_patches_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    let path = program(
        dir.path(),
        &format!(
            "cat > {}\necho \"$1\" > {}.stage\n\
             echo '{{\"data\": {{\"cpus\": 8}}, \
             \"node_patches\": [{{\"op\": \"add\", \"path\": \"/extra/x\", \"value\": 1}}], \
             \"port_patches\": {{\"52:54:00:AA:BB:01\": [{{\"op\": \"add\", \"path\": \"/extra/y\", \"value\": 2}}]}}}}'",
            input.display(),
            input.display()
        ),
    );
    let (fake, mut node) = loaded().await;
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    fake.on(
        "PATCH",
        "/v1/ports/port-1",
        [Reply::Json(200, port_json("port-1", NODE, MAC))],
    );
    let mut data = data();
    exec_hook(&path)
        .before_update(&mut data, &mut node)
        .await
        .unwrap();

    let stage = std::fs::read_to_string(format!("{}.stage", input.display())).unwrap();
    assert_eq!(stage.trim(), "before_update");
    let given: Value = serde_json::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
    assert_eq!(given["data"], json!({"cpus": 2}));
    assert_eq!(given["node"]["uuid"], NODE);
    assert_eq!(
        given["ports"],
        json!([{"uuid": "port-1", "address": MAC, "node_uuid": NODE, "extra": {}}])
    );
    assert_eq!(data.get("cpus"), Some(&json!(8)));
    assert_eq!(
        patches(&fake),
        [
            (
                NODE_PATH.to_string(),
                json!([{"op": "add", "path": "/extra/x", "value": 1}])
            ),
            (
                "/v1/ports/port-1".to_string(),
                json!([{"op": "add", "path": "/extra/y", "value": 2}])
            ),
        ]
    );
}

#[tokio::test]
async fn a_patch_for_a_port_the_node_lacks_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = program(
        dir.path(),
        "cat >/dev/null\necho '{\"node_patches\": [{\"op\": \"add\", \"path\": \"/extra/x\", \"value\": 1}], \
         \"port_patches\": {\"52:54:00:00:00:99\": []}}'",
    );
    let (fake, mut node) = loaded().await;
    let mut data = data();
    let err = exec_hook(&path)
        .before_update(&mut data, &mut node)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Hook exec:{}: answered port_patches for 52:54:00:00:00:99, which is not a port of \
             node {NODE}",
            path.display()
        )
    );
    assert!(patches(&fake).is_empty());
    assert_eq!(data.get("cpus"), Some(&json!(2)));
}

#[tokio::test]
async fn ironic_refusing_the_patch_is_the_hooks_failure_and_ironic_down_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = program(
        dir.path(),
        "cat >/dev/null\necho '{\"node_patches\": [{\"op\": \"add\", \"path\": \"/nope\", \"value\": 1}]}'",
    );
    let hook = exec_hook(&path);
    let (fake, mut node) = loaded().await;
    fake.on(
        "PATCH",
        NODE_PATH,
        [
            ironic_error(400, "Invalid patch"),
            ironic_error(503, "Service Unavailable"),
        ],
    );
    let err = hook
        .before_update(&mut data(), &mut node)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Hook exec:{}: Ironic refused its patch: Invalid patch",
            path.display()
        )
    );
    let err = hook
        .before_update(&mut data(), &mut node)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ServiceUnavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_failure_after_the_lookup_names_the_hook() {
    let dir = tempfile::tempdir().unwrap();
    let path = program(
        dir.path(),
        "cat >/dev/null\necho 'first' >&2\necho 'disk 2 is failing' >&2\nexit 1",
    );
    let (fake, mut node) = loaded().await;
    let err = exec_hook(&path)
        .before_update(&mut data(), &mut node)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Hook exec:{}: disk 2 is failing", path.display())
    );
    assert!(patches(&fake).is_empty());
}
