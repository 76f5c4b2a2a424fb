//! A Keystone v3 session: the service user's login, its token and the service catalog.
//!
//! Ports what upstream got from keystoneclient in `ironic_inspector/utils.py`: `get_client`
//! logged in with the `[ironic]` service credentials to find Ironic in the catalog, and
//! `add_auth_middleware` had keystonemiddleware log in with the same kind of credentials to
//! validate callers' tokens. Both now use [`KeystoneSession`]: one login (v3 password method,
//! project scope, `Default` domain), one cached token renewed before it expires, one catalog.
//!
//! What this module must not do: decide about authorisation (that is [`crate::auth`]) or
//! speak to Ironic (that is [`crate::ironic`]). Never logged or printed: the password, the
//! service token. The HTTP client follows no redirects, since a redirect would carry a token
//! elsewhere.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::HeaderValue;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::http_client::{
    ClientError, ClientSettings, Section, SetupError, build_client, redact_url, transport_reason,
};
use crate::retry::Backoff;

/// Header naming the token to validate (and carrying a new token in a login answer).
pub const SUBJECT_TOKEN_HEADER: &str = "X-Subject-Token";
/// Domain of the service user and its project; Liberty's options had no domain at all.
pub const DEFAULT_DOMAIN_ID: &str = "default";
/// Connect timeout when `[keystone_authtoken] http_connect_timeout` is unset.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for one whole Keystone request (connect, send, answer, body).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// First pause before retrying a request that could not connect; doubles each retry.
const RETRY_BASE_DELAY: Duration = Duration::from_millis(100);
/// Longest pause between two connection attempts.
const RETRY_MAX_DELAY: Duration = Duration::from_millis(3200);

/// Where and as whom a [`KeystoneSession`] logs in.
#[derive(Clone)]
pub struct SessionOptions {
    /// Keystone's v3 root, e.g. `http://keystone:5000/v3` (see [`v3_root`]).
    pub endpoint: Url,
    /// Service user name, in the `Default` domain.
    pub username: String,
    /// Its password.
    pub password: SecretString,
    /// Project the token is scoped to, in the `Default` domain.
    pub project_name: String,
    /// Time allowed to open a connection to Keystone.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request to Keystone.
    pub request_timeout: Duration,
    /// Retries of a request that could not connect (never of one Keystone answered).
    pub max_retries: u32,
    /// Extra CA bundle (PEM) for Keystone's certificate.
    pub cafile: Option<PathBuf>,
    /// Accept any certificate from Keystone.
    pub insecure: bool,
}

