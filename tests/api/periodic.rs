//! The clean-up loop: timeouts, and nodes deleted from Ironic.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_ironic::{FakeIronic, Reply};
use crate::helpers::{TestApp, spawn_app_with, wait_for};

const RUNNING: &str = "3b0c8e1a-5d2f-4a6b-9c7d-1e2f3a4b5c6d";
const GONE: &str = "4c1d9f2b-6e3a-4b7c-8d9e-2f3a4b5c6d7e";

async fn status(app: &TestApp, uuid: &str) -> reqwest::Response {
    app.get(&format!("/v1/introspection/{uuid}"), &[]).await
}

#[tokio::test]
async fn timed_out_introspection_is_finished_and_deleted_nodes_are_dropped() {
    let fake = FakeIronic::start().await;
    // Ironic knows RUNNING only.
    fake.on(
        "GET",
        "/v1/nodes",
        [Reply::Json(200, json!({"nodes": [{"uuid": RUNNING}]}))],
    );
    let app = spawn_app_with(&format!(
        "[DEFAULT]\ntimeout = 1\nclean_up_period = 1\n[ironic]\nironic_url = {}\nmax_retries = 0\n",
        fake.url
    ))
    .await;
    app.state
        .node_cache
        .add_node(RUNNING, Some("192.0.2.5"))
        .await
        .unwrap();
    app.state.node_cache.add_node(GONE, None).await.unwrap();
    let body: Value = wait_for(Duration::from_secs(15), "the timeout", || async {
        let body: Value = status(&app, RUNNING).await.json().await.unwrap();
        (body["finished"] == true).then_some(body)
    })
    .await;
    assert_eq!(
        body,
        json!({"finished": true, "error": "Introspection timeout"})
    );
    // Its lookup attributes went with it.
    assert!(
        app.state
            .node_cache
            .attributes(RUNNING)
            .await
            .unwrap()
            .is_empty()
    );
    // The node Ironic does not know is forgotten.
    wait_for(
        Duration::from_secs(15),
        "the deleted node to be dropped",
        || async { (status(&app, GONE).await.status() == 404).then_some(()) },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn one_clean_up_step_keeps_recent_nodes() {
    let fake = FakeIronic::start().await;
    fake.on(
        "GET",
        "/v1/nodes",
        [Reply::Json(200, json!({"nodes": [{"uuid": RUNNING}]}))],
    );
    let app = spawn_app_with(&format!(
        "[ironic]\nironic_url = {}\nmax_retries = 0\n",
        fake.url
    ))
    .await;
    app.state.node_cache.add_node(RUNNING, None).await.unwrap();
    // The default timeout (3600 s) is far away.
    let mut state = app.state.clone();
    let mut config = (*state.config).clone();
    config.default.timeout = 3600;
    state.config = std::sync::Arc::new(config);
    let timed_out = ironic_inspector::periodic::clean_up_step(&state)
        .await
        .unwrap();
    assert!(timed_out.is_empty());
    let body: Value = status(&app, RUNNING).await.json().await.unwrap();
    assert_eq!(body, json!({"finished": false, "error": null}));
    app.stop().await;
}
