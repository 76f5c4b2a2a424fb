//! `kill -9` of the daemon binary at each step of processing a report, on SQLite, PostgreSQL
//! and MariaDB, against the real Ironic through the fault proxy, whose hold-and-notify stops
//! the daemon exactly at the chosen Ironic call. After a restart on the same database every
//! node is either finished, and Ironic has its properties, its one port and its power off;
//! or still waiting for its ramdisk, and the report posted again (the ramdisk got no answer,
//! so it retries) finishes it, with one port still.

use std::path::Path;

use serde_json::json;

use crate::daemon_binary::{Daemon, dbsync_upgrade};
use crate::db_helpers::{TestDb, service_var};
use crate::fault_proxy::{FaultProxy, Match};
use crate::ironic_api::{IronicApi, unique_macs};
use crate::ironic_faults::{DEADLINE, PATIENT_IRONIC, assert_introspected};
use crate::nodes::{liberty_report, managed_node, start_and_wait_rebooted};

/// Where processing is stopped.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The node is read from Ironic; the read never reaches Ironic.
    NodeRead,
    /// A port is created; Ironic creates it, its answer is lost.
    PortCreation,
    /// The properties are PATCHed; Ironic applies it, its answer is lost.
    PropertiesPatch,
    /// The power-off (after the ramdisk's answer); it never reaches Ironic.
    PowerOff,
    /// Between the power-off, which Ironic carries out, and the node marked finished.
    AfterPowerOff,
}

const STEPS: [Step; 5] = [
    Step::NodeRead,
    Step::PortCreation,
    Step::PropertiesPatch,
    Step::PowerOff,
    Step::AfterPowerOff,
];

impl Step {
    fn matcher(self, uuid: &str) -> Match {
        match self {
            Step::NodeRead => Match::new("GET", &format!("/v1/nodes/{uuid}")),
            Step::PortCreation => Match::new("POST", "/v1/ports"),
            Step::PropertiesPatch => Match::new("PATCH", &format!("/v1/nodes/{uuid}")),
            Step::PowerOff | Step::AfterPowerOff => {
                Match::new("PUT", &format!("/v1/nodes/{uuid}/states/power"))
            }
        }
    }

    /// Whether Ironic carries out the held call (its answer is held) or never sees it.
    fn reaches_ironic(self) -> bool {
        matches!(
            self,
            Step::PortCreation | Step::PropertiesPatch | Step::AfterPowerOff
        )
    }

    /// Whether the ramdisk has its answer when the daemon is killed.
    fn answered(self) -> bool {
        matches!(self, Step::PowerOff | Step::AfterPowerOff)
    }
}

/// The config of the daemon under test: `db_url` its database, Ironic at `ironic_url`.
fn config(db_url: &str, ironic_url: &str) -> String {
    format!(
        "[DEFAULT]\nauth_strategy = noauth\ndebug = true\n\
         [ironic]\nauth_strategy = noauth\nironic_url = {ironic_url}\n{PATIENT_IRONIC}\
         [firewall]\nmanage_firewall = false\n\
         [processing]\nstore_data = database\n\
         [database]\nconnection = {db_url}\n"
    )
}

/// Starts the daemon binary for the `run`th time on the migrated database, its config and
/// log in a directory of that run's own below `dir`.
async fn start_daemon(dir: &Path, run: usize, config: &str) -> Daemon {
    let run_dir = dir.join(format!("run-{run}"));
    std::fs::create_dir(&run_dir).unwrap();
    Daemon::start_on_migrated_database(&run_dir, config).await
}

