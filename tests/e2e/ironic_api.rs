//! The test side's own client of a real Ironic: it sets the scene (enrolls nodes, moves them
//! between states, breaks their power validation) and checks what the daemon under test did
//! to them. It is deliberately independent of the daemon's Ironic client.
//!
//! Start Ironic with `eval "$(scripts/services/ironic.sh start .work/ironic 6385)"`: a
//! standalone Ironic 39.0.0 (noauth, fake-hardware, SQLite) that exports
//! `INSPECTOR_TEST_IRONIC_URL` (and `INSPECTOR_TEST_IRONIC_LOG`, its log file). Without it the
//! tests that need Ironic print a skip line, unless `CI` is set, where they fail.
//!
//! Every helper panics with the request and Ironic's answer when the answer is not the
//! expected one. Waiting is done by polling with a deadline ([`wait_for`]), never by sleeping
//! a fixed time. Facts about that Ironic this relies on (measured on 39.0.0):
//! - nodes created at API ≥ 1.11 start in `enroll`; `manage` goes `verifying` → `manageable`
//!   (about 0.05 s), `provide` `cleaning` → `available`, deploy (`active`) `deploying` →
//!   `active` (about 0.1 s), all asynchronous (202), so they are waited for;
//! - the fake power interface starts with `power_state` null and keeps whatever it was last
//!   set to; fake management accepts only `pxe` and always answers
//!   `{"boot_device": "pxe", "persistent": false}`, whatever was set;
//! - fake-hardware's only power interface accepts any driver_info, so power validation is
//!   made to fail by turning the node into a `redfish` node without `redfish_address`;
//! - a node that is busy answers 409 "Node … is locked by host …": retried here;
//! - `next` links of `/v1/nodes/<id>/ports` drop the node filter: never followed here.

// A toolbox: not every test uses every helper.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::wait_for;

/// The API version the helpers speak: Ironic's newest (1.115 on 39.0.0).
pub const LATEST: &str = "latest";
/// The version ironic-inspector 2.2 pinned, for tests that check what it would see.
pub const LIBERTY: &str = "1.6";
/// The header carrying the API version, both ways.
pub const VERSION_HEADER: &str = "X-OpenStack-Ironic-API-Version";

/// How long a provision-state change may take before a helper gives up. Fake interfaces
/// finish within a tenth of a second on an idle machine; the margin is for a loaded CI box.
pub const STATE_DEADLINE: Duration = Duration::from_secs(30);
/// How long a request is retried while the node is locked or the connection is refused or
/// reset (Ironic's cheroot server has 10 threads and a backlog of 5).
const RETRY_DEADLINE: Duration = Duration::from_secs(15);

/// Every interface a fake-hardware node gets by default; enroll names them explicitly so
/// the node does not depend on the server's defaults.
const FAKE_INTERFACES: &[(&str, &str)] = &[
    ("bios_interface", "fake"),
    ("boot_interface", "fake"),
    ("console_interface", "fake"),
    ("deploy_interface", "fake"),
    ("firmware_interface", "fake"),
    ("inspect_interface", "fake"),
    ("management_interface", "fake"),
    ("network_interface", "noop"),
    ("power_interface", "fake"),
    ("raid_interface", "fake"),
    ("rescue_interface", "fake"),
    ("storage_interface", "noop"),
    ("vendor_interface", "fake"),
];

/// Provision states in which Ironic deletes a node without maintenance mode.
const DELETABLE_STATES: &[&str] = &["manageable", "enroll", "adopt failed", "available"];

/// One answer from Ironic: status, body (JSON, or `Value::String` of the raw text, or
/// `Value::Null` when empty) and the API version it says it spoke.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub version: Option<String>,
}

