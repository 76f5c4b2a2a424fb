//! The Ironic client against the fake Ironic (faults, retries, pagination, headers) and,
//! in keystone mode, against the real Keystone of `scripts/services/keystone.sh`.
//!
//! The Keystone tests register a service of a type unique to the test, so that other tests
//! sharing the Keystone (which may register the real `baremetal` service) cannot make the
//! catalog lookup ambiguous, and remove it again afterwards.

use std::time::{Duration, Instant};

use ironic_inspector::ironic::{IronicClient, IronicError, PowerTarget};
use serde_json::{Value, json};

use crate::fake_ironic::{FakeIronic, Reply, ironic_error, node_json, port_json};
use crate::helpers::{free_port, init_logging, test_config};
use crate::keystone::{Credentials, RegisteredService, client, issue_token, keystone_env};

const NODE: &str = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123";
const NODE_PATH: &str = "/v1/nodes/1be26c0b-03f2-4d2e-ae87-c02d7f33c123";
const LOCKED: &str = "Node 1be26c0b-03f2-4d2e-ae87-c02d7f33c123 is locked by host conductor-1, \
please retry after the current operation is completed.";

/// A noauth client for `url` with `[ironic]` settings `extra` (one `key = value` a line).
fn client_for(url: &str, extra: &str) -> IronicClient {
    init_logging();
    let config = test_config(
        &std::env::temp_dir(),
        &format!("[ironic]\nauth_strategy = noauth\nironic_url = {url}\n{extra}"),
    );
    IronicClient::from_config(&config).unwrap()
}

/// No pause between retries, two retries, short timeouts.
const QUICK: &str =
    "max_retries = 2\nretry_interval = 0\nconnect_timeout = 2\nrequest_timeout = 5\n";

fn assert_ironic_headers(fake: &FakeIronic) {
    for request in fake.requests() {
        assert_eq!(
            request.header("X-OpenStack-Ironic-API-Version"),
            "1.6",
            "{} {}",
            request.method,
            request.path
        );
        assert_eq!(request.header("X-Auth-Token"), "noauth");
    }
}

#[tokio::test]
async fn locked_node_is_retried_until_ironic_answers() {
    let fake = FakeIronic::start().await;
    let locked = ironic_error(409, LOCKED);
    fake.on(
        "GET",
        NODE_PATH,
        [locked.clone(), locked, Reply::Json(200, node_json(NODE))],
    );
    let node = client_for(&fake.url, QUICK).get_node(NODE).await.unwrap();
    assert_eq!(node.uuid, NODE);
    assert_eq!(node.provision_state.as_deref(), Some("manageable"));
    assert_eq!(node.driver_info["ipmi_address"], "192.0.2.1");
    assert_eq!(node.raw["links"], json!([]));
    assert_eq!(fake.requests().len(), 3);
    assert_ironic_headers(&fake);
}

#[tokio::test]
async fn conflict_after_every_retry_is_a_conflict_with_ironics_message() {
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [ironic_error(409, LOCKED)]);
    let err = client_for(&fake.url, QUICK)
        .get_node(NODE)
        .await
        .unwrap_err();
    match &err {
        IronicError::Conflict(message) => assert_eq!(message, LOCKED),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 3, "the first try and two retries");
    let api: ironic_inspector::Error = err.into();
    assert_eq!(api.status().as_u16(), 409);
}

#[tokio::test]
async fn duplicate_port_is_already_exists_without_retries() {
    let fake = FakeIronic::start().await;
    let message = "A port with MAC address 52:54:00:12:34:56 already exists.";
    fake.on("POST", "/v1/ports", [ironic_error(409, message)]);
    let err = client_for(&fake.url, QUICK)
        .create_port(NODE, "52:54:00:12:34:56")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IronicError::AlreadyExists(m) if m == message),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 1, "retrying cannot help");
}

