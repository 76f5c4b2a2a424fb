//! Schema migrations, kept in alembic's terms so that our tool and upstream's can take turns
//! on one database.
//!
//! Ports `ironic_inspector/migrations/` (`env.py` and the two revisions of 2.2.x) and the
//! alembic commands that `ironic_inspector/dbsync.py` exposes. The DDL lives in
//! `migrations/<backend>/*.sql` (see `migrations/README.md`) and is embedded at build time.
//! Progress is the single row of `alembic_version`; no row (or no table) is "base".
//! This module runs migrations only when asked: the daemon merely checks the revision
//! ([`crate::db::Db::check_schema`]).

use sqlx::Executor;

use super::{Backend, Db, DbError, Tx, args};

/// One alembic revision: its identity and its DDL for each backend.
#[derive(Debug)]
pub struct Revision {
    /// The revision id, as upstream chose it.
    pub id: &'static str,
    /// The revision this one applies on top of; `None` for the first.
    pub down_revision: Option<&'static str>,
    /// Upstream's one-line title (typos included: it is part of the id's history).
    pub message: &'static str,
    /// When upstream created the revision (shown by `show`).
    pub create_date: &'static str,
    up: PerBackend,
    down: PerBackend,
}

/// SQL text for each backend.
#[derive(Debug)]
struct PerBackend {
    sqlite: &'static str,
    postgresql: &'static str,
    mysql: &'static str,
}

impl PerBackend {
    fn get(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgresql,
            Backend::MySql => self.mysql,
        }
    }
}

macro_rules! per_backend {
    ($file:literal) => {
        PerBackend {
            sqlite: include_str!(concat!("../../migrations/sqlite/", $file)),
            postgresql: include_str!(concat!("../../migrations/postgresql/", $file)),
            mysql: include_str!(concat!("../../migrations/mysql/", $file)),
        }
    };
}

/// Every revision, oldest first. The chain is linear: no branches.
pub static REVISIONS: [Revision; 2] = [
    Revision {
        id: "578f84f38d",
        down_revision: None,
        message: "inital_db_schema",
        create_date: "2015-09-15 14:52:22.448944",
        up: per_backend!("001_578f84f38d_inital_db_schema.up.sql"),
        down: per_backend!("001_578f84f38d_inital_db_schema.down.sql"),
    },
    Revision {
        id: "d588418040d",
        down_revision: Some("578f84f38d"),
        message: "Add Rules",
        create_date: "2015-09-21 14:31:03.048455",
        up: per_backend!("002_d588418040d_add_rules.up.sql"),
        down: per_backend!("002_d588418040d_add_rules.down.sql"),
    },
];

/// The newest revision: the schema this program reads and writes.
pub const HEAD: &str = "d588418040d";

static VERSION_TABLE: PerBackend = per_backend!("000_alembic_version.sql");

/// A point in the history: before the first revision, or after one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Point {
    /// No revision applied.
    Base,
    /// Index into [`REVISIONS`] of the last revision applied.
    At(usize),
}

impl Point {
    /// The revision id, or `None` at base.
    pub fn id(self) -> Option<&'static str> {
        match self {
            Point::Base => None,
            Point::At(i) => REVISIONS.get(i).map(|r| r.id),
        }
    }

    /// Where the history stands just before revision `i` is applied.
    fn before(i: usize) -> Point {
        match i {
            0 => Point::Base,
            _ => Point::At(i - 1),
        }
    }
}

/// One migration step that ran (or would run), for logging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Revision before the step (`None` = base).
    pub from: Option<&'static str>,
    /// Revision after the step (`None` = base).
    pub to: Option<&'static str>,
    /// Title of the revision that was applied or undone.
    pub message: &'static str,
    /// `true` for an upgrade step, `false` for a downgrade.
    pub up: bool,
}

impl std::fmt::Display for Step {
    /// Formats as alembic logs it: `Running upgrade 578f84f38d -> d588418040d, Add Rules`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.up { "upgrade" } else { "downgrade" };
        write!(
            f,
            "Running {verb} {} -> {}, {}",
            self.from.unwrap_or(""),
            self.to.unwrap_or(""),
            self.message
        )
    }
}

