//! What one node costs: the Ironic calls (method and path, through the fault proxy) and the
//! database statements of one introspection start (the request and its background part)
//! and of one ramdisk report (`POST /v1/continue` through the finishing), with 2.2's
//! default processing hooks and the data kept in the database. Pinned, so that a change
//! that adds a call per node is seen.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ironic_inspector::firewall::Firewall;
use ironic_inspector::mac::Mac;

use ironic_inspector::db::Counts;
use serde_json::{Value, json};

use crate::fault_proxy::{FaultProxy, Seen};
use crate::helpers::{TestApp, spawn_app_customised, wait_for};
use crate::ironic_api::{IronicApi, unique_macs};
use crate::nodes::{REBOOT_DEADLINE, fixture};

const DEADLINE: Duration = Duration::from_secs(60);

/// The calls seen since `from`, as `METHOD path` with the node's UUID and the ports' UUIDs
/// replaced by placeholders.
fn calls_since(proxy: &FaultProxy, from: usize, uuid: &str) -> Vec<String> {
    proxy.seen()[from..]
        .iter()
        .map(|Seen { method, path, .. }| {
            let path = path.replace(uuid, "{node}");
            format!("{method} {path}")
        })
        .collect()
}

/// Waits until no work holds a node lock (the background part of a start, the finisher of
/// a report), without asking the database.
async fn wait_idle(app: &TestApp) {
    wait_for(DEADLINE, "the node's background work to end", || async {
        (app.state.node_cache.lock_entries() == 0).then_some(())
    })
    .await;
}

/// Waits until no Ironic conductor holds the node (the verification of `manage`, the
/// reboot of the start): a call that found it locked would be answered 409 and retried by
/// the daemon, and counted twice.
async fn wait_unlocked(ironic: &IronicApi, uuid: &str) {
    wait_for(DEADLINE, "Ironic to release the node", || async {
        ironic.node(uuid).await["reservation"]
            .is_null()
            .then_some(())
    })
    .await;
}

fn since(before: Counts, after: Counts) -> Counts {
    Counts {
        statements: after.statements - before.statements,
        transactions: after.transactions - before.transactions,
    }
}

/// A firewall that filters nothing but makes the daemon compute every refresh, as the
/// iptables one does (so the Ironic port listings are counted), and counts its applies.
#[derive(Debug, Default)]
struct CountingFirewall {
    applies: AtomicUsize,
}