#[tokio::test]
async fn service_unavailable_is_retried_then_reported() {
    let fake = FakeIronic::start().await;
    let busy = Reply::Raw(503, "Service Unavailable".to_string());
    fake.on(
        "GET",
        NODE_PATH,
        [busy.clone(), Reply::Json(200, node_json(NODE))],
    );
    let client = client_for(&fake.url, QUICK);
    client.get_node(NODE).await.unwrap();
    assert_eq!(fake.requests().len(), 2);

    fake.on("GET", NODE_PATH, [busy]);
    let err = client.get_node(NODE).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Ironic is unavailable at {}/: HTTP 503 Service Unavailable: Service Unavailable \
             (after 2 retries)",
            fake.url
        )
    );
    assert!(matches!(err, IronicError::Unavailable(_)));
    assert_eq!(fake.requests().len(), 2 + 3);
}

#[tokio::test]
async fn refused_connection_is_unavailable_after_spaced_retries() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let client = client_for(
        &url,
        "max_retries = 2\nretry_interval = 1\nconnect_timeout = 2\nrequest_timeout = 5\n",
    );
    let started = Instant::now();
    let err = client.get_node(NODE).await.unwrap_err();
    let elapsed = started.elapsed();
    let text = err.to_string();
    assert!(matches!(err, IronicError::Unavailable(_)), "{err:?}");
    assert!(
        text.starts_with(&format!(
            "Ironic is unreachable at {url}/: cannot connect: "
        )),
        "{text}"
    );
    assert!(text.ends_with("(after 2 retries)"), "{text}");
    assert!(
        elapsed >= Duration::from_secs(2),
        "two retries one second apart, took {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
}

