//! The package on a machine: installed with dpkg, its user and directories, the database
//! created by dbsync as the service user, the daemon run the way the unit runs it, an upgrade
//! that keeps the operator's configuration and the database, a remove that keeps them, and a
//! purge that takes them away.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::deb::{PACKAGE, built, enabled, lock_machine, run, stdout, wait_for};
use crate::namespace::Netns;

const USER: &str = "ironic-inspector";
const HOME: &str = "/var/lib/ironic-inspector";
const CONF: &str = "/etc/ironic-inspector/inspector.conf";
const DATABASE: &str = "/var/lib/ironic-inspector/inspector.sqlite";
/// How long the daemon may take to answer after its start, or to exit after SIGTERM.
const DEADLINE: Duration = Duration::from_secs(60);

/// What an operator sets before the service can start: the service user that checks API
/// tokens (nothing is sent to Keystone until a request needs a token; `GET /` does not).
const OPERATOR_SETTINGS: &str = "\
identity_uri = http://127.0.0.1:35357/
admin_user = inspector
admin_password = package-test-secret
";

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Abbrev}", PACKAGE])
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.starts_with(b"i"))
}

fn known() -> bool {
    Command::new("dpkg-query")
        .args(["-W", PACKAGE])
        .output()
        .is_ok_and(|out| out.status.success())
}

fn purge() {
    run(Command::new("dpkg").args(["--purge", PACKAGE]));
}

/// Installs a .deb as an operator would: dpkg, then apt for missing dependencies.
fn install(deb: &Path) {
    let out = Command::new("dpkg")
        .arg("-i")
        .arg(deb)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "dpkg -i: {}\n{}; trying apt-get install -f",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        run(Command::new("apt-get")
            .args(["install", "-f", "-y", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"));
    }
    assert!(installed(), "{PACKAGE} is not installed after dpkg -i");
}

/// Purges the package whatever the test's outcome.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        if known() {
            let _ = Command::new("dpkg").args(["--purge", PACKAGE]).status();
        }
    }
}

/// Kills a daemon left running by a failed assertion.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The command line of the packaged unit's security context: the service user, the two
/// network capabilities as ambient ones, no new privileges.
fn as_service(argv: &[&str]) -> Vec<String> {
    [
        "setpriv",
        "--reuid",
        USER,
        "--regid",
        USER,
        "--init-groups",
        "--inh-caps=+net_admin,+net_raw",
        "--ambient-caps=+net_admin,+net_raw",
        "--no-new-privs",
    ]
    .iter()
    .chain(argv)
    .map(|s| s.to_string())
    .collect()
}

fn dbsync(command: &str) -> String {
    let argv = as_service(&["ironic-inspector-dbsync", "--config-file", CONF, command]);
    stdout(Command::new(&argv[0]).args(&argv[1..]))
}

/// Runs the installed daemon with the packaged configuration in `netns`, checks that it
/// answers `GET /` and made its firewall chain, stops it with SIGTERM and checks that it
/// exits with status 0 and removed the chain.
fn run_daemon(netns: &Netns, log: &Path) {
    let argv = as_service(&["/usr/bin/ironic-inspector", "--config-file", CONF]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let stderr = std::fs::File::create(log).unwrap();
    let child = netns
        .command(&argv)
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut daemon = Running(child);
    let show_log = || std::fs::read_to_string(log).unwrap_or_default();
    let versions = wait_for(
        DEADLINE,
        || "the installed daemon to answer GET /".into(),
        || {
            if let Some(status) = daemon.0.try_wait().unwrap() {
                panic!("the daemon exited ({status}):\n{}", show_log());
            }
            let out = netns
                .command(&["curl", "-sf", "--max-time", "5", "http://127.0.0.1:5050/"])
                .output()
                .unwrap();
            out.status.success().then_some(out.stdout)
        },
    );
    let versions: serde_json::Value = serde_json::from_slice(&versions).unwrap();
    assert_eq!(versions["versions"][0]["id"], "1.2", "{versions}");
    assert_eq!(versions["versions"][0]["status"], "CURRENT", "{versions}");
    // The firewall chain, made by iptables run directly with the ambient capabilities.
    let chain = || {
        netns
            .command(&["iptables", "-S", "ironic-inspector"])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(chain(), "no firewall chain; daemon log:\n{}", show_log());

    run(Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]));
    let status = wait_for(
        DEADLINE,
        || "the daemon to exit after SIGTERM".into(),
        || daemon.0.try_wait().unwrap(),
    );
    assert!(status.success(), "{status}; daemon log:\n{}", show_log());
    assert!(!chain(), "the chain outlived the daemon");
    let log_text = show_log();
    assert!(
        !log_text.contains("package-test-secret"),
        "the log shows a password:\n{log_text}"
    );
}

/// Inserts the operator's settings under `[keystone_authtoken]` of the conffile.
fn edit_conffile() {
    let text = std::fs::read_to_string(CONF).unwrap();
    let edited = text.replacen(
        "[keystone_authtoken]\n",
        &format!("[keystone_authtoken]\n{OPERATOR_SETTINGS}"),
        1,
    );
    assert_ne!(edited, text, "no [keystone_authtoken] section in {CONF}");
    std::fs::write(CONF, edited).unwrap();
}

