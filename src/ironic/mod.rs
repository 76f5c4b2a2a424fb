//! The Ironic client: the v1 API calls the inspector makes, with retries and pagination.
//!
//! Ports `get_client` of upstream `ironic_inspector/utils.py` and what it got from
//! python-ironicclient v1, for the calls made by `introspect.py`, `process.py`,
//! `node_cache.py`, `firewall.py` and `main.py` (the clean-up sync). Ironic JSON shapes live
//! here and in `model.rs`; nothing else in the crate builds an Ironic URL.
//!
//! # Endpoint and token
//! - `[ironic] auth_strategy = noauth`: every call goes to `ironic_url` with the token
//!   `noauth` (Ironic ignores it; upstream sent the same).
//! - `keystone`: a [`KeystoneSession`] logs in with the service credentials (`[ironic]
//!   os_username` etc.), and Ironic is the catalog endpoint of `os_service_type` with the
//!   interface of `os_endpoint_type`. Calls carry the service token, renewed before it
//!   expires and once more when Ironic answers 401 — or, after
//!   [`IronicClient::with_user_token`], the API caller's token (the endpoint still comes
//!   from the service catalog, as upstream).
//!
//! # API version
//! Every call sends `X-OpenStack-Ironic-API-Version: 1.6`, the version 2.2 pinned; today's
//! Ironic still serves it and no call needs more:
//! - below 1.39 Ironic shows a node in `inspect wait` as `inspecting`, which is one of the
//!   states introspection accepts; 1.39 and later would show a state upstream never knew,
//! - node updates (PATCH) are allowed in `inspecting` below 1.39 only,
//! - lists would need 1.8 if we followed a summary list's `next` link verbatim (it carries
//!   `fields=`); we take only `marker` and `limit` from the link instead (see below),
//! - nodes enrolled at 1.11 or later start in `enroll`, which 1.6 shows as it is.
//!
//! One call departs from it: creating a node (the `enroll` node-not-found hook). At 1.6
//! Ironic creates a node in `available`, a state introspection refuses (and one Ironic would
//! hand to Nova as it is); from 1.11 on it creates it in `enroll`, where introspection and
//! the power-off at its end work. So the creation is sent at 1.11, or at the version that
//! introduced the newest field the operator asked to set ([`create_version`]:
//! `resource_class` needs 1.21, the interface fields 1.31...); the answer is read only
//! for the UUID, and every later call on the node is at 1.6 again.
//!
//! # Pagination
//! A list is every page: the first request has no `limit` (Ironic's page size applies;
//! `limit=0`, upstream's "everything", is refused today), and while the answer has a `next`
//! link, the same request is repeated with that link's `marker` and `limit`. The link itself
//! is not followed: Ironic builds it from its idea of its public URL (another host behind a
//! proxy, and we would send our token there), and for a node's ports it points at the
//! unfiltered `/v1/ports` collection, which would mix in every other node's ports.
//!
//! # Retries and time limits
//! 409 for a locked node (not [`IronicError::AlreadyExists`]), 503 and failures to get an answer (connection
//! refused or reset, a timeout) are retried `[ironic] max_retries` times, `retry_interval` seconds apart; each
//! retry is logged at warn level. Other 5xx answers are not retried (a server error is rarely
//! cured by asking again, and upstream's client did not); their message names Ironic, and
//! API callers get them as 503, since the fault is not theirs. Each attempt is bounded: `connect_timeout` to connect,
//! `request_timeout` for the whole request including the body, and the same again at most
//! to wait for one of [`MAX_CONCURRENT_REQUESTS`] connection slots. So the longest a call
//! can take is about `(max_retries + 1) × 2 × request_timeout + max_retries ×
//! retry_interval`. A retried POST or PATCH may have been applied by an attempt whose answer
//! was lost; Ironic then answers 409 (a port with that MAC exists) or applies the same patch
//! again, as it did for upstream's client.

mod error;
mod model;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::config::{AuthStrategy, Config};
pub use crate::http_client::SetupError;
use crate::http_client::{
    AUTH_TOKEN_HEADER, ClientSettings, Section, build_client, redact_url, sensitive_header,
    transport_reason,
};
use crate::keystone::{self, Interface, KeystoneSession, ServiceToken, SessionOptions};
use crate::retry::Backoff;

pub use error::{IronicError, UNAVAILABLE_MESSAGE, error_message};
pub use model::{InterfaceValidation, Node, Port, PowerTarget, Validation};

/// Header carrying the Ironic API version of a request.
pub const API_VERSION_HEADER: &str = "X-OpenStack-Ironic-API-Version";
/// The Ironic API version of every call (what 2.2 pinned; see the module doc).
pub const API_VERSION: &str = "1.6";
/// Token sent with `[ironic] auth_strategy = noauth` (upstream's value; Ironic ignores it).
pub const NOAUTH_TOKEN: &str = "noauth";
/// Most requests to Ironic under way at once. The standalone Ironic serves 10 at a time
/// and resets connections beyond about 15, so we stay below both.
pub const MAX_CONCURRENT_REQUESTS: usize = 8;
/// How long an idle pooled connection is kept. Short, so that we seldom reuse a connection
/// the server is about to close (that race is retried anyway).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// `[ironic]`, as set-up errors name it.
const IRONIC: Section = Section {
    name: "ironic",
    needed: "when [ironic] auth_strategy is keystone",
};
/// `[keystone_authtoken]`, whose connection settings the Ironic client's session uses too.
const KEYSTONE_AUTHTOKEN: Section = Section {
    name: "keystone_authtoken",
    needed: "when [ironic] auth_strategy is keystone",
};

