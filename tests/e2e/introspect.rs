//! `POST /v1/introspection/<uuid>` against a real Ironic.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ironic_inspector::firewall::Firewall;
use ironic_inspector::mac::Mac;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_error, assert_error_starts_with, error_message, spawn_app_with, wait_for,
};
use crate::ironic_api::{IronicApi, unique_macs};
use crate::scene::{Scene, ironic_config};

/// How long a real Ironic may take to act on a power or boot request.
const IRONIC_DEADLINE: Duration = Duration::from_secs(60);

async fn start(app: &TestApp, uuid: &str, query: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/introspection/{uuid}{query}", app.address))
        .json(&json!({"uuid": uuid}))
        .send()
        .await
        .unwrap()
}

async fn status(app: &TestApp, uuid: &str) -> Value {
    let response = app.get(&format!("/v1/introspection/{uuid}"), &[]).await;
    assert_eq!(response.status(), 200, "status of {uuid}");
    response.json().await.unwrap()
}

/// Asserts that the node's introspection is under way.
async fn assert_running(app: &TestApp, uuid: &str) {
    assert_eq!(
        status(app, uuid).await,
        json!({"finished": false, "error": null}),
        "{uuid}"
    );
}

async fn wait_finished(app: &TestApp, uuid: &str) -> Value {
    wait_for(IRONIC_DEADLINE, "introspection to finish", || async {
        let body = status(app, uuid).await;
        (body["finished"] == true).then_some(body)
    })
    .await
}

/// Waits until Ironic shows the node powered on after a PXE boot-device request. (The fake
/// management interface always answers `pxe` to a GET, so the request is read from Ironic's
/// log, which may be written a little after the conductor acted: waited for too.)
async fn wait_rebooted_into_pxe(ironic: &IronicApi, uuid: &str) {
    ironic.wait_for_power_state(uuid, "power on").await;
    let boot_path = format!("/v1/nodes/{uuid}/management/boot_device");
    assert_eq!(
        IronicApi::wait_logged_requests("PUT", &boot_path, 204, 1).await,
        1,
        "one PXE boot-device request for {uuid}"
    );
    let reboot_path = format!("/v1/nodes/{uuid}/states/power");
    assert_eq!(
        IronicApi::wait_logged_requests("PUT", &reboot_path, 202, 1).await,
        1
    );
}

fn macs(n: usize) -> Vec<String> {
    unique_macs(n)
}

/// A managed node with one port whose BMC is `bmc`.
async fn bmc_node(s: &Scene, bmc: &str) -> String {
    s.managed(json!({"ipmi_address": bmc}), &macs(1)).await
}

#[tokio::test]
async fn introspection_reboots_the_node_into_pxe() {
    let Some(s) = Scene::start(module_path!(), "").await else {
        return;
    };
    let node_macs = macs(2);
    let uuid = s
        .managed(json!({"ipmi_address": "10.20.0.1"}), &node_macs)
        .await;

    let response = start(&s, &uuid, "").await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.text().await.unwrap(), "");
    // The status exists as soon as the 202 is out (Ironic reads it at once).
    assert_running(&s, &uuid).await;

    wait_rebooted_into_pxe(&s.ironic, &uuid).await;
    let attributes = s.wait_lookup_macs(&uuid, IRONIC_DEADLINE).await;
    assert_eq!(attributes["bmc_address"], vec!["10.20.0.1".to_string()]);
    let mut cached: Vec<String> = attributes["mac"].clone();
    cached.sort();
    assert_eq!(cached, node_macs);
    assert_running(&s, &uuid).await;
    s.end().await;
}

#[tokio::test]
async fn unknown_node_is_404() {
    let Some(s) = Scene::start(module_path!(), "").await else {
        return;
    };
    let uuid = "6a0f3b44-3c55-4ad0-8e65-2d6b6d3c0f00";
    assert_error(
        start(&s, uuid, "").await,
        404,
        &format!("Cannot find node {uuid}"),
    )
    .await;
    s.end().await;
}

