//! The DHCP firewall when its commands fail at run time: the root helper exits with an
//! error, execs a program that does not exist, or is gone. Real iptables in a network
//! namespace each test creates (see `firewall.rs`), through a root helper script in the
//! test's temporary directory whose behaviour files next to it switch:
//!
//! - `mode`: `ok` (run the command in the namespace), `exit1` (print a complaint, exit 1),
//!   `missing` (exec a program that does not exist: the shell's status 127);
//! - `budget`: that many more commands run normally before `mode` applies;
//! - `no-restore`: `iptables-restore` always fails, so the daemon falls back to upstream's
//!   per-rule updates through `<chain>_temp`;
//! - `calls`: every command line the helper was given, one a line.
//!
//! What must hold: a failed update leaves the rules in force as they were (a failed
//! transaction changes nothing; the per-rule path changes nothing in force before its
//! complete temporary chain takes over, and after that the new rules are in force), DHCP is
//! never more open than before, the failure is logged with the command and its exit status,
//! callers that wait on the update (an introspection start) are told the firewall failed,
//! a ramdisk report (which does not wait on it) is processed anyway, and the next update
//! that can run restores the right chain.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ironic_inspector::firewall::Firewall;
use ironic_inspector::firewall::iptables::UPDATE_FAILED;
use serde_json::json;

use crate::daemon_binary::Daemon;
use crate::firewall::{
    CHAIN, DEADLINE, INTERFACE, NO_RULES, Netns, TwoNodes, backend, blocked, dropped_by, mac_set,
    own_macs, wait_chain, wait_idle_port_deleted,
};
use crate::helpers::wait_for;
use crate::ironic_api::{IronicApi, unique_macs};
use crate::nodes::liberty_report;

/// The switchable root helper of one test.
struct Helper {
    /// The directory of the script and its switches.
    dir: tempfile::TempDir,
}

/// How the helper fails.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// It prints a complaint and exits 1, as a root helper refusing a command does.
    Exit1,
    /// It execs a program that does not exist (status 127).
    Missing,
    /// The helper itself is gone: the daemon cannot start it.
    Gone,
}

impl Helper {
    fn new(netns: &Netns) -> Helper {
        let dir = tempfile::tempdir().unwrap();
        let ctl = dir.path().display();
        let script = format!(
            "#!/bin/sh\n\
             # Root helper of the firewall fault tests (see tests/e2e/firewall_faults.rs).\n\
             ctl='{ctl}'\n\
             echo \"$*\" >> \"$ctl/calls\"\n\
             mode=ok\n\
             if [ -f \"$ctl/mode\" ]; then mode=$(cat \"$ctl/mode\"); fi\n\
             if [ -f \"$ctl/budget\" ]; then\n\
             \x20 left=$(cat \"$ctl/budget\")\n\
             \x20 if [ \"$left\" -gt 0 ]; then echo $((left - 1)) > \"$ctl/budget\"; mode=ok; fi\n\
             fi\n\
             if [ \"$1\" = iptables-restore ] && [ -f \"$ctl/no-restore\" ]; then mode=exit1; fi\n\
             case \"$mode\" in\n\
             \x20 exit1) echo \"fault-test helper: refusing to run $1\" >&2; exit 1 ;;\n\
             \x20 missing) exec \"$ctl/no-such-iptables\" \"$@\" ;;\n\
             esac\n\
             exec ip netns exec {} \"$@\"\n",
            netns.name
        );
        let helper = Helper { dir };
        let path = helper.path();
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        helper
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("root-helper")
    }

    fn gone_path(&self) -> PathBuf {
        self.dir.path().join("root-helper.gone")
    }

    /// Writes a switch file whole (the daemon may run the helper at any moment).
    fn set(&self, name: &str, value: &str) {
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, value).unwrap();
        std::fs::rename(&tmp, self.dir.path().join(name)).unwrap();
    }

    fn fail(&self, fault: Fault) {
        match fault {
            Fault::Exit1 => self.set("mode", "exit1"),
            Fault::Missing => self.set("mode", "missing"),
            Fault::Gone => std::fs::rename(self.path(), self.gone_path()).unwrap(),
        }
    }

    /// Back to running every command.
    fn heal(&self) {
        if self.gone_path().exists() {
            std::fs::rename(self.gone_path(), self.path()).unwrap();
        }
        let _ = std::fs::remove_file(self.dir.path().join("budget"));
        self.set("mode", "ok");
    }

    /// Lets `commands` more commands run, then fails as `fault` says.
    fn fail_after(&self, commands: usize, fault: Fault) {
        self.set("budget", &commands.to_string());
        self.fail(fault);
    }

    /// How many commands the helper was given so far.
    fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// The argv prefix for the backend.
    fn argv(&self) -> Vec<String> {
        vec![self.path().display().to_string()]
    }

    fn force_per_rule(&self) {
        self.set("no-restore", "");
    }
}

