//! Ironic 32.1 drives our daemon through its `inspector` inspect interface, as a real
//! deployment would: `PUT /v1/nodes/<id>/states/provision {"target": "inspect"}` on Ironic
//! makes Ironic call our API (GET /, POST /v1/introspection/<id>, GET status every second,
//! GET …/data once finished, POST …/abort), and the node's provision state in Ironic follows
//! what our daemon reports.
//!
//! Start that Ironic with
//! `eval "$(scripts/services/ironic-inspect.sh start .work/ironic-32 16385 http://127.0.0.1:15050)"`:
//! it exports `INSPECTOR_TEST_IRONIC32_URL` (Ironic) and `INSPECTOR_TEST_IRONIC32_INSPECTOR_URL`
//! (where Ironic expects the inspector; the tests bind our daemon there, so they run one at
//! a time). Without it the tests print a skip line, unless `CI` is set, where they fail.
//!
//! Our daemon's own `[ironic]` section points at the same Ironic 32.1: it sets the boot
//! device, reboots and powers off the node there (fake-hardware's boot interface cannot boot
//! the ramdisk itself, so Ironic leaves boot to the inspector), and PATCHes the properties.
//! Except for the node of `ironic32_managed_boot_leaves_power_to_ironic`, whose `pxe` boot
//! interface lets Ironic manage boot itself (`?manage_boot=False`): there the daemon must not
//! touch boot device or power.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

use crate::helpers::{TestApp, spawn_app_on, wait_for};
use crate::ironic_api::{IronicApi, STATE_DEADLINE, unique_macs};
use crate::nodes::{assert_inventory_properties, fixture};

const DEADLINE: Duration = Duration::from_secs(60);

/// Where the daemon listens unless the script says otherwise.
const DEFAULT_INSPECTOR_URL: &str = "http://127.0.0.1:15050";

/// One daemon at a time on the fixed address Ironic was configured with.
static FIXED_PORT: Mutex<()> = Mutex::const_new(());

/// The Ironic 32.1 of scripts/services/ironic-inspect.sh, or `None` after a skip line (a
/// panic under CI).
fn ironic32(test: &str) -> Option<IronicApi> {
    let url = crate::service_env::service_var("INSPECTOR_TEST_IRONIC32_URL", test)?;
    Some(IronicApi::new(&url))
}

/// Ironic 32.1, and our daemon (with `extra` configuration appended) on the address it calls,
/// which the guard keeps to this test until dropped; `None` after a skip line (a panic under
/// CI).
async fn ironic32_daemon(
    test: &str,
    extra: &str,
) -> Option<(IronicApi, MutexGuard<'static, ()>, TestApp)> {
    let ironic = ironic32(test)?;
    let port = FIXED_PORT.lock().await;
    let app = daemon_with(&ironic, extra).await;
    Some((ironic, port, app))
}

/// Our daemon on the address Ironic 32.1 calls, talking back to that Ironic, with `extra`
/// configuration appended.
async fn daemon_with(ironic: &IronicApi, extra: &str) -> TestApp {
    let url = std::env::var("INSPECTOR_TEST_IRONIC32_INSPECTOR_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_INSPECTOR_URL.to_string());
    let authority = url
        .trim_end_matches('/')
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("INSPECTOR_TEST_IRONIC32_INSPECTOR_URL {url}: not http://"));
    // Ironic may still be polling the previous test's daemon: wait for the port to free.
    let listener = wait_for(DEADLINE, &format!("{authority} to be free"), || async {
        std::net::TcpListener::bind(authority).ok()
    })
    .await;
    spawn_app_on(
        listener,
        &format!(
            "[ironic]\nironic_url = {}\nmax_retries = 10\nretry_interval = 1\n\
             [processing]\nstore_data = database\n{extra}",
            ironic.url()
        ),
    )
    .await
}

