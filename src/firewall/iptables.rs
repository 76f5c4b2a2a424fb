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
//! swap.
//!
//! A failed update (the root helper gone, iptables exiting non-zero, a command hanging past
//! [`COMMAND_TIMEOUT`]) never leaves DHCP more open than before. A failed transaction changes
//! nothing. The per-rule path changes nothing in force until the complete temporary chain
//! takes over with one inserted jump; a failure after that leaves the new rules in force
//! there, and the next update, which reads `INPUT` first, finishes the swap before anything
//! else. The failure is logged once per update with the command, its exit status and its
//! stderr; callers get a plain message naming the firewall.
//!
//! Commands are argv lists (no shell) run with `tokio::process`. One mutex serialises every
//! command this backend runs. The only text from outside in them is MACs, and those are
//! [`Mac`]s, printed in colon form, so they cannot carry anything else into a command or a
//! restore script.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Mutex;

use super::Firewall;
use crate::error::{Error, Result};
use crate::mac::Mac;

/// iptables refuses chain names longer than this.
const MAX_CHAIN_NAME: usize = 28;
/// Linux interface names are at most this long.
const MAX_INTERFACE_NAME: usize = 15;
/// Suffix of the temporary chain of upstream's swap.
const TEMP_SUFFIX: &str = "_temp";
/// How long one command may run before it is killed and counted as failed. `-w` makes
/// iptables wait for the xtables lock without limit; a stuck helper must not hold every
/// later refresh (and with them introspection starts) forever.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of a failed command's stderr goes to the log.
const STDERR_LOG_LIMIT: usize = 2000;
/// What callers (and through them API clients and node statuses) are told when an update
/// fails; the log has the command, its exit status and stderr.
pub const UPDATE_FAILED: &str =
    "Cannot update the DHCP firewall: iptables failed (see the inspector's log)";

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

/// What our chain holds after an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rules<'a> {
    /// A `DROP` for each of these MACs, then `ACCEPT`.
    Accept {
        /// The MACs dropped.
        blocked: &'a [Mac],
    },
    /// `REJECT` for everything (DHCP closed).
    RejectAll,
}

impl Rules<'_> {
    /// The rules, in order, as `iptables -A <chain>` arguments after the chain name.
    fn lines(self) -> impl Iterator<Item = String> {
        let (blocked, last): (&[Mac], &str) = match self {
            Rules::Accept { blocked } => (blocked, "-j ACCEPT"),
            Rules::RejectAll => (&[], "-j REJECT"),
        };
        blocked
            .iter()
            .map(|mac| format!("-m mac --mac-source {mac} -j DROP"))
            .chain(std::iter::once(last.to_string()))
    }

    /// How many MACs are dropped, for the log.
    fn blocked(self) -> usize {
        match self {
            Rules::Accept { blocked } => blocked.len(),
            Rules::RejectAll => 0,
        }
    }
}