/// What DHCP on the interface meets now: the chain the first DHCP jump of `INPUT` leads
/// to and the MACs it drops. Panics when that chain does not end with ACCEPT (packets would
/// fall through it half filtered); `None` when no jump leads anywhere (DHCP wide open).
fn in_force(netns: &Netns) -> Option<(String, BTreeSet<String>)> {
    let rules = netns.rules();
    let target = rules.iter().find_map(|rule| {
        let words: Vec<&str> = rule.split_whitespace().collect();
        (words.starts_with(&["-A", "INPUT"])
            && words.windows(2).any(|w| w == ["-i", INTERFACE])
            && words.windows(2).any(|w| w == ["--dport", "67"]))
        .then(|| words.last().unwrap().to_string())
    })?;
    let prefix = format!("-A {target} ");
    let chain: Vec<&String> = rules.iter().filter(|r| r.starts_with(&prefix)).collect();
    assert_eq!(
        chain.last().map(|r| r.as_str()),
        Some(format!("-A {target} -j ACCEPT").as_str()),
        "the chain in force does not end with ACCEPT: {rules:#?}"
    );
    let dropped = dropped_by(&rules, &target);
    Some((target, dropped))
}

/// `iptables -S` of `INPUT` and of our chain: what decides DHCP, byte for byte.
fn chain_and_jumps(netns: &Netns) -> (Vec<String>, Option<Vec<String>>) {
    (
        netns
            .run(&["iptables", "-S", "INPUT"])
            .lines()
            .map(str::to_string)
            .collect(),
        netns.chain(CHAIN),
    )
}

/// The backend alone, both ways of applying updates. With the rules for set `a` in force,
/// an update to set `b` is made to fail at its first command, its second, … up to the
/// last; after each, what is in force is `a` (the update said it failed) or `b` (it said it
/// succeeded), never less, and a failed restore transaction left the whole table as it was.
/// Each time the helper then works again and the next update builds exactly `a`.
#[tokio::test]
async fn a_helper_failing_at_any_command_never_opens_dhcp() {
    let Some(netns) = Netns::create("a_helper_failing_at_any_command_never_opens_dhcp") else {
        return;
    };
    let a = own_macs(3);
    let mut b: BTreeSet<String> = a.iter().skip(1).cloned().collect();
    b.extend(unique_macs(2));
    for per_rule in [false, true] {
        let helper = Helper::new(&netns);
        let backend = backend(helper.argv(), per_rule);
        backend.init().await.unwrap();
        backend.update(&mac_set(&a)).await.unwrap();
        assert_eq!(blocked(&netns).as_ref(), Some(&a));

        let mut failed = 0;
        let mut takeovers = Vec::new();
        // `forget`: a failed update first, so the backend no longer knows how INPUT looks
        // and must read it (one more command to fail).
        // (The per-rule path reads INPUT every time anyway.)
        let forgets: &[bool] = if per_rule { &[false] } else { &[false, true] };
        for &forget in forgets {
            let forget_input = || async {
                helper.fail_after(0, Fault::Exit1);
                assert!(backend.update(&mac_set(&a)).await.is_err());
                helper.heal();
            };
            // How many commands a whole update from `a` to `b` takes.
            if forget {
                forget_input().await;
            }
            let before = helper.calls();
            backend.update(&mac_set(&b)).await.unwrap();
            let commands = helper.calls() - before;
            backend.update(&mac_set(&a)).await.unwrap();

            for passing in 0..commands {
                let fault = if passing % 2 == 0 {
                    Fault::Exit1
                } else {
                    Fault::Missing
                };
                if forget {
                    forget_input().await;
                }
                let table = netns.rules();
                let decisive = chain_and_jumps(&netns);
                helper.fail_after(passing, fault);
                let outcome = backend.update(&mac_set(&b)).await;
                helper.heal();
                let what = format!(
                    "per_rule {per_rule}, forget {forget}, {fault:?} after {passing} commands"
                );
                let (_, dropped) = in_force(&netns)
                    .unwrap_or_else(|| panic!("{what}: no jump left: {:#?}", netns.rules()));
                match outcome {
                    Err(err) => {
                        failed += 1;
                        assert_eq!(err.to_string(), UPDATE_FAILED, "{what}");
                        assert_eq!(dropped, a, "{what}");
                        assert_eq!(chain_and_jumps(&netns), decisive, "{what}");
                        if !per_rule {
                            assert_eq!(netns.rules(), table, "{what}");
                        }
                    }
                    // Past the point where the new chain took over (per-rule only).
                    Ok(()) => {
                        assert!(per_rule, "{what}: a restore update cannot half succeed");
                        assert_eq!(dropped, b, "{what}");
                        takeovers.push(passing);
                    }
                }
                // The next update that can run builds exactly `a`, whatever was left.
                backend.update(&mac_set(&a)).await.unwrap();
                assert_eq!(
                    blocked(&netns).as_ref(),
                    Some(&a),
                    "{what}: {:#?}",
                    netns.rules()
                );
            }
        }
        assert!(failed > 0, "per_rule {per_rule}: no update failed");
        assert_eq!(per_rule, !takeovers.is_empty(), "{takeovers:?}");

        // A swap interrupted after the new chain took over, then the next update failing
        // too, at each of its first commands (where it finishes the earlier swap and clears
        // the temporary chain): still never without a complete chain in force. The first
        // and the last of those stops leave the most different states (the old chain's
        // jump still there; the old chain gone).
        takeovers.dedup();
        let ends = [takeovers.first(), takeovers.last()];
        for passing in ends.into_iter().flatten().copied().collect::<BTreeSet<_>>() {
            for next in 0..6 {
                backend.update(&mac_set(&a)).await.unwrap();
                helper.fail_after(passing, Fault::Exit1);
                backend.update(&mac_set(&b)).await.unwrap();
                helper.fail_after(next, Fault::Missing);
                let outcome = backend.update(&mac_set(&a)).await;
                helper.heal();
                let what = format!("swap stopped after {passing} commands, then {next}");
                let (_, dropped) = in_force(&netns)
                    .unwrap_or_else(|| panic!("{what}: no jump left: {:#?}", netns.rules()));
                let expected = if outcome.is_ok() { &a } else { &b };
                assert_eq!(&dropped, expected, "{what}: {outcome:?}");
                backend.update(&mac_set(&a)).await.unwrap();
                assert_eq!(blocked(&netns).as_ref(), Some(&a), "{what}");
            }
        }
        backend.clean_up().await.unwrap();
        assert_eq!(netns.rules(), NO_RULES);
    }
}

