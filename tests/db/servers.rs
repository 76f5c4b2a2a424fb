//! The node-cache contract and our migrations on PostgreSQL and MySQL/MariaDB, when the
//! test servers are running (scripts/services/postgres.sh, mysql.sh).

use crate::contract;
use crate::helpers::{HEAD_TABLES, TestDb, database_config, ours, tables};

const PG_VAR: &str = "INSPECTOR_TEST_POSTGRES_URL";
const MYSQL_VAR: &str = "INSPECTOR_TEST_MYSQL_URL";

async fn migrations_round_trip(base_url: &str) {
    let db = TestDb::on_server(base_url).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = database_config(dir.path(), &db.url);
    let run = ours(&conf, &["upgrade"]).await;
    assert_eq!(run.steps().len(), 2, "{}", run.stderr);
    run.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "d588418040d (head)\n");
    let handle = db.connect().await;
    assert_eq!(tables(&handle).await, HEAD_TABLES);
    assert!(ours(&conf, &["upgrade"]).await.steps().is_empty());
    ours(&conf, &["downgrade", "--revision", "578f84f38d"])
        .await
        .ok();
    assert_eq!(
        tables(&handle).await,
        ["alembic_version", "attributes", "nodes", "options"]
    );
    ours(&conf, &["downgrade", "--revision", "base"]).await.ok();
    assert_eq!(tables(&handle).await, ["alembic_version"]);
    ours(&conf, &["stamp", "--revision", "578f84f38d"])
        .await
        .ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "578f84f38d\n");
    handle.close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_postgres() {
    let Some(url) = crate::helpers::service_var(PG_VAR, "PostgreSQL node-cache contract") else {
        return;
    };
    let db = TestDb::on_server(&url).await;
    contract::run(&db).await;
    db.drop_db().await;
}

#[tokio::test]
async fn migrations_on_postgres() {
    let Some(url) = crate::helpers::service_var(PG_VAR, "PostgreSQL migrations") else {
        return;
    };
    migrations_round_trip(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_mysql() {
    let Some(url) = crate::helpers::service_var(MYSQL_VAR, "MySQL node-cache contract") else {
        return;
    };
    let db = TestDb::on_server(&url).await;
    contract::run(&db).await;
    db.drop_db().await;
}

#[tokio::test]
async fn migrations_on_mysql() {
    let Some(url) = crate::helpers::service_var(MYSQL_VAR, "MySQL migrations") else {
        return;
    };
    migrations_round_trip(&url).await;
}
