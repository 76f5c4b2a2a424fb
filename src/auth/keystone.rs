//! Keystone token validation, the `keystone` auth strategy.
//!
//! Ports what upstream `ironic_inspector/utils.py` got from keystonemiddleware's
//! `auth_token` (installed by `add_auth_middleware`) together with the decision of
//! `check_auth`. The service logs in to Keystone v3 with the `[keystone_authtoken]`
//! credentials, keeps that service token and renews it before it expires, and checks each
//! caller's token with `GET /v3/auth/tokens`. Outcomes are cached briefly, keyed by a hash of
//! the token (see [`super::cache`]).
//!
//! Never logged or printed: the service password, the service token, callers' tokens. The
//! HTTP client follows no redirects, since a redirect would carry `X-Auth-Token` elsewhere.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::cache::{TokenCache, TokenKey, Verdict};
use super::{Auth, SetupError, forbidden, has_admin_role, unauthorized};
use crate::config::KeystoneAuthtoken;
use crate::error::Error;

/// Header carrying the token of whoever makes the request.
pub const AUTH_TOKEN_HEADER: &str = "X-Auth-Token";
/// Header naming the token to validate (and carrying a new token in a login answer).
pub const SUBJECT_TOKEN_HEADER: &str = "X-Subject-Token";

/// Connect timeout when `[keystone_authtoken] http_connect_timeout` is unset.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for one whole Keystone request (connect, send, answer, body).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a token Keystone rejected is remembered as invalid.
pub const NEGATIVE_CACHE_TIME: Duration = Duration::from_secs(3);
/// Most token outcomes kept in memory at once.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// Domain of the service user and its project; upstream's options had no domain either.
const DEFAULT_DOMAIN_ID: &str = "default";
/// First pause before retrying a request that could not connect; doubles each retry.
const RETRY_BASE_DELAY: Duration = Duration::from_millis(100);
/// The message callers get when Keystone cannot answer.
const UNAVAILABLE: &str = "Authentication service is unavailable";

/// Settings of [`KeystoneAuth`], checked and normalised.
///
/// Usually built by [`KeystoneOptions::from_section`]; tests adjust fields (for example a
/// shorter `request_timeout`) before calling [`KeystoneAuth::new`].
#[derive(Clone)]
pub struct KeystoneOptions {
    /// Keystone's v3 root, e.g. `http://keystone:5000/v3` (no trailing slash).
    pub endpoint: Url,
    /// Service user name (`admin_user`), in the default domain.
    pub username: String,
    /// Its password (`admin_password`).
    pub password: SecretString,
    /// Project the service token is scoped to (`admin_tenant_name`), in the default domain.
    pub project_name: String,
    /// Time allowed to open a connection to Keystone.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request to Keystone.
    pub request_timeout: Duration,
    /// Retries of a request that could not connect (`http_request_max_retries`).
    pub max_retries: u32,
    /// Longest time a valid token's outcome is cached (`token_cache_time`; zero disables
    /// caching altogether).
    pub token_cache_time: Duration,
    /// How long a rejected token is remembered.
    pub negative_cache_time: Duration,
    /// Most cached outcomes.
    pub cache_capacity: usize,
    /// Extra CA bundle (PEM) for Keystone's certificate.
    pub cafile: Option<PathBuf>,
    /// Accept any certificate from Keystone.
    pub insecure: bool,
}

