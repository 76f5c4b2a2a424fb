//! The node-cache contract, written once and run on every backend. Timestamps are compared
//! with a tolerance: MySQL's FLOAT columns are single precision (upstream's schema), which
//! rounds current Unix times to tens of seconds. Times picked by the tests stay below 2^24 so
//! they are exact everywhere.

use std::collections::HashSet;

use ironic_inspector::Error;
use ironic_inspector::db::migrate;
use ironic_inspector::node_cache::NodeCache;
use serde_json::json;

use crate::helpers::TestDb;

const U1: &str = "0b5ae9c4-4f2b-4dd7-9d4f-2c6c0e0f9d01";
const U2: &str = "1c6bf0d5-5a3c-4ee8-8e5a-3d7d1f1a0e02";
/// Largest rounding of a current Unix time in a single-precision float, and then some.
const FLOAT_SLACK: f64 = 300.0;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Empties the cache tables between cases.
async fn reset(cache: &NodeCache) {
    for table in ["attributes", "options", "nodes"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(cache.db().pool())
            .await
            .unwrap();
    }
}

async fn set_times(cache: &NodeCache, uuid: &str, started: f64, finished: Option<f64>) {
    let q = cache
        .db()
        .sql("UPDATE nodes SET started_at = ?, finished_at = ? WHERE uuid = ?");
    sqlx::query(&q)
        .bind(started)
        .bind(finished)
        .bind(uuid)
        .execute(cache.db().pool())
        .await
        .unwrap();
}

/// Migrates the database with our dbsync's library code and runs every case on it.
pub async fn run(db: &TestDb) {
    let handle = db.connect().await;
    migrate::upgrade(&handle, "head", |_| {}).await.unwrap();
    handle.check_schema().await.unwrap();
    let cache = NodeCache::new(handle.clone());
    run_on(&cache).await;
    handle.close().await;
}

/// Every case, on a migrated database.
pub async fn run_on(cache: &NodeCache) {
    add_and_get(cache).await;
    reset(cache).await;
    conflicts_roll_back(cache).await;
    reset(cache).await;
    lookup(cache).await;
    reset(cache).await;
    options_and_finish(cache).await;
    reset(cache).await;
    clean_up(cache).await;
    reset(cache).await;
    forget(cache).await;
    reset(cache).await;
    concurrent_writers(cache).await;
    reset(cache).await;
}

async fn add_and_get(cache: &NodeCache) {
    let before = now();
    let node = cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
    let got = cache.get_node(U1).await.unwrap();
    assert_eq!(got.uuid, U1);
    assert!((got.started_at - before).abs() < FLOAT_SLACK, "{got:?}");
    assert!((got.started_at - node.started_at).abs() < FLOAT_SLACK);
    assert_eq!(got.finished_at, None);
    assert_eq!(got.error, None);
    assert_eq!(
        cache.attributes(U1).await.unwrap().get("bmc_address"),
        Some(&strings(&["1.2.3.4"]))
    );
    let err = cache.get_node(U2).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Could not find node {U2} in cache")
    );
    // Re-adding starts over.
    cache
        .add_attribute(U1, "mac", &strings(&["AA:BB:CC:DD:EE:FF"]))
        .await
        .unwrap();
    cache.add_node(U1, None).await.unwrap();
    assert!(cache.attributes(U1).await.unwrap().is_empty());
}

async fn conflicts_roll_back(cache: &NodeCache) {
    cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
    let err = cache.add_node(U2, Some("1.2.3.4")).await.unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Some or all of bmc_address's ['1.2.3.4'] are already on introspection"
    );
    // The whole transaction went, including the new node row.
    assert!(matches!(cache.get_node(U2).await, Err(Error::NotFound(_))));
    assert_eq!(
        cache.node_uuids().await.unwrap(),
        HashSet::from([U1.to_string()])
    );

    cache.add_node(U2, None).await.unwrap();
    cache
        .add_attribute(U1, "mac", &strings(&["11:22:33:44:55:66"]))
        .await
        .unwrap();
    let err = cache
        .add_attribute(
            U2,
            "mac",
            &strings(&["aa:aa:aa:aa:aa:aa", "11:22:33:44:55:66"]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Some or all of mac's ['aa:aa:aa:aa:aa:aa', '11:22:33:44:55:66'] are already on \
         introspection"
    );
    assert!(cache.attributes(U2).await.unwrap().is_empty());
}

