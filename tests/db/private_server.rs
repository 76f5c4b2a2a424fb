//! A database server of the test's own, for tests that stop, restart or break it: started
//! with scripts/services/postgres.sh or mysql.sh in a temp dir on a free loopback port, and
//! stopped when the value is dropped, even when the test fails. Shared by the db and e2e
//! test binaries.

// A toolbox: not every binary uses every helper.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

pub use crate::ports::free_port;

/// How long a script may take to start or stop its server (it waits for readiness itself,
/// 30 s at most; the margin is for a loaded CI box).
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL 15.
    Postgres,
    /// MariaDB.
    MariaDb,
}

impl Kind {
    fn script(self) -> PathBuf {
        let name = match self {
            Kind::Postgres => "postgres.sh",
            Kind::MariaDb => "mysql.sh",
        };
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts/services")
            .join(name)
    }
}

/// A running (or stopped) private server.
pub struct PrivateServer {
    kind: Kind,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The SQLAlchemy URL of its `inspector` database (the `inspector` user may create
    /// more databases named `inspector*`).
    pub url: String,
    /// Data, socket and logs; `server` below it.
    dir: TempDir,
}

impl PrivateServer {
    /// Initialises and starts a server on a free port.
    pub async fn start(kind: Kind) -> PrivateServer {
        let dir = tempfile::tempdir().unwrap();
        // PostgreSQL runs as its own user, which must be able to reach the data directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let mut server = PrivateServer {
            kind,
            port,
            url: String::new(),
            dir,
        };
        server.url = server.run_start().await;
        server
    }

    /// The server's directory as the scripts take it.
    fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    /// The log file the server writes.
    pub fn log(&self) -> PathBuf {
        self.server_dir().join("server.log")
    }

    async fn script(&self, args: &[&str]) -> String {
        let mut command = tokio::process::Command::new(self.kind.script());
        command.args(args).kill_on_drop(true);
        let output = tokio::time::timeout(SCRIPT_DEADLINE, command.output())
            .await
            .unwrap_or_else(|_| panic!("{:?} {args:?} did not finish", self.kind))
            .unwrap();
        assert!(
            output.status.success(),
            "{:?} {args:?} failed: {}",
            self.kind,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    async fn run_start(&self) -> String {
        let dir = self.server_dir();
        let port = self.port.to_string();
        self.script(&["start", dir.to_str().unwrap(), &port]).await
    }

    /// Starts the server again (after [`PrivateServer::stop`]), on the same port and data.
    pub async fn resume(&self) {
        let url = self.run_start().await;
        assert_eq!(url, self.url);
    }

    /// Stops the server (PostgreSQL: fast shutdown, which ends every session with
    /// `admin_shutdown`; MariaDB: SIGTERM), waiting until it is gone.
    pub async fn stop(&self) {
        let dir = self.server_dir();
        self.script(&["stop", dir.to_str().unwrap()]).await;
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let dir = self.server_dir();
        let _ = std::process::Command::new(self.kind.script())
            .arg("stop")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
