//! The SQL database: connecting (SQLite, PostgreSQL, MySQL/MariaDB), and the schema check
//! that keeps the daemon off a database `ironic-inspector-dbsync` has not migrated.
//!
//! Ports the engine set-up of `ironic_inspector/db.py` (the models live in `migrations/` as
//! SQL, see [`migrate`]). One implementation over sqlx's `Any` driver serves every backend:
//! queries are written once with `?` placeholders and [`Db::sql`] rewrites them for
//! PostgreSQL. SQL belongs in this module and in the modules that own a table
//! ([`crate::node_cache`], rules); nothing here knows about HTTP.
//!
//! The `Any` driver decodes only booleans, integers, floats, text and blobs. Columns of other
//! types (`DATETIME`, `TIMESTAMP`, SQLite's `BOOLEAN`) must be cast in the `SELECT`, and MySQL
//! hands `TEXT` columns over as blobs: read text through [`text_column`].

mod fault;
pub mod migrate;

pub use fault::{Fault, classify};

use std::borrow::Cow;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor, Row, Transaction};

use crate::config::DatabaseSection;
use crate::retry::Backoff;

/// How long a SQLite connection waits for another writer before giving up with
/// "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;
/// Pool size when `[database] max_pool_size` is unset, for a server: several requests (and
/// background tasks) write at once.
const DEFAULT_SERVER_POOL_SIZE: u32 = 10;
/// The same for SQLite, which has one writer at a time anyway.
const DEFAULT_SQLITE_POOL_SIZE: u32 = 5;
/// Seconds to wait for a pooled connection when `[database] pool_timeout` is unset.
const DEFAULT_POOL_TIMEOUT_S: u64 = 30;

/// The database server kind, picked once from the URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, a file or in memory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Backend {
    /// The name used for the per-backend migration folder.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
            Backend::MySql => "mysql",
        }
    }

    /// Whether DDL statements take part in transactions (MySQL commits implicitly).
    pub fn transactional_ddl(self) -> bool {
        !matches!(self, Backend::MySql)
    }
}

/// What can go wrong in the database layer. Callers match on what happened, not on driver
/// codes; [`crate::Error`] gets a `From` impl below.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// `[database] connection` is missing or not a URL we can use.
    #[error("{0}")]
    Config(String),
    /// The schema is not the one this program needs (un-migrated, or at another revision).
    #[error("{0}")]
    Schema(String),
    /// A migration command was given something it cannot do (unknown revision, wrong
    /// direction).
    #[error("{0}")]
    Migration(String),
    /// The first connection could not be made: the server turned us away for good, or it
    /// stayed unreachable through every retry.
    #[error("cannot connect to the database {url}{}: {cause}", gave_up(*.attempts))]
    Connect {
        /// The URL with its password hidden.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        cause: sqlx::Error,
    },
    /// The driver or the server failed.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// The "after N attempts" part of a connection failure, when it was retried.
fn gave_up(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (gave up after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl DbError {
    /// What the failure means for the caller; see [`classify`].
    pub fn fault(&self) -> Fault {
        match self {
            DbError::Sql(e) | DbError::Connect { cause: e, .. } => classify(e),
            DbError::Config(_) => Fault::Refused,
            DbError::NotFound(_) | DbError::Schema(_) | DbError::Migration(_) => Fault::Other,
        }
    }

    /// Whether this is the server refusing a row because its primary key or a unique key is
    /// already taken.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sql(sqlx::Error::Database(e)) => {
                e.kind() == sqlx::error::ErrorKind::UniqueViolation
            }
            _ => false,
        }
    }
}

impl From<DbError> for crate::Error {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NotFound(msg) => crate::Error::NotFound(msg),
            DbError::Sql(e) | DbError::Connect { cause: e, .. } => crate::Error::from(e),
            DbError::Config(msg) => crate::Error::internal("DatabaseConfigError", msg),
            DbError::Schema(msg) => crate::Error::internal("DatabaseSchemaError", msg),
            DbError::Migration(msg) => crate::Error::internal("MigrationError", msg),
        }
    }
}

