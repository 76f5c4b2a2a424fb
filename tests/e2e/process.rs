//! `POST /v1/continue` against a real Ironic: both ramdisks, end to end.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{assert_error, assert_error_starts_with, error_message};
use crate::ironic_api::unique_macs;
use crate::nodes::{assert_inventory_properties, fixture};
use crate::scene::Scene;

const DEADLINE: Duration = Duration::from_secs(60);

/// A daemon that keeps the data in its database, with `processing` added to that section.
async fn scene(test: &str, processing: &str) -> Option<Scene> {
    Scene::start(
        test,
        &format!("[processing]\nstore_data = database\n{processing}"),
    )
    .await
}

/// A node on introspection with no ports, found by its BMC address `bmc`, and the report
/// made from the fixture `report` for it: its UUID, its two MACs (the first the PXE NIC) and
/// the report.
async fn reporting_node(s: &Scene, report: &str, bmc: &str) -> (String, Vec<String>, Value) {
    let macs = unique_macs(2);
    let uuid = s.on_introspection(json!({"ipmi_address": bmc}), &[]).await;
    let payload = fixture(report, &macs, bmc);
    (uuid, macs, payload)
}

#[tokio::test]
async fn liberty_flat_payload_end_to_end() {
    let Some(s) = scene(module_path!(), "").await else {
        return;
    };
    // No ports yet: the node is found by its BMC address, and its PXE NIC becomes a port.
    let bmc = "192.0.2.31";
    let (uuid, macs, payload) = reporting_node(&s, "liberty-flat.json", bmc).await;

    s.report_processed(&uuid, &payload).await;
    let node = s.ironic.node(&uuid).await;
    let properties = &node["properties"];
    assert_eq!(properties["cpus"], payload["cpus"].to_string());
    assert_eq!(properties["memory_mb"], payload["memory_mb"].to_string());
    assert_eq!(properties["local_gb"], payload["local_gb"].to_string());
    assert_eq!(properties["cpu_arch"], payload["cpu_arch"]);
    assert_eq!(
        s.ironic.ports(&uuid).await,
        vec![macs[0].clone()],
        "only the PXE NIC"
    );
    // The power-off was asked for before the status said finished; Ironic acts on it
    // afterwards.
    s.ironic.wait_for_power_state(&uuid, "power off").await;

    let stored = s.stored_data(&uuid).await;
    assert_eq!(stored["cpus"], payload["cpus"]);
    assert_eq!(stored["macs"], json!([macs[0]]));
    assert!(stored["all_interfaces"].is_object());
    s.end().await;
}

#[tokio::test]
async fn agent_inventory_payload_end_to_end() {
    let Some(s) = scene(module_path!(), "").await else {
        return;
    };
    let bmc = "192.0.2.32";
    let (uuid, macs, payload) = reporting_node(&s, "ipa-inventory.json", bmc).await;

    s.report_processed(&uuid, &payload).await;

    assert_inventory_properties(&s.ironic.node(&uuid).await, &payload);
    assert_eq!(s.ironic.ports(&uuid).await, vec![macs[0].clone()]);
    // The power-off was asked for before the status said finished; Ironic acts on it
    // afterwards.
    s.ironic.wait_for_power_state(&uuid, "power off").await;
    assert_eq!(
        s.stored_data(&uuid).await["inventory"],
        payload["inventory"]
    );
    s.end().await;
}

#[tokio::test]
async fn lookup_by_mac_only_and_failures() {
    let Some(s) = scene(module_path!(), "").await else {
        return;
    };
    let macs = unique_macs(2);
    // The node has its PXE NIC as a port and no BMC address: found by MAC.
    let uuid = s.on_introspection(json!({}), &macs[..1]).await;
    let mut payload = fixture("liberty-flat.json", &macs, "192.0.2.33");
    payload.as_object_mut().unwrap().remove("ipmi_address");

    // Nothing matches another machine's report.
    let strangers = unique_macs(2);
    let mut stranger = fixture("liberty-flat.json", &strangers, "192.0.2.34");
    stranger.as_object_mut().unwrap().remove("ipmi_address");
    let response = s.post_continue(&stranger).await;
    let message = error_message(response, 400).await;
    assert!(
        message.starts_with(
            "The following failures happened during running pre-processing hooks for unknown \
             node:\nLook up error: Could not find a node for attributes"
        ),
        "{message}"
    );

    // Wrong types are refused before anything is looked up or written.
    let mut bad = payload.clone();
    bad["cpus"] = json!("many");
    let response = s.post_continue(&bad).await;
    assert_eq!(response.status(), 400);
    assert_eq!(s.introspection_status(&uuid).await["finished"], false);

    let response = s.post_continue(&payload).await;
    assert_eq!(response.status(), 200);
    s.wait_finished(&uuid, DEADLINE).await;
    assert_eq!(
        s.ironic.ports(&uuid).await,
        vec![macs[0].clone()],
        "no second port"
    );

    // A second post after the end is refused and changes nothing: finishing dropped the
    // node's lookup attributes, so, as in 2.2, the report matches no node.
    let response = s.post_continue(&payload).await;
    let message = error_message(response, 400).await;
    assert!(
        message.contains("Look up error: Could not find a node for attributes"),
        "{message}"
    );
    assert_eq!(
        s.introspection_status(&uuid).await,
        json!({"finished": true, "error": null})
    );
    assert_eq!(s.ironic.ports(&uuid).await, vec![macs[0].clone()]);
    s.end().await;
}

