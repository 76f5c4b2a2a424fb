//! How driver errors of a real PostgreSQL and MariaDB are classified, and what the layers
//! above make of them: a server that ends our session is "unavailable" (a 503), the pool
//! reconnects once the server is back, and a deadlock is a lost race that
//! `db::retry_conflicts` runs again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ironic_inspector::Error;
use ironic_inspector::db::{Db, Fault, classify, retry_conflicts};
use ironic_inspector::error::DbOutage;
use tokio::sync::Barrier;

use crate::helpers::{TestDb, service_var};
use crate::private_server::{Kind, PrivateServer};

const PG_VAR: &str = "INSPECTOR_TEST_POSTGRES_URL";
const MYSQL_VAR: &str = "INSPECTOR_TEST_MYSQL_URL";
const UNAVAILABLE: &str = "The database is unavailable, try again later";
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// A connection held across a server stop fails as "unavailable", never as a 500; the
/// same pool serves again once the server is back.
async fn session_ended_by_the_server(kind: Kind) {
    let server = PrivateServer::start(kind).await;
    let db = Db::connect_url(&server.url).await.unwrap();
    let mut held = db.pool().acquire().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *held).await.unwrap();

    server.stop().await;
    let err = sqlx::query("SELECT 1")
        .execute(&mut *held)
        .await
        .unwrap_err();
    println!("{kind:?}: a held connection after the stop: {err}");
    assert_eq!(classify(&err), Fault::Unavailable, "{err:?}");
    let err = Error::from(err);
    assert_eq!(err.client_message(false), UNAVAILABLE);
    assert!(err.is_temporary());
    drop(held);

    server.resume().await;
    let deadline = tokio::time::Instant::now() + RECOVERY_DEADLINE;
    loop {
        match sqlx::query("SELECT 1").execute(db.pool()).await {
            Ok(_) => break,
            Err(err) => {
                assert_eq!(classify(&err), Fault::Unavailable, "{err:?}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the pool did not reconnect: {err}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    db.close().await;
}

#[tokio::test]
async fn postgres_session_ended_by_the_server_is_unavailable() {
    if service_var(PG_VAR, "PostgreSQL shutdown errors").is_none() {
        return;
    }
    session_ended_by_the_server(Kind::Postgres).await;
}

#[tokio::test]
async fn mariadb_session_ended_by_the_server_is_unavailable() {
    if service_var(MYSQL_VAR, "MariaDB shutdown errors").is_none() {
        return;
    }
    session_ended_by_the_server(Kind::MariaDb).await;
}

/// Two transactions update two rows in opposite orders, in step, so the server must kill
/// one of them; run through `retry_conflicts`, both end up applied.
async fn deadlock_is_retried(base_url: &str) {
    let test_db = TestDb::on_server(base_url).await;
    let db = test_db.connect().await;
    sqlx::query("CREATE TABLE pair (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO pair (id, v) VALUES (1, 0), (2, 0)")
        .execute(db.pool())
        .await
        .unwrap();

    let barrier = Arc::new(Barrier::new(2));
    let races = Arc::new(AtomicU32::new(0));
    let runs = Arc::new(AtomicU32::new(0));
    let transaction = |first: i32, second: i32| {
        let (db, barrier, races, runs) = (db.clone(), barrier.clone(), races.clone(), runs.clone());
        async move {
            let lost_race = |err: &Error| {
                let lost = matches!(
                    err,
                    Error::Database {
                        outage: DbOutage::Busy,
                        ..
                    }
                );
                if lost {
                    races.fetch_add(1, Ordering::SeqCst);
                }
                lost
            };
            retry_conflicts("swap", lost_race, || async {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                let bump = db
                    .sql("UPDATE pair SET v = v + 1 WHERE id = ?")
                    .into_owned();
                let mut tx = db.begin().await?;
                sqlx::query(&bump)
                    .bind(first)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::from)?;
                // Only the first two runs meet: a rerun goes through alone.
                if run < 2 {
                    barrier.wait().await;
                }
                sqlx::query(&bump)
                    .bind(second)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::from)?;
                tx.commit().await.map_err(Error::from)?;
                Ok::<(), Error>(())
            })
            .await
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(transaction(1, 2)),
        tokio::spawn(transaction(2, 1))
    );
    a.unwrap().unwrap();
    b.unwrap().unwrap();
    assert_eq!(races.load(Ordering::SeqCst), 1, "exactly one loser");
    let values: Vec<i32> = sqlx::query_scalar("SELECT v FROM pair ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(values, [2, 2]);
    db.close().await;
    test_db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deadlock_is_retried() {
    let Some(url) = service_var(PG_VAR, "PostgreSQL deadlock") else {
        return;
    };
    deadlock_is_retried(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_deadlock_is_retried() {
    let Some(url) = service_var(MYSQL_VAR, "MySQL deadlock") else {
        return;
    };
    deadlock_is_retried(&url).await;
}