/// A handle on the database: a connection pool and the backend it talks to. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Opens the pool described by `[database]`. The URL is SQLAlchemy's; its password is
    /// never logged.
    ///
    /// A server that cannot be reached (refused, timed out, starting up, too many clients)
    /// is tried again as oslo.db does: `max_retries` more attempts (-1: for ever),
    /// `retry_interval` seconds apart, each one logged as a warning. A server that turns us
    /// away for good (wrong password, unknown database, no privilege) or a URL it cannot
    /// use fails at once: waiting would not change the answer.
    pub async fn connect(section: &DatabaseSection) -> Result<Db, DbError> {
        let url = section.connection.as_ref().ok_or_else(|| {
            DbError::Config(
                "no database configured: set [database] connection (or the deprecated \
                 [discoverd] database)"
                    .to_string(),
            )
        })?;
        let url = url.expose_secret();
        let target = translate_url(url)?;
        let shown = redact_url(url);
        sqlx::any::install_default_drivers();
        let options: AnyConnectOptions = target.url.parse().map_err(|e: sqlx::Error| {
            DbError::Config(format!(
                "cannot use [database] connection {shown}: {}",
                hide_password(&e.to_string(), url)
            ))
        })?;
        let interval = Duration::from_secs(u64::try_from(section.retry_interval).unwrap_or(0));
        // -1: for ever.
        let max_retries = u64::try_from(section.max_retries)
            .ok()
            .map(|max| u32::try_from(max).unwrap_or(u32::MAX));
        let mut retries = Backoff::fixed(max_retries, interval).start();
        loop {
            let err = match open_pool(&target, &options, section).await {
                Ok(pool) => {
                    tracing::info!(db.url = %shown, "connected to the database");
                    return Ok(Db {
                        pool,
                        backend: target.backend,
                    });
                }
                Err(err) => err,
            };
            let attempts = retries.done().saturating_add(1);
            let pause = (classify(&err) == Fault::Unavailable)
                .then(|| retries.next_pause())
                .flatten();
            let Some(pause) = pause else {
                // Logged by the caller, which decides what failing means.
                return Err(DbError::Connect {
                    url: shown,
                    attempts,
                    cause: err,
                });
            };
            let of = if section.max_retries < 0 {
                "unlimited".to_string()
            } else {
                (section.max_retries + 1).to_string()
            };
            tracing::warn!(
                db.url = %shown,
                error = %err,
                attempt = attempts,
                attempts = %of,
                "cannot connect to the database (attempt {attempts} of {of}), retrying in {} s",
                pause.as_secs()
            );
            tokio::time::sleep(pause).await;
        }
    }

    /// Opens a database from a SQLAlchemy URL with default pool settings and no retries.
    /// Handy for tools and tests.
    pub async fn connect_url(url: &str) -> Result<Db, DbError> {
        let section = DatabaseSection {
            connection: Some(url.to_string().into()),
            sqlite_synchronous: true,
            max_retries: 0,
            retry_interval: 0,
            max_pool_size: None,
            idle_timeout: 3600,
            pool_timeout: None,
        };
        Db::connect(&section).await
    }

    /// The backend behind this handle.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for running queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Rewrites a query written with `?` placeholders for this backend (`$1..$n` on
    /// PostgreSQL; unchanged elsewhere).
    pub fn sql<'q>(&self, query: &'q str) -> Cow<'q, str> {
        match self.backend {
            Backend::Postgres => Cow::Owned(numbered_placeholders(query)),
            Backend::Sqlite | Backend::MySql => Cow::Borrowed(query),
        }
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of one failing
    /// with "database is locked" when it upgrades a read lock.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres | Backend::MySql => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Checks that the schema is at the head revision, as the daemon requires: it refuses to
    /// run on a database that `ironic-inspector-dbsync upgrade` has not migrated.
    pub async fn check_schema(&self) -> Result<(), DbError> {
        let head = migrate::HEAD;
        match migrate::current(self).await? {
            Some(rev) if rev == head => Ok(()),
            Some(rev) => Err(DbError::Schema(format!(
                "Database schema is not up to date (it is at revision {rev}, this version \
                 needs {head}), run ironic-inspector-dbsync upgrade"
            ))),
            None => Err(DbError::Schema(format!(
                "Database schema is not up to date (no revision recorded, this version needs \
                 {head}), run ironic-inspector-dbsync upgrade"
            ))),
        }
    }

    /// Whether a table of this name exists in the connected database (schema).
    pub async fn table_exists(&self, table: &str) -> Result<bool, DbError> {
        let query = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = ?"
            }
            Backend::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = ?"
            }
        };
        let query = self.sql(query);
        let count: i64 = sqlx::query_scalar(&query)
            .bind(table)
            .fetch_one(&self.pool)
            .await?;
        Ok(count > 0)
    }

    /// Closes every pooled connection; later queries fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How many times [`retry_conflicts`] runs a transaction that keeps losing races.
