//! What Ironic's own inspect interface needs beyond 2.2: `manage_boot=False` and abort.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_ironic::{FakeIronic, Reply, node_json, port_json};
use crate::helpers::{TestApp, assert_error, spawn_app_with, wait_for};

const NODE: &str = "6e2f0a1b-7c3d-4e5f-8a9b-0c1d2e3f4a5b";
const MAC: &str = "52:54:00:6e:2f:01";
const BMC: &str = "192.0.2.88";

fn path(suffix: &str) -> String {
    format!("/v1/nodes/{NODE}{suffix}")
}

async fn daemon(fake: &FakeIronic) -> TestApp {
    let mut node = node_json(NODE);
    node["driver_info"]["ipmi_address"] = json!(BMC);
    node["provision_state"] = json!("inspect wait");
    fake.on("GET", &path(""), [Reply::Json(200, node.clone())]);
    fake.on(
        "GET",
        &path("/validate"),
        [Reply::Json(200, json!({"power": {"result": true}}))],
    );
    fake.on(
        "GET",
        &path("/ports/detail"),
        [Reply::Json(
            200,
            json!({"ports": [port_json("p1", NODE, MAC)]}),
        )],
    );
    fake.on("PATCH", &path(""), [Reply::Json(200, node)]);
    fake.on("PUT", &path("/management/boot_device"), [Reply::Empty(204)]);
    fake.on("PUT", &path("/states/power"), [Reply::Empty(202)]);
    spawn_app_with(&format!(
        "[ironic]\nironic_url = {}\nmax_retries = 0\n",
        fake.url
    ))
    .await
}

async fn post(app: &TestApp, suffix: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/introspection/{NODE}{suffix}", app.address))
        .json(&json!({"uuid": NODE}))
        .header("X-Auth-Token", "notused")
        .send()
        .await
        .unwrap()
}

async fn status(app: &TestApp) -> Value {
    app.get(&format!("/v1/introspection/{NODE}"), &[])
        .await
        .json()
        .await
        .unwrap()
}

fn power_or_boot_calls(fake: &FakeIronic) -> usize {
    fake.requests().iter().filter(|r| r.method == "PUT").count()
}

/// `POST …/abort` is accepted and the status says the operator canceled the introspection.
async fn abort_and_see_it_canceled(app: &TestApp) {
    assert_eq!(post(app, "/abort").await.status(), 202);
    assert_eq!(
        status(app).await,
        json!({"finished": true, "error": "Canceled by operator"})
    );
}

#[tokio::test]
async fn managed_boot_leaves_boot_device_and_power_to_ironic() {
    let fake = FakeIronic::start().await;
    let app = daemon(&fake).await;
    assert_eq!(post(&app, "?manage_boot=False").await.status(), 202);
    app.wait_lookup_macs(NODE, Duration::from_secs(10)).await;
    let payload = json!({
        "cpus": 2, "cpu_arch": "x86_64", "memory_mb": 4096, "local_gb": 40,
        "interfaces": {"eth0": {"mac": MAC, "ip": "10.0.0.7"}}, "ipmi_address": BMC,
    });
    let response = app.post_continue(&payload).await;
    assert_eq!(response.status(), 200);
    wait_for(Duration::from_secs(10), "the end", || async {
        (status(&app).await["finished"] == true).then_some(())
    })
    .await;
    assert_eq!(status(&app).await, json!({"finished": true, "error": null}));
    assert_eq!(power_or_boot_calls(&fake), 0, "{:?}", fake.requests());
    app.stop().await;
}

#[tokio::test]
async fn manage_boot_takes_true_or_false_in_any_case() {
    let fake = FakeIronic::start().await;
    let app = daemon(&fake).await;
    assert_error(
        post(&app, "?manage_boot=maybe").await,
        400,
        "Invalid value for manage_boot: expected true or false, got \"maybe\"",
    )
    .await;
    assert_eq!(post(&app, "?manage_boot=TRUE").await.status(), 202);
    wait_for(Duration::from_secs(10), "the reboot", || async {
        fake.requests()
            .iter()
            .any(|r| r.path == path("/states/power"))
            .then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn abort_stops_a_running_introspection() {
    let fake = FakeIronic::start().await;
    let app = daemon(&fake).await;
    let unknown = "00000000-0000-4000-8000-00000000abcd";
    let response = app
        .client
        .post(format!("{}/v1/introspection/{unknown}/abort", app.address))
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        404,
        &format!("Could not find node {unknown} in cache"),
    )
    .await;

    assert_eq!(post(&app, "").await.status(), 202);
    let reboot = path("/states/power");
    wait_for(Duration::from_secs(10), "the reboot", || async {
        fake.requests()
            .iter()
            .any(|r| r.path == reboot)
            .then_some(())
    })
    .await;

    // Busy: someone holds the node.
    let held = app.state.node_cache.lock(NODE).await;
    assert_error(
        post(&app, "/abort").await,
        409,
        &format!("Node {NODE} is locked, please, retry later"),
    )
    .await;
    drop(held);

    abort_and_see_it_canceled(&app).await;
    // Its MACs are no longer looked up, and it is powered off (we manage its boot).
    assert!(app.state.node_cache.active_macs().await.unwrap().is_empty());
    wait_for(Duration::from_secs(10), "the power-off", || async {
        fake.requests()
            .iter()
            .any(|r| r.path == reboot && r.json() == json!({"target": "power off"}))
            .then_some(())
    })
    .await;
    // The abort's background part holds the node until Ironic answered that power-off; a
    // second abort before then would be refused as busy (409).
    drop(app.state.node_cache.lock(NODE).await);

    // Aborting again changes nothing; the ramdisk's late report finds no node.
    abort_and_see_it_canceled(&app).await;
    let response = app
        .post_continue(
            &json!({"interfaces": {"eth0": {"mac": MAC, "ip": "10.0.0.7"}}, "ipmi_address": BMC,
                      "cpus": 1, "cpu_arch": "x86_64", "memory_mb": 1, "local_gb": 1}),
        )
        .await;
    assert_eq!(response.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn abort_of_a_managed_boot_does_not_touch_power() {
    let fake = FakeIronic::start().await;
    let app = daemon(&fake).await;
    assert_eq!(post(&app, "?manage_boot=false").await.status(), 202);
    app.wait_lookup_macs(NODE, Duration::from_secs(10)).await;
    // It holds the node from before it adds the MAC until it ends (an abort meanwhile is
    // refused as busy): taking the node's lock waits for that end.
    drop(app.state.node_cache.lock(NODE).await);
    abort_and_see_it_canceled(&app).await;
    app.stop().await;
    assert_eq!(power_or_boot_calls(&fake), 0, "{:?}", fake.requests());
}
