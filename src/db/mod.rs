//! The SQL database: every table and every query of the program, over SQLite, PostgreSQL
//! and MySQL/MariaDB. This module is the handle ([`Db`]: connecting, the schema check that
//! keeps the daemon off a database `ironic-inspector-dbsync` has not migrated, closing),
//! the error type and the retry of transactions that lost a race; its parts are:
//!
//! - [`nodes`]: the `nodes`, `attributes` and `options` tables (the node cache's rows);
//! - [`rules`]: the `rules`, `rule_conditions` and `rule_actions` tables;
//! - [`migrate`]: the schema, in alembic's terms;
//! - `query`: how a statement runs (`args!`, [`Db::execute`], [`Db::begin`] and [`Tx`]);
//! - `dialect`: what differs between the backends' SQL ([`Backend`]);
//! - `columns`: reading columns the `Any` driver hands over differently per backend;
//! - `fault`: what a driver error means ([`classify`]);
//! - `url` and `pool`: `[database] connection` and the connection pool.
//!
//! Ports the engine set-up of `ironic_inspector/db.py` (the models live in `migrations/` as
//! SQL, see [`migrate`]). One implementation over sqlx's `Any` driver serves every backend:
//! queries are written once with `?` placeholders and rewritten for PostgreSQL. Nothing
//! here knows about HTTP or decides what a node's state means: that is
//! [`crate::node_cache`]'s and [`crate::rules`]'.
//!
//! The `Any` driver decodes only booleans, integers, floats, text and blobs. Columns of other
//! types (`DATETIME`, `TIMESTAMP`, SQLite's `BOOLEAN`) must be cast in the `SELECT`, and MySQL
//! hands `TEXT` columns over as blobs: read text through [`text_column`].

mod columns;
mod dialect;
mod fault;
pub mod migrate;
pub mod nodes;
mod pool;
mod query;
pub mod rules;
mod url;

pub use columns::{float_column, required_text_column, text_column};
pub use dialect::Backend;
pub use fault::{Fault, classify};
pub(crate) use query::args;
pub use query::{Args, Counts, Tx};
pub use url::redact_url;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::AnyPool;
use sqlx::any::AnyConnectOptions;

use crate::config::DatabaseSection;
use crate::retry::Backoff;
use pool::open_pool;
use url::{hide_password, translate_url};

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
        self.kind() == Some(sqlx::error::ErrorKind::UniqueViolation)
    }

    /// Whether this is the server refusing a row whose reference (foreign key) points at
    /// nothing, or a delete that would leave one pointing at nothing.
    pub fn is_foreign_key_violation(&self) -> bool {
        self.kind() == Some(sqlx::error::ErrorKind::ForeignKeyViolation)
    }

    /// The kind of constraint the server reported broken, if that is what this is.
    fn kind(&self) -> Option<sqlx::error::ErrorKind> {
        match self {
            DbError::Sql(sqlx::Error::Database(e)) => Some(e.kind()),
            _ => None,
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
    /// What went through [`Db`] and [`Tx`] since the pool opened; shared by clones.
    counts: Arc<query::Counters>,
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
                        counts: Arc::default(),
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
        self.backend.sql(query)
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
        let row = self
            .fetch_optional(self.backend.count_tables_named(), args![table])
            .await?;
        let count: i64 = match row {
            Some(row) => sqlx::Row::try_get(&row, 0)?,
            None => 0,
        };
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

#[cfg(test)]
mod tests {
    use super::*;

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
        for (error, attempts) in [("deadlock", CONFLICT_ATTEMPTS), ("syntax error", 1)] {
            runs.store(0, std::sync::atomic::Ordering::SeqCst);
            let always = || async {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err::<(), _>(error)
            };
            let outcome = retry_conflicts("test", |e: &&str| *e == "deadlock", always).await;
            assert_eq!(outcome, Err(error));
            assert_eq!(
                runs.load(std::sync::atomic::Ordering::SeqCst),
                attempts,
                "{error}"
            );
        }
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
