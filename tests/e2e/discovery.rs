//! Discovery against a real Ironic: `[processing] node_not_found_hook = enroll` makes a
//! machine Ironic does not know a node, processes a machine it knows as that node, and
//! never makes two nodes of one machine.
//!
//! Each test's MACs and BMC address are its own (the hook looks the BMC address up among
//! every node of the shared Ironic), and every node the daemon enrolled is deleted at the
//! end.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::error_message;
use crate::ironic_api::{IronicApi, unique_macs};
use crate::nodes::{assert_inventory_properties, fixture};
use crate::scene::Scene;

const DEADLINE: Duration = Duration::from_secs(60);

/// A daemon that enrolls unknown machines as fake-hardware nodes and keeps the data in its
/// database.
async fn scene(test: &str) -> Option<Scene> {
    scene_with(test, "enroll_node_driver = fake-hardware\n").await
}

/// The same daemon with `discovery` as its `[discovery]` section.
async fn scene_with(test: &str, discovery: &str) -> Option<Scene> {
    Scene::start(
        test,
        &format!(
            "[processing]\nnode_not_found_hook = enroll\nstore_data = database\n\
             [discovery]\n{discovery}"
        ),
    )
    .await
}

/// A BMC address no other test uses: private 10/8, from this test's own unique MAC.
fn unique_bmc() -> String {
    let mac = unique_macs(1).remove(0);
    let octets: Vec<u8> = mac
        .split(':')
        .map(|o| u8::from_str_radix(o, 16).unwrap())
        .collect();
    format!("10.{}.{}.{}", octets[1], octets[2], octets[4])
}

/// A machine's report (the agent's inventory) with two fresh MACs, the first the PXE NIC.
fn machine(bmc: &str) -> (Vec<String>, Value) {
    let macs = unique_macs(2);
    let report = fixture("ipa-inventory.json", &macs, bmc);
    (macs, report)
}

/// The UUIDs of the Ironic nodes whose `driver_info.ipmi_address` is `bmc`, every page.
async fn nodes_with_bmc(ironic: &IronicApi, bmc: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut path = "/v1/nodes?fields=uuid,driver_info&limit=1000".to_string();
        if let Some(m) = &marker {
            path.push_str(&format!("&marker={m}"));
        }
        let page = ironic
            .expect(Method::GET, &path, None, StatusCode::OK)
            .await;
        let nodes = page["nodes"].as_array().unwrap().clone();
        for node in &nodes {
            if node["driver_info"]["ipmi_address"] == bmc {
                found.push(node["uuid"].as_str().unwrap().to_string());
            }
        }
        if page.get("next").is_none() || nodes.is_empty() {
            return found;
        }
        marker = nodes
            .last()
            .map(|n| n["uuid"].as_str().unwrap().to_string());
    }
}

/// Posts a report and answers the node UUID of its 200 answer.
async fn post_ok(s: &Scene, report: &Value) -> String {
    let response = s.post_continue(report).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let body: Value = response.json().await.unwrap();
    body["uuid"].as_str().unwrap().to_string()
}

/// Waits until the node's introspection finished without error and Ironic shows the
/// power-off the finish asked for.
async fn wait_processed(s: &Scene, uuid: &str) -> Value {
    assert_eq!(
        s.wait_finished(uuid, DEADLINE).await,
        json!({"finished": true, "error": null})
    );
    s.ironic.wait_for_power_state(uuid, "power off").await
}

#[tokio::test]
async fn an_unknown_machine_becomes_a_node_with_its_properties_and_pxe_port() {
    let Some(s) = scene(module_path!()).await else {
        return;
    };
    let bmc = unique_bmc();
    let (macs, report) = machine(&bmc);
    assert_eq!(s.ironic.port_by_mac(&macs[0]).await, None);

    let uuid = post_ok(&s, &report).await;
    let node = wait_processed(&s, &uuid).await;
    assert_eq!(node["driver"], "fake-hardware");
    assert_eq!(node["driver_info"]["ipmi_address"], bmc.as_str());
    assert_eq!(node["provision_state"], "enroll", "{node}");
    assert_inventory_properties(&node, &report);
    assert_eq!(s.ironic.ports(&uuid).await, vec![macs[0].clone()]);
    assert_eq!(nodes_with_bmc(&s.ironic, &bmc).await, vec![uuid.clone()]);
    assert_eq!(s.stored_data(&uuid).await["auto_discovered"], true);

    s.ironic.delete_node(&uuid).await;
    s.end().await;
}

