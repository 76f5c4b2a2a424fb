//! Outbound HTTP, shared by the clients of the other OpenStack services (the Keystone
//! session, Ironic, Swift and the token validation of [`crate::auth`]): how their HTTP
//! clients are built, the token header, the credential-free way their URLs and transport
//! failures are shown in logs and messages, and the one [`SetupError`] their set-up from
//! `inspector.conf` fails with.
//!
//! What this module must not do: know any service's API, or decide which failures a
//! service retries (each client classifies its own). Every client built here follows no
//! redirects, since a redirect would carry a token elsewhere.

use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderValue;

/// Header carrying the token of whoever makes the request (OpenStack-wide).
pub const AUTH_TOKEN_HEADER: &str = "X-Auth-Token";
/// The `User-Agent` of every request we send.
pub const USER_AGENT: &str = concat!("ironic-inspector/", env!("CARGO_PKG_VERSION"));

/// How one service's HTTP client connects.
#[derive(Clone, Copy, Debug)]
pub struct ClientSettings<'a> {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request: connect, send, answer, body.
    pub request_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Most idle connections kept per host; `None`: reqwest's default (no limit).
    pub pool_max_idle_per_host: Option<usize>,
    /// Extra CA bundle (PEM) trusted besides the system's.
    pub cafile: Option<&'a Path>,
    /// Accept any certificate.
    pub insecure: bool,
}

impl ClientSettings<'_> {
    /// The usual settings: these timeouts, reqwest's idle-connection limit, the system's
    /// CA certificates only, certificates verified.
    pub fn new(
        connect_timeout: Duration,
        request_timeout: Duration,
        pool_idle_timeout: Duration,
    ) -> Self {
        ClientSettings {
            connect_timeout,
            request_timeout,
            pool_idle_timeout,
            pool_max_idle_per_host: None,
            cafile: None,
            insecure: false,
        }
    }
}

/// Why an HTTP client could not be built. Fatal at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA bundle could not be read or holds no certificate.
    #[error("cafile {path}: {reason}")]
    CaFile {
        /// The configured path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// reqwest refused the settings (TLS set-up); reqwest's reason.
    #[error("{0}")]
    Build(String),
}

