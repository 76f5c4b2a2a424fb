//! Swift: where processed introspection data (`[processing] store_data = swift`) and the
//! `extra_hardware` hook's data are kept, as JSON objects in one container.
//!
//! Ports `ironic_inspector/common/swift.py` (its `SwiftAPI` over python-swiftclient). What
//! a client sees is kept: the object names (`inspector_data-<uuid>`,
//! `extra_hardware-<uuid>`, see [`object_name`]), a `PUT` of the container before every
//! object `PUT`, `X-Delete-After` when `[swift] delete_after > 0`, and the wording of the
//! three failure messages. Two upstream quirks are not copied:
//! upstream froze the container and credentials at import time, before the config was read,
//! so the configured values were ignored; here they are read from the config. And a missing
//! object was a 400; here it is [`SwiftError::NotFound`], a 404.
//!
//! # Authentication and endpoint
//! A [`KeystoneSession`] logs in with `[swift] username`, `password` and `tenant_name` at
//! `os_auth_url`. Whatever `os_auth_version` says (2, as Liberty configs have, or 3), it
//! speaks Keystone v3 with the `Default` domain: today's Keystone has no v2.0 API, and a
//! v2.0 URL is turned into the v3 root. Swift is the token catalog's endpoint of
//! `os_service_type` with the interface of `os_endpoint_type` (`internalURL` is
//! `internal`), looked up at each call so that a renewed token's catalog applies at once.
//!
//! # Retries and time limits
//! As swiftclient did, a request that got no answer (refused, reset, timed out) or got a
//! 5xx or 408 is tried again, `[swift] max_retries` times, after 1 s, 2 s, 4 s... (at most
//! [`MAX_RETRY_DELAY`]). A 401 makes the session log in again and the request is repeated
//! once, without counting as a retry. Each attempt is bounded by [`CONNECT_TIMEOUT`] and
//! [`REQUEST_TIMEOUT`] (the whole exchange, body included), and a login by the Keystone
//! session's own limits, so a call lasts at most about `(max_retries + 2) ×
//! REQUEST_TIMEOUT` plus the pauses and the logins.
//!
//! # What stays out of messages and logs
//! Passwords and tokens are never logged nor put in errors. Client-visible messages name
//! the container, the object and what failed (`Object PUT failed: 503 Service
//! Unavailable`), not Swift's or Keystone's URLs; the URL asked is logged at debug level.
//!
//! This module knows nothing of routes or nodes: callers pass object names and bytes.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use secrecy::ExposeSecret;

use crate::config::Config;
pub use crate::http_client::SetupError;
use crate::http_client::{
    AUTH_TOKEN_HEADER, ClientSettings, Section, build_client, redact_url, transport_reason,
};
use crate::keystone::{self, Interface, KeystoneError, KeystoneSession, SessionOptions};
use crate::retry::Backoff;

/// Prefix of the object holding a node's processed data (`store_data = swift`).
pub const INSPECTOR_DATA_PREFIX: &str = "inspector_data";
/// Prefix of the object holding a node's extra hardware data (`extra_hardware` hook).
pub const EXTRA_HARDWARE_PREFIX: &str = "extra_hardware";
/// Header asking Swift to delete an object that many seconds after it was written.
pub const DELETE_AFTER_HEADER: &str = "X-Delete-After";
/// Time allowed to open a connection to Swift. `[swift]` has no option for it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one whole request to Swift, body included. `[swift]` has no option
/// for it; stored objects are JSON documents of at most a few MiB.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before the first retry; it doubles with each further retry.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest pause between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);
/// How much of an error answer's body is logged (at debug level).
const LOGGED_BODY_CHARS: usize = 200;

/// The name of the object for node `uuid` (`<prefix>-<uuid>`), e.g. `inspector_data-<uuid>`
/// with [`INSPECTOR_DATA_PREFIX`].
pub fn object_name(prefix: &str, uuid: &str) -> String {
    format!("{prefix}-{uuid}")
}

/// `[swift]`, as set-up errors name it.
const SWIFT: Section = Section {
    name: "swift",
    needed: "to use Swift",
};

