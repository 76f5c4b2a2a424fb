//! The `ironic-inspector` binary as an operator runs it: start-up checks, SIGTERM.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{free_port, wait_for, write_file};

const DAEMON: &str = env!("CARGO_BIN_EXE_ironic-inspector");
const DBSYNC: &str = env!("CARGO_BIN_EXE_ironic-inspector-dbsync");

fn config_text(dir: &Path, port: u16, extra: &str) -> String {
    format!(
        "[DEFAULT]\nauth_strategy = noauth\nlisten_address = 127.0.0.1\nlisten_port = {port}\n\
         [ironic]\nauth_strategy = noauth\n[firewall]\nmanage_firewall = false\n[database]\nconnection = sqlite:///{}/inspector.sqlite\n{extra}",
        dir.display()
    )
}

fn dbsync_upgrade(conf: &Path) {
    let out = Command::new(DBSYNC)
        .arg("--config-file")
        .arg(conf)
        .arg("upgrade")
        .output()
        .unwrap();
    assert!(out.status.success(), "dbsync upgrade failed: {out:?}");
}

#[tokio::test]
async fn sigterm_stops_the_daemon_with_status_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = write_file(
        dir.path(),
        "inspector.conf",
        &config_text(dir.path(), port, ""),
    );
    dbsync_upgrade(&conf);
    let mut child = tokio::process::Command::new(DAEMON)
        .arg("--config-file")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    wait_for(Duration::from_secs(20), "the daemon to answer", || async {
        reqwest::get(&url).await.ok().filter(|r| r.status() == 200)
    })
    .await;
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the daemon did not stop within 10 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

fn run_daemon(conf: &Path) -> std::process::Output {
    let mut child = Command::new(DAEMON)
        .arg("--config-file")
        .arg(conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // These configurations must make the daemon exit by itself; give it a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon kept running with {}", conf.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn refuses_an_unmigrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_file(
        dir.path(),
        "inspector.conf",
        &config_text(dir.path(), free_port(), ""),
    );
    let out = run_daemon(&conf);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ironic-inspector-dbsync"), "{stderr}");
    assert!(stderr.contains("upgrade"), "{stderr}");
}

#[test]
fn refuses_invalid_configuration_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[DEFAULT]\ntimeout = soon\n", "[DEFAULT] timeout"),
        (
            "[processing]\nstore_data = disk\n",
            "[processing] store_data",
        ),
        (
            "[firewall]\nmanage_firewall = perhaps\n",
            "[firewall] manage_firewall",
        ),
    ];
    for (extra, named) in cases {
        let conf = write_file(
            dir.path(),
            "inspector.conf",
            &config_text(dir.path(), free_port(), extra),
        );
        let out = run_daemon(&conf);
        assert!(!out.status.success(), "{extra}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{extra}: {stderr}");
    }
    // No database at all.
    let conf = write_file(
        dir.path(),
        "nodb.conf",
        "[DEFAULT]\nauth_strategy = noauth\n[firewall]\nmanage_firewall = false\n",
    );
    let out = run_daemon(&conf);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[database] connection"), "{stderr}");
}

#[test]
fn help_and_version() {
    for bin in [DAEMON, DBSYNC] {
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("--config-file"));
        let out = Command::new(bin).arg("--version").output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn refuses_unknown_processing_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_file(
        dir.path(),
        "inspector.conf",
        &config_text(
            dir.path(),
            free_port(),
            "[processing]\nprocessing_hooks = $default_processing_hooks,no_such_hook\n",
        ),
    );
    dbsync_upgrade(&conf);
    let out = run_daemon(&conf);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Hook no_such_hook failed to load or was not found"),
        "{stderr}"
    );
}
