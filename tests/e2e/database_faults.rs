//! The daemon against a database server that fails: a private PostgreSQL or MariaDB
//! (scripts/services/postgres.sh, mysql.sh in a temp dir on a free port, stopped by the test)
//! holding a fresh database migrated by our dbsync, and the real Ironic.
//!
//! - The server restarts in the middle of a run: while it is down every answer is a 503
//!   naming the database (never a 500, never its address), the same daemon serves again once
//!   it is back, and every node ends finished once with one set of ports.
//! - Many introspections start at once, some nodes several times: deadlocks and lock waits
//!   are retried inside the daemon, so no answer is a 5xx.

use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::{Value, json};

use crate::daemon_binary::dbsync_upgrade;
use crate::helpers::{TestApp, spawn_app_with, wait_for, wait_until_served};
use crate::ironic_api::IronicApi;
use crate::nodes::{Node, start_and_wait_rebooted};
use crate::private_server::{Kind, PrivateServer};

/// How long a real Ironic may take to act on a power request, or the daemon to finish a
/// node, on a loaded CI box.
const DEADLINE: Duration = Duration::from_secs(120);
/// What a client is told while the database is down.
const UNAVAILABLE: &str = "The database is unavailable, try again later";

/// A daemon on the private server's database (migrated first) and the real Ironic.
/// `database` adds options to `[database]`.
async fn daemon_on(server: &PrivateServer, ironic: &IronicApi, database: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    dbsync_upgrade(dir.path(), &server.url).await;
    spawn_app_with(&format!(
        "[ironic]\nironic_url = {}\nmax_retries = 5\nretry_interval = 1\n\
         [processing]\nstore_data = database\n\
         [database]\nconnection = {}\n{database}",
        ironic.url(),
        server.url
    ))
    .await
}

/// The answer must be the database's 503, exactly.
async fn assert_unavailable(what: &str, response: Response) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (status, body),
        (503, json!({"error": {"message": UNAVAILABLE}})),
        "{what} while the database is down"
    );
}

/// Checks a node that must have been introspected exactly once and successfully: finished
/// without error, the PXE NIC as its only port, powered off, its data stored; a report
/// posted again is refused as already finished.
async fn assert_finished_once(app: &TestApp, ironic: &IronicApi, node: &Node) {
    let status = app.wait_finished(&node.uuid, DEADLINE).await;
    assert_eq!(
        status,
        json!({"finished": true, "error": null}),
        "{}",
        node.uuid
    );
    assert_eq!(ironic.ports(&node.uuid).await, vec![node.macs[0].clone()]);
    ironic
        .wait_for_power_state_within(&node.uuid, "power off", DEADLINE)
        .await;
    let data = app
        .get(&format!("/v1/introspection/{}/data", node.uuid), &[])
        .await;
    assert_eq!(data.status(), 200);
    let data: Value = data.json().await.unwrap();
    assert_eq!(data["inventory"]["bmc_address"], node.bmc);
    let again = app.post_continue(&node.report()).await;
    assert_eq!(again.status(), 400, "{:?}", again.text().await);
}

