//! The `ironic-inspector` binary run the way an operator runs it: its own config file, a
//! database migrated by `ironic-inspector-dbsync`, a log file, stopped with SIGTERM. For
//! tests that read what the daemon logs, which an in-process daemon cannot show them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{free_port, write_file};

const DAEMON: &str = env!("CARGO_BIN_EXE_ironic-inspector");
const DBSYNC: &str = env!("CARGO_BIN_EXE_ironic-inspector-dbsync");
/// How long the daemon may take to answer after its start, or to exit after SIGTERM.
const DEADLINE: Duration = Duration::from_secs(60);

/// A running daemon process. Killed if dropped without [`Daemon::stop`].
pub struct Daemon {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The daemon's log file (`[DEFAULT] log_file`).
    pub log: PathBuf,
    /// Where its standard error goes.
    pub stderr: PathBuf,
    child: tokio::process::Child,
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
            let migrated = dbsync(&conf, "upgrade").await;
            assert!(
                migrated.status.success(),
                "dbsync upgrade failed: {}",
                String::from_utf8_lossy(&migrated.stderr)
            );
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
            url: format!("http://127.0.0.1:{port}"),
            log,
            stderr,
            child,
        }
    }

    /// Waits until `GET /` answers 200; panics if the process exits first.
    async fn wait_answering(&mut self) {
        let daemon = self;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let root = format!("{}/", daemon.url);
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!(
                    "the daemon exited with {status}: {}{}",
                    daemon.log_text(),
                    daemon.stderr_text()
                );
            }
            let answer = client.get(&root).send().await;
            if answer.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not answer within {DEADLINE:?}: {}",
                daemon.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
        let pid = self
            .child
            .id()
            .expect("the daemon already exited")
            .to_string();
        let killed = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("the daemon did not stop after SIGTERM")
            .unwrap();
        status.code()
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