/// Client for the Ironic API. Cheap to clone: clones share one HTTP client (one connection
/// pool), one limit on concurrent requests and one Keystone session.
#[derive(Clone)]
pub struct IronicClient {
    inner: Arc<Inner>,
    /// The API caller's token, sent instead of the service token (keystone mode only).
    user_token: Option<HeaderValue>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Endpoint,
    retry: Backoff,
    request_timeout: Duration,
    /// One permit per request under way (see [`MAX_CONCURRENT_REQUESTS`]).
    slots: Semaphore,
}

/// Where Ironic is.
enum Endpoint {
    /// `noauth`: `ironic_url`, normalised by [`base_url`].
    Fixed(Url),
    /// `keystone`: looked up in the service token's catalog at each call, so a renewed
    /// token's catalog is used at once.
    Catalog {
        session: KeystoneSession,
        service_type: String,
        interface: Interface,
    },
}

impl fmt::Debug for IronicClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("IronicClient");
        match &self.inner.endpoint {
            Endpoint::Fixed(url) => out.field("endpoint", &redact_url(url).as_str()),
            Endpoint::Catalog {
                session,
                service_type,
                interface,
            } => out
                .field("keystone", session)
                .field("service_type", service_type)
                .field("interface", &interface.as_str()),
        };
        out.field("retry", &self.inner.retry)
            .field("request_timeout", &self.inner.request_timeout)
            .field(
                "user_token",
                &self.user_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// The endpoint and token of one attempt.
struct Resolved {
    base: Url,
    token: HeaderValue,
    /// The service token used, so a 401 can discard it.
    service: Option<Arc<ServiceToken>>,
}

/// One call: what to send and what to say about it in logs and errors.
struct Call<'a> {
    method: Method,
    /// Path segments after `/v1`.
    path: Vec<&'a str>,
    query: Vec<(String, String)>,
    body: Option<Value>,
    /// What the call is about, for logs: `node <uuid>`, `port <uuid>`, `ports`.
    target: String,
    /// The `X-OpenStack-Ironic-API-Version` sent: [`API_VERSION`] but for the node creation
    /// (see the module doc).
    version: &'a str,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: Vec<&'a str>, target: String) -> Self {
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
            target,
            version: API_VERSION,
        }
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// An attempt that got no HTTP answer; the reason is safe to log and show.
struct NoAnswer(String);

impl IronicClient {
    /// Builds the client from `[ironic]` (and, for `keystone`, the service credentials,
    /// which upstream read from `[ironic]` and we also take from `[keystone_authtoken]`).
    ///
    /// Sends nothing: Ironic and Keystone may be down while the daemon starts. Call at
    /// start-up (reading a `cafile` is a small synchronous read). Errors are configuration
    /// mistakes; `app` reports them and refuses to start.
    pub fn from_config(config: &Config) -> Result<IronicClient, SetupError> {
        let section = &config.ironic;
        let retry = Backoff::fixed(
            Some(IRONIC.count("max_retries", section.max_retries)?),
            Duration::from_secs(u64::from(
                IRONIC.count("retry_interval", section.retry_interval)?,
            )),
        );
        let connect_timeout = IRONIC.positive_secs("connect_timeout", section.connect_timeout)?;
        let request_timeout = IRONIC.positive_secs("request_timeout", section.request_timeout)?;
        let endpoint = match section.auth_strategy {
            AuthStrategy::Noauth => {
                let invalid =
                    |reason: String| IRONIC.invalid_url("ironic_url", &section.ironic_url, reason);
                let url =
                    Url::parse(section.ironic_url.trim()).map_err(|e| invalid(e.to_string()))?;
                Endpoint::Fixed(base_url(&url).map_err(invalid)?)
            }
            AuthStrategy::Keystone => {
                let interface = Interface::from_option(IRONIC, &section.os_endpoint_type)?;
                let service_type = IRONIC.required("os_service_type", &section.os_service_type)?;
                let session = KeystoneSession::new(session_options(config)?)
                    .map_err(|e| SetupError::client("Keystone", &e))?;
                Endpoint::Catalog {
                    session,
                    service_type,
                    interface,
                }
            }
        };
        let http = build_client(&ClientSettings {
            pool_max_idle_per_host: Some(MAX_CONCURRENT_REQUESTS),
            ..ClientSettings::new(connect_timeout, request_timeout, POOL_IDLE_TIMEOUT)
        })
        .map_err(|e| SetupError::client("Ironic", &e))?;
        Ok(IronicClient {
            inner: Arc::new(Inner {
                http,
                endpoint,
                retry,
                request_timeout,
                slots: Semaphore::new(MAX_CONCURRENT_REQUESTS),
            }),
            user_token: None,
        })
    }

