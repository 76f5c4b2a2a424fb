//! The daemon under test: the real `ironic-inspector` binary as a child process (run by the
//! e2e tests' `daemon_binary`), configured for fuzzing, on a SQLite database migrated by
//! `ironic-inspector-dbsync`.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon_binary;

/// How long it may take to stop after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

pub struct Daemon {
    process: daemon_binary::Daemon,
    pub port: u16,
    pub database: PathBuf,
    pub body_limit: usize,
}

impl Deref for Daemon {
    type Target = daemon_binary::Daemon;

    fn deref(&self) -> &daemon_binary::Daemon {
        &self.process
    }
}

impl DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut daemon_binary::Daemon {
        &mut self.process
    }
}

impl Daemon {
    /// Migrates a fresh database in `dir` and starts the daemon on a free port, talking to
    /// the Ironic at `ironic_url`; returns once it answers `GET /`.
    pub async fn start(dir: &Path, ironic_url: &str, body_limit: usize) -> Daemon {
        let database = dir.join("inspector.sqlite");
        let logs_dir = dir.join("ramdisk-logs");
        std::fs::create_dir_all(&logs_dir).expect("creating the ramdisk logs directory");
        // Retries of Ironic calls are kept short so that a locked node cannot hold a
        // request for long; `timeout` stays at its default (no node times out during a
        // run); every report is stored, ramdisk logs are written, and new IPMI credentials
        // may be asked for, so that those code paths run too.
        let config = format!(
            "[DEFAULT]\nauth_strategy = noauth\nverbose = true\n\
             [ironic]\nauth_strategy = noauth\nironic_url = {ironic_url}\nmax_retries = 3\n\
             retry_interval = 1\n\
             [firewall]\nmanage_firewall = false\n\
             [database]\nconnection = sqlite:///{database}\n\
             [processing]\nstore_data = database\nramdisk_logs_dir = {logs}\n\
             enable_setting_ipmi_credentials = true\n\
             [oslo_middleware]\nmax_request_body_size = {body_limit}\n",
            database = database.display(),
            logs = logs_dir.display(),
        );
        let process = daemon_binary::Daemon::start(dir, &config).await;
        let port = process
            .address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the daemon's port");
        Daemon {
            process,
            port,
            database,
            body_limit,
        }
    }

    /// Everything it wrote: its log file, then its standard error (where a panic's message
    /// goes).
    pub fn output(&self) -> String {
        format!("{}{}", self.log_text(), self.stderr_text())
    }

    /// Stops the daemon with SIGTERM; its exit status (or why there is none).
    pub async fn stop(&mut self) -> Result<std::process::ExitStatus, String> {
        self.process.terminate(STOP_DEADLINE).await
    }
}
