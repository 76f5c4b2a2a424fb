//! The `enroll` node-not-found hook on a fake Ironic: what it sends to create a node (API
//! version, document), and its answers when Ironic is away or refuses. The behaviour itself
//! is proved against the real Ironic (tests/e2e/discovery.rs).

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_ironic::{FakeIronic, Recorded, Reply, ironic_error, node_json, script_processing};
use crate::helpers::{TestApp, assert_error, spawn_app_with};

const NODE: &str = "7a1c9e52-0d4b-4f3e-9c61-2b8d5e4f0a17";
const BMC: &str = "192.0.2.88";
const MAC: &str = "52:54:00:65:43:21";

fn config(url: &str, discovery: &str) -> String {
    format!(
        "[ironic]\nironic_url = {url}\nmax_retries = 1\nretry_interval = 0\nconnect_timeout = 1\n\
         request_timeout = 2\n[processing]\nnode_not_found_hook = enroll\n\
         [discovery]\n{discovery}"
    )
}

fn payload() -> Value {
    json!({
        "cpus": 2, "cpu_arch": "x86_64", "memory_mb": 4096, "local_gb": 40,
        "interfaces": {"eth0": {"mac": MAC, "ip": "10.0.0.5"}},
        "ipmi_address": BMC,
    })
}

/// An Ironic that knows no port and no node, creates NODE, and then answers what
/// processing asks about it.
fn script_empty_ironic(fake: &FakeIronic) {
    fake.on(
        "GET",
        "/v1/ports/detail",
        [Reply::Json(200, json!({"ports": []}))],
    );
    fake.on(
        "GET",
        "/v1/nodes/detail",
        [Reply::Json(
            200,
            json!({"nodes": [node_json("b0a5c1c4-0000-4000-8000-000000000001")]}),
        )],
    );
    let mut node = node_json(NODE);
    node["provision_state"] = json!("enroll");
    node["driver_info"] = json!({"ipmi_address": BMC});
    fake.on("POST", "/v1/nodes", [Reply::Json(201, node.clone())]);
    script_processing(fake, node, MAC);
}

fn creations(fake: &FakeIronic) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/nodes")
        .collect()
}

async fn wait_finished(app: &TestApp) -> Value {
    app.wait_finished(NODE, Duration::from_secs(15)).await
}

#[tokio::test]
async fn a_new_node_is_created_at_1_11_with_the_default_driver_and_the_bmc_address() {
    let fake = FakeIronic::start().await;
    script_empty_ironic(&fake);
    let app = spawn_app_with(&config(&fake.url, "")).await;

    let response = app.post_continue(&payload()).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(
        wait_finished(&app).await,
        json!({"finished": true, "error": null})
    );

    let created = creations(&fake);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].header("X-OpenStack-Ironic-API-Version"), "1.11");
    assert_eq!(
        created[0].json(),
        json!({"driver": "ipmi", "driver_info": {"ipmi_address": BMC}})
    );
    // The port lookup asked for the report's MAC; every other call stayed at 1.6.
    let requests = fake.requests();
    assert!(
        requests.iter().any(|r| r.path == "/v1/ports/detail"
            && r.query.as_deref() == Some(&format!("address={}", MAC.replace(':', "%3A"))[..])),
        "{requests:?}"
    );
    for request in requests.iter().filter(|r| r.path != "/v1/nodes") {
        assert_eq!(
            request.header("X-OpenStack-Ironic-API-Version"),
            "1.6",
            "{} {}",
            request.method,
            request.path
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn extra_fields_are_sent_at_the_version_that_introduced_them() {
    let fake = FakeIronic::start().await;
    script_empty_ironic(&fake);
    let app = spawn_app_with(&config(
        &fake.url,
        "enroll_node_driver = redfish\nenroll_node_fields = resource_class:baremetal\n",
    ))
    .await;

    let response = app.post_continue(&payload()).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    wait_finished(&app).await;
    let created = creations(&fake);
    assert_eq!(created[0].header("X-OpenStack-Ironic-API-Version"), "1.21");
    assert_eq!(
        created[0].json(),
        json!({"driver": "redfish", "driver_info": {"ipmi_address": BMC},
               "resource_class": "baremetal"})
    );
    app.stop().await;
}

#[tokio::test]
async fn ironic_away_while_enrolling_is_a_503_and_nothing_is_recorded() {
    let fake = FakeIronic::start().await;
    script_empty_ironic(&fake);
    // Both attempts of the first lookup (max_retries = 1) find Ironic unavailable.
    fake.on(
        "GET",
        "/v1/ports/detail",
        [
            ironic_error(503, "Service Unavailable"),
            ironic_error(503, "Service Unavailable"),
            Reply::Json(200, json!({"ports": []})),
        ],
    );
    let app = spawn_app_with(&config(&fake.url, "")).await;

    let response = app.post_continue(&payload()).await;
    assert_error(
        response,
        503,
        "Enroll hook, looking up the port of a MAC: Ironic is unavailable, try again later",
    )
    .await;
    assert!(creations(&fake).is_empty());
    assert!(app.state.node_cache.node_uuids().await.unwrap().is_empty());

    // The ramdisk posts again once Ironic is back: one node.
    let response = app.post_continue(&payload()).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    wait_finished(&app).await;
    assert_eq!(creations(&fake).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn ironic_refusing_the_new_node_is_the_hooks_failure() {
    let fake = FakeIronic::start().await;
    script_empty_ironic(&fake);
    fake.on(
        "POST",
        "/v1/nodes",
        [ironic_error(
            400,
            "Could not find a suitable driver or hardware type for ipmi.",
        )],
    );
    let app = spawn_app_with(&config(&fake.url, "")).await;

    let response = app.post_continue(&payload()).await;
    assert_error(
        response,
        400,
        "The following failures happened during running pre-processing hooks for unknown \
         node:\nNode not found hook failed: Ironic refused creating the node: Could not find \
         a suitable driver or hardware type for ipmi.",
    )
    .await;
    assert!(app.state.node_cache.node_uuids().await.unwrap().is_empty());
    app.stop().await;
}
