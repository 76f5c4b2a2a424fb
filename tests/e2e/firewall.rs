//! The DHCP firewall with real iptables, inside a network namespace each test creates (a veth
//! pair stands for the dnsmasq interface; the daemon's root helper is `ip netns exec <ns>`),
//! against the real Ironic.
//!
//! A test skips with a printed line only when the kernel refuses to create a namespace. A
//! missing Ironic or iptables skips too, except under CI (env `CI` set), where it fails.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ironic_inspector::firewall::iptables::{Iptables, Settings};
use ironic_inspector::mac::Mac;
use serde_json::json;

use crate::fault_proxy::{FaultProxy, Match};
use crate::helpers::{spawn_app_customised, test_config, wait_for};
use crate::ironic_api::{IronicApi, PrivateIronic, unique_macs};
use crate::nodes::liberty_report;

/// `count` MACs of the test's own, as the set the firewall is given.
pub fn own_macs(count: usize) -> BTreeSet<String> {
    unique_macs(count).into_iter().collect()
}

pub const DEADLINE: Duration = Duration::from_secs(60);
pub const CHAIN: &str = "ironic-inspector";
pub const TEMP_CHAIN: &str = "ironic-inspector_temp";
pub const INTERFACE: &str = "fwtest0";
/// `iptables -S` of a filter table with no rule at all: everything of ours removed.
pub const NO_RULES: [&str; 3] = ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"];

pub use crate::namespace::Netns;

/// The e2e tests' namespace: a veth pair whose end [`INTERFACE`] is up.
impl Netns {
    /// A fresh namespace, or `None` (after printing why) when this machine cannot give one.
    pub fn create(test: &str) -> Option<Netns> {
        let netns = Netns::new(test, "insp-fw", &[])?;
        netns.add_veth(INTERFACE, "fwtest1");
        Some(netns)
    }
}

/// The iptables backend alone (no daemon) on [`CHAIN`] and [`INTERFACE`], its commands run
/// through `root_helper`, its updates made per rule (upstream's way) or by restore.
pub fn backend(root_helper: Vec<String>, per_rule: bool) -> Iptables {
    Iptables::new(Settings {
        root_helper,
        interface: INTERFACE.to_string(),
        chain: CHAIN.to_string(),
        per_rule,
    })
    .unwrap()
}

fn jump() -> String {
    format!("-A INPUT -i {INTERFACE} -p udp -m udp --dport 67 -j {CHAIN}")
}

fn drop_rule(mac: &str) -> String {
    format!("-A {CHAIN} -m mac --mac-source {mac} -j DROP")
}

/// The daemon's config: Ironic at `ironic_url`, the firewall in `netns` refreshed every
/// `period` seconds through `root_helper` (the namespace's own when `None`), and `extra`
/// lines in `[processing]` (e.g. a not-found hook).
fn config(
    ironic_url: &str,
    netns: &Netns,
    period: u32,
    root_helper: Option<&str>,
    extra: &str,
) -> String {
    format!(
        "[ironic]\nironic_url = {ironic_url}\nmax_retries = 5\nretry_interval = 1\n\
         [processing]\nstore_data = database\n{extra}\n\
         [firewall]\nmanage_firewall = true\ndnsmasq_interface = {INTERFACE}\n\
         firewall_update_period = {period}\nroot_helper = {}\n",
        root_helper.map_or_else(|| netns.root_helper(), str::to_string)
    )
}

/// `iptables -S <chain>` of the closed chain: everything rejected.
fn closed_chain() -> Vec<String> {
    vec![
        format!("-N {CHAIN}"),
        format!("-A {CHAIN} -j REJECT --reject-with icmp-port-unreachable"),
    ]
}

/// Waits until DHCP is closed: one jump from INPUT to the chain, which rejects everything,
/// and no temporary chain.
pub async fn wait_closed(netns: &Netns, what: &str) {
    wait_for(DEADLINE, what, || async {
        let all = netns.rules();
        let jumps = all.iter().filter(|r| **r == jump()).count();
        (jumps == 1
            && netns.chain(CHAIN)? == closed_chain()
            && !all.iter().any(|r| r.contains(TEMP_CHAIN)))
        .then_some(())
    })
    .await;
}

