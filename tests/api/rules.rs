//! `/v1/rules`: creation, validation errors, listing, deletion.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

async fn post(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/rules", app.address))
        .header("X-OpenStack-Ironic-Inspector-API-Version", "1.2")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `METHOD path`, without a body.
async fn send(app: &TestApp, method: Method, path: &str) -> reqwest::Response {
    app.client
        .request(method, format!("{}{path}", app.address))
        .send()
        .await
        .unwrap()
}

async fn message_of(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    body["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn create_get_list_delete() {
    let app = spawn_app().await;
    // Only actions: always applies.
    let response = post(&app, json!({"actions": [{"action": "example"}]})).await;
    assert_eq!(response.status(), 200);
    let first: Value = response.json().await.unwrap();
    let first_uuid = first["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        first,
        json!({
            "uuid": first_uuid,
            "description": null,
            "conditions": [],
            "actions": [{"action": "example"}],
            "links": [{"href": format!("/v1/rules/{first_uuid}"), "rel": "self"}],
        })
    );

    // With conditions, an explicit uuid and a description.
    let uuid = "7c1f2e3d-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
    let rule = json!({
        "uuid": uuid,
        "description": "big memory gets a profile",
        "conditions": [
            {"op": "ge", "field": "memory_mb", "value": 16384},
            {"op": "in-net", "field": "ipmi_address", "value": "192.0.2.0/24", "multiple": "all"},
        ],
        "actions": [
            {"action": "set-capability", "name": "profile", "value": "compute"},
            {"action": "set-attribute", "path": "/extra/checked", "value": true},
        ],
    });
    let response = post(&app, rule.clone()).await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["uuid"], uuid);
    assert_eq!(created["description"], "big memory gets a profile");
    assert_eq!(created["actions"], rule["actions"]);
    assert_eq!(created["conditions"][0], rule["conditions"][0]);
    assert_eq!(created["conditions"][1]["value"], "192.0.2.0/24");

    // GET answers what POST answered.
    let got: Value = app
        .get(&format!("/v1/rules/{uuid}"), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);
    let upper: Value = app
        .get(&format!("/v1/rules/{}", uuid.to_uppercase()), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(upper, created);

    // The list is short and in creation order.
    let list: Value = app.get("/v1/rules", &[]).await.json().await.unwrap();
    assert_eq!(
        list,
        json!({"rules": [
            {"uuid": first_uuid, "description": null,
             "links": [{"href": format!("/v1/rules/{first_uuid}"), "rel": "self"}]},
            {"uuid": uuid, "description": "big memory gets a profile",
             "links": [{"href": format!("/v1/rules/{uuid}"), "rel": "self"}]},
        ]})
    );

    // Duplicate uuid.
    assert_error(
        post(&app, rule).await,
        409,
        &format!("Rule with UUID {uuid} already exists"),
    )
    .await;

    // Delete one, then all.
    let response = send(&app, Method::DELETE, &format!("/v1/rules/{uuid}")).await;
    assert_eq!(response.status(), 204);
    assert_error(
        app.get(&format!("/v1/rules/{uuid}"), &[]).await,
        404,
        &format!("Rule {uuid} was not found"),
    )
    .await;
    let response = send(&app, Method::DELETE, &format!("/v1/rules/{uuid}")).await;
    assert_error(response, 404, &format!("Rule {uuid} was not found")).await;
    assert_eq!(send(&app, Method::DELETE, "/v1/rules").await.status(), 204);
    let list: Value = app.get("/v1/rules", &[]).await.json().await.unwrap();
    assert_eq!(list, json!({"rules": []}));
    // PUT is not a method of this resource.
    let response = send(&app, Method::PUT, "/v1/rules").await;
    assert_error(response, 405, "Method Not Allowed").await;
    app.stop().await;
}

#[tokio::test]
async fn invalid_rules_are_400_with_the_reason() {
    let app = spawn_app().await;
    let act = json!([{"action": "example"}]);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"uuid": "not-a-uuid", "actions": act}),
            "Invalid UUID value",
        ),
        (json!({"actions": []}), "Validation failed for actions: "),
        (json!({}), "Validation failed for actions: "),
        (
            json!({"actions": [{"action": "explode"}]}),
            "Validation failed for actions: ",
        ),
        (
            json!({"actions": [{"name": "x"}]}),
            "Validation failed for actions: ",
        ),
        (
            json!({"conditions": [{"op": "matches", "field": "x", "value": 1}], "actions": act}),
            "Validation failed for conditions: ",
        ),
        (
            json!({"conditions": [{"op": "eq", "value": 1}], "actions": act}),
            "Validation failed for conditions: ",
        ),
        (
            json!({"conditions": [{"op": "eq", "field": "x", "value": 1, "multiple": "some"}], "actions": act}),
            "Validation failed for conditions: ",
        ),
        (
            json!({"conditions": [{"op": "eq", "field": "x[", "value": 1}], "actions": act}),
            "Unable to parse field JSON path x[: ",
        ),
        (
            json!({"conditions": [{"op": "eq", "field": "x"}], "actions": act}),
            "Invalid parameters for operator eq: missing required parameter(s): value",
        ),
        (
            json!({"conditions": [{"op": "in-net", "field": "ipmi_address", "value": "not-a-net"}], "actions": act}),
            "Invalid parameters for operator in-net: ",
        ),
        (
            json!({"actions": [{"action": "set-attribute", "path": "/extra/x"}]}),
            "Invalid parameters for action set-attribute: missing required parameter(s): value",
        ),
        (
            json!({"actions": [{"action": "fail"}]}),
            "Invalid parameters for action fail: missing required parameter(s): message",
        ),
        (
            json!({"actions": [{"action": "example", "extra": 1}]}),
            "Invalid parameters for action example: unexpected parameter(s): extra",
        ),
    ];
    for (body, prefix) in cases {
        let message = message_of(post(&app, body.clone()).await, 400).await;
        assert!(message.starts_with(prefix), "{body}: {message}");
    }
    // Not an object at all.
    let response = app
        .client
        .post(format!("{}/v1/rules", app.address))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        400,
        "Invalid request body: expected a JSON object",
    )
    .await;
    // Nothing was stored by any of them.
    let list: Value = app.get("/v1/rules", &[]).await.json().await.unwrap();
    assert_eq!(list, json!({"rules": []}));
    app.stop().await;
}
