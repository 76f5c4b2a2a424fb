//! End-to-end tests: the daemon against real services (Ironic from
//! scripts/services/ironic.sh), and against a database that fails (a private PostgreSQL or
//! MariaDB that is stopped, SQLite on a tmpfs that fills up). Tests that need a service it has
//! not been given print a skip line, unless `CI` is set, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod call_counts;
mod daemon_binary;
mod database_faults;
#[allow(dead_code)] // shared with the db tests, which use all of it
#[path = "../db/helpers.rs"]
mod db_helpers;
mod discovery;
mod exec_hooks;
mod fault_proxy;
mod firewall;
mod firewall_faults;
#[allow(dead_code)] // shared with the api tests, which use all of it
#[path = "../api/helpers.rs"]
mod helpers;
mod introspect;
mod ironic_api;
mod ironic_faults;
mod ironic_inspect;
mod ironic_outage;
mod kill_during_processing;
#[path = "../support/namespace.rs"]
mod namespace;
mod nodes;
#[path = "../support/ports.rs"]
mod ports;
#[path = "../db/private_server.rs"]
mod private_server;
mod process;
mod rules;
mod scene;
mod secrets;
#[path = "../support/service_env.rs"]
mod service_env;
mod sqlite_disk_full;

use serde_json::json;

use crate::ironic_api::{IronicApi, unique_macs};

/// The test-side Ironic client works against the real Ironic: enroll a node with ports,
/// manage it, delete it.
#[tokio::test]
async fn ironic_smoke_enroll_manage_delete() {
    let Some(ironic) = IronicApi::for_test("ironic_smoke_enroll_manage_delete") else {
        return;
    };
    let macs = unique_macs(2);
    let uuid = ironic
        .enroll(
            json!({"ipmi_address": "192.0.2.10"}),
            &[macs[0].as_str(), macs[1].as_str()],
        )
        .await;
    assert_eq!(ironic.provision_state(&uuid).await, "enroll");
    assert_eq!(ironic.ports(&uuid).await, macs);

    ironic.manage(&uuid).await;
    assert_eq!(ironic.provision_state(&uuid).await, "manageable");

    ironic.delete_node(&uuid).await;
    assert!(!ironic.node_exists(&uuid).await, "node {uuid} still exists");
    assert_eq!(
        ironic.port_by_mac(&macs[0]).await,
        None,
        "ports go with their node"
    );
}
