//! What differs between the SQL of the three backends, in one place: the placeholders,
//! how a write transaction starts, how a text timestamp is bound, how the catalogue is
//! asked for a table. Queries elsewhere are written once, with `?` placeholders, and go
//! through [`Backend::sql`] (the helpers of [`super::query`] do that for them).

use std::borrow::Cow;

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

    /// Rewrites a query written with `?` placeholders for this backend (`$1..$n` on
    /// PostgreSQL; unchanged elsewhere).
    pub fn sql(self, query: &str) -> Cow<'_, str> {
        match self {
            Backend::Postgres => Cow::Owned(numbered_placeholders(query)),
            Backend::Sqlite | Backend::MySql => Cow::Borrowed(query),
        }
    }

    /// The placeholder for a naive UTC datetime bound as text
    /// (`YYYY-MM-DD HH:MM:SS.ffffff`): PostgreSQL takes a text parameter into a `TIMESTAMP`
    /// column only with a cast.
    pub fn timestamp_placeholder(self) -> &'static str {
        match self {
            Backend::Postgres => "CAST(? AS TIMESTAMP)",
            Backend::Sqlite | Backend::MySql => "?",
        }
    }

    /// The statement that starts a write transaction, where it is not the driver's plain
    /// `BEGIN`. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so two writers
    /// queue on the busy timeout instead of one failing with "database is locked" when it
    /// upgrades a read lock.
    pub fn begin_write(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => Some("BEGIN IMMEDIATE"),
            Backend::Postgres | Backend::MySql => None,
        }
    }

    /// A query counting the tables of the connected database (schema) named by its one
    /// parameter.
    pub fn count_tables_named(self) -> &'static str {
        match self {
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
        }
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
    fn only_postgres_rewrites() {
        let q = "SELECT x FROM t WHERE a = ?";
        assert_eq!(Backend::Postgres.sql(q), "SELECT x FROM t WHERE a = $1");
        assert_eq!(Backend::Sqlite.sql(q), q);
        assert_eq!(Backend::MySql.sql(q), q);
    }
}