/// State only touched with the command lock held.
#[derive(Debug)]
struct Inner {
    /// `iptables` accepts `-w` (wait for the xtables lock).
    wait: bool,
    /// `None` until `init` ran.
    apply: Option<Apply>,
    /// How many jumps to our chain `INPUT` holds, as far as we know; `None` when unsure
    /// (after a failed command), which makes the next update read `INPUT`.
    jumps: Option<usize>,
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

/// A command that could not be run, timed out or exited with an error.
#[derive(Debug)]
struct CommandFailure {
    /// The whole command line, root helper included.
    command: String,
    /// Why: the exit status and stderr, or why it could not be started or waited for.
    detail: String,
}

impl From<CommandFailure> for Error {
    /// The detailed error of start-up and shutdown, where the operator reads it directly.
    fn from(failure: CommandFailure) -> Error {
        Error::internal(
            "FirewallError",
            format!("{} failed: {}", failure.command, failure.detail),
        )
    }
}

/// The last words of a failed command, trimmed and bounded for the log.
fn stderr_excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    match text.char_indices().nth(STDERR_LOG_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Whether `rule` (a line of `iptables -S INPUT`) is a DHCP jump on `interface` to `chain`.
/// iptables prints the jump inserted as `-I INPUT -i IF -p udp --dport 67 -j CHAIN` as
/// `-A INPUT -i IF -p udp -m udp --dport 67 -j CHAIN`.
fn is_jump(rule: &str, interface: &str, chain: &str) -> bool {
    let words: Vec<&str> = rule.split_whitespace().collect();
    let has = |pair: [&str; 2]| words.windows(2).any(|w| w == pair);
    words.starts_with(&["-A", "INPUT"])
        && words.ends_with(&["-j", chain])
        && has(["-i", interface])
        && has(["-p", "udp"])
        && has(["--dport", "67"])
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
                jumps: None,
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

    /// Runs `program args` through the root helper, feeding `input` on stdin; its stdout.
    async fn run(
        &self,
        program: &str,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> std::result::Result<String, CommandFailure> {
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
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::systemd::scrub(&mut cmd);
        self.processes.fetch_add(1, Ordering::Relaxed);
        let failure = |detail: String| CommandFailure {
            command: command.clone(),
            detail,
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| failure(format!("cannot start {first}: {e}")))?;
        let stdin = child.stdin.take();
        let finished = async move {
            if let (Some(input), Some(mut stdin)) = (input, stdin) {
                // A write error (the process died early) shows up in its exit status below.
                let _ = stdin.write_all(input).await;
                drop(stdin);
            }
            child.wait_with_output().await
        };
        // On timeout the child is dropped, which kills it (`kill_on_drop`).
        let output = tokio::time::timeout(COMMAND_TIMEOUT, finished)
            .await
            .map_err(|_| {
                failure(format!(
                    "no answer within {} s; killed",
                    COMMAND_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| failure(format!("cannot wait for it: {e}")))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(failure(format!(
                "{}: {}",
                output.status,
                stderr_excerpt(&output.stderr)
            )))
        }
    }

    /// One `iptables` command (with `-w` when supported).
    async fn iptables(
        &self,
        inner: &Inner,
        args: &[&str],
    ) -> std::result::Result<String, CommandFailure> {
        let mut full = Vec::with_capacity(args.len() + 1);
        if inner.wait {
            full.push("-w");
        }
        full.extend_from_slice(args);
        self.run("iptables", &full, None).await
    }

    /// An `iptables` command whose failure is expected at times and only logged at debug
    /// level (upstream's "(i)" commands); whether it succeeded.
    async fn iptables_ignoring(&self, inner: &Inner, args: &[&str]) -> bool {
        match self.iptables(inner, args).await {
            Ok(_) => true,
            Err(failure) => {
                tracing::debug!(command = %failure.command, error = %failure.detail, "ignoring failed iptables command");
                false
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

    /// How many DHCP jumps to our chain and to the temporary chain `INPUT` holds now.
    async fn count_jumps(
        &self,
        inner: &Inner,
    ) -> std::result::Result<(usize, usize), CommandFailure> {
        let input = self.iptables(inner, &["-S", "INPUT"]).await?;
        let count = |chain: &str| {
            input
                .lines()
                .filter(|rule| is_jump(rule, &self.interface, chain))
                .count()
        };
        Ok((count(&self.chain), count(&self.temp_chain)))
    }

    /// Removes `chain` and every jump to it, ignoring failures (it may not exist).
    /// Upstream deleted one jump; we delete duplicates too (bounded), so a state left by a
    /// crash mid-swap is cleaned completely.
    async fn remove_chain(&self, inner: &Inner, chain: &str) {
        for _ in 0..8 {
            if !self.iptables_ignoring(inner, &self.jump("-D", chain)).await {
                break;
            }
        }
        self.iptables_ignoring(inner, &["-F", chain]).await;
        self.iptables_ignoring(inner, &["-X", chain]).await;
    }

    /// Decides between `iptables-restore` (with or without `-w`) and the per-rule path.
    async fn choose_apply(&self) -> Apply {
        if self.per_rule {
            return Apply::PerRule;
        }
        if self
            .run("iptables-restore", &["-w", "--help"], None)
            .await
            .is_ok()
        {
            return Apply::Restore { wait: true };
        }
        match self.run("iptables-restore", &["--help"], None).await {
            Ok(_) => Apply::Restore { wait: false },
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

    /// Upstream's update, one process per rule, through the temporary chain. Nothing in
    /// force changes until the complete temporary chain takes over (its jump inserted at the
    /// top of `INPUT`); from then on the new rules are in force whatever fails.
    async fn update_per_rule(
        &self,
        inner: &Inner,
        rules: Rules<'_>,
    ) -> std::result::Result<(), CommandFailure> {
        let temp = self.temp_chain.as_str();
        let (mut chain_jumps, temp_jumps) = self.count_jumps(inner).await?;
        if temp_jumps > 0 {
            // An earlier swap stopped after the temporary chain took over: finish it first,
            // so the temporary chain is free to be rebuilt.
            tracing::info!(chain = %temp, "finishing an interrupted swap of the firewall chain");
            self.finish_swap(inner, chain_jumps).await?;
            chain_jumps = temp_jumps;
        }
        // Not in force (no jump to it): whatever an earlier failed update left of it goes.
        self.iptables_ignoring(inner, &["-F", temp]).await;
        self.iptables_ignoring(inner, &["-X", temp]).await;
        self.iptables(inner, &["-N", temp]).await?;
        for rule in rules.lines() {
            let mut args = vec!["-A", temp];
            args.extend(rule.split(' '));
            self.iptables(inner, &args).await?;
        }
        self.iptables(inner, &self.jump("-I", temp)).await?;
        // The new rules are in force. A failure from here is logged and finished later.
        if let Err(failure) = self.finish_swap(inner, chain_jumps).await {
            tracing::error!(
                command = %failure.command,
                error = %failure.detail,
                chain = %temp,
                "the new firewall rules are in force, but renaming their chain failed; the \
                 next update finishes the swap"
            );
        }
        Ok(())
    }

    /// The end of the per-rule swap, with the temporary chain in force: the old chain's
    /// `chain_jumps` jumps, then the old chain go, and the temporary chain takes its name.
    async fn finish_swap(
        &self,
        inner: &Inner,
        chain_jumps: usize,
    ) -> std::result::Result<(), CommandFailure> {
        let (chain, temp) = (self.chain.as_str(), self.temp_chain.as_str());
        for _ in 0..chain_jumps {
            self.iptables(inner, &self.jump("-D", chain)).await?;
        }
        self.iptables_ignoring(inner, &["-F", chain]).await;
        self.iptables_ignoring(inner, &["-X", chain]).await;
        self.iptables(inner, &["-E", temp, chain]).await?;
        Ok(())
    }

    /// Puts `rules` in our chain, by the way `init` chose.
    async fn apply(&self, rules: Rules<'_>) -> Result<()> {
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
        let started = std::time::Instant::now();
        let outcome = match apply {
            Apply::Restore { wait } => self.update_restore(&mut inner, wait, rules).await,
            Apply::PerRule => self.update_per_rule(&inner, rules).await,
        };
        if let Err(failure) = outcome {
            inner.jumps = None;
            tracing::error!(
                command = %failure.command,
                error = %failure.detail,
                chain = %self.chain,
                "firewall update failed; the rules in force are unchanged"
            );
            return Err(Error::ServiceUnavailable(UPDATE_FAILED.to_string()));
        }
        tracing::debug!(
            blocked = rules.blocked(),
            dhcp_closed = rules == Rules::RejectAll,
            duration_ms = started.elapsed().as_millis() as u64,
            "firewall updated"
        );
        Ok(())
    }

    /// One transaction: the chain emptied (or created) and refilled, its jump moved to the
    /// top of `INPUT`. A failed transaction changes nothing.
    async fn update_restore(
        &self,
        inner: &mut Inner,
        wait: bool,
        rules: Rules<'_>,
    ) -> std::result::Result<(), CommandFailure> {
        let mut args = vec!["--noflush"];
        if wait {
            args.insert(0, "-w");
        }
        let known = inner.jumps.take();
        let jumps = match known {
            Some(jumps) => jumps,
            None => self.count_jumps(inner).await?.0,
        };
        let script = restore_script(&self.chain, &self.interface, rules, jumps);
        match self
            .run("iptables-restore", &args, Some(script.as_bytes()))
            .await
        {
            Ok(_) => {
                inner.jumps = Some(1);
                return Ok(());
            }
            // What we knew of INPUT came from an earlier update: someone may have changed
            // INPUT since. Look, and try once more.
            Err(failure) if known.is_some() => {
                tracing::warn!(command = %failure.command, error = %failure.detail, "iptables-restore failed; reading INPUT and retrying once");
            }
            Err(failure) => return Err(failure),
        }
        let jumps = self.count_jumps(inner).await?.0;
        let script = restore_script(&self.chain, &self.interface, rules, jumps);
        self.run("iptables-restore", &args, Some(script.as_bytes()))
            .await?;
        inner.jumps = Some(1);
        Ok(())
    }
}

#[async_trait]
impl Firewall for Iptables {
    fn is_enabled(&self) -> bool {
        true
    }

    async fn init(&self) -> Result<()> {
        let mut inner = self.inner.lock().await;
        match self.run("iptables", &["-w", "-h"], None).await {
            Ok(_) => inner.wait = true,
            Err(failure) => {
                tracing::debug!(error = %failure.detail, "iptables -w -h failed");
                tracing::warn!(
                    "iptables does not support -w flag, please update it to at least version 1.4.21"
                );
                inner.wait = false;
            }
        }
        let apply = self.choose_apply().await;
        self.remove_chain(&inner, &self.chain).await;
        self.remove_chain(&inner, &self.temp_chain).await;
        // Upstream's access check: the one command at start-up that must succeed.
        self.iptables(&inner, &["-N", &self.chain]).await?;
        inner.apply = Some(apply);
        inner.jumps = Some(0);
        inner.closed = false;
        tracing::info!(
            chain = %self.chain,
            interface = %self.interface,
            apply = ?apply,
            "firewall chain created"
        );
        Ok(())
    }

    async fn update(&self, blocked_macs: &BTreeSet<Mac>) -> Result<()> {
        let blocked: Vec<Mac> = blocked_macs.iter().copied().collect();
        self.apply(Rules::Accept { blocked: &blocked }).await
    }

    async fn close(&self) -> Result<()> {
        self.apply(Rules::RejectAll).await
    }

    async fn clean_up(&self) -> Result<()> {
        let mut inner = self.inner.lock().await;
        self.remove_chain(&inner, &self.chain).await;
        self.remove_chain(&inner, &self.temp_chain).await;
        inner.closed = true;
        inner.jumps = Some(0);
        tracing::info!(chain = %self.chain, "firewall chain removed");
        Ok(())
    }
}

/// The `iptables-restore --noflush` input for one update. `:chain` empties the chain if it
/// exists (creates it otherwise); the `jumps` jumps `INPUT` holds are deleted and one is
/// inserted at the top.
pub fn restore_script(chain: &str, interface: &str, rules: Rules<'_>, jumps: usize) -> String {
    use std::fmt::Write;
    let mut script = String::with_capacity(64 * (rules.blocked() + 4));
    let jump = format!("INPUT -i {interface} -p udp --dport 67 -j {chain}");
    script.push_str("*filter\n");
    let _ = writeln!(script, ":{chain} - [0:0]");
    for rule in rules.lines() {
        let _ = writeln!(script, "-A {chain} {rule}");
    }
    for _ in 0..jumps {
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
        let macs: Vec<Mac> = ["02:00:00:00:00:01", "02:00:00:00:00:02"]
            .iter()
            .map(|m| m.parse().unwrap())
            .collect();
        assert_eq!(
            restore_script(
                "ironic-inspector",
                "br-ctlplane",
                Rules::Accept { blocked: &macs },
                1
            ),
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
            restore_script("c", "eth1", Rules::Accept { blocked: &[] }, 0),
            "*filter\n:c - [0:0]\n-A c -j ACCEPT\n-I INPUT -i eth1 -p udp --dport 67 -j c\nCOMMIT\n"
        );
    }

    #[test]
    fn restore_script_deletes_every_duplicate_jump() {
        assert_eq!(
            restore_script("c", "eth1", Rules::Accept { blocked: &[] }, 2),
            "*filter\n:c - [0:0]\n-A c -j ACCEPT\n\
             -D INPUT -i eth1 -p udp --dport 67 -j c\n\
             -D INPUT -i eth1 -p udp --dport 67 -j c\n\
             -I INPUT -i eth1 -p udp --dport 67 -j c\nCOMMIT\n"
        );
    }

    #[test]
    fn a_closed_chain_rejects_everything() {
        assert_eq!(
            restore_script("c", "eth1", Rules::RejectAll, 1),
            "*filter\n:c - [0:0]\n-A c -j REJECT\n\
             -D INPUT -i eth1 -p udp --dport 67 -j c\n\
             -I INPUT -i eth1 -p udp --dport 67 -j c\nCOMMIT\n"
        );
    }

    #[test]
    fn jumps_are_recognised_as_iptables_prints_them() {
        let printed = "-A INPUT -i fwtest0 -p udp -m udp --dport 67 -j ironic-inspector";
        assert!(is_jump(printed, "fwtest0", "ironic-inspector"));
        assert!(!is_jump(printed, "fwtest0", "ironic-inspector_temp"));
        assert!(!is_jump(printed, "eth0", "ironic-inspector"));
        assert!(!is_jump(
            "-A INPUT -i fwtest0 -p tcp -m tcp --dport 67 -j ironic-inspector",
            "fwtest0",
            "ironic-inspector"
        ));
        assert!(!is_jump(
            "-A FORWARD -i fwtest0 -p udp -m udp --dport 67 -j ironic-inspector",
            "fwtest0",
            "ironic-inspector"
        ));
        assert!(!is_jump("-P INPUT ACCEPT", "fwtest0", "ironic-inspector"));
    }

    #[test]
    fn stderr_is_trimmed_and_bounded_for_the_log() {
        assert_eq!(
            stderr_excerpt(b"  iptables: No chain by that name.\n\n"),
            "iptables: No chain by that name."
        );
        let long = "é".repeat(STDERR_LOG_LIMIT + 10);
        let excerpt = stderr_excerpt(long.as_bytes());
        assert_eq!(excerpt.chars().count(), STDERR_LOG_LIMIT + 1);
        assert!(excerpt.ends_with('…'));
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
    fn macs_reach_the_script_in_lower_case_colon_form() {
        let macs: Vec<Mac> = ["02:AB:cd:ef:00:19"]
            .iter()
            .map(|m| m.parse().unwrap())
            .collect();
        assert!(
            restore_script("c", "eth1", Rules::Accept { blocked: &macs }, 0)
                .contains("\n-A c -m mac --mac-source 02:ab:cd:ef:00:19 -j DROP\n")
        );
    }

    /// Settings with no root helper and restore updates.
    pub(super) fn settings(chain: &str, interface: &str) -> Settings {
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

    use super::tests::settings;
    use super::*;
    use crate::testing::text;

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
        fn restore_scripts_keep_their_shape(
            chain in name(),
            interface in name(),
            octets in prop::collection::btree_set(any::<[u8; 6]>(), 0..8),
            jumps in 0usize..3,
        ) {
            if Iptables::new(settings(&chain, &interface)).is_err() {
                return Ok(());
            }
            let blocked: Vec<Mac> = octets.into_iter().map(Mac::new).collect();
            let script = restore_script(&chain, &interface, Rules::Accept { blocked: &blocked }, jumps);
            let lines: Vec<&str> = script.lines().collect();
            let expected_lines = blocked.len() + 5 + jumps;
            prop_assert_eq!(lines.len(), expected_lines, "{}", script);
            prop_assert_eq!(lines[0], "*filter");
            prop_assert_eq!(lines[lines.len() - 1], "COMMIT");
            for (line, mac) in lines[2..].iter().zip(&blocked) {
                let words: Vec<&str> = line.split(' ').collect();
                let mac = mac.to_string();
                prop_assert!(mac.bytes().all(|b| b == b':' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                prop_assert_eq!(words, vec!["-A", chain.as_str(), "-m", "mac", "--mac-source", mac.as_str(), "-j", "DROP"]);
            }
        }
    }
}
