//! Shared test set-up: a real daemon on an ephemeral port over a fresh SQLite database.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use ironic_inspector::api::AppState;
use ironic_inspector::config::{Config, oslo::RawConfig};
use ironic_inspector::db::Db;
use tempfile::TempDir;
use tokio::task::JoinHandle;

pub use crate::ports::free_port;

static TRACING: Once = Once::new();

/// Quiet tests unless TEST_LOG is set.
pub fn init_logging() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = ironic_inspector::telemetry::init(&ironic_inspector::telemetry::LogSettings {
                debug: true,
                verbose: true,
                ..Default::default()
            });
        }
    });
}

/// Settings every test daemon gets; tests append their own sections after these.
/// `timeout = 0` keeps the clean-up loop off (as upstream does then): it would drop nodes the
/// tests put in the cache that the Ironic it talks to does not know. Tests of the loop set it.
pub const BASE_CONFIG: &str = "[DEFAULT]\nauth_strategy = noauth\nlisten_address = 127.0.0.1\ntimeout = 0\n\
[ironic]\nauth_strategy = noauth\n[firewall]\nmanage_firewall = false\n";

/// The test's client of one daemon's HTTP API, wherever the daemon runs: in this test
/// process ([`TestApp`]) or as the binary (the e2e tests' `Daemon`).
#[derive(Clone)]
pub struct InspectorApi {
    /// `http://127.0.0.1:PORT` (or https).
    pub address: String,
    /// Client for talking to it.
    pub client: reqwest::Client,
}

impl InspectorApi {
    /// `GET path` with optional extra headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request failed")
    }

    /// `method path` with no body.
    #[allow(dead_code)] // not every test binary that includes this file uses it
    pub async fn request(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.client
            .request(method, format!("{}{path}", self.address))
            .send()
            .await
            .expect("request failed")
    }

    /// `POST /v1/introspection/<uuid>`, with no body and no query.
    pub async fn start_introspection(&self, uuid: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/introspection/{uuid}", self.address))
            .send()
            .await
            .expect("request failed")
    }

    /// `POST /v1/continue` with `body`, as a ramdisk posts it.
    pub async fn post_continue(&self, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/continue", self.address))
            .json(body)
            .send()
            .await
            .expect("request failed")
    }

    /// `POST /v1/rules` with `rule`.
    #[allow(dead_code)] // used by the e2e tests only
    pub async fn post_rule(&self, rule: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/rules", self.address))
            .json(rule)
            .send()
            .await
            .expect("request failed")
    }

    /// The body of `GET /v1/introspection/<uuid>`.
    pub async fn introspection_status(&self, uuid: &str) -> serde_json::Value {
        self.get(&format!("/v1/introspection/{uuid}"), &[])
            .await
            .json()
            .await
            .expect("status body is not JSON")
    }

    /// Waits (at most `timeout`) until the node's introspection finished; its status.
    pub async fn wait_finished(&self, uuid: &str, timeout: Duration) -> serde_json::Value {
        wait_for(timeout, "introspection to finish", || async {
            let body = self.introspection_status(uuid).await;
            (body["finished"] == true).then_some(body)
        })
        .await
    }
}

/// A daemon running in this test process; its API through [`InspectorApi`] (`app.address`,
/// `app.client`, `app.get(...)`).
pub struct TestApp {
    /// Its address and a client.
    pub api: InspectorApi,
    /// The daemon's shared state (node cache, config, ...).
    pub state: AppState,
    /// The serving task; resolves after `stop()`.
    pub server: JoinHandle<anyhow::Result<()>>,
    /// Holds the database and config files.
    pub _dir: TempDir,
}

impl Deref for TestApp {
    type Target = InspectorApi;

    fn deref(&self) -> &InspectorApi {
        &self.api
    }
}

impl TestApp {
    /// Waits (at most `timeout`) until the node has MACs among its lookup attributes, as the
    /// background part of a start records them; its attributes.
    #[allow(dead_code)] // not every test binary that includes this file uses it
    pub async fn wait_lookup_macs(
        &self,
        uuid: &str,
        timeout: Duration,
    ) -> std::collections::BTreeMap<String, Vec<String>> {
        wait_for(timeout, "MACs as lookup attributes", || async {
            let attributes = self.state.node_cache.attributes(uuid).await.unwrap();
            attributes.contains_key("mac").then_some(attributes)
        })
        .await
    }

    /// Stops the daemon and waits for it.
    pub async fn stop(self) {
        self.state.shutdown.cancel();
        self.server
            .await
            .expect("server task panicked")
            .expect("server failed");
    }
}