#[tokio::test]
async fn a_machine_without_a_bmc_address_is_enrolled_without_one() {
    let Some(s) = scene(module_path!()).await else {
        return;
    };
    let macs = unique_macs(2);
    let report = fixture("ipa-inventory-no-bmc.json", &macs, "192.0.2.100");

    let uuid = post_ok(&s, &report).await;
    let node = wait_processed(&s, &uuid).await;
    assert_eq!(node["driver_info"], json!({}), "{node}");
    assert_eq!(s.ironic.ports(&uuid).await, vec![macs[0].clone()]);

    s.ironic.delete_node(&uuid).await;
    s.end().await;
}

#[tokio::test]
async fn the_same_machine_reporting_twice_makes_one_node() {
    let Some(s) = scene(module_path!()).await else {
        return;
    };
    let bmc = unique_bmc();
    let (macs, report) = machine(&bmc);

    let first = post_ok(&s, &report).await;
    wait_processed(&s, &first).await;
    // The first run is over (its lookup attributes are gone): the second report is matched
    // in Ironic, by its port and BMC address, and processed as the same node.
    let second = post_ok(&s, &report).await;
    assert_eq!(second, first);
    wait_processed(&s, &first).await;
    assert_eq!(nodes_with_bmc(&s.ironic, &bmc).await, vec![first.clone()]);
    assert_eq!(s.ironic.ports(&first).await, vec![macs[0].clone()]);

    s.ironic.delete_node(&first).await;
    s.end().await;
}