async fn lookup(cache: &NodeCache) {
    cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
    cache
        .add_attribute(U1, "mac", &strings(&["11:22:33:44:55:66"]))
        .await
        .unwrap();
    cache.add_node(U2, None).await.unwrap();
    cache
        .add_attribute(U2, "mac", &strings(&["66:55:44:33:22:11"]))
        .await
        .unwrap();

    assert_eq!(
        cache.find_node(Some("1.2.3.4"), &[]).await.unwrap().uuid,
        U1
    );
    let both = cache
        .find_node(Some("1.2.3.4"), &strings(&["11:22:33:44:55:66"]))
        .await
        .unwrap();
    assert_eq!(both.uuid, U1);
    assert_eq!(
        cache
            .find_node(None, &strings(&["66:55:44:33:22:11"]))
            .await
            .unwrap()
            .uuid,
        U2
    );
    assert_eq!(
        cache
            .find_node(
                None,
                &strings(&["11:22:33:44:55:66".to_uppercase().as_str()])
            )
            .await
            .unwrap()
            .uuid,
        U1
    );
    let err = cache
        .find_node(Some("1.2.3.4"), &strings(&["66:55:44:33:22:11"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    assert!(
        err.to_string().starts_with("Multiple matching nodes found"),
        "{err}"
    );
    let err = cache
        .find_node(Some("9.9.9.9"), &strings(&["' OR '1'='1"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingNode(_)));
    assert!(
        err.to_string()
            .starts_with("Could not find a node for attributes"),
        "{err}"
    );

    assert_eq!(
        cache.active_macs().await.unwrap(),
        HashSet::from([
            "11:22:33:44:55:66".parse().unwrap(),
            "66:55:44:33:22:11".parse().unwrap()
        ])
    );

    // Finished: attributes are gone, so a stale attribute row is what still points at it.
    cache.finished(U2, None).await.unwrap();
    assert_eq!(
        cache.active_macs().await.unwrap(),
        HashSet::from(["11:22:33:44:55:66".parse().unwrap()])
    );
    set_times(cache, U2, 1000.0, Some(2000.0)).await;
    cache
        .add_attribute(U2, "mac", &strings(&["66:55:44:33:22:11"]))
        .await
        .unwrap();
    let err = cache
        .find_node(None, &strings(&["66:55:44:33:22:11"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("Introspection for node {U2} already finished on 2000.0")
    );
}

async fn options_and_finish(cache: &NodeCache) {
    cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
    cache
        .set_option(U1, "new_ipmi_credentials", &json!(null))
        .await
        .unwrap();
    cache
        .set_option(U1, "creds", &json!(["u", "p"]))
        .await
        .unwrap();
    cache
        .set_option(U1, "creds", &json!(["u2", "p2"]))
        .await
        .unwrap();
    let options = cache.options(U1).await.unwrap();
    assert_eq!(options.len(), 2);
    assert_eq!(options["new_ipmi_credentials"], json!(null));
    assert_eq!(options["creds"], json!(["u2", "p2"]));

    let at = cache.finished(U1, Some("boom")).await.unwrap();
    let node = cache.get_node(U1).await.unwrap();
    let finished_at = node.finished_at.unwrap();
    assert!((finished_at - at).abs() < FLOAT_SLACK);
    assert_eq!(node.error.as_deref(), Some("boom"));
    assert!(cache.options(U1).await.unwrap().is_empty());
    assert!(cache.attributes(U1).await.unwrap().is_empty());
    // The BMC address is free for another node now.
    cache.add_node(U2, Some("1.2.3.4")).await.unwrap();
}

async fn clean_up(cache: &NodeCache) {
    let now = 1_000_000.0;
    cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
    cache.set_option(U1, "x", &json!(1)).await.unwrap();
    set_times(cache, U1, now - 100.0, None).await;
    cache.add_node(U2, Some("5.6.7.8")).await.unwrap();
    set_times(cache, U2, now - 10.0, None).await;

    assert_eq!(
        cache.clean_up(now, 60, 1000).await.unwrap(),
        vec![U1.to_string()]
    );
    let node = cache.get_node(U1).await.unwrap();
    assert_eq!(node.finished_at, Some(now));
    assert_eq!(node.error.as_deref(), Some("Introspection timeout"));
    assert!(cache.attributes(U1).await.unwrap().is_empty());
    assert!(cache.options(U1).await.unwrap().is_empty());
    // The young one is untouched, and there is nothing more to do the second time.
    assert_eq!(cache.get_node(U2).await.unwrap().finished_at, None);
    assert_eq!(cache.attributes(U2).await.unwrap().len(), 1);
    assert!(cache.clean_up(now, 60, 1000).await.unwrap().is_empty());

    // Past the keep time the finished record goes; timeouts off (0) still purge.
    assert!(
        cache
            .clean_up(now + 2000.0, 0, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(cache.get_node(U1).await, Err(Error::NotFound(_))));
    assert_eq!(cache.get_node(U2).await.unwrap().finished_at, None);
    // A running node older than any timeout is left alone when timeouts are off.
    cache.add_node(U1, None).await.unwrap();
    set_times(cache, U1, 0.0, None).await;
    assert!(cache.clean_up(now, -1, 1000).await.unwrap().is_empty());
    assert_eq!(cache.get_node(U1).await.unwrap().finished_at, None);
}

async fn forget(cache: &NodeCache) {
    cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
    cache.add_node(U2, Some("5.6.7.8")).await.unwrap();
    cache.set_option(U2, "x", &json!(1)).await.unwrap();
    let gone = cache
        .delete_nodes_not_in_list(&HashSet::from([U1.to_string()]))
        .await
        .unwrap();
    assert_eq!(gone, vec![U2.to_string()]);
    assert_eq!(
        cache.node_uuids().await.unwrap(),
        HashSet::from([U1.to_string()])
    );
    assert!(cache.options(U2).await.unwrap().is_empty());
    cache
        .add_attribute(U1, "mac", &strings(&["11:22:33:44:55:66"]))
        .await
        .unwrap();
    cache.delete_node(U1).await.unwrap();
    assert!(cache.node_uuids().await.unwrap().is_empty());
    assert!(cache.active_macs().await.unwrap().is_empty());
}

async fn concurrent_writers(cache: &NodeCache) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            let uuid = format!("00000000-0000-0000-0000-{i:012}");
            let _lock = cache.lock(&uuid).await;
            cache
                .add_node(&uuid, Some(&format!("10.0.0.{i}")))
                .await
                .unwrap();
            cache.set_option(&uuid, "i", &json!(i)).await.unwrap();
            cache.get_node(&uuid).await.unwrap();
            cache.finished(&uuid, None).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(cache.node_uuids().await.unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_sqlite() {
    let db = TestDb::sqlite();
    run(&db).await;
}