/// Parses `text` (layered over [`BASE_CONFIG`]) into a config whose database lives in `dir`.
pub fn test_config(dir: &Path, text: &str) -> Config {
    let mut raw = RawConfig::default();
    let db_path = dir.join("inspector.sqlite");
    let base = format!(
        "{BASE_CONFIG}[database]\nconnection = sqlite:///{}\n",
        db_path.display()
    );
    raw.merge_str(&base, Path::new("base.conf")).unwrap();
    raw.merge_str(text, Path::new("test.conf")).unwrap();
    Config::from_raw(&raw).unwrap().0
}

/// Creates the schema the way `ironic-inspector-dbsync upgrade` does.
pub async fn migrated_db(config: &Config) -> Db {
    let db = Db::connect(&config.database).await.unwrap();
    ironic_inspector::db::migrate::upgrade(&db, "head", |_| {})
        .await
        .unwrap();
    db
}

/// Starts a daemon with the base config plus `extra`.
pub async fn spawn_app_with(extra: &str) -> TestApp {
    spawn_app_customised(extra, |_| {}).await
}

/// Starts a daemon with the base config plus `extra`, letting `customise` replace parts of
/// its state (e.g. the firewall) before it serves.
pub async fn spawn_app_customised(extra: &str, customise: impl FnOnce(&mut AppState)) -> TestApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    spawn(listener, extra, customise, async |_| {}).await
}

/// Starts a daemon with the base config plus `extra` once `seed` has filled its node cache:
/// its periodic jobs find what `seed` left at their first run, which comes at once.
#[allow(dead_code)] // used by the api tests only
pub async fn spawn_app_seeded(extra: &str, seed: impl AsyncFnOnce(&AppState)) -> TestApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    spawn(listener, extra, |_| {}, seed).await
}

/// Starts a daemon with the base config plus `extra`, serving on `listener` (e.g. one bound
/// to a fixed port that another service was configured with before the test started).
#[allow(dead_code)] // used by tests/e2e/ironic_inspect.rs only
pub async fn spawn_app_on(listener: std::net::TcpListener, extra: &str) -> TestApp {
    spawn(listener, extra, |_| {}, async |_| {}).await
}

async fn spawn(
    listener: std::net::TcpListener,
    extra: &str,
    customise: impl FnOnce(&mut AppState),
    seed: impl AsyncFnOnce(&AppState),
) -> TestApp {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), extra);
    migrated_db(&config).await;
    let tls = ironic_inspector::app::tls_config(&config).await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut state = ironic_inspector::app::build_state(Arc::new(config))
        .await
        .unwrap();
    customise(&mut state);
    seed(&state).await;
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(ironic_inspector::app::serve(state.clone(), listener, tls));
    TestApp {
        api: InspectorApi {
            address: format!("{scheme}://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .danger_accept_invalid_certs(true)
                .build()
                .unwrap(),
        },
        state,
        server,
        _dir: dir,
    }
}

/// Starts a daemon with the base config.
pub async fn spawn_app() -> TestApp {
    spawn_app_with("").await
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most `timeout`) for a neighbour that comes back: until `request` is answered
/// 200 while it is answered 503 (unavailable, try again later); any other status fails the
/// test.
#[allow(dead_code)] // used by the e2e tests only
pub async fn wait_until_served<F, Fut>(timeout: Duration, what: &str, mut request: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    wait_for(timeout, what, || {
        let answer = request();
        async move {
            match answer.await.status().as_u16() {
                200 => Some(()),
                503 => None,
                other => panic!("{other} while waiting for {what}"),
            }
        }
    })
    .await;
}

/// Asserts the status and the exact JSON error body, and the version headers.
pub async fn assert_error(response: reqwest::Response, status: u16, message: &str) {
    assert_eq!(response.status().as_u16(), status);
    assert_version_headers(&response);
    let body: serde_json::Value = response.json().await.expect("error body is not JSON");
    assert_eq!(body, serde_json::json!({"error": {"message": message}}));
}

/// Asserts the status and that the body is an error body; its message, for tests that check
/// only part of it.
#[allow(dead_code)] // used by the e2e tests only
pub async fn error_message(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: serde_json::Value = response.json().await.expect("error body is not JSON");
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
        .to_string()
}

/// Asserts the status and that the error message starts with `prefix`.
#[allow(dead_code)] // used by the e2e tests only
pub async fn assert_error_starts_with(response: reqwest::Response, status: u16, prefix: &str) {
    let message = error_message(response, status).await;
    assert!(message.starts_with(prefix), "{message}");
}

/// Asserts the minimum/maximum version headers.
pub fn assert_version_headers(response: &reqwest::Response) {
    let headers = response.headers();
    assert_eq!(
        headers["X-OpenStack-Ironic-Inspector-API-Minimum-Version"],
        "1.0"
    );
    assert_eq!(
        headers["X-OpenStack-Ironic-Inspector-API-Maximum-Version"],
        "1.2"
    );
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
