//! The clean-up job: timeouts, old statuses, and nodes deleted from Ironic. Its steps are run
//! directly, with the clock read as the test says; that the daemon runs it on its own, at once
//! and then every period, is shown by a node it drops at start-up and by the loop's own tests
//! on tokio's paused clock (`src/periodic.rs`).

use std::time::Duration;

use ironic_inspector::api::AppState;
use ironic_inspector::node_cache::now_unix;
use ironic_inspector::periodic::clean_up_step_at;
use serde_json::{Value, json};

use crate::fake_ironic::{FakeIronic, Reply};
use crate::helpers::{TestApp, spawn_app_seeded, wait_for};

const RUNNING: &str = "3b0c8e1a-5d2f-4a6b-9c7d-1e2f3a4b5c6d";
const GONE: &str = "4c1d9f2b-6e3a-4b7c-8d9e-2f3a4b5c6d7e";

async fn status(app: &TestApp, uuid: &str) -> reqwest::Response {
    app.get(&format!("/v1/introspection/{uuid}"), &[]).await
}

/// A daemon with the clean-up on (`timeout` seconds), whose Ironic (the fake, returned to
/// keep it running) knows RUNNING only, and whose cache held RUNNING (with a BMC address)
/// and GONE before it started; once the clean-up's first run, at start-up, is over.
async fn daemon(timeout: i64) -> (FakeIronic, TestApp) {
    let fake = FakeIronic::start().await;
    fake.on(
        "GET",
        "/v1/nodes",
        [Reply::Json(200, json!({"nodes": [{"uuid": RUNNING}]}))],
    );
    // An hour between runs: the test runs the steps it needs itself.
    let config = format!(
        "[DEFAULT]\ntimeout = {timeout}\nclean_up_period = 3600\n\
         [ironic]\nironic_url = {}\nmax_retries = 0\n",
        fake.url
    );
    let app = spawn_app_seeded(&config, async |state: &AppState| {
        state
            .node_cache
            .add_node(RUNNING, Some("192.0.2.5"))
            .await
            .unwrap();
        state.node_cache.add_node(GONE, None).await.unwrap();
    })
    .await;
    wait_first_run(&app).await;
    (fake, app)
}

/// Waits until the clean-up's first run, which comes at once, has forgotten the node Ironic
/// does not know: the last thing that run changes (the node's status is then 404).
async fn wait_first_run(app: &TestApp) {
    wait_for(
        Duration::from_secs(15),
        "the deleted node to be dropped",
        || async { (status(app, GONE).await.status() == 404).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn the_daemon_drops_nodes_deleted_from_ironic_at_start_up() {
    // `daemon` returned once the run at start-up dropped GONE; RUNNING, which Ironic knows,
    // stays.
    let (_ironic, app) = daemon(3600).await;
    assert_eq!(
        status(&app, RUNNING).await.json::<Value>().await.unwrap(),
        json!({"finished": false, "error": null})
    );
    app.stop().await;
}

#[tokio::test]
async fn a_clean_up_past_the_timeout_finishes_the_introspection() {
    // Ten minutes: the loop's own first run, however late on a busy machine, finds nothing
    // timed out; ten minutes and a second from now the step does.
    let (_ironic, app) = daemon(600).await;
    let timed_out = clean_up_step_at(&app.state, now_unix() + 601.0)
        .await
        .unwrap();
    assert_eq!(timed_out, vec![RUNNING.to_string()]);
    let body: Value = status(&app, RUNNING).await.json().await.unwrap();
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
    app.stop().await;
}

#[tokio::test]
async fn a_clean_up_before_the_timeout_keeps_the_introspection() {
    let (_ironic, app) = daemon(3600).await;
    let timed_out = clean_up_step_at(&app.state, now_unix() + 3590.0)
        .await
        .unwrap();
    assert!(timed_out.is_empty());
    let body: Value = status(&app, RUNNING).await.json().await.unwrap();
    assert_eq!(body, json!({"finished": false, "error": null}));
    app.stop().await;
}
