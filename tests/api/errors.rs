//! Error bodies for failures that no endpoint of this build produces by itself yet: bodies
//! that are too large, malformed or not objects, and panics. Extra routes are mounted behind
//! exactly the layers of the real router.

use axum::Router;
use axum::routing::{get, post};
use ironic_inspector::api::{JsonObject, with_layers};
use serde_json::json;

use crate::helpers::{TestApp, assert_error, spawn_app_with};

async fn echo(JsonObject(body): JsonObject) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::Value::Object(body))
}

async fn explode() -> &'static str {
    panic!("boom")
}

async fn serve_test_routes(extra: &str) -> (String, crate::helpers::TestApp) {
    let app = spawn_app_with(extra).await;
    let routes = Router::new()
        .route("/test/echo", post(echo))
        .route("/test/panic", get(explode));
    let router = with_layers(routes, app.state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, app)
}

#[tokio::test]
async fn json_bodies() {
    let (address, app) =
        serve_test_routes("[oslo_middleware]\nmax_request_body_size = 1024\n").await;
    let client = &app.client;
    let url = format!("{address}/test/echo");

    // Parsed whatever the content type says, as upstream did.
    let response = client
        .post(&url)
        .header("Content-Type", "text/plain")
        .body(r#"{"a": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({"a": 1})
    );

    let response = client.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Invalid request body: malformed JSON"),
        "{message}"
    );

    for not_object in ["[1, 2]", "\"text\"", "null", "3"] {
        let response = client.post(&url).body(not_object).send().await.unwrap();
        assert_error(
            response,
            400,
            "Invalid request body: expected a JSON object",
        )
        .await;
    }

    let big = format!(r#"{{"logs": "{}"}}"#, "x".repeat(2048));
    let response = client.post(&url).body(big).send().await.unwrap();
    assert_error(response, 413, "Request body is too large").await;
    app.stop().await;
}

/// `GET /test/panic`: a handler that panics.
async fn get_panic(app: &TestApp, address: &str) -> reqwest::Response {
    let url = format!("{address}/test/panic");
    app.client.get(url).send().await.unwrap()
}

#[tokio::test]
async fn panics_are_500_and_detail_only_with_debug() {
    let (address, app) = serve_test_routes("").await;
    let response = get_panic(&app, &address).await;
    assert_error(response, 500, "Internal server error").await;
    // The server survives the panic.
    let response = app
        .client
        .post(format!("{address}/test/echo"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.stop().await;

    let (address, app) = serve_test_routes("[DEFAULT]\ndebug = true\n").await;
    let response = get_panic(&app, &address).await;
    assert_error(
        response,
        500,
        "Internal server error (Panic): a request handler panicked: boom",
    )
    .await;
    app.stop().await;
}
