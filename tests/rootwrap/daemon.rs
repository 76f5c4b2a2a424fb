//! The `ironic-inspector` binary in a network namespace of the test's own, with its firewall
//! on a veth there: a directory with its configuration, a migrated SQLite database and a copy
//! of the binary, all owned by an unprivileged user, and a fake Ironic.
//!
//! The daemon starts without Ironic: it creates its (empty) chain at start-up, and its
//! firewall refresh, which asks Ironic for the MACs to block, fails with a logged error
//! until Ironic answers. To see a refresh (`iptables-restore`) go through, a tiny fake Ironic
//! (Python's HTTP server) answers the port list inside the namespace.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{Netns, Outcome, chmod, wait_for, write};

const DAEMON: &str = env!("CARGO_BIN_EXE_ironic-inspector");
const DBSYNC: &str = env!("CARGO_BIN_EXE_ironic-inspector-dbsync");
/// `nobody`: the unprivileged user the daemon runs as.
pub const UID: u32 = 65534;
pub const INTERFACE: &str = "rwcap0";
/// A chain name of the test's choosing, to show it comes from the configuration.
pub const CHAIN: &str = "insp-caps-test";
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The fake Ironic's port, on the namespace's own loopback.
pub const IRONIC_PORT: u16 = 6385;
/// The MAC of the one port the fake Ironic knows; the daemon blocks it.
pub const KNOWN_MAC: &str = "52:54:00:0c:a9:01";
/// CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
pub const NET_CAPS: u64 = (1 << 12) | (1 << 13);
/// `iptables -S` of a filter table with nothing of ours in it.
pub const NO_RULES: [&str; 3] = ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"];

/// A directory the unprivileged user owns, with a copy of the daemon binary (the build
/// tree may lie under a directory only root can enter), a migrated SQLite database and the
/// daemon's configuration.
pub struct DaemonDir {
    pub dir: tempfile::TempDir,
    pub daemon: PathBuf,
    pub conf: PathBuf,
}

impl DaemonDir {
    /// The directory, with `[firewall] root_helper = root_helper`. A not-found hook keeps
    /// DHCP open with nothing under introspection, so the first refresh blocks the fake
    /// Ironic's port (rather than closing the chain).
    pub fn new(root_helper: &str) -> DaemonDir {
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
                 [processing]\nnode_not_found_hook = example\n\
                 [firewall]\nmanage_firewall = true\ndnsmasq_interface = {INTERFACE}\n\
                 firewall_chain = {CHAIN}\nfirewall_update_period = 1\nroot_helper = {root_helper}\n",
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("inspector.log")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// `what` the test waited for, with the daemon's log and standard error.
    pub fn report(&self, what: &str) -> String {
        format!(
            "{what}\n--- the daemon's log ---\n{}--- its standard error ---\n{}",
            self.log(),
            self.stderr()
        )
    }

    /// Starts the daemon in `netns` as root.
    pub fn spawn_as_root(&self, netns: &Netns) -> Child {
        self.spawn(netns, Vec::new())
    }

    /// Starts the daemon in `netns` as [`UID`], through setpriv with `caps` (e.g.
    /// `["--inh-caps=...", "--ambient-caps=..."]`).
    pub fn spawn_unprivileged(&self, netns: &Netns, caps: &[&str]) -> Child {
        let mut wrapper = vec![
            "setpriv".to_string(),
            format!("--reuid={UID}"),
            format!("--regid={UID}"),
            "--clear-groups".to_string(),
        ];
        wrapper.extend(caps.iter().map(|c| c.to_string()));
        self.spawn(netns, wrapper)
    }

    /// Starts `wrapper` + the daemon in `netns`, with a plain PATH and nothing else of this
    /// process's environment.
    fn spawn(&self, netns: &Netns, mut argv: Vec<String>) -> Child {
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

    /// Waits until the daemon has created its chain (which needs no Ironic); panics if it
    /// exits first.
    pub fn wait_for_chain(&self, daemon: &mut Running, netns: &Netns) {
        wait_for(
            DEADLINE,
            || self.report("the chain created at start-up"),
            || {
                if let Ok(Some(status)) = daemon.0.try_wait() {
                    panic!("the daemon exited with {status}: {}", self.report(""));
                }
                netns.rules().contains(&format!("-N {CHAIN}")).then_some(())
            },
        );
    }

    /// Waits until the first refresh with the fake Ironic is in force.
    pub fn wait_for_refresh(&self, netns: &Netns) {
        wait_for(
            DEADLINE,
            || format!("{:?} {}", netns.rules(), self.report("the first refresh")),
            || (netns.rules() == refreshed()).then_some(()),
        );
    }

    /// SIGTERM; waits for the exit, which must be a clean one, and for the chain to be gone.
    pub fn stop(&self, daemon: &mut Running, netns: &Netns) {
        let pid = daemon.0.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = wait_for(
            DEADLINE,
            || self.report("the exit after SIGTERM"),
            || daemon.0.try_wait().unwrap(),
        );
        assert_eq!(status.code(), Some(0), "{}", self.report(""));
        assert_eq!(netns.rules(), NO_RULES, "{}", self.report(""));
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
pub fn fake_ironic(netns: &Netns) -> Running {
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
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `Uid:` and `CapEff:` of a running process.
pub fn identity(pid: u32) -> Option<(u32, u64)> {
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
pub fn refreshed() -> Vec<String> {
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