/// A failed Swift operation. The message is what the API client sees.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SwiftError {
    /// The object does not exist: Swift answered 404 to its GET. A 404 for the API.
    #[error(
        "Swift failed to get object {object} in container {container}. \
         Error was: Object GET failed: 404 Not Found"
    )]
    NotFound {
        /// The object asked for.
        object: String,
        /// The container it was looked for in.
        container: String,
    },
    /// Anything else (Swift or Keystone unreachable, refused, failing): the full message,
    /// in upstream's wording. A 400 for the API, as upstream answered.
    #[error("{0}")]
    Other(String),
}

impl From<SwiftError> for crate::Error {
    fn from(err: SwiftError) -> Self {
        match err {
            SwiftError::NotFound { .. } => crate::Error::NotFound(err.to_string()),
            SwiftError::Other(message) => crate::Error::BadRequest(message),
        }
    }
}

/// The three operations, each with upstream's message prefix.
#[derive(Clone, Copy, Debug)]
enum Operation<'a> {
    /// `PUT <container>`.
    CreateContainer,
    /// `PUT <container>/<object>`.
    CreateObject(&'a str),
    /// `GET <container>/<object>`.
    GetObject(&'a str),
}

impl Operation<'_> {
    fn method(self) -> Method {
        match self {
            Operation::CreateContainer | Operation::CreateObject(_) => Method::PUT,
            Operation::GetObject(_) => Method::GET,
        }
    }

    /// How swiftclient named the request in its errors: `Container PUT`, `Object GET`.
    fn request_name(self) -> &'static str {
        match self {
            Operation::CreateContainer => "Container PUT",
            Operation::CreateObject(_) => "Object PUT",
            Operation::GetObject(_) => "Object GET",
        }
    }

    /// The client-visible message for a failure described by `detail`.
    fn failure(self, container: &str, detail: &str) -> String {
        match self {
            Operation::CreateContainer => {
                format!("Swift failed to create container {container}. Error was: {detail}")
            }
            Operation::CreateObject(object) => format!(
                "Swift failed to create object {object} in container {container}. \
                 Error was: {detail}"
            ),
            Operation::GetObject(object) => format!(
                "Swift failed to get object {object} in container {container}. \
                 Error was: {detail}"
            ),
        }
    }

    fn status_detail(self, status: StatusCode) -> String {
        format!(
            "{} failed: {} {}",
            self.request_name(),
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string()
    }
}

/// Why an attempt failed, before it becomes a client-visible message.
enum Failure {
    /// Swift answered with this status.
    Status(StatusCode),
    /// No answer from Swift; the reason carries no URL.
    NoAnswer(String),
    /// Keystone gave no token or the catalog has no Swift.
    Auth(String),
}

/// Client for the Swift API. Cheap to clone: clones share one HTTP client and one
/// Keystone session.
#[derive(Clone)]
pub struct SwiftClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    session: KeystoneSession,
    service_type: String,
    interface: Interface,
    container: String,
    /// `Some` only when `[swift] delete_after > 0`.
    delete_after: Option<u64>,
    max_retries: u32,
}

impl fmt::Debug for SwiftClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("SwiftClient")
            .field("keystone", &inner.session)
            .field("service_type", &inner.service_type)
            .field("interface", &inner.interface.as_str())
            .field("container", &inner.container)
            .field("delete_after", &inner.delete_after)
            .field("max_retries", &inner.max_retries)
            .finish()
    }
}

