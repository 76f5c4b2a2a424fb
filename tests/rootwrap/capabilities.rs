//! The daemon without a root helper (`[firewall] root_helper =` empty): the real
//! `ironic-inspector` binary runs as an unprivileged user that holds only CAP_NET_ADMIN and
//! CAP_NET_RAW (ambient, so the iptables it runs gets them too), in a network namespace of
//! the test's own. It creates its chain at start-up, fills it from (a fake) Ironic's ports
//! and removes it at SIGTERM; without the capabilities it does not start, and says the
//! firewall is why.

use std::os::unix::fs::MetadataExt;

use crate::daemon::{
    DEADLINE, DaemonDir, INTERFACE, NET_CAPS, NO_RULES, Running, UID, fake_ironic, identity,
};
use crate::helpers::{Netns, require_root, require_tools, wait_for};

fn set_up(test: &str) -> Option<(Netns, DaemonDir)> {
    require_root(test)?;
    let netns = Netns::create(test, INTERFACE)?;
    Some((netns, DaemonDir::new("")))
}

#[test]
fn the_daemon_manages_its_chain_with_capabilities_and_no_root_helper() {
    let test = "the_daemon_manages_its_chain_with_capabilities_and_no_root_helper";
    let (Some(()), Some((netns, dir))) = (require_tools(test, &["python3"]), set_up(test)) else {
        return;
    };
    let mut daemon = Running(dir.spawn_unprivileged(
        &netns,
        &[
            "--inh-caps=-all,+net_admin,+net_raw",
            "--ambient-caps=-all,+net_admin,+net_raw",
        ],
    ));
    // The chain exists before any refresh, without Ironic.
    dir.wait_for_chain(&mut daemon, &netns);
    let _ironic = fake_ironic(&netns);
    dir.wait_for_refresh(&netns);
    // The process that set it up is nobody, with the two capabilities and no other.
    let (uid, caps) = identity(daemon.0.id()).expect("the daemon's /proc status");
    assert_eq!(uid, UID);
    assert_eq!(caps, NET_CAPS, "effective capabilities {caps:#x}");
    let log = std::fs::metadata(dir.dir.path().join("inspector.log")).unwrap();
    assert_eq!(log.uid(), UID);
    dir.stop(&mut daemon, &netns);
}

#[test]
fn without_the_capabilities_the_daemon_does_not_start_and_names_the_firewall() {
    let Some((netns, dir)) =
        set_up("without_the_capabilities_the_daemon_does_not_start_and_names_the_firewall")
    else {
        return;
    };
    let mut daemon =
        Running(dir.spawn_unprivileged(&netns, &["--inh-caps=-all", "--ambient-caps=-all"]));
    let status = wait_for(
        DEADLINE,
        || dir.report("the exit"),
        || daemon.0.try_wait().unwrap(),
    );
    assert!(!status.success(), "{status}");
    let stderr = dir.stderr();
    assert!(
        stderr.contains("cannot set up the DHCP firewall"),
        "{stderr}{}",
        dir.log()
    );
    assert!(stderr.contains("iptables"), "{stderr}");
    assert!(
        stderr.contains("Permission denied") || stderr.contains("you must be root"),
        "{stderr}"
    );
    assert_eq!(netns.rules(), NO_RULES);
}