pub const CONFLICT_ATTEMPTS: u32 = 5;
/// Its first pause between two runs; each later one is twice as long.
const CONFLICT_PAUSE: Duration = Duration::from_millis(20);

/// Runs `attempt`, one whole write transaction, again when it lost a race with another
/// transaction (`lost_race` tells: a deadlock, a serialization failure, a lock wait timeout,
/// SQLite still locked after its busy timeout), at most [`CONFLICT_ATTEMPTS`] times in all,
/// with a short growing pause. The server has rolled the loser back, so running it again is
/// safe; any other outcome is returned as it is. `what` names the work in the log.
pub async fn retry_conflicts<T, E, F, Fut>(
    what: &str,
    lost_race: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut retries =
        Backoff::doubling(Some(CONFLICT_ATTEMPTS - 1), CONFLICT_PAUSE, Duration::MAX).start();
    loop {
        let err = match attempt().await {
            Err(err) if lost_race(&err) => err,
            outcome => return outcome,
        };
        let Some(pause) = retries.next_pause() else {
            return Err(err);
        };
        tracing::warn!(
            db.work = what,
            attempt = retries.done(),
            error = %err,
            "database transaction lost a race with another one, running it again"
        );
        tokio::time::sleep(pause).await;
    }
}

/// A SQLAlchemy URL translated for sqlx.
struct Target {
    backend: Backend,
    url: String,
    in_memory: bool,
}

