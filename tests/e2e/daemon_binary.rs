//! The `ironic-inspector` binary run the way an operator runs it: its own config file, a
//! database migrated by `ironic-inspector-dbsync`, a log file, stopped with SIGTERM (or
//! killed). For tests that read what the daemon logs, which an in-process daemon cannot show
//! them, and for those that stop or kill it. Shared by the api and e2e test binaries.

// A toolbox: not every binary uses every helper.
#![allow(dead_code)]

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{InspectorApi, free_port, write_file};

/// The daemon binary cargo built for this test run.
pub const DAEMON: &str = env!("CARGO_BIN_EXE_ironic-inspector");
/// The dbsync binary cargo built for this test run.
pub const DBSYNC: &str = env!("CARGO_BIN_EXE_ironic-inspector-dbsync");
/// How long the daemon may take to answer after its start, or to exit after SIGTERM.
const DEADLINE: Duration = Duration::from_secs(60);

/// A running daemon process; its API through [`InspectorApi`] (`daemon.address`,
/// `daemon.client`, `daemon.post_continue(...)`). Killed if dropped without
/// [`Daemon::stop`]; when the test fails, its log is printed with the failure.
pub struct Daemon {
    /// Its address (`http://127.0.0.1:PORT`) and a client with a 60 s timeout.
    pub api: InspectorApi,
    /// The daemon's log file (`[DEFAULT] log_file`).
    pub log: PathBuf,
    /// Where its standard error goes.
    pub stderr: PathBuf,
    child: tokio::process::Child,
}

impl Deref for Daemon {
    type Target = InspectorApi;

    fn deref(&self) -> &InspectorApi {
        &self.api
    }
}

impl Daemon {
    /// Writes `config` (every section but `[DEFAULT]`'s listen and log options, which are
    /// added here) to `dir`, migrates its database with dbsync, starts the daemon and waits
    /// until it answers `GET /`.
    pub async fn start(dir: &Path, config: &str) -> Daemon {
        let mut daemon = Daemon::spawn(dir, config, true).await;
        daemon.wait_answering().await;
        daemon
    }

    /// [`Daemon::start`] on a database that is migrated already (dbsync is not run), as
    /// after a crash.
    pub async fn start_on_migrated_database(dir: &Path, config: &str) -> Daemon {
        let mut daemon = Daemon::spawn(dir, config, false).await;
        daemon.wait_answering().await;
        daemon
    }

    /// Writes the config, migrates the database (when `migrate`), starts the process.
    async fn spawn(dir: &Path, config: &str, migrate: bool) -> Daemon {
        let port = free_port();
        let log = dir.join("inspector.log");
        let stderr = dir.join("inspector.stderr");
        let conf = write_file(
            dir,
            "inspector.conf",
            &format!(
                "[DEFAULT]\nlisten_address = 127.0.0.1\nlisten_port = {port}\nlog_file = {}\n\
                 {config}",
                log.display()
            ),
        );
        if migrate {
            assert_upgraded(dbsync(&conf, "upgrade").await);
        }
        let child = tokio::process::Command::new(DAEMON)
            .arg("--config-file")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Daemon {
            api: InspectorApi {
                address: format!("http://127.0.0.1:{port}"),
                client: reqwest::Client::builder()
                    .timeout(DEADLINE)
                    .build()
                    .unwrap(),
            },
            log,
            stderr,
            child,
        }
    }

    /// Waits until `GET /` answers 200; panics if the process exits first.
    async fn wait_answering(&mut self) {
        let (log, stderr) = (self.log.clone(), self.stderr.clone());
        let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
        let address = self.address.clone();
        wait_child_answering(&mut self.child, &address, || {
            format!("{}{}", read(&log), read(&stderr))
        })
        .await;
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Standard error so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Starts the daemon with a configuration it must refuse, and waits for it to exit
    /// with an error (its database is not migrated first); its log and standard error.
    pub async fn fail_to_start(dir: &Path, config: &str) -> (String, String) {
        let mut daemon = Daemon::spawn(dir, config, false).await;
        let status = tokio::time::timeout(DEADLINE, daemon.child.wait())
            .await
            .expect("the daemon kept running")
            .unwrap();
        assert!(!status.success(), "the daemon exited with {status}");
        (daemon.log_text(), daemon.stderr_text())
    }

    /// SIGTERM, then waits for the exit; its status code. The log stays readable.
    pub async fn stop(&mut self) -> Option<i32> {
        self.stop_within(DEADLINE).await
    }

    /// [`Daemon::stop`], failing the test unless the daemon exits within `deadline`.
    pub async fn stop_within(&mut self, deadline: Duration) -> Option<i32> {
        self.terminate(deadline)
            .await
            .unwrap_or_else(|why| panic!("{why}"))
            .code()
    }

    /// SIGTERM, then waits at most `deadline` for the exit; its status, or why there is
    /// none (the process is then killed).
    pub async fn terminate(
        &mut self,
        deadline: Duration,
    ) -> Result<std::process::ExitStatus, String> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| "the daemon already exited".to_string())?
            .to_string();
        let killed = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
        if !killed.success() {
            return Err(format!("kill -TERM {pid} failed"));
        }
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(status) => status.map_err(|e| format!("waiting for the daemon: {e}")),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(format!(
                    "the daemon did not stop within {deadline:?} of SIGTERM"
                ))
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its resident memory in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS")
    }

    /// The most resident memory it has had so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let pid = self.child.id().expect("the daemon already exited");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("reading the daemon's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
    }

    /// Its open file descriptors (sockets, the database, the log).
    pub fn open_files(&self) -> usize {
        let Some(pid) = self.child.id() else {
            return 0;
        };
        std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
    }

    /// SIGKILL, and waits until it is gone.
    pub async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        let status = self.child.wait().await.unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The daemon's own account of what went wrong; the harness shows it with the failure.
        if std::thread::panicking() {
            eprintln!(
                "--- the daemon's log ({}) ---\n{}--- its standard error ---\n{}",
                self.log.display(),
                self.log_text(),
                self.stderr_text()
            );
        }
    }
}

/// Runs `ironic-inspector-dbsync --config-file conf <verb>`.
pub async fn dbsync(conf: &Path, verb: &str) -> std::process::Output {
    tokio::process::Command::new(DBSYNC)
        .arg("--config-file")
        .arg(conf)
        .arg(verb)
        .output()
        .await
        .unwrap()
}

/// Migrates the database at `url` (SQLAlchemy form) to head with `ironic-inspector-dbsync
/// upgrade`, through a config file in `dir` that names only the database, as an operator
/// does before the first start.
pub async fn dbsync_upgrade(dir: &Path, url: &str) {
    let conf = write_file(
        dir,
        "dbsync.conf",
        &format!("[database]\nconnection = {url}\n"),
    );
    assert_upgraded(dbsync(&conf, "upgrade").await);
}

/// Fails the test, with dbsync's standard error, unless the upgrade succeeded.
fn assert_upgraded(output: std::process::Output) {
    assert!(
        output.status.success(),
        "dbsync upgrade failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Waits (at most a minute) until `GET {address}/` answers 200. Fails the test, with what
/// `explain` says then (the daemon's output), when `child` exits first or at the deadline.
pub async fn wait_child_answering(
    child: &mut tokio::process::Child,
    address: &str,
    explain: impl Fn() -> String,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let root = format!("{address}/");
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the daemon exited with {status}: {}", explain());
        }
        let answer = client.get(&root).send().await;
        if answer.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not answer within {DEADLINE:?}: {}",
            explain()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
