//! `/v1/rules` and `/v1/rules/{uuid}` (API 1.2): introspection rules.
//!
//! Ports `api_rules`, `api_rule` and `rule_repr` of upstream `main.py`. Like 2.2, the routes
//! answer on every API version (2.2 advertised 1.2 for them but did not enforce it), creation
//! answers 200 (not 201), and `links` are relative paths.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::rules::{self, NewRule, Rule};

use super::{AppState, Authorized, JsonObject, parse_uuid};

/// A rule as the API shows it: upstream's representation plus its `links`.
fn representation(rule: &Rule, short: bool) -> Value {
    let mut value = rule.as_json(short);
    if let Value::Object(map) = &mut value {
        map.insert(
            "links".to_string(),
            json!([{"href": format!("/v1/rules/{}", rule.uuid), "rel": "self"}]),
        );
    }
    value
}

/// A rule UUID from a path: canonical when it looks like a UUID, as given otherwise (then it
/// names no rule, and the answer is 404 as in 2.2).
fn rule_key(uuid: &str) -> String {
    parse_uuid(uuid).unwrap_or_else(|_| uuid.to_string())
}

/// `POST /v1/rules`: creates a rule; 200 with its full representation.
pub async fn create(
    _auth: Authorized,
    State(state): State<AppState>,
    JsonObject(mut body): JsonObject,
) -> Result<Json<Value>> {
    let uuid = match body.remove("uuid") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(parse_uuid(&s)?),
        Some(Value::Bool(false)) => None,
        Some(_) => return Err(Error::BadRequest("Invalid UUID value".to_string())),
    };
    let description = match body.remove("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(Error::BadRequest(
                "Invalid request body: description must be a string".to_string(),
            ));
        }
    };
    let rule = rules::create(
        &state.db,
        NewRule {
            uuid,
            description,
            conditions: body.remove("conditions").unwrap_or_else(|| json!([])),
            actions: body.remove("actions").unwrap_or_else(|| json!([])),
        },
    )
    .await?;
    Ok(Json(representation(&rule, false)))
}

/// `GET /v1/rules`: every rule in creation order, short form.
pub async fn list(_auth: Authorized, State(state): State<AppState>) -> Result<Json<Value>> {
    let all = rules::get_all(&state.db).await?;
    let items: Vec<Value> = all.iter().map(|rule| representation(rule, true)).collect();
    Ok(Json(json!({ "rules": items })))
}

/// `DELETE /v1/rules`: deletes every rule; 204.
pub async fn delete_all(_auth: Authorized, State(state): State<AppState>) -> Result<StatusCode> {
    rules::delete_all(&state.db).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/rules/{uuid}`: one rule, full form; 404 when there is none.
pub async fn get(
    _auth: Authorized,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<Json<Value>> {
    let rule = rules::get(&state.db, &rule_key(&uuid)).await?;
    Ok(Json(representation(&rule, false)))
}

/// `DELETE /v1/rules/{uuid}`: 204, or 404 when there is none.
pub async fn delete(
    _auth: Authorized,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<StatusCode> {
    let key = rule_key(&uuid);
    rules::delete(&state.db, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
