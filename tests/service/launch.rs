//! Starting the daemon binary the way a service manager does: its own config, environment
//! and wrapper command; standard output and error into files; signals by pid.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use crate::daemon_binary::{DAEMON, dbsync_upgrade, wait_child_answering};
use crate::helpers::{free_port, wait_for, write_file};

/// How long the daemon may take to answer, to exit, or to say something.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Writes a config whose `[DEFAULT]` gets `default_extra` (SQLite in `dir`, no Keystone,
/// no firewall, an Ironic URL nothing listens on), and migrates its database. Returns the
/// config path and the port it listens on.
pub async fn configure(dir: &Path, default_extra: &str) -> (PathBuf, u16) {
    let port = free_port();
    let url = format!("sqlite:///{}/inspector.sqlite", dir.display());
    dbsync_upgrade(dir, &url).await;
    let conf = write_file(
        dir,
        "inspector.conf",
        &format!(
            "[DEFAULT]\nauth_strategy = noauth\nlisten_address = 127.0.0.1\nlisten_port = {port}\n\
             timeout = 0\n{default_extra}\n[ironic]\nauth_strategy = noauth\n\
             ironic_url = http://127.0.0.1:{}/\n[firewall]\nmanage_firewall = false\n\
             [database]\nconnection = {url}\n",
            free_port()
        ),
    );
    (conf, port)
}

/// A running daemon process.
pub struct Service {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// Where its standard output goes.
    pub stdout: PathBuf,
    /// Where its standard error goes.
    pub stderr: PathBuf,
    child: tokio::process::Child,
}

impl Service {
    /// Runs `command` (the daemon, or a wrapper that execs it) with its output in `dir`.
    pub fn spawn(dir: &Path, port: u16, mut command: tokio::process::Command) -> Service {
        let stdout = dir.join("daemon.stdout");
        let stderr = dir.join("daemon.stderr");
        let child = command
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Service {
            address: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
            child,
        }
    }

    /// The daemon itself with `--config-file conf`.
    pub fn command(conf: &Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(DAEMON);
        command.arg("--config-file").arg(conf);
        command
    }

    /// Its process id (the daemon's, as wrappers exec it).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the daemon already exited")
    }

    /// Whether `GET /` answers 200 now.
    pub async fn answers(&self) -> bool {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        client
            .get(format!("{}/", self.address))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    }

    /// Waits until `GET /` answers; fails if the process exits first.
    pub async fn wait_answering(&mut self) {
        let stderr = self.stderr.clone();
        wait_child_answering(&mut self.child, &self.address, || {
            std::fs::read_to_string(&stderr).unwrap_or_default()
        })
        .await;
    }

    /// Sends `signal` (`TERM`, `HUP`) with kill(1).
    pub async fn signal(&self, signal: &str) {
        let status = tokio::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the exit, at most [`DEADLINE`].
    pub async fn exit_status(&mut self) -> ExitStatus {
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("the daemon did not exit")
            .unwrap()
    }

    /// SIGTERM, then the exit status code.
    pub async fn stop(&mut self) -> Option<i32> {
        self.signal("TERM").await;
        self.exit_status().await.code()
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Standard error so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Standard output so far.
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits until `path` holds `needle`.
    pub async fn wait_for_text(&self, path: &Path, needle: &str) -> String {
        wait_for(
            DEADLINE,
            &format!("{needle:?} in {}", path.display()),
            || async {
                std::fs::read_to_string(path)
                    .ok()
                    .filter(|text| text.contains(needle))
            },
        )
        .await
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- the daemon's standard error ---\n{}--- its standard output ---\n{}",
                self.stderr_text(),
                self.stdout_text()
            );
        }
    }
}

/// Whether this process may create mount namespaces (root); otherwise says why the calling
/// test is skipped, or fails it under CI.
pub fn can_mount(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|uids| uids.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs root (mount namespaces), and CI runs as root"
        );
        eprintln!("skipping {test}: needs root for a mount namespace");
    }
    root
}