impl fmt::Debug for KeystoneOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoneOptions")
            .field("endpoint", &self.endpoint.as_str())
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("project_name", &self.project_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("token_cache_time", &self.token_cache_time)
            .field("negative_cache_time", &self.negative_cache_time)
            .field("cache_capacity", &self.cache_capacity)
            .field("cafile", &self.cafile)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl KeystoneOptions {
    /// Reads `[keystone_authtoken]`.
    ///
    /// The endpoint is `identity_uri` (the admin endpoint), else `auth_uri`; either may be a
    /// bare root, a `/v2.0` URL or a `/v3` URL, and becomes the v3 root. `admin_user`,
    /// `admin_password` and one of the two URLs are required.
    pub fn from_section(section: &KeystoneAuthtoken) -> Result<Self, SetupError> {
        let (option, raw) = match (
            non_empty(&section.identity_uri),
            non_empty(&section.auth_uri),
        ) {
            (Some(uri), _) => ("identity_uri", uri),
            (None, Some(uri)) => ("auth_uri", uri),
            (None, None) => return Err(SetupError::MissingOption("identity_uri (or auth_uri)")),
        };
        let endpoint = v3_root(option, raw)?;
        let username = non_empty(&section.admin_user)
            .ok_or(SetupError::MissingOption("admin_user"))?
            .to_string();
        let password = section
            .admin_password
            .clone()
            .filter(|p| !p.expose_secret().is_empty())
            .ok_or(SetupError::MissingOption("admin_password"))?;
        if section.admin_tenant_name.is_empty() {
            return Err(SetupError::MissingOption("admin_tenant_name"));
        }
        let connect_timeout = match section.http_connect_timeout {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(secs) if secs > 0 => Duration::from_secs(secs.unsigned_abs()),
            Some(secs) => {
                return Err(SetupError::InvalidValue {
                    option: "http_connect_timeout",
                    reason: format!("must be a positive number of seconds, got {secs}"),
                });
            }
        };
        let max_retries = u32::try_from(section.http_request_max_retries).map_err(|_| {
            SetupError::InvalidValue {
                option: "http_request_max_retries",
                reason: format!(
                    "must be between 0 and {}, got {}",
                    u32::MAX,
                    section.http_request_max_retries
                ),
            }
        })?;
        // keystonemiddleware disables its cache with a negative value; zero does the same here.
        let token_cache_time = Duration::from_secs(section.token_cache_time.max(0).unsigned_abs());
        Ok(KeystoneOptions {
            endpoint,
            username,
            password,
            project_name: section.admin_tenant_name.clone(),
            connect_timeout,
            request_timeout: DEFAULT_REQUEST_TIMEOUT.max(connect_timeout + Duration::from_secs(5)),
            max_retries,
            token_cache_time,
            negative_cache_time: if token_cache_time.is_zero() {
                Duration::ZERO
            } else {
                NEGATIVE_CACHE_TIME
            },
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            cafile: section.cafile.clone(),
            insecure: section.insecure,
        })
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Turns a configured Keystone URL into the v3 root: a bare root gets `/v3`, a `/v2.0` (or
/// `/v2`) suffix becomes `/v3`, a `/v3` suffix stays. Path prefixes (`/identity`) are kept;
/// query and fragment are dropped.
pub fn v3_root(option: &'static str, raw: &str) -> Result<Url, SetupError> {
    let invalid = |reason: String| SetupError::InvalidUrl {
        option,
        value: raw.to_string(),
        reason,
    };
    let mut url = Url::parse(raw.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https".to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("there is no host".to_string()));
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

/// The `keystone` auth strategy: validates callers' tokens against Keystone v3.
///
/// Holds one pooled HTTP client, the service token, and a short cache of outcomes. Cheap to
/// share behind an `Arc`; every method takes `&self`.
pub struct KeystoneAuth {
    client: reqwest::Client,
    /// `<v3 root>/auth/tokens`, for logging in.
    login_url: Url,
    /// `<v3 root>/auth/tokens?nocatalog`, for validating (the catalog is not needed).
    validate_url: Url,
    username: String,
    password: SecretString,
    project_name: String,
    max_retries: u32,
    token_cache_time: Duration,
    negative_cache_time: Duration,
    cache: TokenCache,
    service: ServiceTokenSlot,
}

impl fmt::Debug for KeystoneAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoneAuth")
            .field("login_url", &self.login_url.as_str())
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("project_name", &self.project_name)
            .field("max_retries", &self.max_retries)
            .field("token_cache_time", &self.token_cache_time)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// The service's own token and when to replace it.
#[derive(Clone)]
struct ServiceToken {
    value: SecretString,
    /// From here on, get a new one before using it.
    renew_at: Instant,
    /// Keystone stops accepting it here; until then it is a fallback if renewal fails.
    expires_at: Instant,
}

/// Where the service token lives.
///
/// `current` is a std `Mutex` read and written without `.await` in between, so validations
/// never wait on each other to read it. `login` is a tokio `Mutex` held across the login
/// request on purpose: when the token needs renewing, one task logs in and the others wait
/// for its result instead of sending logins of their own. `failed_logins` counts failed
/// attempts, so a waiter can tell that the attempt it waited for failed, and fails too rather
/// than queueing another full timeout behind it.
struct ServiceTokenSlot {
    current: Mutex<Option<ServiceToken>>,
    login: tokio::sync::Mutex<()>,
    failed_logins: AtomicU64,
}

impl ServiceTokenSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ServiceToken>> {
        // Each critical section is one assignment or clone; a poisoned lock is still sound.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The token if it does not need renewing yet.
    fn fresh(&self, now: Instant) -> Option<SecretString> {
        self.lock()
            .as_ref()
            .filter(|t| now < t.renew_at)
            .map(|t| t.value.clone())
    }

    /// The token if Keystone should still accept it.
    fn usable(&self, now: Instant) -> Option<SecretString> {
        self.lock()
            .as_ref()
            .filter(|t| now < t.expires_at)
            .map(|t| t.value.clone())
    }

    fn store(&self, token: ServiceToken) {
        *self.lock() = Some(token);
    }

    /// Forgets the token, unless someone already replaced it with a newer one.
    fn discard(&self, used: &SecretString) {
        let mut current = self.lock();
        if current
            .as_ref()
            .is_some_and(|t| t.value.expose_secret() == used.expose_secret())
        {
            *current = None;
        }
    }
}

/// The parts of Keystone's token document we read.
#[derive(Deserialize)]
struct TokenDocument {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    roles: Vec<RoleRef>,
    expires_at: Option<String>,
}

#[derive(Deserialize)]
struct RoleRef {
    name: String,
}

impl KeystoneAuth {
    /// Builds the HTTP client (once, for the life of the daemon). Sends nothing yet.
    pub fn new(options: KeystoneOptions) -> Result<Self, SetupError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("ironic-inspector/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.cafile {
            let ca_error = |reason: String| SetupError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in the file".to_string()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if options.insecure {
            tracing::warn!(
                "[keystone_authtoken] insecure is set: Keystone's certificate is not verified"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        let login_url = join_tokens(&options.endpoint);
        let mut validate_url = login_url.clone();
        validate_url.set_query(Some("nocatalog"));
        Ok(KeystoneAuth {
            client,
            login_url,
            validate_url,
            username: options.username,
            password: options.password,
            project_name: options.project_name,
            max_retries: options.max_retries,
            token_cache_time: options.token_cache_time,
            negative_cache_time: options.negative_cache_time,
            cache: TokenCache::new(options.cache_capacity),
            service: ServiceTokenSlot {
                current: Mutex::new(None),
                login: tokio::sync::Mutex::new(()),
                failed_logins: AtomicU64::new(0),
            },
        })
    }

    /// Asks Keystone about `token` (cache missed), caches the answer and returns it.
    async fn validate(&self, token: &str, key: TokenKey) -> crate::Result<Verdict> {
        let Ok(mut subject) = HeaderValue::from_str(token) else {
            // Not even a valid header value: Keystone could never have issued it.
            return Ok(Verdict::Invalid);
        };
        subject.set_sensitive(true);
        let mut renewed = false;
        loop {
            let service = self.service_token().await?;
            let response = self
                .send(|| {
                    self.client
                        .get(self.validate_url.clone())
                        .header(AUTH_TOKEN_HEADER, sensitive(&service))
                        .header(SUBJECT_TOKEN_HEADER, subject.clone())
                })
                .await?;
            match response.status() {
                StatusCode::OK => {
                    let document: TokenDocument = response.json().await.map_err(|e| {
                        tracing::warn!(error = %e.without_url(), "unreadable token validation answer from Keystone");
                        unavailable()
                    })?;
                    let verdict = Verdict::Valid {
                        admin: has_admin_role(document.token.roles.iter().map(|r| r.name.as_str())),
                    };
                    let remaining = document
                        .token
                        .expires_at
                        .as_deref()
                        .and_then(parse_timestamp)
                        .map_or(Duration::ZERO, time_left);
                    let ttl = self.token_cache_time.min(remaining);
                    self.cache.insert(key, verdict, ttl, Instant::now());
                    return Ok(verdict);
                }
                // 404 is Keystone's answer for an unknown, expired or revoked token. Our
                // request is well formed, so a 400 or 431 can only be about the token itself
                // (for example one too large for the server in front of Keystone).
                StatusCode::NOT_FOUND
                | StatusCode::BAD_REQUEST
                | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                    self.cache.insert(
                        key,
                        Verdict::Invalid,
                        self.negative_cache_time,
                        Instant::now(),
                    );
                    return Ok(Verdict::Invalid);
                }
                StatusCode::UNAUTHORIZED if !renewed => {
                    // The service token was revoked or expired early: log in again, once.
                    tracing::info!("Keystone refused the service token; logging in again");
                    self.service.discard(&service);
                    renewed = true;
                }
                StatusCode::UNAUTHORIZED => {
                    tracing::error!("Keystone refused a freshly issued service token");
                    return Err(unavailable());
                }
                StatusCode::FORBIDDEN => {
                    tracing::error!(
                        keystone.user = %self.username,
                        "Keystone does not allow the service user to validate tokens (policy identity:validate_token)"
                    );
                    return Err(unavailable());
                }
                status => {
                    tracing::warn!(
                        http.status = status.as_u16(),
                        "unexpected answer from Keystone to a token validation"
                    );
                    return Err(unavailable());
                }
            }
        }
    }

    /// The service token, logging in when there is none or it is due for renewal.
    async fn service_token(&self) -> crate::Result<SecretString> {
        if let Some(token) = self.service.fresh(Instant::now()) {
            return Ok(token);
        }
        let seen = self.service.failed_logins.load(Ordering::Acquire);
        let _login = self.service.login.lock().await;
        let now = Instant::now();
        if let Some(token) = self.service.fresh(now) {
            return Ok(token);
        }
        if self.service.failed_logins.load(Ordering::Acquire) != seen {
            // The login we waited for has just failed; do not queue another one behind it.
            return self.service.usable(now).ok_or_else(unavailable);
        }
        match self.login().await {
            Ok(token) => {
                let value = token.value.clone();
                self.service.store(token);
                Ok(value)
            }
            Err(err) => {
                self.service.failed_logins.fetch_add(1, Ordering::AcqRel);
                // Renewal failed but the old token may still be good for a while.
                self.service.usable(Instant::now()).ok_or(err)
            }
        }
    }

    /// Logs in as the service user (v3 password method, project scope).
    async fn login(&self) -> crate::Result<ServiceToken> {
        let body = serde_json::json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {
                        "name": self.username,
                        "domain": {"id": DEFAULT_DOMAIN_ID},
                        "password": self.password.expose_secret(),
                    }},
                },
                "scope": {"project": {
                    "name": self.project_name,
                    "domain": {"id": DEFAULT_DOMAIN_ID},
                }},
            }
        });
        let response = self
            .send(|| self.client.post(self.login_url.clone()).json(&body))
            .await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            tracing::error!(
                keystone.user = %self.username,
                keystone.project = %self.project_name,
                "Keystone rejected the service credentials ([keystone_authtoken] admin_user, admin_password, admin_tenant_name)"
            );
            return Err(unavailable());
        }
        if status != StatusCode::CREATED && status != StatusCode::OK {
            tracing::warn!(
                http.status = status.as_u16(),
                "unexpected answer from Keystone to the service login"
            );
            return Err(unavailable());
        }
        let value = response
            .headers()
            .get(SUBJECT_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(|v| SecretString::from(v.to_string()));
        let Some(value) = value else {
            tracing::warn!("Keystone's login answer has no {SUBJECT_TOKEN_HEADER} header");
            return Err(unavailable());
        };
        let document: TokenDocument = response.json().await.map_err(|e| {
            tracing::warn!(error = %e.without_url(), "unreadable login answer from Keystone");
            unavailable()
        })?;
        let lifetime = document
            .token
            .expires_at
            .as_deref()
            .and_then(parse_timestamp)
            .map_or(Duration::ZERO, time_left);
        let now = Instant::now();
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            "logged in to Keystone as the service user"
        );
        Ok(ServiceToken {
            value,
            renew_at: now + renew_after(lifetime),
            expires_at: now + lifetime,
        })
    }

    /// Sends a request, retrying only failures to connect (refused, unreachable): the
    /// request never reached Keystone, so repeating it is safe. Timeouts are not retried,
    /// which bounds the wait by the request timeout.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> crate::Result<reqwest::Response> {
        let mut attempt: u32 = 0;
        loop {
            match build().send().await {
                Ok(response) => return Ok(response),
                Err(err) if err.is_connect() && !err.is_timeout() && attempt < self.max_retries => {
                    attempt += 1;
                    let delay = RETRY_BASE_DELAY.saturating_mul(2u32.pow(attempt.min(6) - 1));
                    tracing::debug!(
                        error = %err,
                        attempt,
                        "cannot connect to Keystone; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Keystone request failed");
                    return Err(unavailable());
                }
            }
        }
    }
}