/// The same package as revision 2 of its version: unpacked with its control files,
/// the version changed, packed again.
fn later_revision(deb: &Path, dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("newer");
    run(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree));
    let control = tree.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).unwrap();
    let version = format!("Version: {}-1\n", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version), "{text}");
    let newer = format!("Version: {}-2\n", env!("CARGO_PKG_VERSION"));
    std::fs::write(&control, text.replace(&version, &newer)).unwrap();
    let path = dir.join("newer.deb");
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .arg(&tree)
        .arg(&path));
    path
}

fn uid_gid(name: &str) -> (u32, u32) {
    let entry = stdout(Command::new("getent").args(["passwd", name]));
    let fields: Vec<&str> = entry.trim().split(':').collect();
    assert_eq!(fields[5], HOME, "home of {name}: {entry}");
    assert!(
        fields[6].ends_with("nologin") || fields[6].ends_with("false"),
        "{name} has a login shell: {entry}"
    );
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

#[test]
fn install_run_upgrade_remove_purge() {
    if !enabled("install_run_upgrade_remove_purge") {
        return;
    }
    let deb = built();
    let _lock = lock_machine();
    if known() {
        eprintln!("{PACKAGE} is on this machine from an earlier run: purging it first");
        purge();
    }
    let _purge = Purge;
    let tmp = tempfile::tempdir().unwrap();

    // Install: the user, its home, the configuration readable by its group only, the unit
    // enabled but not started (an operator sets Keystone and Ironic first).
    install(deb);
    let (uid, gid) = uid_gid(USER);
    assert!(uid < 1000, "{USER} is not a system user (uid {uid})");
    let home = std::fs::metadata(HOME).unwrap();
    assert!(home.is_dir());
    assert_eq!((home.uid(), home.gid()), (uid, gid), "owner of {HOME}");
    let conf = std::fs::metadata(CONF).unwrap();
    assert_eq!((conf.uid(), conf.gid()), (0, gid), "owner of {CONF}");
    assert_eq!(conf.permissions().mode() & 0o7777, 0o640, "mode of {CONF}");
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/ironic-inspector.service")
            .is_symlink(),
        "the service is not enabled"
    );
    // The units run what the package installed, with the packaged configuration.
    for unit in [
        "ironic-inspector.service",
        "ironic-inspector-dbsync.service",
    ] {
        let text =
            std::fs::read_to_string(Path::new("/usr/lib/systemd/system").join(unit)).unwrap();
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("no ExecStart in {unit}"));
        assert!(
            exec.contains(&format!("--config-file {CONF}")),
            "{unit}: {exec}"
        );
        for path in exec.split_whitespace().filter(|w| w.starts_with('/')) {
            assert!(
                Path::new(path).exists(),
                "{unit} runs {path}, which is not installed"
            );
        }
        assert!(
            text.contains(&format!("User={USER}")),
            "{unit} runs as another user"
        );
    }

    // The database, created by dbsync as the service user.
    dbsync("upgrade");
    let db = std::fs::metadata(DATABASE).unwrap();
    assert_eq!((db.uid(), db.gid()), (uid, gid), "owner of {DATABASE}");
    assert!(dbsync("current").contains("(head)"));

    // The operator's settings, then the daemon as the unit runs it.
    edit_conffile();
    // A network namespace of the test's own: the daemon manages its firewall chain in it,
    // and its port 5050 is free whatever runs on the machine.
    let netns = Netns::new("lifecycle", "inspector-pkg", &["curl"])
        .expect("the package test needs a network namespace");
    run_daemon(&netns, &tmp.path().join("daemon-1.log"));

    // Upgrade to a later revision of the package: the edited conffile and the database stay.
    let database = std::fs::read(DATABASE).unwrap();
    let conffile = std::fs::read_to_string(CONF).unwrap();
    let newer = later_revision(deb, tmp.path());
    install(&newer);
    assert!(stdout(Command::new("dpkg-query").args(["-W", PACKAGE])).contains("-2"));
    assert_eq!(std::fs::read_to_string(CONF).unwrap(), conffile);
    assert_eq!(std::fs::read(DATABASE).unwrap(), database);
    let conf = std::fs::metadata(CONF).unwrap();
    assert_eq!(
        (conf.uid(), conf.gid()),
        (0, gid),
        "owner of {CONF} after the upgrade"
    );
    run_daemon(&netns, &tmp.path().join("daemon-2.log"));

    // Remove keeps the configuration and the data; purge takes them, and keeps the user.
    run(Command::new("dpkg").args(["--remove", PACKAGE]));
    assert!(!Path::new("/usr/bin/ironic-inspector").exists());
    assert!(Path::new(DATABASE).exists(), "remove deleted the database");
    assert!(Path::new(CONF).exists(), "remove deleted the configuration");
    purge();
    assert!(!Path::new(HOME).exists(), "purge kept {HOME}");
    assert!(!Path::new(CONF).exists(), "purge kept {CONF}");
    uid_gid(USER);
}
