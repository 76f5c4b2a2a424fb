//! `POST /v1/continue` when Ironic misbehaves or new IPMI credentials are involved: the parts
//! a real fake-hardware Ironic cannot show on demand.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_ironic::{FakeIronic, Reply, ironic_error, node_json, script_processing};
use crate::helpers::{TestApp, spawn_app_with};

const NODE: &str = "5f0e2d1c-3b4a-4968-8776-a5b4c3d2e1f0";
const BMC: &str = "192.0.2.77";
const MAC: &str = "52:54:00:12:34:56";

fn node_path(suffix: &str) -> String {
    format!("/v1/nodes/{NODE}{suffix}")
}

fn config(url: &str, extra: &str) -> String {
    format!(
        "[ironic]\nironic_url = {url}\nmax_retries = 1\nretry_interval = 0\nconnect_timeout = 1\n\
         request_timeout = 2\n{extra}"
    )
}

/// A node Ironic knows, with no ports yet, answering what processing asks.
fn script_node(fake: &FakeIronic, node: Value) {
    script_processing(fake, node, MAC);
}

/// A daemon on the fake Ironic with NODE under introspection, as its start recorded it.
async fn daemon_introspecting(fake: &FakeIronic) -> TestApp {
    let app = spawn_app_with(&config(&fake.url, "")).await;
    app.state
        .node_cache
        .add_node(NODE, Some(BMC))
        .await
        .unwrap();
    app
}

/// Waits until NODE's introspection finished; its status.
async fn finished(app: &TestApp) -> Value {
    app.wait_finished(NODE, Duration::from_secs(15)).await
}

fn payload() -> Value {
    json!({
        "cpus": 2, "cpu_arch": "x86_64", "memory_mb": 4096, "local_gb": 40,
        "interfaces": {"eth0": {"mac": MAC, "ip": "10.0.0.5"}},
        "ipmi_address": BMC,
    })
}

#[tokio::test]
async fn new_ipmi_credentials_are_given_to_the_ramdisk_and_the_driver() {
    let fake = FakeIronic::start().await;
    let mut node = node_json(NODE);
    node["driver_info"] = json!({});
    node["provision_state"] = json!("enroll");
    script_node(&fake, node);
    fake.on(
        "GET",
        &node_path("/management/boot_device"),
        [Reply::Json(
            200,
            json!({"boot_device": "pxe", "persistent": false}),
        )],
    );
    let app = spawn_app_with(&config(&fake.url, "")).await;
    // As the start would have recorded it.
    let cache = &app.state.node_cache;
    cache.add_node(NODE, Some(BMC)).await.unwrap();
    cache
        .set_option(NODE, "new_ipmi_credentials", &json!(["admin", "Secret42"]))
        .await
        .unwrap();

    let response = app.post_continue(&payload()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"uuid": NODE, "ipmi_setup_credentials": true, "ipmi_username": "admin",
               "ipmi_password": "Secret42"})
    );
    assert_eq!(
        finished(&app).await,
        json!({"finished": true, "error": null})
    );
    let requests = fake.requests();
    let credentials_patch = requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.json())
        .find(|body| body.to_string().contains("ipmi_password"))
        .expect("driver_info was patched");
    assert_eq!(
        credentials_patch,
        json!([
            {"op": "add", "path": "/driver_info/ipmi_username", "value": "admin"},
            {"op": "add", "path": "/driver_info/ipmi_password", "value": "Secret42"},
            {"op": "add", "path": "/driver_info/ipmi_address", "value": BMC},
        ])
    );
    let power = requests
        .iter()
        .find(|r| r.path == node_path("/states/power"))
        .unwrap();
    assert_eq!(power.json(), json!({"target": "power off"}));
    app.stop().await;
}

