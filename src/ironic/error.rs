//! What can go wrong in a call to Ironic, and how Ironic's own error text is found.
//!
//! Ports the exception classes of python-ironicclient that upstream caught
//! (`NotFound`, `Conflict`, `HttpError`, connection failures) and the client's unwrapping of
//! Ironic's `error_message` body, which upstream surfaced to API callers verbatim.

use reqwest::StatusCode;
use serde_json::Value;

/// A failed Ironic call. `Display` is the message alone: callers add what they were doing
/// (`Cannot get node X: <message>`).
#[derive(Clone, Debug, thiserror::Error)]
pub enum IronicError {
    /// 404: Ironic does not know the node or port. The message is Ironic's.
    #[error("{0}")]
    NotFound(String),
    /// 409 after every retry: the node stayed locked by a conductor. The message is Ironic's.
    #[error("{0}")]
    Conflict(String),
    /// 409 for something that exists already (a port with that MAC, a name in use): never
    /// retried, since asking again cannot help. The message is Ironic's.
    #[error("{0}")]
    AlreadyExists(String),
    /// Any other error answer (4xx, 5xx other than 503), or an answer we cannot read.
    #[error("{message}")]
    Api {
        /// HTTP status of the answer (200 when a success answer was unreadable).
        status: u16,
        /// Ironic's own text (its `faultstring`), or what was wrong with the answer; for a
        /// 5xx it starts with `Ironic answered HTTP <status>`.
        message: String,
    },
    /// No usable answer after every retry: connection refused, reset or timed out, 503, or
    /// no Ironic endpoint (not in the catalog, Keystone down).
    #[error("{0}")]
    Unavailable(String),
}

impl IronicError {
    /// The HTTP status Ironic answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            IronicError::NotFound(_) => Some(404),
            IronicError::Conflict(_) | IronicError::AlreadyExists(_) => Some(409),
            IronicError::Api { status, .. } => Some(*status),
            IronicError::Unavailable(_) => None,
        }
    }

    /// Whether Ironic, not the request, is at fault: it could not be reached, or it answered
    /// a server error (5xx). Asking again later may work; nothing is wrong with the node.
    pub fn is_ironic_failure(&self) -> bool {
        match self {
            IronicError::Unavailable(_) => true,
            IronicError::Api { status, .. } => *status >= 500,
            IronicError::NotFound(_) | IronicError::Conflict(_) | IronicError::AlreadyExists(_) => {
                false
            }
        }
    }

    /// The error of a 409 answer. Ironic tells "exists already" from "node locked" only in
    /// its text; this is the one place that reads it. Upstream's client retried every 409,
    /// so a duplicate port cost `max_retries × retry_interval` (a minute by default) before
    /// processing skipped it; the outcome is the same, sooner.
    pub fn conflict(message: String) -> IronicError {
        if message.contains("already exists") {
            IronicError::AlreadyExists(message)
        } else {
            IronicError::Conflict(message)
        }
    }

    /// Whether the call is worth sending again: a locked node (409) or a 503.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IronicError::Conflict(_) | IronicError::Unavailable(_))
    }
}

/// How an Ironic failure reaches an API caller: unknown node 404, conflict 409, Ironic
/// trouble 503 (unreachable, or a 5xx answer, whose message names Ironic), and any other
/// Ironic error 400 with Ironic's message, as upstream's `utils.Error` default did.
impl From<IronicError> for crate::Error {
    fn from(err: IronicError) -> Self {
        match err {
            IronicError::NotFound(message) => crate::Error::NotFound(message),
            IronicError::Conflict(message) | IronicError::AlreadyExists(message) => {
                crate::Error::Conflict(message)
            }
            IronicError::Api { status, message } if status >= 500 => {
                crate::Error::ServiceUnavailable(message)
            }
            IronicError::Api { message, .. } => crate::Error::BadRequest(message),
            // The detail names Ironic's address: logged here, kept out of the answer.
            IronicError::Unavailable(message) => {
                tracing::error!(error = %message, "Ironic is unavailable");
                crate::Error::ServiceUnavailable(UNAVAILABLE_MESSAGE.to_string())
            }
        }
    }
}

/// What API clients are told when Ironic cannot be reached.
pub const UNAVAILABLE_MESSAGE: &str = "Ironic is unavailable, try again later";

/// Longest piece of a non-JSON error body quoted in a message.
const MAX_QUOTED: usize = 200;

/// Ironic's message in an error answer.
///
/// Ironic wraps its error as `{"error_message": "<JSON string>"}` whose inner object has
/// `faultstring`; some versions and proxies send the inner object directly, or plain text,
/// and Ironic's own request guards (JSON nesting depth, body size) answer the inner object
/// alone, `{"faultcode": …, "faultstring": …}`.
/// Falls back to the status line, plus a short plain-text body if there is one.
pub fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(document) = serde_json::from_slice::<Value>(body)
        && let Some(message) = fault_text(&document)
    {
        return message;
    }
    let status_line = match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    };
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') || text.starts_with('{') {
        // Empty, HTML from a proxy, or JSON of an unknown shape: the status says more.
        return status_line;
    }
    let quoted: String = text.chars().take(MAX_QUOTED).collect();
    let quoted = quoted.lines().next().unwrap_or_default();
    format!("{status_line}: {quoted}")
}

