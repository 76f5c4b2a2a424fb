//! Nodes as the end-to-end tests set them up: enrolled and managed in the real Ironic, put
//! under introspection by the daemon under test (in this process or the binary), and the
//! report their ramdisk posts, made from a fixture with the test's own MACs and BMC address.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::InspectorApi;
use crate::ironic_api::{IronicApi, unique_macs};

/// How long Ironic may take to show the reboot an introspection start asks for: the daemon
/// asks in the background, perhaps after retries, and CI is a busy 2-core box.
pub const REBOOT_DEADLINE: Duration = Duration::from_secs(120);

/// A fixture with its placeholder MACs and BMC address replaced by this test's own.
pub fn fixture(name: &str, macs: &[String], bmc: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let dashed = |mac: &str| mac.replace(':', "-");
    let text = text
        .replace("52:54:00:00:00:01", &macs[0])
        .replace("52:54:00:00:00:02", &macs[1])
        .replace("52-54-00-00-00-01", &dashed(&macs[0]))
        .replace("52-54-00-00-00-02", &dashed(&macs[1]))
        .replace("192.0.2.100", bmc);
    serde_json::from_str(&text).unwrap()
}

/// Asserts the properties the daemon set on `node` (as Ironic shows it) from an agent
/// inventory report, `payload`: CPUs, architecture, memory, and the root disk less a GiB.
pub fn assert_inventory_properties(node: &Value, payload: &Value) {
    let inventory = &payload["inventory"];
    let properties = &node["properties"];
    assert_eq!(properties["cpus"], inventory["cpu"]["count"].to_string());
    assert_eq!(properties["cpu_arch"], inventory["cpu"]["architecture"]);
    assert_eq!(
        properties["memory_mb"],
        inventory["memory"]["physical_mb"].to_string()
    );
    let root_gib = payload["root_disk"]["size"].as_u64().unwrap() / (1 << 30);
    assert_eq!(properties["local_gb"], (root_gib - 1).to_string());
}

/// The report of Liberty's ramdisk (the flat format) for a node with `macs` and `bmc`.
pub fn liberty_report(macs: &[String], bmc: &str) -> Value {
    fixture("liberty-flat.json", macs, bmc)
}

/// A managed node with no ports whose BMC is `bmc`; its UUID.
pub async fn managed_node(ironic: &IronicApi, bmc: &str) -> String {
    let uuid = ironic.enroll(json!({"ipmi_address": bmc}), &[]).await;
    ironic.manage(&uuid).await;
    uuid
}

/// A managed node without ports, found by its BMC address; its ramdisk reports two NICs,
/// the first being the PXE one (the only port the daemon creates).
pub struct Node {
    pub uuid: String,
    pub macs: Vec<String>,
    pub bmc: String,
}

impl Node {
    pub async fn managed(ironic: &IronicApi, bmc: &str) -> Node {
        Node {
            uuid: managed_node(ironic, bmc).await,
            macs: unique_macs(2),
            bmc: bmc.to_string(),
        }
    }

    /// The report its ramdisk posts (ironic-python-agent's inventory).
    pub fn report(&self) -> Value {
        fixture("ipa-inventory.json", &self.macs, &self.bmc)
    }
}

/// Starts introspection of the node and waits until Ironic shows it rebooted (the
/// background part of the start, which records the lookup attributes, is then done).
pub async fn start_and_wait_rebooted(api: &InspectorApi, ironic: &IronicApi, uuid: &str) {
    let response = api.start_introspection(uuid).await;
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    ironic
        .wait_for_power_state_within(uuid, "power on", REBOOT_DEADLINE)
        .await;
}