/// Resolves a revision argument: `head`/`heads`, `base`, a full id or an unambiguous prefix.
pub fn resolve(arg: &str) -> Result<Point, DbError> {
    let arg = arg.trim();
    match arg {
        "head" | "heads" => return Ok(Point::At(REVISIONS.len() - 1)),
        "base" => return Ok(Point::Base),
        _ => {}
    }
    let matches: Vec<usize> = REVISIONS
        .iter()
        .enumerate()
        .filter(|(_, r)| !arg.is_empty() && r.id.starts_with(arg))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => Ok(Point::At(*i)),
        [] => Err(DbError::Migration(format!(
            "Can't locate revision identified by '{arg}'"
        ))),
        _ => Err(DbError::Migration(format!(
            "Multiple revisions start with '{arg}'"
        ))),
    }
}

/// The revision recorded in the database, `None` at base (no table, or no row).
pub async fn current(db: &Db) -> Result<Option<String>, DbError> {
    if !db.table_exists("alembic_version").await? {
        return Ok(None);
    }
    let rows: Vec<String> = sqlx::query_scalar("SELECT version_num FROM alembic_version")
        .fetch_all(db.pool())
        .await?;
    match rows.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(DbError::Migration(format!(
            "the database records several revisions ({}); this history has no branches",
            many.join(", ")
        ))),
    }
}

/// Where the database stands in our history. A revision we do not know (for instance one
/// written by a newer Python inspector) is an error.
pub async fn current_point(db: &Db) -> Result<Point, DbError> {
    match current(db).await? {
        None => Ok(Point::Base),
        Some(rev) => REVISIONS
            .iter()
            .position(|r| r.id == rev)
            .map(Point::At)
            .ok_or_else(|| {
                DbError::Migration(format!(
                    "the database is at revision '{rev}', which this version does not know \
                     (it may come from a newer release)"
                ))
            }),
    }
}

/// Applies revisions up to `target` (`head` by default in the CLI). Each step runs in its
/// own transaction where the backend has transactional DDL, together with the update of
/// `alembic_version`, so a failed step leaves the previous revision in place. Already at or
/// past the target: nothing runs. `on_step` is called before each step.
pub async fn upgrade(
    db: &Db,
    target: &str,
    mut on_step: impl FnMut(&Step),
) -> Result<Vec<Step>, DbError> {
    let (from, target) = from_and_to(db, target, true).await?;
    let first = match from {
        Point::Base => 0,
        Point::At(i) => i + 1,
    };
    let last = match target {
        Point::Base => return Ok(Vec::new()),
        Point::At(i) => i,
    };
    let mut steps = Vec::new();
    for (i, rev) in REVISIONS.iter().enumerate().take(last + 1).skip(first) {
        let step = Step {
            from: rev.down_revision,
            to: Some(rev.id),
            message: rev.message,
            up: true,
        };
        on_step(&step);
        run_step(db, rev.up.get(db.backend()), Point::before(i), Point::At(i)).await?;
        steps.push(step);
    }
    Ok(steps)
}

/// Undoes revisions down to `target` (a revision id or `base`), newest first, each in its
/// own transaction where possible. Already at or below the target: nothing runs.
pub async fn downgrade(
    db: &Db,
    target: &str,
    mut on_step: impl FnMut(&Step),
) -> Result<Vec<Step>, DbError> {
    let (from, target) = from_and_to(db, target, false).await?;
    let mut steps = Vec::new();
    let mut at = from;
    while at > target {
        let Point::At(i) = at else { break };
        let Some(rev) = REVISIONS.get(i) else { break };
        let after = Point::before(i);
        let step = Step {
            from: Some(rev.id),
            to: rev.down_revision,
            message: rev.message,
            up: false,
        };
        on_step(&step);
        run_step(db, rev.down.get(db.backend()), at, after).await?;
        steps.push(step);
        at = after;
    }
    Ok(steps)
}

/// Where the database stands and where `target` is, for an upgrade (`up`) or a downgrade.
/// A target on the other side of the current revision is an error that names the command
/// to use instead.
async fn from_and_to(db: &Db, target: &str, up: bool) -> Result<(Point, Point), DbError> {
    let target = resolve(target)?;
    let from = current_point(db).await?;
    let (wrong_way, relation, instead) = if up {
        (target < from, "older", "downgrade")
    } else {
        (target > from, "newer", "upgrade")
    };
    if wrong_way {
        return Err(DbError::Migration(format!(
            "revision {} is {relation} than the current revision {}; use {instead}",
            target.id().unwrap_or("base"),
            from.id().unwrap_or("base")
        )));
    }
    Ok((from, target))
}