#[tokio::test]
async fn wrong_provision_states_are_refused_unless_in_maintenance() {
    let Some(s) = Scene::start(module_path!(), "").await else {
        return;
    };
    let uuid = bmc_node(&s, "10.20.0.2").await;
    s.ironic.provide(&uuid).await;
    assert_error(
        start(&s, &uuid, "").await,
        400,
        &format!(
            "Invalid provision state \"available\" for introspection of node {uuid}, valid \
             states are \"['enroll', 'manageable', 'inspecting', 'inspectfail', 'inspect failed', \
             'inspect wait']\""
        ),
    )
    .await;
    // Nothing was recorded for the refused node.
    let response = s.get(&format!("/v1/introspection/{uuid}"), &[]).await;
    assert_eq!(response.status(), 404);

    // A node in maintenance is accepted whatever its state, as in 2.2.
    s.ironic.set_maintenance(&uuid, true).await;
    assert_eq!(start(&s, &uuid, "").await.status(), 202);
    wait_rebooted_into_pxe(&s.ironic, &uuid).await;
    s.end().await;
}

#[tokio::test]
async fn active_nodes_are_refused() {
    let Some(s) = Scene::start(module_path!(), "").await else {
        return;
    };
    let uuid = bmc_node(&s, "10.20.0.3").await;
    s.ironic.provide(&uuid).await;
    s.ironic.deploy(&uuid).await;
    let response = start(&s, &uuid, "").await;
    let message = error_message(response, 400).await;
    assert!(
        message.starts_with("Invalid provision state \"active\" for introspection of node"),
        "{message}"
    );
    s.end().await;
}

#[tokio::test]
async fn failed_power_validation_is_400_and_records_nothing() {
    let Some(s) = Scene::start(module_path!(), "").await else {
        return;
    };
    let uuid = bmc_node(&s, "10.20.0.4").await;
    s.ironic.make_power_validation_fail(&uuid).await;
    let response = start(&s, &uuid, "").await;
    assert_error_starts_with(
        response,
        400,
        &format!("Failed validation of power interface for node {uuid}, reason: "),
    )
    .await;
    assert_eq!(
        s.get(&format!("/v1/introspection/{uuid}"), &[])
            .await
            .status(),
        404
    );
    s.end().await;
}