/// The server stops while nodes are being introspected, then comes back.
async fn server_restarts_mid_run(kind: Kind, subnet: u8) {
    let Some(ironic) = IronicApi::for_test(&format!("database restart on {kind:?}")) else {
        return;
    };
    let server = PrivateServer::start(kind).await;
    let app = daemon_on(&server, &ironic, "pool_timeout = 2\n").await;
    let bmc = |i: u8| format!("192.0.{subnet}.{i}");

    // Before: one node introspected end to end, three started and waiting for a report,
    // one not started yet.
    let done = Node::managed(&ironic, &bmc(1)).await;
    start_and_wait_rebooted(&app, &ironic, &done.uuid).await;
    assert_eq!(app.post_continue(&done.report()).await.status(), 200);
    assert_finished_once(&app, &ironic, &done).await;
    let mut waiting = Vec::new();
    for i in 2..5 {
        let node = Node::managed(&ironic, &bmc(i)).await;
        start_and_wait_rebooted(&app, &ironic, &node.uuid).await;
        waiting.push(node);
    }
    let later = Node::managed(&ironic, &bmc(9)).await;
    // A node whose end the background finisher records while the server is down (the
    // step it takes after powering the node off), to prove that it waits for the server
    // instead of leaving the node waiting.
    let stranded = Node::managed(&ironic, &bmc(8)).await;
    start_and_wait_rebooted(&app, &ironic, &stranded.uuid).await;

    // A report races the shutdown: processed before it (its end then possibly recorded
    // only once the server is back), or refused with the 503.
    let racing = {
        let client = app.client.clone();
        let url = format!("{}/v1/continue", app.address);
        let report = waiting[0].report();
        tokio::spawn(async move { client.post(url).json(&report).send().await.unwrap() })
    };
    server.stop().await;
    let raced = racing.await.unwrap();
    let raced_status = raced.status().as_u16();
    println!("{kind:?}: the report that raced the shutdown got {raced_status}");
    if raced_status != 200 {
        assert_unavailable("the report that raced the shutdown", raced).await;
    }

    let finisher = {
        let cache = app.state.node_cache.clone();
        let uuid = stranded.uuid.clone();
        tokio::spawn(async move { cache.finished_retrying(&uuid, None, DEADLINE).await })
    };

    // During: reads and writes alike are the database's 503.
    assert_unavailable("a report", app.post_continue(&waiting[1].report()).await).await;
    assert_unavailable("a start", app.start_introspection(&later.uuid).await).await;
    assert_unavailable(
        "a status",
        app.get(&format!("/v1/introspection/{}", done.uuid), &[])
            .await,
    )
    .await;
    assert_unavailable(
        "stored data",
        app.get(&format!("/v1/introspection/{}/data", done.uuid), &[])
            .await,
    )
    .await;
    assert_unavailable("the rule list", app.get("/v1/rules", &[]).await).await;
    let rule = json!({"conditions": [], "actions": [{"action": "example"}]});
    assert_unavailable("a new rule", app.post_rule(&rule).await).await;

    // After: the same daemon serves again.
    server.resume().await;
    let back = Instant::now();
    let status_path = format!("/v1/introspection/{}", done.uuid);
    wait_until_served(
        DEADLINE,
        "the daemon to serve again after the server came back",
        || app.get(&status_path, &[]),
    )
    .await;
    println!(
        "{kind:?}: serving again {:?} after the server came back",
        back.elapsed()
    );

    finisher
        .await
        .unwrap()
        .expect("the finisher records the end once the server is back");
    assert_eq!(
        app.introspection_status(&stranded.uuid).await,
        json!({"finished": true, "error": null})
    );

    // Every waiting node is finishable by (re)posting its report; the raced one is not
    // posted again when it was accepted.
    let to_post: Vec<&Node> = if raced_status == 200 {
        waiting[1..].iter().collect()
    } else {
        waiting.iter().collect()
    };
    for node in to_post {
        let response = app.post_continue(&node.report()).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    start_and_wait_rebooted(&app, &ironic, &later.uuid).await;
    assert_eq!(app.post_continue(&later.report()).await.status(), 200);
    let created = app.post_rule(&rule).await;
    assert_eq!(created.status(), 200, "{:?}", created.text().await);

    for node in std::iter::once(&done).chain(&waiting).chain([&later]) {
        assert_finished_once(&app, &ironic, node).await;
    }
    for node in std::iter::once(&done)
        .chain(&waiting)
        .chain([&later, &stranded])
    {
        ironic.delete_node(&node.uuid).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_run() {
    server_restarts_mid_run(Kind::Postgres, 51).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_mid_run() {
    server_restarts_mid_run(Kind::MariaDb, 52).await;
}

/// Sends every request at once, each to the daemon it names; the statuses, in order.
async fn all_at_once(requests: Vec<(&TestApp, String, Option<Value>)>) -> Vec<u16> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(app, path, body)| {
            let mut request = app.client.post(format!("{}{path}", app.address));
            if let Some(body) = body {
                request = request.json(&body);
            }
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                if status != 202 && status != 200 {
                    println!("{status}: {}", response.text().await.unwrap_or_default());
                }
                status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

/// Two daemons on one database (as a site with several inspectors runs them): 24 nodes
/// started at once, each three times through alternating daemons, then their 24 reports at
/// once. The daemons' node locks do not see each other, so the database alone keeps the
/// writes apart: deadlocks, lock waits and duplicate inserts must be sorted out inside.
async fn parallel_starts(kind: Kind, subnet: u8) {
    let Some(ironic) = IronicApi::for_test(&format!("parallel starts on {kind:?}")) else {
        return;
    };
    let server = PrivateServer::start(kind).await;
    let apps = [
        daemon_on(&server, &ironic, "").await,
        daemon_on(&server, &ironic, "").await,
    ];
    let mut nodes = Vec::new();
    for i in 1..=24 {
        nodes.push(Node::managed(&ironic, &format!("192.0.{subnet}.{i}")).await);
    }

    let starts = (0..3)
        .flat_map(|round| {
            nodes
                .iter()
                .enumerate()
                .map(move |(i, node)| (round + i, node))
        })
        .map(|(n, node)| {
            (
                &apps[n % 2],
                format!("/v1/introspection/{}", node.uuid),
                None,
            )
        })
        .collect();
    let statuses = all_at_once(starts).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    // Each start reboots the node once its background part has run.
    for node in &nodes {
        let reboots = format!("/v1/nodes/{}/states/power", node.uuid);
        wait_for(DEADLINE, "three reboots of every node", || async {
            (IronicApi::logged_requests("PUT", &reboots, 202) == 3).then_some(())
        })
        .await;
    }

    let reports = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            (
                &apps[i % 2],
                "/v1/continue".to_string(),
                Some(node.report()),
            )
        })
        .collect();
    let statuses = all_at_once(reports).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for (i, node) in nodes.iter().enumerate() {
        assert_finished_once(&apps[i % 2], &ironic, node).await;
    }
    for node in &nodes {
        ironic.delete_node(&node.uuid).await;
    }
    let [a, b] = apps;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_parallel_starts_never_5xx() {
    parallel_starts(Kind::Postgres, 53).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_parallel_starts_never_5xx() {
    parallel_starts(Kind::MariaDb, 54).await;
}