/// Records `target` as the current revision without running any DDL; `base` removes the
/// record. Creates `alembic_version` if needed, as alembic does.
pub async fn stamp(db: &Db, target: &str) -> Result<(), DbError> {
    let target = resolve(target)?;
    // A revision we do not know is replaced like any other, so no current_point() here.
    let existing = current(db).await?;
    let mut tx = begin_step(db).await?;
    execute_script(&mut tx, VERSION_TABLE.get(db.backend())).await?;
    tx.execute("DELETE FROM alembic_version", args![]).await?;
    if let Some(id) = target.id() {
        tx.execute(
            "INSERT INTO alembic_version (version_num) VALUES (?)",
            args![id],
        )
        .await?;
    }
    tx.commit().await?;
    tracing::debug!(from = ?existing, to = ?target.id(), "stamped the database");
    Ok(())
}

/// The history as alembic prints it, newest first:
/// `578f84f38d -> d588418040d (head), Add Rules`, then `<base> -> 578f84f38d, inital_db_schema`.
pub fn history() -> Vec<String> {
    REVISIONS
        .iter()
        .rev()
        .map(|r| {
            format!(
                "{} -> {}{}, {}",
                r.down_revision.unwrap_or("<base>"),
                r.id,
                head_marker(r.id),
                r.message
            )
        })
        .collect()
}

/// The heads, as alembic prints them: `d588418040d (head)`.
pub fn heads() -> Vec<String> {
    vec![format!("{HEAD} (head)")]
}

/// Branch points: none, the history is a straight line.
pub fn branches() -> Vec<String> {
    Vec::new()
}

/// How `current` prints a recorded revision: the id, plus ` (head)` at the head.
pub fn describe_current(rev: &str) -> String {
    format!("{rev}{}", head_marker(rev))
}

/// What `show` prints for one revision.
pub fn show(arg: &str) -> Result<String, DbError> {
    let Point::At(i) = resolve(arg)? else {
        return Err(DbError::Migration("base is not a revision".to_string()));
    };
    let Some(rev) = REVISIONS.get(i) else {
        return Err(DbError::Migration(format!(
            "Can't locate revision identified by '{arg}'"
        )));
    };
    let mut out = format!("Rev: {}{}\n", rev.id, head_marker(rev.id));
    out.push_str(&format!(
        "Parent: {}\n",
        rev.down_revision.unwrap_or("<base>")
    ));
    out.push_str(&format!("\n    {}\n\n", rev.message));
    out.push_str(&format!("    Revision ID: {}\n", rev.id));
    out.push_str(&format!(
        "    Revises: {}\n",
        rev.down_revision.unwrap_or("")
    ));
    out.push_str(&format!("    Create Date: {}\n", rev.create_date));
    Ok(out)
}

fn head_marker(id: &str) -> &'static str {
    if id == HEAD { " (head)" } else { "" }
}

/// A transaction for one step. On MySQL DDL commits implicitly, so the transaction only
/// covers the bookkeeping there; elsewhere it covers the whole step.
async fn begin_step(db: &Db) -> Result<Tx, DbError> {
    db.begin().await
}

/// Runs one revision's script and moves `alembic_version` from `before` to `after`.
async fn run_step(db: &Db, script: &str, before: Point, after: Point) -> Result<(), DbError> {
    let mut tx = begin_step(db).await?;
    execute_script(&mut tx, VERSION_TABLE.get(db.backend())).await?;
    execute_script(&mut tx, script).await?;
    match (before.id(), after.id()) {
        (None, Some(to)) => {
            tx.execute(
                "INSERT INTO alembic_version (version_num) VALUES (?)",
                args![to],
            )
            .await?;
        }
        (Some(from), Some(to)) => {
            tx.execute(
                "UPDATE alembic_version SET version_num = ? WHERE version_num = ?",
                args![to, from],
            )
            .await?;
        }
        (Some(_), None) => {
            tx.execute("DELETE FROM alembic_version", args![]).await?;
        }
        (None, None) => {}
    }
    tx.commit().await?;
    if !db.backend().transactional_ddl() {
        tracing::debug!("DDL on this backend commits implicitly; the step was not atomic");
    }
    Ok(())
}

/// Runs the statements of a migration file one by one (the drivers take one statement per
/// call). Our files keep comments on their own lines and end every statement with `;`.
async fn execute_script(tx: &mut Tx, script: &str) -> Result<(), DbError> {
    for statement in statements(script) {
        (&mut **tx).execute(statement.as_str()).await?;
    }
    Ok(())
}