/// The chain is well formed: one jump from INPUT, no temporary chain, ACCEPT last; returns
/// the blocked MACs. `None` in any other state, e.g. while the daemon's start-up is still
/// removing what an earlier run left (the daemon sets the firewall up after it was spawned).
pub fn blocked(netns: &Netns) -> Option<BTreeSet<String>> {
    let rules = netns.chain(CHAIN)?;
    let all = netns.rules();
    let jumps = all.iter().filter(|r| **r == jump()).count();
    if jumps != 1
        || rules.last()? != &format!("-A {CHAIN} -j ACCEPT")
        || all.iter().any(|r| r.contains(TEMP_CHAIN))
    {
        return None;
    }
    Some(dropped_by(&rules, CHAIN))
}

/// The MACs (lower case) that the DROP rules of `chain` among `rules` (`iptables -S`
/// lines) name.
pub fn dropped_by(rules: &[String], chain: &str) -> BTreeSet<String> {
    let prefix = format!("-A {chain} -m mac --mac-source ");
    rules
        .iter()
        .filter_map(|r| {
            r.strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(" -j DROP"))
                .map(str::to_ascii_lowercase)
        })
        .collect()
}

/// The MACs of `texts`, for driving a backend directly.
pub fn mac_set(texts: &BTreeSet<String>) -> BTreeSet<Mac> {
    texts.iter().map(|text| text.parse().unwrap()).collect()
}

/// Waits until the chain blocks every MAC of `blocked_macs` and none of `open_macs`.
pub async fn wait_chain(netns: &Netns, what: &str, blocked_macs: &[String], open_macs: &[String]) {
    wait_for(DEADLINE, what, || async {
        let now = blocked(netns)?;
        (blocked_macs.iter().all(|m| now.contains(m)) && open_macs.iter().all(|m| !now.contains(m)))
            .then_some(())
    })
    .await;
}

/// The nodes the daemon-level firewall tests set in Ironic: `node`, managed, found by its
/// BMC address, with a port for each of its two NICs (`mine`), which the tests introspect;
/// and `other`, left in enroll, with two ports (`idle`), whose MACs stay blocked.
pub struct TwoNodes {
    pub node: String,
    pub mine: Vec<String>,
    pub other: String,
    pub idle: Vec<String>,
}

/// Waits until the chain blocks `mine` and the first of `idle` only: the second port of
/// the idle node was deleted in Ironic.
pub async fn wait_idle_port_deleted(netns: &Netns, what: &str, mine: &[String], idle: &[String]) {
    let blocked = [mine[0].clone(), mine[1].clone(), idle[0].clone()];
    wait_chain(netns, what, &blocked, &idle[1..]).await;
}

impl TwoNodes {
    /// The node, its MACs, the idle node and its MACs.
    pub fn parts(self) -> (String, Vec<String>, String, Vec<String>) {
        (self.node, self.mine, self.other, self.idle)
    }

    pub async fn enroll(ironic: &IronicApi, bmc: &str) -> TwoNodes {
        let mine = unique_macs(2);
        let idle = unique_macs(2);
        let node = ironic
            .enroll(
                json!({"ipmi_address": bmc}),
                &[mine[0].as_str(), mine[1].as_str()],
            )
            .await;
        ironic.manage(&node).await;
        let other = ironic
            .enroll(json!({}), &[idle[0].as_str(), idle[1].as_str()])
            .await;
        TwoNodes {
            node,
            mine,
            other,
            idle,
        }
    }
}

