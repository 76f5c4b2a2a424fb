//! The Swift client against the real Swift and Keystone of `scripts/services/swift.sh` and
//! `scripts/services/keystone.sh`, and against the fake server for what a real Swift cannot
//! be made to do on demand (answer 503, refuse a fresh token).
//!
//! Start the services with
//!   eval "$(scripts/services/keystone.sh start .work/keystone 35357)"
//!   eval "$(scripts/services/swift.sh start .work/swift 58080)"
//! Without `INSPECTOR_TEST_SWIFT_URL` (or the Keystone variables) the tests that need them
//! print a skip line, unless `CI` is set, where they fail.
//!
//! Each test uses a container of its own, so tests sharing the Swift cannot see each
//! other's objects; tests that need another catalog entry register a service of a type
//! unique to the test and remove it afterwards, so the real `object-store` entry stays the
//! only one of its type.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ironic_inspector::swift::{
    EXTRA_HARDWARE_PREFIX, INSPECTOR_DATA_PREFIX, SwiftClient, SwiftError, object_name,
};
use serde_json::{Value, json};

use crate::fake_ironic::{FakeIronic, Reply};
use crate::helpers::{free_port, init_logging, test_config, wait_for};
use crate::keystone::{
    Credentials, KeystoneEnv, RegisteredService, client, issue_token, keystone_env,
};
use crate::service_env::service_var;

const NODE: &str = "9f1e7a52-4b8c-4d3e-a6f0-2c5b8d7e1a93";
/// The PXE NIC of NODE.
const MAC: &str = "52:54:00:9f:00:01";

/// The running Swift and its Keystone, or `None` (after printing why) to skip the test.
fn swift_env(test: &str) -> Option<(KeystoneEnv, String)> {
    let url = service_var("INSPECTOR_TEST_SWIFT_URL", test)?;
    let env = keystone_env(test)?;
    Some((env, url.trim_end_matches('/').to_string()))
}

/// A container name no other test uses.
fn unique_container() -> String {
    format!("inspector-test-{}", uuid::Uuid::new_v4().simple())
}

/// A container name of the test's own, and a client of the service user storing there
/// with the `[swift]` settings `extra`.
fn own_container(env: &KeystoneEnv, extra: &str) -> (String, SwiftClient) {
    let container = unique_container();
    let swift = swift_client(
        &env.url,
        &env.service,
        &format!("container = {container}\n{extra}"),
    );
    (container, swift)
}

/// A client logging in as `who`, with `[swift]` settings `extra` (one `key = value` a line)
/// after the credentials.
fn swift_client(auth_url: &str, who: &Credentials, extra: &str) -> SwiftClient {
    init_logging();
    let config = test_config(
        &std::env::temp_dir(),
        &format!(
            "[swift]\nos_auth_url = {auth_url}\nusername = {}\npassword = {}\n\
             tenant_name = {}\n{extra}",
            who.user, who.password, who.project
        ),
    );
    SwiftClient::from_config(&config).unwrap()
}

/// The test's own view of Swift: `who`'s token and account URL, for checking what the
/// client did through Swift's API.
struct Account {
    token: String,
    url: String,
}