#[async_trait]
impl Auth for KeystoneAuth {
    async fn authorize(&self, token: Option<&str>) -> crate::Result<()> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(unauthorized());
        };
        let key = self.cache.key(token);
        let verdict = match self.cache.get(key, Instant::now()) {
            Some(verdict) => verdict,
            None => self.validate(token, key).await?,
        };
        decide(verdict)
    }
}

/// `check_auth`'s decision for a validation outcome.
fn decide(verdict: Verdict) -> crate::Result<()> {
    match verdict {
        Verdict::Valid { admin: true } => Ok(()),
        Verdict::Valid { admin: false } => {
            tracing::info!("token without the admin role refused");
            Err(forbidden())
        }
        Verdict::Invalid => Err(unauthorized()),
    }
}

fn unavailable() -> Error {
    Error::ServiceUnavailable(UNAVAILABLE.to_string())
}

fn sensitive(secret: &SecretString) -> HeaderValue {
    match HeaderValue::from_str(secret.expose_secret()) {
        Ok(mut value) => {
            value.set_sensitive(true);
            value
        }
        // Keystone's token came from a header value, so this cannot happen; an empty header
        // makes Keystone answer 401, which is handled like any refused service token.
        Err(_) => HeaderValue::from_static(""),
    }
}

fn join_tokens(endpoint: &Url) -> Url {
    let mut url = endpoint.clone();
    let path = format!("{}/auth/tokens", endpoint.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// When to renew a service token that lives `lifetime` from now: a minute before the end,
/// or half-way for tokens shorter than two minutes.
fn renew_after(lifetime: Duration) -> Duration {
    let margin = Duration::from_secs(60);
    if lifetime > margin * 2 {
        lifetime - margin
    } else {
        lifetime / 2
    }
}

/// Time from now until `deadline`, zero if it has passed.
fn time_left(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

/// Parses Keystone's ISO 8601 times: `2026-11-26T08:23:08.000000Z`, also without the
/// fraction and with a `±HH:MM` offset instead of `Z`.
pub(crate) fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;

    let (clock, offset_secs) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(pos) = time.rfind(['+', '-']) {
        let (clock, offset) = time.split_at(pos);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset.get(1..)?.split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        (clock, sign * (h * 3600 + m * 60))
    } else {
        // Keystone always writes UTC; a bare time is read as UTC.
        (time, 0)
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms_parts = hms.splitn(3, ':');
    let hour: i64 = hms_parts.next()?.parse().ok()?;
    let minute: i64 = hms_parts.next()?.parse().ok()?;
    let second: i64 = hms_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        digits.parse::<u32>().ok()?
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section() -> KeystoneAuthtoken {
        KeystoneAuthtoken {
            auth_uri: None,
            identity_uri: Some("http://127.0.0.1:35357".to_string()),
            admin_user: Some("inspector".to_string()),
            admin_password: Some(SecretString::from("hunter2-password")),
            admin_tenant_name: "service".to_string(),
            token_cache_time: 300,
            http_connect_timeout: None,
            http_request_max_retries: 3,
            cafile: None,
            insecure: false,
            region_name: None,
        }
    }

    fn root(raw: &str) -> String {
        match v3_root("auth_uri", raw) {
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
    fn tokens_url_is_under_the_root() {
        let url = v3_root("identity_uri", "http://ks:5000/identity/v2.0").unwrap();
        assert_eq!(
            join_tokens(&url).as_str(),
            "http://ks:5000/identity/v3/auth/tokens"
        );
    }

    #[test]
    fn options_prefer_identity_uri() {
        let mut s = section();
        s.auth_uri = Some("http://public:5000/v2.0".to_string());
        let o = KeystoneOptions::from_section(&s).unwrap();
        assert_eq!(o.endpoint.as_str(), "http://127.0.0.1:35357/v3");
        s.identity_uri = Some("  ".to_string());
        let o = KeystoneOptions::from_section(&s).unwrap();
        assert_eq!(o.endpoint.as_str(), "http://public:5000/v3");
        assert_eq!(o.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(o.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(o.max_retries, 3);
        assert_eq!(o.token_cache_time, Duration::from_secs(300));
        assert_eq!(o.negative_cache_time, NEGATIVE_CACHE_TIME);
    }

    #[test]
    fn missing_options_are_named() {
        type Change = fn(&mut KeystoneAuthtoken);
        let cases: [(&str, Change); 4] = [
            ("identity_uri (or auth_uri)", |s| s.identity_uri = None),
            ("admin_user", |s| s.admin_user = Some(String::new())),
            ("admin_password", |s| s.admin_password = None),
            ("admin_tenant_name", |s| s.admin_tenant_name = String::new()),
        ];
        for (option, change) in cases {
            let mut s = section();
            change(&mut s);
            let err = KeystoneOptions::from_section(&s).unwrap_err();
            assert!(
                matches!(err, SetupError::MissingOption(o) if o == option),
                "{err}"
            );
            assert!(err.to_string().contains("[keystone_authtoken]"), "{err}");
        }
        let mut s = section();
        s.admin_password = Some(SecretString::from(""));
        assert!(matches!(
            KeystoneOptions::from_section(&s),
            Err(SetupError::MissingOption("admin_password"))
        ));
    }

    #[test]
    fn numeric_options_are_checked() {
        let mut s = section();
        s.http_connect_timeout = Some(0);
        assert!(KeystoneOptions::from_section(&s).is_err());
        s.http_connect_timeout = Some(30);
        let o = KeystoneOptions::from_section(&s).unwrap();
        assert_eq!(o.connect_timeout, Duration::from_secs(30));
        assert_eq!(o.request_timeout, Duration::from_secs(35));
        s.http_request_max_retries = -1;
        assert!(KeystoneOptions::from_section(&s).is_err());
        let mut s = section();
        s.token_cache_time = -1;
        let o = KeystoneOptions::from_section(&s).unwrap();
        assert_eq!(o.token_cache_time, Duration::ZERO);
        assert_eq!(o.negative_cache_time, Duration::ZERO);
    }

    #[test]
    fn debug_output_has_no_password() {
        let options = KeystoneOptions::from_section(&section()).unwrap();
        let printed = format!("{options:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let auth = KeystoneAuth::new(options).unwrap();
        let printed = format!("{auth:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
    }

    #[test]
    fn unreadable_cafile_is_a_setup_error() {
        let mut options = KeystoneOptions::from_section(&section()).unwrap();
        options.cafile = Some(PathBuf::from("/nonexistent/ca.pem"));
        assert!(matches!(
            KeystoneAuth::new(options),
            Err(SetupError::CaFile { .. })
        ));
    }

    #[test]
    fn decisions_follow_check_auth() {
        assert!(decide(Verdict::Valid { admin: true }).is_ok());
        assert!(matches!(
            decide(Verdict::Valid { admin: false }),
            Err(Error::Forbidden(m)) if m == "Access denied"
        ));
        assert!(matches!(
            decide(Verdict::Invalid),
            Err(Error::Unauthorized(m)) if m == "Authentication required"
        ));
    }

    #[tokio::test]
    async fn missing_or_empty_token_is_refused_without_asking_keystone() {
        // The endpoint is a closed port; reaching it would give 503, not 401.
        let mut s = section();
        s.identity_uri = Some("http://127.0.0.1:9".to_string());
        let auth = KeystoneAuth::new(KeystoneOptions::from_section(&s).unwrap()).unwrap();
        assert!(matches!(
            auth.authorize(None).await,
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            auth.authorize(Some("")).await,
            Err(Error::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn cached_outcomes_skip_keystone() {
        let mut s = section();
        s.identity_uri = Some("http://127.0.0.1:9".to_string());
        let auth = KeystoneAuth::new(KeystoneOptions::from_section(&s).unwrap()).unwrap();
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        auth.cache.insert(
            auth.cache.key("adm"),
            Verdict::Valid { admin: true },
            ttl,
            now,
        );
        auth.cache.insert(
            auth.cache.key("mem"),
            Verdict::Valid { admin: false },
            ttl,
            now,
        );
        auth.cache
            .insert(auth.cache.key("bad"), Verdict::Invalid, ttl, now);
        assert!(auth.authorize(Some("adm")).await.is_ok());
        assert!(matches!(
            auth.authorize(Some("mem")).await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            auth.authorize(Some("bad")).await,
            Err(Error::Unauthorized(_))
        ));
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

    fn unix(text: &str) -> Option<u64> {
        parse_timestamp(text).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    #[test]
    fn keystone_timestamps_parse() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix("2026-11-26T08:23:08.000000Z"), Some(1_795_681_388));
        assert_eq!(unix("2026-11-26T08:23:08Z"), Some(1_795_681_388));
        assert_eq!(unix("2026-11-26T09:23:08+01:00"), Some(1_795_681_388));
        assert_eq!(unix("2026-11-26T07:53:08.5-00:30"), Some(1_795_681_388));
        assert_eq!(unix("2000-02-29T00:00:00Z"), Some(951_782_400));
        let subsec = parse_timestamp("1970-01-01T00:00:01.250Z").unwrap();
        assert_eq!(
            subsec.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(1250)
        );
    }

    #[test]
    fn bad_timestamps_do_not_parse() {
        for text in [
            "",
            "2026-11-26",
            "2026-13-01T00:00:00Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T08:23Z",
            "2026-11-26T08:23:08.x1Z",
            "1969-12-31T23:59:59Z",
            "garbage",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }

    #[test]
    fn time_left_is_zero_in_the_past() {
        assert_eq!(time_left(UNIX_EPOCH), Duration::ZERO);
        let soon = SystemTime::now() + Duration::from_secs(100);
        assert!(time_left(soon) > Duration::from_secs(98));
    }
}