#[tokio::test]
async fn hanging_ironic_times_out_within_the_bound() {
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Hang]);
    let client = client_for(
        &fake.url,
        "max_retries = 1\nretry_interval = 0\nconnect_timeout = 1\nrequest_timeout = 1\n",
    );
    let started = Instant::now();
    let err = client.get_node(NODE).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        err.to_string(),
        format!(
            "Ironic is unreachable at {}/: timed out waiting for the answer (after 1 retries)",
            fake.url
        )
    );
    // request_timeout × (retries + 1), plus a little.
    assert!(elapsed >= Duration::from_secs(2), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn slow_answer_within_the_timeout_is_accepted() {
    let fake = FakeIronic::start().await;
    let slow = Reply::Slow(
        Duration::from_millis(1500),
        Box::new(Reply::Json(200, node_json(NODE))),
    );
    fake.on("GET", NODE_PATH, [slow]);
    let client = client_for(
        &fake.url,
        "max_retries = 0\nretry_interval = 0\nrequest_timeout = 3\n",
    );
    assert_eq!(client.get_node(NODE).await.unwrap().uuid, NODE);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn unknown_node_is_not_found_with_ironics_message() {
    let fake = FakeIronic::start().await;
    let message = format!("Node {NODE} could not be found.");
    fake.on("GET", NODE_PATH, [ironic_error(404, &message)]);
    let err = client_for(&fake.url, QUICK)
        .get_node(NODE)
        .await
        .unwrap_err();
    match &err {
        IronicError::NotFound(m) => assert_eq!(m, &message),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn bad_request_is_an_api_error_with_the_faultstring() {
    let fake = FakeIronic::start().await;
    let message = "Adding a new attribute (/foo) to the root of the resource is not allowed.";
    fake.on("PATCH", NODE_PATH, [ironic_error(400, message)]);
    let patch = [json!({"op": "add", "path": "/foo", "value": 1})];
    let err = client_for(&fake.url, QUICK)
        .patch_node(NODE, &patch)
        .await
        .unwrap_err();
    match &err {
        IronicError::Api { status, message: m } => {
            assert_eq!(*status, 400);
            assert_eq!(m, message);
        }
        other => panic!("expected Api, got {other:?}"),
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "a 400 is not retried");
    assert_eq!(requests[0].json(), json!(patch));
    assert_eq!(requests[0].header("content-type"), "application/json");
    let api: ironic_inspector::Error = err.into();
    assert_eq!(api.status().as_u16(), 400);
    assert_eq!(api.to_string(), message);
}

#[tokio::test]
async fn server_errors_other_than_503_are_not_retried() {
    let fake = FakeIronic::start().await;
    fake.on(
        "GET",
        NODE_PATH,
        [Reply::Raw(500, "<html>oops</html>".into())],
    );
    let err = client_for(&fake.url, QUICK)
        .get_node(NODE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IronicError::Api { status: 500, message } if message == "Ironic answered HTTP 500 Internal Server Error"),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn malformed_json_is_an_api_error() {
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Raw(200, "{\"uuid\": ".into())]);
    let err = client_for(&fake.url, QUICK)
        .get_node(NODE)
        .await
        .unwrap_err();
    match &err {
        IronicError::Api { status, message } => {
            assert_eq!(*status, 200);
            assert!(
                message.starts_with(&format!("Ironic's answer for node {NODE} cannot be read: ")),
                "{message}"
            );
        }
        other => panic!("expected Api, got {other:?}"),
    }
}

#[tokio::test]
async fn every_page_is_collected_from_our_own_endpoint() {
    let fake = FakeIronic::start().await;
    // Ironic builds `next` from its public URL, which may not be the address we use.
    let elsewhere = "http://ironic.example.invalid:6385/v1/ports/detail";
    fake.on(
        "GET",
        "/v1/ports/detail",
        [
            Reply::Json(
                200,
                json!({"ports": [port_json("p1", "n1", "00:00:00:00:00:01"),
                                 port_json("p2", "n1", "00:00:00:00:00:02")],
                       "next": format!("{elsewhere}?limit=2&marker=p2")}),
            ),
            Reply::Json(
                200,
                json!({"ports": [port_json("p3", "n2", "00:00:00:00:00:03"),
                                 port_json("p4", "n2", "00:00:00:00:00:04")],
                       "next": format!("{elsewhere}?limit=2&marker=p4")}),
            ),
            Reply::Json(
                200,
                json!({"ports": [port_json("p5", "n3", "00:00:00:00:00:05")]}),
            ),
        ],
    );
    let ports = client_for(&fake.url, QUICK).list_ports().await.unwrap();
    let uuids: Vec<&str> = ports.iter().map(|p| p.uuid.as_str()).collect();
    assert_eq!(uuids, ["p1", "p2", "p3", "p4", "p5"]);
    assert_eq!(ports[4].address, "00:00:00:00:00:05");
    assert_eq!(ports[4].node_uuid.as_deref(), Some("n3"));
    let queries: Vec<Option<String>> = fake.requests().into_iter().map(|r| r.query).collect();
    assert_eq!(
        queries,
        [
            None,
            Some("limit=2&marker=p2".to_string()),
            Some("limit=2&marker=p4".to_string())
        ]
    );
    assert_ironic_headers(&fake);
}

#[tokio::test]
async fn node_ports_pages_stay_on_the_node() {
    let fake = FakeIronic::start().await;
    let path = format!("{NODE_PATH}/ports/detail");
    // Ironic's link for a node's ports points at the unfiltered collection.
    fake.on(
        "GET",
        &path,
        [
            Reply::Json(
                200,
                json!({"ports": [port_json("p1", NODE, "00:00:00:00:00:01")],
                       "next": "http://127.0.0.1:1/v1/ports/detail?limit=1&marker=p1"}),
            ),
            Reply::Json(
                200,
                json!({"ports": [port_json("p2", NODE, "00:00:00:00:00:02")]}),
            ),
        ],
    );
    let ports = client_for(&fake.url, QUICK).node_ports(NODE).await.unwrap();
    assert_eq!(ports.len(), 2);
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.path == path), "{requests:?}");
    assert_eq!(requests[1].query.as_deref(), Some("limit=1&marker=p1"));
}

#[tokio::test]
async fn node_uuids_come_from_every_page_of_the_summary_list() {
    let fake = FakeIronic::start().await;
    fake.on(
        "GET",
        "/v1/nodes",
        [
            Reply::Json(
                200,
                json!({"nodes": [{"uuid": "n1", "links": []}, {"uuid": "n2"}],
                       "next": "http://ironic/v1/nodes?fields=uuid,provision_state&limit=2&marker=n2"}),
            ),
            Reply::Json(200, json!({"nodes": [{"uuid": "n3"}], "next": null})),
        ],
    );
    let uuids = client_for(&fake.url, QUICK)
        .list_node_uuids()
        .await
        .unwrap();
    assert_eq!(uuids, ["n1", "n2", "n3"]);
    // `fields=` would need API 1.8; it is not carried over.
    assert_eq!(
        fake.requests()[1].query.as_deref(),
        Some("limit=2&marker=n2")
    );
    assert_ironic_headers(&fake);
}

#[tokio::test]
async fn pagination_that_does_not_advance_is_an_error() {
    let fake = FakeIronic::start().await;
    fake.on(
        "GET",
        "/v1/nodes",
        [Reply::Json(
            200,
            json!({"nodes": [{"uuid": "n1"}], "next": "http://ironic/v1/nodes?marker=n1"}),
        )],
    );
    let err = client_for(&fake.url, QUICK)
        .list_node_uuids()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Ironic's pagination of nodes does not advance (a marker came twice)"
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn reset_connections_are_retried() {
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    fake.reset_next_connections(2);
    let node = client_for(&fake.url, QUICK).get_node(NODE).await.unwrap();
    assert_eq!(node.uuid, NODE);
    assert_eq!(fake.reset_count(), 2);
    assert_eq!(fake.requests().len(), 1);

    fake.reset_next_connections(10);
    let err = client_for(&fake.url, "max_retries = 1\nretry_interval = 0\n")
        .get_node(NODE)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("Ironic is unreachable at {}/: ", fake.url)),
        "{err}"
    );
    assert!(err.to_string().ends_with("(after 1 retries)"), "{err}");
}