/// The number of failed updates the daemon logged so far.
fn logged_failures(daemon: &Daemon) -> usize {
    daemon
        .log_text()
        .lines()
        .filter(|line| line.contains("firewall update failed"))
        .count()
}

/// Waits until the daemon logged `more` failed updates beyond `seen`.
async fn wait_failures(daemon: &Daemon, seen: usize, more: usize, what: &str) {
    wait_for(DEADLINE, what, || async {
        (logged_failures(daemon) >= seen + more).then_some(())
    })
    .await;
}

/// How many times the daemon logged that the introspection of `node` started: the
/// background part of a start is done (its MACs let through by its own firewall update, the
/// node rebooted) and the node's lock is free.
fn logged_starts(daemon: &Daemon, node: &str) -> usize {
    daemon
        .log_text()
        .lines()
        .filter(|line| line.contains("introspection started") && line.contains(node))
        .count()
}

/// Waits until the introspection start of `node` made after `seen` starts were logged is
/// done. Seeing the node's MACs let through is not enough: a periodic refresh that read the
/// node cache just after the start recorded the MACs lets them through too, while the
/// start's own update (which only a later run answers) may still be to come, and fail.
/// Panics at once when the start failed.
async fn wait_started(daemon: &Daemon, node: &str, seen: usize) {
    wait_for(DEADLINE, "the introspection start to be done", || async {
        if logged_starts(daemon, node) > seen {
            return Some(());
        }
        let status = daemon.introspection_status(node).await;
        assert_eq!(
            status["finished"], false,
            "the introspection start failed: {status}"
        );
        None
    })
    .await;
}