impl fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionOptions")
            .field("endpoint", &redact_url(&self.endpoint).as_str())
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("project_name", &self.project_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("cafile", &self.cafile)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Why a session could not get a token right now. Every variant means "Keystone cannot
/// vouch for us at the moment": callers turn it into their own 503-style answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum KeystoneError {
    /// No answer: connection refused, reset or timed out (after the connect retries).
    #[error("Keystone is unreachable at {url}: {reason}")]
    Unreachable {
        /// The URL asked, without credentials.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Keystone answered 401 to the login: wrong user, password or project.
    #[error("Keystone at {url} rejected the credentials of user {user} in project {project}")]
    Rejected {
        /// The v3 root.
        url: String,
        /// The service user.
        user: String,
        /// Its project.
        project: String,
    },
    /// Keystone answered something we cannot use.
    #[error("unexpected answer from Keystone at {url}: {detail}")]
    Unexpected {
        /// The URL asked, without credentials.
        url: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

/// One `interface` of a v3 catalog endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    /// `public` (v2.0 `publicURL`).
    Public,
    /// `internal` (v2.0 `internalURL`).
    Internal,
    /// `admin` (v2.0 `adminURL`).
    Admin,
}

impl Interface {
    /// Reads an `os_endpoint_type` value: the v2.0 names `publicURL`, `internalURL` and
    /// `adminURL` that Liberty configs use, or the v3 names `public`, `internal`, `admin`.
    pub fn from_endpoint_type(value: &str) -> Option<Interface> {
        match value.trim() {
            "publicURL" | "public" => Some(Interface::Public),
            "internalURL" | "internal" => Some(Interface::Internal),
            "adminURL" | "admin" => Some(Interface::Admin),
            _ => None,
        }
    }

    /// Reads `os_endpoint_type` of `section` (see [`Interface::from_endpoint_type`]).
    pub fn from_option(section: Section, value: &str) -> Result<Interface, SetupError> {
        Interface::from_endpoint_type(value).ok_or_else(|| {
            section.invalid_value(
                "os_endpoint_type",
                format!("must be one of internalURL, publicURL, adminURL, got {value:?}"),
            )
        })
    }

    /// The v3 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// The parts of Keystone's token document we read (login and validation answers).
#[derive(Deserialize)]
pub(crate) struct TokenDocument {
    pub(crate) token: TokenBody,
}

/// The `token` object of a [`TokenDocument`].
#[derive(Deserialize)]
pub(crate) struct TokenBody {
    #[serde(default)]
    pub(crate) roles: Vec<RoleRef>,
    pub(crate) expires_at: Option<String>,
    /// Absent when asked with `?nocatalog`.
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

/// A role of a token.
#[derive(Deserialize)]
pub(crate) struct RoleRef {
    pub(crate) name: String,
}

/// One service of the v3 catalog. Fields are optional so that one odd entry does not make
/// the whole login unreadable.
#[derive(Clone, Debug, Deserialize)]
struct CatalogService {
    #[serde(rename = "type")]
    service_type: Option<String>,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(Clone, Debug, Deserialize)]
struct CatalogEndpoint {
    interface: Option<String>,
    url: Option<String>,
}

/// The service user's token with the catalog that came with it.
pub struct ServiceToken {
    value: SecretString,
    header: HeaderValue,
    catalog: Vec<CatalogService>,
    /// From here on, get a new one before using it.
    renew_at: Instant,
    /// Keystone stops accepting it here; until then it is a fallback if renewal fails.
    expires_at: Instant,
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceToken")
            .field("value", &"[REDACTED]")
            .field("catalog_services", &self.catalog.len())
            .finish_non_exhaustive()
    }
}

impl ServiceToken {
    /// The token itself.
    pub fn secret(&self) -> &SecretString {
        &self.value
    }

    /// The token as a header value, marked sensitive (hyper then keeps it out of its logs).
    pub fn header(&self) -> HeaderValue {
        self.header.clone()
    }

    /// The first catalog endpoint of `service_type` with `interface`, as a URL.
    ///
    /// Regions are not considered, as upstream's client did not (it passed no region).
    pub fn endpoint(&self, service_type: &str, interface: Interface) -> Option<Url> {
        self.catalog
            .iter()
            .filter(|s| s.service_type.as_deref() == Some(service_type))
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.interface.as_deref() == Some(interface.as_str()))
            .filter_map(|e| e.url.as_deref())
            .find_map(|url| Url::parse(url.trim()).ok())
    }
}

/// A logged-in (or about to log in) service user.
///
/// Cheap to clone: every clone shares one HTTP client, one token and one login lock.
#[derive(Clone)]
pub struct KeystoneSession {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    client: reqwest::Client,
    endpoint: Url,
    /// `<v3 root>/auth/tokens`.
    tokens_url: Url,
    username: String,
    password: SecretString,
    project_name: String,
    max_retries: u32,
    slot: TokenSlot,
}

impl fmt::Debug for KeystoneSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoneSession")
            .field("endpoint", &redact_url(&self.inner.endpoint).as_str())
            .field("username", &self.inner.username)
            .field("password", &"[REDACTED]")
            .field("project_name", &self.inner.project_name)
            .field("max_retries", &self.inner.max_retries)
            .finish_non_exhaustive()
    }
}

