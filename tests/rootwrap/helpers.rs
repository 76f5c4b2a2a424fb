//! A helper set-up in a temporary directory (configuration and filter files owned by root),
//! running the helper binary, and network namespaces that are deleted on drop.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

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

pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

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

/// A network namespace with its loopback up and a veth pair, deleted on drop (with every
/// rule in it), whatever the test's outcome.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A fresh namespace whose veth end `interface` is up, or `None` (after printing why)
    /// when this machine cannot give one.
    pub fn create(test: &str, interface: &str) -> Option<Netns> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        require_root(test)?;
        require_tools(test, &["ip", "iptables", "iptables-restore", "setpriv"])?;
        let name = format!(
            "insp-rw-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let added = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        if !added.status.success() {
            // The only skip allowed under CI: the kernel (or the sandbox) refuses namespaces.
            println!(
                "{test}: skipped: the kernel refuses to create a network namespace \
                 (ip netns add {name}: {})",
                String::from_utf8_lossy(&added.stderr).trim()
            );
            return None;
        }
        let netns = Netns { name };
        let peer = format!("{interface}p");
        netns.run(&["ip", "link", "set", "lo", "up"]);
        netns.run(&[
            "ip", "link", "add", interface, "type", "veth", "peer", "name", &peer,
        ]);
        netns.run(&["ip", "link", "set", interface, "up"]);
        Some(netns)
    }

    /// A command that runs `argv` inside the namespace.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).args(argv);
        command
    }

    /// Runs `argv` inside the namespace as root; its stdout, or a panic with its stderr.
    pub fn run(&self, argv: &[&str]) -> String {
        let outcome = Outcome::of(&mut self.command(argv), None);
        assert_eq!(
            outcome.code,
            Some(0),
            "{argv:?} in {}: {outcome:?}",
            self.name
        );
        outcome.stdout
    }

    /// `iptables -S` of the namespace (read as root, without the helper), as lines.
    pub fn rules(&self) -> Vec<String> {
        self.run(&["iptables", "-S"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// `None` (after printing which is missing) unless every tool is installed; under CI, a
/// panic instead.
pub fn require_tools(test: &str, tools: &[&str]) -> Option<()> {
    if let Some(tool) = tools.iter().find(|tool| which(tool).is_none()) {
        assert!(
            !in_ci(),
            "{test}: CI is set but `{tool}` is not installed (scripts/test installs it)"
        );
        println!("{test}: skipped: `{tool}` is not installed");
        return None;
    }
    Some(())
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Polls `check` until it gives a value, failing the test after `deadline` with what
/// `explain` says then.
pub fn wait_for<T>(
    deadline: Duration,
    explain: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < end,
            "not within {deadline:?}: {}",
            explain()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