impl SwiftClient {
    /// Builds the client from `[swift]`. Sends nothing: Swift and Keystone may be down
    /// while the daemon starts. Errors are configuration mistakes, reported at start-up.
    pub fn from_config(config: &Config) -> Result<SwiftClient, SetupError> {
        let section = &config.swift;
        let max_retries = SWIFT.count("max_retries", section.max_retries)?;
        // Upstream sent the header only for values above 0; 0 and below keep objects.
        let delete_after = u64::try_from(section.delete_after).ok().filter(|s| *s > 0);
        let container = SWIFT.required("container", &section.container)?;
        if container.contains('/') {
            return Err(SWIFT.invalid_value(
                "container",
                format!("must not contain '/', got {:?}", section.container),
            ));
        }
        check_auth_version(&section.os_auth_version)?;
        let raw_url = SWIFT.required("os_auth_url", &section.os_auth_url)?;
        let endpoint = keystone::configured_v3_root(SWIFT, "os_auth_url", &raw_url)?;
        let username = SWIFT.required("username", &section.username)?;
        let project_name = SWIFT.required("tenant_name", &section.tenant_name)?;
        if section.password.expose_secret().is_empty() {
            return Err(SWIFT.missing("password"));
        }
        let service_type = SWIFT.required("os_service_type", &section.os_service_type)?;
        let interface = Interface::from_option(SWIFT, &section.os_endpoint_type)?;
        let session = KeystoneSession::new(SessionOptions {
            endpoint,
            username,
            password: section.password.clone(),
            project_name,
            connect_timeout: keystone::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: keystone::DEFAULT_REQUEST_TIMEOUT,
            // Logins are retried on refused connections as often as Swift requests are.
            max_retries,
            cafile: None,
            insecure: false,
        })
        .map_err(|e| SetupError::client("Keystone", &e))?;
        let http = build_client(&ClientSettings::new(
            CONNECT_TIMEOUT,
            REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .map_err(|e| SetupError::client("Swift", &e))?;
        Ok(SwiftClient {
            inner: Arc::new(Inner {
                http,
                session,
                service_type,
                interface,
                container,
                delete_after,
                max_retries,
            }),
        })
    }

    /// The container every object goes to (`[swift] container`).
    pub fn container(&self) -> &str {
        &self.inner.container
    }

    /// Stores `body` as object `name` (JSON): makes sure the container exists (`PUT
    /// <container>`, as upstream did before every upload), then `PUT <container>/<name>`,
    /// with `X-Delete-After` when `[swift] delete_after > 0`. An existing object is
    /// replaced.
    #[tracing::instrument(
        name = "swift.store_object",
        skip(self, body),
        fields(
            swift.container = %self.inner.container,
            swift.object = %name,
            bytes = body.len(),
        )
    )]
    pub async fn store_object(&self, name: &str, body: Vec<u8>) -> Result<(), SwiftError> {
        self.request(Operation::CreateContainer, None).await?;
        self.request(Operation::CreateObject(name), Some(&body))
            .await?;
        tracing::debug!("stored object in Swift");
        Ok(())
    }

