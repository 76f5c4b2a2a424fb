//! How a statement runs, written once: its text uses `?` placeholders and is rewritten for
//! the backend ([`super::Backend::sql`]), its values are bound in order ([`args!`]), it
//! runs on the pool ([`Db::execute`], [`Db::fetch_all`], [`Db::fetch_optional`]) or inside
//! a write transaction ([`Tx`], the same three), and the driver's failure comes back as a
//! [`DbError`].

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::error::BoxDynError;
use sqlx::{Any, AnyConnection, Arguments, Encode, Executor, Transaction, Type};

use super::{Backend, Db, DbError};

/// The values for a statement's `?` placeholders, in order. `args!` builds one.
pub struct Args<'q> {
    values: AnyArguments<'q>,
    /// The first value the driver could not encode; the statement then fails with it.
    error: Option<BoxDynError>,
}

impl<'q> Args<'q> {
    /// No values.
    pub fn new() -> Self {
        Args {
            values: AnyArguments::default(),
            error: None,
        }
    }

    /// Adds the value for the next placeholder.
    pub fn bind<T>(mut self, value: T) -> Self
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        if self.error.is_none()
            && let Err(err) = self.values.add(value)
        {
            self.error = Some(err);
        }
        self
    }

    /// The values, or the driver's refusal of one of them.
    fn into_arguments(self) -> Result<AnyArguments<'q>, DbError> {
        match self.error {
            None => Ok(self.values),
            Some(err) => Err(DbError::Sql(sqlx::Error::Encode(err))),
        }
    }
}

impl Default for Args<'_> {
    fn default() -> Self {
        Args::new()
    }
}

/// The values for a statement's placeholders: `args![uuid, started_at]`.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        $crate::db::Args::new()$(.bind($value))*
    };
}
pub(crate) use args;

/// How much work a [`Db`] handle (and its clones) gave the database: statements run
/// through [`Db`] and [`Tx`], and write transactions begun (each adds its `BEGIN` and
/// `COMMIT` or rollback round trips). For tests that pin a workflow's cost, and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Statements run (queries and writes), transactions' `BEGIN`/`COMMIT` not included.
    pub statements: u64,
    /// Write transactions begun.
    pub transactions: u64,
}

/// The counters behind [`Counts`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    statements: AtomicU64,
    transactions: AtomicU64,
}

impl Counters {
    fn statement(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }
}

impl Db {
    /// Runs a statement on the pool; returns how many rows it changed.
    pub async fn execute(&self, sql: &str, args: Args<'_>) -> Result<u64, DbError> {
        self.counts.statement();
        execute(self.backend(), self.pool(), sql, args).await
    }

    /// Runs a query on the pool; returns every row.
    pub async fn fetch_all(&self, sql: &str, args: Args<'_>) -> Result<Vec<AnyRow>, DbError> {
        self.counts.statement();
        fetch_all(self.backend(), self.pool(), sql, args).await
    }

    /// Runs a query on the pool; returns its first row, if any.
    pub async fn fetch_optional(
        &self,
        sql: &str,
        args: Args<'_>,
    ) -> Result<Option<AnyRow>, DbError> {
        self.counts.statement();
        fetch_optional(self.backend(), self.pool(), sql, args).await
    }

    /// Starts a transaction that will write ([`super::Backend::begin_write`]). Dropped
    /// without [`Tx::commit`], it rolls back.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        self.counts.transactions.fetch_add(1, Ordering::Relaxed);
        let inner = match self.backend().begin_write() {
            Some(statement) => self.pool().begin_with(statement).await?,
            None => self.pool().begin().await?,
        };
        Ok(Tx {
            inner,
            backend: self.backend(),
            counts: self.counts.clone(),
        })
    }

    /// The work done through this handle and its clones so far.
    pub fn counts(&self) -> Counts {
        Counts {
            statements: self.counts.statements.load(Ordering::Relaxed),
            transactions: self.counts.transactions.load(Ordering::Relaxed),
        }
    }
}

/// A write transaction from [`Db::begin`]. It dereferences to the connection, for
/// statements that take no values (scripts).
#[derive(Debug)]
pub struct Tx {
    inner: Transaction<'static, Any>,
    backend: Backend,
    counts: Arc<Counters>,
}

impl Tx {
    /// Runs a statement in the transaction; returns how many rows it changed.
    pub async fn execute(&mut self, sql: &str, args: Args<'_>) -> Result<u64, DbError> {
        self.counts.statement();
        execute(self.backend, &mut *self.inner, sql, args).await
    }

    /// Runs a query in the transaction; returns every row.
    pub async fn fetch_all(&mut self, sql: &str, args: Args<'_>) -> Result<Vec<AnyRow>, DbError> {
        self.counts.statement();
        fetch_all(self.backend, &mut *self.inner, sql, args).await
    }

    /// Runs a query in the transaction; returns its first row, if any.
    pub async fn fetch_optional(
        &mut self,
        sql: &str,
        args: Args<'_>,
    ) -> Result<Option<AnyRow>, DbError> {
        self.counts.statement();
        fetch_optional(self.backend, &mut *self.inner, sql, args).await
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), DbError> {
        Ok(self.inner.commit().await?)
    }

    /// Rolls back now rather than when dropped.
    pub async fn rollback(self) -> Result<(), DbError> {
        Ok(self.inner.rollback().await?)
    }
}

impl Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

async fn execute<'c>(
    backend: Backend,
    on: impl Executor<'c, Database = Any>,
    sql: &str,
    args: Args<'_>,
) -> Result<u64, DbError> {
    let sql = backend.sql(sql);
    let done = sqlx::query_with(&sql, args.into_arguments()?)
        .execute(on)
        .await?;
    Ok(done.rows_affected())
}

async fn fetch_all<'c>(
    backend: Backend,
    on: impl Executor<'c, Database = Any>,
    sql: &str,
    args: Args<'_>,
) -> Result<Vec<AnyRow>, DbError> {
    let sql = backend.sql(sql);
    Ok(sqlx::query_with(&sql, args.into_arguments()?)
        .fetch_all(on)
        .await?)
}

async fn fetch_optional<'c>(
    backend: Backend,
    on: impl Executor<'c, Database = Any>,
    sql: &str,
    args: Args<'_>,
) -> Result<Option<AnyRow>, DbError> {
    let sql = backend.sql(sql);
    Ok(sqlx::query_with(&sql, args.into_arguments()?)
        .fetch_optional(on)
        .await?)
}