async fn status(app: &TestApp, uuid: &str) -> (u16, Value) {
    let response = app.get(&format!("/v1/introspection/{uuid}"), &[]).await;
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// A manageable fake-hardware node with the `inspector` inspect interface, its PXE NIC as a
/// port and `bmc` as its BMC address, put on inspection through Ironic; returns once Ironic
/// shows `inspect wait` and our daemon knows the node.
async fn inspecting_node(app: &TestApp, ironic: &IronicApi, macs: &[String], bmc: &str) -> String {
    let uuid = ironic
        .enroll(json!({"ipmi_address": bmc}), &[macs[0].as_str()])
        .await;
    ironic
        .patch(
            &uuid,
            json!([{"op": "replace", "path": "/inspect_interface", "value": "inspector"}]),
        )
        .await;
    ironic.manage(&uuid).await;
    ironic.set_provision_state(&uuid, "inspect").await;
    wait_for(DEADLINE, "our daemon to have the node", || async {
        let (code, body) = status(app, &uuid).await;
        (code == 200).then_some(body)
    })
    .await;
    wait_inspect_wait(ironic, &uuid).await;
    // The daemon booted the node into the "ramdisk" (fake power) before it is posted to.
    ironic.wait_for_power_state(&uuid, "power on").await;
    uuid
}

/// Waits until Ironic shows the node in `inspect wait` (failing at once if the inspection
/// failed); the node.
async fn wait_inspect_wait(ironic: &IronicApi, uuid: &str) -> Value {
    wait_for(DEADLINE, "Ironic to show inspect wait", || async {
        let node = ironic.node(uuid).await;
        assert!(
            node["provision_state"] != "inspect failed",
            "inspection failed in Ironic: {}",
            node["last_error"]
        );
        (node["provision_state"] == "inspect wait").then_some(node)
    })
    .await
}

/// Waits until our daemon says the introspection finished; its status.
async fn wait_finished(app: &TestApp, uuid: &str) -> Value {
    wait_for(STATE_DEADLINE, "our introspection to finish", || async {
        let (code, body) = status(app, uuid).await;
        (code == 200 && body["finished"] == true).then_some(body)
    })
    .await
}

/// Posts the agent report of the node with `macs` and `bmc`; waits until our introspection
/// finished without error (processing ends, with the power-off, after the answer) and
/// Ironic's inspection ended in `manageable` without error. The report, and the node as
/// Ironic shows it then.
async fn report_and_wait_inspected(
    app: &TestApp,
    ironic: &IronicApi,
    uuid: &str,
    macs: &[String],
    bmc: &str,
) -> (Value, Value) {
    let payload = fixture("ipa-inventory.json", macs, bmc);
    let response = app.post_continue(&payload).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(
        wait_finished(app, uuid).await,
        json!({"finished": true, "error": null})
    );
    let node = wait_inspection_over(ironic, uuid).await;
    assert_eq!(
        node["provision_state"], "manageable",
        "last_error: {}",
        node["last_error"]
    );
    assert!(node["last_error"].is_null(), "{}", node["last_error"]);
    (payload, node)
}

/// Waits until Ironic's inspection is over: the node left `inspecting` and `inspect wait`
/// (to `manageable`, or to `inspect failed`, which keeps `manageable` as its target state);
/// the node.
async fn wait_inspection_over(ironic: &IronicApi, uuid: &str) -> Value {
    wait_for(DEADLINE, "Ironic to end the inspection", || async {
        let node = ironic.node(uuid).await;
        let over = !matches!(
            node["provision_state"].as_str(),
            Some("inspecting" | "inspect wait")
        );
        over.then_some(node)
    })
    .await
}

#[tokio::test]
async fn ironic32_inspects_through_our_daemon() {
    let Some((ironic, _port, app)) =
        ironic32_daemon("ironic32_inspects_through_our_daemon", "").await
    else {
        return;
    };
    let macs = unique_macs(2);
    let bmc = "192.0.2.41";
    let uuid = inspecting_node(&app, &ironic, &macs, bmc).await;

    let (payload, node) = report_and_wait_inspected(&app, &ironic, &uuid, &macs, bmc).await;
    assert_inventory_properties(&node, &payload);
    assert_eq!(ironic.ports(&uuid).await, vec![macs[0].clone()]);
    // Our power-off was accepted before we said finished; Ironic acts on it afterwards.
    ironic.wait_for_power_state(&uuid, "power off").await;

    // Ironic fetched GET /v1/introspection/<id>/data and kept its inventory.
    let stored = ironic
        .expect(
            Method::GET,
            &format!("/v1/nodes/{uuid}/inventory"),
            None,
            reqwest::StatusCode::OK,
        )
        .await;
    assert_eq!(stored["inventory"], payload["inventory"]);

    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn ironic32_inspection_fails_on_a_ramdisk_error() {
    let Some((ironic, _port, app)) =
        ironic32_daemon("ironic32_inspection_fails_on_a_ramdisk_error", "").await
    else {
        return;
    };
    let macs = unique_macs(2);
    let bmc = "192.0.2.42";
    let uuid = inspecting_node(&app, &ironic, &macs, bmc).await;

    let mut payload = fixture("ipa-inventory.json", &macs, bmc);
    payload["error"] = json!("BOOM: no disks found");
    let response = app.post_continue(&payload).await;
    assert_eq!(response.status(), 400);
    let ours = wait_finished(&app, &uuid).await;
    let error = ours["error"].as_str().unwrap().to_string();

    let node = wait_inspection_over(&ironic, &uuid).await;
    assert_eq!(node["provision_state"], "inspect failed", "{node}");
    assert_eq!(
        node["last_error"],
        format!("ironic-inspector inspection failed: {error}")
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn ironic32_abort_cancels_our_introspection() {
    let Some((ironic, _port, app)) =
        ironic32_daemon("ironic32_abort_cancels_our_introspection", "").await
    else {
        return;
    };
    let macs = unique_macs(2);
    let uuid = inspecting_node(&app, &ironic, &macs, "192.0.2.43").await;

    // Ironic calls POST /v1/introspection/<id>/abort and fails the inspection at once.
    ironic.set_provision_state(&uuid, "abort").await;
    let node = wait_inspection_over(&ironic, &uuid).await;
    assert_eq!(node["provision_state"], "inspect failed", "{node}");
    assert_eq!(node["last_error"], "Inspection was aborted by request.");
    assert_eq!(
        wait_finished(&app, &uuid).await,
        json!({"finished": true, "error": "Canceled by operator"})
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn ironic32_learns_of_our_timeout() {
    let Some((ironic, _port, app)) = ironic32_daemon(
        "ironic32_learns_of_our_timeout",
        "[DEFAULT]\ntimeout = 3\nclean_up_period = 1\n",
    )
    .await
    else {
        return;
    };
    let macs = unique_macs(2);
    // The ramdisk never reports.
    let uuid = inspecting_node(&app, &ironic, &macs, "192.0.2.44").await;
    assert_eq!(
        wait_finished(&app, &uuid).await,
        json!({"finished": true, "error": "Introspection timeout"})
    );
    let node = wait_inspection_over(&ironic, &uuid).await;
    assert_eq!(node["provision_state"], "inspect failed", "{node}");
    assert_eq!(
        node["last_error"],
        "ironic-inspector inspection failed: Introspection timeout"
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn ironic32_inspects_twenty_nodes_at_once() {
    let Some((ironic, _port, app)) =
        ironic32_daemon("ironic32_inspects_twenty_nodes_at_once", "").await
    else {
        return;
    };
    let mut nodes = Vec::new();
    for i in 0..20 {
        let macs = unique_macs(2);
        let bmc = format!("192.0.2.{}", 150 + i);
        let uuid = inspecting_node(&app, &ironic, &macs, &bmc).await;
        nodes.push((uuid, fixture("ipa-inventory.json", &macs, &bmc)));
    }
    let mut posts = Vec::new();
    for (_, payload) in &nodes {
        let client = app.client.clone();
        let url = format!("{}/v1/continue", app.address);
        let payload = payload.clone();
        posts.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&payload)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for post in posts {
        assert_eq!(post.await.unwrap(), 200);
    }
    for (uuid, _) in &nodes {
        let node = wait_inspection_over(&ironic, uuid).await;
        assert_eq!(node["provision_state"], "manageable", "{node}");
        assert_eq!(node["properties"]["cpus"], "4");
        ironic.wait_for_power_state(uuid, "power off").await;
    }
    for (uuid, _) in &nodes {
        ironic.delete_node(uuid).await;
    }
    app.stop().await;
}

/// Lines of Ironic 32.1's log (`INSPECTOR_TEST_IRONIC32_LOG`) that its API wrote for a
/// request to a path starting with `path`, any method and status (`... ironic.api [...]
/// 127.0.0.1 - PUT /v1/nodes/<uuid>/states/power - 202 (28.58ms)`).
fn ironic32_api_requests(path: &str) -> Vec<String> {
    ironic32_log_lines(|line| {
        line.contains(" ironic.api ")
            && [" - GET ", " - PUT ", " - POST ", " - PATCH ", " - DELETE "]
                .iter()
                .filter_map(|verb| line.split_once(verb).map(|(_, rest)| rest))
                .any(|rest| rest.starts_with(path))
    })
}

/// The lines of Ironic 32.1's log that `keep` selects.
fn ironic32_log_lines(keep: impl Fn(&str) -> bool) -> Vec<String> {
    let log = std::env::var("INSPECTOR_TEST_IRONIC32_LOG")
        .unwrap_or_else(|_| panic!("INSPECTOR_TEST_IRONIC32_LOG is not set"));
    let text =
        std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("reading Ironic's log {log}: {e}"));
    text.lines()
        .filter(|line| keep(line))
        .map(str::to_string)
        .collect()
}

/// Power or boot-device requests to Ironic's API for the node: our daemon's, the only
/// client that would send them.
fn power_and_boot_requests(uuid: &str) -> Vec<String> {
    let mut lines = ironic32_api_requests(&format!("/v1/nodes/{uuid}/states/power"));
    lines.extend(ironic32_api_requests(&format!(
        "/v1/nodes/{uuid}/management/boot_device"
    )));
    lines
}

/// Power actions Ironic's conductor took on the node that ended in `state` (`power on`,
/// `power off`), whoever asked.
fn conductor_power_actions(uuid: &str, state: &str) -> usize {
    let done = format!("Successfully set node {uuid} power state to {state} by ");
    ironic32_log_lines(|line| line.contains(" ironic.conductor.utils ") && line.contains(&done))
        .len()
}

/// Managed boot, "pxe boot interface with deploy kernel/ramdisk set, as Ironic's own tests
/// configure it": Ironic boots the inspection ramdisk itself (PXE config, power on by its
/// conductor) and starts our introspection with `?manage_boot=False`, so our daemon must
/// leave boot device and power alone, at the start and at the end (Ironic powers the node
/// off when it tears its ramdisk boot down), and the inspection still completes.
#[tokio::test]
async fn ironic32_managed_boot_leaves_power_to_ironic() {
    let Some((ironic, _port, app)) =
        ironic32_daemon("ironic32_managed_boot_leaves_power_to_ironic", "").await
    else {
        return;
    };
    let macs = unique_macs(2);
    let bmc = "192.0.2.45";
    // Dummy deploy images that scripts/services/ironic-inspect.sh puts in DIR/images (next
    // to the log), a path its file_url_allowed_paths lists.
    let log = std::env::var("INSPECTOR_TEST_IRONIC32_LOG").unwrap();
    let images = std::path::Path::new(&log).parent().unwrap().join("images");
    let image = |name: &str| {
        let path = images.join(name);
        assert!(
            path.is_file(),
            "{}: missing (restart the script)",
            path.display()
        );
        format!("file://{}", path.display())
    };
    let uuid = ironic
        .enroll(
            json!({
                "ipmi_address": bmc,
                "deploy_kernel": image("deploy.kernel"),
                "deploy_ramdisk": image("deploy.initramfs"),
            }),
            &[macs[0].as_str()],
        )
        .await;
    ironic
        .patch(
            &uuid,
            json!([
                {"op": "replace", "path": "/inspect_interface", "value": "inspector"},
                {"op": "replace", "path": "/boot_interface", "value": "pxe"},
            ]),
        )
        .await;
    ironic.manage(&uuid).await;
    ironic.set_provision_state(&uuid, "inspect").await;
    let node = wait_inspect_wait(&ironic, &uuid).await;
    // Ironic started our introspection before it left inspecting.
    let (code, body) = status(&app, &uuid).await;
    assert_eq!(code, 200, "{body}");
    // Ironic decided to manage boot (so it sent ?manage_boot=False) and booted the node.
    assert_eq!(
        node["driver_internal_info"]["inspector_manage_boot"], true,
        "{node}"
    );
    assert_eq!(node["power_state"], "power on", "{node}");
    assert!(
        conductor_power_actions(&uuid, "power on") >= 1,
        "Ironic's conductor did not log powering the node on"
    );

    let (payload, node) = report_and_wait_inspected(&app, &ironic, &uuid, &macs, bmc).await;
    let inventory = &payload["inventory"];
    assert_eq!(
        node["properties"]["cpus"],
        inventory["cpu"]["count"].to_string()
    );
    assert_eq!(
        node["properties"]["memory_mb"],
        inventory["memory"]["physical_mb"].to_string()
    );
    // Ironic, tearing its ramdisk boot down, powered the node off itself.
    assert_eq!(node["power_state"], "power off", "{node}");
    assert!(
        conductor_power_actions(&uuid, "power off") >= 1,
        "Ironic's conductor did not log powering the node off"
    );
    // Our daemon has stopped touching the node (processing ended); none of its requests
    // set a boot device or power state, at the start or at the end.
    assert_eq!(
        power_and_boot_requests(&uuid),
        Vec::<String>::new(),
        "our daemon called Ironic's power or boot-device API for a node whose boot Ironic manages"
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;
}