/// Start, introspection start, a port deleted in Ironic, processing, shutdown: the chain
/// follows each step. With no node under introspection and no not-found hook, DHCP is
/// closed altogether.
#[tokio::test]
async fn the_chain_follows_introspection_and_ironic() {
    let test = "the_chain_follows_introspection_and_ironic";
    let Some(ironic) = IronicApi::for_test(test) else {
        return;
    };
    let Some(netns) = Netns::create(test) else {
        return;
    };
    let bmc = "192.0.2.61";
    let (node, mine, other, idle) = TwoNodes::enroll(&ironic, bmc).await.parts();

    // Start: nothing is under introspection, so nothing may DHCP.
    let app = spawn_app_customised(&config(ironic.url(), &netns, 1, None, ""), |_| {}).await;
    wait_closed(&netns, "DHCP closed after start").await;
    let input = netns.run(&["iptables", "-S", "INPUT"]);
    assert_eq!(
        input.lines().nth(1),
        Some(jump().as_str()),
        "our jump heads INPUT: {input}"
    );

    // Introspection starts: DHCP opens; the node's MACs are let through, the idle node's
    // are not.
    let response = app.start_introspection(&node).await;
    assert_eq!(response.status(), 202);
    wait_chain(&netns, "the node's MACs whitelisted", &idle, &mine).await;

    // A port deleted in Ironic leaves the chain on the next update.
    ironic.delete_port(&idle[1]).await;
    wait_chain(
        &netns,
        "the deleted port's MAC gone",
        &idle[..1],
        &[mine[0].clone(), mine[1].clone(), idle[1].clone()],
    )
    .await;

    // Processing finishes the last introspection: DHCP closes again (the refresh asked for
    // once the node is finished).
    let response = app.post_continue(&liberty_report(&mine, bmc)).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    app.wait_finished(&node, DEADLINE).await;
    wait_closed(&netns, "DHCP closed again after the last introspection").await;

    // Shutdown: no jump, no chain.
    app.stop().await;
    let rules = netns.rules();
    assert_eq!(rules, NO_RULES, "everything removed at shutdown");
    ironic.delete_node(&node).await;
    ironic.delete_node(&other).await;
}

/// A node found by its BMC address alone (no port in Ironic) needs DHCP too: its
/// introspection start opens the closed chain at once, not at the next periodic refresh
/// (an hour away here); its report closes it again, as soon as the node is finished.
#[tokio::test]
async fn an_introspection_start_opens_dhcp_for_a_node_without_ports() {
    let test = "an_introspection_start_opens_dhcp_for_a_node_without_ports";
    let Some(ironic) = IronicApi::for_test(test) else {
        return;
    };
    let Some(netns) = Netns::create(test) else {
        return;
    };
    let node = ironic
        .enroll(json!({"ipmi_address": "192.0.2.65"}), &[])
        .await;
    ironic.manage(&node).await;
    let app = spawn_app_customised(&config(ironic.url(), &netns, 3600, None, ""), |_| {}).await;
    wait_closed(&netns, "DHCP closed after start").await;
    let response = app.start_introspection(&node).await;
    assert_eq!(response.status(), 202);
    wait_for(DEADLINE, "DHCP open for the node", || async {
        blocked(&netns).map(|_| ())
    })
    .await;
    // Its report finishes the last introspection: DHCP closes again at once, through the
    // refresh asked for once the node is finished, not at the next periodic one.
    let response = app
        .post_continue(&liberty_report(&unique_macs(2), "192.0.2.65"))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    app.wait_finished(&node, DEADLINE).await;
    wait_closed(&netns, "DHCP closed after the report").await;
    app.stop().await;
    ironic.delete_node(&node).await;
}

/// With a node-not-found hook, an unknown machine may come at any time: DHCP is never
/// closed. Unknown MACs pass; the MACs of known nodes not under introspection are dropped.
#[tokio::test]
async fn a_not_found_hook_keeps_dhcp_open_for_unknown_machines() {
    let test = "a_not_found_hook_keeps_dhcp_open_for_unknown_machines";
    let Some(ironic) = IronicApi::for_test(test) else {
        return;
    };
    let Some(netns) = Netns::create(test) else {
        return;
    };
    let bmc = "192.0.2.62";
    let (node, mine, other, idle) = TwoNodes::enroll(&ironic, bmc).await.parts();
    // Discovery, the not-found hook operators set for exactly this.
    let hook = "node_not_found_hook = enroll\n[discovery]\nenroll_node_driver = fake-hardware";
    let app = spawn_app_customised(&config(ironic.url(), &netns, 1, None, hook), |_| {}).await;
    let all: Vec<String> = mine.iter().chain(&idle).cloned().collect();
    wait_chain(&netns, "open, known MACs blocked, after start", &all, &[]).await;

    let response = app.start_introspection(&node).await;
    assert_eq!(response.status(), 202);
    wait_chain(&netns, "the node's MACs whitelisted", &idle, &mine).await;
    let response = app.post_continue(&liberty_report(&mine, bmc)).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    app.wait_finished(&node, DEADLINE).await;
    // Nothing is under introspection any more; the chain stays open.
    wait_chain(&netns, "open, the node's MACs blocked again", &all, &[]).await;

    app.stop().await;
    assert_eq!(netns.rules(), NO_RULES, "everything removed at shutdown");
    ironic.delete_node(&node).await;
    ironic.delete_node(&other).await;
}

