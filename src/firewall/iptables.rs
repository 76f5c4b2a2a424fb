//! The iptables backend: our chain in the `filter` table, hooked into `INPUT` for DHCP
//! (udp/67) on the dnsmasq interface, run through the root helper.
//!
//! Ports upstream `firewall.py`: the same chain name, rules and jump, the same start-up
//! clean-up and `-w` probe, the same shutdown clean-up. What differs is how an update is
//! applied. Upstream ran one `iptables` process per rule (about 2.4 s per 1,000 MACs) and
//! swapped chains by hand (`<chain>_temp`, jump, rename) so that DHCP was never open or shut
//! between two of those processes. Here the whole new chain goes to the kernel in one
//! `iptables-restore --noflush` transaction: the chain is emptied and refilled, and its jump
//! moved to the top of `INPUT`, all-or-nothing, so packets see either the old rules or the new
//! ones. The temporary chain is not needed for that (and iptables-nft cannot rename a chain
//! in the transaction that created it); it is still removed at start-up and shutdown, and
//! the per-rule path, used only when `iptables-restore` cannot be run, keeps upstream's
//! swap step for step.
//!
//! Commands are argv lists (no shell) run with `tokio::process`; their stderr goes to the
//! error log when they fail. One mutex serialises every command this backend runs.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Mutex;

use super::Firewall;
use crate::error::{Error, Result};

/// iptables refuses chain names longer than this.
const MAX_CHAIN_NAME: usize = 28;
/// Linux interface names are at most this long.
const MAX_INTERFACE_NAME: usize = 15;
/// Suffix of the temporary chain of upstream's swap.
const TEMP_SUFFIX: &str = "_temp";

/// `[firewall] root_helper` as an argv prefix: split on whitespace, no shell, no quoting.
/// Empty means "run iptables directly".
pub fn parse_root_helper(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_string).collect()
}

/// What the backend needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Prefix of every command (e.g. `sudo ironic-inspector-rootwrap /etc/…/rootwrap.conf`,
    /// or `ip netns exec NS`); empty to run iptables directly.
    pub root_helper: Vec<String>,
    /// `[firewall] dnsmasq_interface`.
    pub interface: String,
    /// `[firewall] firewall_chain`.
    pub chain: String,
    /// Apply updates the way upstream did, one `iptables` process per rule, even when
    /// `iptables-restore` is available (for comparisons; the daemon never sets it).
    pub per_rule: bool,
}

/// How updates reach the kernel, decided at [`Firewall::init`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Apply {
    /// One `iptables-restore --noflush` per update.
    Restore {
        /// `iptables-restore` accepts `-w`.
        wait: bool,
    },
    /// Upstream's sequence of single `iptables` commands.
    PerRule,
}

/// State only touched with the command lock held.
#[derive(Debug)]
struct Inner {
    /// `iptables` accepts `-w` (wait for the xtables lock).
    wait: bool,
    /// `None` until `init` ran.
    apply: Option<Apply>,
    /// Whether `INPUT` holds our jump, as far as we know; `None` when unsure (after a failed
    /// transaction), which makes the next update look.
    jump_present: Option<bool>,
    /// Set by `clean_up`: updates after it do nothing.
    closed: bool,
}

/// The iptables backend.
#[derive(Debug)]
pub struct Iptables {
    root_helper: Vec<String>,
    interface: String,
    chain: String,
    temp_chain: String,
    per_rule: bool,
    inner: Mutex<Inner>,
    processes: AtomicU64,
}

/// A command that could not be run or exited with an error.
#[derive(Debug)]
struct CommandFailure {
    command: String,
    detail: String,
}

impl From<CommandFailure> for Error {
    fn from(failure: CommandFailure) -> Error {
        Error::internal(
            "CalledProcessError",
            format!("{} failed: {}", failure.command, failure.detail),
        )
    }
}