#[tokio::test]
async fn concurrent_calls_share_a_capped_pool() {
    let fake = FakeIronic::start().await;
    let slow = Reply::Slow(
        Duration::from_millis(200),
        Box::new(Reply::Json(200, node_json(NODE))),
    );
    fake.on("GET", NODE_PATH, [slow]);
    let client = client_for(&fake.url, QUICK);
    let calls: Vec<_> = (0..24)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_node(NODE).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fake.requests().len(), 24);
    let peak = fake.peak_in_flight();
    assert!(peak <= 8, "at most 8 requests at once, saw {peak}");
    assert!(peak >= 2, "calls do run concurrently, saw {peak}");
}

#[tokio::test]
async fn calls_send_what_ironic_expects() {
    let fake = FakeIronic::start().await;
    let port = port_json("p1", NODE, "52:54:00:12:34:56");
    fake.on(
        "GET",
        &format!("{NODE_PATH}/validate"),
        [Reply::Json(
            200,
            json!({"power": {"result": false, "reason": "Missing ipmi_address"},
                   "boot": {"result": true}}),
        )],
    );
    fake.on(
        "PUT",
        &format!("{NODE_PATH}/management/boot_device"),
        [Reply::Empty(204)],
    );
    fake.on(
        "GET",
        &format!("{NODE_PATH}/management/boot_device"),
        [Reply::Json(
            200,
            json!({"boot_device": "pxe", "persistent": false}),
        )],
    );
    fake.on(
        "PUT",
        &format!("{NODE_PATH}/states/power"),
        [Reply::Empty(202)],
    );
    fake.on("POST", "/v1/ports", [Reply::Json(201, port.clone())]);
    fake.on("PATCH", "/v1/ports/p1", [Reply::Json(200, port)]);
    fake.on("DELETE", "/v1/ports/p1", [Reply::Empty(204)]);
    let client = client_for(&fake.url, QUICK);

    let validation = client.validate_node(NODE).await.unwrap();
    assert!(!validation.power.result);
    assert_eq!(
        validation.power.reason.as_deref(),
        Some("Missing ipmi_address")
    );
    client.set_boot_device(NODE, "pxe", false).await.unwrap();
    assert_eq!(
        client.get_boot_device(NODE).await.unwrap(),
        json!({"boot_device": "pxe", "persistent": false})
    );
    client
        .set_power_state(NODE, PowerTarget::Reboot)
        .await
        .unwrap();
    client
        .set_power_state(NODE, PowerTarget::Off)
        .await
        .unwrap();
    let created = client.create_port(NODE, "52:54:00:12:34:56").await.unwrap();
    assert_eq!(created.uuid, "p1");
    let patch = [json!({"op": "add", "path": "/extra/client_id", "value": "x"})];
    client.patch_port("p1", &patch).await.unwrap();
    client.delete_port("p1").await.unwrap();

    let seen: Vec<(String, String, Value)> = fake
        .requests()
        .into_iter()
        .map(|r| {
            let body = if r.body.is_empty() {
                Value::Null
            } else {
                r.json()
            };
            (r.method, r.path, body)
        })
        .collect();
    let expected = [
        ("GET", format!("{NODE_PATH}/validate"), Value::Null),
        (
            "PUT",
            format!("{NODE_PATH}/management/boot_device"),
            json!({"boot_device": "pxe", "persistent": false}),
        ),
        (
            "GET",
            format!("{NODE_PATH}/management/boot_device"),
            Value::Null,
        ),
        (
            "PUT",
            format!("{NODE_PATH}/states/power"),
            json!({"target": "rebooting"}),
        ),
        (
            "PUT",
            format!("{NODE_PATH}/states/power"),
            json!({"target": "power off"}),
        ),
        (
            "POST",
            "/v1/ports".to_string(),
            json!({"node_uuid": NODE, "address": "52:54:00:12:34:56"}),
        ),
        ("PATCH", "/v1/ports/p1".to_string(), json!(patch)),
        ("DELETE", "/v1/ports/p1".to_string(), Value::Null),
    ];
    let expected: Vec<(String, String, Value)> = expected
        .into_iter()
        .map(|(m, p, b)| (m.to_string(), p, b))
        .collect();
    assert_eq!(seen, expected);
    assert_ironic_headers(&fake);
}