    /// The content of object `name`. A missing object is [`SwiftError::NotFound`].
    #[tracing::instrument(
        name = "swift.get_object",
        skip(self),
        fields(swift.container = %self.inner.container, swift.object = %name)
    )]
    pub async fn get_object(&self, name: &str) -> Result<Vec<u8>, SwiftError> {
        self.request(Operation::GetObject(name), None).await
    }

    /// Runs `op` with retries (see the module doc); answers the body of a 2xx answer.
    async fn request(&self, op: Operation<'_>, body: Option<&[u8]>) -> Result<Vec<u8>, SwiftError> {
        let container = &self.inner.container;
        match (self.attempts(op, body).await, op) {
            (Ok(body), _) => Ok(body),
            (Err(Failure::Status(StatusCode::NOT_FOUND)), Operation::GetObject(object)) => {
                Err(SwiftError::NotFound {
                    object: object.to_string(),
                    container: container.clone(),
                })
            }
            (Err(failure), _) => {
                let detail = match failure {
                    Failure::Status(status) => op.status_detail(status),
                    Failure::NoAnswer(reason) => format!("cannot reach Swift: {reason}"),
                    Failure::Auth(reason) => reason,
                };
                Err(SwiftError::Other(op.failure(container, &detail)))
            }
        }
    }

    async fn attempts(&self, op: Operation<'_>, body: Option<&[u8]>) -> Result<Vec<u8>, Failure> {
        let inner = &self.inner;
        let mut retries = retry_policy(inner.max_retries).start();
        let mut logged_in_again = false;
        loop {
            let token = inner.session.token().await.map_err(auth_failure)?;
            let base = token
                .endpoint(&inner.service_type, inner.interface)
                .ok_or_else(|| {
                    Failure::Auth(format!(
                        "there is no {} endpoint with interface {} in the Keystone catalog",
                        inner.service_type,
                        inner.interface.as_str()
                    ))
                })?;
            let url = target_url(&base, &inner.container, object_of(op)).map_err(Failure::Auth)?;
            let started = Instant::now();
            let failure = match self.send_once(op, &url, token.header(), body).await {
                Ok((status, answer)) => {
                    tracing::debug!(
                        http.method = %op.method(),
                        swift.url = %redact_url(&url),
                        http.status = status.as_u16(),
                        duration_ms = started.elapsed().as_millis() as u64,
                        "Swift answered"
                    );
                    if status.is_success() {
                        return Ok(answer);
                    }
                    let text: String = String::from_utf8_lossy(&answer)
                        .chars()
                        .take(LOGGED_BODY_CHARS)
                        .collect();
                    tracing::debug!(body = %text, "Swift's error answer");
                    if status == StatusCode::UNAUTHORIZED && !logged_in_again {
                        // The token may have been revoked or expired early: log in again.
                        inner.session.discard(&token);
                        logged_in_again = true;
                        continue;
                    }
                    Failure::Status(status)
                }
                Err(reason) => {
                    tracing::debug!(
                        http.method = %op.method(),
                        swift.url = %redact_url(&url),
                        error = %reason,
                        "no answer from Swift"
                    );
                    Failure::NoAnswer(reason)
                }
            };
            let retryable = match &failure {
                Failure::Status(status) => {
                    status.is_server_error() || *status == StatusCode::REQUEST_TIMEOUT
                }
                Failure::NoAnswer(_) => true,
                Failure::Auth(_) => false,
            };
            let Some(delay) = retryable.then(|| retries.next_pause()).flatten() else {
                return Err(failure);
            };
            let reason = match &failure {
                Failure::Status(status) => op.status_detail(*status),
                Failure::NoAnswer(reason) | Failure::Auth(reason) => reason.clone(),
            };
            tracing::warn!(
                http.method = %op.method(),
                swift.container = %inner.container,
                attempt = retries.done(),
                max_retries = inner.max_retries,
                delay_ms = delay.as_millis() as u64,
                error = %reason,
                "Swift request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One HTTP exchange; the error is why there was no (complete) answer, without URL.
    async fn send_once(
        &self,
        op: Operation<'_>,
        url: &Url,
        token: HeaderValue,
        body: Option<&[u8]>,
    ) -> Result<(StatusCode, Vec<u8>), String> {
        let inner = &self.inner;
        let mut request = inner
            .http
            .request(op.method(), url.clone())
            .header(AUTH_TOKEN_HEADER, token);
        if let Operation::CreateObject(_) = op {
            request = request.header(CONTENT_TYPE, "application/json");
            if let Some(seconds) = inner.delete_after {
                request = request.header(DELETE_AFTER_HEADER, seconds);
            }
        }
        if let Some(body) = body {
            request = request.body(body.to_vec());
        } else if op.method() == Method::PUT {
            // Swift wants a length on every PUT.
            request = request.body(Vec::new());
        }
        let response = request.send().await.map_err(|e| transport_reason(&e))?;
        let status = response.status();
        let answer = response.bytes().await.map_err(|e| transport_reason(&e))?;
        Ok((status, answer.to_vec()))
    }
}

/// The object an operation is about, if any.
fn object_of(op: Operation<'_>) -> Option<&str> {
    match op {
        Operation::CreateContainer => None,
        Operation::CreateObject(object) | Operation::GetObject(object) => Some(object),
    }
}

/// A Keystone failure as the detail of a client-visible message: what went wrong, without
/// Keystone's URL or the user's name.
fn auth_failure(err: KeystoneError) -> Failure {
    Failure::Auth(match err {
        KeystoneError::Rejected { .. } => "Keystone rejected the Swift credentials \
             ([swift] username, password and tenant_name)"
            .to_string(),
        KeystoneError::Unreachable { reason, .. } => format!("cannot reach Keystone: {reason}"),
        KeystoneError::Unexpected { detail, .. } => {
            format!("unexpected answer from Keystone: {detail}")
        }
    })
}

/// `<account URL>/<container>[/<object>]`, each name one percent-encoded path segment.
fn target_url(account: &Url, container: &str, object: Option<&str>) -> Result<Url, String> {
    let mut url = account.clone();
    {
        let mut segments = url.path_segments_mut().map_err(|()| {
            "the Swift endpoint in the Keystone catalog is not an http(s) URL".to_string()
        })?;
        segments.pop_if_empty().push(container);
        if let Some(object) = object {
            segments.push(object);
        }
    }
    url.set_fragment(None);
    Ok(url)
}

/// Swift's retries: `max_retries` of them, after 1 s, 2 s, 4 s... at most
/// [`MAX_RETRY_DELAY`].
fn retry_policy(max_retries: u32) -> Backoff {
    Backoff::doubling(Some(max_retries), FIRST_RETRY_DELAY, MAX_RETRY_DELAY)
}

/// `[swift] os_auth_version`: the Keystone versions swiftclient spoke for Liberty configs.
/// Both are served with v3 (see the module doc); v1 (Swift's own tempauth) is refused.
fn check_auth_version(value: &str) -> Result<(), SetupError> {
    let version = value.trim();
    let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
    match version {
        "2" | "2.0" | "3" | "3.0" => Ok(()),
        _ => Err(SWIFT.invalid_value(
            "os_auth_version",
            format!("must be 2 or 3 (Keystone; both are spoken as Keystone v3), got {value:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;

    const UUID: &str = "6d1c5a3e-0b2f-4c7d-8e9a-1b2c3d4e5f60";

    const GOOD: &str = "[swift]\nusername = swift\npassword = hunter2-password\n\
        tenant_name = service\nos_auth_url = http://127.0.0.1:9/v2.0\n";

    fn setup_error(extra: &str) -> String {
        match SwiftClient::from_config(&config(&format!("{GOOD}{extra}"))) {
            Ok(client) => panic!("expected an error, got {client:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn object_names_are_upstreams() {
        assert_eq!(
            object_name(INSPECTOR_DATA_PREFIX, UUID),
            format!("inspector_data-{UUID}")
        );
        assert_eq!(
            object_name(EXTRA_HARDWARE_PREFIX, UUID),
            format!("extra_hardware-{UUID}")
        );
    }

    #[test]
    fn failure_messages_keep_upstreams_wording() {
        let detail = "Object PUT failed: 503 Service Unavailable";
        assert_eq!(
            Operation::CreateContainer.failure("ironic-inspector", "boom"),
            "Swift failed to create container ironic-inspector. Error was: boom"
        );
        assert_eq!(
            Operation::CreateObject("inspector_data-x").failure("c", detail),
            "Swift failed to create object inspector_data-x in container c. \
             Error was: Object PUT failed: 503 Service Unavailable"
        );
        assert_eq!(
            Operation::GetObject("o").failure("c", "boom"),
            "Swift failed to get object o in container c. Error was: boom"
        );
        let missing = SwiftError::NotFound {
            object: "o".to_string(),
            container: "c".to_string(),
        };
        assert_eq!(
            missing.to_string(),
            "Swift failed to get object o in container c. \
             Error was: Object GET failed: 404 Not Found"
        );
    }

    #[test]
    fn status_details_name_the_request() {
        assert_eq!(
            Operation::CreateContainer.status_detail(StatusCode::UNAUTHORIZED),
            "Container PUT failed: 401 Unauthorized"
        );
        assert_eq!(
            Operation::GetObject("o").status_detail(StatusCode::NOT_FOUND),
            "Object GET failed: 404 Not Found"
        );
        assert_eq!(
            Operation::CreateObject("o").status_detail(StatusCode::from_u16(599).unwrap()),
            "Object PUT failed: 599"
        );
    }

    #[test]
    fn errors_map_to_api_statuses() {
        let missing: crate::Error = SwiftError::NotFound {
            object: "o".to_string(),
            container: "c".to_string(),
        }
        .into();
        assert_eq!(missing.status(), axum::http::StatusCode::NOT_FOUND);
        assert!(
            missing
                .to_string()
                .starts_with("Swift failed to get object o")
        );
        let other: crate::Error = SwiftError::Other("Swift failed to x".to_string()).into();
        assert_eq!(other.status(), axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(other.to_string(), "Swift failed to x");
    }

    #[test]
    fn keystone_failures_carry_no_url_or_user() {
        let detail = |err| match auth_failure(err) {
            Failure::Auth(detail) => detail,
            _ => unreachable!(),
        };
        let rejected = detail(KeystoneError::Rejected {
            url: "http://ks:5000/v3".to_string(),
            user: "swift-user".to_string(),
            project: "p".to_string(),
        });
        assert_eq!(
            rejected,
            "Keystone rejected the Swift credentials ([swift] username, password and tenant_name)"
        );
        let unreachable = detail(KeystoneError::Unreachable {
            url: "http://ks:5000/v3/auth/tokens".to_string(),
            reason: "cannot connect: Connection refused (os error 111)".to_string(),
        });
        assert_eq!(
            unreachable,
            "cannot reach Keystone: cannot connect: Connection refused (os error 111)"
        );
        assert!(!unreachable.contains("ks:5000"));
    }

    #[test]
    fn urls_get_one_segment_per_name() {
        let account = Url::parse("http://swift:8080/v1/AUTH_abc").unwrap();
        let url = |c, o| target_url(&account, c, o).unwrap().to_string();
        assert_eq!(
            url("ironic-inspector", None),
            "http://swift:8080/v1/AUTH_abc/ironic-inspector"
        );
        assert_eq!(
            url("c", Some(&format!("inspector_data-{UUID}"))),
            format!("http://swift:8080/v1/AUTH_abc/c/inspector_data-{UUID}")
        );
        // A trailing slash in the catalog does not double; odd names stay one segment.
        let slash = Url::parse("http://swift:8080/v1/AUTH_abc/").unwrap();
        assert_eq!(
            target_url(&slash, "c d", Some("a/b?x#y")).unwrap().as_str(),
            "http://swift:8080/v1/AUTH_abc/c%20d/a%2Fb%3Fx%23y"
        );
    }

    #[test]
    fn retry_pauses_double_up_to_the_cap() {
        let policy = retry_policy(6);
        let secs: Vec<u64> = (1..=6).map(|r| policy.pause(r).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        assert_eq!(policy.pause(u32::MAX), MAX_RETRY_DELAY);
    }

    #[test]
    fn configured_values_are_used() {
        let client = SwiftClient::from_config(&config(&format!(
            "{GOOD}container = my-container\ndelete_after = 60\nmax_retries = 0\n\
             os_endpoint_type = publicURL\nos_auth_version = 3\n"
        )))
        .unwrap();
        assert_eq!(client.container(), "my-container");
        assert_eq!(client.inner.delete_after, Some(60));
        assert_eq!(client.inner.max_retries, 0);
        assert_eq!(client.inner.interface, Interface::Public);
        assert_eq!(client.inner.service_type, "object-store");
        assert_eq!(
            client.inner.session.endpoint().as_str(),
            "http://127.0.0.1:9/v3"
        );
        let printed = format!("{client:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn defaults_are_upstreams() {
        let client = SwiftClient::from_config(&config(GOOD)).unwrap();
        assert_eq!(client.container(), "ironic-inspector");
        assert_eq!(client.inner.delete_after, None);
        assert_eq!(client.inner.max_retries, 2);
        assert_eq!(client.inner.interface, Interface::Internal);
        for negative in ["-1", "0"] {
            let client =
                SwiftClient::from_config(&config(&format!("{GOOD}delete_after = {negative}\n")))
                    .unwrap();
            assert_eq!(client.inner.delete_after, None, "{negative}");
        }
    }

    #[test]
    fn bad_settings_are_refused_at_start_up() {
        let missing = |option: &str| {
            let text = GOOD
                .lines()
                .filter(|l| !l.starts_with(option))
                .collect::<Vec<_>>()
                .join("\n");
            match SwiftClient::from_config(&config(&text)) {
                Ok(_) => panic!("{option}: expected an error"),
                Err(err) => err.to_string(),
            }
        };
        assert_eq!(
            missing("username"),
            "[swift] username must be set to use Swift"
        );
        assert_eq!(
            missing("password"),
            "[swift] password must be set to use Swift"
        );
        assert_eq!(
            missing("tenant_name"),
            "[swift] tenant_name must be set to use Swift"
        );
        assert_eq!(
            missing("os_auth_url"),
            "[swift] os_auth_url must be set to use Swift"
        );
        assert!(
            setup_error("os_auth_url = ftp://ks\n")
                .starts_with("[swift] os_auth_url is not a usable URL")
        );
        assert!(
            setup_error("os_auth_version = 1\n")
                .starts_with("[swift] os_auth_version must be 2 or 3")
        );
        assert!(
            setup_error("os_endpoint_type = internal-url\n")
                .starts_with("[swift] os_endpoint_type must be one of")
        );
        assert!(
            setup_error("max_retries = -1\n").starts_with("[swift] max_retries must be between 0")
        );
        assert_eq!(
            setup_error("container = \n"),
            "[swift] container must be set to use Swift"
        );
        assert!(
            setup_error("container = a/b\n").starts_with("[swift] container must not contain '/'")
        );
        for version in ["2", "2.0", "v2.0", "3", "v3"] {
            SwiftClient::from_config(&config(&format!("{GOOD}os_auth_version = {version}\n")))
                .unwrap_or_else(|e| panic!("{version}: {e}"));
        }
    }
}