impl Iptables {
    /// Checks the names (they end up in iptables arguments and in a restore script) and
    /// builds the backend; nothing runs until [`Firewall::init`].
    pub fn new(settings: Settings) -> Result<Iptables> {
        let name_ok = |name: &str, max: usize| {
            !name.is_empty()
                && name.len() <= max
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\'')
        };
        if !name_ok(&settings.chain, MAX_CHAIN_NAME - TEMP_SUFFIX.len()) {
            return Err(Error::internal(
                "ConfigError",
                format!(
                    "[firewall] firewall_chain {:?} is not a usable iptables chain name (1 to {} \
                     printable characters, no quotes, not starting with '-')",
                    settings.chain,
                    MAX_CHAIN_NAME - TEMP_SUFFIX.len()
                ),
            ));
        }
        if !name_ok(&settings.interface, MAX_INTERFACE_NAME) {
            return Err(Error::internal(
                "ConfigError",
                format!(
                    "[firewall] dnsmasq_interface {:?} is not a usable interface name",
                    settings.interface
                ),
            ));
        }
        Ok(Iptables {
            temp_chain: format!("{}{TEMP_SUFFIX}", settings.chain),
            root_helper: settings.root_helper,
            interface: settings.interface,
            chain: settings.chain,
            per_rule: settings.per_rule,
            inner: Mutex::new(Inner {
                wait: false,
                apply: None,
                jump_present: None,
                closed: false,
            }),
            processes: AtomicU64::new(0),
        })
    }

    /// How many processes this backend has started so far (probes included).
    pub fn processes_started(&self) -> u64 {
        self.processes.load(Ordering::Relaxed)
    }

    /// Whether updates go through `iptables-restore` (known after `init`).
    pub async fn uses_restore(&self) -> bool {
        matches!(self.inner.lock().await.apply, Some(Apply::Restore { .. }))
    }

    /// Runs `program args` through the root helper, feeding `input` on stdin.
    async fn run(
        &self,
        program: &str,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> std::result::Result<(), CommandFailure> {
        let argv: Vec<&str> = self
            .root_helper
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(program))
            .chain(args.iter().copied())
            .collect();
        let command = argv.join(" ");
        let first = argv.first().copied().unwrap_or(program);
        let mut cmd = Command::new(first);
        cmd.args(argv.iter().skip(1))
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.processes.fetch_add(1, Ordering::Relaxed);
        let failure = |detail: String| CommandFailure {
            command: command.clone(),
            detail,
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| failure(format!("cannot start {first}: {e}")))?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // A write error (the process died early) shows up in its exit status below.
            let _ = stdin.write_all(input).await;
            drop(stdin);
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| failure(format!("cannot wait for it: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(failure(format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// One `iptables` command (with `-w` when supported). `ignore`: a failure is only
    /// logged at debug level (upstream's "(i)" commands).
    async fn iptables(&self, inner: &Inner, args: &[&str], ignore: bool) -> Result<()> {
        let mut full = Vec::with_capacity(args.len() + 1);
        if inner.wait {
            full.push("-w");
        }
        full.extend_from_slice(args);
        match self.run("iptables", &full, None).await {
            Ok(()) => Ok(()),
            Err(failure) if ignore => {
                tracing::debug!(command = %failure.command, error = %failure.detail, "ignoring failed iptables command");
                Ok(())
            }
            Err(failure) => {
                tracing::error!(command = %failure.command, error = %failure.detail, "iptables command failed");
                Err(failure.into())
            }
        }
    }

    /// The `INPUT` rule sending DHCP on our interface to `chain`.
    fn jump<'a>(&'a self, op: &'a str, chain: &'a str) -> [&'a str; 10] {
        [
            op,
            "INPUT",
            "-i",
            &self.interface,
            "-p",
            "udp",
            "--dport",
            "67",
            "-j",
            chain,
        ]
    }

    /// Removes `chain` and every jump to it, ignoring failures (it may not exist).
    /// Upstream deleted one jump; we delete duplicates too (bounded), so a state left by a
    /// crash mid-swap is cleaned completely.
    async fn remove_chain(&self, inner: &Inner, chain: &str) -> Result<()> {
        for _ in 0..8 {
            let mut args = Vec::from(self.jump("-D", chain));
            if inner.wait {
                args.insert(0, "-w");
            }
            if self.run("iptables", &args, None).await.is_err() {
                break;
            }
        }
        self.iptables(inner, &["-F", chain], true).await?;
        self.iptables(inner, &["-X", chain], true).await
    }

    async fn probe(&self, program: &str, args: &[&str]) -> std::result::Result<(), CommandFailure> {
        self.run(program, args, None).await
    }

    /// Decides between `iptables-restore` (with or without `-w`) and the per-rule path.
    async fn choose_apply(&self) -> Apply {
        if self.per_rule {
            return Apply::PerRule;
        }
        if self
            .probe("iptables-restore", &["-w", "--help"])
            .await
            .is_ok()
        {
            return Apply::Restore { wait: true };
        }
        match self.probe("iptables-restore", &["--help"]).await {
            Ok(()) => Apply::Restore { wait: false },
            Err(failure) => {
                tracing::warn!(
                    command = %failure.command,
                    error = %failure.detail,
                    "iptables-restore cannot be run; firewall updates fall back to one iptables \
                     process per MAC, which is slow with many ports"
                );
                Apply::PerRule
            }
        }
    }

    /// Upstream's update, one process per rule, through the temporary chain.
    async fn update_per_rule(&self, inner: &mut Inner, blocked: &[&str]) -> Result<()> {
        let (chain, temp) = (self.chain.as_str(), self.temp_chain.as_str());
        self.remove_chain(inner, temp).await?;
        self.iptables(inner, &["-N", temp], false).await?;
        for mac in blocked {
            self.iptables(
                inner,
                &["-A", temp, "-m", "mac", "--mac-source", mac, "-j", "DROP"],
                false,
            )
            .await?;
        }
        self.iptables(inner, &["-A", temp, "-j", "ACCEPT"], false)
            .await?;
        self.iptables(inner, &self.jump("-I", temp), false).await?;
        self.iptables(inner, &self.jump("-D", chain), true).await?;
        self.iptables(inner, &["-F", chain], true).await?;
        self.iptables(inner, &["-X", chain], true).await?;
        self.iptables(inner, &["-E", temp, chain], false).await?;
        inner.jump_present = Some(true);
        Ok(())
    }

    /// One transaction: the chain emptied (or created) and refilled, its jump moved to the
    /// top of `INPUT`.
    async fn update_restore(&self, inner: &mut Inner, wait: bool, blocked: &[&str]) -> Result<()> {
        let mut args = vec!["--noflush"];
        if wait {
            args.insert(0, "-w");
        }
        let jump_present = match inner.jump_present {
            Some(present) => present,
            None => self.jump_exists(inner).await,
        };
        let script = restore_script(&self.chain, &self.interface, blocked, jump_present);
        match self
            .run("iptables-restore", &args, Some(script.as_bytes()))
            .await
        {
            Ok(()) => {
                inner.jump_present = Some(true);
                return Ok(());
            }
            Err(failure) if inner.jump_present.is_some() => {
                // Perhaps someone changed INPUT behind our back: look, and try once more.
                tracing::warn!(command = %failure.command, error = %failure.detail, "iptables-restore failed; checking INPUT and retrying once");
            }
            Err(failure) => {
                tracing::error!(command = %failure.command, error = %failure.detail, "iptables-restore failed");
                return Err(failure.into());
            }
        }
        let jump_present = self.jump_exists(inner).await;
        let script = restore_script(&self.chain, &self.interface, blocked, jump_present);
        match self
            .run("iptables-restore", &args, Some(script.as_bytes()))
            .await
        {
            Ok(()) => {
                inner.jump_present = Some(true);
                Ok(())
            }
            Err(failure) => {
                inner.jump_present = None;
                tracing::error!(command = %failure.command, error = %failure.detail, "iptables-restore failed");
                Err(failure.into())
            }
        }
    }

    /// `iptables -C` on our jump.
    async fn jump_exists(&self, inner: &Inner) -> bool {
        let mut args = Vec::from(self.jump("-C", &self.chain));
        if inner.wait {
            args.insert(0, "-w");
        }
        self.run("iptables", &args, None).await.is_ok()
    }
}

#[async_trait]
impl Firewall for Iptables {
    fn is_enabled(&self) -> bool {
        true
    }

    async fn init(&self) -> Result<()> {
        let mut inner = self.inner.lock().await;
        match self.probe("iptables", &["-w", "-h"]).await {
            Ok(()) => inner.wait = true,
            Err(failure) => {
                tracing::debug!(error = %failure.detail, "iptables -w -h failed");
                tracing::warn!(
                    "iptables does not support -w flag, please update it to at least version 1.4.21"
                );
                inner.wait = false;
            }
        }
        let apply = self.choose_apply().await;
        self.remove_chain(&inner, &self.chain).await?;
        self.remove_chain(&inner, &self.temp_chain).await?;
        // Upstream's access check: the one command at start-up that must succeed.
        self.iptables(&inner, &["-N", &self.chain], false).await?;
        inner.apply = Some(apply);
        inner.jump_present = Some(false);
        inner.closed = false;
        tracing::info!(
            chain = %self.chain,
            interface = %self.interface,
            apply = ?apply,
            "firewall chain created"
        );
        Ok(())
    }

    async fn update(&self, blocked_macs: &BTreeSet<String>) -> Result<()> {
        let mut inner = self.inner.lock().await;
        if inner.closed {
            tracing::debug!("firewall already cleaned up; update skipped");
            return Ok(());
        }
        let Some(apply) = inner.apply else {
            return Err(Error::internal(
                "FirewallError",
                "the firewall is updated before it was initialised",
            ));
        };
        let blocked: Vec<&str> = blocked_macs
            .iter()
            .map(String::as_str)
            .filter(|mac| {
                let ok = is_mac(mac);
                if !ok {
                    tracing::warn!(mac = %mac, "not a MAC address; left out of the firewall");
                }
                ok
            })
            .collect();
        let started = std::time::Instant::now();
        match apply {
            Apply::Restore { wait } => self.update_restore(&mut inner, wait, &blocked).await?,
            Apply::PerRule => self.update_per_rule(&mut inner, &blocked).await?,
        }
        tracing::debug!(
            blocked = blocked.len(),
            duration_ms = started.elapsed().as_millis() as u64,
            "firewall updated"
        );
        Ok(())
    }

    async fn clean_up(&self) -> Result<()> {
        let mut inner = self.inner.lock().await;
        self.remove_chain(&inner, &self.chain).await?;
        self.remove_chain(&inner, &self.temp_chain).await?;
        inner.closed = true;
        inner.jump_present = Some(false);
        tracing::info!(chain = %self.chain, "firewall chain removed");
        Ok(())
    }
}

/// A lower-case MAC in colon form, as Ironic stores them (and the only text we let into a
/// restore script from outside).
fn is_mac(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 17
        && bytes.iter().enumerate().all(|(i, b)| {
            if i % 3 == 2 {
                *b == b':'
            } else {
                b.is_ascii_digit() || (b'a'..=b'f').contains(b)
            }
        })
}

/// The `iptables-restore --noflush` input for one update. `:chain` empties the chain if it
/// exists (creates it otherwise); the jump is deleted and re-inserted at the top of `INPUT`
/// when present, inserted when not.
pub fn restore_script(
    chain: &str,
    interface: &str,
    blocked: &[&str],
    jump_present: bool,
) -> String {
    use std::fmt::Write;
    let mut script = String::with_capacity(64 * (blocked.len() + 4));
    let jump = format!("INPUT -i {interface} -p udp --dport 67 -j {chain}");
    script.push_str("*filter\n");
    let _ = writeln!(script, ":{chain} - [0:0]");
    for mac in blocked {
        let _ = writeln!(script, "-A {chain} -m mac --mac-source {mac} -j DROP");
    }
    let _ = writeln!(script, "-A {chain} -j ACCEPT");
    if jump_present {
        let _ = writeln!(script, "-D {jump}");
    }
    let _ = writeln!(script, "-I {jump}");
    script.push_str("COMMIT\n");
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_script_refills_the_chain_and_moves_the_jump() {
        let macs = ["02:00:00:00:00:01", "02:00:00:00:00:02"];
        assert_eq!(
            restore_script("ironic-inspector", "br-ctlplane", &macs, true),
            "*filter\n\
             :ironic-inspector - [0:0]\n\
             -A ironic-inspector -m mac --mac-source 02:00:00:00:00:01 -j DROP\n\
             -A ironic-inspector -m mac --mac-source 02:00:00:00:00:02 -j DROP\n\
             -A ironic-inspector -j ACCEPT\n\
             -D INPUT -i br-ctlplane -p udp --dport 67 -j ironic-inspector\n\
             -I INPUT -i br-ctlplane -p udp --dport 67 -j ironic-inspector\n\
             COMMIT\n"
        );
    }

    #[test]
    fn restore_script_without_jump_only_inserts_it() {
        assert_eq!(
            restore_script("c", "eth1", &[], false),
            "*filter\n:c - [0:0]\n-A c -j ACCEPT\n-I INPUT -i eth1 -p udp --dport 67 -j c\nCOMMIT\n"
        );
    }

    #[test]
    fn root_helper_is_split_on_whitespace_without_a_shell() {
        assert_eq!(
            parse_root_helper("sudo ironic-inspector-rootwrap /etc/ironic-inspector/rootwrap.conf"),
            [
                "sudo",
                "ironic-inspector-rootwrap",
                "/etc/ironic-inspector/rootwrap.conf"
            ]
        );
        assert_eq!(
            parse_root_helper("  ip\tnetns exec  ns1 "),
            ["ip", "netns", "exec", "ns1"]
        );
        assert!(parse_root_helper("").is_empty());
        assert!(parse_root_helper("   ").is_empty());
        // No shell: quotes and operators are plain arguments.
        assert_eq!(
            parse_root_helper("a 'b c' ; d"),
            ["a", "'b", "c'", ";", "d"]
        );
    }

    #[test]
    fn only_plain_macs_reach_the_script() {
        assert!(is_mac("02:ab:cd:ef:00:19"));
        assert!(!is_mac("02:AB:cd:ef:00:19"));
        assert!(!is_mac("02:ab:cd:ef:00:1"));
        assert!(!is_mac("02:ab:cd:ef:00:19\n-F INPUT"));
        assert!(!is_mac("02-ab-cd-ef-00-19"));
    }

    fn settings(chain: &str, interface: &str) -> Settings {
        Settings {
            root_helper: Vec::new(),
            interface: interface.to_string(),
            chain: chain.to_string(),
            per_rule: false,
        }
    }

    #[test]
    fn chain_and_interface_names_are_checked() {
        assert!(Iptables::new(settings("ironic-inspector", "br-ctlplane")).is_ok());
        // `<chain>_temp` must fit iptables' 28 characters.
        assert!(Iptables::new(settings(&"c".repeat(23), "eth0")).is_ok());
        assert!(Iptables::new(settings(&"c".repeat(24), "eth0")).is_err());
        assert!(Iptables::new(settings("", "eth0")).is_err());
        assert!(Iptables::new(settings("a b", "eth0")).is_err());
        assert!(Iptables::new(settings("-X", "eth0")).is_err());
        assert!(Iptables::new(settings("c", "eth0\n-F")).is_err());
        assert!(Iptables::new(settings("c", "")).is_err());
    }

    #[tokio::test]
    async fn a_missing_helper_fails_init_with_the_command_in_the_error() {
        let backend = Iptables::new(Settings {
            root_helper: vec!["/nonexistent/helper".to_string()],
            ..settings("c", "eth0")
        })
        .unwrap();
        let err = backend.init().await.unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent/helper iptables") && err.contains("-N c"),
            "{err}"
        );
        let err = backend.update(&BTreeSet::new()).await.unwrap_err();
        assert!(
            err.to_string().contains("before it was initialised"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::hooks::validate_interfaces::is_valid_mac;
    use crate::testing::{mac, text};

    fn settings(chain: &str, interface: &str) -> Settings {
        Settings {
            root_helper: Vec::new(),
            interface: interface.to_string(),
            chain: chain.to_string(),
            per_rule: false,
        }
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z][a-z0-9_-]{0,14}", text(),]
    }

    proptest! {
        #[test]
        fn root_helper_words_read_back(
            words in prop::collection::vec("[^\\s]{1,12}", 0..6),
            separators in prop::collection::vec(prop::sample::select(vec![" ", "  ", "\t", " \t\n"]), 7),
        ) {
            let mut value = separators[0].to_string();
            for (word, sep) in words.iter().zip(&separators[1..]) {
                value.push_str(word);
                value.push_str(sep);
            }
            prop_assert_eq!(parse_root_helper(&value), words);
        }

        #[test]
        fn root_helper_parsing_is_idempotent(value in text()) {
            let words = parse_root_helper(&value);
            prop_assert!(words.iter().all(|w| !w.is_empty() && !w.contains(char::is_whitespace)));
            prop_assert_eq!(parse_root_helper(&words.join(" ")), words);
        }

        #[test]
        fn only_lower_case_colon_macs_reach_the_script(s in prop_oneof![mac(), text()]) {
            prop_assert_eq!(is_mac(&s), is_valid_mac(&s) && s == s.to_ascii_lowercase());
            if is_mac(&s) {
                prop_assert!(s.bytes().all(|b| b == b':' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            }
            prop_assert!(is_mac(&s.to_ascii_lowercase()) || !is_valid_mac(&s));
        }

        #[test]
        fn restore_scripts_keep_their_shape(
            chain in name(),
            interface in name(),
            candidates in prop::collection::vec(prop_oneof![mac(), text()], 0..8),
            jump_present in any::<bool>(),
        ) {
            if Iptables::new(settings(&chain, &interface)).is_err() {
                return Ok(());
            }
            let blocked: Vec<&str> = candidates.iter().map(String::as_str).filter(|m| is_mac(m)).collect();
            let script = restore_script(&chain, &interface, &blocked, jump_present);
            let lines: Vec<&str> = script.lines().collect();
            let expected_lines = blocked.len() + 5 + usize::from(jump_present);
            prop_assert_eq!(lines.len(), expected_lines, "{}", script);
            prop_assert_eq!(lines[0], "*filter");
            prop_assert_eq!(lines[lines.len() - 1], "COMMIT");
            for (line, mac) in lines[2..].iter().zip(&blocked) {
                let words: Vec<&str> = line.split(' ').collect();
                prop_assert_eq!(words, vec!["-A", chain.as_str(), "-m", "mac", "--mac-source", mac, "-j", "DROP"]);
            }
        }
    }
}
