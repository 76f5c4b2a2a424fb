//! `POST /v1/continue`: the ramdisk's report. Unauthenticated, as in 2.2: the ramdisk has no
//! token. (The module is not called `continue`, a Rust keyword.)
//!
//! Ports `api_continue` of upstream `main.py`; the work is in [`crate::process`].

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::error::Result;

use super::{AppState, JsonObject};

/// Processes the report and answers `{"uuid": …}` (plus the new IPMI credentials when they
/// were requested for the node).
pub async fn post_continue(
    State(state): State<AppState>,
    JsonObject(payload): JsonObject,
) -> Result<Json<Value>> {
    let answer = crate::process::process(&state, payload).await?;
    Ok(Json(answer))
}