/// Translates a SQLAlchemy URL into the form sqlx reads, and picks the backend.
fn translate_url(url: &str) -> Result<Target, DbError> {
    let bad = |why: &str| {
        DbError::Config(format!(
            "cannot use [database] connection {}: {why}",
            redact_url(url)
        ))
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not a URL (expected e.g. sqlite:///inspector.db)"))?;
    // SQLAlchemy names the Python driver after a '+'; sqlx has one driver per backend.
    let dialect = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    match dialect.as_str() {
        "sqlite" => {
            translate_sqlite(rest).ok_or_else(|| bad("expected sqlite:///PATH or sqlite://"))
        }
        "postgresql" | "postgres" | "pgsql" => Ok(Target {
            backend: Backend::Postgres,
            url: format!("postgres://{rest}"),
            in_memory: false,
        }),
        "mysql" | "mariadb" => Ok(Target {
            backend: Backend::MySql,
            // PyMySQL spells the socket option `unix_socket`, sqlx `socket`.
            url: format!(
                "mysql://{}",
                rename_query_key(rest, "unix_socket", "socket")
            ),
            in_memory: false,
        }),
        other => Err(bad(&format!("unsupported database kind {other:?}"))),
    }
}

/// `rest` is what follows `sqlite://`: empty for memory, `/relative.db`, or `//abs.db`.
fn translate_sqlite(rest: &str) -> Option<Target> {
    let (path, _query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == "/" || path == "/:memory:" {
        return Some(Target {
            backend: Backend::Sqlite,
            url: "sqlite::memory:".to_string(),
            in_memory: true,
        });
    }
    // SQLAlchemy: one slash after the authority, then the path as given (relative unless it
    // starts with another slash). sqlx percent-decodes the path, so encode what it would
    // otherwise misread.
    let path = path.strip_prefix('/')?;
    let encoded = path.replace('%', "%25").replace('#', "%23");
    Some(Target {
        backend: Backend::Sqlite,
        url: format!("sqlite:{encoded}?mode=rwc"),
        in_memory: false,
    })
}

/// Renames one key in the query string of a URL tail.
fn rename_query_key(rest: &str, from: &str, to: &str) -> String {
    let Some((base, query)) = rest.split_once('?') else {
        return rest.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if key == from => format!("{to}={value}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// The URL with its password replaced by `***`, for logs and messages. The password is
/// taken as SQLAlchemy 1.0 read it: after the user name (which holds no `:` or `/`) and a
/// `:`, up to the last `@`; so one holding `/`, `?`, `#` or `@` is hidden whole.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (user, after_user) = rest.split_at(rest.find([':', '/']).unwrap_or(rest.len()));
    match after_user
        .strip_prefix(':')
        .and_then(|tail| tail.rsplit_once('@'))
    {
        Some((_password, host)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// `text` with the URL's password, should it appear anywhere, replaced by `***`.
fn hide_password(text: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(password) => text.replace(password, "***"),
        None => text.to_string(),
    }
}

/// Rewrites `?` placeholders to `$1..$n`, leaving quoted text and identifiers alone.
fn numbered_placeholders(query: &str) -> String {
    let mut out = String::with_capacity(query.len() + 8);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in query.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                _ => out.push(c),
            },
        }
    }
    out
}

/// Opens the pool and proves it works with one connection.
///
/// The pool retries a refused connection (and PostgreSQL's "starting up" and "too many
/// connections") by itself until its acquire timeout, silently. So a server is first tried
/// with one plain connection, which fails at once: [`Db::connect`] then decides, and logs,
/// whether to try again.
async fn open_pool(
    target: &Target,
    options: &AnyConnectOptions,
    section: &DatabaseSection,
) -> Result<AnyPool, sqlx::Error> {
    let acquire_timeout = section
        .pool_timeout
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(DEFAULT_POOL_TIMEOUT_S);
    let acquire_timeout = Duration::from_secs(acquire_timeout);
    if !target.in_memory {
        match tokio::time::timeout(acquire_timeout, options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(err)) => return Err(err),
            Err(_) => {
                return Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {} s", acquire_timeout.as_secs()),
                )));
            }
        }
    }
    let mut pool = AnyPoolOptions::new().acquire_timeout(acquire_timeout);
    if target.in_memory {
        // Each new connection to `:memory:` would be a new, empty database: keep exactly one
        // connection for the pool's whole life.
        pool = pool
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    } else {
        let idle = u64::try_from(section.idle_timeout)
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let default_size = match target.backend {
            Backend::Sqlite => DEFAULT_SQLITE_POOL_SIZE,
            Backend::Postgres | Backend::MySql => DEFAULT_SERVER_POOL_SIZE,
        };
        pool = pool
            .max_connections(section.max_pool_size.unwrap_or(default_size).max(1))
            .idle_timeout(idle);
    }
    if target.backend == Backend::Sqlite {
        let synchronous = if section.sqlite_synchronous {
            "FULL"
        } else {
            "OFF"
        };
        let in_memory = target.in_memory;
        pool = pool.after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str())
                    .await?;
                // WAL lets readers run beside the one writer. Switching to it needs an
                // exclusive lock that the busy timeout does not wait for, so only ask when
                // the file is not in WAL yet (it is persistent: normally just once).
                if !in_memory {
                    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                        .fetch_one(&mut *conn)
                        .await?;
                    if !mode.eq_ignore_ascii_case("wal") {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                    }
                }
                conn.execute(format!("PRAGMA synchronous = {synchronous}").as_str())
                    .await?;
                Ok(())
            })
        });
        pool = pool.after_release(|conn, _meta| {
            Box::pin(async move {
                // A COMMIT that fails (the disk is full) can leave SQLite out of its
                // transaction while the driver still counts one: the rollback it queues
                // then fails too, and every later BEGIN on this connection would be refused
                // for good. Let the queued rollback run, then drop a connection whose count
                // is still off instead of handing it out again.
                conn.ping().await?;
                let healthy = !conn.is_in_transaction();
                if !healthy {
                    tracing::warn!("dropping a database connection left in a failed transaction");
                }
                Ok(healthy)
            })
        });
    }
    if target.backend == Backend::MySql {
        pool = pool.after_connect(|conn, _meta| {
            Box::pin(async move {
                // InnoDB's default REPEATABLE READ takes gap locks when a DELETE finds no
                // row; two add_node calls (delete whatever was there, then insert) then
                // deadlock on each other's gaps. READ COMMITTED takes no such locks.
                conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .await?;
                Ok(())
            })
        });
    }
    pool.connect_with(options.clone()).await
}