    /// The same client, but its calls carry the API caller's `token` instead of the service
    /// token (keystone mode; upstream did this for the Ironic calls of `POST
    /// /v1/introspection` and its background part). `None` or an empty token, and any token
    /// with `noauth`, give the ordinary client.
    pub fn with_user_token(&self, token: Option<&str>) -> IronicClient {
        let user_token = match (&self.inner.endpoint, token) {
            (Endpoint::Catalog { .. }, Some(token)) if !token.is_empty() => {
                Some(sensitive_header(token))
            }
            _ => None,
        };
        IronicClient {
            inner: Arc::clone(&self.inner),
            user_token,
        }
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> Backoff {
        self.inner.retry
    }

    /// `GET /v1/nodes/<uuid>`.
    pub async fn get_node(&self, uuid: &str) -> Result<Node, IronicError> {
        let call = Call::new(Method::GET, vec!["nodes", uuid], format!("node {uuid}"));
        self.fetch(call).await
    }

    /// `GET /v1/nodes/<uuid>/validate`: which driver interfaces are usable.
    pub async fn validate_node(&self, uuid: &str) -> Result<Validation, IronicError> {
        let call = Call::new(
            Method::GET,
            vec!["nodes", uuid, "validate"],
            format!("node {uuid}"),
        );
        self.fetch(call).await
    }

    /// Every port of a node, every page (`GET /v1/nodes/<uuid>/ports/detail`; the detailed
    /// list carries `node_uuid` and `extra`).
    pub async fn node_ports(&self, uuid: &str) -> Result<Vec<Port>, IronicError> {
        let call = Call::new(
            Method::GET,
            vec!["nodes", uuid, "ports", "detail"],
            format!("ports of node {uuid}"),
        );
        self.list(call, "ports").await
    }

    /// Every port of every node, every page (`GET /v1/ports/detail`), for the firewall.
    pub async fn list_ports(&self) -> Result<Vec<Port>, IronicError> {
        let call = Call::new(Method::GET, vec!["ports", "detail"], "ports".to_string());
        self.list(call, "ports").await
    }

    /// The UUID of every node, every page (`GET /v1/nodes`, the summary list), for the
    /// clean-up of nodes Ironic no longer knows.
    pub async fn list_node_uuids(&self) -> Result<Vec<String>, IronicError> {
        #[derive(serde::Deserialize)]
        struct NodeRef {
            uuid: String,
        }
        let call = Call::new(Method::GET, vec!["nodes"], "nodes".to_string());
        let nodes: Vec<NodeRef> = self.list(call, "nodes").await?;
        Ok(nodes.into_iter().map(|n| n.uuid).collect())
    }

    /// `POST /v1/nodes`: creates a node from `fields` (`driver`, `driver_info`, and whatever
    /// else the operator configured), at [`create_version`] of those fields. Nothing of
    /// `fields` is logged (`driver_info` may hold credentials).
    pub async fn create_node(&self, fields: &Map<String, Value>) -> Result<Node, IronicError> {
        let version = create_version(fields.keys().map(String::as_str));
        let mut call = Call::new(Method::POST, vec!["nodes"], "new node".to_string())
            .body(Value::Object(fields.clone()));
        call.version = version;
        self.fetch(call).await
    }

    /// The port whose MAC is `address`, if Ironic has one (`GET
    /// /v1/ports/detail?address=...`; Ironic keeps a MAC on one port at most).
    pub async fn port_by_address(&self, address: &str) -> Result<Option<Port>, IronicError> {
        let mut call = Call::new(
            Method::GET,
            vec!["ports", "detail"],
            format!("port {address}"),
        );
        call.query = vec![("address".to_string(), address.to_string())];
        let ports: Vec<Port> = self.list(call, "ports").await?;
        Ok(ports.into_iter().next())
    }

    /// Every node with its `driver_info`, every page (`GET /v1/nodes/detail`), to find a
    /// node by its BMC address. Ironic masks the passwords in `driver_info`; callers still
    /// never log it whole.
    pub async fn list_nodes(&self) -> Result<Vec<Node>, IronicError> {
        let call = Call::new(Method::GET, vec!["nodes", "detail"], "nodes".to_string());
        self.list(call, "nodes").await
    }

    /// `PATCH /v1/nodes/<uuid>` with an RFC 6902 list (`add`, `replace`, `remove` on
    /// `/properties/...`, `/extra/...`, `/driver_info/...`); answers the updated node.
    pub async fn patch_node(&self, uuid: &str, patch: &[Value]) -> Result<Node, IronicError> {
        let call = Call::new(Method::PATCH, vec!["nodes", uuid], format!("node {uuid}"))
            .body(Value::Array(patch.to_vec()));
        self.fetch(call).await
    }

    /// `POST /v1/ports`: registers `address` for the node. A port with that MAC already
    /// existing is [`IronicError::AlreadyExists`].
    pub async fn create_port(&self, node_uuid: &str, address: &str) -> Result<Port, IronicError> {
        let call = Call::new(
            Method::POST,
            vec!["ports"],
            format!("port {address} of node {node_uuid}"),
        )
        .body(json!({"node_uuid": node_uuid, "address": address}));
        self.fetch(call).await
    }

    /// `PATCH /v1/ports/<uuid>` with an RFC 6902 list; answers the updated port.
    pub async fn patch_port(&self, port_uuid: &str, patch: &[Value]) -> Result<Port, IronicError> {
        let call = Call::new(
            Method::PATCH,
            vec!["ports", port_uuid],
            format!("port {port_uuid}"),
        )
        .body(Value::Array(patch.to_vec()));
        self.fetch(call).await
    }

    /// `DELETE /v1/ports/<uuid>`.
    pub async fn delete_port(&self, port_uuid: &str) -> Result<(), IronicError> {
        let call = Call::new(
            Method::DELETE,
            vec!["ports", port_uuid],
            format!("port {port_uuid}"),
        );
        self.execute(&call).await.map(drop)
    }

    /// `PUT /v1/nodes/<uuid>/management/boot_device` with `{"boot_device": device,
    /// "persistent": persistent}` (introspection uses `pxe`, not persistent).
    pub async fn set_boot_device(
        &self,
        uuid: &str,
        device: &str,
        persistent: bool,
    ) -> Result<(), IronicError> {
        let call = Call::new(
            Method::PUT,
            vec!["nodes", uuid, "management", "boot_device"],
            format!("node {uuid}"),
        )
        .body(json!({"boot_device": device, "persistent": persistent}));
        self.execute(&call).await.map(drop)
    }

    /// `GET /v1/nodes/<uuid>/management/boot_device`: `{"boot_device": ..., "persistent":
    /// ...}` as Ironic sends it (reading it proves the BMC credentials work).
    pub async fn get_boot_device(&self, uuid: &str) -> Result<Value, IronicError> {
        let call = Call::new(
            Method::GET,
            vec!["nodes", uuid, "management", "boot_device"],
            format!("node {uuid}"),
        );
        self.fetch(call).await
    }

    /// `PUT /v1/nodes/<uuid>/states/power` with `{"target": ...}`. Ironic accepts the
    /// request (202) and acts on it in the background.
    pub async fn set_power_state(
        &self,
        uuid: &str,
        target: PowerTarget,
    ) -> Result<(), IronicError> {
        let call = Call::new(
            Method::PUT,
            vec!["nodes", uuid, "states", "power"],
            format!("node {uuid}"),
        )
        .body(json!({"target": target.as_str()}));
        self.execute(&call).await.map(drop)
    }

    /// Runs `call` and reads its answer as `T`.
    async fn fetch<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, IronicError> {
        let (status, body) = self.execute(&call).await?;
        parse(status, &body, &call.target)
    }

    /// Runs `call` page after page, collecting the `key` array of each answer.
    async fn list<T: DeserializeOwned>(
        &self,
        mut call: Call<'_>,
        key: &str,
    ) -> Result<Vec<T>, IronicError> {
        let mut items = Vec::new();
        let mut markers = HashSet::new();
        loop {
            let (status, body) = self.execute(&call).await?;
            let page: ListPage<T> = parse_page(status, &body, key, &call.target)?;
            let page_len = page.items.len();
            items.extend(page.items);
            let Some(next) = page.next else { break };
            if page_len == 0 {
                break;
            }
            let query = next_page_query(&next).map_err(|reason| IronicError::Api {
                status: status.as_u16(),
                message: format!("Ironic's next link for {} {reason}", call.target),
            })?;
            let marker = query
                .iter()
                .find(|(k, _)| k == "marker")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            if !markers.insert(marker) {
                return Err(IronicError::Api {
                    status: status.as_u16(),
                    message: format!(
                        "Ironic's pagination of {} does not advance (a marker came twice)",
                        call.target
                    ),
                });
            }
            call.query = query;
        }
        Ok(items)
    }

    /// Sends `call`, retrying as the module doc says; answers the success status and body.
    async fn execute(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>), IronicError> {
        let policy = self.inner.retry;
        let mut retries = policy.start();
        let mut renewed = false;
        loop {
            let resolved = self.resolve().await?;
            let url = api_url(&resolved.base, &call.path, &call.query)?;
            let shown = redact_url(&resolved.base);
            let (reason, pause) = match self.send_once(call, url, &resolved.token).await {
                Ok((status, body)) if status.is_success() => return Ok((status, body)),
                Ok((StatusCode::UNAUTHORIZED, _)) if !renewed && resolved.service.is_some() => {
                    // The service token was revoked or expired early: log in again, once.
                    if let (Some(service), Endpoint::Catalog { session, .. }) =
                        (&resolved.service, &self.inner.endpoint)
                    {
                        tracing::info!(ironic.target = %call.target, "Ironic refused the service token; logging in to Keystone again");
                        session.discard(service);
                    }
                    renewed = true;
                    continue;
                }
                Ok((status, body)) => {
                    let message = error_message(status, &body);
                    let error = match status {
                        StatusCode::NOT_FOUND => IronicError::NotFound(message),
                        StatusCode::CONFLICT => IronicError::conflict(message),
                        StatusCode::SERVICE_UNAVAILABLE => IronicError::Unavailable(message),
                        _ if status.is_server_error() => IronicError::Api {
                            status: status.as_u16(),
                            message: server_error_message(status, &message),
                        },
                        _ => IronicError::Api {
                            status: status.as_u16(),
                            message,
                        },
                    };
                    let Some(pause) = error.is_retryable().then(|| retries.next_pause()).flatten()
                    else {
                        let retries = retries.done();
                        return Err(match error {
                            IronicError::Unavailable(message) => IronicError::Unavailable(format!(
                                "Ironic is unavailable at {shown}: {message} (after {retries} retries)"
                            )),
                            other => other,
                        });
                    };
                    (format!("HTTP {}: {error}", status.as_u16()), pause)
                }
                Err(NoAnswer(reason)) => {
                    let Some(pause) = retries.next_pause() else {
                        return Err(IronicError::Unavailable(format!(
                            "Ironic is unreachable at {shown}: {reason} (after {} retries)",
                            retries.done()
                        )));
                    };
                    (reason, pause)
                }
            };
            tracing::warn!(
                ironic.target = %call.target,
                ironic.url = %shown,
                retry = retries.done(),
                max_retries = policy.max_retries,
                reason = %reason,
                "Ironic call failed; retrying in {}s",
                pause.as_secs()
            );
            tokio::time::sleep(pause).await;
        }
    }

    /// The endpoint and token for the next attempt.
    async fn resolve(&self) -> Result<Resolved, IronicError> {
        match &self.inner.endpoint {
            Endpoint::Fixed(base) => Ok(Resolved {
                base: base.clone(),
                token: HeaderValue::from_static(NOAUTH_TOKEN),
                service: None,
            }),
            Endpoint::Catalog {
                session,
                service_type,
                interface,
            } => {
                let service = session.token().await.map_err(|e| {
                    IronicError::Unavailable(format!("cannot find Ironic's endpoint: {e}"))
                })?;
                let found = service.endpoint(service_type, *interface).ok_or_else(|| {
                    IronicError::Unavailable(format!(
                        "Ironic is not in the Keystone catalog (service type {service_type}, \
                         interface {})",
                        interface.as_str()
                    ))
                })?;
                let base = base_url(&found).map_err(|reason| {
                    IronicError::Unavailable(format!(
                        "Ironic's catalog endpoint {} cannot be used: {reason}",
                        redact_url(&found)
                    ))
                })?;
                Ok(match &self.user_token {
                    Some(token) => Resolved {
                        base,
                        token: token.clone(),
                        service: None,
                    },
                    None => Resolved {
                        base,
                        token: service.header(),
                        service: Some(service),
                    },
                })
            }
        }
    }

    /// One attempt: wait for a connection slot, send, read the whole answer.
    async fn send_once(
        &self,
        call: &Call<'_>,
        url: Url,
        token: &HeaderValue,
    ) -> Result<(StatusCode, Vec<u8>), NoAnswer> {
        let timeout = self.inner.request_timeout;
        let _slot = tokio::time::timeout(timeout, self.inner.slots.acquire())
            .await
            .map_err(|_| {
                NoAnswer(format!(
                    "no free connection slot within {}s ({MAX_CONCURRENT_REQUESTS} requests \
                     already under way)",
                    timeout.as_secs()
                ))
            })?
            .map_err(|_| NoAnswer("the client is shutting down".to_string()))?;
        let started = Instant::now();
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url)
            .header(API_VERSION_HEADER, call.version)
            .header(ACCEPT, "application/json")
            .header(AUTH_TOKEN_HEADER, token.clone());
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| NoAnswer(transport_reason(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| NoAnswer(transport_reason(&e)))?;
        tracing::debug!(
            http.method = %call.method,
            ironic.target = %call.target,
            http.status = status.as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "Ironic call answered"
        );
        Ok((status, body.to_vec()))
    }
}

/// The Keystone session options for Ironic: `[ironic]` credentials first (as upstream),
/// then `[keystone_authtoken]`, whose connection settings (timeouts, CA) apply too.
fn session_options(config: &Config) -> Result<SessionOptions, SetupError> {
    let ironic = &config.ironic;
    let ks = &config.keystone_authtoken;
    let pick = |own: &str, fallback: Option<&String>| {
        Some(own.trim())
            .filter(|v| !v.is_empty())
            .or_else(|| fallback.map(|v| v.trim()).filter(|v| !v.is_empty()))
            .map(str::to_string)
    };
    let raw_url = pick(&ironic.os_auth_url, ks.auth_uri.as_ref())
        .or_else(|| pick("", ks.identity_uri.as_ref()))
        .ok_or(IRONIC.missing("os_auth_url"))?;
    let endpoint = keystone::configured_v3_root(IRONIC, "os_auth_url", &raw_url)?;
    let username =
        pick(&ironic.os_username, ks.admin_user.as_ref()).ok_or(IRONIC.missing("os_username"))?;
    let password = Some(ironic.os_password.clone())
        .filter(|p| !p.expose_secret().is_empty())
        .or_else(|| ks.admin_password.clone())
        .filter(|p| !p.expose_secret().is_empty())
        .ok_or(IRONIC.missing("os_password"))?;
    let project_name = pick(&ironic.os_tenant_name, Some(&ks.admin_tenant_name))
        .ok_or(IRONIC.missing("os_tenant_name"))?;
    let connect_timeout = match ks.http_connect_timeout {
        None => keystone::DEFAULT_CONNECT_TIMEOUT,
        Some(secs) => KEYSTONE_AUTHTOKEN.positive_secs("http_connect_timeout", secs)?,
    };
    Ok(SessionOptions {
        endpoint,
        username,
        password,
        project_name,
        connect_timeout,
        request_timeout: keystone::DEFAULT_REQUEST_TIMEOUT
            .max(connect_timeout + Duration::from_secs(5)),
        max_retries: KEYSTONE_AUTHTOKEN
            .count("http_request_max_retries", ks.http_request_max_retries)?,
        cafile: ks.cafile.clone(),
        insecure: ks.insecure,
    })
}

/// The lowest API version at which Ironic creates a node in `enroll`.
pub const CREATE_VERSION: &str = "1.11";

/// Node fields newer than [`CREATE_VERSION`], with the API version that introduced them.
const NEWER_NODE_FIELDS: &[(&str, &str)] = &[
    ("network_interface", "1.20"),
    ("resource_class", "1.21"),
    ("boot_interface", "1.31"),
    ("console_interface", "1.31"),
    ("deploy_interface", "1.31"),
    ("inspect_interface", "1.31"),
    ("management_interface", "1.31"),
    ("power_interface", "1.31"),
    ("raid_interface", "1.31"),
    ("vendor_interface", "1.31"),
    ("storage_interface", "1.33"),
    ("rescue_interface", "1.38"),
    ("bios_interface", "1.40"),
    ("conductor_group", "1.46"),
    ("automated_clean", "1.47"),
    ("owner", "1.50"),
    ("description", "1.51"),
    ("retired", "1.61"),
    ("retired_reason", "1.61"),
    ("lessee", "1.65"),
    ("network_data", "1.66"),
    ("shard", "1.82"),
    ("parent_node", "1.83"),
    ("firmware_interface", "1.86"),
];

/// The API version a node creation with these fields is sent at: [`CREATE_VERSION`], or
/// the version that introduced the newest of them. A field we do not know adds nothing
/// (Ironic names it in its refusal if it is wrong).
pub fn create_version<'f>(fields: impl IntoIterator<Item = &'f str>) -> &'static str {
    let minor = |version: &str| {
        version
            .split_once('.')
            .and_then(|(_, minor)| minor.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let mut chosen = CREATE_VERSION;
    for field in fields {
        if let Some((_, version)) = NEWER_NODE_FIELDS.iter().find(|(name, _)| *name == field)
            && minor(version) > minor(chosen)
        {
            chosen = version;
        }
    }
    chosen
}

/// The message of a 5xx answer other than 503 (not retried, as upstream's client did not):
/// it names Ironic, since the node's error or the API answer it ends up in is read by people
/// who cannot tell where a bare "HTTP 500" came from.
fn server_error_message(status: StatusCode, message: &str) -> String {
    if message.starts_with("HTTP ") {
        format!("Ironic answered {message}")
    } else {
        format!("Ironic answered HTTP {}: {message}", status.as_u16())
    }
}

/// Ironic's root from a configured or catalog URL: http(s) only, no query or fragment, no
/// trailing `/v1` (some catalogs include it) and no trailing slash. Path prefixes such as
/// `/baremetal` are kept.
pub(crate) fn base_url(url: &Url) -> Result<Url, String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https".to_string());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("there is no host".to_string());
    }
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    let mut segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    if segments.last().is_some_and(|s| s == "v1") {
        segments.pop();
    }
    base.set_path(&segments.join("/"));
    Ok(base)
}

