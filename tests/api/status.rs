//! `GET /v1/introspection/<uuid>`.

use serde_json::json;

use crate::helpers::{assert_error, assert_version_headers, spawn_app};

const UUID: &str = "0e2a3b5c-1f4d-4e6a-9b7c-8d9e0f1a2b3c";

#[tokio::test]
async fn malformed_uuid_is_400_and_unknown_node_is_404() {
    let app = spawn_app().await;
    for bad in [
        "abc",
        "0e2a3b5c-1f4d-4e6a-9b7c",
        "zzzzzzzz-1f4d-4e6a-9b7c-8d9e0f1a2b3c",
    ] {
        let response = app.get(&format!("/v1/introspection/{bad}"), &[]).await;
        assert_error(response, 400, "Invalid UUID value").await;
    }
    let response = app.get(&format!("/v1/introspection/{UUID}"), &[]).await;
    assert_error(
        response,
        404,
        &format!("Could not find node {UUID} in cache"),
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn status_of_running_and_finished_nodes() {
    let app = spawn_app().await;
    app.state
        .node_cache
        .add_node(UUID, Some("10.0.0.1"))
        .await
        .unwrap();
    let response = app.get(&format!("/v1/introspection/{UUID}"), &[]).await;
    assert_eq!(response.status(), 200);
    assert_version_headers(&response);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, json!({"finished": false, "error": null}));

    // Upstream accepted braces, urn:uuid: and upper case; they all name the same node.
    for form in [
        UUID.to_uppercase(),
        format!("{{{UUID}}}"),
        format!("urn:uuid:{UUID}"),
        UUID.replace('-', ""),
    ] {
        let response = app.get(&format!("/v1/introspection/{form}"), &[]).await;
        assert_eq!(response.status(), 200, "{form}");
    }

    app.state
        .node_cache
        .finished(UUID, Some("Introspection timeout"))
        .await
        .unwrap();
    let body = app.introspection_status(UUID).await;
    assert_eq!(
        body,
        json!({"finished": true, "error": "Introspection timeout"})
    );

    // An empty error string reads as null, as upstream reported it.
    app.state.node_cache.add_node(UUID, None).await.unwrap();
    app.state.node_cache.finished(UUID, Some("")).await.unwrap();
    let body = app.introspection_status(UUID).await;
    assert_eq!(body, json!({"finished": true, "error": null}));
    app.stop().await;
}
