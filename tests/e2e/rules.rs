//! Introspection rules applied during processing, checked in a real Ironic node, and undone
//! by their rollback on a later run whose data no longer matches.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_customised};
use crate::ironic_api::{IronicApi, unique_macs};
use crate::nodes::start_and_wait_rebooted;

const DEADLINE: Duration = Duration::from_secs(60);

async fn daemon(ironic: &IronicApi) -> TestApp {
    spawn_app_customised(
        &format!(
            "[ironic]\nironic_url = {}\nmax_retries = 5\nretry_interval = 1\n",
            ironic.url()
        ),
        |_| {},
    )
    .await
}

async fn create_rule(app: &TestApp, rule: Value) {
    let response = app.post_rule(&rule).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

fn payload(macs: &[String], bmc: &str, memory_mb: u64, cpus: u64) -> Value {
    json!({
        "cpus": cpus, "cpu_arch": "x86_64", "memory_mb": memory_mb, "local_gb": 100,
        "interfaces": {
            "eth0": {"mac": macs[0], "ip": "10.1.0.5"},
            "eth1": {"mac": macs[1], "ip": null},
        },
        "boot_interface": format!("01-{}", macs[0].replace(':', "-")),
        "ipmi_address": bmc,
    })
}

/// Starts introspection, waits for the reboot, posts `data`; returns the /continue answer.
async fn introspect(
    app: &TestApp,
    ironic: &IronicApi,
    uuid: &str,
    data: &Value,
) -> reqwest::Response {
    // A previous run's power-off may still be under way in Ironic: let it land, so that
    // "power on" below can only come from this run's reboot.
    let before = ironic.wait_for_power_settled(uuid).await;
    assert_ne!(
        before.as_deref(),
        Some("power on"),
        "node {uuid} is on already"
    );
    start_and_wait_rebooted(app, ironic, uuid).await;
    app.post_continue(data).await
}

#[tokio::test]
async fn rules_change_the_node_and_roll_back_when_they_no_longer_match() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic).await;
    let macs = unique_macs(2);
    let bmc = "192.0.2.61";
    let uuid = ironic.enroll(json!({"ipmi_address": bmc}), &[]).await;
    ironic.manage(&uuid).await;
    // Left by an earlier run of a rule that will not match: its rollback removes it.
    ironic
        .patch(
            &uuid,
            json!([{"op": "add", "path": "/extra/many_cpus", "value": "yes"}]),
        )
        .await;

    // A rule file as operators wrote them for the Python inspector.
    let rules = json!([
        {
            "description": "Big machines are compute nodes",
            "conditions": [
                {"op": "ge", "field": "memory_mb", "value": 8192},
                {"op": "in-net", "field": "ipmi_address", "value": "192.0.2.0/24"},
                {"op": "eq", "field": "interfaces.*.mac", "value": macs[0], "multiple": "any"},
            ],
            "actions": [
                {"action": "set-attribute", "path": "/extra/big_memory", "value": true},
                {"action": "set-capability", "name": "profile", "value": "compute"},
                {"action": "extend-attribute", "path": "/extra/tags", "value": "introspected", "unique": true},
            ],
        },
        {
            "description": "Lots of CPUs",
            "conditions": [{"op": "gt", "field": "$.cpus", "value": 100}],
            "actions": [{"action": "set-attribute", "path": "/extra/many_cpus", "value": "yes"}],
        },
        {
            "description": "No interface without an address",
            "conditions": [{"op": "ne", "field": "all_interfaces.eth1.ip", "value": "", "multiple": "all"}],
            "actions": [{"action": "set-attribute", "path": "/extra/eth1_seen", "value": "yes"}],
        },
    ]);
    for rule in rules.as_array().unwrap() {
        create_rule(&app, rule.clone()).await;
    }

    let response = introspect(&app, &ironic, &uuid, &payload(&macs, bmc, 16384, 4)).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(
        app.wait_finished(&uuid, DEADLINE).await,
        json!({"finished": true, "error": null})
    );
    // The node is powered off after the end; the next run needs that done.
    let node = ironic.wait_for_power_state(&uuid, "power off").await;
    assert_eq!(node["extra"]["big_memory"], true);
    assert_eq!(node["extra"]["tags"], json!(["introspected"]));
    assert_eq!(node["properties"]["capabilities"], "profile:compute");
    assert!(
        node["extra"].get("many_cpus").is_none(),
        "rolled back: {node}"
    );
    // eth1 (not a port, but in all_interfaces) has a null ip: `ne ""` holds, so the third rule applied.
    assert_eq!(node["extra"]["eth1_seen"], "yes");

    // Second run on a smaller machine: the first rule no longer matches and is undone.
    let response = introspect(&app, &ironic, &uuid, &payload(&macs, bmc, 4096, 4)).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    app.wait_finished(&uuid, DEADLINE).await;
    let node = ironic.node(&uuid).await;
    assert!(node["extra"].get("big_memory").is_none(), "{node}");
    assert_eq!(node["extra"]["tags"], json!([]));
    let capabilities = node["properties"]["capabilities"].as_str().unwrap_or("");
    assert!(!capabilities.contains("profile"), "{capabilities}");
    ironic.delete_node(&uuid).await;
    app.stop().await;
}

#[tokio::test]
async fn a_fail_action_fails_introspection_and_leaves_the_node_on() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let app = daemon(&ironic).await;
    let macs = unique_macs(2);
    let bmc = "192.0.2.62";
    let uuid = ironic.enroll(json!({"ipmi_address": bmc}), &[]).await;
    ironic.manage(&uuid).await;
    create_rule(
        &app,
        json!({
            "conditions": [{"op": "lt", "field": "memory_mb", "value": 8192}],
            "actions": [{"action": "fail", "message": "Not enough memory for this cloud"}],
        }),
    )
    .await;
    let response = introspect(&app, &ironic, &uuid, &payload(&macs, bmc, 4096, 2)).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Not enough memory for this cloud");
    assert_eq!(
        app.wait_finished(&uuid, DEADLINE).await,
        json!({"finished": true, "error": "Not enough memory for this cloud"})
    );
    // The rule failed the introspection in the request, which started no background work
    // (no power-off): nothing is left to wait for.
    assert_eq!(ironic.power_state(&uuid).await.as_deref(), Some("power on"));
    ironic.delete_node(&uuid).await;
    app.stop().await;
}
