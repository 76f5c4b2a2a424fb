//! The HTTP API: routes, version negotiation, authentication checks and error bodies.
//!
//! Ports the Flask application of upstream `main.py`. This layer only extracts and checks
//! input, calls one workflow or domain function and renders the answer; every failure leaves
//! as `{"error": {"message": ...}}` with the minimum/maximum version headers, including the
//! framework's own 404/405/413 answers and panics.

mod body;
pub mod introspection;
pub mod ramdisk;
pub mod rules;
pub mod version;

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use crate::state::AppState;

use crate::auth::keystone::AUTH_TOKEN_HEADER;
use crate::error::{DebugDetail, Error, Result};

/// Builds the whole API.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(version::root))
        .route("/{version}", get(version::version_root))
        .route(
            "/v1/introspection/{uuid}",
            get(introspection::get_status).post(introspection::start),
        )
        .route(
            "/v1/introspection/{uuid}/data",
            get(introspection::get_data),
        )
        .route("/v1/introspection/{uuid}/abort", post(introspection::abort))
        .route("/v1/continue", post(ramdisk::post_continue))
        .route(
            "/v1/rules",
            get(rules::list)
                .post(rules::create)
                .delete(rules::delete_all),
        )
        .route("/v1/rules/{uuid}", get(rules::get).delete(rules::delete));
    with_layers(routes, state)
}

/// Wraps routes in the layers every answer goes through: (outermost first) version headers,
/// error bodies, the body guard, panic catching, tracing, version negotiation, body limit,
/// and the 404 fallback. Public so tests can put extra routes behind exactly the same layers.
pub fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let body_limit = state.config.oslo_middleware.max_request_body_size;
    routes
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(version::check_version))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|p| p.as_str().to_string());
                tracing::info_span!(
                    "request",
                    http.method = %request.method(),
                    http.path = %request.uri().path(),
                    http.route = route.as_deref().unwrap_or(""),
                    node.uuid = tracing::field::Empty,
                )
            }),
        )
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), body::guard))
        .layer(middleware::from_fn_with_state(state.clone(), render_errors))
        .layer(middleware::from_fn(version::add_version_headers))
        .with_state(state)
}

/// A panicking handler becomes a 500 like any other internal error; its message is logged and
/// shown to clients only with `debug`.
fn panic_response(payload: Box<dyn std::any::Any + Send>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown cause".to_string());
    Error::internal("Panic", format!("a request handler panicked: {message}")).into_response()
}

/// Unknown routes.
async fn not_found() -> Error {
    Error::NotFound("Not Found".to_string())
}

/// Gives the framework's own error answers (405 from the method router, 413 from the body
/// limit, ...) our JSON body, and appends the cause to 500 answers when `debug` is on.
async fn render_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    if let Some(DebugDetail(detail)) = response.extensions().get::<DebugDetail>().cloned() {
        if state.config.default.debug {
            let (parts, _) = response.into_parts();
            let body = json!({"error": {"message": format!("Internal server error {detail}")}});
            return Response::from_parts(parts, Body::from(body.to_string()));
        }
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "Method Not Allowed".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large".to_string(),
        other => other
            .canonical_reason()
            .unwrap_or("Request failed")
            .to_string(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = json!({"error": {"message": message}});
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// A request body that must be a JSON object. Upstream parsed any body as JSON whatever its
/// `Content-Type`, and so do we; a body that is JSON but not an object is a 400 here (upstream
/// answered 500).
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge("Request body is too large".to_string())
                } else {
                    Error::BadRequest(format!("Cannot read request body: {rejection}"))
                }
            })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(Error::BadRequest(
                "Invalid request body: expected a JSON object".to_string(),
            )),
            Err(err) => Err(Error::BadRequest(format!(
                "Invalid request body: malformed JSON ({err})"
            ))),
        }
    }
}

/// Proof that the caller passed the authentication check of a protected endpoint. Taking it
/// as a handler's first argument makes the check run before anything else (upstream checked
/// auth before validating the UUID).
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The caller's token, when it sent one (later forwarded to Ironic, as upstream did).
    pub token: Option<String>,
}

impl FromRequestParts<AppState> for Authorized {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = parts
            .headers
            .get(AUTH_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        state.auth.authorize(token.as_deref()).await?;
        Ok(Authorized { token })
    }
}

/// Parses a node or rule UUID as upstream's `is_uuid_like` accepted it (braces, `urn:uuid:`,
/// any case, with or without hyphens) and returns the canonical lowercase hyphenated form,
/// which is what we store and send to Ironic.
pub fn parse_uuid(text: &str) -> Result<String> {
    let cleaned = text
        .replace("urn:", "")
        .replace("uuid:", "")
        .trim_matches(|c| c == '{' || c == '}')
        .replace('-', "")
        .to_ascii_lowercase();
    if cleaned.len() != 32 || !cleaned.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::BadRequest("Invalid UUID value".to_string()));
    }
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &cleaned[0..8],
        &cleaned[8..12],
        &cleaned[12..16],
        &cleaned[16..20],
        &cleaned[20..32]
    ))
}

