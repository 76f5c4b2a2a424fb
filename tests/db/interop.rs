//! Interoperability with the Python ironic-inspector (PyPI 12.5.0, installed by
//! scripts/services/python-inspector.sh): a database made by either tool is accepted and
//! carried on by the other, and both write the same schema.

use ironic_inspector::db::{Backend, Db, required_text_column};
use ironic_inspector::node_cache::NodeCache;

use crate::contract;
use crate::helpers::{HEAD_TABLES, TestDb, database_config, dbsync, ours, service_var};

const PY_VAR: &str = "INSPECTOR_TEST_PY_DBSYNC";
/// The Python tool's head: later revisions than ours exist there.
const PY_HEAD: &str = "b55109d5063a";

fn python() -> Option<String> {
    service_var(
        PY_VAR,
        "interoperability with the Python ironic-inspector-dbsync",
    )
}

/// A database made by the Python tool at our head is ours too.
async fn python_made_database_is_accepted(py: &str, db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let conf = database_config(dir.path(), &db.url);
    dbsync(py, &conf, &["upgrade", "--revision", "d588418040d"])
        .await
        .ok();

    assert_eq!(ours(&conf, &["current"]).await.ok(), "d588418040d (head)\n");
    let run = ours(&conf, &["upgrade"]).await;
    assert!(run.steps().is_empty(), "{}", run.stderr);
    run.ok();

    let handle = db.connect().await;
    handle.check_schema().await.unwrap();
    contract::run_on(&NodeCache::new(handle.clone())).await;
    handle.close().await;
}

/// A database made by our tool is recognised by the Python tool, which can upgrade it to its
/// own (later) head.
async fn ours_is_accepted_by_python(py: &str, db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let conf = database_config(dir.path(), &db.url);
    ours(&conf, &["upgrade"]).await.ok();
    // Some data, so the Python migrations run over real rows.
    let handle = db.connect().await;
    let cache = NodeCache::new(handle.clone());
    cache
        .add_node("0b5ae9c4-4f2b-4dd7-9d4f-2c6c0e0f9d01", Some("1.2.3.4"))
        .await
        .unwrap();
    cache
        .set_option(
            "0b5ae9c4-4f2b-4dd7-9d4f-2c6c0e0f9d01",
            "x",
            &serde_json::json!([1]),
        )
        .await
        .unwrap();
    handle.close().await;

    let current = dbsync(py, &conf, &["current"]).await.ok();
    assert_eq!(current.trim(), "d588418040d");
    dbsync(py, &conf, &["upgrade"]).await.ok();
    let current = dbsync(py, &conf, &["current"]).await.ok();
    assert_eq!(current.trim(), format!("{PY_HEAD} (head)"));

    // And we now refuse it, clearly, instead of misreading a newer schema.
    let run = ours(&conf, &["current"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains(PY_HEAD), "{}", run.stderr);
}

/// A backend-specific description of the schema, equal for equal schemas.
async fn schema(db: &Db) -> Vec<String> {
    let mut out = Vec::new();
    match db.backend() {
        Backend::Sqlite => {
            let rows = sqlx::query(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name",
            )
            .fetch_all(db.pool())
            .await
            .unwrap();
            for row in &rows {
                let sql = required_text_column(row, "sql").unwrap();
                out.push(sql.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
        Backend::Postgres => {
            let rows = sqlx::query(
                "SELECT CAST(table_name AS TEXT) || '.' || CAST(column_name AS TEXT) || ' ' || \
                 CAST(data_type AS TEXT) || ' ' || CAST(is_nullable AS TEXT) || ' ' || \
                 COALESCE(CAST(character_maximum_length AS TEXT), '-') || ' ' || \
                 COALESCE(CAST(column_default AS TEXT), '-') AS d \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 ORDER BY 1",
            )
            .fetch_all(db.pool())
            .await
            .unwrap();
            for row in &rows {
                out.push(required_text_column(row, "d").unwrap());
            }
            let rows = sqlx::query(
                "SELECT CAST(conrelid::regclass AS TEXT) || ' ' || CAST(conname AS TEXT) || ' ' || \
                 pg_get_constraintdef(oid) AS d FROM pg_constraint \
                 WHERE connamespace = CAST(current_schema() AS regnamespace) ORDER BY 1",
            )
            .fetch_all(db.pool())
            .await
            .unwrap();
            for row in &rows {
                out.push(required_text_column(row, "d").unwrap());
            }
        }
        Backend::MySql => {
            for table in HEAD_TABLES {
                let row = sqlx::query(&format!("SHOW CREATE TABLE {table}"))
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
                out.push(required_text_column(&row, "Create Table").unwrap());
            }
        }
    }
    out
}

/// Both tools write the same schema. The one known difference: on SQLite, SQLAlchemy 2
/// no longer emits the CHECK for booleans that the 2.2-era SQLAlchemy did (and we do).
async fn same_schema(py: &str, ours_db: &TestDb, py_db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    ours(&database_config(dir.path(), &ours_db.url), &["upgrade"])
        .await
        .ok();
    dbsync(
        py,
        &database_config(dir.path(), &py_db.url),
        &["upgrade", "--revision", "d588418040d"],
    )
    .await
    .ok();
    let (a, b) = (ours_db.connect().await, py_db.connect().await);
    let ours_schema: Vec<String> = schema(&a)
        .await
        .into_iter()
        .map(|s| s.replace(", CHECK (disabled IN (0, 1))", ""))
        .collect();
    let py_schema = schema(&b).await;
    assert_eq!(ours_schema, py_schema);
    assert!(!ours_schema.is_empty());
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_python_made_database_is_accepted() {
    let Some(py) = python() else { return };
    python_made_database_is_accepted(&py, &TestDb::sqlite()).await;
}

#[tokio::test]
async fn sqlite_ours_is_accepted_by_python() {
    let Some(py) = python() else { return };
    ours_is_accepted_by_python(&py, &TestDb::sqlite()).await;
}

#[tokio::test]
async fn sqlite_same_schema_as_python() {
    let Some(py) = python() else { return };
    same_schema(&py, &TestDb::sqlite(), &TestDb::sqlite()).await;
}

/// The three interop checks on a server backend, when both it and Python are available.
async fn on_server(var: &str, what: &str) {
    let Some(py) = python() else { return };
    let Some(url) = service_var(var, what) else {
        return;
    };
    let db = TestDb::on_server(&url).await;
    python_made_database_is_accepted(&py, &db).await;
    db.drop_db().await;
    let db = TestDb::on_server(&url).await;
    ours_is_accepted_by_python(&py, &db).await;
    db.drop_db().await;
    let (a, b) = (TestDb::on_server(&url).await, TestDb::on_server(&url).await);
    same_schema(&py, &a, &b).await;
    a.drop_db().await;
    b.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_interop_with_python() {
    on_server("INSPECTOR_TEST_POSTGRES_URL", "PostgreSQL interoperability").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_interop_with_python() {
    on_server("INSPECTOR_TEST_MYSQL_URL", "MySQL interoperability").await;
}
