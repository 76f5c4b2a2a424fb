//! `POST /v1/introspection/<uuid>` when Ironic misbehaves (things a real Ironic will not do
//! on demand): unreachable, locked, failing, slow.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::fake_ironic::{FakeIronic, Reply, ironic_error, node_json, port_json};
use crate::helpers::{assert_error, free_port, spawn_app_with, wait_for};

const NODE: &str = "9d2c1d5e-6f0b-4f55-8c1e-3a1f2b3c4d5e";
const OTHER: &str = "0b7e8f3a-2c4d-4e6f-8a9b-1c2d3e4f5a6b";

fn ironic_config(url: &str, extra: &str) -> String {
    format!(
        "[ironic]\nironic_url = {url}\nmax_retries = 2\nretry_interval = 0\n\
         connect_timeout = 1\nrequest_timeout = 2\n{extra}"
    )
}

/// Scripts a healthy node with BMC address `bmc` whose port listing answers `ports`.
fn healthy(fake: &FakeIronic, uuid: &str, bmc: &str, ports: Reply) {
    let mut node = node_json(uuid);
    node["driver_info"]["ipmi_address"] = json!(bmc);
    fake.on(
        "GET",
        &format!("/v1/nodes/{uuid}"),
        [Reply::Json(200, node)],
    );
    fake.on(
        "GET",
        &format!("/v1/nodes/{uuid}/validate"),
        [Reply::Json(200, json!({"power": {"result": true}}))],
    );
    fake.on("GET", &format!("/v1/nodes/{uuid}/ports/detail"), [ports]);
    fake.on(
        "PUT",
        &format!("/v1/nodes/{uuid}/management/boot_device"),
        [Reply::Empty(204)],
    );
    fake.on(
        "PUT",
        &format!("/v1/nodes/{uuid}/states/power"),
        [Reply::Empty(202)],
    );
}

fn ports(uuid: &str, mac: &str) -> Reply {
    Reply::Json(
        200,
        json!({"ports": [port_json(&format!("{uuid}-p"), uuid, mac)]}),
    )
}

#[tokio::test]
async fn unreachable_ironic_is_503_in_bounded_time() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let app = spawn_app_with(&ironic_config(&url, "")).await;
    let began = Instant::now();
    let response = app.start_introspection(NODE).await;
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "{:?}",
        began.elapsed()
    );
    // The answer names neither Ironic's address nor the cause; the log has both.
    assert_error(
        response,
        503,
        &format!("Cannot get node {NODE}: Ironic is unavailable, try again later"),
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_locked_node_is_retried_then_introspected() {
    let fake = FakeIronic::start().await;
    healthy(&fake, NODE, "192.0.2.1", ports(NODE, "52:54:00:aa:00:01"));
    let locked = ironic_error(
        409,
        &format!("Node {NODE} is locked by host x, please retry"),
    );
    fake.on(
        "GET",
        &format!("/v1/nodes/{NODE}"),
        [locked.clone(), locked, Reply::Json(200, node_json(NODE))],
    );
    let app = spawn_app_with(&ironic_config(&fake.url, "")).await;
    assert_eq!(app.start_introspection(NODE).await.status(), 202);
    wait_for(Duration::from_secs(10), "the reboot request", || async {
        fake.requests()
            .iter()
            .any(|r| r.method == "PUT" && r.path.ends_with("/states/power"))
            .then_some(())
    })
    .await;
    let reboot = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/states/power"))
        .unwrap();
    assert_eq!(reboot.json(), json!({"target": "rebooting"}));
    app.stop().await;
}

#[tokio::test]
async fn ironic_errors_keep_ironics_message_and_server_errors_are_503() {
    let fake = FakeIronic::start().await;
    fake.on(
        "GET",
        &format!("/v1/nodes/{NODE}"),
        [
            ironic_error(400, "Something is wrong with the request."),
            ironic_error(500, "Something broke inside Ironic."),
        ],
    );
    let app = spawn_app_with(&ironic_config(&fake.url, "")).await;
    assert_error(
        app.start_introspection(NODE).await,
        400,
        &format!("Cannot get node {NODE}: Something is wrong with the request."),
    )
    .await;
    assert_error(
        app.start_introspection(NODE).await,
        503,
        &format!(
            "Cannot get node {NODE}: Ironic answered HTTP 500: Something broke inside Ironic."
        ),
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_failed_reboot_is_the_nodes_error() {
    let fake = FakeIronic::start().await;
    healthy(&fake, NODE, "192.0.2.2", ports(NODE, "52:54:00:aa:00:02"));
    // The boot device failing is only a warning; the reboot failing ends introspection.
    fake.on(
        "PUT",
        &format!("/v1/nodes/{NODE}/management/boot_device"),
        [ironic_error(400, "Invalid boot device pxe specified.")],
    );
    fake.on(
        "PUT",
        &format!("/v1/nodes/{NODE}/states/power"),
        [ironic_error(400, "The power driver is broken.")],
    );
    let app = spawn_app_with(&ironic_config(&fake.url, "")).await;
    assert_eq!(app.start_introspection(NODE).await.status(), 202);
    let body = wait_for(Duration::from_secs(10), "the node to finish", || async {
        let body: serde_json::Value = app
            .get(&format!("/v1/introspection/{NODE}"), &[])
            .await
            .json()
            .await
            .unwrap();
        (body["finished"] == true).then_some(body)
    })
    .await;
    assert_eq!(
        body["error"],
        format!(
            "Failed to power on node {NODE}, check it's power management configuration:\n\
             The power driver is broken."
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn max_concurrency_bounds_background_work() {
    let fake = FakeIronic::start().await;
    let slow_ports = Reply::Slow(
        Duration::from_millis(1500),
        Box::new(ports(NODE, "52:54:00:aa:00:03")),
    );
    healthy(&fake, NODE, "192.0.2.3", slow_ports);
    healthy(&fake, OTHER, "192.0.2.4", ports(OTHER, "52:54:00:aa:00:04"));
    let app = spawn_app_with(&ironic_config(
        &fake.url,
        "[DEFAULT]\nmax_concurrency = 1\n",
    ))
    .await;
    assert_eq!(app.start_introspection(NODE).await.status(), 202);
    wait_for(
        Duration::from_secs(30),
        "the first node's port listing",
        || async {
            fake.requests()
                .iter()
                .any(|r| r.path == format!("/v1/nodes/{NODE}/ports/detail"))
                .then_some(())
        },
    )
    .await;
    assert_eq!(app.start_introspection(OTHER).await.status(), 202);
    let other_power = format!("/v1/nodes/{OTHER}/states/power");
    wait_for(Duration::from_secs(10), "the second reboot", || async {
        fake.requests()
            .iter()
            .any(|r| r.path == other_power)
            .then_some(())
    })
    .await;
    // With one slot, the second node's background part starts only after the first's ended.
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    let first_reboot = paths
        .iter()
        .position(|p| *p == format!("/v1/nodes/{NODE}/states/power"))
        .unwrap();
    let second_ports = paths
        .iter()
        .position(|p| *p == format!("/v1/nodes/{OTHER}/ports/detail"))
        .unwrap();
    assert!(first_reboot < second_ports, "{paths:#?}");
    app.stop().await;
}