/// Where the service token lives.
///
/// `current` is a std `Mutex` read and written without `.await` in between, so callers never
/// wait on each other to read it. `login` is a tokio `Mutex` held across the login request on
/// purpose: when the token needs renewing, one task logs in and the others wait for its
/// result instead of sending logins of their own. `failed_logins` counts failed attempts, so
/// a waiter can tell that the attempt it waited for failed, and fails too (with that
/// attempt's error, kept in `last_error`) rather than queueing another full timeout behind it.
struct TokenSlot {
    current: Mutex<Option<Arc<ServiceToken>>>,
    login: tokio::sync::Mutex<()>,
    failed_logins: AtomicU64,
    last_error: Mutex<Option<KeystoneError>>,
}

impl TokenSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<ServiceToken>>> {
        // Each critical section is one assignment or clone; a poisoned lock is still sound.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The token if it does not need renewing yet.
    fn fresh(&self, now: Instant) -> Option<Arc<ServiceToken>> {
        self.lock().as_ref().filter(|t| now < t.renew_at).cloned()
    }

    /// The token if Keystone should still accept it.
    fn usable(&self, now: Instant) -> Option<Arc<ServiceToken>> {
        self.lock().as_ref().filter(|t| now < t.expires_at).cloned()
    }
}

impl KeystoneSession {
    /// Builds the HTTP client (once, for the life of the daemon). Sends nothing yet, so the
    /// daemon starts while Keystone is down.
    ///
    /// Call at start-up: reading `cafile` is a small synchronous file read.
    pub fn new(options: SessionOptions) -> Result<Self, ClientError> {
        let client = build_client(&ClientSettings {
            cafile: options.cafile.as_deref(),
            insecure: options.insecure,
            ..ClientSettings::new(
                options.connect_timeout,
                options.request_timeout,
                Duration::from_secs(60),
            )
        })?;
        if options.insecure {
            tracing::warn!(
                keystone.url = %redact_url(&options.endpoint),
                "insecure is set: Keystone's certificate is not verified"
            );
        }
        let tokens_url = join_tokens(&options.endpoint);
        Ok(KeystoneSession {
            inner: Arc::new(SessionInner {
                client,
                endpoint: options.endpoint,
                tokens_url,
                username: options.username,
                password: options.password,
                project_name: options.project_name,
                max_retries: options.max_retries,
                slot: TokenSlot {
                    current: Mutex::new(None),
                    login: tokio::sync::Mutex::new(()),
                    failed_logins: AtomicU64::new(0),
                    last_error: Mutex::new(None),
                },
            }),
        })
    }