/// Every step, one node each, on the database at `db_url` (already migrated).
async fn kill_at_every_step(ironic: &IronicApi, dir: &Path, db_url: &str, bmc_base: u8) {
    let proxy = FaultProxy::start(ironic.url()).await;
    let config = config(db_url, &proxy.url);
    let mut run = 0;
    let db_scheme = db_url.split(':').next().unwrap_or_default();
    for (index, step) in STEPS.into_iter().enumerate() {
        let bmc = format!("192.0.2.{}", usize::from(bmc_base) + index);
        run += 1;
        let daemon = start_daemon(dir, run, &config).await;
        let uuid = managed_node(ironic, &bmc).await;
        start_and_wait_rebooted(&daemon, ironic, &uuid).await;

        let macs = unique_macs(2);
        let payload = liberty_report(&macs, &bmc);
        let mut holds = if step.reaches_ironic() {
            proxy.hold_answer(step.matcher(&uuid))
        } else {
            proxy.hold(step.matcher(&uuid))
        };
        let posted = {
            let client = daemon.client.clone();
            let url = format!("{}/v1/continue", daemon.address);
            let payload = payload.clone();
            tokio::spawn(async move { client.post(url).json(&payload).send().await })
        };
        let held = holds
            .next(&format!("{step:?} of node {uuid}"), DEADLINE)
            .await;
        let mut posted = Some(posted);
        if step.answered() {
            let response = posted.take().unwrap().await.unwrap().unwrap();
            assert_eq!(response.status(), 200, "{step:?}");
        }
        daemon.kill9().await;
        // The call's connection is closed: held calls are never forwarded, held answers lost.
        drop(held);
        proxy.clear();
        if let Some(posted) = posted {
            assert!(
                posted.await.unwrap().is_err(),
                "{step:?}: the ramdisk cannot have an answer from a killed daemon"
            );
        }

        run += 1;
        let killed_at = std::time::Instant::now();
        let daemon = start_daemon(dir, run, &config).await;
        if step.answered() {
            // The ramdisk has its answer and will not post again: the restarted daemon
            // finishes the node by itself.
            assert_eq!(
                daemon.wait_finished(&uuid, DEADLINE).await,
                json!({"finished": true, "error": null}),
                "{step:?}"
            );
        } else {
            // Still waiting; Ironic shows the node on, running its ramdisk.
            assert_eq!(
                daemon.introspection_status(&uuid).await,
                json!({"finished": false, "error": null}),
                "{step:?}"
            );
            assert_eq!(
                ironic.power_state(&uuid).await.as_deref(),
                Some("power on"),
                "{step:?}"
            );
            let response = daemon.post_continue(&payload).await;
            assert_eq!(
                response.status(),
                200,
                "{step:?}: {:?}",
                response.text().await
            );
            assert_eq!(
                daemon.wait_finished(&uuid, DEADLINE).await,
                json!({"finished": true, "error": null}),
                "{step:?}"
            );
        }
        assert_introspected(ironic, &uuid, &payload, &macs[0]).await;
        println!(
            "{step:?} on {db_scheme}: finished and agreed with Ironic {:?} after the kill",
            killed_at.elapsed()
        );
        // A late repeat of the report changes nothing.
        let response = daemon.post_continue(&payload).await;
        assert_eq!(response.status(), 400, "{step:?}");
        assert_eq!(ironic.ports(&uuid).await, vec![macs[0].clone()], "{step:?}");
        daemon.kill9().await;
        ironic.delete_node(&uuid).await;
    }
}

/// Every step on a database of the test's own, migrated by dbsync first: SQLite, or one on
/// the server whose URL the variable `server` holds.
async fn kill_on(test: &str, server: Option<&str>, bmc_base: u8) {
    let Some(ironic) = IronicApi::for_test(test) else {
        return;
    };
    let db = match server {
        None => TestDb::sqlite(),
        Some(var) => {
            let Some(url) = service_var(var, test) else {
                return;
            };
            TestDb::on_server(&url).await
        }
    };
    let dir = tempfile::tempdir().unwrap();
    dbsync_upgrade(dir.path(), &db.url).await;
    kill_at_every_step(&ironic, dir.path(), &db.url, bmc_base).await;
    db.drop_db().await;
}

#[tokio::test]
async fn kill_9_at_every_processing_step_on_sqlite() {
    kill_on(module_path!(), None, 100).await;
}

#[tokio::test]
async fn kill_9_at_every_processing_step_on_postgresql() {
    kill_on(module_path!(), Some("INSPECTOR_TEST_POSTGRES_URL"), 110).await;
}

#[tokio::test]
async fn kill_9_at_every_processing_step_on_mariadb() {
    kill_on(module_path!(), Some("INSPECTOR_TEST_MYSQL_URL"), 120).await;
}
