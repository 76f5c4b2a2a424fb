//! Versions, discovery documents and the error bodies of the API shell.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_error, assert_version_headers, spawn_app};

#[tokio::test]
async fn root_lists_the_current_version() {
    let app = spawn_app().await;
    let response = app.get("/", &[]).await;
    assert_eq!(response.status(), 200);
    assert_version_headers(&response);
    let port = app.address.rsplit(':').next().unwrap().to_string();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"versions": [{
            "status": "CURRENT",
            "id": "1.2",
            "links": [{"rel": "self", "href": format!("http://127.0.0.1:{port}/v1")}],
        }]})
    );
    app.stop().await;
}

#[tokio::test]
async fn links_follow_the_host_the_client_used() {
    let app = spawn_app().await;
    let body: serde_json::Value = app
        .get("/", &[("Host", "inspector.example.org:5050")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["versions"][0]["links"][0]["href"],
        "http://inspector.example.org:5050/v1"
    );
    app.stop().await;
}

#[tokio::test]
async fn v1_lists_continue_and_rules() {
    let app = spawn_app().await;
    let response = app.get("/v1", &[("Host", "h:1")]).await;
    assert_eq!(response.status(), 200);
    assert_version_headers(&response);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"resources": [
            {"name": "continue", "links": [{"rel": "self", "href": "http://h:1/v1/continue"}]},
            {"name": "rules", "links": [{"rel": "self", "href": "http://h:1/v1/rules"}]},
        ]})
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_versions_and_routes_are_404() {
    let app = spawn_app().await;
    for path in ["/v2", "/v-1", "/v."] {
        assert_error(app.get(path, &[]).await, 404, "Version not found.").await;
    }
    for path in ["/v1/foobar", "/v1/introspection", "/a/b/c/d"] {
        assert_error(app.get(path, &[]).await, 404, "Not Found").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn version_header_is_negotiated_before_routing() {
    let app = spawn_app().await;
    for version in ["1.0", "1.1", "1.2"] {
        let response = app
            .get(
                "/",
                &[("X-OpenStack-Ironic-Inspector-API-Version", version)],
            )
            .await;
        assert_eq!(response.status(), 200, "{version}");
    }
    let unsupported = [
        ("1.3", "1.3"),
        ("2.0", "2.0"),
        ("0.9", "0.9"),
        ("1", "1"),
        ("1.2.3", "1.2.3"),
    ];
    for (header, shown) in unsupported {
        for path in ["/", "/v1/foobar", "/v1/introspection/abc"] {
            let response = app
                .get(
                    path,
                    &[("X-OpenStack-Ironic-Inspector-API-Version", header)],
                )
                .await;
            let message = format!("Unsupported API version {shown}, supported range is 1.0 to 1.2");
            assert_error(response, 406, &message).await;
        }
    }
    for header in ["abc", "1.x", "", "1."] {
        let response = app
            .get(
                "/v1/foobar",
                &[("X-OpenStack-Ironic-Inspector-API-Version", header)],
            )
            .await;
        assert_error(
            response,
            400,
            "Malformed API version: expected string in form of X.Y",
        )
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let app = spawn_app().await;
    let response = app.request(Method::PUT, "/").await;
    assert_eq!(response.headers()["allow"], "GET,HEAD");
    assert_error(response, 405, "Method Not Allowed").await;
    let response = app
        .request(
            Method::DELETE,
            "/v1/introspection/0e2a3b5c-1f4d-4e6a-9b7c-8d9e0f1a2b3c",
        )
        .await;
    assert_error(response, 405, "Method Not Allowed").await;
    app.stop().await;
}

#[tokio::test]
async fn links_use_the_public_endpoint_behind_a_proxy() {
    let app = crate::helpers::spawn_app_with(
        "[DEFAULT]\npublic_endpoint = https://inspector.example.org/baremetal-introspection/\n",
    )
    .await;
    let body: serde_json::Value = app.get("/", &[]).await.json().await.unwrap();
    assert_eq!(
        body["versions"][0]["links"][0]["href"],
        "https://inspector.example.org/baremetal-introspection/v1"
    );
    let body: serde_json::Value = app.get("/v1", &[]).await.json().await.unwrap();
    assert_eq!(
        body["resources"][0]["links"][0]["href"],
        "https://inspector.example.org/baremetal-introspection/v1/continue"
    );
    app.stop().await;
}