#[tokio::test]
async fn new_ipmi_credentials_are_validated() {
    let enabled = "[processing]\nenable_setting_ipmi_credentials = true\n";
    let Some(s) = Scene::start(module_path!(), enabled).await else {
        return;
    };
    let disabled = spawn_app_with(&ironic_config(&s.ironic, "")).await;
    // An enrolled node (not managed): the only state where credentials may be set.
    let uuid = s
        .enroll(json!({"ipmi_address": "10.20.0.5"}), &macs(1))
        .await;
    assert_error(
        start(&disabled, &uuid, "?new_ipmi_password=secret1").await,
        400,
        "IPMI credentials setup is disabled in configuration",
    )
    .await;
    disabled.stop().await;

    assert_error(
        start(&s, &uuid, "?new_ipmi_password=secret1").await,
        400,
        &format!(
            "Setting IPMI credentials requested for node {uuid}, but neither new user name nor \
             driver_info[ipmi_username] are provided"
        ),
    )
    .await;
    assert_error(
        start(
            &s,
            &uuid,
            "?new_ipmi_username=admin&new_ipmi_password=p%40ss%21",
        )
        .await,
        400,
        &format!(
            "Forbidden characters encountered in new IPMI password for node {uuid}: \"@!\"; use \
             only letters and numbers"
        ),
    )
    .await;
    let long = "a".repeat(21);
    assert_error(
        start(
            &s,
            &uuid,
            &format!("?new_ipmi_username=admin&new_ipmi_password={long}"),
        )
        .await,
        400,
        "IPMI password length should be > 0 and <= 20",
    )
    .await;
    // A user name alone asks for nothing: ordinary introspection (enroll is a valid state).
    let response = start(&s, &uuid, "?new_ipmi_username=admin").await;
    assert_eq!(
        response.status(),
        202,
        "enroll is a valid state for introspection"
    );

    // Accepted: recorded with the credentials, and the node is left alone (the ramdisk must be
    // booted by hand), so Ironic sees no power or boot device request.
    let fresh = s
        .enroll(json!({"ipmi_address": "10.20.0.6"}), &macs(1))
        .await;
    let power_before = s.ironic.power_state(&fresh).await;
    let response = start(
        &s,
        &fresh,
        "?new_ipmi_username=root&new_ipmi_password=Secret42",
    )
    .await;
    assert_eq!(response.status(), 202);
    let options = s.state.node_cache.options(&fresh).await.unwrap();
    assert_eq!(options["new_ipmi_credentials"], json!(["root", "Secret42"]));
    s.wait_lookup_macs(&fresh, IRONIC_DEADLINE).await;
    // The background part holds the node's lock from before it adds the MACs until it ends:
    // taking the lock now proves it is over, so whatever it would have asked of Ironic has
    // been asked.
    // A power request Ironic had accepted would show as its target state until done.
    drop(s.state.node_cache.lock(&fresh).await);
    let node = s.ironic.node(&fresh).await;
    assert_eq!(node["power_state"].as_str(), power_before.as_deref());
    assert!(node["target_power_state"].is_null(), "{node}");

    // A managed node cannot get new credentials.
    s.ironic.manage(&fresh).await;
    assert_error(
        start(
            &s,
            &fresh,
            "?new_ipmi_username=root&new_ipmi_password=Secret42",
        )
        .await,
        400,
        &format!(
            "Invalid provision state \"manageable\" for setting IPMI credentials on node \
             {fresh}, valid states are ['enroll']"
        ),
    )
    .await;
    s.end().await;
}

#[tokio::test]
async fn a_node_without_lookup_attributes_fails_in_the_background() {
    let Some(s) = Scene::start(module_path!(), "").await else {
        return;
    };
    let uuid = s.managed(json!({}), &[]).await;
    assert_eq!(start(&s, &uuid, "").await.status(), 202);
    let body = wait_finished(&s, &uuid).await;
    assert_eq!(
        body["error"],
        format!(
            "No lookup attributes were found for node {uuid}, inspector won't be able to find it \
             after introspection. Consider creating ironic ports or providing an IPMI address."
        )
    );
    s.end().await;

    // With a node_not_found_hook configured, nothing to look up by is fine.
    let hook = "[processing]\nnode_not_found_hook = example\n";
    let Some(s) = Scene::start(module_path!(), hook).await else {
        return;
    };
    let uuid = s.managed(json!({}), &[]).await;
    assert_eq!(start(&s, &uuid, "").await.status(), 202);
    wait_rebooted_into_pxe(&s.ironic, &uuid).await;
    assert_eq!(status(&s, &uuid).await["finished"], false);
    s.end().await;
}

#[tokio::test]
async fn bmc_host_names_are_resolved() {
    let Some(s) = Scene::start(module_path!(), "").await else {
        return;
    };
    let uuid = bmc_node(&s, "localhost").await;
    assert_eq!(start(&s, &uuid, "").await.status(), 202);
    let attrs = s.state.node_cache.attributes(&uuid).await.unwrap();
    assert_eq!(attrs["bmc_address"], vec!["127.0.0.1".to_string()]);

    let bad = bmc_node(&s, "no-such-bmc.invalid").await;
    assert_error(
        start(&s, &bad, "").await,
        400,
        &format!("Failed to resolve the hostname (no-such-bmc.invalid) for node {bad}"),
    )
    .await;
    s.end().await;
}