/// `<base>/v1/<path...>?<query>`. Each path part is one percent-encoded segment, so an
/// identifier cannot add segments; the empty string, `.` and `..` are refused.
pub(crate) fn api_url(
    base: &Url,
    path: &[&str],
    query: &[(String, String)],
) -> Result<Url, IronicError> {
    let mut url = base.clone();
    if let Some(bad) = path
        .iter()
        .find(|part| part.is_empty() || **part == "." || **part == "..")
    {
        return Err(IronicError::Api {
            status: 400,
            message: format!("{bad:?} is not a valid identifier"),
        });
    }
    {
        let Ok(mut segments) = url.path_segments_mut() else {
            return Err(IronicError::Unavailable(format!(
                "Ironic's endpoint {} cannot have a path",
                redact_url(base)
            )));
        };
        segments.pop_if_empty().push("v1").extend(path);
    }
    if query.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(query);
    }
    Ok(url)
}

/// The query for the page after the one whose `next` link is given: its `marker` and, when
/// it is a positive number, its `limit`. Nothing else of the link is used (see the module
/// doc). The error completes "Ironic's next link for X ...".
pub(crate) fn next_page_query(next: &str) -> Result<Vec<(String, String)>, String> {
    // The link is absolute in practice; a relative one only needs some base to read its
    // query from.
    let url = Url::parse(next)
        .or_else(|_| Url::parse("http://ironic.invalid/").and_then(|b| b.join(next)))
        .map_err(|e| format!("cannot be read ({e})"))?;
    let mut marker = None;
    let mut limit = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "marker" if !value.is_empty() => marker = Some(value.into_owned()),
            "limit" if value.parse::<u32>().is_ok_and(|n| n > 0) => {
                limit = Some(value.into_owned())
            }
            _ => {}
        }
    }
    let marker = marker.ok_or_else(|| "has no marker".to_string())?;
    let mut query = Vec::with_capacity(2);
    if let Some(limit) = limit {
        query.push(("limit".to_string(), limit));
    }
    query.push(("marker".to_string(), marker));
    Ok(query)
}

