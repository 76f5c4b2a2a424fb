//! `POST /v1/introspection/<uuid>` against a real Ironic.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ironic_inspector::firewall::Firewall;
use ironic_inspector::mac::Mac;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app_customised, wait_for};
use crate::ironic_api::{IronicApi, unique_macs};

/// How long a real Ironic may take to act on a power or boot request.
const IRONIC_DEADLINE: Duration = Duration::from_secs(60);

fn daemon_config(ironic: &IronicApi, extra: &str) -> String {
    format!(
        "[ironic]\nironic_url = {}\nmax_retries = 5\nretry_interval = 1\n{extra}",
        ironic.url()
    )
}

async fn daemon(ironic: &IronicApi, extra: &str) -> TestApp {
    spawn_app_customised(&daemon_config(ironic, extra), |_| {}).await
}

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

async fn managed_node(ironic: &IronicApi, driver_info: Value, macs: &[String]) -> String {
    let refs: Vec<&str> = macs.iter().map(String::as_str).collect();
    let uuid = ironic.enroll(driver_info, &refs).await;
    ironic.manage(&uuid).await;
    uuid
}

#[tokio::test]
async fn introspection_reboots_the_node_into_pxe() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic, "").await;
    let node_macs = macs(2);
    let uuid = managed_node(&ironic, json!({"ipmi_address": "10.20.0.1"}), &node_macs).await;

    let response = start(&app, &uuid, "").await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.text().await.unwrap(), "");
    // The status exists as soon as the 202 is out (Ironic reads it at once).
    assert_eq!(
        status(&app, &uuid).await,
        json!({"finished": false, "error": null})
    );

    wait_rebooted_into_pxe(&ironic, &uuid).await;
    let attributes = wait_for(IRONIC_DEADLINE, "MACs as lookup attributes", || async {
        let attrs = app.state.node_cache.attributes(&uuid).await.unwrap();
        attrs.contains_key("mac").then_some(attrs)
    })
    .await;
    assert_eq!(attributes["bmc_address"], vec!["10.20.0.1".to_string()]);
    let mut cached: Vec<String> = attributes["mac"].clone();
    cached.sort();
    assert_eq!(cached, node_macs);
    assert_eq!(
        status(&app, &uuid).await,
        json!({"finished": false, "error": null})
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_node_is_404() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic, "").await;
    let uuid = "6a0f3b44-3c55-4ad0-8e65-2d6b6d3c0f00";
    assert_error(
        start(&app, uuid, "").await,
        404,
        &format!("Cannot find node {uuid}"),
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn wrong_provision_states_are_refused_unless_in_maintenance() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic, "").await;
    let uuid = managed_node(&ironic, json!({"ipmi_address": "10.20.0.2"}), &macs(1)).await;
    ironic.provide(&uuid).await;
    assert_error(
        start(&app, &uuid, "").await,
        400,
        &format!(
            "Invalid provision state \"available\" for introspection of node {uuid}, valid \
             states are \"['enroll', 'manageable', 'inspecting', 'inspectfail', 'inspect failed', \
             'inspect wait']\""
        ),
    )
    .await;
    // Nothing was recorded for the refused node.
    let response = app.get(&format!("/v1/introspection/{uuid}"), &[]).await;
    assert_eq!(response.status(), 404);

    // A node in maintenance is accepted whatever its state, as in 2.2.
    ironic.set_maintenance(&uuid, true).await;
    assert_eq!(start(&app, &uuid, "").await.status(), 202);
    wait_rebooted_into_pxe(&ironic, &uuid).await;
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn active_nodes_are_refused() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic, "").await;
    let uuid = managed_node(&ironic, json!({"ipmi_address": "10.20.0.3"}), &macs(1)).await;
    ironic.provide(&uuid).await;
    ironic.deploy(&uuid).await;
    let response = start(&app, &uuid, "").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid provision state \"active\" for introspection of node"),
        "{body}"
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn failed_power_validation_is_400_and_records_nothing() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic, "").await;
    let uuid = managed_node(&ironic, json!({"ipmi_address": "10.20.0.4"}), &macs(1)).await;
    ironic.make_power_validation_fail(&uuid).await;
    let response = start(&app, &uuid, "").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Failed validation of power interface for node {uuid}, reason: "
        )),
        "{message}"
    );
    assert_eq!(
        app.get(&format!("/v1/introspection/{uuid}"), &[])
            .await
            .status(),
        404
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn new_ipmi_credentials_are_validated() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let disabled = daemon(&ironic, "").await;
    // An enrolled node (not managed): the only state where credentials may be set.
    let uuid = ironic
        .enroll(json!({"ipmi_address": "10.20.0.5"}), &[macs(1)[0].as_str()])
        .await;
    assert_error(
        start(&disabled, &uuid, "?new_ipmi_password=secret1").await,
        400,
        "IPMI credentials setup is disabled in configuration",
    )
    .await;
    disabled.stop().await;

    let app = daemon(
        &ironic,
        "[processing]\nenable_setting_ipmi_credentials = true\n",
    )
    .await;
    assert_error(
        start(&app, &uuid, "?new_ipmi_password=secret1").await,
        400,
        &format!(
            "Setting IPMI credentials requested for node {uuid}, but neither new user name nor \
             driver_info[ipmi_username] are provided"
        ),
    )
    .await;
    assert_error(
        start(
            &app,
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
            &app,
            &uuid,
            &format!("?new_ipmi_username=admin&new_ipmi_password={long}"),
        )
        .await,
        400,
        "IPMI password length should be > 0 and <= 20",
    )
    .await;
    // A user name alone asks for nothing: ordinary introspection (enroll is a valid state).
    let response = start(&app, &uuid, "?new_ipmi_username=admin").await;
    assert_eq!(
        response.status(),
        202,
        "enroll is a valid state for introspection"
    );

    // Accepted: recorded with the credentials, and the node is left alone (the ramdisk must be
    // booted by hand), so Ironic sees no power or boot device request.
    let fresh = ironic
        .enroll(json!({"ipmi_address": "10.20.0.6"}), &[macs(1)[0].as_str()])
        .await;
    let power_before = ironic.power_state(&fresh).await;
    let response = start(
        &app,
        &fresh,
        "?new_ipmi_username=root&new_ipmi_password=Secret42",
    )
    .await;
    assert_eq!(response.status(), 202);
    let options = app.state.node_cache.options(&fresh).await.unwrap();
    assert_eq!(options["new_ipmi_credentials"], json!(["root", "Secret42"]));
    wait_for(IRONIC_DEADLINE, "MACs as lookup attributes", || async {
        app.state
            .node_cache
            .attributes(&fresh)
            .await
            .unwrap()
            .contains_key("mac")
            .then_some(())
    })
    .await;
    // The background part holds the node's lock from before it adds the MACs until it ends:
    // taking the lock now proves it is over, so whatever it would have asked of Ironic has
    // been asked.
    // A power request Ironic had accepted would show as its target state until done.
    drop(app.state.node_cache.lock(&fresh).await);
    let node = ironic.node(&fresh).await;
    assert_eq!(node["power_state"].as_str(), power_before.as_deref());
    assert!(node["target_power_state"].is_null(), "{node}");

    // A managed node cannot get new credentials.
    ironic.manage(&fresh).await;
    assert_error(
        start(
            &app,
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
    ironic.delete_node(&uuid).await;
    ironic.delete_node(&fresh).await;
    app.stop().await;
}

#[tokio::test]
async fn a_node_without_lookup_attributes_fails_in_the_background() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic, "").await;
    let uuid = managed_node(&ironic, json!({}), &[]).await;
    assert_eq!(start(&app, &uuid, "").await.status(), 202);
    let body = wait_finished(&app, &uuid).await;
    assert_eq!(
        body["error"],
        format!(
            "No lookup attributes were found for node {uuid}, inspector won't be able to find it \
             after introspection. Consider creating ironic ports or providing an IPMI address."
        )
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;

    // With a node_not_found_hook configured, nothing to look up by is fine.
    let app = daemon(&ironic, "[processing]\nnode_not_found_hook = example\n").await;
    let uuid = managed_node(&ironic, json!({}), &[]).await;
    assert_eq!(start(&app, &uuid, "").await.status(), 202);
    wait_rebooted_into_pxe(&ironic, &uuid).await;
    assert_eq!(status(&app, &uuid).await["finished"], false);
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn bmc_host_names_are_resolved() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic, "").await;
    let uuid = managed_node(&ironic, json!({"ipmi_address": "localhost"}), &macs(1)).await;
    assert_eq!(start(&app, &uuid, "").await.status(), 202);
    let attrs = app.state.node_cache.attributes(&uuid).await.unwrap();
    assert_eq!(attrs["bmc_address"], vec!["127.0.0.1".to_string()]);

    let bad = managed_node(
        &ironic,
        json!({"ipmi_address": "no-such-bmc.invalid"}),
        &macs(1),
    )
    .await;
    assert_error(
        start(&app, &bad, "").await,
        400,
        &format!("Failed to resolve the hostname (no-such-bmc.invalid) for node {bad}"),
    )
    .await;
    ironic.delete_node(&uuid).await;
    ironic.delete_node(&bad).await;
    app.stop().await;
}