    /// The HTTP client, for other requests to Keystone (token validation).
    pub fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }

    /// Keystone's v3 root.
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    /// `<v3 root>/auth/tokens`.
    pub fn tokens_url(&self) -> &Url {
        &self.inner.tokens_url
    }

    /// The service user's name (for log messages).
    pub fn username(&self) -> &str {
        &self.inner.username
    }

    /// The service token, logging in when there is none or it is due for renewal.
    ///
    /// When renewal fails but the old token has not expired yet, the old one is returned.
    pub async fn token(&self) -> Result<Arc<ServiceToken>, KeystoneError> {
        let slot = &self.inner.slot;
        if let Some(token) = slot.fresh(Instant::now()) {
            return Ok(token);
        }
        let seen = slot.failed_logins.load(Ordering::Acquire);
        let _login = slot.login.lock().await;
        let now = Instant::now();
        if let Some(token) = slot.fresh(now) {
            return Ok(token);
        }
        if slot.failed_logins.load(Ordering::Acquire) != seen {
            // The login we waited for has just failed; do not queue another one behind it.
            let failed = slot
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            if let Some(err) = failed {
                return slot.usable(now).ok_or(err);
            }
        }
        match self.login().await {
            Ok(token) => {
                let token = Arc::new(token);
                *slot.lock() = Some(Arc::clone(&token));
                Ok(token)
            }
            Err(err) => {
                *slot
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(err.clone());
                slot.failed_logins.fetch_add(1, Ordering::AcqRel);
                // Renewal failed but the old token may still be good for a while.
                slot.usable(Instant::now()).ok_or(err)
            }
        }
    }

    /// Forgets `used` (a service refused it), unless it was already replaced by a newer one;
    /// the next [`KeystoneSession::token`] logs in again.
    pub fn discard(&self, used: &ServiceToken) {
        let mut current = self.inner.slot.lock();
        if current
            .as_ref()
            .is_some_and(|t| t.value.expose_secret() == used.value.expose_secret())
        {
            *current = None;
        }
    }

    /// Logs in as the service user (v3 password method, project scope). The answer carries
    /// the catalog, which is kept with the token.
    async fn login(&self) -> Result<ServiceToken, KeystoneError> {
        let inner = &self.inner;
        let body = serde_json::json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {
                        "name": inner.username,
                        "domain": {"id": DEFAULT_DOMAIN_ID},
                        "password": inner.password.expose_secret(),
                    }},
                },
                "scope": {"project": {
                    "name": inner.project_name,
                    "domain": {"id": DEFAULT_DOMAIN_ID},
                }},
            }
        });
        let url = &inner.tokens_url;
        let response = self
            .send(|| inner.client.post(url.clone()).json(&body))
            .await?;
        let status = response.status();
        let unexpected = |detail: String| KeystoneError::Unexpected {
            url: redact_url(url).to_string(),
            detail,
        };
        if status == StatusCode::UNAUTHORIZED {
            let err = KeystoneError::Rejected {
                url: redact_url(&inner.endpoint).to_string(),
                user: inner.username.clone(),
                project: inner.project_name.clone(),
            };
            tracing::error!(error = %err, "Keystone login of the service user failed");
            return Err(err);
        }
        if status != StatusCode::CREATED && status != StatusCode::OK {
            return Err(unexpected(format!("HTTP {} to the login", status.as_u16())));
        }
        let header = response
            .headers()
            .get(SUBJECT_TOKEN_HEADER)
            .filter(|v| !v.is_empty())
            .and_then(|v| Some((v.to_str().ok()?.to_string(), v.clone())));
        let Some((value, mut header)) = header else {
            return Err(unexpected(format!(
                "the login answer has no {SUBJECT_TOKEN_HEADER} header"
            )));
        };
        header.set_sensitive(true);
        let document: TokenDocument = response
            .json()
            .await
            .map_err(|e| unexpected(format!("unreadable login answer: {}", e.without_url())))?;
        let lifetime = document
            .token
            .expires_at
            .as_deref()
            .and_then(crate::utc::parse_timestamp)
            .map_or(Duration::ZERO, time_left);
        let now = Instant::now();
        tracing::debug!(
            keystone.user = %inner.username,
            lifetime_s = lifetime.as_secs(),
            catalog_services = document.token.catalog.len(),
            "logged in to Keystone as the service user"
        );
        Ok(ServiceToken {
            value: SecretString::from(value),
            header,
            catalog: document.token.catalog,
            renew_at: now + renew_after(lifetime),
            expires_at: now + lifetime,
        })
    }

    /// Sends a request to Keystone, retrying only failures to connect (refused,
    /// unreachable): such a request never reached Keystone, so repeating it is safe.
    /// Timeouts are not retried, which bounds the wait by the request timeout.
    pub async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, KeystoneError> {
        let mut retries = Backoff::doubling(
            Some(self.inner.max_retries),
            RETRY_BASE_DELAY,
            RETRY_MAX_DELAY,
        )
        .start();
        loop {
            let err = match build().send().await {
                Ok(response) => return Ok(response),
                Err(err) => err,
            };
            let retry = (err.is_connect() && !err.is_timeout())
                .then(|| retries.next_pause())
                .flatten();
            if let Some(delay) = retry {
                tracing::debug!(
                    error = %err.without_url(),
                    attempt = retries.done(),
                    "cannot connect to Keystone; retrying"
                );
                tokio::time::sleep(delay).await;
                continue;
            }
            let url = err
                .url()
                .map(|u| redact_url(u).to_string())
                .unwrap_or_else(|| redact_url(&self.inner.endpoint).to_string());
            let err = KeystoneError::Unreachable {
                url,
                reason: transport_reason(&err),
            };
            tracing::warn!(error = %err, "Keystone request failed");
            return Err(err);
        }
    }
}