impl Account {
    async fn of(env: &KeystoneEnv, swift_url: &str, who: &Credentials) -> Account {
        let token = issue_token(&env.url, who).await;
        let response = client()
            .get(format!("{}/auth/tokens?nocatalog", env.url))
            .header("X-Auth-Token", &token)
            .header("X-Subject-Token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "token validation failed");
        let document: Value = response.json().await.unwrap();
        let project = document["token"]["project"]["id"].as_str().unwrap();
        Account {
            token,
            url: format!("{swift_url}/v1/AUTH_{project}"),
        }
    }

    /// `method <account>/<path>`, answered.
    async fn call(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        client()
            .request(method, format!("{}/{path}", self.url))
            .header("X-Auth-Token", &self.token)
            .send()
            .await
            .unwrap()
    }

    /// Names of the objects in `container`.
    async fn list(&self, container: &str) -> Vec<String> {
        let response = self
            .call(reqwest::Method::GET, &format!("{container}?format=json"))
            .await;
        assert_eq!(response.status(), 200, "listing {container} failed");
        let listing: Vec<Value> = response.json().await.unwrap();
        listing
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Deletes `objects` and then `container` (best effort: the Swift is throw-away).
    async fn clean_up(&self, container: &str, objects: &[&str]) {
        for object in objects {
            self.call(reqwest::Method::DELETE, &format!("{container}/{object}"))
                .await;
        }
        self.call(reqwest::Method::DELETE, container).await;
    }
}

fn other_message(result: Result<impl std::fmt::Debug, SwiftError>) -> String {
    match result {
        Err(SwiftError::Other(message)) => message,
        other => panic!("expected SwiftError::Other, got {other:?}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// --- against the real Swift ---

#[tokio::test]
async fn stored_objects_come_back_unchanged() {
    let Some((env, swift_url)) = swift_env("stored_objects_come_back_unchanged") else {
        return;
    };
    let container = unique_container();
    // os_auth_url and os_auth_version as Liberty configs wrote them: Keystone v2.0.
    let v2 = env.url.trim_end_matches("/v3").to_string() + "/v2.0";
    let swift = swift_client(
        &v2,
        &env.service,
        &format!("container = {container}\nos_auth_version = 2\n"),
    );
    let name = object_name(INSPECTOR_DATA_PREFIX, NODE);
    let data = serde_json::to_vec(&json!({"cpus": 2, "memory_mb": 1024, "ünïcode": "✓"})).unwrap();
    swift.store_object(&name, data.clone()).await.unwrap();
    assert_eq!(swift.get_object(&name).await.unwrap(), data);

    // Storing again (the container now exists: Swift answers its PUT with 202) replaces it.
    let newer = br#"{"cpus": 4}"#.to_vec();
    swift.store_object(&name, newer.clone()).await.unwrap();
    assert_eq!(swift.get_object(&name).await.unwrap(), newer);

    // What Swift itself holds: the bytes, as JSON, and no expiry with delete_after = 0.
    let account = Account::of(&env, &swift_url, &env.service).await;
    let response = account
        .call(reqwest::Method::GET, &format!("{container}/{name}"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().get("x-delete-at").is_none());
    assert_eq!(response.bytes().await.unwrap().to_vec(), newer);
    account.clean_up(&container, &[&name]).await;
}

#[tokio::test]
async fn the_configured_container_is_used() {
    let Some((env, swift_url)) = swift_env("the_configured_container_is_used") else {
        return;
    };
    let (container, swift) = own_container(&env, "");
    assert_eq!(swift.container(), container);
    let name = object_name(EXTRA_HARDWARE_PREFIX, &uuid::Uuid::new_v4().to_string());
    swift.store_object(&name, b"[]".to_vec()).await.unwrap();

    let account = Account::of(&env, &swift_url, &env.service).await;
    // Swift updates container listings after the object PUT (at once when it can, later
    // from its updater when the container server is slow): waited for.
    wait_for(
        Duration::from_secs(60),
        "the object in the container listing",
        || async { (account.list(&container).await == [name.clone()]).then_some(()) },
    )
    .await;
    // Not in the default container, where upstream's import-time default would have put it.
    let response = account
        .call(reqwest::Method::HEAD, &format!("ironic-inspector/{name}"))
        .await;
    assert_eq!(response.status(), 404);
    account.clean_up(&container, &[&name]).await;
}

#[tokio::test]
async fn delete_after_makes_swift_expire_the_object() {
    let Some((env, swift_url)) = swift_env("delete_after_makes_swift_expire_the_object") else {
        return;
    };
    let (container, swift) = own_container(&env, "delete_after = 600\n");
    let name = object_name(INSPECTOR_DATA_PREFIX, NODE);
    let before = unix_now();
    swift.store_object(&name, b"{}".to_vec()).await.unwrap();
    let after = unix_now();

    // Swift turns X-Delete-After into the absolute X-Delete-At.
    let account = Account::of(&env, &swift_url, &env.service).await;
    let response = account
        .call(reqwest::Method::HEAD, &format!("{container}/{name}"))
        .await;
    assert_eq!(response.status(), 200);
    let delete_at: u64 = response.headers()["x-delete-at"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (before + 600..=after + 601).contains(&delete_at),
        "X-Delete-At {delete_at} is not 600 s after {before}..{after}"
    );
    account.clean_up(&container, &[&name]).await;
}

#[tokio::test]
async fn a_missing_object_is_not_found() {
    let Some((env, _)) = swift_env("a_missing_object_is_not_found") else {
        return;
    };
    let (container, swift) = own_container(&env, "");
    let name = object_name(INSPECTOR_DATA_PREFIX, NODE);
    // Neither the container nor the object exists: Swift answers 404 either way.
    let err = swift.get_object(&name).await.unwrap_err();
    assert_eq!(
        err,
        SwiftError::NotFound {
            object: name.clone(),
            container: container.clone(),
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "Swift failed to get object {name} in container {container}. \
             Error was: Object GET failed: 404 Not Found"
        )
    );
    let api: ironic_inspector::Error = err.into();
    assert_eq!(api.status(), 404);
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error() {
    let Some((env, _)) = swift_env("a_wrong_password_is_a_clear_error") else {
        return;
    };
    let container = unique_container();
    let wrong = Credentials {
        user: env.service.user.clone(),
        password: "not-the-password".to_string(),
        project: env.service.project.clone(),
    };
    let swift = swift_client(&env.url, &wrong, &format!("container = {container}\n"));
    let started = Instant::now();
    let message = other_message(swift.store_object("o", b"{}".to_vec()).await);
    assert_eq!(
        message,
        format!(
            "Swift failed to create container {container}. Error was: Keystone rejected \
             the Swift credentials ([swift] username, password and tenant_name)"
        )
    );
    assert!(!message.contains("not-the-password"));
    let message = other_message(swift.get_object("o").await);
    assert!(
        message.starts_with(&format!(
            "Swift failed to get object o in container {container}. Error was: Keystone rejected"
        )),
        "{message}"
    );
    // Refused credentials are not retried.
    assert!(started.elapsed() < Duration::from_secs(10));
    let api: ironic_inspector::Error = SwiftError::Other(message).into();
    assert_eq!(api.status(), 400);
}

// --- catalog faults (Keystone only) ---

#[tokio::test]
async fn swift_down_is_an_error_in_bounded_time() {
    let Some(env) = keystone_env("swift_down_is_an_error_in_bounded_time") else {
        return;
    };
    // The catalog points at a port nobody listens on.
    let dead = format!("http://127.0.0.1:{}/v1/AUTH_%(tenant_id)s", free_port());
    let service = RegisteredService::register(&env, "object-store", &dead, &dead).await;
    let swift = swift_client(
        &env.url,
        &env.service,
        &format!(
            "os_service_type = {}\nmax_retries = 1\ncontainer = c\n",
            service.service_type
        ),
    );
    let started = Instant::now();
    let message = other_message(swift.store_object("o", b"{}".to_vec()).await);
    let elapsed = started.elapsed();
    assert!(
        message.starts_with(
            "Swift failed to create container c. Error was: cannot reach Swift: cannot connect"
        ),
        "{message}"
    );
    assert!(!message.contains("127.0.0.1"), "{message}");
    // One retry, one second apart; well within the bound.
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    let message = other_message(swift.get_object("o").await);
    assert!(
        message.starts_with(
            "Swift failed to get object o in container c. Error was: cannot reach Swift"
        ),
        "{message}"
    );
    service.remove().await;
}

#[tokio::test]
async fn swift_missing_from_the_catalog_is_an_error() {
    let Some(env) = keystone_env("swift_missing_from_the_catalog_is_an_error") else {
        return;
    };
    let swift = swift_client(
        &env.url,
        &env.service,
        "os_service_type = no-such-service-type\ncontainer = c\n",
    );
    assert_eq!(
        other_message(swift.get_object("o").await),
        "Swift failed to get object o in container c. Error was: there is no \
         no-such-service-type endpoint with interface internal in the Keystone catalog"
    );
    // Both catalog options are read from the config (2.2.2 froze their defaults, 2.2.4
    // fixed it): the endpoint type asked is the configured one.
    let swift = swift_client(
        &env.url,
        &env.service,
        "os_service_type = no-such-service-type\nos_endpoint_type = adminURL\ncontainer = c\n",
    );
    assert_eq!(
        other_message(swift.get_object("o").await),
        "Swift failed to get object o in container c. Error was: there is no \
         no-such-service-type endpoint with interface admin in the Keystone catalog"
    );
}

// --- the fake server, for answers a real Swift does not give on demand ---

/// A fake server in Keystone's catalog as an object store (under a service type of its own),
/// and a client of it with the `[swift]` settings `extra`.
async fn fake_swift(
    env: &KeystoneEnv,
    extra: &str,
) -> (FakeIronic, RegisteredService, SwiftClient) {
    let fake = FakeIronic::start().await;
    let url = format!("{}/v1/AUTH_test", fake.url);
    let service = RegisteredService::register(env, "object-store", &url, &url).await;
    let swift = swift_client(
        &env.url,
        &env.service,
        &format!("os_service_type = {}\n{extra}", service.service_type),
    );
    (fake, service, swift)
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let Some(env) = keystone_env("server_errors_are_retried_then_reported") else {
        return;
    };
    let (fake, service, swift) =
        fake_swift(&env, "max_retries = 2\ncontainer = c\ndelete_after = 30\n").await;
    // Two failures, then success: the retries hide them.
    fake.on(
        "PUT",
        "/v1/AUTH_test/c",
        [Reply::Empty(503), Reply::Empty(500), Reply::Empty(201)],
    );
    fake.on("PUT", "/v1/AUTH_test/c/o", [Reply::Empty(201)]);
    swift
        .store_object("o", b"{\"a\": 1}".to_vec())
        .await
        .unwrap();
    let requests = fake.requests();
    let seen: Vec<_> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        seen,
        [
            "PUT /v1/AUTH_test/c",
            "PUT /v1/AUTH_test/c",
            "PUT /v1/AUTH_test/c",
            "PUT /v1/AUTH_test/c/o"
        ]
    );
    let object = &requests[3];
    assert_eq!(object.body, b"{\"a\": 1}");
    assert_eq!(object.header("Content-Type"), "application/json");
    assert_eq!(object.header("X-Delete-After"), "30");
    assert!(!object.header("X-Auth-Token").is_empty());
    assert!(requests[0].header("X-Delete-After").is_empty());

    // Failing every time: max_retries + 1 attempts, then upstream's message.
    fake.on("GET", "/v1/AUTH_test/c/o", [Reply::Empty(503)]);
    let message = other_message(swift.get_object("o").await);
    assert_eq!(
        message,
        "Swift failed to get object o in container c. \
         Error was: Object GET failed: 503 Service Unavailable"
    );
    assert_eq!(fake.requests().len(), 4 + 3);

    // Client errors are not retried.
    fake.on("PUT", "/v1/AUTH_test/c/bad", [Reply::Empty(422)]);
    let message = other_message(swift.store_object("bad", Vec::new()).await);
    assert_eq!(
        message,
        "Swift failed to create object bad in container c. \
         Error was: Object PUT failed: 422 Unprocessable Entity"
    );
    assert_eq!(fake.requests().len(), 7 + 2);
    service.remove().await;
}

#[tokio::test]
async fn a_refused_token_is_replaced_once() {
    let Some(env) = keystone_env("a_refused_token_is_replaced_once") else {
        return;
    };
    let (fake, service, swift) = fake_swift(&env, "container = c\n").await;
    fake.on(
        "GET",
        "/v1/AUTH_test/c/o",
        [Reply::Empty(401), Reply::Raw(200, "{}".into())],
    );
    assert_eq!(swift.get_object("o").await.unwrap(), b"{}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_ne!(
        requests[0].header("X-Auth-Token"),
        requests[1].header("X-Auth-Token"),
        "a new token after the 401"
    );

    // Refused again and again: one new login, then the error.
    fake.on("GET", "/v1/AUTH_test/c/o", [Reply::Empty(401)]);
    assert_eq!(
        other_message(swift.get_object("o").await),
        "Swift failed to get object o in container c. \
         Error was: Object GET failed: 401 Unauthorized"
    );
    assert_eq!(fake.requests().len(), 4);
    service.remove().await;
}

/// Over the API: with `store_data = swift`, the processed data goes to
/// `inspector_data-<uuid>`, its name to the node's `extra`, and `GET …/data` reads it back.
#[tokio::test]
async fn processed_data_is_stored_in_swift_and_served() {
    let Some((env, _swift)) = swift_env("processed_data_is_stored_in_swift_and_served") else {
        return;
    };
    let fake = FakeIronic::start().await;
    crate::fake_ironic::script_processing(&fake, crate::fake_ironic::node_json(NODE), MAC);
    let container = unique_container();
    let app = crate::helpers::spawn_app_with(&format!(
        "[ironic]\nironic_url = {}\nmax_retries = 0\n\
         [processing]\nstore_data = swift\nstore_data_location = inspector_data_object\n\
         [swift]\nos_auth_url = {}\nusername = {}\npassword = {}\ntenant_name = {}\ncontainer = {container}\n",
        fake.url, env.url, env.service.user, env.service.password, env.service.project
    ))
    .await;
    app.state
        .node_cache
        .add_node(NODE, Some("192.0.2.1"))
        .await
        .unwrap();
    let payload = json!({
        "cpus": 2, "cpu_arch": "x86_64", "memory_mb": 4096, "local_gb": 40,
        "interfaces": {"eth0": {"mac": MAC, "ip": "10.0.0.9"}},
        "ipmi_address": "192.0.2.1",
    });
    let response = app.post_continue(&payload).await;
    assert_eq!(response.status(), 200);
    let object = format!("inspector_data-{NODE}");
    let patches: Vec<Value> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.json())
        .collect();
    assert!(
        patches.contains(
            &json!([{"op": "add", "path": "/extra/inspector_data_object", "value": object}])
        ),
        "{patches:?}"
    );
    let stored: Value = app
        .get(&format!("/v1/introspection/{NODE}/data"), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["cpus"], 2);
    assert_eq!(stored["macs"], json!([MAC]));
    // A node with nothing stored is a 404.
    let other = "00000000-0000-4000-8000-000000000001";
    let response = app
        .get(&format!("/v1/introspection/{other}/data"), &[])
        .await;
    assert_eq!(response.status(), 404);
    app.stop().await;
}