impl Answer {
    /// Ironic's error text: `error_message` is a JSON string whose object has `faultstring`
    /// (most errors) or `description` (406 for an unsupported version).
    pub fn fault(&self) -> Option<String> {
        let raw = self.body.get("error_message")?.as_str()?;
        let inner: Value = serde_json::from_str(raw).ok()?;
        inner
            .get("faultstring")
            .or_else(|| inner.get("description"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// A client of the Ironic named by `INSPECTOR_TEST_IRONIC_URL`.
#[derive(Clone)]
pub struct IronicApi {
    base: String,
    client: Client,
}

/// An Ironic of one test's own (scripts/services/ironic.sh in a temporary directory, on a
/// free port), for a test that must know every port Ironic has; stopped when dropped.
pub struct PrivateIronic {
    dir: tempfile::TempDir,
    pub api: IronicApi,
}

impl PrivateIronic {
    /// Starts it (a few seconds: the venv is the shared one).
    pub fn start() -> PrivateIronic {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::ports::free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services/ironic.sh");
        let output = std::process::Command::new(script)
            .arg("start")
            .arg(dir.path())
            .arg(port.to_string())
            .output()
            .unwrap_or_else(|e| panic!("running {script}: {e}"));
        assert!(
            output.status.success(),
            "{script} start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PrivateIronic {
            dir,
            api: IronicApi::new(&format!("http://127.0.0.1:{port}")),
        }
    }
}

impl Drop for PrivateIronic {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services/ironic.sh");
        let _ = std::process::Command::new(script)
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

impl IronicApi {
    /// The Ironic started by scripts/services/ironic.sh, or `None` when the variable is
    /// unset or empty.
    pub fn from_env() -> Option<IronicApi> {
        let url = std::env::var("INSPECTOR_TEST_IRONIC_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())?;
        Some(IronicApi::new(&url))
    }

    /// [`IronicApi::from_env`] for a test: `None` after printing a skip line when Ironic is
    /// not configured, a panic instead when `CI` is set.
    pub fn for_test(test: &str) -> Option<IronicApi> {
        let url = crate::service_env::service_var("INSPECTOR_TEST_IRONIC_URL", test)?;
        Some(IronicApi::new(&url))
    }

    pub fn new(url: &str) -> IronicApi {
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            // Few connections at once: the cheroot server resets connections beyond ~15.
            .pool_max_idle_per_host(4)
            .build()
            .unwrap_or_else(|e| panic!("building an HTTP client: {e}"));
        IronicApi {
            base: url.trim_end_matches('/').to_string(),
            client,
        }
    }

    /// The root URL, e.g. `http://127.0.0.1:6385` (what the daemon's `[ironic]` section
    /// should point at).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The log file scripts/services/ironic.sh exported, if any.
    pub fn log_path() -> Option<std::path::PathBuf> {
        std::env::var_os("INSPECTOR_TEST_IRONIC_LOG")
            .filter(|v| !v.is_empty())
            .map(Into::into)
    }

    /// How many requests Ironic's log records as `METHOD <path> - <status>`, where the
    /// path starts with `path` (e.g. `/v1/nodes/<uuid>/management/boot_device`). With fake
    /// interfaces this is the only trace of e.g. a boot-device change. Panics when the log
    /// is not known or unreadable.
    pub fn logged_requests(method: &str, path: &str, status: u16) -> usize {
        let log =
            IronicApi::log_path().unwrap_or_else(|| panic!("INSPECTOR_TEST_IRONIC_LOG is not set"));
        let text = std::fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("reading Ironic's log {}: {e}", log.display()));
        // e.g. `... INFO ironic.api [req-…] 127.0.0.1 - PUT /v1/nodes/<uuid>/states/power - 202 (28.58ms)`
        let verb = format!(" - {method} ");
        let status = format!(" - {status} (");
        text.lines()
            .filter(|line| line.contains(" ironic.api "))
            .filter_map(|line| line.split_once(&verb).map(|(_, rest)| rest))
            .filter(|rest| {
                rest.split_once(&status)
                    .is_some_and(|(requested, _)| requested.starts_with(path))
            })
            .count()
    }

    /// One request, no retries, no judgement. `version` is sent as the API version header
    /// unless `None`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        version: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(version) = version {
            request = request.header(VERSION_HEADER, version);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let version = response
            .headers()
            .get(VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer {
            status,
            body,
            version,
        })
    }

    /// A request at `version`, retried while the node is locked (409 NodeLocked) or the
    /// connection is refused or reset; the final answer, whatever its status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        version: &str,
        body: Option<&Value>,
    ) -> Answer {
        let deadline = Instant::now() + RETRY_DEADLINE;
        loop {
            let retry = match self.raw(method.clone(), path, Some(version), body).await {
                Ok(answer) => {
                    let locked = answer.status == StatusCode::CONFLICT
                        && answer
                            .fault()
                            .is_some_and(|f| f.contains("is locked by host"));
                    if !locked {
                        return answer;
                    }
                    format!("{} {:?}", answer.status, answer.fault())
                }
                // Only failures where the request surely did not take effect: the
                // connection was refused or reset before an answer. A POST that timed out
                // might have created something, so it is not retried.
                Err(e) if e.is_connect() || (method != Method::POST && e.is_request()) => {
                    format!("{e}")
                }
                Err(e) => panic!("{method} {}{path}: {e}", self.base),
            };
            assert!(
                Instant::now() < deadline,
                "{method} {}{path}: still failing after {RETRY_DEADLINE:?}: {retry}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// [`IronicApi::call`] at the newest version, panicking unless the status is `expected`;
    /// the body.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Value {
        let answer = self.call(method.clone(), path, LATEST, body).await;
        assert_eq!(
            answer.status,
            expected,
            "{method} {}{path} (body {}): expected {expected}, Ironic answered {} {}",
            self.base,
            body.map_or_else(|| "none".to_string(), Value::to_string),
            answer.status,
            answer.body
        );
        answer.body
    }

    /// A fake-hardware node in `enroll` (created at the newest version, with every interface
    /// named) with one port for each of `macs`; its UUID.
    pub async fn enroll(&self, driver_info: Value, macs: &[&str]) -> String {
        let mut node = json!({"driver": "fake-hardware", "driver_info": driver_info});
        for (field, value) in FAKE_INTERFACES {
            node[*field] = json!(value);
        }
        let created = self
            .expect(Method::POST, "/v1/nodes", Some(&node), StatusCode::CREATED)
            .await;
        let uuid = str_field(&created, "uuid", "POST /v1/nodes");
        assert_eq!(
            created["provision_state"], "enroll",
            "a node created at the newest API version should start in enroll: {created}"
        );
        for mac in macs {
            self.create_port(&uuid, mac).await;
        }
        uuid
    }

    /// A port for `mac` on the node; the port's UUID.
    pub async fn create_port(&self, node: &str, mac: &str) -> String {
        let body = json!({"node_uuid": node, "address": mac});
        let port = self
            .expect(Method::POST, "/v1/ports", Some(&body), StatusCode::CREATED)
            .await;
        str_field(&port, "uuid", "POST /v1/ports")
    }

    /// The node as the newest API version shows it.
    pub async fn node(&self, uuid: &str) -> Value {
        self.expect(
            Method::GET,
            &format!("/v1/nodes/{uuid}"),
            None,
            StatusCode::OK,
        )
        .await
    }

    /// The node as API `version` shows it (e.g. [`LIBERTY`]).
    pub async fn node_at(&self, uuid: &str, version: &str) -> Value {
        let answer = self
            .call(Method::GET, &format!("/v1/nodes/{uuid}"), version, None)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "GET /v1/nodes/{uuid} at {version}: {} {}",
            answer.status,
            answer.body
        );
        answer.body
    }

    /// Whether the node exists.
    pub async fn node_exists(&self, uuid: &str) -> bool {
        let answer = self
            .call(Method::GET, &format!("/v1/nodes/{uuid}"), LATEST, None)
            .await;
        match answer.status {
            StatusCode::OK => true,
            StatusCode::NOT_FOUND => false,
            other => panic!("GET /v1/nodes/{uuid}: {other} {}", answer.body),
        }
    }

    /// `provision_state` now.
    pub async fn provision_state(&self, uuid: &str) -> String {
        str_field(&self.node(uuid).await, "provision_state", "GET node")
    }

    /// `power_state` now: `None` until something set it (fake power starts unknown), then
    /// `power on` / `power off`.
    pub async fn power_state(&self, uuid: &str) -> Option<String> {
        self.node(uuid).await["power_state"]
            .as_str()
            .map(str::to_string)
    }

    /// Wait until `power_state` is `state` with no power action under way (Ironic answers a
    /// power request with 202 and its conductor acts afterwards); the node.
    pub async fn wait_for_power_state(&self, uuid: &str, state: &str) -> Value {
        self.wait_for_power_state_within(uuid, state, STATE_DEADLINE)
            .await
    }

    /// [`IronicApi::wait_for_power_state`] with a deadline of the caller's: for power actions
    /// that the daemon under test asks for in the background, maybe after retries.
    pub async fn wait_for_power_state_within(
        &self,
        uuid: &str,
        state: &str,
        timeout: Duration,
    ) -> Value {
        wait_for(timeout, &format!("node {uuid} to be {state}"), || async {
            let node = self.node(uuid).await;
            (node["power_state"] == state && node["target_power_state"].is_null()).then_some(node)
        })
        .await
    }

    /// Wait until no power action is under way on the node; its `power_state` then.
    pub async fn wait_for_power_settled(&self, uuid: &str) -> Option<String> {
        wait_for(
            STATE_DEADLINE,
            &format!("node {uuid} to finish its power action"),
            || async {
                let node = self.node(uuid).await;
                node["target_power_state"]
                    .is_null()
                    .then(|| node["power_state"].as_str().map(str::to_string))
            },
        )
        .await
    }

    /// Wait until Ironic's log holds at least `count` requests as
    /// [`IronicApi::logged_requests`] counts them (its API writes the line after it answered,
    /// so a client that saw the answer may be a little ahead of the log); the number.
    pub async fn wait_logged_requests(
        method: &str,
        path: &str,
        status: u16,
        count: usize,
    ) -> usize {
        wait_for(
            STATE_DEADLINE,
            &format!("{count} `{method} {path}` - {status} in Ironic's log"),
            || async {
                let logged = IronicApi::logged_requests(method, path, status);
                (logged >= count).then_some(logged)
            },
        )
        .await
    }

    /// GET …/management/boot_device. With fake management this is always
    /// `{"boot_device": "pxe", "persistent": false}`: see [`IronicApi::logged_requests`] to
    /// check that a boot device was set.
    pub async fn boot_device(&self, uuid: &str) -> Value {
        self.expect(
            Method::GET,
            &format!("/v1/nodes/{uuid}/management/boot_device"),
            None,
            StatusCode::OK,
        )
        .await
    }

    /// GET …/validate: one `{"result": bool, "reason"?: …}` per interface.
    pub async fn validate(&self, uuid: &str) -> Value {
        self.expect(
            Method::GET,
            &format!("/v1/nodes/{uuid}/validate"),
            None,
            StatusCode::OK,
        )
        .await
    }

    /// Ask for a provision-state change (`manage`, `provide`, `inspect`, `active`, `deleted`,
    /// `abort`, …) and return at once, once Ironic has accepted it (202).
    pub async fn set_provision_state(&self, uuid: &str, target: &str) {
        self.expect(
            Method::PUT,
            &format!("/v1/nodes/{uuid}/states/provision"),
            Some(&json!({"target": target})),
            StatusCode::ACCEPTED,
        )
        .await;
    }

    /// Wait until the node rests in `state` (no transition under way); panics early if it
    /// rests elsewhere with a `last_error` (a failed transition) and at the deadline.
    pub async fn wait_for_provision_state(&self, uuid: &str, state: &str) -> Value {
        wait_for(
            STATE_DEADLINE,
            &format!("node {uuid} to reach provision state {state}"),
            || async {
                let node = self.node(uuid).await;
                let resting = node["target_provision_state"].is_null();
                if node["provision_state"] == state && resting {
                    return Some(node);
                }
                if resting && !node["last_error"].is_null() {
                    panic!(
                        "node {uuid} stopped in {} instead of {state}: {}",
                        node["provision_state"], node["last_error"]
                    );
                }
                None
            },
        )
        .await
    }

    /// `enroll` (or `available`) → `manageable`, waited for. Fails (panics with Ironic's
    /// `last_error`) when power validation fails, as after
    /// [`IronicApi::make_power_validation_fail`].
    pub async fn manage(&self, uuid: &str) {
        self.set_provision_state(uuid, "manage").await;
        self.wait_for_provision_state(uuid, "manageable").await;
    }

    /// `manageable` → `available` (automated cleaning is off), waited for.
    pub async fn provide(&self, uuid: &str) {
        self.set_provision_state(uuid, "provide").await;
        self.wait_for_provision_state(uuid, "available").await;
    }

    /// `available` → `active` with the fake deploy interface (no image needed), waited for.
    pub async fn deploy(&self, uuid: &str) {
        self.set_provision_state(uuid, "active").await;
        self.wait_for_provision_state(uuid, "active").await;
    }

    /// `active` → `available` (undeploy; cleaning is off), waited for.
    pub async fn undeploy(&self, uuid: &str) {
        self.set_provision_state(uuid, "deleted").await;
        self.wait_for_provision_state(uuid, "available").await;
    }

    /// From `enroll` to wherever `state` is (`manageable`, `available` or `active`).
    pub async fn bring_to(&self, uuid: &str, state: &str) {
        let steps: &[&str] = match state {
            "enroll" => &[],
            "manageable" => &["manageable"],
            "available" => &["manageable", "available"],
            "active" => &["manageable", "available", "active"],
            other => panic!("bring_to: no recipe for provision state {other}"),
        };
        for step in steps {
            match *step {
                "manageable" => self.manage(uuid).await,
                "available" => self.provide(uuid).await,
                _ => self.deploy(uuid).await,
            }
        }
    }

    /// Maintenance mode on (PUT …/maintenance) or off (DELETE …/maintenance); both answer
    /// 202 and take effect before the answer. (PATCH `/maintenance` works as well.)
    pub async fn set_maintenance(&self, uuid: &str, on: bool) {
        let path = format!("/v1/nodes/{uuid}/maintenance");
        if on {
            let body = json!({"reason": "set by the e2e tests"});
            self.expect(Method::PUT, &path, Some(&body), StatusCode::ACCEPTED)
                .await;
        } else {
            self.expect(Method::DELETE, &path, None, StatusCode::ACCEPTED)
                .await;
        }
    }

    /// PATCH the node with a JSON-patch list; the updated node.
    pub async fn patch(&self, uuid: &str, ops: Value) -> Value {
        self.expect(
            Method::PATCH,
            &format!("/v1/nodes/{uuid}"),
            Some(&ops),
            StatusCode::OK,
        )
        .await
    }

    /// Power off, on or reboot (`power off`, `power on`, `rebooting`) and wait until
    /// `power_state` shows it (fake power: within a tenth of a second).
    pub async fn set_power(&self, uuid: &str, target: &str) {
        self.expect(
            Method::PUT,
            &format!("/v1/nodes/{uuid}/states/power"),
            Some(&json!({"target": target})),
            StatusCode::ACCEPTED,
        )
        .await;
        let expected = if target == "power off" {
            "power off"
        } else {
            "power on"
        };
        self.wait_for_power_state(uuid, expected).await;
    }

    /// The MACs of the node's ports (lower case, as Ironic stores them), in Ironic's order.
    /// Pages with markers built here: the `next` links of this listing lose the node filter.
    pub async fn ports(&self, uuid: &str) -> Vec<String> {
        let mut macs = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut path = format!("/v1/nodes/{uuid}/ports?limit=1000");
            if let Some(m) = &marker {
                path.push_str(&format!("&marker={m}"));
            }
            let page = self.expect(Method::GET, &path, None, StatusCode::OK).await;
            let ports = page["ports"]
                .as_array()
                .unwrap_or_else(|| panic!("GET {path}: no ports list in {page}"));
            for port in ports {
                macs.push(str_field(port, "address", &path));
            }
            if page.get("next").is_none() || ports.is_empty() {
                return macs;
            }
            marker = ports.last().map(|p| str_field(p, "uuid", &path));
        }
    }

    /// The port with this MAC (any case), if any: `(port uuid, node uuid)`.
    pub async fn port_by_mac(&self, mac: &str) -> Option<(String, String)> {
        let path = format!("/v1/ports/detail?address={}", mac.to_ascii_lowercase());
        let page = self.expect(Method::GET, &path, None, StatusCode::OK).await;
        let port = page["ports"].as_array()?.first()?.clone();
        Some((
            str_field(&port, "uuid", &path),
            str_field(&port, "node_uuid", &path),
        ))
    }

    /// Delete the port with this MAC; panics if there is none.
    pub async fn delete_port(&self, mac: &str) {
        let (port, _) = self
            .port_by_mac(mac)
            .await
            .unwrap_or_else(|| panic!("delete_port: no port has MAC {mac}"));
        self.expect(
            Method::DELETE,
            &format!("/v1/ports/{port}"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    }

    /// Delete the node (and with it its ports) whatever its state: one that Ironic only
    /// deletes in maintenance mode is put there first; one that is gone already is fine.
    pub async fn delete_node(&self, uuid: &str) {
        let path = format!("/v1/nodes/{uuid}");
        let answer = self.call(Method::GET, &path, LATEST, None).await;
        if answer.status == StatusCode::NOT_FOUND {
            return;
        }
        let state = answer.body["provision_state"].as_str().unwrap_or_default();
        if !DELETABLE_STATES.contains(&state) && answer.body["maintenance"] != true {
            self.set_maintenance(uuid, true).await;
        }
        let answer = self.call(Method::DELETE, &path, LATEST, None).await;
        assert!(
            matches!(
                answer.status,
                StatusCode::NO_CONTENT | StatusCode::NOT_FOUND
            ),
            "DELETE {path}: {} {}",
            answer.status,
            answer.body
        );
    }

    /// Make the node's power interface fail validation (GET …/validate answers
    /// `"power": {"result": false, "reason": "Missing the following Redfish properties in
    /// node <uuid> driver_info: ['redfish_address']"}`), and with it `manage` and power
    /// actions (400 with the same reason). fake-hardware's fake power interface accepts any
    /// driver_info, so the node becomes a `redfish` node (enabled by ironic.sh, never a
    /// default) with its interfaces reset to redfish's defaults and no `redfish_address`.
    /// Works in enroll, manageable and available.
    pub async fn make_power_validation_fail(&self, uuid: &str) {
        let node = self.node(uuid).await;
        let mut ops = vec![json!({"op": "replace", "path": "/driver", "value": "redfish"})];
        if node["driver_info"].get("redfish_address").is_some() {
            ops.push(json!({"op": "remove", "path": "/driver_info/redfish_address"}));
        }
        self.expect(
            Method::PATCH,
            &format!("/v1/nodes/{uuid}?reset_interfaces=true"),
            Some(&Value::Array(ops)),
            StatusCode::OK,
        )
        .await;
        let validation = self.validate(uuid).await;
        assert_eq!(
            validation["power"]["result"], false,
            "node {uuid} is redfish without redfish_address, yet its power validates: {validation}"
        );
    }

    /// Undo [`IronicApi::make_power_validation_fail`]: back to fake-hardware with fake
    /// interfaces.
    pub async fn make_power_validation_pass(&self, uuid: &str) {
        let mut ops = vec![json!({"op": "replace", "path": "/driver", "value": "fake-hardware"})];
        for (field, value) in FAKE_INTERFACES {
            ops.push(json!({"op": "replace", "path": format!("/{field}"), "value": value}));
        }
        self.patch(uuid, Value::Array(ops)).await;
        let validation = self.validate(uuid).await;
        assert_eq!(
            validation["power"]["result"], true,
            "node {uuid} is fake-hardware again, yet its power does not validate: {validation}"
        );
    }
}

/// A string field of an Ironic answer, or a panic naming the request.
fn str_field(value: &Value, field: &str, request: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{request}: no string {field:?} in {value}"))
        .to_string()
}

/// Unique MACs for one test, in the locally administered range `02:ss:ss:nn:nn:ii`: `ss`
/// from the process id and start time, `nn` a counter of calls, `ii` the index. Parallel
/// tests and the leftovers of earlier runs do not collide (Ironic refuses a duplicate MAC
/// with 409).
pub fn unique_macs(count: usize) -> Vec<String> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    static SALT: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let salt = *SALT.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        (std::process::id() ^ (nanos >> 10)) & 0xffff
    });
    let call = NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff;
    assert!(count <= 256, "unique_macs: at most 256 at a time");
    (0..count)
        .map(|i| {
            format!(
                "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                salt >> 8,
                salt & 0xff,
                call >> 8,
                call & 0xff,
                i
            )
        })
        .collect()
}

/// The behaviour of the real Ironic that the daemon and these helpers rely on. When an
/// Ironic upgrade changes one of these, this test says which.
#[tokio::test]
async fn ironic_behaves_as_the_daemon_expects() {
    let Some(ironic) = IronicApi::for_test("ironic_behaves_as_the_daemon_expects") else {
        return;
    };
    let macs = unique_macs(3);
    let mac_refs: Vec<&str> = macs.iter().map(String::as_str).collect();
    let uuid = ironic.enroll(json!({}), &mac_refs).await;
    let node_path = format!("/v1/nodes/{uuid}");

    // Version 1.6, what ironic-inspector 2.2 pinned, is still served; 1.0 is not.
    let answer = ironic.call(Method::GET, &node_path, LIBERTY, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.version.as_deref(), Some(LIBERTY));
    assert_eq!(
        answer.body["provision_state"], "enroll",
        "1.6 shows enroll as is"
    );
    let answer = ironic.call(Method::GET, &node_path, "1.0", None).await;
    assert_eq!(answer.status, StatusCode::NOT_ACCEPTABLE, "{}", answer.body);

    // A node created at 1.6 starts in available.
    let answer = ironic
        .call(
            Method::POST,
            "/v1/nodes",
            LIBERTY,
            Some(&json!({"driver": "fake-hardware"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["provision_state"], "available");
    let old_node = str_field(&answer.body, "uuid", "POST /v1/nodes at 1.6");
    ironic.delete_node(&old_node).await;

    // Errors: `error_message` is a JSON string with a `faultstring`.
    let missing = ironic
        .call(
            Method::GET,
            "/v1/nodes/00000000-0000-0000-0000-000000000000",
            LIBERTY,
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.fault().as_deref(),
        Some("Node 00000000-0000-0000-0000-000000000000 could not be found.")
    );
    let duplicate = ironic
        .call(
            Method::POST,
            "/v1/ports",
            LIBERTY,
            Some(&json!({"node_uuid": uuid, "address": macs[0].to_uppercase()})),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.body);
    assert_eq!(
        duplicate.fault(),
        Some(format!(
            "A port with MAC address {} already exists.",
            macs[0]
        ))
    );

    // Per-node port listing at 1.6: the `next` link leads to all ports, not the node's.
    let first = ironic
        .call(
            Method::GET,
            &format!("/v1/nodes/{uuid}/ports/detail?limit=1"),
            LIBERTY,
            None,
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let next = first.body["next"].as_str().unwrap_or_default();
    assert!(
        next.contains("/v1/ports/detail?") && !next.contains(&uuid),
        "next link: {next}"
    );
    assert_eq!(ironic.ports(&uuid).await, macs);

    // Power, boot device, validation with fake interfaces.
    assert_eq!(ironic.power_state(&uuid).await, None);
    ironic.set_power(&uuid, "rebooting").await;
    assert_eq!(ironic.power_state(&uuid).await.as_deref(), Some("power on"));
    let answer = ironic
        .call(
            Method::PUT,
            &format!("{node_path}/management/boot_device"),
            LIBERTY,
            Some(&json!({"boot_device": "pxe", "persistent": false})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    assert_eq!(
        ironic.boot_device(&uuid).await,
        json!({"boot_device": "pxe", "persistent": false})
    );
    if IronicApi::log_path().is_some() {
        assert!(
            IronicApi::logged_requests("PUT", &format!("{node_path}/management/boot_device"), 204)
                >= 1
        );
    }
    assert_eq!(
        ironic.validate(&uuid).await["power"],
        json!({"result": true})
    );

    // Maintenance on and off.
    ironic.set_maintenance(&uuid, true).await;
    assert_eq!(ironic.node(&uuid).await["maintenance"], true);
    ironic.set_maintenance(&uuid, false).await;
    assert_eq!(ironic.node(&uuid).await["maintenance"], false);

    // Broken power validation makes manage fail back to enroll with the reason.
    ironic.make_power_validation_fail(&uuid).await;
    let answer = ironic
        .call(Method::GET, &format!("{node_path}/validate"), LIBERTY, None)
        .await;
    let reason = answer.body["power"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("redfish_address"), "{}", answer.body);
    ironic.set_provision_state(&uuid, "manage").await;
    let node = wait_for(STATE_DEADLINE, "manage to fail", || async {
        let node = ironic.node(&uuid).await;
        node["target_provision_state"].is_null().then_some(node)
    })
    .await;
    assert_eq!(node["provision_state"], "enroll", "{node}");
    assert!(
        node["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("Failed to validate power driver interface")),
        "{node}"
    );
    ironic.make_power_validation_pass(&uuid).await;

    // All the way to active and back.
    ironic.bring_to(&uuid, "active").await;
    ironic.undeploy(&uuid).await;
    ironic.deploy(&uuid).await;
    ironic.delete_port(&macs[2]).await;
    assert_eq!(ironic.ports(&uuid).await, macs[..2].to_vec());
    ironic.delete_node(&uuid).await;
    assert!(!ironic.node_exists(&uuid).await);
}
