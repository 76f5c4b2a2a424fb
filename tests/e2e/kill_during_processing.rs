//! `kill -9` of the daemon binary at each step of processing a report, on SQLite, PostgreSQL
//! and MariaDB, against the real Ironic through the fault proxy, whose hold-and-notify stops
//! the daemon exactly at the chosen Ironic call. After a restart on the same database every
//! node is either finished, and Ironic has its properties, its one port and its power off;
//! or still waiting for its ramdisk, and the report posted again (the ramdisk got no answer,
//! so it retries) finishes it, with one port still.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ironic_inspector::db::{Backend, Db};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::fault_proxy::{FaultProxy, Match};
use crate::helpers::{free_port, wait_for};
use crate::ironic_api::{IronicApi, unique_macs};
use crate::ironic_faults::{DEADLINE, PATIENT_IRONIC, assert_introspected, managed_node, report};

const DAEMON: &str = env!("CARGO_BIN_EXE_ironic-inspector");
const DBSYNC: &str = env!("CARGO_BIN_EXE_ironic-inspector-dbsync");
/// How long the binary may take to answer after it is started.
const STARTUP: Duration = Duration::from_secs(30);

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

/// A database made for one test.
struct TestDatabase {
    /// SQLAlchemy URL.
    url: String,
    /// The server's admin URL and the database's name, to drop it.
    server: Option<(String, String)>,
}

impl TestDatabase {
    async fn sqlite(dir: &Path) -> TestDatabase {
        TestDatabase {
            url: format!("sqlite:///{}", dir.join("inspector.sqlite").display()),
            server: None,
        }
    }

