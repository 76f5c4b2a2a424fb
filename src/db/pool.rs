//! The connection pool: its size and timeouts from `[database]`, and what every new
//! connection is set up with (SQLite's busy timeout, WAL and synchronous mode; MySQL's
//! isolation level).

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

use super::Backend;
use super::url::Target;
use crate::config::DatabaseSection;

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

/// Opens the pool and proves it works with one connection.
///
/// The pool retries a refused connection (and PostgreSQL's "starting up" and "too many
/// connections") by itself until its acquire timeout, silently. So a server is first tried
/// with one plain connection, which fails at once: [`Db::connect`] then decides, and logs,
/// whether to try again.
pub(super) async fn open_pool(
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

#[cfg(test)]
mod tests {
    use crate::db::Db;

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
}
