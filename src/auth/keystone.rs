//! Keystone token validation, the `keystone` auth strategy.
//!
//! Ports what upstream `ironic_inspector/utils.py` got from keystonemiddleware's
//! `auth_token` (installed by `add_auth_middleware`) together with the decision of
//! `check_auth`. The service user's login, token renewal and HTTP client are the shared
//! [`KeystoneSession`] of [`crate::keystone`], built from the `[keystone_authtoken]`
//! credentials; this module checks each caller's token with `GET /v3/auth/tokens` and caches
//! outcomes briefly, keyed by a hash of the token (see the `cache` module).
//!
//! Never logged or printed: the service password, the service token, callers' tokens.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;

use super::cache::{TokenCache, TokenKey, Verdict};
use super::{Auth, SetupError, forbidden, has_admin_role, unauthorized};
use crate::config::KeystoneAuthtoken;
use crate::error::Error;
use crate::keystone::{KeystoneSession, SessionOptions, TokenDocument, time_left};
use crate::utc::parse_timestamp;

pub use crate::http_client::AUTH_TOKEN_HEADER;
use crate::http_client::Section;
pub use crate::keystone::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, SUBJECT_TOKEN_HEADER};

/// `[keystone_authtoken]`, as set-up errors name it.
const SECTION: Section = Section {
    name: "keystone_authtoken",
    needed: "when auth_strategy is keystone",
};

/// How long a token Keystone rejected is remembered as invalid.
pub const NEGATIVE_CACHE_TIME: Duration = Duration::from_secs(3);
/// Most token outcomes kept in memory at once.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The message callers get when Keystone cannot answer.
const UNAVAILABLE: &str = "Authentication service is unavailable";

/// Settings of [`KeystoneAuth`], checked and normalised.
///
/// Usually built by [`KeystoneOptions::from_section`]; tests adjust fields (for example a
/// shorter `request_timeout`) before calling [`KeystoneAuth::new`].
#[derive(Clone, Debug)]
pub struct KeystoneOptions {
    /// The service user's session: endpoint, credentials, timeouts, TLS settings.
    pub session: SessionOptions,
    /// Longest time a valid token's outcome is cached (`token_cache_time`; zero disables
    /// caching altogether).
    pub token_cache_time: Duration,
    /// How long a rejected token is remembered.
    pub negative_cache_time: Duration,
    /// Most cached outcomes.
    pub cache_capacity: usize,
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
            (None, None) => return Err(SECTION.missing("identity_uri (or auth_uri)")),
        };
        let endpoint = v3_root(option, raw)?;
        let username = non_empty(&section.admin_user)
            .ok_or(SECTION.missing("admin_user"))?
            .to_string();
        let password = section
            .admin_password
            .clone()
            .filter(|p| !p.expose_secret().is_empty())
            .ok_or(SECTION.missing("admin_password"))?;
        if section.admin_tenant_name.is_empty() {
            return Err(SECTION.missing("admin_tenant_name"));
        }
        let connect_timeout = match section.http_connect_timeout {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(secs) => SECTION.positive_secs("http_connect_timeout", secs)?,
        };
        let max_retries =
            SECTION.count("http_request_max_retries", section.http_request_max_retries)?;
        // keystonemiddleware disables its cache with a negative value; zero does the same here.
        let token_cache_time = Duration::from_secs(section.token_cache_time.max(0).unsigned_abs());
        Ok(KeystoneOptions {
            session: SessionOptions {
                endpoint,
                username,
                password,
                project_name: section.admin_tenant_name.clone(),
                connect_timeout,
                request_timeout: DEFAULT_REQUEST_TIMEOUT
                    .max(connect_timeout + Duration::from_secs(5)),
                max_retries,
                cafile: section.cafile.clone(),
                insecure: section.insecure,
            },
            token_cache_time,
            negative_cache_time: if token_cache_time.is_zero() {
                Duration::ZERO
            } else {
                NEGATIVE_CACHE_TIME
            },
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        })
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Turns a configured Keystone URL into the v3 root (see [`crate::keystone::v3_root`]),
/// naming the `[keystone_authtoken]` option in the error.
pub fn v3_root(option: &'static str, raw: &str) -> Result<Url, SetupError> {
    crate::keystone::configured_v3_root(SECTION, option, raw)
}

/// The `keystone` auth strategy: validates callers' tokens against Keystone v3.
///
/// Holds the service user's [`KeystoneSession`] and a short cache of outcomes. Cheap to
/// share behind an `Arc`; every method takes `&self`.
pub struct KeystoneAuth {
    session: KeystoneSession,
    /// `<v3 root>/auth/tokens?nocatalog`, for validating (the catalog is not needed).
    validate_url: Url,
    token_cache_time: Duration,
    negative_cache_time: Duration,
    cache: TokenCache,
}