    /// A fresh database on the server of `base_url`.
    async fn on_server(base_url: &str) -> TestDatabase {
        let admin = Db::connect_url(base_url).await.unwrap();
        let name = format!(
            "inspector_k_{}",
            uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap()
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await
            .unwrap();
        admin.close().await;
        let (scheme, rest) = base_url.split_once("://").unwrap();
        let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let query = tail
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        TestDatabase {
            url: format!("{scheme}://{authority}/{name}{query}"),
            server: Some((base_url.to_string(), name)),
        }
    }

    async fn drop_db(self) {
        if let Some((admin_url, name)) = self.server {
            let admin = Db::connect_url(&admin_url).await.unwrap();
            let sql = match admin.backend() {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                _ => format!("DROP DATABASE IF EXISTS {name}"),
            };
            sqlx::query(&sql).execute(admin.pool()).await.unwrap();
            admin.close().await;
        }
    }
}

/// The daemon binary, running.
struct Daemon {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Daemon {
    /// Writes a config for a free port and starts the binary; returns once it answers.
    async fn start(dir: &Path, db_url: &str, ironic_url: &str, run: usize) -> Daemon {
        let port = free_port();
        let conf = dir.join(format!("inspector-{run}.conf"));
        std::fs::write(
            &conf,
            format!(
                "[DEFAULT]\nauth_strategy = noauth\nlisten_address = 127.0.0.1\n\
                 listen_port = {port}\ndebug = true\n\
                 [ironic]\nauth_strategy = noauth\nironic_url = {ironic_url}\n{PATIENT_IRONIC}\
                 [firewall]\nmanage_firewall = false\n\
                 [processing]\nstore_data = database\n\
                 [database]\nconnection = {db_url}\n"
            ),
        )
        .unwrap();
        let log = dir.join(format!("daemon-{run}.log"));
        let child = Command::new(DAEMON)
            .arg("--config-file")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let root = format!("{}/", daemon.url);
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + STARTUP;
        loop {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("the daemon exited with {status}: {}", daemon.log_text());
            }
            let answered = client.get(&root).send().await;
            if answered.is_ok_and(|r| r.status() == 200) {
                return daemon;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not answer within {STARTUP:?}: {}",
                daemon.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, and wait until it is gone.
    async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        let status = self.child.wait().await.unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Dbsync upgrade through a config file naming the database.
async fn upgrade(dir: &Path, db_url: &str) {
    let conf = dir.join("dbsync.conf");
    std::fs::write(&conf, format!("[database]\nconnection = {db_url}\n")).unwrap();
    let out = Command::new(DBSYNC)
        .arg("--config-file")
        .arg(&conf)
        .arg("upgrade")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "dbsync upgrade failed: {out:?}");
}

async fn status(client: &reqwest::Client, daemon: &Daemon, uuid: &str) -> Value {
    client
        .get(format!("{}/v1/introspection/{uuid}", daemon.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_finished(client: &reqwest::Client, daemon: &Daemon, uuid: &str) -> Value {
    let mut last = Value::Null;
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            last = status(client, daemon, uuid).await;
            if last["finished"] == true {
                return last.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| {
        panic!(
            "node {uuid} not finished within {DEADLINE:?}: {last}\n{}",
            daemon.log_text()
        )
    })
}

async fn post_report(
    client: &reqwest::Client,
    daemon: &Daemon,
    payload: &Value,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}/v1/continue", daemon.url))
        .json(payload)
        .send()
        .await
}

/// Every step, one node each, on the database at `db_url` (already migrated).
async fn kill_at_every_step(ironic: &IronicApi, dir: &Path, db_url: &str, bmc_base: u8) {
    let proxy = FaultProxy::start(ironic.url()).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut run = 0;
    let db_scheme = db_url.split(':').next().unwrap_or_default();
    for (index, step) in STEPS.into_iter().enumerate() {
        let bmc = format!("192.0.2.{}", usize::from(bmc_base) + index);
        run += 1;
        let daemon = Daemon::start(dir, db_url, &proxy.url, run).await;
        let uuid = managed_node(ironic, &bmc).await;
        let response = client
            .post(format!("{}/v1/introspection/{uuid}", daemon.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{step:?}");
        wait_for(DEADLINE, "the node to be rebooted", || async {
            (ironic.power_state(&uuid).await.as_deref() == Some("power on")).then_some(())
        })
        .await;

        let macs = unique_macs(2);
        let payload = report(&macs, &bmc);
        let mut holds = if step.reaches_ironic() {
            proxy.hold_answer(step.matcher(&uuid))
        } else {
            proxy.hold(step.matcher(&uuid))
        };
        let posted = {
            let client = client.clone();
            let url = format!("{}/v1/continue", daemon.url);
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
        let daemon = Daemon::start(dir, db_url, &proxy.url, run).await;
        if step.answered() {
            // The ramdisk has its answer and will not post again: the restarted daemon
            // finishes the node by itself.
            assert_eq!(
                wait_finished(&client, &daemon, &uuid).await,
                json!({"finished": true, "error": null}),
                "{step:?}"
            );
        } else {
            // Still waiting; Ironic shows the node on, running its ramdisk.
            assert_eq!(
                status(&client, &daemon, &uuid).await,
                json!({"finished": false, "error": null}),
                "{step:?}"
            );
            assert_eq!(
                ironic.power_state(&uuid).await.as_deref(),
                Some("power on"),
                "{step:?}"
            );
            let response = post_report(&client, &daemon, &payload).await.unwrap();
            assert_eq!(
                response.status(),
                200,
                "{step:?}: {:?}",
                response.text().await
            );
            assert_eq!(
                wait_finished(&client, &daemon, &uuid).await,
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
        let response = post_report(&client, &daemon, &payload).await.unwrap();
        assert_eq!(response.status(), 400, "{step:?}");
        assert_eq!(ironic.ports(&uuid).await, vec![macs[0].clone()], "{step:?}");
        daemon.kill9().await;
        ironic.delete_node(&uuid).await;
    }
}

/// The service URL in `var`, or `None` after printing a skip line (a failure under CI).
fn service(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ => {
            assert!(
                std::env::var_os("CI").is_none_or(|v| v.is_empty()),
                "{test}: CI is set but {var} is not"
            );
            println!("{test}: skipped: {var} is not set");
            None
        }
    }
}

#[tokio::test]
async fn kill_9_at_every_processing_step_on_sqlite() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite(dir.path()).await;
    upgrade(dir.path(), &db.url).await;
    kill_at_every_step(&ironic, dir.path(), &db.url, 100).await;
    db.drop_db().await;
}

#[tokio::test]
async fn kill_9_at_every_processing_step_on_postgresql() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let Some(url) = service("INSPECTOR_TEST_POSTGRES_URL", module_path!()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::on_server(&url).await;
    upgrade(dir.path(), &db.url).await;
    kill_at_every_step(&ironic, dir.path(), &db.url, 110).await;
    db.drop_db().await;
}

#[tokio::test]
async fn kill_9_at_every_processing_step_on_mariadb() {
    let Some(ironic) = IronicApi::for_test(module_path!()) else {
        return;
    };
    let Some(url) = service("INSPECTOR_TEST_MYSQL_URL", module_path!()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::on_server(&url).await;
    upgrade(dir.path(), &db.url).await;
    kill_at_every_step(&ironic, dir.path(), &db.url, 120).await;
    db.drop_db().await;
}
