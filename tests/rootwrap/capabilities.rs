//! The daemon without a root helper (`[firewall] root_helper =` empty): the real
//! `ironic-inspector` binary runs as an unprivileged user that holds only CAP_NET_ADMIN and
//! CAP_NET_RAW (ambient, so the iptables it runs gets them too), in a network namespace of
//! the test's own. It creates its chain at start-up and removes it at SIGTERM; without the
//! capabilities it does not start, and says the firewall is why.
//!
//! The daemon starts without Ironic: it creates its (empty) chain at start-up, and its
//! firewall refresh, which asks Ironic for the MACs to block, fails with a logged error
//! until Ironic answers. To see the refresh's `iptables-restore` work with the capabilities,
//! a tiny fake Ironic (Python's HTTP server) answers the port list inside the namespace.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{Netns, Outcome, chmod, require_root, require_tools, wait_for, write};

const DAEMON: &str = env!("CARGO_BIN_EXE_ironic-inspector");
const DBSYNC: &str = env!("CARGO_BIN_EXE_ironic-inspector-dbsync");
/// `nobody`: the unprivileged user the daemon runs as.
const UID: u32 = 65534;
const INTERFACE: &str = "rwcap0";
/// A chain name of the test's choosing, to show it comes from the configuration.
const CHAIN: &str = "insp-caps-test";
const DEADLINE: Duration = Duration::from_secs(60);
/// The fake Ironic's port, on the namespace's own loopback.
const IRONIC_PORT: u16 = 6385;
/// The MAC of the one port the fake Ironic knows; the daemon blocks it.
const KNOWN_MAC: &str = "52:54:00:0c:a9:01";
/// CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
const NET_CAPS: u64 = (1 << 12) | (1 << 13);
/// `iptables -S` of a filter table with nothing of ours in it.
const NO_RULES: [&str; 3] = ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"];

/// A directory the unprivileged user owns, with a copy of the daemon binary (the build
/// tree may lie under a directory only root can enter), a migrated SQLite database and the
/// daemon's configuration.
struct DaemonDir {
    dir: tempfile::TempDir,
    daemon: PathBuf,
    conf: PathBuf,
}

