//! SQLite on a full disk, against the real Ironic: the database lives on a small tmpfs of
//! the test's own (mounted here, unmounted even when the test fails), which a file of zeros
//! fills. Writes are then answered 503 "The database disk is full", reads still work, the
//! database stays intact, and writes work again once the file is deleted.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ironic_inspector::db::Db;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::daemon_binary::dbsync_upgrade;
use crate::helpers::{TestApp, spawn_app_with, wait_for, wait_until_served};
use crate::ironic_api::IronicApi;
use crate::nodes::{Node, start_and_wait_rebooted};

const DEADLINE: Duration = Duration::from_secs(120);
const DISK_FULL: &str = "The database disk is full";

/// A tmpfs mounted on a temp dir; unmounted when dropped (lazily if something still holds
/// a file open on it, e.g. a daemon left behind by a failed test).
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mount -t tmpfs failed (the test needs root)"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes zeros to `path` until the file system has no room left.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    for chunk in [1 << 20, 4096, 512, 1] {
        let zeros = vec![0u8; chunk];
        while file.write_all(&zeros).and_then(|()| file.flush()).is_ok() {}
    }
    let _ = file.sync_all();
}

async fn assert_disk_full(what: &str, response: reqwest::Response) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (status, body),
        (503, json!({"error": {"message": DISK_FULL}})),
        "{what} on a full disk"
    );
}

/// What the API shows of a finished node: its status and its stored data.
async fn snapshot(app: &TestApp, uuid: &str) -> (Value, Value) {
    let status = app.get(&format!("/v1/introspection/{uuid}"), &[]).await;
    assert_eq!(status.status(), 200);
    let data = app
        .get(&format!("/v1/introspection/{uuid}/data"), &[])
        .await;
    assert_eq!(data.status(), 200);
    (status.json().await.unwrap(), data.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let disk = Tmpfs::mount("16m");
    let url = format!(
        "sqlite:///{}",
        disk.path().join("inspector.sqlite").display()
    );
    let scratch = tempfile::tempdir().unwrap();
    dbsync_upgrade(scratch.path(), &url).await;
    let app = spawn_app_with(&format!(
        "[ironic]\nironic_url = {}\nmax_retries = 5\nretry_interval = 1\n\
         [processing]\nstore_data = database\n[database]\nconnection = {url}\n",
        ironic.url()
    ))
    .await;

    let rule = json!({"conditions": [], "actions": [{"action": "example"}]});

    // Before: two nodes introspected, one waiting for its report.
    let mut finished = Vec::new();
    for bmc in ["192.0.55.1", "192.0.55.2"] {
        let node = Node::managed(&ironic, bmc).await;
        start_and_wait_rebooted(&app, &ironic, &node.uuid).await;
        assert_eq!(app.post_continue(&node.report()).await.status(), 200);
        app.wait_finished(&node.uuid, DEADLINE).await;
        let seen = snapshot(&app, &node.uuid).await;
        assert_eq!(seen.0, json!({"finished": true, "error": null}));
        finished.push((node, seen));
    }
    let waiting = Node::managed(&ironic, "192.0.55.3").await;
    start_and_wait_rebooted(&app, &ironic, &waiting.uuid).await;
    let later = Node::managed(&ironic, "192.0.55.4").await;

    // Empty the write-ahead log into the database file and cut it to nothing, so that the
    // next write needs new room (a WAL file keeps its size and is written over otherwise).
    wait_for(
        DEADLINE,
        "the WAL to be checkpointed and truncated",
        || async {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(app.state.db.pool())
                .await
                .unwrap();
            (busy == 0).then_some(())
        },
    )
    .await;
    let filler = disk.path().join("filler");
    fill(&filler);

    // Writes: the clear 503.
    assert_disk_full("a new rule", app.post_rule(&rule).await).await;
    assert_disk_full("a start", app.start_introspection(&later.uuid).await).await;
    assert_disk_full("a report", app.post_continue(&waiting.report()).await).await;
    // Reads: served as before.
    for (node, seen) in &finished {
        assert_eq!(&snapshot(&app, &node.uuid).await, seen);
    }
    assert_eq!(app.get("/v1/rules", &[]).await.status(), 200);
    assert_eq!(
        app.introspection_status(&waiting.uuid).await,
        json!({"finished": false, "error": null})
    );

    // Room again: the same daemon writes again.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    wait_until_served(
        DEADLINE,
        "writes to work again after the disk was freed",
        || app.post_rule(&rule),
    )
    .await;
    println!(
        "SQLite: writing again {:?} after the filler went",
        freed.elapsed()
    );
    let response = app.post_continue(&waiting.report()).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    start_and_wait_rebooted(&app, &ironic, &later.uuid).await;
    assert_eq!(app.post_continue(&later.report()).await.status(), 200);
    for node in [&waiting, &later] {
        assert_eq!(
            app.wait_finished(&node.uuid, DEADLINE).await,
            json!({"finished": true, "error": null})
        );
        assert_eq!(ironic.ports(&node.uuid).await, vec![node.macs[0].clone()]);
    }

    // Nothing was damaged: SQLite's own check, and the earlier nodes as they were.
    let check = Db::connect_url(&url).await.unwrap();
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(check.pool())
        .await
        .unwrap();
    assert_eq!(verdict, "ok");
    check.close().await;
    for (node, seen) in &finished {
        assert_eq!(&snapshot(&app, &node.uuid).await, seen);
    }

    for node in finished.iter().map(|(n, _)| n).chain([&waiting, &later]) {
        ironic.delete_node(&node.uuid).await;
    }
    app.stop().await;
    // `disk` goes last: unmounted once the daemon is gone.
}