/// 2.2.5's cache: a periodic refresh that finds the same MAC list as the last update lists
/// Ironic's ports and runs no iptables process. An Ironic of the test's own, so that no
/// other test's port changes the list; a root helper that counts the commands it runs; a
/// proxy in front of Ironic that counts the port listings.
#[tokio::test]
async fn an_unchanged_mac_list_runs_no_iptables_process() {
    let test = "an_unchanged_mac_list_runs_no_iptables_process";
    if crate::service_env::service_var("INSPECTOR_TEST_IRONIC_URL", test).is_none() {
        return;
    }
    let Some(netns) = Netns::create(test) else {
        return;
    };
    let ironic = PrivateIronic::start();
    let idle = unique_macs(2);
    let other = ironic.api.enroll(json!({}), &[idle[0].as_str()]).await;
    let proxy = FaultProxy::start(ironic.api.url()).await;
    let helper_dir = tempfile::tempdir().unwrap();
    let calls = helper_dir.path().join("calls");
    let helper = helper_dir.path().join("root-helper");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec ip netns exec {} \"$@\"\n",
            calls.display(),
            netns.name
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let commands = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let listings = Match::new("GET", "/v1/ports/detail");

    let helper_path = helper.display().to_string();
    let hook = "node_not_found_hook = example";
    let app = spawn_app_customised(
        &config(&proxy.url, &netns, 1, Some(&helper_path), hook),
        |_| {},
    )
    .await;
    wait_chain(&netns, "the idle MAC blocked after start", &idle[..1], &[]).await;
    let (before, listed) = (commands(), proxy.count(&listings));
    wait_for(DEADLINE, "three more periodic refreshes", || async {
        (proxy.count(&listings) >= listed + 3).then_some(())
    })
    .await;
    assert_eq!(
        commands(),
        before,
        "refreshes with an unchanged MAC list ran iptables: {:?}",
        std::fs::read_to_string(&calls)
    );

    // A change is applied at the next refresh.
    ironic.api.create_port(&other, &idle[1]).await;
    wait_chain(&netns, "the new port's MAC blocked", &idle, &[]).await;
    assert!(commands() > before);

    app.stop().await;
    assert_eq!(netns.rules(), NO_RULES, "everything removed at shutdown");
}

/// A daemon that died without cleaning up left its chain, a stale temporary chain and
/// duplicate jumps: the next start removes them all and builds the chain afresh.
#[tokio::test]
async fn restart_cleans_a_stale_chain_and_rebuilds_it() {
    let test = "restart_cleans_a_stale_chain_and_rebuilds_it";
    let Some(ironic) = IronicApi::for_test(test) else {
        return;
    };
    let Some(netns) = Netns::create(test) else {
        return;
    };
    let idle = unique_macs(1);
    let other = ironic.enroll(json!({}), &[idle[0].as_str()]).await;
    let stale = "02:ee:ee:ee:ee:01";
    for argv in [
        vec!["iptables", "-N", CHAIN],
        vec![
            "iptables",
            "-A",
            CHAIN,
            "-m",
            "mac",
            "--mac-source",
            stale,
            "-j",
            "DROP",
        ],
        vec!["iptables", "-A", CHAIN, "-j", "ACCEPT"],
        vec!["iptables", "-N", TEMP_CHAIN],
        vec!["iptables", "-A", TEMP_CHAIN, "-j", "ACCEPT"],
    ] {
        netns.run(&argv);
    }
    for chain in [CHAIN, CHAIN, TEMP_CHAIN] {
        netns.run(&[
            "iptables", "-I", "INPUT", "-i", INTERFACE, "-p", "udp", "--dport", "67", "-j", chain,
        ]);
    }

    let hook = "node_not_found_hook = example";
    let app = spawn_app_customised(&config(ironic.url(), &netns, 3600, None, hook), |_| {}).await;
    wait_chain(&netns, "the rebuilt chain", &idle, &[stale.to_string()]).await;
    assert!(
        netns.rules().iter().all(|r| !r.contains(TEMP_CHAIN)),
        "{:?}",
        netns.rules()
    );
    app.stop().await;
    assert_eq!(netns.rules(), NO_RULES);
    ironic.delete_node(&other).await;
}