#[tokio::test]
async fn two_reports_of_one_machine_at_once_make_one_node() {
    let Some(s) = scene(module_path!()).await else {
        return;
    };
    let bmc = unique_bmc();
    let (macs, report) = machine(&bmc);

    let (a, b) = tokio::join!(s.post_continue(&report), s.post_continue(&report));
    let mut uuids = Vec::new();
    for response in [a, b] {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match status.as_u16() {
            200 => uuids.push(body["uuid"].as_str().unwrap().to_string()),
            // The second one found the first one's record, waited for its end, and was
            // refused as finished.
            400 => {
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains("already finished"), "{message}");
            }
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    assert!(!uuids.is_empty(), "neither report was processed");
    uuids.dedup();
    assert_eq!(uuids.len(), 1, "two nodes: {uuids:?}");
    let uuid = uuids.remove(0);
    wait_processed(&s, &uuid).await;
    assert_eq!(nodes_with_bmc(&s.ironic, &bmc).await, vec![uuid.clone()]);
    assert_eq!(
        s.ironic.port_by_mac(&macs[0]).await.map(|(_, node)| node),
        Some(uuid.clone())
    );

    s.ironic.delete_node(&uuid).await;
    s.end().await;
}

/// The rule operators write for discovery: credentials for nodes enrolled by the hook.
fn credentials_rule() -> Value {
    json!({
        "description": "Credentials for discovered nodes",
        "conditions": [{"op": "eq", "field": "auto_discovered", "value": true}],
        "actions": [
            {"action": "set-attribute", "path": "/driver_info/ipmi_username", "value": "admin"},
            {"action": "set-attribute", "path": "/driver_info/ipmi_password", "value": "discovery-secret"},
        ],
    })
}

#[tokio::test]
async fn a_machine_ironic_knows_by_bmc_address_or_mac_is_processed_as_that_node() {
    let Some(s) = scene(module_path!()).await else {
        return;
    };
    let response = s.post_rule(&credentials_rule()).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    // Known by its BMC address: a managed node without ports.
    let bmc = unique_bmc();
    let (macs, report) = machine(&bmc);
    let known = s.managed(json!({"ipmi_address": bmc}), &[]).await;
    assert_eq!(post_ok(&s, &report).await, known);
    let node = wait_processed(&s, &known).await;
    assert_inventory_properties(&node, &report);
    assert_eq!(s.ironic.ports(&known).await, vec![macs[0].clone()]);
    assert_eq!(nodes_with_bmc(&s.ironic, &bmc).await, vec![known.clone()]);
    assert_eq!(node["provision_state"], "manageable");
    // Not enrolled by the hook: the discovery rule left it alone.
    assert!(s.stored_data(&known).await.get("auto_discovered").is_none());
    assert!(node["driver_info"].get("ipmi_username").is_none(), "{node}");

    // Known by a MAC: a node whose only port is the machine's second (not PXE) NIC, and
    // no BMC address in Ironic.
    let other_bmc = unique_bmc();
    let (macs, report) = machine(&other_bmc);
    let known = s.managed(json!({}), &macs[1..]).await;
    assert_eq!(post_ok(&s, &report).await, known);
    let node = wait_processed(&s, &known).await;
    assert_inventory_properties(&node, &report);
    let mut ports = s.ironic.ports(&known).await;
    ports.sort();
    assert_eq!(ports, macs);
    assert!(nodes_with_bmc(&s.ironic, &other_bmc).await.is_empty());
    assert_eq!(node["driver_info"], json!({}), "{node}");
    s.end().await;
}

#[tokio::test]
async fn an_enroll_rule_sets_the_credentials_of_discovered_nodes() {
    let Some(s) = scene(module_path!()).await else {
        return;
    };
    let response = s.post_rule(&credentials_rule()).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let bmc = unique_bmc();
    let (_, report) = machine(&bmc);

    let uuid = post_ok(&s, &report).await;
    let node = wait_processed(&s, &uuid).await;
    let driver_info = &node["driver_info"];
    assert_eq!(driver_info["ipmi_address"], bmc.as_str());
    assert_eq!(driver_info["ipmi_username"], "admin");
    // Ironic masks passwords; that one is set is what it shows.
    assert_eq!(driver_info["ipmi_password"], "******");

    s.ironic.delete_node(&uuid).await;
    s.end().await;
}

#[tokio::test]
async fn a_known_machine_in_a_refused_state_gets_a_clear_400_and_no_new_node() {
    let Some(s) = scene(module_path!()).await else {
        return;
    };
    let bmc = unique_bmc();
    let (macs, report) = machine(&bmc);
    let known = s.enroll(json!({"ipmi_address": bmc}), &[]).await;
    s.ironic.bring_to(&known, "active").await;

    let response = s.post_continue(&report).await;
    let message = error_message(response, 400).await;
    assert!(
        message.starts_with(&format!(
            "Invalid provision state \"active\" for introspection of node {known}"
        )),
        "{message}"
    );
    assert_eq!(nodes_with_bmc(&s.ironic, &bmc).await, vec![known.clone()]);
    assert_eq!(s.ironic.port_by_mac(&macs[0]).await, None);
    assert_eq!(s.ironic.provision_state(&known).await, "active");
    s.end().await;
}

#[tokio::test]
async fn extra_fields_reach_the_new_node() {
    // resource_class needs API 1.21 and power_interface 1.31: the creation is sent at 1.31.
    let Some(s) = scene_with(
        module_path!(),
        "enroll_node_driver = fake-hardware\n\
         enroll_node_fields = resource_class:discovered,power_interface:fake\n",
    )
    .await
    else {
        return;
    };
    let bmc = unique_bmc();
    let (_, report) = machine(&bmc);

    let uuid = post_ok(&s, &report).await;
    let node = wait_processed(&s, &uuid).await;
    assert_eq!(node["resource_class"], "discovered");
    assert_eq!(node["power_interface"], "fake");
    assert_eq!(node["provision_state"], "enroll");

    s.ironic.delete_node(&uuid).await;
    s.end().await;
}

#[tokio::test]
async fn a_driver_ironic_does_not_enable_is_a_clear_400_and_no_node() {
    // The default driver, ipmi, is not enabled in the test Ironic.
    let Some(s) = scene_with(module_path!(), "").await else {
        return;
    };
    let bmc = unique_bmc();
    let (macs, report) = machine(&bmc);

    let response = s.post_continue(&report).await;
    let message = error_message(response, 400).await;
    assert!(
        message.starts_with(
            "The following failures happened during running pre-processing hooks for unknown \
             node:\nNode not found hook failed: Ironic refused creating the node: "
        ),
        "{message}"
    );
    assert!(message.contains("ipmi"), "{message}");
    assert!(nodes_with_bmc(&s.ironic, &bmc).await.is_empty());
    assert_eq!(s.ironic.port_by_mac(&macs[0]).await, None);
    s.end().await;
}
