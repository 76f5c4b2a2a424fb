//! A helper set-up in a temporary directory (configuration and filter files owned by root),
//! running the helper binary, and network namespaces that are deleted on drop.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The helper binary cargo built for this test run.
pub const HELPER: &str = env!("CARGO_BIN_EXE_ironic-inspector-rootwrap");
/// The exec_dirs of the shipped configuration.
pub const EXEC_DIRS: &str = "/sbin,/usr/sbin,/bin,/usr/bin";
/// The shipped filter file.
const SHIPPED_FILTERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/rootwrap.d/ironic-inspector-firewall.filters"
);
/// The shipped configuration file.
const SHIPPED_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rootwrap.conf");

/// Whether this process runs as root (the owner of a file it creates).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `None` (after printing why) unless the tests can run here; under CI, a panic instead.
pub fn require_root(test: &str) -> Option<()> {
    if is_root() {
        return Some(());
    }
    assert!(
        !in_ci(),
        "{test}: CI is set but the tests do not run as root"
    );
    println!("{test}: skipped: the root helper's tests need root");
    None
}

/// Writes `text` to `path` with `mode`.
pub fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    chmod(path, mode);
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A configuration file and a filter directory in a fresh temporary directory: the shipped
/// `rootwrap.conf` with `filters_path` pointing at the directory, which holds the shipped
/// filter file, every file owned by root, 0644, directories 0755.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub filters: PathBuf,
}

impl Setup {
    /// The shipped files; `None` when the tests cannot run here.
    pub fn shipped(test: &str) -> Option<Setup> {
        require_root(test)?;
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let filters = dir.path().join("rootwrap.d");
        std::fs::create_dir(&filters).unwrap();
        chmod(&filters, 0o755);
        let setup = Setup {
            conf: dir.path().join("rootwrap.conf"),
            filters,
            dir,
        };
        let shipped = std::fs::read_to_string(SHIPPED_FILTERS).unwrap();
        setup.add_filters("ironic-inspector-firewall.filters", &shipped);
        setup.write_conf(EXEC_DIRS, "");
        Some(setup)
    }

    /// Rewrites the configuration: the shipped one with our filter directory, `exec_dirs`
    /// and `extra` lines.
    pub fn write_conf(&self, exec_dirs: &str, extra: &str) {
        let shipped = std::fs::read_to_string(SHIPPED_CONFIG).unwrap();
        let text: String = shipped
            .lines()
            .map(|line| {
                if line.starts_with("filters_path") {
                    format!("filters_path={}\n", self.filters.display())
                } else if line.starts_with("exec_dirs") {
                    format!("exec_dirs={exec_dirs}\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        assert!(
            text.contains(&format!("filters_path={}\n", self.filters.display())),
            "the shipped rootwrap.conf has no filters_path line: {text}"
        );
        write(&self.conf, &format!("{text}{extra}"), 0o644);
    }

    /// Adds a filter file (0644) to the filter directory.
    pub fn add_filters(&self, name: &str, text: &str) -> PathBuf {
        let path = self.filters.join(name);
        write(&path, text, 0o644);
        path
    }

    /// Runs the helper with this configuration and `argv`.
    pub fn run(&self, argv: &[&str]) -> Outcome {
        let mut command = Command::new(HELPER);
        command.arg(&self.conf).args(argv);
        Outcome::of(&mut command, None)
    }
}

/// What a process did.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Runs `command` to its end, with `stdin` as its standard input (else none).
    pub fn of(command: &mut Command, stdin: Option<&str>) -> Outcome {
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let output: Output = child.wait_with_output().unwrap();
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the helper refused with `code`, printing nothing on stdout and a message on
    /// stderr that contains each of `reasons`.
    pub fn assert_refused(&self, code: i32, reasons: &[&str]) {
        assert_eq!(self.code, Some(code), "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        assert!(
            self.stderr.starts_with("ironic-inspector-rootwrap: "),
            "{self:?}"
        );
        for reason in reasons {
            assert!(self.stderr.contains(reason), "no {reason:?} in {self:?}");
        }
    }
}

pub use crate::namespace::{Netns, in_ci, require_tools};

/// The root helper tests' namespace: a veth pair whose end `interface` is up.
impl Netns {
    /// A fresh namespace, or `None` (after printing why) when this machine cannot give one
    /// or the tests do not run as root.
    pub fn create(test: &str, interface: &str) -> Option<Netns> {
        require_root(test)?;
        let netns = Netns::new(test, "insp-rw", &["setpriv"])?;
        netns.add_veth(interface, &format!("{interface}p"));
        Some(netns)
    }
}

pub use crate::wait::wait_blocking as wait_for;
