//! The unit files of `packaging/systemd/` pass `systemd-analyze verify`, on copies whose
//! `ExecStart=` points at the binaries cargo built (verify checks that they exist).

use std::path::{Path, PathBuf};

use crate::daemon_binary::{DAEMON, DBSYNC};

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd")
}

/// `systemd-analyze`, or `None` (the test is skipped, or fails under CI) when missing.
fn analyzer(test: &str) -> Option<&'static str> {
    const PATH: &str = "systemd-analyze";
    let found = std::process::Command::new(PATH)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: systemd-analyze is missing (scripts/test installs the systemd package)"
        );
        eprintln!("skipping {test}: systemd-analyze is missing");
        return None;
    }
    Some(PATH)
}

/// Copies the units (and the sudo drop-in, as an installed drop-in) into `dir`, with
/// `edit` applied to each unit's text.
fn install_copies(dir: &Path, edit: impl Fn(String) -> String) -> Vec<PathBuf> {
    let mut units = Vec::new();
    for name in [
        "ironic-inspector.service",
        "ironic-inspector-dbsync.service",
    ] {
        let text = std::fs::read_to_string(packaging().join(name)).unwrap();
        let text = text
            .replace("/usr/bin/ironic-inspector-dbsync ", &format!("{DBSYNC} "))
            .replace("/usr/bin/ironic-inspector ", &format!("{DAEMON} "));
        let path = dir.join(name);
        std::fs::write(&path, edit(text)).unwrap();
        units.push(path);
    }
    let dropins = dir.join("ironic-inspector.service.d");
    std::fs::create_dir(&dropins).unwrap();
    std::fs::copy(
        packaging().join("sudo-rootwrap.conf"),
        dropins.join("sudo-rootwrap.conf"),
    )
    .unwrap();
    units
}

/// `systemd-analyze verify` of `units`: its status and everything it printed.
fn verify(analyzer: &str, units: &[PathBuf]) -> (bool, String) {
    // --man=no: the man pages need not be installed where the tests run.
    let output = std::process::Command::new(analyzer)
        .args(["verify", "--man=no", "--generators=no"])
        .args(units)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[test]
fn the_units_and_the_sudo_drop_in_verify_without_a_complaint() {
    let Some(analyzer) = analyzer("the_units_and_the_sudo_drop_in_verify_without_a_complaint")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let units = install_copies(dir.path(), |text| text);
    let (ok, said) = verify(analyzer, &units);
    // An unknown key or a bad value is only a warning for systemd: none is allowed.
    assert!(ok && said.trim().is_empty(), "{said}");
}

#[test]
fn verify_reports_a_mistake_in_a_unit_or_in_the_drop_in() {
    let Some(analyzer) = analyzer("verify_reports_a_mistake_in_a_unit_or_in_the_drop_in") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let units = install_copies(dir.path(), |text| {
        text.replace("Type=notify", "Tpye=notify")
    });
    let (_, said) = verify(analyzer, &units);
    assert!(said.contains("Tpye"), "{said}");

    let dir = tempfile::tempdir().unwrap();
    let units = install_copies(dir.path(), |text| text);
    let dropin = dir
        .path()
        .join("ironic-inspector.service.d/sudo-rootwrap.conf");
    let text = std::fs::read_to_string(&dropin).unwrap();
    std::fs::write(
        &dropin,
        text.replace("NoNewPrivileges=no", "NoNewPrivileges=perhaps"),
    )
    .unwrap();
    let (_, said) = verify(analyzer, &units);
    assert!(said.contains("perhaps"), "{said}");
}

#[test]
fn the_daemon_unit_is_a_notify_service_that_runs_dbsync_first() {
    let text = std::fs::read_to_string(packaging().join("ironic-inspector.service")).unwrap();
    let has = |line: &str| text.lines().any(|l| l.trim() == line);
    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/ironic-inspector --config-file /etc/ironic-inspector/inspector.conf",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Requires=ironic-inspector-dbsync.service",
        "After=ironic-inspector-dbsync.service",
        "User=ironic-inspector",
        "NoNewPrivileges=yes",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
    ] {
        assert!(has(line), "ironic-inspector.service lacks {line}");
    }
    let dbsync =
        std::fs::read_to_string(packaging().join("ironic-inspector-dbsync.service")).unwrap();
    assert!(dbsync.lines().any(|l| l == "Type=oneshot"));
    assert!(dbsync.lines().any(
        |l| l.starts_with("ExecStart=/usr/bin/ironic-inspector-dbsync ") && l.ends_with(" upgrade")
    ));
}
