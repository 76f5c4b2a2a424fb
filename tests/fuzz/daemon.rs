//! The daemon under test: the real `ironic-inspector` binary as a child process, with its
//! own configuration and a SQLite database migrated by `ironic-inspector-dbsync`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const DAEMON: &str = env!("CARGO_BIN_EXE_ironic-inspector");
const DBSYNC: &str = env!("CARGO_BIN_EXE_ironic-inspector-dbsync");

/// How long the daemon may take to answer its first request.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long it may take to stop after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

pub struct Daemon {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub database: PathBuf,
    pub body_limit: usize,
}

impl Daemon {
    /// Migrates a fresh database in `dir` and starts the daemon on a free port, talking to
    /// the Ironic at `ironic_url`; returns once it answers `GET /`.
    pub async fn start(dir: &Path, ironic_url: &str, body_limit: usize) -> Daemon {
        let port = free_port();
        let database = dir.join("inspector.sqlite");
        let logs_dir = dir.join("ramdisk-logs");
        std::fs::create_dir_all(&logs_dir).expect("creating the ramdisk logs directory");
        // Retries of Ironic calls are kept short so that a locked node cannot hold a
        // request for long; `timeout` stays at its default (no node times out during a
        // run); every report is stored, ramdisk logs are written, and new IPMI credentials
        // may be asked for, so that those code paths run too.
        let config = format!(
            "[DEFAULT]\nauth_strategy = noauth\nlisten_address = 127.0.0.1\nlisten_port = {port}\n\
             verbose = true\n\
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
        let conf = dir.join("inspector.conf");
        std::fs::write(&conf, config).expect("writing the daemon's configuration");
        let out = Command::new(DBSYNC)
            .arg("--config-file")
            .arg(&conf)
            .arg("upgrade")
            .output()
            .expect("running ironic-inspector-dbsync");
        assert!(out.status.success(), "dbsync upgrade failed: {out:?}");

        let log = dir.join("daemon.log");
        let log_file = std::fs::File::create(&log).expect("creating the daemon's log");
        let child = Command::new(DAEMON)
            .arg("--config-file")
            .arg(&conf)
            .stdout(log_file.try_clone().expect("duplicating the log file"))
            .stderr(log_file)
            .spawn()
            .expect("starting the daemon");
        let mut daemon = Daemon {
            child,
            port,
            log,
            database,
            body_limit,
        };
        let url = format!("http://127.0.0.1:{port}/");
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(response) = reqwest::get(&url).await
                && response.status() == 200
            {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "the daemon exited with {status} before answering; its log:\n{}",
                    daemon.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not answer within {START_DEADLINE:?}; its log:\n{}",
                daemon.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory in KiB (`VmRSS` of /proc/<pid>/status).
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// The most resident memory so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading the daemon's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/<pid>/status"))
    }

    /// Open file descriptors (sockets, the database, the log).
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Stops the daemon with SIGTERM; its exit status (or why there is none).
    pub async fn stop(mut self) -> Result<std::process::ExitStatus, String> {
        let pid = self.pid().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
        if !killed.success() {
            return Err(format!("kill -TERM {pid} failed"));
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!("still running {STOP_DEADLINE:?} after SIGTERM"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free loopback port")
}