fn statements(script: &str) -> Vec<String> {
    let without_comments: String = script
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_linear_and_ends_at_head() {
        assert_eq!(REVISIONS[0].down_revision, None);
        for pair in REVISIONS.windows(2) {
            assert_eq!(pair[1].down_revision, Some(pair[0].id));
        }
        assert_eq!(REVISIONS.last().map(|r| r.id), Some(HEAD));
    }

    #[test]
    fn every_script_splits_into_statements() {
        for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
            assert_eq!(statements(VERSION_TABLE.get(backend)).len(), 1);
            for rev in &REVISIONS {
                assert_eq!(statements(rev.up.get(backend)).len(), 3, "{}", rev.id);
                assert_eq!(statements(rev.down.get(backend)).len(), 3, "{}", rev.id);
            }
        }
    }

    #[test]
    fn revisions_resolve_like_alembic() {
        assert_eq!(resolve("head").unwrap(), Point::At(1));
        assert_eq!(resolve("base").unwrap(), Point::Base);
        assert_eq!(resolve("578f84f38d").unwrap(), Point::At(0));
        assert_eq!(resolve("d588").unwrap(), Point::At(1));
        let err = resolve("nope").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Can't locate revision identified by 'nope'"
        );
        assert!(resolve("").is_err());
    }

    #[test]
    fn listings_match_alembic_output() {
        assert_eq!(
            history(),
            vec![
                "578f84f38d -> d588418040d (head), Add Rules",
                "<base> -> 578f84f38d, inital_db_schema",
            ]
        );
        assert_eq!(heads(), vec!["d588418040d (head)"]);
        assert!(branches().is_empty());
        assert_eq!(describe_current(HEAD), "d588418040d (head)");
        assert_eq!(describe_current("578f84f38d"), "578f84f38d");
        let step = Step {
            from: Some("578f84f38d"),
            to: Some("d588418040d"),
            message: "Add Rules",
            up: true,
        };
        assert_eq!(
            step.to_string(),
            "Running upgrade 578f84f38d -> d588418040d, Add Rules"
        );
        assert!(show("d588418040d").unwrap().contains("Parent: 578f84f38d"));
    }

    async fn tables(db: &Db) -> Vec<String> {
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(db.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn upgrade_downgrade_and_stamp_round_trip() {
        let db = Db::connect_url("sqlite://").await.unwrap();
        assert_eq!(current(&db).await.unwrap(), None);

        let mut logged = Vec::new();
        let steps = upgrade(&db, "head", |s| logged.push(s.to_string()))
            .await
            .unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(
            logged,
            vec![
                "Running upgrade  -> 578f84f38d, inital_db_schema",
                "Running upgrade 578f84f38d -> d588418040d, Add Rules",
            ]
        );
        assert_eq!(current(&db).await.unwrap().as_deref(), Some(HEAD));
        assert_eq!(
            tables(&db).await,
            vec![
                "alembic_version",
                "attributes",
                "nodes",
                "options",
                "rule_actions",
                "rule_conditions",
                "rules"
            ]
        );
        // Idempotent.
        assert!(upgrade(&db, "head", |_| {}).await.unwrap().is_empty());
        assert!(upgrade(&db, "578f84f38d", |_| {}).await.is_err());

        let steps = downgrade(&db, "578f84f38d", |_| {}).await.unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(current(&db).await.unwrap().as_deref(), Some("578f84f38d"));
        assert_eq!(
            tables(&db).await,
            vec!["alembic_version", "attributes", "nodes", "options"]
        );
        downgrade(&db, "base", |_| {}).await.unwrap();
        assert_eq!(current(&db).await.unwrap(), None);
        assert_eq!(tables(&db).await, vec!["alembic_version"]);

        stamp(&db, "578f84f38d").await.unwrap();
        assert_eq!(current(&db).await.unwrap().as_deref(), Some("578f84f38d"));
        stamp(&db, "base").await.unwrap();
        assert_eq!(current(&db).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_failed_step_leaves_the_previous_revision() {
        let db = Db::connect_url("sqlite://").await.unwrap();
        upgrade(&db, "578f84f38d", |_| {}).await.unwrap();
        // A table in the way makes the second revision fail half-way.
        sqlx::query("CREATE TABLE rule_actions (x INTEGER)")
            .execute(db.pool())
            .await
            .unwrap();
        assert!(upgrade(&db, "head", |_| {}).await.is_err());
        assert_eq!(current(&db).await.unwrap().as_deref(), Some("578f84f38d"));
        assert!(!db.table_exists("rules").await.unwrap());
    }
}
