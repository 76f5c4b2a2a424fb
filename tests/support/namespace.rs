//! Network namespaces for the tests that run real iptables (the firewall, the root helper, the
//! installed package): each test gets a namespace of its own, deleted with every rule in it
//! when the value is dropped, whatever the test's outcome. Shared by the e2e, rootwrap and
//! package test binaries.
//!
//! A test skips (printing why) when a tool is missing, except under CI (env `CI` set), where
//! that fails the test; the one skip allowed under CI is a kernel (or sandbox) that refuses
//! to create a namespace.

// A toolbox: not every binary uses every helper.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether the tests run under CI, where a missing tool or service is a failure.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Where `tool` is installed: on `PATH`, or in the sbin directories a non-login root shell
/// may lack.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// `None` (after printing which is missing) unless every tool is installed; under CI, a
/// panic instead.
pub fn require_tools(test: &str, tools: &[&str]) -> Option<()> {
    if let Some(tool) = tools.iter().find(|tool| which(tool).is_none()) {
        assert!(
            !in_ci(),
            "{test}: CI is set but `{tool}` is not installed (scripts/test installs it)"
        );
        println!("{test}: skipped: `{tool}` is not installed");
        return None;
    }
    Some(())
}

/// A network namespace with its loopback up.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A fresh namespace named `<prefix>-<pid>-<n>`, once `ip`, iptables and `tools` are
    /// found, or `None` (after printing why) when this machine cannot give one.
    pub fn new(test: &str, prefix: &str, tools: &[&str]) -> Option<Netns> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        require_tools(test, &["ip", "iptables", "iptables-restore"])?;
        require_tools(test, tools)?;
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let added = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap_or_else(|err| panic!("{test}: cannot run ip netns add: {err}"));
        if !added.status.success() {
            println!(
                "{test}: skipped: the kernel refuses to create a network namespace \
                 (ip netns add {name}: {})",
                String::from_utf8_lossy(&added.stderr).trim()
            );
            return None;
        }
        let netns = Netns { name };
        netns.run(&["ip", "link", "set", "lo", "up"]);
        Some(netns)
    }

    /// Adds a veth pair inside the namespace and brings `interface` up (the stand-in for
    /// dnsmasq's interface).
    pub fn add_veth(&self, interface: &str, peer: &str) {
        self.run(&[
            "ip", "link", "add", interface, "type", "veth", "peer", "name", peer,
        ]);
        self.run(&["ip", "link", "set", interface, "up"]);
    }

    /// `[firewall] root_helper` for a daemon whose commands should run in the namespace.
    pub fn root_helper(&self) -> String {
        format!("ip netns exec {}", self.name)
    }

    /// A command that runs `argv` inside the namespace.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).args(argv);
        command
    }

    /// Runs `argv` inside the namespace, whatever its outcome.
    pub fn try_run(&self, argv: &[&str]) -> Output {
        self.command(argv)
            .output()
            .unwrap_or_else(|err| panic!("cannot run ip netns exec {}: {err}", self.name))
    }

    /// Runs `argv` inside the namespace; its stdout, or a panic with its stderr.
    pub fn run(&self, argv: &[&str]) -> String {
        let output = self.try_run(argv);
        assert!(
            output.status.success(),
            "ip netns exec {} {}: {}: {}",
            self.name,
            argv.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `iptables -S` of the whole filter table (read as root, without any helper), as lines.
    pub fn rules(&self) -> Vec<String> {
        self.run(&["iptables", "-S"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `iptables -S <chain>`, or `None` when the chain does not exist.
    pub fn chain(&self, chain: &str) -> Option<Vec<String>> {
        let output = self.try_run(&["iptables", "-S", chain]);
        output.status.success().then(|| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
