//! Outbound HTTP, shared by the clients of the other OpenStack services (the Keystone
//! session, Ironic, Swift and the token validation of [`crate::auth`]): how their HTTP
//! clients are built, the token header, and the credential-free way their URLs and
//! transport failures are shown in logs and messages.
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
        ClientSettings {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            pool_idle_timeout: Duration::from_secs(1),
            pool_max_idle_per_host: Some(2),
            cafile,
            insecure: false,
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
