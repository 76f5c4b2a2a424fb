//! `/v1/introspection/{uuid}`: the status of a node's introspection.
//!
//! Ports `api_introspection` (GET) of upstream `main.py`; starting introspection (POST) and
//! the data endpoint belong to the introspection and processing workflows.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::error::Result;

use super::{AppState, Authorized, parse_uuid};

/// `GET /v1/introspection/{uuid}`: `{"finished": bool, "error": str|null}` from the cache
/// alone; the node need not exist in Ironic any more.
pub async fn get_status(
    _auth: Authorized,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<Json<Value>> {
    let uuid = parse_uuid(&uuid)?;
    tracing::Span::current().record("node.uuid", uuid.as_str());
    let node = state.node_cache.get_node(&uuid).await?;
    // Upstream reported an empty error string as null.
    let error = node.error.filter(|e| !e.is_empty());
    Ok(Json(json!({
        "finished": node.finished_at.is_some(),
        "error": error,
    })))
}