/// One page of a list answer.
struct ListPage<T> {
    items: Vec<T>,
    next: Option<String>,
}

fn parse<T: DeserializeOwned>(
    status: StatusCode,
    body: &[u8],
    target: &str,
) -> Result<T, IronicError> {
    serde_json::from_slice(body).map_err(|e| unreadable(status, target, &e))
}

fn parse_page<T: DeserializeOwned>(
    status: StatusCode,
    body: &[u8],
    key: &str,
    target: &str,
) -> Result<ListPage<T>, IronicError> {
    let mut page: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| unreadable(status, target, &e))?;
    let items = match page.remove(key) {
        Some(Value::Array(items)) => items,
        _ => {
            return Err(IronicError::Api {
                status: status.as_u16(),
                message: format!("Ironic's answer for {target} has no {key:?} list"),
            });
        }
    };
    let items = items
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| unreadable(status, target, &e))?;
    let next = match page.remove("next") {
        Some(Value::String(next)) if !next.trim().is_empty() => Some(next),
        _ => None,
    };
    Ok(ListPage { items, next })
}

fn unreadable(status: StatusCode, target: &str, err: &serde_json::Error) -> IronicError {
    IronicError::Api {
        status: status.as_u16(),
        message: format!("Ironic's answer for {target} cannot be read: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn a_node_is_created_at_the_version_of_its_newest_field() {
        assert_eq!(create_version(["driver", "driver_info"]), "1.11");
        assert_eq!(create_version(["driver", "name", "unknown_field"]), "1.11");
        assert_eq!(create_version(["resource_class", "driver"]), "1.21");
        // Compared as numbers, not text: 1.31 is newer than 1.4x would be as text.
        assert_eq!(
            create_version(["power_interface", "resource_class", "owner"]),
            "1.50"
        );
        assert_eq!(
            create_version(["firmware_interface", "network_interface"]),
            "1.86"
        );
    }

    fn base(text: &str) -> String {
        base_url(&url(text)).map_or_else(|e| format!("error: {e}"), |u| u.to_string())
    }

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(base("http://localhost:6385/"), "http://localhost:6385/");
        assert_eq!(base("http://localhost:6385"), "http://localhost:6385/");
        assert_eq!(base("http://ironic:6385/v1"), "http://ironic:6385/");
        assert_eq!(base("http://ironic:6385/v1/"), "http://ironic:6385/");
        assert_eq!(base("https://cloud/baremetal/"), "https://cloud/baremetal");
        assert_eq!(
            base("https://cloud/baremetal/v1?x=1#f"),
            "https://cloud/baremetal"
        );
        assert!(base("ftp://ironic/").starts_with("error"));
    }

    fn built(base_text: &str, path: &[&str], query: &[(&str, &str)]) -> String {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let base = base_url(&url(base_text)).unwrap();
        api_url(&base, path, &query).map_or_else(|e| format!("error: {e}"), |u| u.to_string())
    }

    #[test]
    fn api_urls_are_built_under_v1() {
        assert_eq!(
            built("http://ironic:6385/", &["nodes", "abc"], &[]),
            "http://ironic:6385/v1/nodes/abc"
        );
        assert_eq!(
            built(
                "http://ironic:6385/v1/",
                &["nodes", "abc", "ports", "detail"],
                &[]
            ),
            "http://ironic:6385/v1/nodes/abc/ports/detail"
        );
        assert_eq!(
            built(
                "https://cloud/baremetal",
                &["ports", "detail"],
                &[("limit", "2"), ("marker", "m 1")]
            ),
            "https://cloud/baremetal/v1/ports/detail?limit=2&marker=m+1"
        );
    }

    #[test]
    fn identifiers_cannot_escape_their_segment() {
        assert_eq!(
            built("http://ironic/", &["nodes", "a/b?c#d"], &[]),
            "http://ironic/v1/nodes/a%2Fb%3Fc%23d"
        );
        for bad in ["", ".", ".."] {
            assert!(
                built("http://ironic/", &["nodes", bad, "validate"], &[]).starts_with("error"),
                "{bad:?}"
            );
        }
    }

    fn next(link: &str) -> String {
        match next_page_query(link) {
            Ok(pairs) => pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn next_links_give_marker_and_limit_only() {
        assert_eq!(
            next("http://other-host:6385/v1/ports/detail?limit=1000&marker=p-9"),
            "limit=1000&marker=p-9"
        );
        // A summary list's link carries fields= (API 1.8); it is dropped.
        assert_eq!(
            next("http://ironic/v1/nodes?fields=uuid,name&limit=2&sort_key=id&marker=n-2"),
            "limit=2&marker=n-2"
        );
        assert_eq!(next("/v1/nodes?marker=n-3"), "marker=n-3");
        assert_eq!(next("http://ironic/v1/nodes?limit=0&marker=x"), "marker=x");
        assert_eq!(
            next("http://ironic/v1/nodes?limit=5"),
            "error: has no marker"
        );
        assert_eq!(
            next("http://ironic/v1/nodes?marker="),
            "error: has no marker"
        );
    }

    #[test]
    fn pages_are_read_with_their_next_link() {
        let ok = StatusCode::OK;
        let page: ListPage<Port> = parse_page(
            ok,
            br#"{"ports": [{"uuid": "p1", "address": "aa:bb:cc:dd:ee:ff", "node_uuid": "n", "extra": {}}],
                 "next": "http://ironic/v1/ports/detail?marker=p1"}"#,
            "ports",
            "ports",
        )
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(
            page.next.as_deref(),
            Some("http://ironic/v1/ports/detail?marker=p1")
        );
        let last: ListPage<Port> =
            parse_page(ok, br#"{"ports": [], "next": ""}"#, "ports", "ports").unwrap();
        assert!(last.items.is_empty() && last.next.is_none());
        let err = parse_page::<Port>(ok, br#"{"nodes": []}"#, "ports", "ports")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "Ironic's answer for ports has no \"ports\" list"
        );
        let err = parse_page::<Port>(ok, b"{not json", "ports", "ports")
            .err()
            .unwrap();
        assert!(
            matches!(err, IronicError::Api { status: 200, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("Ironic's answer for ports cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn noauth_client_uses_ironic_url() {
        let client = IronicClient::from_config(&config(
            "[ironic]\nauth_strategy = noauth\nironic_url = http://u:pw@ironic:6385/v1\n\
             max_retries = 3\nretry_interval = 1\n",
        ))
        .unwrap();
        let printed = format!("{client:?}");
        assert!(printed.contains("\"http://ironic:6385/\""), "{printed}");
        assert!(!printed.contains("pw"), "{printed}");
        assert_eq!(
            client.retry_policy(),
            Backoff::fixed(Some(3), Duration::from_secs(1))
        );
        // Without Keystone, a caller's token is not used.
        assert!(client.with_user_token(Some("tok")).user_token.is_none());
    }

    #[test]
    fn keystone_client_needs_credentials() {
        let err =
            IronicClient::from_config(&config("[ironic]\nauth_strategy = keystone\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[ironic] os_auth_url must be set when [ironic] auth_strategy is keystone"
        );
        let err = IronicClient::from_config(&config(
            "[ironic]\nos_auth_url = http://ks:5000/v2.0\nos_username = svc\n",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "[ironic] os_password must be set when [ironic] auth_strategy is keystone"
        );
        let err = IronicClient::from_config(&config(
            "[ironic]\nos_auth_url = http://ks:5000/v2.0\nos_username = svc\nos_password = pw\n\
             os_endpoint_type = private\n",
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("[ironic] os_endpoint_type must be one of"),
            "{err}"
        );
    }

    #[test]
    fn keystone_client_debug_hides_secrets() {
        let client = IronicClient::from_config(&config(
            "[ironic]\nos_auth_url = http://ks:5000/v2.0\nos_username = svc\n\
             os_password = hunter2-password\nos_tenant_name = service\n",
        ))
        .unwrap();
        let with_token = client.with_user_token(Some("gAAAA-user-token"));
        assert!(with_token.user_token.is_some());
        let printed = format!("{with_token:?}");
        assert!(printed.contains("http://ks:5000/v3"), "{printed}");
        assert!(printed.contains("internal"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("gAAAA"), "{printed}");
        assert!(client.with_user_token(Some("")).user_token.is_none());
        assert!(client.with_user_token(None).user_token.is_none());
    }

    #[test]
    fn negative_retry_settings_are_refused() {
        let err = IronicClient::from_config(&config(
            "[ironic]\nauth_strategy = noauth\nmax_retries = -1\n",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "[ironic] max_retries must be between 0 and {}, got -1",
                u32::MAX
            )
        );
    }
}

#[cfg(test)]
mod page_properties {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::text;

    proptest! {
        #[test]
        fn any_link_is_read_or_refused(link in text()) {
            if let Ok(query) = next_page_query(&link) {
                prop_assert!(query.iter().any(|(k, v)| k == "marker" && !v.is_empty()));
            }
        }

        #[test]
        fn marker_and_limit_read_back(marker in text(), limit in prop::option::of(any::<u32>()), extra in "[a-z]{0,5}") {
            prop_assume!(!marker.is_empty());
            let mut url = Url::parse("http://ironic.example:6385/v1/ports").unwrap();
            {
                let mut pairs = url.query_pairs_mut();
                if let Some(limit) = limit {
                    pairs.append_pair("limit", &limit.to_string());
                }
                pairs.append_pair("marker", &marker);
                pairs.append_pair("detail", &extra);
            }
            let query = next_page_query(url.as_str()).unwrap();
            let mut expected = Vec::new();
            if let Some(limit) = limit.filter(|l| *l > 0) {
                expected.push(("limit".to_string(), limit.to_string()));
            }
            expected.push(("marker".to_string(), marker));
            prop_assert_eq!(query, expected);
        }
    }
}