/// Reads a text column that may be NULL. MySQL returns `TEXT` columns as blobs through the
/// `Any` driver, so bytes are accepted too (and must be UTF-8).
pub fn text_column(row: &AnyRow, column: &str) -> Result<Option<String>, DbError> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(value) => Ok(value),
        Err(sqlx::Error::ColumnDecode { .. }) => {
            let bytes: Option<Vec<u8>> = row.try_get(column)?;
            bytes
                .map(|b| {
                    String::from_utf8(b).map_err(|e| {
                        DbError::Sql(sqlx::Error::Decode(
                            format!("column {column} is not UTF-8: {e}").into(),
                        ))
                    })
                })
                .transpose()
        }
        Err(other) => Err(other.into()),
    }
}

/// Reads a float column that may be NULL. MySQL's `FLOAT` is single precision and arrives
/// as such through the `Any` driver; it is widened.
pub fn float_column(row: &AnyRow, column: &str) -> Result<Option<f64>, DbError> {
    match row.try_get::<Option<f64>, _>(column) {
        Ok(value) => Ok(value),
        Err(sqlx::Error::ColumnDecode { .. }) => {
            let single: Option<f32> = row.try_get(column)?;
            Ok(single.map(f64::from))
        }
        Err(other) => Err(other.into()),
    }
}