// --- keystone mode, against the real Keystone ---

/// Whether Keystone accepts `token` (checked with the admin's token).
async fn token_is_valid(url: &str, admin_token: &str, token: &str) -> bool {
    let response = client()
        .get(format!("{url}/auth/tokens?nocatalog"))
        .header("X-Auth-Token", admin_token)
        .header("X-Subject-Token", token)
        .send()
        .await
        .unwrap();
    response.status() == 200
}

/// A keystone-mode client, logging in as `who` at `auth_url`.
fn keystone_client(auth_url: &str, who: &Credentials, service_type: &str) -> IronicClient {
    init_logging();
    let config = test_config(
        &std::env::temp_dir(),
        &format!(
            "[ironic]\nauth_strategy = keystone\nos_auth_url = {auth_url}\n\
             os_username = {}\nos_password = {}\nos_tenant_name = {}\n\
             os_service_type = {service_type}\nos_endpoint_type = internalURL\n{QUICK}",
            who.user, who.password, who.project
        ),
    );
    IronicClient::from_config(&config).unwrap()
}

#[tokio::test]
async fn keystone_catalog_gives_the_endpoint_and_the_service_token() {
    let Some(env) = keystone_env("keystone_catalog_gives_the_endpoint_and_the_service_token")
    else {
        return;
    };
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    // The public endpoint is a closed port: using it would fail the calls.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let service = RegisteredService::register(&env, "baremetal", &fake.url, &dead).await;
    // os_auth_url as Liberty configs wrote it, a v2.0 URL.
    let v2 = env.url.trim_end_matches("/v3").to_string() + "/v2.0";
    let client = keystone_client(&v2, &env.service, &service.service_type);

    client.get_node(NODE).await.unwrap();
    client.get_node(NODE).await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let service_token = requests[0].header("X-Auth-Token");
    assert_eq!(
        requests[1].header("X-Auth-Token"),
        service_token,
        "the token is reused"
    );
    assert_eq!(requests[0].header("X-OpenStack-Ironic-API-Version"), "1.6");
    assert!(token_is_valid(&env.url, &service.admin_token, &service_token).await);

    // With the caller's token, that token goes to Ironic, and the endpoint is the same.
    let member = issue_token(&env.url, &env.member).await;
    client
        .with_user_token(Some(&member))
        .get_node(NODE)
        .await
        .unwrap();
    assert_eq!(fake.requests()[2].header("X-Auth-Token"), member);
    // And the plain client still sends the service token.
    client.get_node(NODE).await.unwrap();
    assert_eq!(fake.requests()[3].header("X-Auth-Token"), service_token);
    service.remove().await;
}

