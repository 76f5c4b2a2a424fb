//! The `ironic-inspector` binary as an operator runs it: start-up checks, SIGTERM.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::daemon_binary::{DAEMON, DBSYNC, Daemon, dbsync_upgrade};

/// The URL of a SQLite database in `dir`.
fn sqlite_url(dir: &Path) -> String {
    format!("sqlite:///{}/inspector.sqlite", dir.display())
}

/// A config on a SQLite database in `dir`, plus `extra` ([`Daemon`] adds the listen and log
/// options).
fn config_text(dir: &Path, extra: &str) -> String {
    format!(
        "[DEFAULT]\nauth_strategy = noauth\n\
         [ironic]\nauth_strategy = noauth\n[firewall]\nmanage_firewall = false\n\
         [database]\nconnection = {}\n{extra}",
        sqlite_url(dir)
    )
}

#[tokio::test]
async fn sigterm_stops_the_daemon_with_status_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config_text(dir.path(), "")).await;
    assert_eq!(daemon.stop_within(Duration::from_secs(10)).await, Some(0));
}

#[tokio::test]
async fn refuses_an_unmigrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let (_, stderr) = Daemon::fail_to_start(dir.path(), &config_text(dir.path(), "")).await;
    assert!(stderr.contains("ironic-inspector-dbsync"), "{stderr}");
    assert!(stderr.contains("upgrade"), "{stderr}");
}

#[tokio::test]
async fn refuses_invalid_configuration_naming_the_option() {
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
        let (_, stderr) = Daemon::fail_to_start(dir.path(), &config_text(dir.path(), extra)).await;
        assert!(stderr.contains(named), "{extra}: {stderr}");
    }
    // No database at all.
    let (_, stderr) = Daemon::fail_to_start(
        dir.path(),
        "[DEFAULT]\nauth_strategy = noauth\n[firewall]\nmanage_firewall = false\n",
    )
    .await;
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

#[tokio::test]
async fn refuses_unknown_processing_hooks() {
    let dir = tempfile::tempdir().unwrap();
    dbsync_upgrade(dir.path(), &sqlite_url(dir.path())).await;
    let (_, stderr) = Daemon::fail_to_start(
        dir.path(),
        &config_text(
            dir.path(),
            "[processing]\nprocessing_hooks = $default_processing_hooks,no_such_hook\n",
        ),
    )
    .await;
    assert!(
        stderr.contains("Hook no_such_hook failed to load or was not found"),
        "{stderr}"
    );
}