impl DaemonDir {
    fn new() -> DaemonDir {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let conf = path.join("inspector.conf");
        write(
            &conf,
            &format!(
                "[DEFAULT]\nauth_strategy = noauth\nlisten_address = 127.0.0.1\n\
                 listen_port = 5050\nlog_file = {log}\n\
                 [database]\nconnection = sqlite:///{db}\n\
                 [ironic]\nauth_strategy = noauth\nironic_url = http://127.0.0.1:{IRONIC_PORT}/\n\
                 [firewall]\nmanage_firewall = true\ndnsmasq_interface = {INTERFACE}\n\
                 firewall_chain = {CHAIN}\nfirewall_update_period = 1\nroot_helper =\n",
                log = path.join("inspector.log").display(),
                db = path.join("inspector.sqlite").display(),
            ),
            0o644,
        );
        let migrated = Outcome::of(
            Command::new(DBSYNC)
                .arg("--config-file")
                .arg(&conf)
                .arg("upgrade"),
            None,
        );
        assert_eq!(migrated.code, Some(0), "dbsync: {migrated:?}");
        let daemon = path.join("ironic-inspector");
        std::fs::copy(DAEMON, &daemon).unwrap();
        chmod(&daemon, 0o755);
        for entry in std::fs::read_dir(path).unwrap() {
            std::os::unix::fs::chown(entry.unwrap().path(), Some(UID), Some(UID)).unwrap();
        }
        std::os::unix::fs::chown(path, Some(UID), Some(UID)).unwrap();
        DaemonDir { dir, daemon, conf }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("inspector.log")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// `what` the test waited for, with the daemon's log and standard error.
    fn report(&self, what: &str) -> String {
        format!(
            "{what}\n--- the daemon's log ---\n{}--- its standard error ---\n{}",
            self.log(),
            self.stderr()
        )
    }

    /// Starts the daemon in `netns` as [`UID`], through setpriv with `caps` (e.g.
    /// `["--inh-caps=...", "--ambient-caps=..."]`).
    fn spawn(&self, netns: &Netns, caps: &[&str]) -> Child {
        let mut argv = vec![
            "setpriv".to_string(),
            format!("--reuid={UID}"),
            format!("--regid={UID}"),
            "--clear-groups".to_string(),
        ];
        argv.extend(caps.iter().map(|c| c.to_string()));
        argv.push(self.daemon.display().to_string());
        argv.push("--config-file".to_string());
        argv.push(self.conf.display().to_string());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        netns
            .command(&argv)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap()
    }
}

/// Python's HTTP server answering every GET with one port of [`KNOWN_MAC`] (all the daemon
/// asks Ironic for the firewall is `GET /v1/ports/detail`).
const FAKE_IRONIC: &str = r#"
import http.server, json, sys
body = json.dumps({"ports": [{"uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c781",
                              "address": sys.argv[2],
                              "node_uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c782"}]}).encode()
class Ironic(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ironic).serve_forever()
"#;

/// Starts the fake Ironic in `netns`.
fn fake_ironic(netns: &Netns) -> Running {
    let port = IRONIC_PORT.to_string();
    Running(
        netns
            .command(&["python3", "-c", FAKE_IRONIC, &port, KNOWN_MAC])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Kills a process (the daemon, the fake Ironic) if the test ends without stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `Uid:` and `CapEff:` of a running process.
fn identity(pid: u32) -> Option<(u32, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let uid = field("Uid:")?.split_whitespace().next()?.parse().ok()?;
    let caps = u64::from_str_radix(field("CapEff:")?, 16).ok()?;
    Some((uid, caps))
}

/// The whole filter table once the daemon's first refresh is in force: our chain blocking
/// the known MAC, and the jump to it.
fn refreshed() -> Vec<String> {
    [
        "-P INPUT ACCEPT".to_string(),
        "-P FORWARD ACCEPT".to_string(),
        "-P OUTPUT ACCEPT".to_string(),
        format!("-N {CHAIN}"),
        format!("-A INPUT -i {INTERFACE} -p udp -m udp --dport 67 -j {CHAIN}"),
        format!("-A {CHAIN} -m mac --mac-source {KNOWN_MAC} -j DROP"),
        format!("-A {CHAIN} -j ACCEPT"),
    ]
    .to_vec()
}

fn set_up(test: &str) -> Option<(Netns, DaemonDir)> {
    require_root(test)?;
    let netns = Netns::create(test, INTERFACE)?;
    Some((netns, DaemonDir::new()))
}

#[test]
fn the_daemon_manages_its_chain_with_capabilities_and_no_root_helper() {
    let test = "the_daemon_manages_its_chain_with_capabilities_and_no_root_helper";
    let (Some(()), Some((netns, dir))) = (require_tools(test, &["python3"]), set_up(test)) else {
        return;
    };
    let mut daemon = Running(dir.spawn(
        &netns,
        &[
            "--inh-caps=-all,+net_admin,+net_raw",
            "--ambient-caps=-all,+net_admin,+net_raw",
        ],
    ));
    let pid = daemon.0.id();
    // The chain exists before any refresh, without Ironic.
    wait_for(
        DEADLINE,
        || dir.report("the chain created at start-up"),
        || {
            if let Ok(Some(status)) = daemon.0.try_wait() {
                panic!("the daemon exited with {status}: {}", dir.report(""));
            }
            netns.rules().contains(&format!("-N {CHAIN}")).then_some(())
        },
    );
    let _ironic = fake_ironic(&netns);
    wait_for(
        DEADLINE,
        || format!("{:?} {}", netns.rules(), dir.report("the first refresh")),
        || (netns.rules() == refreshed()).then_some(()),
    );
    // The process that set it up is nobody, with the two capabilities and no other.
    let (uid, caps) = identity(pid).expect("the daemon's /proc status");
    assert_eq!(uid, UID);
    assert_eq!(caps, NET_CAPS, "effective capabilities {caps:#x}");
    let log = std::fs::metadata(dir.dir.path().join("inspector.log")).unwrap();
    assert_eq!(log.uid(), UID);

    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_for(
        DEADLINE,
        || dir.report("the exit after SIGTERM"),
        || daemon.0.try_wait().unwrap(),
    );
    assert_eq!(status.code(), Some(0), "{}", dir.report(""));
    assert_eq!(netns.rules(), NO_RULES, "{}", dir.report(""));
}

#[test]
fn without_the_capabilities_the_daemon_does_not_start_and_names_the_firewall() {
    let Some((netns, dir)) =
        set_up("without_the_capabilities_the_daemon_does_not_start_and_names_the_firewall")
    else {
        return;
    };
    let mut daemon = Running(dir.spawn(&netns, &["--inh-caps=-all", "--ambient-caps=-all"]));
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
