//! The helper running the daemon's firewall commands for real, inside a network namespace
//! of the test's own: the shipped configuration and filter file allow them, their output,
//! standard input and exit status pass through.

use crate::helpers::{HELPER, Netns, Outcome, Setup};

const INTERFACE: &str = "rwtest0";
const CHAIN: &str = "ironic-inspector";

/// Runs the helper (with `setup`'s configuration) inside `netns`.
fn helper_in(netns: &Netns, setup: &Setup, argv: &[&str], stdin: Option<&str>) -> Outcome {
    let conf = setup.conf.to_str().unwrap();
    let mut full = vec![HELPER, conf];
    full.extend_from_slice(argv);
    Outcome::of(&mut netns.command(&full), stdin)
}

#[test]
fn iptables_runs_and_prints_the_namespaces_chains() {
    let test = "iptables_runs_and_prints_the_namespaces_chains";
    let (Some(setup), Some(netns)) = (Setup::shipped(test), Netns::create(test, INTERFACE)) else {
        return;
    };
    netns.run(&["iptables", "-N", "only-in-this-namespace"]);
    let listed = helper_in(&netns, &setup, &["iptables", "-w", "-S"], None);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    assert_eq!(listed.stderr, "", "{listed:?}");
    assert_eq!(
        listed.stdout.lines().collect::<Vec<_>>(),
        [
            "-P INPUT ACCEPT",
            "-P FORWARD ACCEPT",
            "-P OUTPUT ACCEPT",
            "-N only-in-this-namespace"
        ]
    );
    // What iptables changes through the helper is in the namespace.
    let created = helper_in(&netns, &setup, &["iptables", "-w", "-N", CHAIN], None);
    assert_eq!(created.code, Some(0), "{created:?}");
    assert!(netns.rules().contains(&format!("-N {CHAIN}")));
}

#[test]
fn iptables_restore_reads_its_rules_on_standard_input() {
    let test = "iptables_restore_reads_its_rules_on_standard_input";
    let (Some(setup), Some(netns)) = (Setup::shipped(test), Netns::create(test, INTERFACE)) else {
        return;
    };
    let rules = format!(
        "*filter\n:{CHAIN} - [0:0]\n\
         -A {CHAIN} -m mac --mac-source 52:54:00:12:34:56 -j DROP\n\
         -A {CHAIN} -j ACCEPT\n\
         -I INPUT -i {INTERFACE} -p udp --dport 67 -j {CHAIN}\n\
         COMMIT\n"
    );
    let restored = helper_in(
        &netns,
        &setup,
        &["iptables-restore", "--noflush", "-w"],
        Some(&rules),
    );
    assert_eq!(restored.code, Some(0), "{restored:?}");
    assert_eq!(
        netns.rules(),
        [
            "-P INPUT ACCEPT".to_string(),
            "-P FORWARD ACCEPT".to_string(),
            "-P OUTPUT ACCEPT".to_string(),
            format!("-N {CHAIN}"),
            format!("-A INPUT -i {INTERFACE} -p udp -m udp --dport 67 -j {CHAIN}"),
            format!("-A {CHAIN} -m mac --mac-source 52:54:00:12:34:56 -j DROP"),
            format!("-A {CHAIN} -j ACCEPT"),
        ]
    );
}

#[test]
fn the_commands_exit_status_and_stderr_are_the_helpers() {
    let test = "the_commands_exit_status_and_stderr_are_the_helpers";
    let (Some(setup), Some(netns)) = (Setup::shipped(test), Netns::create(test, INTERFACE)) else {
        return;
    };
    let failed = helper_in(
        &netns,
        &setup,
        &["iptables", "-w", "-S", "no-such-chain"],
        None,
    );
    assert_eq!(failed.code, Some(1), "{failed:?}");
    assert_eq!(failed.stdout, "", "{failed:?}");
    assert!(failed.stderr.contains("no-such-chain"), "{failed:?}");
    assert!(
        !failed.stderr.contains("ironic-inspector-rootwrap"),
        "{failed:?}"
    );
    // A bad transaction on stdin: iptables-restore's own status (not one of the helper's).
    let bad = helper_in(
        &netns,
        &setup,
        &["iptables-restore", "--noflush", "-w"],
        Some("*filter\n-A no-such-chain -j ACCEPT\nCOMMIT\n"),
    );
    assert!(
        matches!(bad.code, Some(code) if code != 0 && !(96..=99).contains(&code)),
        "{bad:?}"
    );
    assert!(!netns.rules().iter().any(|r| r.contains("no-such-chain")));
}