#[tokio::test]
async fn ambiguous_lookup_is_refused() {
    let Some(s) = scene(module_path!(), "").await else {
        return;
    };
    let macs = unique_macs(2);
    let by_bmc = s
        .on_introspection(json!({"ipmi_address": "192.0.2.35"}), &[])
        .await;
    let by_mac = s.on_introspection(json!({}), &macs[..1]).await;
    let payload = fixture("liberty-flat.json", &macs, "192.0.2.35");
    let response = s.post_continue(&payload).await;
    let message = error_message(response, 400).await;
    assert!(
        message.contains("Look up error: Multiple matching nodes found for attributes"),
        "{message}"
    );
    // Neither node was touched.
    assert_eq!(s.introspection_status(&by_bmc).await["finished"], false);
    assert_eq!(s.introspection_status(&by_mac).await["finished"], false);
    s.end().await;
}

#[tokio::test]
async fn ramdisk_errors_end_introspection_and_keep_the_logs() {
    let logs_dir = tempfile::tempdir().unwrap();
    let logs = format!("ramdisk_logs_dir = {}\n", logs_dir.path().display());
    let Some(s) = scene(module_path!(), &logs).await else {
        return;
    };
    let bmc = "192.0.2.36";
    let (uuid, _, payload) = reporting_node(&s, "liberty-error.json", bmc).await;
    let response = s.post_continue(&payload).await;
    let prefix = format!(
        "The following failures happened during running pre-processing hooks for node \
         {uuid}:\nPreprocessing hook ramdisk_error: Ramdisk reported error: "
    );
    assert_error_starts_with(response, 400, &prefix).await;
    // The node's error carries the cause (the ramdisk's own text), not only that
    // pre-processing failed.
    let status = s.introspection_status(&uuid).await;
    assert_eq!(status["finished"], true, "{status}");
    let error = status["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("Preprocessing hook ramdisk_error: Ramdisk reported error: "),
        "{status}"
    );
    let files: Vec<String> = std::fs::read_dir(logs_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(&format!("bmc_{bmc}_")), "{files:?}");
    // The node stays on, as upstream left it for an operator to look at. The failure was
    // recorded in the request, which started no background work: nothing is left to wait for.
    assert_eq!(
        s.ironic.power_state(&uuid).await.as_deref(),
        Some("power on")
    );
    s.end().await;
}

#[tokio::test]
async fn keep_ports_added_deletes_ports_the_ramdisk_did_not_report() {
    let Some(s) = scene(module_path!(), "add_ports = all\nkeep_ports = added\n").await else {
        return;
    };
    let macs = unique_macs(3);
    let bmc = "192.0.2.37";
    // A stale port (macs[2]) the ramdisk will not report.
    let uuid = s
        .on_introspection(json!({"ipmi_address": bmc}), &macs[2..])
        .await;
    let payload = fixture("liberty-flat.json", &macs, bmc);
    assert_eq!(s.post_continue(&payload).await.status(), 200);
    s.wait_finished(&uuid, DEADLINE).await;
    let mut ports = s.ironic.ports(&uuid).await;
    ports.sort();
    let mut expected = vec![macs[0].clone(), macs[1].clone()];
    expected.sort();
    assert_eq!(
        ports, expected,
        "both reported NICs added, the stale port deleted"
    );
    s.end().await;
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let Some(s) = scene(module_path!(), "").await else {
        return;
    };
    let url = format!("{}/v1/continue", s.address);
    let response = s.client.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let response = s.client.post(&url).body("[1, 2]").send().await.unwrap();
    assert_error(
        response,
        400,
        "Invalid request body: expected a JSON object",
    )
    .await;
    s.end().await;
}

#[tokio::test]
async fn agent_without_a_bmc_is_found_by_its_pxe_mac() {
    let Some(s) = scene(module_path!(), "").await else {
        return;
    };
    let macs = unique_macs(2);
    // The agent reports bmc_address 0.0.0.0: no BMC. The node is known by its PXE NIC.
    let uuid = s.on_introspection(json!({}), &macs[..1]).await;
    let payload = fixture("ipa-inventory-no-bmc.json", &macs, "192.0.2.38");
    assert_eq!(payload["inventory"]["bmc_address"], "0.0.0.0");
    s.report_processed(&uuid, &payload).await;
    let stored = s.stored_data(&uuid).await;
    assert!(
        stored.get("ipmi_address").is_none_or(Value::is_null),
        "{stored}"
    );
    s.end().await;
}
