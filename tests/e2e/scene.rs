//! The set-up most end-to-end tests share: the real Ironic, a daemon in this process that
//! talks to it, and the nodes the test enrolls there, deleted when the test ends.

use std::ops::Deref;
use std::sync::Mutex;

use ironic_inspector::api::AppState;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_customised};
use crate::ironic_api::IronicApi;
use crate::nodes::start_and_wait_rebooted;

/// How long a report's processing may take here, at most.
const DEADLINE: Duration = Duration::from_secs(60);

/// The daemon's settings for the real Ironic (retried, as a busy CI box needs), then `extra`.
pub fn ironic_config(ironic: &IronicApi, extra: &str) -> String {
    format!(
        "[ironic]\nironic_url = {}\nmax_retries = 5\nretry_interval = 1\n{extra}",
        ironic.url()
    )
}

/// Ironic, a daemon on it (its API through `Deref`), and the nodes enrolled through
/// [`Scene::enroll`] and the helpers built on it.
pub struct Scene {
    /// The test's own client of the real Ironic.
    pub ironic: IronicApi,
    /// The daemon under test.
    pub app: TestApp,
    nodes: Mutex<Vec<String>>,
}

impl Deref for Scene {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl Scene {
    /// A daemon with [`ironic_config`] and `extra`; `None` after a skip line when Ironic is
    /// not running (a panic under CI).
    pub async fn start(test: &str, extra: &str) -> Option<Scene> {
        Scene::start_customised(test, extra, |_| {}).await
    }

    /// [`Scene::start`], letting `customise` replace parts of the daemon's state.
    pub async fn start_customised(
        test: &str,
        extra: &str,
        customise: impl FnOnce(&mut AppState),
    ) -> Option<Scene> {
        let ironic = IronicApi::for_test(test)?;
        let app = spawn_app_customised(&ironic_config(&ironic, extra), customise).await;
        Some(Scene {
            ironic,
            app,
            nodes: Mutex::new(Vec::new()),
        })
    }

    /// Enrolls a node with `driver_info` and ports for `macs`; deleted at [`Scene::end`].
    pub async fn enroll(&self, driver_info: Value, macs: &[String]) -> String {
        let refs: Vec<&str> = macs.iter().map(String::as_str).collect();
        let uuid = self.ironic.enroll(driver_info, &refs).await;
        self.nodes.lock().unwrap().push(uuid.clone());
        uuid
    }

    /// [`Scene::enroll`], then `manage`.
    pub async fn managed(&self, driver_info: Value, macs: &[String]) -> String {
        let uuid = self.enroll(driver_info, macs).await;
        self.ironic.manage(&uuid).await;
        uuid
    }

    /// [`Scene::managed`], then introspection started and the reboot it asks for seen.
    pub async fn on_introspection(&self, driver_info: Value, macs: &[String]) -> String {
        let uuid = self.managed(driver_info, macs).await;
        start_and_wait_rebooted(&self.app, &self.ironic, &uuid).await;
        uuid
    }

    /// Posts `payload`, the report of node `uuid`: the answer is 200 `{"uuid": uuid}`, and
    /// the introspection then finishes without error.
    pub async fn report_processed(&self, uuid: &str, payload: &Value) {
        let response = self.post_continue(payload).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"uuid": uuid})
        );
        assert_eq!(
            self.wait_finished(uuid, DEADLINE).await,
            json!({"finished": true, "error": null})
        );
    }

    /// The data the daemon stored for node `uuid`.
    pub async fn stored_data(&self, uuid: &str) -> Value {
        self.get(&format!("/v1/introspection/{uuid}/data"), &[])
            .await
            .json()
            .await
            .unwrap()
    }

    /// Deletes the test's nodes from Ironic and stops the daemon.
    pub async fn end(self) {
        let nodes = std::mem::take(&mut *self.nodes.lock().unwrap());
        for uuid in &nodes {
            self.ironic.delete_node(uuid).await;
        }
        self.app.stop().await;
    }
}
