//! The daemon against the real Ironic through the fault proxy: slow answers, hangs, resets,
//! and 409/500/503 bursts, for the start of introspection (`POST /v1/introspection/<uuid>`,
//! and its background reboot) and for processing (`POST /v1/continue`, and its background
//! power-off). Requests to the daemon get bounded answers that name Ironic; background work
//! retries what can be retried and otherwise fails the node with a message naming Ironic.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fault_proxy::{FaultProxy, Match};
use crate::helpers::{TestApp, spawn_app_customised};
use crate::ironic_api::{IronicApi, unique_macs};
use crate::nodes::{liberty_report, managed_node, start_and_wait_rebooted};

/// Ironic client settings for tests where Ironic fails: 2 retries 1 s apart, 2 s to
/// connect, 5 s an attempt (a loaded CI box may make the real Ironic that slow).
pub const FAST_IRONIC: &str =
    "connect_timeout = 2\nrequest_timeout = 5\nmax_retries = 2\nretry_interval = 1\n";
/// Seconds one attempt may take under [`FAST_IRONIC`].
const REQUEST_TIMEOUT_SECS: u64 = 5;
/// Attempts of one call under [`FAST_IRONIC`].
pub const ATTEMPTS: usize = 3;
/// The longest one Ironic call may take under [`FAST_IRONIC`]: each of 3 attempts may wait
/// 5 s for a connection slot and 5 s for the answer, with two pauses of 1 s between them.
pub const CALL_BOUND: Duration = Duration::from_secs(3 * (2 * REQUEST_TIMEOUT_SECS) + 2);
/// Ironic client settings for tests where injected bursts must be ridden out: retries to
/// spare for a real "node locked" on top of the injected ones.
pub const PATIENT_IRONIC: &str =
    "connect_timeout = 2\nrequest_timeout = 10\nmax_retries = 6\nretry_interval = 1\n";
/// What a busy 2-core CI box may add to a bound.
pub const MARGIN: Duration = Duration::from_secs(30);
/// How long background work may take here, at most.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// The `[ironic]` section pointing at the proxy with `settings`, plus store_data = database.
pub fn fault_config(proxy: &FaultProxy, settings: &str, extra: &str) -> String {
    format!(
        "[ironic]\nironic_url = {}\n{settings}[processing]\nstore_data = database\n{extra}",
        proxy.url
    )
}

/// A daemon in this process whose Ironic is behind `proxy`, with [`FAST_IRONIC`].
pub async fn daemon(proxy: &FaultProxy, extra: &str) -> TestApp {
    spawn_app_customised(&fault_config(proxy, FAST_IRONIC, extra), |_| {}).await
}

/// The real Ironic, the fault proxy in front of it and a daemon behind the proxy with the
/// Ironic client `settings` ([`FAST_IRONIC`], [`PATIENT_IRONIC`]); `None` after a skip
/// line when Ironic is not running.
async fn behind_proxy(settings: &str) -> Option<(IronicApi, FaultProxy, TestApp)> {
    let ironic = IronicApi::for_test(module_path!())?;
    let proxy = FaultProxy::start(ironic.url()).await;
    let app = spawn_app_customised(&fault_config(&proxy, settings, ""), |_| {}).await;
    Some((ironic, proxy, app))
}

/// `POST /v1/introspection/<uuid>` and how long the answer took.
pub async fn start(app: &TestApp, uuid: &str) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let response = app.start_introspection(uuid).await;
    (response, started.elapsed())
}

/// Asserts the status and the exact error message of an answer.
pub async fn assert_answer(response: reqwest::Response, status: u16, message: &str) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": {"message": message}}));
}

/// Asserts that an answer came within the bound the configuration gives.
pub fn assert_bounded(elapsed: Duration, bound: Duration, what: &str) {
    assert!(
        elapsed <= bound + MARGIN,
        "{what} took {elapsed:?}; the configuration bounds it at {bound:?}"
    );
}

/// A managed node whose introspection `app` started; returns once Ironic rebooted it.
pub async fn waiting_node(app: &TestApp, ironic: &IronicApi, bmc: &str) -> String {
    let uuid = managed_node(ironic, bmc).await;
    start_and_wait_rebooted(app, ironic, &uuid).await;
    uuid
}

/// Asserts what Ironic holds after a successful processing of `payload`: the properties,
/// one port (the PXE NIC's), and (awaited) power off.
pub async fn assert_introspected(ironic: &IronicApi, uuid: &str, payload: &Value, pxe_mac: &str) {
    let node = ironic.node(uuid).await;
    let properties = &node["properties"];
    for field in ["cpus", "memory_mb", "local_gb"] {
        assert_eq!(properties[field], payload[field].to_string(), "{field}");
    }
    assert_eq!(properties["cpu_arch"], payload["cpu_arch"]);
    assert_eq!(ironic.ports(uuid).await, vec![pxe_mac.to_string()]);
    // Ironic accepts a power action (202) and carries it out afterwards.
    ironic
        .wait_for_power_state_within(uuid, "power off", DEADLINE)
        .await;
}

fn node_path(uuid: &str) -> String {
    format!("/v1/nodes/{uuid}")
}