#[tokio::test]
async fn a_failed_power_off_is_the_nodes_error() {
    let fake = FakeIronic::start().await;
    script_node(&fake, node_json(NODE));
    fake.on(
        "PUT",
        &node_path("/states/power"),
        [ironic_error(400, "The power driver is broken.")],
    );
    let app = daemon_introspecting(&fake).await;
    let response = app.post_continue(&payload()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        finished(&app).await["error"],
        format!(
            "Failed to power off node {NODE}, check it's power management configuration: The \
             power driver is broken."
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn a_node_gone_from_ironic_is_404_and_finished() {
    let fake = FakeIronic::start().await;
    fake.on(
        "GET",
        &node_path(""),
        [ironic_error(
            404,
            &format!("Node {NODE} could not be found."),
        )],
    );
    let app = daemon_introspecting(&fake).await;
    let response = app.post_continue(&payload()).await;
    assert_eq!(response.status(), 404);
    let message = format!("Node UUID {NODE} was found in cache, but is not found in Ironic");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": {"message": message}})
    );
    assert_eq!(
        app.introspection_status(NODE).await,
        json!({"finished": true, "error": message})
    );
    app.stop().await;
}

#[tokio::test]
async fn unreachable_ironic_is_503_and_the_report_can_be_retried() {
    let fake = FakeIronic::start().await;
    fake.on("GET", &node_path(""), [Reply::Empty(503)]);
    let app = daemon_introspecting(&fake).await;
    let response = app.post_continue(&payload()).await;
    assert_eq!(response.status(), 503);
    // Not finished: the ramdisk retries on 5xx, and then it goes through.
    assert_eq!(
        app.introspection_status(NODE).await,
        json!({"finished": false, "error": null})
    );
    script_node(&fake, node_json(NODE));
    assert_eq!(app.post_continue(&payload()).await.status(), 200);
    assert_eq!(
        finished(&app).await,
        json!({"finished": true, "error": null})
    );
    app.stop().await;
}

#[tokio::test]
async fn a_node_moved_to_a_wrong_state_is_refused_and_finished() {
    let fake = FakeIronic::start().await;
    let mut node = node_json(NODE);
    node["provision_state"] = json!("active");
    script_node(&fake, node);
    let app = daemon_introspecting(&fake).await;
    let response = app.post_continue(&payload()).await;
    assert_eq!(response.status(), 400);
    let body = app.introspection_status(NODE).await;
    assert_eq!(body["finished"], true);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("Invalid provision state \"active\""),
        "{body}"
    );
    // Nothing was written to Ironic.
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_posts_for_one_node_are_processed_once() {
    let fake = FakeIronic::start().await;
    script_node(&fake, node_json(NODE));
    // A slow power-off keeps the node busy while the second post waits.
    fake.on(
        "PUT",
        &node_path("/states/power"),
        [Reply::Slow(
            Duration::from_millis(500),
            Box::new(Reply::Empty(202)),
        )],
    );
    let app = daemon_introspecting(&fake).await;
    let body = payload();
    let (first, second) = tokio::join!(app.post_continue(&body), app.post_continue(&body));
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);
    let refused: Value = if first.status() == 400 { first } else { second }
        .json()
        .await
        .unwrap();
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "Introspection for node {NODE} already finished on"
            )),
        "{refused}"
    );
    let port_creations = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/ports")
        .count();
    assert_eq!(port_creations, 1);
    assert_eq!(
        finished(&app).await,
        json!({"finished": true, "error": null})
    );
    app.stop().await;
}

/// A daemon that stopped between the answer and the end left nodes marked as processed: the
/// start-up step finishes those (powering off, or first handing the driver new credentials),
/// once each, and leaves nodes still waiting for their ramdisk alone.
#[tokio::test]
async fn processed_nodes_left_unfinished_are_finished_once() {
    const CREDENTIALS: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    const WAITING: &str = "7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e";
    let fake = FakeIronic::start().await;
    fake.on("PUT", &node_path("/states/power"), [Reply::Empty(202)]);
    let other = |suffix: &str| format!("/v1/nodes/{CREDENTIALS}{suffix}");
    fake.on(
        "GET",
        &other(""),
        [Reply::Json(200, node_json(CREDENTIALS))],
    );
    fake.on(
        "GET",
        &other("/ports/detail"),
        [Reply::Json(200, json!({"ports": []}))],
    );
    fake.on(
        "PATCH",
        &other(""),
        [Reply::Json(200, node_json(CREDENTIALS))],
    );
    fake.on(
        "GET",
        &other("/management/boot_device"),
        [Reply::Json(
            200,
            json!({"boot_device": "pxe", "persistent": false}),
        )],
    );
    fake.on("PUT", &other("/states/power"), [Reply::Empty(202)]);
    let app = spawn_app_with(&config(&fake.url, "")).await;
    let cache = &app.state.node_cache;
    let marker = ironic_inspector::process::FINISHING_OPTION;
    cache.add_node(NODE, Some(BMC)).await.unwrap();
    cache
        .set_option(NODE, marker, &json!({"ipmi_address": BMC}))
        .await
        .unwrap();
    cache.add_node(CREDENTIALS, None).await.unwrap();
    cache
        .set_option(
            CREDENTIALS,
            "new_ipmi_credentials",
            &json!(["admin", "Secret42"]),
        )
        .await
        .unwrap();
    cache
        .set_option(CREDENTIALS, marker, &json!({"ipmi_address": null}))
        .await
        .unwrap();
    cache.add_node(WAITING, Some("192.0.2.79")).await.unwrap();

    // The daemon ran the step when it started, maybe before these nodes existed; run it
    // again, as a restart would.
    ironic_inspector::process::resume_finishing(&app.state)
        .await
        .unwrap();
    let finished = json!({"finished": true, "error": null});
    assert_eq!(app.introspection_status(NODE).await, finished);
    assert_eq!(app.introspection_status(CREDENTIALS).await, finished);
    assert_eq!(
        app.introspection_status(WAITING).await,
        json!({"finished": false, "error": null})
    );
    // Nothing is left to do: another run changes nothing.
    assert!(
        ironic_inspector::process::resume_finishing(&app.state)
            .await
            .unwrap()
            .is_empty()
    );
    let requests = fake.requests();
    let count = |method: &str, path: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    };
    assert_eq!(count("PUT", &node_path("/states/power")), 1);
    assert_eq!(count("PUT", &other("/states/power")), 1);
    let patch = requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path == other(""))
        .expect("driver_info was patched");
    assert_eq!(
        patch.json(),
        json!([
            {"op": "add", "path": "/driver_info/ipmi_username", "value": "admin"},
            {"op": "add", "path": "/driver_info/ipmi_password", "value": "Secret42"},
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn a_database_failure_in_the_lookup_is_not_shown_to_the_ramdisk() {
    let app = spawn_app_with("").await;
    // A lookup that cannot run: its SQL error must stay in the log.
    sqlx::query("DROP TABLE attributes")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let response = app.post_continue(&payload()).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Look up error: Internal server error"),
        "{message}"
    );
    assert!(!message.contains("attributes"), "{message}");
    app.stop().await;
}