/// `faultstring` (or `error_message` when that is plain text) from an error document.
fn fault_text(document: &Value) -> Option<String> {
    let Some(outer) = document.get("error_message") else {
        return document
            .get("faultstring")
            .and_then(Value::as_str)
            .and_then(non_empty);
    };
    let inner = match outer {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(inner @ Value::Object(_)) => inner,
            _ => return non_empty(text),
        },
        Value::Object(_) => outer.clone(),
        _ => return None,
    };
    inner
        .get("faultstring")
        .and_then(Value::as_str)
        .and_then(non_empty)
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(status: u16, body: &str) -> String {
        error_message(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    #[test]
    fn faultstring_is_unwrapped_from_the_json_string() {
        let body = r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Node 1be26c0b could not be found.\", \"debuginfo\": null}"}"#;
        assert_eq!(message(404, body), "Node 1be26c0b could not be found.");
    }

    #[test]
    fn faultstring_is_read_from_an_inner_object_too() {
        let body =
            r#"{"error_message": {"faultstring": "Limit must be positive", "debuginfo": null}}"#;
        assert_eq!(message(400, body), "Limit must be positive");
    }

    #[test]
    fn faultstring_is_read_without_the_wrapper_too() {
        // What Ironic 39's JSON depth guard answers to a PATCH nested too deeply.
        let body = r#"{"faultcode": "Client", "faultstring": "Request body JSON is nested too deeply. Please contact the service administrator."}"#;
        assert_eq!(
            message(400, body),
            "Request body JSON is nested too deeply. Please contact the service administrator."
        );
    }

    #[test]
    fn plain_error_message_is_used_as_is() {
        assert_eq!(
            message(409, r#"{"error_message": "Node is locked"}"#),
            "Node is locked"
        );
    }

    #[test]
    fn other_bodies_fall_back_to_the_status() {
        assert_eq!(
            message(502, "<html><body>Bad</body></html>"),
            "HTTP 502 Bad Gateway"
        );
        assert_eq!(message(500, ""), "HTTP 500 Internal Server Error");
        assert_eq!(message(400, r#"{"other": 1}"#), "HTTP 400 Bad Request");
        assert_eq!(
            message(400, r#"{"error_message": "{\"faultstring\": \"\"}"}"#),
            "HTTP 400 Bad Request"
        );
        assert_eq!(
            message(503, "Service Unavailable\nmore lines"),
            "HTTP 503 Service Unavailable: Service Unavailable"
        );
        let long = "x".repeat(1000);
        assert_eq!(message(599, &long).len(), "HTTP 599: ".len() + MAX_QUOTED);
    }

    #[test]
    fn a_conflict_is_typed_once_from_ironics_text() {
        assert!(matches!(
            IronicError::conflict(
                "A port with MAC address 52:54:00:12:34:56 already exists.".into()
            ),
            IronicError::AlreadyExists(_)
        ));
        let locked = IronicError::conflict("Node n is locked by host h".into());
        assert!(matches!(locked, IronicError::Conflict(_)));
        assert!(locked.is_retryable());
        assert!(!IronicError::AlreadyExists(String::new()).is_retryable());
    }

    #[test]
    fn errors_map_to_api_statuses() {
        let cases = [
            (IronicError::NotFound("nf".into()), 404),
            (IronicError::Conflict("locked".into()), 409),
            (IronicError::AlreadyExists("exists".into()), 409),
            (
                IronicError::Api {
                    status: 400,
                    message: "bad".into(),
                },
                400,
            ),
            (
                IronicError::Api {
                    status: 500,
                    message: "Ironic answered HTTP 500: boom".into(),
                },
                503,
            ),
            (IronicError::Unavailable("down".into()), 503),
        ];
        for (err, status) in cases {
            let unavailable = matches!(err, IronicError::Unavailable(_));
            let text = err.to_string();
            let api: crate::Error = err.into();
            assert_eq!(api.status().as_u16(), status);
            if unavailable {
                // Ironic's address stays in the log, out of the answer.
                assert_eq!(api.to_string(), UNAVAILABLE_MESSAGE);
            } else {
                assert_eq!(api.to_string(), text, "the message is kept");
            }
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{json_value, text};

    fn status() -> impl Strategy<Value = StatusCode> {
        (100u16..600).prop_map(|code| StatusCode::from_u16(code).unwrap())
    }

    proptest! {
        #[test]
        fn any_answer_gives_a_message(
            status in status(),
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                text().prop_map(String::into_bytes),
                json_value().prop_map(|v| json!({"error_message": v}).to_string().into_bytes()),
            ],
        ) {
            let message = error_message(status, &body);
            prop_assert!(!message.trim().is_empty());
        }

        #[test]
        fn the_faultstring_is_unwrapped_in_both_shapes(status in status(), fault in text(), nested in any::<bool>()) {
            prop_assume!(!fault.trim().is_empty());
            let inner = json!({"faultcode": "Client", "faultstring": fault, "debuginfo": null});
            let outer = if nested { Value::String(inner.to_string()) } else { inner };
            let body = json!({"error_message": outer}).to_string();
            prop_assert_eq!(error_message(status, body.as_bytes()), fault.trim());
        }
    }
}