#[tokio::test]
async fn starting_again_while_running_restarts_cleanly() {
    let Some(s) = Scene::start(module_path!(), "").await else {
        return;
    };
    let node_macs = macs(3);
    let uuid = s
        .managed(json!({"ipmi_address": "10.20.0.9"}), &node_macs)
        .await;
    let (first, second) = tokio::join!(start(&s, &uuid, ""), start(&s, &uuid, ""));
    assert_eq!(first.status(), 202);
    assert_eq!(second.status(), 202);
    // Each start runs its own background part, one after the other (node lock).
    let reboot_path = format!("/v1/nodes/{uuid}/states/power");
    wait_for(IRONIC_DEADLINE, "both reboots", || async {
        (IronicApi::logged_requests("PUT", &reboot_path, 202) == 2).then_some(())
    })
    .await;
    let attrs = wait_for(IRONIC_DEADLINE, "both starts to settle", || async {
        let attrs = s.state.node_cache.attributes(&uuid).await.unwrap();
        (attrs.get("mac").map(Vec::len) == Some(3)).then_some(attrs)
    })
    .await;
    assert_eq!(attrs["bmc_address"].len(), 1);
    assert_running(&s, &uuid).await;
    s.end().await;
}

#[tokio::test]
async fn dozens_of_nodes_at_once() {
    let Some(s) = Scene::start(module_path!(), "").await else {
        return;
    };
    let count = 24;
    let mut uuids = Vec::new();
    for i in 0..count {
        let bmc = format!("10.21.0.{i}");
        uuids.push(s.managed(json!({"ipmi_address": bmc}), &macs(1)).await);
    }
    let responses = futures_join(&s, &uuids).await;
    assert!(responses.iter().all(|code| *code == 202), "{responses:?}");
    for uuid in &uuids {
        wait_rebooted_into_pxe(&s.ironic, uuid).await;
        assert_running(&s, uuid).await;
    }
    assert_eq!(s.state.node_cache.active_macs().await.unwrap().len(), count);
    s.end().await;
}

async fn futures_join(app: &TestApp, uuids: &[String]) -> Vec<u16> {
    let mut tasks = Vec::new();
    for uuid in uuids {
        let client = app.client.clone();
        let url = format!("{}/v1/introspection/{uuid}", app.address);
        tasks.push(tokio::spawn(async move {
            client.post(url).send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

/// Records what the workflows ask the firewall to block.
#[derive(Debug, Default)]
struct RecordingFirewall {
    updates: Mutex<Vec<BTreeSet<Mac>>>,
}

#[async_trait]
impl Firewall for RecordingFirewall {
    fn is_enabled(&self) -> bool {
        true
    }
    async fn update(&self, blocked: &BTreeSet<Mac>) -> ironic_inspector::Result<()> {
        self.updates.lock().unwrap().push(blocked.clone());
        Ok(())
    }
    async fn close(&self) -> ironic_inspector::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_firewall_lets_the_node_under_introspection_through() {
    let recorder = Arc::new(RecordingFirewall::default());
    let firewall = recorder.clone();
    let Some(s) = Scene::start_customised(module_path!(), "", move |state| {
        state.firewall = firewall;
    })
    .await
    else {
        return;
    };
    let mine = macs(2);
    let others = macs(2);
    let uuid = s
        .managed(json!({"ipmi_address": "10.20.0.16"}), &mine)
        .await;
    // An idle node, whose MACs stay blocked.
    s.managed(json!({"ipmi_address": "10.20.0.17"}), &others)
        .await;
    assert_eq!(start(&s, &uuid, "").await.status(), 202);
    wait_rebooted_into_pxe(&s.ironic, &uuid).await;
    let updates = recorder.updates.lock().unwrap().clone();
    let last = updates.last().expect("the firewall was never updated");
    for mac in &others {
        assert!(
            last.contains(&mac.parse().unwrap()),
            "{mac} of the idle node must be blocked: {last:?}"
        );
    }
    for mac in &mine {
        assert!(
            !last.contains(&mac.parse().unwrap()),
            "{mac} of the node under introspection must pass"
        );
    }
    s.end().await;
}