/// The daemon binary against the real Ironic, its root helper failing in each way while
/// the periodic refresh runs every second, an introspection starts and a ramdisk reports.
async fn daemon_survives_a_failing_helper(test: &str, per_rule: bool) {
    let Some(ironic) = IronicApi::for_test(test) else {
        return;
    };
    let Some(netns) = Netns::create(test) else {
        return;
    };
    let helper = Helper::new(&netns);
    if per_rule {
        helper.force_per_rule();
    }
    let bmc = if per_rule { "192.0.2.63" } else { "192.0.2.64" };
    let (node, mine, other, idle) = TwoNodes::enroll(&ironic, bmc).await.parts();

    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(
        dir.path(),
        &format!(
            "[DEFAULT]\nauth_strategy = noauth\ntimeout = 0\n\
             [database]\nconnection = sqlite:///{}/inspector.sqlite\n\
             [ironic]\nauth_strategy = noauth\nironic_url = {}\nmax_retries = 5\nretry_interval = 1\n\
             [processing]\nstore_data = database\nnode_not_found_hook = example\n\
             [firewall]\nmanage_firewall = true\ndnsmasq_interface = {INTERFACE}\n\
             firewall_update_period = 1\nroot_helper = {}\n",
            dir.path().display(),
            ironic.url(),
            helper.path().display()
        ),
    )
    .await;
    let all: Vec<String> = mine.iter().chain(&idle).cloned().collect();
    wait_chain(&netns, "the chain after start", &all, &[]).await;
    if per_rule {
        assert!(
            daemon
                .log_text()
                .contains("firewall updates fall back to one iptables process"),
            "{}",
            daemon.log_text()
        );
    }

    for (index, fault) in [Fault::Exit1, Fault::Missing, Fault::Gone]
        .into_iter()
        .enumerate()
    {
        let seen = logged_failures(&daemon);
        helper.fail(fault);
        // A refresh that finds the MAC list unchanged runs no command: a new port makes
        // the next one update. From its failure on, no update can change anything (that
        // is the baseline), and every refresh tries again, since a failed update forgets
        // what was in force.
        ironic.create_port(&other, &unique_macs(1)[0]).await;
        wait_failures(&daemon, seen, 1, &format!("a failed update with {fault:?}")).await;
        let table = netns.rules();
        let seen = logged_failures(&daemon);
        if index == 0 {
            // Ironic changes: the refresh would drop this MAC, if it could run.
            ironic.delete_port(&idle[1]).await;
            // An introspection start cannot let the node's MACs through: its status says
            // why, naming the firewall, and DHCP stays as it was.
            let response = daemon.start_introspection(&node).await;
            assert_eq!(response.status(), 202);
            let body = daemon.wait_finished(&node, DEADLINE).await;
            assert_eq!(body, json!({"finished": true, "error": UPDATE_FAILED}));
        }
        wait_failures(
            &daemon,
            seen,
            2,
            &format!("periodic updates failing with {fault:?}"),
        )
        .await;
        assert_eq!(netns.rules(), table, "{fault:?}: the rules changed");

        let log = daemon.log_text();
        let expected: &[&str] = match fault {
            Fault::Exit1 => &["exit status: 1", "fault-test helper: refusing to run"],
            Fault::Missing => &["exit status: 127", "no-such-iptables"],
            Fault::Gone => &["cannot start", "No such file or directory"],
        };
        assert!(
            log.lines()
                .any(|line| line.contains("firewall update failed")
                    && line.contains(&format!("{} iptables", helper.path().display()))
                    && expected.iter().all(|text| line.contains(text))),
            "{fault:?}: no failure logged with the command, {expected:?}:\n{log}"
        );
    }

    // The helper works again: the next periodic refresh brings the chain up to date.
    helper.heal();
    wait_idle_port_deleted(&netns, "the chain up to date again", &mine, &idle).await;

    // Introspection, then the ramdisk's report while the firewall fails. The report does
    // not wait on the firewall: it is processed and the node finished; the refresh that
    // follows fails like the periodic ones, so DHCP stays as it was (the node's MACs still
    // let through) until the helper works again. The firewall fails only once the start
    // is done: failing earlier fails the start itself (as above).
    let starts = logged_starts(&daemon, &node);
    let response = daemon.start_introspection(&node).await;
    assert_eq!(response.status(), 202);
    wait_started(&daemon, &node, starts).await;
    wait_chain(
        &netns,
        "the node's MACs let through",
        &[idle[0].clone()],
        &mine,
    )
    .await;
    let seen = logged_failures(&daemon);
    helper.fail(Fault::Exit1);
    ironic.create_port(&other, &unique_macs(1)[0]).await;
    wait_failures(&daemon, seen, 1, "a failed update").await;
    let table = netns.rules();
    let report = liberty_report(&mine, bmc);
    let response = daemon.post_continue(&report).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(
        daemon.wait_finished(&node, DEADLINE).await,
        json!({"finished": true, "error": null})
    );
    let seen = logged_failures(&daemon);
    wait_failures(&daemon, seen, 2, "updates failing after the report").await;
    assert_eq!(netns.rules(), table);
    // Once the firewall works, the node's MACs are blocked again.
    helper.heal();
    wait_chain(
        &netns,
        "the node's MACs blocked again",
        &[mine[0].clone(), mine[1].clone(), idle[0].clone()],
        &[],
    )
    .await;

    assert_eq!(daemon.stop().await, Some(0));
    assert_eq!(netns.rules(), NO_RULES, "everything removed at shutdown");
    ironic.delete_node(&node).await;
    ironic.delete_node(&other).await;
}

#[tokio::test]
async fn a_failing_helper_changes_nothing_and_the_next_update_recovers() {
    daemon_survives_a_failing_helper(
        "a_failing_helper_changes_nothing_and_the_next_update_recovers",
        false,
    )
    .await;
}

#[tokio::test]
async fn per_rule_updates_survive_a_failing_helper_too() {
    daemon_survives_a_failing_helper("per_rule_updates_survive_a_failing_helper_too", true).await;
}
