//! Shared helpers: temp databases on every backend, running the dbsync binaries, gates.

use std::path::{Path, PathBuf};
use std::process::Output;

use ironic_inspector::db::{Backend, Db};
use tokio::process::Command;

/// Path of our dbsync binary, built by cargo for this test run.
pub const DBSYNC: &str = env!("CARGO_BIN_EXE_ironic-inspector-dbsync");

pub use crate::service_env::service_var;

/// A database made for one test, dropped again by [`TestDb::drop_db`].
pub struct TestDb {
    /// SQLAlchemy URL of the database.
    pub url: String,
    /// The backend.
    pub backend: Backend,
    /// Server-side database name (PostgreSQL, MySQL).
    name: Option<String>,
    /// Admin URL used to create and drop it.
    admin_url: Option<String>,
    /// Keeps a SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh, empty SQLite file in a temp dir.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:///{}", dir.path().join("inspector.db").display());
        TestDb {
            url,
            backend: Backend::Sqlite,
            name: None,
            admin_url: None,
            _dir: Some(dir),
        }
    }

    /// A fresh, empty database on the server behind `base_url` (the URL printed by
    /// scripts/services/postgres.sh or mysql.sh; its user may create `inspector*` databases).
    pub async fn on_server(base_url: &str) -> TestDb {
        let admin = Db::connect_url(base_url).await.unwrap();
        let name = format!(
            "inspector_t_{}",
            uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap()
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await
            .unwrap();
        let backend = admin.backend();
        admin.close().await;
        TestDb {
            url: with_database(base_url, &name),
            backend,
            name: Some(name),
            admin_url: Some(base_url.to_string()),
            _dir: None,
        }
    }

    /// Connects to it.
    pub async fn connect(&self) -> Db {
        Db::connect_url(&self.url).await.unwrap()
    }

    /// Drops a server-side database (a no-op for SQLite, whose dir goes with the value).
    pub async fn drop_db(self) {
        if let (Some(name), Some(admin_url)) = (&self.name, &self.admin_url) {
            let admin = Db::connect_url(admin_url).await.unwrap();
            let sql = match self.backend {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                _ => format!("DROP DATABASE IF EXISTS {name}"),
            };
            sqlx::query(&sql).execute(admin.pool()).await.unwrap();
            admin.close().await;
        }
    }
}

/// The URL with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query = tail
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

/// Writes a config file naming the database and returns its path.
pub fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join(format!("inspector-{}.conf", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, body).unwrap();
    path
}

/// `[database] connection = url` as a config file.
pub fn database_config(dir: &Path, url: &str) -> PathBuf {
    write_config(dir, &format!("[database]\nconnection = {url}\n"))
}

/// What a dbsync run printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished process printed.
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self.stdout
    }

    /// The "Running upgrade/downgrade" lines.
    pub fn steps(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| l.find("Running ").map(|i| l[i..].to_string()))
            .collect()
    }
}

/// Runs a dbsync binary with a config file and arguments.
pub async fn dbsync(binary: &str, config: &Path, args: &[&str]) -> Run {
    let output = Command::new(binary)
        .arg("--config-file")
        .arg(config)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    Run::from(output)
}

/// Runs our dbsync with a config file.
pub async fn ours(config: &Path, args: &[&str]) -> Run {
    dbsync(DBSYNC, config, args).await
}

/// Names of the tables in a database (alembic_version included), sorted.
pub async fn tables(db: &Db) -> Vec<String> {
    let sql = match db.backend() {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() ORDER BY 1"
        }
        Backend::MySql => {
            "SELECT CAST(table_name AS CHAR) AS name FROM information_schema.tables \
             WHERE table_schema = DATABASE() ORDER BY 1"
        }
    };
    let rows = sqlx::query(sql).fetch_all(db.pool()).await.unwrap();
    rows.iter()
        .map(|r| ironic_inspector::db::required_text_column(r, "name").unwrap())
        .collect()
}

/// The six tables of head plus alembic's.
pub const HEAD_TABLES: [&str; 7] = [
    "alembic_version",
    "attributes",
    "nodes",
    "options",
    "rule_actions",
    "rule_conditions",
    "rules",
];