/// The backend alone, driven with a plain list (no Ironic): per-rule (upstream's way) and
/// restore give the same chains, open and closed, and updates replace them whole.
#[tokio::test]
async fn restore_and_per_rule_build_the_same_chain() {
    use ironic_inspector::firewall::Firewall;
    let Some(netns) = Netns::create("restore_and_per_rule_build_the_same_chain") else {
        return;
    };
    let macs = own_macs(5);
    let fewer: BTreeSet<String> = macs.iter().skip(2).cloned().collect();
    let mut chains = Vec::new();
    for per_rule in [true, false] {
        let root_helper = netns.root_helper();
        let backend = backend(
            root_helper.split_whitespace().map(str::to_string).collect(),
            per_rule,
        );
        backend.init().await.unwrap();
        assert_eq!(backend.uses_restore().await, !per_rule);
        assert_eq!(netns.chain(CHAIN).unwrap(), [format!("-N {CHAIN}")]);
        backend.update(&mac_set(&macs)).await.unwrap();
        assert_eq!(blocked(&netns).unwrap(), macs);
        let before = backend.processes_started();
        backend.update(&mac_set(&fewer)).await.unwrap();
        if !per_rule {
            assert_eq!(
                backend.processes_started() - before,
                1,
                "one process per update"
            );
        }
        assert_eq!(blocked(&netns).unwrap(), fewer);
        chains.push(netns.rules());
        // Someone removes our jump behind our back: the next update puts it back.
        netns.run(&[
            "iptables", "-D", "INPUT", "-i", INTERFACE, "-p", "udp", "--dport", "67", "-j", CHAIN,
        ]);
        backend.update(&mac_set(&macs)).await.unwrap();
        assert_eq!(blocked(&netns).unwrap(), macs);
        // Closed, then open again: the chain rejects everything, then blocks as before.
        backend.close().await.unwrap();
        assert_eq!(netns.chain(CHAIN).unwrap(), closed_chain());
        chains.push(netns.rules());
        backend.update(&mac_set(&macs)).await.unwrap();
        assert_eq!(blocked(&netns).unwrap(), macs);
        backend.clean_up().await.unwrap();
        assert_eq!(netns.rules(), NO_RULES);
        // Updates after clean-up do nothing.
        backend.update(&mac_set(&macs)).await.unwrap();
        assert!(netns.chain(CHAIN).is_none());
    }
    // Per rule: open, closed; restore: open, closed.
    assert_eq!(chains[0], chains[2]);
    assert_eq!(chains[1], chains[3]);
    for mac in &fewer {
        assert!(chains[2].contains(&drop_rule(mac)));
    }
}

/// Start-up stops with a clear error when the firewall cannot be managed.
#[tokio::test]
async fn start_up_fails_when_iptables_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(
        dir.path(),
        "[firewall]\nmanage_firewall = true\ndnsmasq_interface = eth9\n\
         root_helper = /nonexistent/root-helper\n",
    );
    crate::helpers::migrated_db(&config).await;
    let state = ironic_inspector::app::build_state(Arc::new(config))
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = ironic_inspector::app::serve(state, listener, None)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("cannot set up the DHCP firewall")
            && text.contains("/nonexistent/root-helper iptables"),
        "{text}"
    );
}
