//! Building the package once per test run, and the small tools the tests share.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

/// The package's name.
pub const PACKAGE: &str = "ironic-inspector";

/// The repository.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the package tests may run here; prints a skip line when not.
pub fn enabled(test: &str) -> bool {
    if std::env::var("INSPECTOR_TEST_PACKAGE").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "skipping {test}: it builds the Debian package and installs it on this machine; \
         set INSPECTOR_TEST_PACKAGE=1 (as root) to run it"
    );
    false
}

/// The `.deb` that `scripts/package` built, built on first use (a release build).
pub fn built() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let started = Instant::now();
        let out = run(&mut cargo_command(repo().join("scripts/package")));
        let path = repo().join(String::from_utf8(out.stdout).unwrap().trim());
        // Past the test harness's capture: CI's log shows what packaging costs.
        let _ = std::io::stderr().write_all(
            format!(
                "scripts/package built {} in {:.0?}\n",
                path.display(),
                started.elapsed()
            )
            .as_bytes(),
        );
        assert!(path.is_file(), "{} is not a file", path.display());
        path
    })
}

/// A command that runs cargo for this repository. Drops the variables cargo set for this
/// test (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...): build scripts that watch them would
/// otherwise see a change and rebuild their crates, here and in the next `cargo test`.
pub fn cargo_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(repo());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_tests = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_EXE_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref());
        if set_for_tests {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd
}

/// The package's files unpacked (`dpkg-deb -x`) into a directory of their own.
pub fn unpacked() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("dpkg-deb")
            .arg("-x")
            .arg(built())
            .arg(dir.path()));
        dir
    })
    .path()
}

/// Holds the machine-wide lock of the tests that install the package.
pub struct MachineLock(#[allow(dead_code)] File);

/// Waits for the machine-wide lock (another run of these tests may hold it).
pub fn lock_machine() -> MachineLock {
    let file = File::create("/run/lock/ironic-inspector-package-test.lock")
        .expect("creating the lock file (the package tests run as root)");
    file.lock().unwrap();
    MachineLock(file)
}

/// Runs a command that must succeed; returns its output. A failure shows both streams.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`run`], returning standard output as text.
pub fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap()
}

pub use crate::wait::wait_blocking as wait_for;