#[tokio::test]
async fn start_answers_503_in_bounded_time_while_ironic_hangs_or_resets() {
    let Some((ironic, proxy, app)) = behind_proxy(FAST_IRONIC).await else {
        return;
    };
    let uuid = managed_node(&ironic, "192.0.2.61").await;
    let get_node = Match::new("GET", &node_path(&uuid));
    let unavailable = format!("Cannot get node {uuid}: Ironic is unavailable, try again later");

    proxy.hang(get_node.clone(), None);
    let (response, elapsed) = start(&app, &uuid).await;
    assert_answer(response, 503, &unavailable).await;
    assert_bounded(elapsed, CALL_BOUND, "a start while Ironic hangs");
    println!("start while Ironic hangs: 503 after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(ATTEMPTS as u64 * REQUEST_TIMEOUT_SECS),
        "each of the {ATTEMPTS} attempts waits for its timeout: {elapsed:?}"
    );
    assert_eq!(proxy.count(&get_node), ATTEMPTS);

    proxy.clear();
    proxy.reset(get_node.clone(), None);
    let (response, elapsed) = start(&app, &uuid).await;
    assert_answer(response, 503, &unavailable).await;
    assert_bounded(elapsed, CALL_BOUND, "a start while Ironic resets");
    println!("start while Ironic resets: 503 after {elapsed:?}");
    assert_eq!(proxy.count(&get_node), 2 * ATTEMPTS);

    // Nothing was recorded, and once Ironic behaves the same request goes through.
    assert_eq!(
        app.get(&format!("/v1/introspection/{uuid}"), &[])
            .await
            .status(),
        404
    );
    proxy.clear();
    start_and_wait_rebooted(&app, &ironic, &uuid).await;
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn start_rides_out_slow_answers_and_409_503_bursts_and_names_ironic_on_500() {
    let Some((ironic, proxy, app)) = behind_proxy(PATIENT_IRONIC).await else {
        return;
    };
    let uuid = managed_node(&ironic, "192.0.2.62").await;
    let get_node = Match::new("GET", &node_path(&uuid));
    let power = Match::new("PUT", &format!("{}/states/power", node_path(&uuid)));

    // A server error is not retried: the caller hears of it at once, with Ironic named.
    proxy.fail(get_node.clone(), 1, 500);
    let (response, _) = start(&app, &uuid).await;
    assert_answer(
        response,
        503,
        &format!(
            "Cannot get node {uuid}: Ironic answered HTTP 500: Injected failure 500 for /v1/nodes/{uuid}."
        ),
    )
    .await;

    // Every answer slow (well within request_timeout), the node locked twice, and the
    // reboot in the background meeting two 503s: all retried, the start goes through.
    proxy.delay(Match::any(), Duration::from_millis(300));
    proxy.fail(get_node.clone(), 2, 409);
    proxy.fail(power.clone(), 2, 503);
    start_and_wait_rebooted(&app, &ironic, &uuid).await;
    assert_eq!(
        app.introspection_status(&uuid).await,
        json!({"finished": false, "error": null})
    );
    // At least: Ironic itself may answer "locked" now and then.
    assert!(
        proxy.count(&get_node) > 3,
        "one 500, two 409s, then the answer"
    );
    assert!(proxy.count(&power) >= 3, "two 503s, then the reboot");
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn a_reboot_that_hangs_or_fails_ends_introspection_with_ironic_named() {
    let Some((ironic, proxy, app)) = behind_proxy(FAST_IRONIC).await else {
        return;
    };
    let hung = managed_node(&ironic, "192.0.2.63").await;
    let failed = managed_node(&ironic, "192.0.2.64").await;
    let power = |uuid: &str| Match::new("PUT", &format!("{}/states/power", node_path(uuid)));
    proxy.hang(power(&hung), None);
    proxy.fail(power(&failed), 1, 500);

    assert_eq!(start(&app, &hung).await.0.status(), 202);
    assert_eq!(start(&app, &failed).await.0.status(), 202);
    let began = Instant::now();
    let status = app.wait_finished(&hung, DEADLINE).await;
    assert_bounded(began.elapsed(), CALL_BOUND, "the failure of a hung reboot");
    println!(
        "hung reboot: node failed {:?} after the 202",
        began.elapsed()
    );
    let error = status["error"].as_str().unwrap();
    let prefix = format!(
        "Failed to power on node {hung}, check it's power management configuration:\n\
         Ironic is unreachable at {}/: timed out waiting for the answer",
        proxy.url
    );
    assert!(error.starts_with(&prefix), "{error}");
    assert!(error.ends_with("(after 2 retries)"), "{error}");
    assert_eq!(proxy.count(&power(&hung)), ATTEMPTS);

    let status = app.wait_finished(&failed, DEADLINE).await;
    assert_eq!(
        status["error"],
        format!(
            "Failed to power on node {failed}, check it's power management configuration:\n\
             Ironic answered HTTP 500: Injected failure 500 for /v1/nodes/{failed}/states/power."
        )
    );
    for uuid in [hung, failed] {
        ironic.delete_node(&uuid).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_report_meeting_a_hang_a_reset_or_a_500_is_503_and_goes_through_later() {
    let Some((ironic, proxy, app)) = behind_proxy(FAST_IRONIC).await else {
        return;
    };
    let bmc = "192.0.2.65";
    let uuid = waiting_node(&app, &ironic, bmc).await;
    let macs = unique_macs(2);
    let payload = liberty_report(&macs, bmc);
    let waiting = json!({"finished": false, "error": null});

    // The node read hangs: 503, within the bound, and the node still waits.
    proxy.hang(Match::new("GET", &node_path(&uuid)), None);
    let began = Instant::now();
    let response = app.post_continue(&payload).await;
    assert_bounded(began.elapsed(), CALL_BOUND, "a report while Ironic hangs");
    println!("report while Ironic hangs: 503 after {:?}", began.elapsed());
    assert_answer(response, 503, "Ironic is unavailable, try again later").await;
    assert_eq!(app.introspection_status(&uuid).await, waiting);

    // The port creation is reset.
    proxy.clear();
    proxy.reset(Match::new("POST", "/v1/ports"), None);
    assert_answer(
        app.post_continue(&payload).await,
        503,
        "Ironic is unavailable, try again later",
    )
    .await;
    assert_eq!(app.introspection_status(&uuid).await, waiting);
    assert_eq!(proxy.count(&Match::new("POST", "/v1/ports")), ATTEMPTS);

    // The properties' PATCH meets a server error.
    proxy.clear();
    proxy.fail(Match::new("PATCH", &node_path(&uuid)), 1, 500);
    assert_answer(
        app.post_continue(&payload).await,
        503,
        &format!("Ironic answered HTTP 500: Injected failure 500 for /v1/nodes/{uuid}."),
    )
    .await;
    assert_eq!(app.introspection_status(&uuid).await, waiting);

    // The ramdisk posts again once Ironic behaves: the node is finished, with one port.
    proxy.clear();
    let response = app.post_continue(&payload).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(
        app.wait_finished(&uuid, DEADLINE).await,
        json!({"finished": true, "error": null})
    );
    assert_introspected(&ironic, &uuid, &payload, &macs[0]).await;
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn a_report_rides_out_slow_answers_and_409_503_bursts() {
    let Some((ironic, proxy, app)) = behind_proxy(PATIENT_IRONIC).await else {
        return;
    };
    let bmc = "192.0.2.66";
    let uuid = waiting_node(&app, &ironic, bmc).await;
    let macs = unique_macs(2);
    let payload = liberty_report(&macs, bmc);
    let patch = Match::new("PATCH", &node_path(&uuid));
    let ports = Match::new("POST", "/v1/ports");
    let power = Match::new("PUT", &format!("{}/states/power", node_path(&uuid)));
    let reboots = proxy.count(&power);

    proxy.delay(Match::any(), Duration::from_millis(300));
    proxy.fail(ports.clone(), 2, 503);
    proxy.fail(patch.clone(), 2, 409);
    proxy.fail(power.clone(), 2, 409);
    let response = app.post_continue(&payload).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"uuid": uuid})
    );
    assert_eq!(
        app.wait_finished(&uuid, DEADLINE).await,
        json!({"finished": true, "error": null})
    );
    assert_introspected(&ironic, &uuid, &payload, &macs[0]).await;
    // At least: Ironic itself may answer "locked" now and then.
    assert!(proxy.count(&ports) >= 3, "two 503s, then the port");
    assert!(proxy.count(&patch) >= 3, "two 409s, then the PATCH");
    assert!(
        proxy.count(&power) - reboots >= 3,
        "two 409s, then the power-off"
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn a_power_off_that_hangs_ends_introspection_with_ironic_named() {
    let Some((ironic, proxy, app)) = behind_proxy(FAST_IRONIC).await else {
        return;
    };
    let bmc = "192.0.2.67";
    let uuid = waiting_node(&app, &ironic, bmc).await;
    let macs = unique_macs(2);
    let power = Match::new("PUT", &format!("{}/states/power", node_path(&uuid)));
    let reboots = proxy.count(&power);
    proxy.hang(power.clone(), None);

    let response = app.post_continue(&liberty_report(&macs, bmc)).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let began = Instant::now();
    let status = app.wait_finished(&uuid, DEADLINE).await;
    assert_bounded(
        began.elapsed(),
        CALL_BOUND,
        "the failure of a hung power-off",
    );
    println!(
        "hung power-off: node failed {:?} after the 200",
        began.elapsed()
    );
    let error = status["error"].as_str().unwrap();
    let prefix = format!(
        "Failed to power off node {uuid}, check it's power management configuration: \
         Ironic is unreachable at {}/: timed out waiting for the answer",
        proxy.url
    );
    assert!(error.starts_with(&prefix), "{error}");
    assert_eq!(proxy.count(&power) - reboots, ATTEMPTS);
    // The node is not finished twice, and its port and properties stay.
    assert_eq!(ironic.ports(&uuid).await, vec![macs[0].clone()]);
    ironic.delete_node(&uuid).await;
    app.stop().await;
}
