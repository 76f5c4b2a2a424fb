//! The rules-store contract, written once and run on SQLite, and on PostgreSQL and MySQL
//! when their service variables are set: what `rules::create` writes reads back identically,
//! `created_at` is a real datetime in each backend, listing is by creation time then UUID,
//! a taken UUID is a 409, and deletes take the children with them.

use ironic_inspector::Error;
use ironic_inspector::db::Db;
use ironic_inspector::db::migrate;
use ironic_inspector::db::rules as store;
use ironic_inspector::rules::{self, Multiple, NewRule};
use serde_json::{Value, json};

use crate::helpers::{TestDb, service_var};

const U1: &str = "7b0f2cb8-5b5a-4b2b-9f52-3c9a1d2e0c01";
const U2: &str = "0a1f2cb8-5b5a-4b2b-9f52-3c9a1d2e0c02";
const U3: &str = "ffff2cb8-5b5a-4b2b-9f52-3c9a1d2e0c03";

const PG_VAR: &str = "INSPECTOR_TEST_POSTGRES_URL";
const MYSQL_VAR: &str = "INSPECTOR_TEST_MYSQL_URL";

fn new_rule(uuid: &str, conditions: Value, actions: Value) -> NewRule {
    NewRule {
        uuid: Some(uuid.to_string()),
        description: Some("contract rule é".to_string()),
        conditions,
        actions,
    }
}

async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Migrates the database with our library code and runs every case on it.
pub async fn run(test_db: &TestDb) {
    let db = test_db.connect().await;
    migrate::upgrade(&db, "head", |_| {}).await.unwrap();
    round_trip(&db).await;
    rules::delete_all(&db).await.unwrap();
    ordering(&db).await;
    rules::delete_all(&db).await.unwrap();
    deletes(&db).await;
    db.close().await;
}

async fn round_trip(db: &Db) {
    let conditions = json!([
        {"op": "eq", "field": "memory_mb", "value": 1024, "multiple": "all"},
        {"op": "in-net", "field": "interfaces.eth0.ip", "value": "192.0.2.0/24"},
        {"op": "lt", "field": "inventory.disks[*].size", "value": 1.5, "unused": null},
    ]);
    let actions = json!([
        {"action": "set-capability", "name": "boot_mode", "value": "uefi 😀"},
        {"action": "extend-attribute", "path": "/extra/tags", "value": {"a": [1, null]}, "unique": true},
    ]);
    let created = rules::create(db, new_rule(U1, conditions.clone(), actions.clone()))
        .await
        .unwrap();
    let fetched = rules::get(db, U1).await.unwrap();
    assert_eq!(fetched, created);
    assert_eq!(
        fetched.multiple,
        vec![Multiple::All, Multiple::Any, Multiple::Any]
    );
    // Read back as posted, `multiple` included.
    let shown = conditions;
    assert_eq!(
        fetched.as_json(false),
        json!({
            "uuid": U1,
            "description": "contract rule é",
            "conditions": shown,
            "actions": actions,
        })
    );

    match rules::create(db, new_rule(U1, json!([]), json!([{"action": "example"}]))).await {
        Err(Error::Conflict(msg)) => assert_eq!(msg, format!("Rule with UUID {U1} already exists")),
        other => panic!("expected a 409, got {other:?}"),
    }
    assert_eq!(count(db, "rules").await, 1);
    assert_eq!(count(db, "rule_conditions").await, 3);
    assert_eq!(count(db, "rule_actions").await, 2);

    // Upstream's row shapes: disabled false, a datetime that the backend compares as one.
    let q = db.sql("SELECT COUNT(*) FROM rules WHERE disabled = ?");
    let not_disabled: i64 = sqlx::query_scalar(&q)
        .bind(false)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(not_disabled, 1);
    let recent: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM rules WHERE created_at > '2020-01-01 00:00:00'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(recent, 1);
}

async fn ordering(db: &Db) {
    // Whole seconds apart: MySQL's DATETIME keeps no fraction (as with SQLAlchemy).
    for (uuid, at) in [
        (U3, "2015-10-16 12:53:21.000000"),
        (U1, "2015-10-16 12:53:22.000000"),
        (U2, "2015-10-16 12:53:22.000000"),
    ] {
        let row = store::RuleRow {
            uuid: uuid.to_string(),
            description: None,
            conditions: Vec::new(),
            actions: vec![store::ActionRow {
                action: "example".to_string(),
                params: serde_json::Map::new(),
            }],
        };
        store::insert_at(db, &row, at).await.unwrap();
    }
    let uuids: Vec<String> = rules::get_all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uuid)
        .collect();
    assert_eq!(uuids, vec![U3, U2, U1]);
    let in_2015: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM rules WHERE created_at BETWEEN '2015-10-16 12:53:21' \
         AND '2015-10-16 12:53:23'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(in_2015, 3);
}

async fn deletes(db: &Db) {
    let conds = json!([{"op": "eq", "field": "cpus", "value": 4}]);
    let acts = json!([{"action": "fail", "message": "x"}]);
    for uuid in [U1, U2] {
        rules::create(db, new_rule(uuid, conds.clone(), acts.clone()))
            .await
            .unwrap();
    }
    rules::delete(db, U1).await.unwrap();
    assert!(matches!(rules::get(db, U1).await, Err(Error::NotFound(_))));
    assert!(matches!(
        rules::delete(db, U1).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(count(db, "rule_conditions").await, 1);
    assert_eq!(count(db, "rule_actions").await, 1);
    rules::delete_all(db).await.unwrap();
    for table in ["rules", "rule_conditions", "rule_actions"] {
        assert_eq!(count(db, table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn rules_contract_on_sqlite() {
    let db = TestDb::sqlite();
    run(&db).await;
}

#[tokio::test]
async fn rules_contract_on_postgres() {
    let Some(url) = service_var(PG_VAR, "PostgreSQL rules contract") else {
        return;
    };
    let db = TestDb::on_server(&url).await;
    run(&db).await;
    db.drop_db().await;
}

#[tokio::test]
async fn rules_contract_on_mysql() {
    let Some(url) = service_var(MYSQL_VAR, "MySQL rules contract") else {
        return;
    };
    let db = TestDb::on_server(&url).await;
    run(&db).await;
    db.drop_db().await;
}
