//! The request body between the client and the handlers: how long it may take, and reading
//! what a handler left of it so that the connection can carry the client's next request.
//!
//! Ours (upstream had no body timeout). The connection side, closing in order after
//! `Connection: close`, is [`crate::server`]'s.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::Sleep;

use super::AppState;
use crate::error::Error;

/// Bounds how long a request body may take and reads what the handler left of it, so that
/// the client's connection stays usable for its next request.
///
/// Many answers are given without reading the body: unknown route, wrong method, bad API
/// version, missing token, invalid UUID, a body over the limit. An HTTP/1.1 connection can
/// only carry the next request once the whole body is off the wire, so this reads and drops
/// the rest, up to `[oslo_middleware] max_request_body_size` and within
/// `[DEFAULT] client_body_timeout`, before answering. When that cannot be done (the body is,
/// or says it is, over the limit; it arrives too slowly; it breaks off) the answer carries
/// `Connection: close` and the server closes the connection in order after it. A body that
/// the handler itself could not get in time is answered 408.
pub(super) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config.oslo_middleware.max_request_body_size;
    let timeout = state.config.default.client_body_timeout;
    let declared_over_limit = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64);
    let (parts, body) = request.into_parts();
    let watch = BodyWatch::new(body, timeout);
    let response = next
        .run(Request::from_parts(parts, Body::new(watch.clone())))
        .await;
    if watch.end() == Some(BodyEnd::TimedOut) {
        let error = Error::RequestTimeout(format!(
            "Request body was not received within {} seconds",
            timeout.as_secs()
        ));
        return closing(error.into_response_with(state.config.default.debug));
    }
    if declared_over_limit {
        return closing(response);
    }
    match watch.drain(limit).await {
        BodyEnd::Complete => response,
        BodyEnd::TimedOut | BodyEnd::TooLarge | BodyEnd::Failed => closing(response),
    }
}

/// Marks an answer as the connection's last.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// How the reading of a request body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyEnd {
    /// Read to its end.
    Complete,
    /// More than the body limit arrived (only the guard's own reading checks this; handlers
    /// have their own limit).
    TooLarge,
    /// Not received within the body timeout.
    TimedOut,
    /// The connection failed or the body was malformed.
    Failed,
}

/// A request body shared between the handler (which may read part of it) and the guard
/// (which reads the rest), with the body timeout. Reading it starts the clock.
#[derive(Clone)]
struct BodyWatch(Arc<Mutex<Watched>>);

struct Watched {
    body: Body,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    received: usize,
    end: Option<BodyEnd>,
}

/// The error a handler's read of the body gets once the body timeout passed.
#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
struct BodyTimedOut;

impl BodyWatch {
    fn new(body: Body, timeout: Duration) -> BodyWatch {
        BodyWatch(Arc::new(Mutex::new(Watched {
            body,
            timeout,
            deadline: None,
            received: 0,
            end: None,
        })))
    }

    fn watched(&self) -> MutexGuard<'_, Watched> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn end(&self) -> Option<BodyEnd> {
        self.watched().end
    }

    /// Reads and drops the rest of the body, stopping past `limit` bytes in all.
    async fn drain(&self, limit: usize) -> BodyEnd {
        let mut rest = self.clone();
        loop {
            match rest.frame().await {
                None => return BodyEnd::Complete,
                Some(Ok(_)) if self.watched().received > limit => return BodyEnd::TooLarge,
                Some(Ok(_)) => {}
                Some(Err(_)) => return self.end().unwrap_or(BodyEnd::Failed),
            }
        }
    }
}

impl HttpBody for BodyWatch {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut watched = self.watched();
        let watched = &mut *watched;
        match watched.end {
            Some(BodyEnd::Complete) => return Poll::Ready(None),
            Some(BodyEnd::TimedOut) => return Poll::Ready(Some(Err(BodyTimedOut.into()))),
            Some(BodyEnd::TooLarge | BodyEnd::Failed) | None => {}
        }
        let timeout = watched.timeout;
        let deadline = watched
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match Pin::new(&mut watched.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    watched.received = watched.received.saturating_add(data.len());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                watched.end = Some(BodyEnd::Failed);
                Poll::Ready(Some(Err(err.into())))
            }
            Poll::Ready(None) => {
                watched.end = Some(BodyEnd::Complete);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                watched.end = Some(BodyEnd::TimedOut);
                Poll::Ready(Some(Err(BodyTimedOut.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let watched = self.watched();
        match watched.end {
            Some(BodyEnd::Complete) => true,
            Some(_) => false,
            None => watched.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.watched().body.size_hint()
    }
}
