//! The daemon with the default kind of root helper, `ironic-inspector-rootwrap CONFIG` (sudo
//! left out: the test runs as root), on the shipped configuration and filter file: every
//! command the daemon runs (the `-w` probe, the start-up clean-up, the chain, the refresh's
//! `iptables-restore`, the shutdown clean-up) passes the filter.

use crate::daemon::{DaemonDir, Running, fake_ironic};
use crate::helpers::{HELPER, Netns, Setup, require_tools};

#[test]
fn the_daemons_own_commands_pass_the_shipped_filter() {
    let test = "the_daemons_own_commands_pass_the_shipped_filter";
    let (Some(()), Some(setup), Some(netns)) = (
        require_tools(test, &["python3"]),
        Setup::shipped(test),
        Netns::create(test, crate::daemon::INTERFACE),
    ) else {
        return;
    };
    let dir = DaemonDir::new(&format!("{HELPER} {}", setup.conf.display()));
    let mut daemon = Running(dir.spawn_as_root(&netns));
    dir.wait_for_chain(&mut daemon, &netns);
    let _ironic = fake_ironic(&netns);
    dir.wait_for_refresh(&netns);
    dir.stop(&mut daemon, &netns);
    let log = dir.log();
    assert!(
        !log.contains("ironic-inspector-rootwrap:"),
        "the helper refused a command: {log}"
    );
    // Neither probe failed: no fall-back to iptables without -w or to one process per rule.
    assert!(log.contains("firewall chain created"), "{log}");
    assert!(!log.contains("does not support -w"), "{log}");
    assert!(!log.contains("iptables-restore cannot be run"), "{log}");
}