/// Why a service client could not be set up from its configuration section. Fatal at
/// start-up; the message names the section and the option.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A required option is not set.
    #[error("[{section}] {option} must be set {needed}")]
    MissingOption {
        /// The section, without brackets.
        section: &'static str,
        /// The option.
        option: &'static str,
        /// When it is needed (see [`Section::needed`]).
        needed: &'static str,
    },
    /// A URL cannot be used.
    #[error("[{section}] {option} is not a usable URL ({value:?}): {reason}")]
    InvalidUrl {
        /// The section, without brackets.
        section: &'static str,
        /// The option.
        option: &'static str,
        /// The value as configured.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value is out of range or not one of the accepted ones.
    #[error("[{section}] {option} {reason}")]
    InvalidValue {
        /// The section, without brackets.
        section: &'static str,
        /// The option.
        option: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The section's `cafile` could not be read or holds no certificate.
    #[error("[{section}] cafile {path}: {reason}")]
    CaFile {
        /// The section, without brackets.
        section: &'static str,
        /// The configured path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// An HTTP client could not be built.
    #[error("cannot build the HTTP client for {service}: {reason}")]
    Client {
        /// `Ironic`, `Swift` or `Keystone`.
        service: &'static str,
        /// What went wrong.
        reason: String,
    },
}

impl SetupError {
    /// A client for `service` could not be built; `err` is kept as the reason, whole.
    pub fn client(service: &'static str, err: &ClientError) -> SetupError {
        SetupError::Client {
            service,
            reason: err.to_string(),
        }
    }
}

/// A configuration section whose options a client is set up from: names them in errors
/// and checks the kinds of values every client reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// The section's name, without brackets: `ironic`.
    pub name: &'static str,
    /// Completes "`[section] option` must be set ...": when the options are needed, e.g.
    /// `when [ironic] auth_strategy is keystone` or `to use Swift`.
    pub needed: &'static str,
}

impl Section {
    /// `option` is not set.
    pub fn missing(self, option: &'static str) -> SetupError {
        SetupError::MissingOption {
            section: self.name,
            option,
            needed: self.needed,
        }
    }

    /// `option` has a value that cannot be used, for `reason` ("must be ...").
    pub fn invalid_value(self, option: &'static str, reason: String) -> SetupError {
        SetupError::InvalidValue {
            section: self.name,
            option,
            reason,
        }
    }

    /// `option` holds `value`, which is not a URL we can use, for `reason`.
    pub fn invalid_url(self, option: &'static str, value: &str, reason: String) -> SetupError {
        SetupError::InvalidUrl {
            section: self.name,
            option,
            value: value.to_string(),
            reason,
        }
    }

    /// `value` trimmed, or `option` is missing when that leaves nothing.
    pub fn required(self, option: &'static str, value: &str) -> Result<String, SetupError> {
        Some(value.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or(self.missing(option))
    }

    /// A count such as `max_retries`: 0 or more.
    pub fn count(self, option: &'static str, value: i64) -> Result<u32, SetupError> {
        u32::try_from(value).map_err(|_| {
            self.invalid_value(
                option,
                format!("must be between 0 and {}, got {value}", u32::MAX),
            )
        })
    }

    /// A timeout: a positive number of seconds.
    pub fn positive_secs(self, option: &'static str, value: i64) -> Result<Duration, SetupError> {
        match u64::try_from(value) {
            Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
            _ => Err(self.invalid_value(
                option,
                format!("must be a positive number of seconds, got {value}"),
            )),
        }
    }

    /// A client built from this section's options (its `cafile`, if any) failed: a CA
    /// file is named with the section, anything else is a client of `service`.
    pub fn client_error(self, service: &'static str, err: ClientError) -> SetupError {
        match err {
            ClientError::CaFile { path, reason } => SetupError::CaFile {
                section: self.name,
                path,
                reason,
            },
            ClientError::Build(reason) => SetupError::Client { service, reason },
        }
    }
}

/// Builds an HTTP client with `settings`, no redirects and our user agent.
///
/// Call at start-up: reading `cafile` is a small synchronous file read.
pub fn build_client(settings: &ClientSettings<'_>) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(settings.pool_idle_timeout)
        .user_agent(USER_AGENT);
    if let Some(idle) = settings.pool_max_idle_per_host {
        builder = builder.pool_max_idle_per_host(idle);
    }
    if let Some(path) = settings.cafile {
        let ca_error = |reason: String| ClientError::CaFile {
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
    if settings.insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(e.to_string()))
}

/// `url` without user name, password, query or fragment: safe for logs and error messages.
pub fn redact_url(url: &Url) -> Url {
    let mut url = url.clone();
    // Both only fail for URLs that cannot carry credentials in the first place.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// A short, credential-free description of why a request got no answer: the innermost
/// cause (e.g. "Connection refused (os error 111)"), marked as a connect failure or timeout.
pub fn transport_reason(err: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = err;
    while let Some(source) = root.source() {
        root = source;
    }
    let cause = root.to_string();
    if err.is_timeout() {
        if err.is_connect() {
            "timed out while connecting".to_string()
        } else {
            "timed out waiting for the answer".to_string()
        }
    } else if err.is_connect() {
        format!("cannot connect: {cause}")
    } else if err.is_body() || err.is_decode() {
        format!("the answer broke off: {cause}")
    } else {
        cause
    }
}

/// A header value marked sensitive (hyper then keeps it out of its logs). `value` always
/// comes from a header we received, so it is valid; should it not be, the empty value makes
/// the peer answer 401.
pub fn sensitive_header(value: &str) -> HeaderValue {
    let mut header = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const SECTION: Section = Section {
        name: "demo",
        needed: "to use the demo",
    };

    #[test]
    fn setup_errors_name_section_and_option() {
        assert_eq!(
            SECTION.missing("password").to_string(),
            "[demo] password must be set to use the demo"
        );
        assert_eq!(SECTION.required("user", "  svc ").unwrap(), "svc");
        assert_eq!(
            SECTION.required("user", " ").unwrap_err().to_string(),
            "[demo] user must be set to use the demo"
        );
        assert_eq!(SECTION.count("max_retries", 3).unwrap(), 3);
        assert_eq!(
            SECTION.count("max_retries", -1).unwrap_err().to_string(),
            format!(
                "[demo] max_retries must be between 0 and {}, got -1",
                u32::MAX
            )
        );
        assert_eq!(
            SECTION.positive_secs("timeout", 5).unwrap(),
            Duration::from_secs(5)
        );
        assert_eq!(
            SECTION.positive_secs("timeout", 0).unwrap_err().to_string(),
            "[demo] timeout must be a positive number of seconds, got 0"
        );
        assert_eq!(
            SECTION
                .invalid_url("url", "ftp://x", "the scheme must be http or https".into())
                .to_string(),
            "[demo] url is not a usable URL (\"ftp://x\"): the scheme must be http or https"
        );
        let ca = || ClientError::CaFile {
            path: "/ca.pem".to_string(),
            reason: "gone".to_string(),
        };
        assert_eq!(
            SECTION.client_error("Demo", ca()).to_string(),
            "[demo] cafile /ca.pem: gone"
        );
        assert_eq!(
            SetupError::client("Keystone", &ca()).to_string(),
            "cannot build the HTTP client for Keystone: cafile /ca.pem: gone"
        );
        assert_eq!(
            SECTION
                .client_error("Demo", ClientError::Build("bad".to_string()))
                .to_string(),
            "cannot build the HTTP client for Demo: bad"
        );
    }

    #[test]
    fn redacted_urls_carry_no_credentials() {
        let url = Url::parse("http://user:pw@ironic:6385/v1/x?token=abc#f").unwrap();
        assert_eq!(redact_url(&url).as_str(), "http://ironic:6385/v1/x");
    }

    #[test]
    fn sensitive_headers_are_marked() {
        let header = sensitive_header("gAAAA-token");
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "gAAAA-token");
        assert_eq!(sensitive_header("bad\nvalue").to_str().unwrap(), "");
    }

    fn settings(cafile: Option<&Path>) -> ClientSettings<'_> {
        let second = Duration::from_secs(1);
        ClientSettings {
            cafile,
            pool_max_idle_per_host: Some(2),
            ..ClientSettings::new(second, second, second)
        }
    }

    #[test]
    fn unreadable_or_empty_cafiles_are_refused() {
        let missing = PathBuf::from("/nonexistent/ca.pem");
        let err = build_client(&settings(Some(&missing))).unwrap_err();
        assert!(
            err.to_string().starts_with("cafile /nonexistent/ca.pem: "),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err = build_client(&settings(Some(&empty))).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cafile {}: no PEM certificate in the file", empty.display())
        );
        assert!(build_client(&settings(None)).is_ok());
    }
}
