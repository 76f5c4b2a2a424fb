//! `/v1/introspection/{uuid}`: start introspection of a node, and read its status.
//!
//! Ports `api_introspection` of upstream `main.py`. The work itself is in
//! [`crate::introspect`].

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::error::Error;
use crate::introspect::{self, NewIpmiCredentials};
use crate::storage;

use crate::error::Result;

use super::{AppState, Authorized, parse_uuid};

/// The node's UUID from the path, in canonical form (see [`parse_uuid`]), recorded on the
/// request's span.
fn node_uuid(raw: &str) -> Result<String> {
    let uuid = parse_uuid(raw)?;
    tracing::Span::current().record("node.uuid", uuid.as_str());
    Ok(uuid)
}

/// `GET /v1/introspection/{uuid}`: `{"finished": bool, "error": str|null}` from the cache
/// alone; the node need not exist in Ironic any more.
pub async fn get_status(
    _auth: Authorized,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<Json<Value>> {
    let uuid = node_uuid(&uuid)?;
    let node = state.node_cache.get_node(&uuid).await?;
    // Upstream reported an empty error string as null.
    let error = node.error.filter(|e| !e.is_empty());
    Ok(Json(json!({
        "finished": node.finished_at.is_some(),
        "error": error,
    })))
}

/// `POST /v1/introspection/{uuid}[?new_ipmi_password=…&new_ipmi_username=…]`: 202 once the
/// node is recorded; the body (Ironic sends `{"uuid": …}`) is ignored, as in 2.2.
pub async fn start(
    auth: Authorized,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<StatusCode> {
    let uuid = node_uuid(&uuid)?;
    // A user name alone changes nothing: only a non-empty password asks for new credentials.
    let new_credentials = query
        .get("new_ipmi_password")
        .filter(|p| !p.is_empty())
        .map(|password| NewIpmiCredentials {
            username: query.get("new_ipmi_username").cloned(),
            password: SecretString::from(password.clone()),
        });
    let manage_boot = match query.get("manage_boot") {
        None => true,
        Some(value) => parse_bool(value).ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid value for manage_boot: expected true or false, got {value:?}"
            ))
        })?,
    };
    introspect::introspect(
        &state,
        &uuid,
        new_credentials,
        manage_boot,
        auth.token.as_deref(),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// `true`/`false` in any case, as Ironic sends `manage_boot`.
fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// `POST /v1/introspection/{uuid}/abort` (upstream 12.x, answered on every API version):
/// 202 once the introspection is stopped.
pub async fn abort(
    auth: Authorized,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<StatusCode> {
    let uuid = node_uuid(&uuid)?;
    introspect::abort(&state, &uuid, auth.token.as_deref()).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /v1/introspection/{uuid}/data` (API 1.1): the processed data as stored.
pub async fn get_data(
    _auth: Authorized,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<Response> {
    let uuid = node_uuid(&uuid)?;
    let body = storage::load(&state, &uuid).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::text;

    proptest! {
        #[test]
        fn manage_boot_is_true_or_false_in_any_case(
            word in prop_oneof![
                prop::sample::select(vec!["true", "false"]).prop_flat_map(|w| {
                    prop::collection::vec(any::<bool>(), w.len()).prop_map(move |up| {
                        w.chars().zip(up).map(|(c, u)| if u { c.to_ascii_uppercase() } else { c }).collect::<String>()
                    })
                }),
                text(),
            ],
        ) {
            let expected = match word.to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            };
            prop_assert_eq!(parse_bool(&word), expected);
        }
    }
}