/// Turns a configured Keystone URL into the v3 root: a bare root gets `/v3`, a `/v2.0` (or
/// `/v2`) suffix becomes `/v3`, a `/v3` suffix stays. Path prefixes (`/identity`) are kept;
/// query and fragment are dropped. The error is the reason the URL cannot be used.
pub fn v3_root(raw: &str) -> Result<Url, String> {
    let mut url = Url::parse(raw.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https".to_string());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("there is no host".to_string());
    }
    let mut segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    match segments.last().map(String::as_str) {
        Some("v3") => {}
        Some("v2.0" | "v2") => {
            segments.pop();
            segments.push("v3".to_string());
        }
        _ => segments.push("v3".to_string()),
    }
    url.set_path(&format!("/{}", segments.join("/")));
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// [`v3_root`] of `raw`, the value of `option` in `section`; the error names them.
pub fn configured_v3_root(
    section: Section,
    option: &'static str,
    raw: &str,
) -> Result<Url, SetupError> {
    v3_root(raw).map_err(|reason| section.invalid_url(option, raw, reason))
}

fn join_tokens(endpoint: &Url) -> Url {
    let mut url = endpoint.clone();
    let path = format!("{}/auth/tokens", endpoint.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// When to renew a token that lives `lifetime` from now: a minute before the end, or
/// half-way for tokens shorter than two minutes.
pub(crate) fn renew_after(lifetime: Duration) -> Duration {
    let margin = Duration::from_secs(60);
    if lifetime > margin * 2 {
        lifetime - margin
    } else {
        lifetime / 2
    }
}

/// Time from now until `deadline`, zero if it has passed.
pub(crate) fn time_left(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_client::sensitive_header;

    /// Options for a session with `svc` on `endpoint`, which no test expects to answer.
    fn options(endpoint: &str) -> SessionOptions {
        SessionOptions {
            endpoint: v3_root(endpoint).unwrap(),
            username: "svc".to_string(),
            password: SecretString::from("hunter2-password"),
            project_name: "service".to_string(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            max_retries: 0,
            cafile: None,
            insecure: false,
        }
    }

    /// A port nothing listens on (it was free a moment ago).
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn root(raw: &str) -> String {
        match v3_root(raw) {
            Ok(url) => url.to_string(),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn endpoint_is_normalised_to_the_v3_root() {
        assert_eq!(root("http://ks:5000"), "http://ks:5000/v3");
        assert_eq!(root("http://ks:5000/"), "http://ks:5000/v3");
        assert_eq!(root("http://ks:5000/v2.0"), "http://ks:5000/v3");
        assert_eq!(root("http://ks:5000/v2.0/"), "http://ks:5000/v3");
        assert_eq!(root("http://ks:5000/v2"), "http://ks:5000/v3");
        assert_eq!(root("http://ks:5000/v3"), "http://ks:5000/v3");
        assert_eq!(root("http://ks:5000/v3/"), "http://ks:5000/v3");
        assert_eq!(root("https://ks/identity"), "https://ks/identity/v3");
        assert_eq!(root("https://ks/identity/v2.0"), "https://ks/identity/v3");
        assert_eq!(root(" http://ks:5000/v3?x=1#frag "), "http://ks:5000/v3");
    }

    #[test]
    fn bad_endpoints_are_refused() {
        assert!(root("ks:5000").starts_with("error"));
        assert!(root("ftp://ks/v3").starts_with("error"));
        assert!(root("not a url").starts_with("error"));
        assert!(root("").starts_with("error"));
    }

    #[test]
    fn endpoint_types_map_to_interfaces() {
        for (name, interface) in [
            ("internalURL", Interface::Internal),
            ("internal", Interface::Internal),
            ("publicURL", Interface::Public),
            ("public", Interface::Public),
            ("adminURL", Interface::Admin),
            ("admin", Interface::Admin),
        ] {
            assert_eq!(
                Interface::from_endpoint_type(name),
                Some(interface),
                "{name}"
            );
        }
        assert_eq!(Interface::from_endpoint_type("internalurl"), None);
        assert_eq!(Interface::from_endpoint_type(""), None);
    }

    fn token_with_catalog(catalog: serde_json::Value) -> ServiceToken {
        let body: TokenBody = serde_json::from_value(serde_json::json!({
            "expires_at": "2999-01-01T00:00:00Z",
            "catalog": catalog,
        }))
        .unwrap();
        ServiceToken {
            value: SecretString::from("t"),
            header: sensitive_header("t"),
            catalog: body.catalog,
            renew_at: Instant::now(),
            expires_at: Instant::now(),
        }
    }

    #[test]
    fn catalog_lookup_matches_type_and_interface() {
        let token = token_with_catalog(serde_json::json!([
            {"type": "identity", "endpoints": [
                {"interface": "internal", "url": "http://ks:5000/v3"}]},
            {"type": "baremetal", "name": "ironic", "endpoints": [
                {"interface": "public", "url": "http://public:6385"},
                {"interface": "internal", "url": "not a url"},
                {"interface": "internal", "url": "http://internal:6385/"},
                {"interface": "admin", "url": "http://admin:6385"}]},
            {"type": null},
            {"endpoints": [{"url": "http://odd"}]},
        ]));
        let find = |t: &str, i| token.endpoint(t, i).map(|u| u.to_string());
        assert_eq!(
            find("baremetal", Interface::Internal).as_deref(),
            Some("http://internal:6385/")
        );
        assert_eq!(
            find("baremetal", Interface::Public).as_deref(),
            Some("http://public:6385/")
        );
        assert_eq!(
            find("baremetal", Interface::Admin).as_deref(),
            Some("http://admin:6385/")
        );
        assert_eq!(find("object-store", Interface::Internal), None);
        let printed = format!("{token:?}");
        assert!(printed.contains("REDACTED"), "{printed}");
    }

    #[test]
    fn session_debug_has_no_password() {
        let options = options("http://127.0.0.1:9");
        let printed = format!("{options:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let session = KeystoneSession::new(options).unwrap();
        let printed = format!("{session:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(
            session.tokens_url().as_str(),
            "http://127.0.0.1:9/v3/auth/tokens"
        );
    }

    #[tokio::test]
    async fn credentials_in_the_keystone_url_are_never_shown() {
        let port = closed_port();
        let options = options(&format!("http://user:url-secret@127.0.0.1:{port}"));
        let printed = format!("{options:?}");
        assert!(!printed.contains("url-secret"), "{printed}");
        let session = KeystoneSession::new(options).unwrap();
        let printed = format!("{session:?}");
        assert!(!printed.contains("url-secret"), "{printed}");
        // Nothing listens on the port: the error names the URL, without its password.
        let err = session.token().await.unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(!err.contains("url-secret"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_keystone_is_reported_with_its_url() {
        let port = closed_port();
        let session = KeystoneSession::new(SessionOptions {
            max_retries: 1,
            ..options(&format!("http://127.0.0.1:{port}"))
        })
        .unwrap();
        let err = session.token().await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, KeystoneError::Unreachable { .. }), "{text}");
        assert!(
            text.starts_with(&format!(
                "Keystone is unreachable at http://127.0.0.1:{port}/v3/auth/tokens: cannot connect"
            )),
            "{text}"
        );
    }

    #[test]
    fn renewal_happens_before_expiry() {
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            renew_after(Duration::from_secs(100)),
            Duration::from_secs(50)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn time_left_is_zero_in_the_past() {
        use std::time::UNIX_EPOCH;

        assert_eq!(time_left(UNIX_EPOCH), Duration::ZERO);
        let soon = SystemTime::now() + Duration::from_secs(100);
        assert!(time_left(soon) > Duration::from_secs(98));
    }
}