/// Like [`text_column`], for columns that are never NULL.
pub fn required_text_column(row: &AnyRow, column: &str) -> Result<String, DbError> {
    text_column(row, column)?.ok_or_else(|| {
        DbError::Sql(sqlx::Error::Decode(
            format!("column {column} is unexpectedly NULL").into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered_placeholders("SELECT '?' FROM t WHERE a = ? AND b IN (?, ?)"),
            "SELECT '?' FROM t WHERE a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(numbered_placeholders("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn sqlite_urls_follow_sqlalchemy() {
        let t = translate_url("sqlite:///inspector.db").unwrap();
        assert_eq!(t.backend, Backend::Sqlite);
        assert_eq!(t.url, "sqlite:inspector.db?mode=rwc");
        let t = translate_url("sqlite:////var/lib/inspector/x.db").unwrap();
        assert_eq!(t.url, "sqlite:/var/lib/inspector/x.db?mode=rwc");
        // SQLAlchemy reads a '?' as the start of the query; '#' and '%' are part of the path.
        let t = translate_url("sqlite:///dir/odd#1%.db?timeout=3").unwrap();
        assert_eq!(t.url, "sqlite:dir/odd%231%25.db?mode=rwc");
        for memory in ["sqlite://", "sqlite:///", "sqlite:///:memory:"] {
            let t = translate_url(memory).unwrap();
            assert!(t.in_memory, "{memory}");
        }
    }

    #[test]
    fn server_urls_drop_the_python_driver() {
        let t = translate_url("mysql+pymysql://u:p@127.0.0.1:3306/db?charset=utf8").unwrap();
        assert_eq!(t.backend, Backend::MySql);
        assert_eq!(t.url, "mysql://u:p@127.0.0.1:3306/db?charset=utf8");
        let t = translate_url("mysql://u:p@localhost/db?unix_socket=/run/m.sock").unwrap();
        assert_eq!(t.url, "mysql://u:p@localhost/db?socket=/run/m.sock");
        let t = translate_url("postgresql+psycopg2://u:p@h/db").unwrap();
        assert_eq!(t.backend, Backend::Postgres);
        assert_eq!(t.url, "postgres://u:p@h/db");
        assert_eq!(
            translate_url("postgresql://u@h:5432/db").unwrap().url,
            "postgres://u@h:5432/db"
        );
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        let err = translate_url("oracle://scott:tiger@h/db").err().unwrap();
        assert!(matches!(err, DbError::Config(_)));
        let msg = err.to_string();
        assert!(msg.contains("oracle"), "{msg}");
        assert!(!msg.contains("tiger"), "{msg}");
        assert!(matches!(
            translate_url("inspector.db"),
            Err(DbError::Config(_))
        ));
    }

    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact_url("mysql+pymysql://user:s3cr@t@db.example:3306/insp?charset=utf8"),
            "mysql+pymysql://user:***@db.example:3306/insp?charset=utf8"
        );
        assert_eq!(
            redact_url("postgresql://user@h/db"),
            "postgresql://user@h/db"
        );
        assert_eq!(redact_url("sqlite:////tmp/x.db"), "sqlite:////tmp/x.db");
        assert_eq!(redact_url("not a url"), "not a url");
        // Found by the property tests: a password holding '/', '?' or '#' was shown whole.
        assert_eq!(
            redact_url("mysql://u:pa/ss#w?rd@h/db"),
            "mysql://u:***@h/db"
        );
        assert_eq!(
            redact_url("postgresql://u@h:5432/db"),
            "postgresql://u@h:5432/db"
        );
    }

    #[tokio::test]
    async fn sqlite_file_is_created_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let db = Db::connect_url(&format!("sqlite:///{}", path.display()))
            .await
            .unwrap();
        assert!(path.exists());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(busy, 10_000);
        assert!(!db.table_exists("nodes").await.unwrap());
    }

    #[tokio::test]
    async fn in_memory_database_is_shared_by_the_pool() {
        let db = Db::connect_url("sqlite://").await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(db.pool())
            .await
            .unwrap();
        // A second query must see the same database, not a fresh one.
        assert!(db.table_exists("t").await.unwrap());
    }

    #[tokio::test]
    async fn check_schema_names_dbsync() {
        let db = Db::connect_url("sqlite://").await.unwrap();
        let err = db.check_schema().await.unwrap_err();
        assert!(matches!(err, DbError::Schema(_)));
        assert!(
            err.to_string().contains("ironic-inspector-dbsync upgrade"),
            "{err}"
        );
        migrate::upgrade(&db, "578f84f38d", |_| {}).await.unwrap();
        let err = db.check_schema().await.unwrap_err();
        assert!(err.to_string().contains("578f84f38d"), "{err}");
        migrate::upgrade(&db, "head", |_| {}).await.unwrap();
        db.check_schema().await.unwrap();
    }

    #[tokio::test]
    async fn retry_conflicts_runs_a_lost_transaction_again() {
        let runs = std::sync::atomic::AtomicU32::new(0);
        let attempt = || async {
            let n = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if n < 3 { Err("deadlock") } else { Ok(n) }
        };
        let outcome = retry_conflicts("test", |e: &&str| *e == "deadlock", attempt).await;
        assert_eq!(outcome, Ok(3));

        // It gives up after CONFLICT_ATTEMPTS runs, and never retries other errors.
        runs.store(0, std::sync::atomic::Ordering::SeqCst);
        let always = || async {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err::<(), _>("deadlock")
        };
        let outcome = retry_conflicts("test", |e: &&str| *e == "deadlock", always).await;
        assert_eq!(outcome, Err("deadlock"));
        assert_eq!(
            runs.load(std::sync::atomic::Ordering::SeqCst),
            CONFLICT_ATTEMPTS
        );
        runs.store(0, std::sync::atomic::Ordering::SeqCst);
        let other = || async {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err::<(), _>("syntax error")
        };
        let outcome = retry_conflicts("test", |e: &&str| *e == "deadlock", other).await;
        assert_eq!(outcome, Err("syntax error"));
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn connect_gives_up_after_max_retries() {
        let section = DatabaseSection {
            connection: Some("postgresql://u:pw@127.0.0.1:1/db".to_string().into()),
            sqlite_synchronous: true,
            max_retries: 1,
            retry_interval: 0,
            max_pool_size: None,
            idle_timeout: 3600,
            pool_timeout: Some(30),
        };
        let err = Db::connect(&section).await.unwrap_err();
        assert!(
            matches!(err, DbError::Connect { attempts: 2, .. }),
            "{err:?}"
        );
        assert_eq!(err.fault(), Fault::Unavailable);
        let text = err.to_string();
        assert!(text.contains("gave up after 2 attempts"), "{text}");
        assert!(text.contains("u:***@127.0.0.1:1"), "{text}");
        let missing = DatabaseSection {
            connection: None,
            ..section
        };
        assert!(matches!(
            Db::connect(&missing).await,
            Err(DbError::Config(_))
        ));
    }
}

#[cfg(test)]
mod url_properties {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::text;

    fn scheme() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "mysql",
            "mysql+pymysql",
            "postgresql",
            "postgresql+psycopg2",
            "sqlite",
            "oracle",
            "MySQL",
        ])
    }

    /// A password that appears nowhere else in the URL: any text around a marker.
    fn password() -> impl Strategy<Value = String> {
        (text(), text()).prop_map(|(a, b)| format!("{a}\u{1F511}{b}"))
    }

    /// What follows the `@`: host, port, database, query (no `@`).
    fn host_tail() -> impl Strategy<Value = String> {
        (
            "[a-z0-9.-]{0,12}",
            prop::option::of(0u16..),
            "(/[a-z0-9_./]{0,10})?",
            "(\\?[a-z_]{1,8}=[a-z0-9/]{0,8})?",
        )
            .prop_map(|(host, port, db, query)| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{host}{port}{db}{query}")
            })
    }

    proptest! {
        #[test]
        fn redacted_urls_never_hold_the_password(
            scheme in scheme(),
            user in "[a-z@._-]{0,8}",
            password in password(),
            tail in host_tail(),
            at_in_tail in any::<bool>(),
        ) {
            let tail = if at_in_tail { format!("{tail}?x=a@b") } else { tail };
            let url = format!("{scheme}://{user}:{password}@{tail}");
            let shown = redact_url(&url);
            prop_assert!(!shown.contains('\u{1F511}'), "{shown}");
            if !at_in_tail {
                prop_assert_eq!(shown, format!("{scheme}://{user}:***@{tail}"));
            }
            // Errors about the URL show it redacted.
            if let Err(err) = translate_url(&url) {
                prop_assert!(!err.to_string().contains('\u{1F511}'), "{err}");
            }
        }

        #[test]
        fn urls_without_a_password_are_shown_as_they_are(
            scheme in scheme(),
            user in prop::option::of("[a-z._-]{1,8}"),
            tail in host_tail(),
        ) {
            let url = match user {
                Some(user) => format!("{scheme}://{user}@{tail}"),
                None => format!("{scheme}://{tail}"),
            };
            prop_assert_eq!(redact_url(&url), url);
        }

        #[test]
        fn translation_never_panics(url in prop_oneof![text(), (scheme(), text()).prop_map(|(s, t)| format!("{s}://{t}"))]) {
            if let Ok(target) = translate_url(&url) {
                let expected = ["sqlite:", "postgres://", "mysql://"];
                prop_assert!(expected.iter().any(|p| target.url.starts_with(p)), "{}", target.url);
            }
            let _ = redact_url(&url);
        }

        #[test]
        fn sqlite_paths_keep_every_character(path in "[^?]{1,20}", absolute in any::<bool>()) {
            prop_assume!(path != ":memory:" && !path.starts_with('/'));
            let url = if absolute { format!("sqlite:////{path}") } else { format!("sqlite:///{path}") };
            let target = translate_url(&url).unwrap();
            prop_assert_eq!(target.backend, Backend::Sqlite);
            let encoded = target.url.strip_prefix("sqlite:").unwrap().strip_suffix("?mode=rwc").unwrap();
            let decoded = encoded.replace("%23", "#").replace("%25", "%");
            let expected = if absolute { format!("/{path}") } else { path.clone() };
            prop_assert_eq!(decoded, expected);
        }
    }
}
