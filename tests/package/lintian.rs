//! Debian's package checker: no error; its warnings and notes are printed.

use std::io::Write;
use std::process::Command;

use crate::deb::{built, enabled};

#[test]
fn lintian_finds_no_error() {
    if !enabled("lintian_finds_no_error") {
        return;
    }
    let out = Command::new("lintian")
        .args(["--display-info", "--tag-display-limit", "0"])
        .arg(built())
        .output()
        .expect("running lintian (scripts/test installs it)");
    let report = String::from_utf8_lossy(&out.stdout);
    // Written past the test harness's capture, so that CI's log shows the warnings.
    let _ = std::io::stderr().write_all(
        format!(
            "lintian {}:\n{report}{}",
            built().display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .as_bytes(),
    );
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E: ")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
    // Exit status 1 means errors (none here); 2 means lintian itself failed.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "lintian failed: {}",
        out.status
    );
}