#[async_trait]
impl Firewall for CountingFirewall {
    fn is_enabled(&self) -> bool {
        true
    }
    async fn update(&self, _blocked: &BTreeSet<Mac>) -> ironic_inspector::Result<()> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn close(&self) -> ironic_inspector::Result<()> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A rule as an operator writes one: on enough memory, a capability and an `extra` field.
fn operator_rule() -> Value {
    json!({
        "description": "large nodes",
        "conditions": [{"op": "ge", "field": "memory_mb", "value": 1024}],
        "actions": [
            {"action": "set-capability", "name": "profile", "value": "large"},
            {"action": "set-attribute", "path": "/extra/class", "value": "large"},
        ],
    })
}

/// What one start and one report cost.
struct Cost {
    start_calls: Vec<String>,
    start_db: Counts,
    report_calls: Vec<String>,
    report_db: Counts,
    /// The node as Ironic holds it at the end.
    node: Value,
}

/// Enrolls a node as Ironic's enrollment leaves it (two ports, the BMC address known),
/// starts its introspection and posts its report through a daemon with `extra` whose
/// Ironic is behind a proxy; with `firewall`, the daemon refreshes a [`CountingFirewall`].
async fn measure(ironic: &IronicApi, bmc: &str, rules: &[Value], firewall: bool) -> Cost {
    let proxy = FaultProxy::start(ironic.url()).await;
    let config = format!(
        "[ironic]\nironic_url = {}\nmax_retries = 5\nretry_interval = 1\n\
         [processing]\nstore_data = database\n[firewall]\nfirewall_update_period = 3600\n",
        proxy.url
    );
    let counting = Arc::new(CountingFirewall::default());
    let backend = counting.clone();
    let mut built = Counts::default();
    let app = spawn_app_customised(&config, |state| {
        // Before the daemon serves: what the start-up checks cost.
        built = state.db.counts();
        if firewall {
            state.firewall = backend;
        }
    })
    .await;
    if firewall {
        // The periodic refresh runs once at start-up (it closes DHCP: nothing is under
        // introspection), then not for an hour.
        wait_for(DEADLINE, "the first periodic firewall refresh", || async {
            (counting.applies.load(Ordering::SeqCst) >= 1).then_some(())
        })
        .await;
    }
    // The one-off look for unfinished reports when the daemon starts serving (one query)
    // is done first.
    wait_for(DEADLINE, "the look for unfinished reports", || async {
        (app.state.db.counts().statements > built.statements).then_some(())
    })
    .await;
    for rule in rules {
        let response = app.post_rule(rule).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    let settled = app.state.db.counts();

    let macs = unique_macs(2);
    let uuid = ironic
        .enroll(
            json!({"ipmi_address": bmc}),
            &[macs[0].as_str(), macs[1].as_str()],
        )
        .await;
    ironic.manage(&uuid).await;
    wait_unlocked(ironic, &uuid).await;

    let from = proxy.seen().len();
    let response = app.start_introspection(&uuid).await;
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    ironic
        .wait_for_power_state_within(&uuid, "power on", REBOOT_DEADLINE)
        .await;
    wait_idle(&app).await;
    let start_calls = calls_since(&proxy, from, &uuid);
    let start_db = since(settled, app.state.db.counts());

    wait_unlocked(ironic, &uuid).await;
    let before = app.state.db.counts();
    let from = proxy.seen().len();
    let response = app
        .post_continue(&fixture("ipa-inventory.json", &macs, bmc))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    wait_idle(&app).await;
    if firewall {
        // The node is finished: the refresh that follows closes DHCP (nothing is left
        // under introspection).
        wait_for(DEADLINE, "the refresh after the node finished", || async {
            (counting.applies.load(Ordering::SeqCst) >= 3).then_some(())
        })
        .await;
    }
    let report_calls = calls_since(&proxy, from, &uuid);
    let report_db = since(before, app.state.db.counts());

    assert_eq!(
        app.wait_finished(&uuid, DEADLINE).await,
        json!({"finished": true, "error": null})
    );
    let node = ironic.node(&uuid).await;
    ironic.delete_node(&uuid).await;
    app.stop().await;
    Cost {
        start_calls,
        start_db,
        report_calls,
        report_db,
        node,
    }
}

/// `METHOD /v1/nodes/{node}<rest>` for each `(method, rest)`.
fn node_calls(calls: &[(&str, &str)]) -> Vec<String> {
    calls
        .iter()
        .map(|(method, rest)| {
            if rest.starts_with("/v1/") {
                format!("{method} {rest}")
            } else {
                format!("{method} /v1/nodes/{{node}}{rest}")
            }
        })
        .collect()
}

/// The start asks Ironic for the node, its power validation and its ports, then sets the
/// boot device and reboots it.
const START: &[(&str, &str)] = &[
    ("GET", ""),
    ("GET", "/validate"),
    ("GET", "/ports/detail"),
    ("PUT", "/management/boot_device"),
    ("PUT", "/states/power"),
];

#[tokio::test]
async fn one_start_and_one_report_cost_a_fixed_number_of_calls() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let cost = measure(&ironic, "192.0.2.181", &[], false).await;
    assert_eq!(cost.start_calls, node_calls(START));
    assert_eq!(
        cost.start_db,
        Counts {
            statements: 10,
            transactions: 2
        }
    );
    // The node and its ports once, one PATCH for the properties, the power-off.
    let report = [
        ("GET", ""),
        ("GET", "/ports/detail"),
        ("PATCH", ""),
        ("PUT", "/states/power"),
    ];
    assert_eq!(cost.report_calls, node_calls(&report));
    assert_eq!(
        cost.report_db,
        Counts {
            statements: 11,
            transactions: 3
        }
    );
}

#[tokio::test]
async fn with_the_firewall_and_a_rule() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let cost = measure(&ironic, "192.0.2.182", &[operator_rule()], true).await;
    // The node's MACs are let through before the reboot: that needs Ironic's ports.
    let mut start = START.to_vec();
    start.insert(3, ("GET", "/v1/ports/detail"));
    assert_eq!(cost.start_calls, node_calls(&start));
    // The rules see the node as the hooks' PATCH left it (not read again), and their two
    // actions go to Ironic as one PATCH. The firewall is not refreshed in the report's path
    // (that took a listing of every port in Ironic); the refresh asked for once the node is
    // finished finds nothing left under introspection and closes DHCP without asking
    // Ironic.
    let report = [
        ("GET", ""),
        ("GET", "/ports/detail"),
        ("PATCH", ""),
        ("PATCH", ""),
        ("PUT", "/states/power"),
    ];
    assert_eq!(cost.report_calls, node_calls(&report));
    assert_eq!(cost.node["properties"]["capabilities"], "profile:large");
    assert_eq!(cost.node["extra"]["class"], "large");
    assert_eq!(cost.node["properties"]["cpus"], "4");
    // The start's refresh asks whether anything is under introspection and which MACs are;
    // the report reads the rule's conditions and actions, and the refresh after it asks
    // whether anything is still under introspection.
    assert_eq!(
        (cost.start_db.statements, cost.report_db.statements),
        (10 + 2, 11 + 2 + 1)
    );
}