#[tokio::test]
async fn keystone_mode_logs_in_again_when_ironic_refuses_the_token() {
    let Some(env) = keystone_env("keystone_mode_logs_in_again_when_ironic_refuses_the_token")
    else {
        return;
    };
    let fake = FakeIronic::start().await;
    fake.on(
        "GET",
        NODE_PATH,
        [
            ironic_error(401, "The request you have made requires authentication."),
            Reply::Json(200, node_json(NODE)),
        ],
    );
    let service = RegisteredService::register(&env, "baremetal", &fake.url, &fake.url).await;
    let client = keystone_client(&env.url, &env.service, &service.service_type);
    client.get_node(NODE).await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let (first, second) = (
        requests[0].header("X-Auth-Token"),
        requests[1].header("X-Auth-Token"),
    );
    assert_ne!(first, second, "a new token after the 401");
    assert!(token_is_valid(&env.url, &service.admin_token, &second).await);

    // A caller's token refused by Ironic is the caller's problem: no new login, no retry.
    fake.on(
        "GET",
        NODE_PATH,
        [ironic_error(
            401,
            "The request you have made requires authentication.",
        )],
    );
    let err = client
        .with_user_token(Some("not-a-token"))
        .get_node(NODE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IronicError::Api { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 3);
    service.remove().await;
}

#[tokio::test]
async fn keystone_mode_without_ironic_in_the_catalog_is_unavailable() {
    let Some(env) = keystone_env("keystone_mode_without_ironic_in_the_catalog_is_unavailable")
    else {
        return;
    };
    let client = keystone_client(&env.url, &env.service, "no-such-service-type");
    let err = client.get_node(NODE).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Ironic is not in the Keystone catalog (service type no-such-service-type, \
         interface internal)"
    );
    assert!(matches!(err, IronicError::Unavailable(_)));

    let wrong = Credentials {
        user: env.service.user.clone(),
        password: "not-the-password".to_string(),
        project: env.service.project.clone(),
    };
    let client = keystone_client(&env.url, &wrong, "baremetal");
    let err = client.get_node(NODE).await.unwrap_err();
    assert!(matches!(err, IronicError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot find Ironic's endpoint: Keystone at"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}

/// Over the API: with Keystone on both sides, the caller's token reaches Ironic for the calls
/// of `POST /v1/introspection` and its background part, as in 2.2.
#[tokio::test]
async fn introspection_calls_ironic_with_the_callers_token() {
    let Some(env) = keystone_env("introspection_calls_ironic_with_the_callers_token") else {
        return;
    };
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    fake.on(
        "GET",
        &format!("{NODE_PATH}/validate"),
        [Reply::Json(200, json!({"power": {"result": true}}))],
    );
    fake.on(
        "GET",
        &format!("{NODE_PATH}/ports/detail"),
        [Reply::Json(200, json!({"ports": []}))],
    );
    fake.on(
        "PUT",
        &format!("{NODE_PATH}/management/boot_device"),
        [Reply::Empty(204)],
    );
    fake.on(
        "PUT",
        &format!("{NODE_PATH}/states/power"),
        [Reply::Empty(202)],
    );
    let service = RegisteredService::register(&env, "baremetal", &fake.url, &fake.url).await;
    let app = crate::helpers::spawn_app_with(&format!(
        "[DEFAULT]\nauth_strategy = keystone\n\
         [ironic]\nauth_strategy = keystone\nos_auth_url = {}\nos_username = {}\n\
         os_password = {}\nos_tenant_name = {}\nos_service_type = {}\n{QUICK}",
        env.url, env.service.user, env.service.password, env.service.project, service.service_type
    ))
    .await;
    let caller = issue_token(&env.url, &env.admin).await;
    let response = app
        .client
        .post(format!("{}/v1/introspection/{NODE}", app.address))
        .header("X-Auth-Token", &caller)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    crate::helpers::wait_for(Duration::from_secs(10), "the reboot", || async {
        fake.requests()
            .iter()
            .any(|r| r.path.ends_with("/states/power"))
            .then_some(())
    })
    .await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 5, "{requests:?}");
    for request in &requests {
        assert_eq!(
            request.header("X-Auth-Token"),
            caller,
            "{} {}",
            request.method,
            request.path
        );
    }
    app.stop().await;
    service.remove().await;
}