/// How long a graceful stop may take before open connections are cut.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_forms_upstream_accepted() {
        let canonical = "0e2a3b5c-1f4d-4e6a-9b7c-8d9e0f1a2b3c";
        for form in [
            canonical,
            "0E2A3B5C-1F4D-4E6A-9B7C-8D9E0F1A2B3C",
            "{0e2a3b5c-1f4d-4e6a-9b7c-8d9e0f1a2b3c}",
            "urn:uuid:0e2a3b5c-1f4d-4e6a-9b7c-8d9e0f1a2b3c",
            "0e2a3b5c1f4d4e6a9b7c8d9e0f1a2b3c",
        ] {
            assert_eq!(parse_uuid(form).unwrap(), canonical, "{form}");
        }
        for bad in [
            "",
            "abc",
            "0e2a3b5c-1f4d-4e6a-9b7c-8d9e0f1a2b3",
            "g".repeat(32).as_str(),
        ] {
            assert_eq!(
                parse_uuid(bad).unwrap_err().to_string(),
                "Invalid UUID value"
            );
        }
    }
}

#[cfg(test)]
mod uuid_properties {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;
    use crate::testing::{hostile_char, text};

    fn canonical_shape(s: &str) -> bool {
        s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
            })
    }

    /// The canonical form of 16 bytes, and a spelling 2.2 accepted for it.
    fn spelled_uuid() -> impl Strategy<Value = (String, String)> {
        (
            any::<[u8; 16]>(),
            prop::collection::vec(any::<bool>(), 32),
            prop::collection::vec(0usize..3, 33),
            0..4usize,
        )
            .prop_map(|(bytes, upper, hyphens, wrapper)| {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let canonical = format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                );
                // Hyphens anywhere (2.2 removed them all), digits in any case.
                let mut spelled = String::new();
                for (i, c) in hex.chars().enumerate() {
                    spelled.push_str(&"-".repeat(hyphens[i]));
                    spelled.push(if upper[i] { c.to_ascii_uppercase() } else { c });
                }
                spelled.push_str(&"-".repeat(hyphens[32]));
                let spelled = match wrapper {
                    0 => spelled,
                    1 => format!("{{{spelled}}}"),
                    2 => format!("urn:uuid:{spelled}"),
                    _ => format!("{{{{urn:{spelled}}}"),
                };
                (canonical, spelled)
            })
    }

    proptest! {
        #[test]
        fn any_text_is_a_canonical_uuid_or_a_400(value in prop_oneof![text(), spelled_uuid().prop_map(|(_, s)| s)]) {
            match parse_uuid(&value) {
                Ok(uuid) => {
                    prop_assert!(canonical_shape(&uuid), "{uuid}");
                    prop_assert_eq!(parse_uuid(&uuid).unwrap(), uuid);
                }
                Err(Error::BadRequest(message)) => prop_assert_eq!(message, "Invalid UUID value"),
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn every_accepted_spelling_gives_the_canonical_form((canonical, spelled) in spelled_uuid()) {
            prop_assert_eq!(parse_uuid(&spelled).unwrap(), canonical);
        }

        #[test]
        fn a_wrong_or_missing_digit_is_refused(
            (_, spelled) in spelled_uuid(),
            at in any::<Index>(),
            replacement in hostile_char().prop_filter("not hex or separator", |c| {
                !c.is_ascii_hexdigit() && !matches!(c, '-' | '{' | '}' | ':')
            }),
            drop in any::<bool>(),
        ) {
            // The digits of the UUID itself (the 'd' of "uuid:" is a hex digit too).
            let start = spelled.find("uuid:").map_or(0, |at| at + 5);
            let digits: Vec<usize> = spelled
                .char_indices()
                .filter(|(i, c)| *i >= start && c.is_ascii_hexdigit())
                .map(|(i, _)| i)
                .collect();
            let i = digits[at.index(digits.len())];
            let mut bad = spelled.clone();
            if drop {
                bad.remove(i);
            } else {
                bad.replace_range(i..=i, &replacement.to_string());
            }
            prop_assert!(parse_uuid(&bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod body_properties {
    use axum::body::Body;
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{json_value, mutated_payload, text};

    fn read(bytes: Vec<u8>) -> Result<JsonObject> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let request = Request::builder()
            .method("POST")
            .uri("/v1/continue")
            .body(Body::from(bytes))
            .unwrap();
        runtime.block_on(JsonObject::from_request(request, &()))
    }

    /// Bodies a client may send: JSON of any shape, broken JSON, deep nesting, raw bytes.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            mutated_payload().prop_map(|v| v.to_string().into_bytes()),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            (json_value(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
                let text = v.to_string().into_bytes();
                text[..cut.index(text.len() + 1)].to_vec()
            }),
            (1usize..5_000, prop::sample::select(vec!["[", "{\"a\":"]))
                .prop_map(|(n, open)| open.repeat(n).into_bytes()),
            prop::collection::vec(any::<u8>(), 0..64),
            text().prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #[test]
        fn any_body_is_an_object_or_a_400(bytes in body()) {
            let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
            match read(bytes) {
                Ok(JsonObject(map)) => prop_assert_eq!(Some(Value::Object(map)), parsed),
                Err(Error::BadRequest(message)) => {
                    prop_assert!(message.starts_with("Invalid request body: "), "{message}");
                    prop_assert!(!matches!(parsed, Some(Value::Object(_))));
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
