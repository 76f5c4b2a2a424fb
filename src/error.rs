//! The one error type of the crate and its mapping onto the API's error body.
//!
//! Ports `ironic_inspector.utils.Error` and `NotFoundInCacheError`, plus the Flask error
//! handlers of `main.py`: every failure a client sees is `{"error": {"message": "..."}}` with
//! the status chosen here, in [`Error::status`], and nowhere else.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the daemon reports. The variant decides the HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: bad input, failed validation, or an upstream `utils.Error` with its default code.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no token, or a token Keystone does not accept.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a valid token without the `admin` role.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown node, rule, version or route.
    #[error("{0}")]
    NotFound(String),
    /// 404: no node under introspection has the BMC address or a MAC the ramdisk reported
    /// (the one lookup failure the `node_not_found_hook` may still cure).
    #[error("{0}")]
    NoMatchingNode(String),
    /// 406: a well-formed API version outside the supported range.
    #[error("{0}")]
    NotAcceptable(String),
    /// 408: the client did not send the request body within `[DEFAULT] client_body_timeout`.
    #[error("{0}")]
    RequestTimeout(String),
    /// 409: the thing already exists or is busy.
    #[error("{0}")]
    Conflict(String),
    /// 413: the request body is larger than `[oslo_middleware] max_request_body_size`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 503: a service we depend on (Keystone, Ironic) cannot be reached right now.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 503: the database cannot serve this request right now. The client is told why in
    /// plain words ([`DbOutage`]); the driver's detail is only logged.
    #[error("{outage} ({detail})")]
    Database {
        /// Why, as the client is told.
        outage: DbOutage,
        /// What the driver said; never sent to clients (it may name the server).
        detail: String,
    },
    /// 500: anything unexpected. The detail is logged, the client gets a plain message
    /// (with the detail appended only when `[DEFAULT] debug` is set, as upstream did).
    #[error("{kind}: {detail}")]
    Internal {
        /// A short name for the kind of failure (upstream printed the exception class).
        kind: &'static str,
        /// What went wrong; never sent to clients unless debug is on.
        detail: String,
    },
}

impl Error {
    /// Shorthand for an internal error.
    pub fn internal(kind: &'static str, detail: impl std::fmt::Display) -> Self {
        Error::Internal {
            kind,
            detail: detail.to_string(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) | Error::NoMatchingNode(_) => StatusCode::NOT_FOUND,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::ServiceUnavailable(_) | Error::Database { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the failure is a neighbour's passing trouble (503): the same request may
    /// work later, so whatever it was doing must not be recorded as failed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Error::ServiceUnavailable(_) | Error::Database { .. })
    }

    /// The message a client sees. `debug` mirrors `[DEFAULT] debug`.
    pub fn client_message(&self, debug: bool) -> String {
        match self {
            Error::Internal { kind, detail } if debug => {
                format!("Internal server error ({kind}): {detail}")
            }
            Error::Internal { .. } => "Internal server error".to_string(),
            Error::Database { outage, .. } => outage.to_string(),
            other => other.to_string(),
        }
    }

    /// Builds the response. Used by the API layer, which knows whether debug is on.
    pub fn into_response_with(self, debug: bool) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "returning error to client");
        }
        let body = Json(json!({"error": {"message": self.client_message(debug)}}));
        (status, body).into_response()
    }
}

/// Without access to the config the safe choice is the terse message; the API layer's
/// middleware re-renders 500 bodies in debug mode (see `api::render_errors`).
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let debug_detail = match &self {
            Error::Internal { kind, detail } => Some(DebugDetail(format!("({kind}): {detail}"))),
            _ => None,
        };
        let mut response = self.into_response_with(false);
        if let Some(detail) = debug_detail {
            response.extensions_mut().insert(detail);
        }
        response
    }
}

/// The detail of a 500, carried in the response extensions so the API layer can append it
/// to the body when `[DEFAULT] debug` is on, without threading the config into every error.
#[derive(Clone, Debug)]
pub struct DebugDetail(pub String);

/// Why the database cannot serve a request right now. Each is answered 503 with this text,
/// which names the database but never its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DbOutage {
    /// The server cannot be reached, is restarting, or dropped the connection.
    #[error("The database is unavailable, try again later")]
    Unavailable,
    /// The transaction kept losing races with other ones (deadlocks, lock waits), even
    /// after being retried.
    #[error("The database is busy, try again later")]
    Busy,
    /// No room is left to write.
    #[error("The database disk is full")]
    DiskFull,
}

/// Every driver error becomes a 503 when the database is away, busy or full (see
/// [`crate::db::classify`]), and a 500 otherwise.
impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        use crate::db::Fault;
        let outage = match crate::db::classify(&err) {
            // A server that turns us away while running (a password changed, a grant
            // revoked) is as unusable as one that is down.
            Fault::Unavailable | Fault::Refused => DbOutage::Unavailable,
            Fault::Conflict => DbOutage::Busy,
            Fault::DiskFull => DbOutage::DiskFull,
            Fault::Other => return Error::internal("DatabaseError", err),
        };
        Error::Database {
            outage,
            detail: err.to_string(),
        }
    }
}