#[tokio::test]
async fn starting_again_while_running_restarts_cleanly() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic, "").await;
    let node_macs = macs(3);
    let uuid = managed_node(&ironic, json!({"ipmi_address": "10.20.0.9"}), &node_macs).await;
    let (first, second) = tokio::join!(start(&app, &uuid, ""), start(&app, &uuid, ""));
    assert_eq!(first.status(), 202);
    assert_eq!(second.status(), 202);
    // Each start runs its own background part, one after the other (node lock).
    let reboot_path = format!("/v1/nodes/{uuid}/states/power");
    wait_for(IRONIC_DEADLINE, "both reboots", || async {
        (IronicApi::logged_requests("PUT", &reboot_path, 202) == 2).then_some(())
    })
    .await;
    let attrs = wait_for(IRONIC_DEADLINE, "both starts to settle", || async {
        let attrs = app.state.node_cache.attributes(&uuid).await.unwrap();
        (attrs.get("mac").map(Vec::len) == Some(3)).then_some(attrs)
    })
    .await;
    assert_eq!(attrs["bmc_address"].len(), 1);
    assert_eq!(
        status(&app, &uuid).await,
        json!({"finished": false, "error": null})
    );
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn dozens_of_nodes_at_once() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic, "").await;
    let count = 24;
    let mut uuids = Vec::new();
    for i in 0..count {
        let mac = macs(1);
        let uuid = ironic
            .enroll(
                json!({"ipmi_address": format!("10.21.0.{i}")}),
                &[mac[0].as_str()],
            )
            .await;
        uuids.push(uuid);
    }
    for uuid in &uuids {
        ironic.manage(uuid).await;
    }
    let responses = futures_join(&app, &uuids).await;
    assert!(responses.iter().all(|s| *s == 202), "{responses:?}");
    for uuid in &uuids {
        wait_rebooted_into_pxe(&ironic, uuid).await;
        assert_eq!(
            status(&app, uuid).await,
            json!({"finished": false, "error": null})
        );
    }
    assert_eq!(
        app.state.node_cache.active_macs().await.unwrap().len(),
        count
    );
    for uuid in &uuids {
        ironic.delete_node(uuid).await;
    }
    app.stop().await;
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
}

#[tokio::test]
async fn the_firewall_lets_the_node_under_introspection_through() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let recorder = Arc::new(RecordingFirewall::default());
    let firewall = recorder.clone();
    let app = spawn_app_customised(&daemon_config(&ironic, ""), move |state| {
        state.firewall = firewall;
    })
    .await;
    let mine = macs(2);
    let others = macs(2);
    let uuid = managed_node(&ironic, json!({"ipmi_address": "10.20.0.16"}), &mine).await;
    let other = managed_node(&ironic, json!({"ipmi_address": "10.20.0.17"}), &others).await;
    assert_eq!(start(&app, &uuid, "").await.status(), 202);
    wait_rebooted_into_pxe(&ironic, &uuid).await;
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
    ironic.delete_node(&uuid).await;
    ironic.delete_node(&other).await;
    app.stop().await;
}