impl fmt::Debug for KeystoneAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoneAuth")
            .field("session", &self.session)
            .field("token_cache_time", &self.token_cache_time)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl KeystoneAuth {
    /// Builds the session's HTTP client (once, for the life of the daemon). Sends nothing
    /// yet.
    pub fn new(options: KeystoneOptions) -> Result<Self, SetupError> {
        let session = KeystoneSession::new(options.session)
            .map_err(|e| SECTION.client_error("Keystone", e))?;
        let mut validate_url = session.tokens_url().clone();
        validate_url.set_query(Some("nocatalog"));
        Ok(KeystoneAuth {
            session,
            validate_url,
            token_cache_time: options.token_cache_time,
            negative_cache_time: options.negative_cache_time,
            cache: TokenCache::new(options.cache_capacity),
        })
    }

    /// The service user's session (the Ironic client may share it).
    pub fn session(&self) -> &KeystoneSession {
        &self.session
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
            let service = self.session.token().await.map_err(|e| {
                tracing::warn!(error = %e, "cannot get a service token to validate API tokens");
                unavailable()
            })?;
            let response = self
                .session
                .send(|| {
                    self.session
                        .client()
                        .get(self.validate_url.clone())
                        .header(AUTH_TOKEN_HEADER, service.header())
                        .header(SUBJECT_TOKEN_HEADER, subject.clone())
                })
                .await
                .map_err(|_| unavailable())?;
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
                    self.session.discard(&service);
                    renewed = true;
                }
                StatusCode::UNAUTHORIZED => {
                    tracing::error!("Keystone refused a freshly issued service token");
                    return Err(unavailable());
                }
                StatusCode::FORBIDDEN => {
                    tracing::error!(
                        keystone.user = %self.session.username(),
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
#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::path::PathBuf;

    /// The section's defaults, with an endpoint and the service credentials set.
    fn section() -> KeystoneAuthtoken {
        KeystoneAuthtoken {
            identity_uri: Some("http://127.0.0.1:35357".to_string()),
            admin_user: Some("inspector".to_string()),
            admin_password: Some(SecretString::from("hunter2-password")),
            admin_tenant_name: "service".to_string(),
            ..crate::testing::config("").keystone_authtoken
        }
    }

    fn root(raw: &str) -> String {
        match v3_root("auth_uri", raw) {
            Ok(url) => url.to_string(),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn endpoint_errors_name_the_option() {
        // The normalisation itself is tested in `crate::keystone`.
        assert_eq!(root("http://ks:5000/v2.0"), "http://ks:5000/v3");
        assert_eq!(
            root("ftp://ks/v3"),
            "error: [keystone_authtoken] auth_uri is not a usable URL (\"ftp://ks/v3\"): \
             the scheme must be http or https"
        );
        assert!(root("not a url").starts_with("error: [keystone_authtoken] auth_uri"));
    }

    #[test]
    fn validation_skips_the_catalog() {
        let auth = KeystoneAuth::new(KeystoneOptions::from_section(&section()).unwrap()).unwrap();
        assert_eq!(
            auth.validate_url.as_str(),
            "http://127.0.0.1:35357/v3/auth/tokens?nocatalog"
        );
    }

    #[test]
    fn options_prefer_identity_uri() {
        let mut s = section();
        s.auth_uri = Some("http://public:5000/v2.0".to_string());
        let o = KeystoneOptions::from_section(&s).unwrap();
        assert_eq!(o.session.endpoint.as_str(), "http://127.0.0.1:35357/v3");
        s.identity_uri = Some("  ".to_string());
        let o = KeystoneOptions::from_section(&s).unwrap();
        assert_eq!(o.session.endpoint.as_str(), "http://public:5000/v3");
        assert_eq!(o.session.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(o.session.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(o.session.max_retries, 3);
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
                matches!(err, SetupError::MissingOption { option: o, .. } if o == option),
                "{err}"
            );
            assert!(err.to_string().contains("[keystone_authtoken]"), "{err}");
        }
        let mut s = section();
        s.admin_password = Some(SecretString::from(""));
        assert!(matches!(
            KeystoneOptions::from_section(&s),
            Err(SetupError::MissingOption {
                option: "admin_password",
                ..
            })
        ));
    }

    #[test]
    fn numeric_options_are_checked() {
        let mut s = section();
        s.http_connect_timeout = Some(0);
        assert!(KeystoneOptions::from_section(&s).is_err());
        s.http_connect_timeout = Some(30);
        let o = KeystoneOptions::from_section(&s).unwrap();
        assert_eq!(o.session.connect_timeout, Duration::from_secs(30));
        assert_eq!(o.session.request_timeout, Duration::from_secs(35));
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
        options.session.cafile = Some(PathBuf::from("/nonexistent/ca.pem"));
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
}
