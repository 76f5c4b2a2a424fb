//! API versions: the negotiation header and the discovery documents (`GET /`, `GET /v1`).
//!
//! Ports `check_api_version`, `add_version_headers`, `api_root` and `version_root` of
//! upstream `main.py`. Where upstream crashed (`1`, `1.2.3`) we answer 406 with the raw
//! value; where it built a regex from the path we compare literally.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::HeaderValue;
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::{Error, Result};

use super::AppState;

/// Header a client names its wanted version in.
pub const VERSION_HEADER: &str = "X-OpenStack-Ironic-Inspector-API-Version";
/// Response header carrying the oldest version served.
pub const MIN_VERSION_HEADER: &str = "X-OpenStack-Ironic-Inspector-API-Minimum-Version";
/// Response header carrying the newest version served.
pub const MAX_VERSION_HEADER: &str = "X-OpenStack-Ironic-Inspector-API-Maximum-Version";

/// A negotiated API version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Major number.
    pub major: i64,
    /// Minor number.
    pub minor: i64,
}

impl ApiVersion {
    /// Oldest version served (also what a request without the header gets).
    pub const MIN: ApiVersion = ApiVersion { major: 1, minor: 0 };
    /// Newest version served: 1.1 added introspection data, 1.2 added rules.
    pub const MAX: ApiVersion = ApiVersion { major: 1, minor: 2 };
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The blanks Python's `int()` skips around a number (ASCII only: the header is bytes).
fn is_py_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// One component as Python's `int()` read it: blanks around, one sign, decimal digits of
/// any length. Gives the value, saturated at the ends of `i64` (it is only compared with
/// the supported range), and the number as Python's `%d` printed it back.
fn component(text: &str) -> Option<(i64, String)> {
    let t = text.trim_matches(is_py_space);
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.trim_start_matches('0');
    let shown = match (magnitude.is_empty(), negative) {
        (true, _) => "0".to_string(),
        (false, true) => format!("-{magnitude}"),
        (false, false) => magnitude.to_string(),
    };
    let saturated = if negative { i64::MIN } else { i64::MAX };
    Some((shown.parse().unwrap_or(saturated), shown))
}

/// Negotiates the version of one request from its header value (`None`: header absent).
pub fn negotiate(header: Option<&str>) -> Result<ApiVersion> {
    let Some(raw) = header else {
        return Ok(ApiVersion::MIN);
    };
    let parts: Option<Vec<(i64, String)>> = raw.split('.').map(component).collect();
    let Some(parts) = parts else {
        return Err(Error::BadRequest(
            "Malformed API version: expected string in form of X.Y".to_string(),
        ));
    };
    let unsupported = |shown: &str| {
        Error::NotAcceptable(format!(
            "Unsupported API version {shown}, supported range is {} to {}",
            ApiVersion::MIN,
            ApiVersion::MAX
        ))
    };
    match parts.as_slice() {
        [(major, major_shown), (minor, minor_shown)] => {
            let version = ApiVersion {
                major: *major,
                minor: *minor,
            };
            if version < ApiVersion::MIN || version > ApiVersion::MAX {
                Err(unsupported(&format!("{major_shown}.{minor_shown}")))
            } else {
                Ok(version)
            }
        }
        _ => Err(unsupported(raw.trim_matches(is_py_space))),
    }
}

/// Middleware: rejects unsupported versions before routing and authentication, and stores
/// the negotiated [`ApiVersion`] in the request extensions.
pub async fn check_version(mut request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(VERSION_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match negotiate(header.as_deref()) {
        Ok(version) => {
            request.extensions_mut().insert(version);
            next.run(request).await
        }
        Err(err) => axum::response::IntoResponse::into_response(err),
    }
}

/// Middleware: adds the minimum and maximum version headers to every response.
pub async fn add_version_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(MIN_VERSION_HEADER, HeaderValue::from_static("1.0"));
    headers.insert(MAX_VERSION_HEADER, HeaderValue::from_static("1.2"));
    response
}

/// The URL root of a request, with a trailing slash (`http://host:5050/`).
fn url_root(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    if let Some(public) = &state.config.default.public_endpoint {
        return format!("{public}/");
    }
    let scheme = if state.config.default.use_ssl {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "{}:{}",
                state.config.default.listen_address, state.config.default.listen_port
            )
        });
    format!("{scheme}://{host}/")
}

/// `GET /`: the versions document.
pub async fn root(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Json<Value> {
    let root = url_root(&state, &headers);
    Json(json!({
        "versions": [{
            "status": "CURRENT",
            "id": ApiVersion::MAX.to_string(),
            "links": [{"rel": "self", "href": format!("{root}v{}", ApiVersion::MAX.major)}],
        }]
    }))
}

/// The resources listed under `/v1`, in upstream's order. Upstream never listed
/// `introspection` (it had no single-segment route), and we keep that.
const V1_RESOURCES: &[&str] = &["continue", "rules"];

/// `GET /{version}`: the resources of a version.
pub async fn version_root(
    State(state): State<AppState>,
    Path(version): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    if version != "v1" {
        return Err(Error::NotFound("Version not found.".to_string()));
    }
    let root = url_root(&state, &headers);
    let resources: Vec<Value> = V1_RESOURCES
        .iter()
        .map(|name| {
            json!({
                "name": name,
                "links": [{"rel": "self", "href": format!("{root}v1/{name}")}],
            })
        })
        .collect();
    Ok(Json(json!({ "resources": resources })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(header: Option<&str>) -> u16 {
        match negotiate(header) {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[test]
    fn accepted_versions() {
        assert_eq!(negotiate(None).unwrap(), ApiVersion::MIN);
        assert_eq!(negotiate(Some("1.2")).unwrap(), ApiVersion::MAX);
        assert_eq!(negotiate(Some(" 1.1")).unwrap().minor, 1);
        assert_eq!(negotiate(Some("1.+1")).unwrap().minor, 1);
        assert_eq!(negotiate(Some("1.0")).unwrap(), ApiVersion::MIN);
    }

    #[test]
    fn malformed_versions_are_400() {
        for bad in ["abc", "1.x", "", "1.", "1..2", "v1.1", "1.1a"] {
            assert_eq!(status(Some(bad)), 400, "{bad:?}");
        }
        assert_eq!(
            negotiate(Some("abc")).unwrap_err().to_string(),
            "Malformed API version: expected string in form of X.Y"
        );
    }

    #[test]
    fn out_of_range_versions_are_406() {
        for bad in ["2.0", "1.3", "0.9", "1.-1", "1", "1.2.3"] {
            assert_eq!(status(Some(bad)), 406, "{bad:?}");
        }
        assert_eq!(
            negotiate(Some("1.3")).unwrap_err().to_string(),
            "Unsupported API version 1.3, supported range is 1.0 to 1.2"
        );
        assert_eq!(
            negotiate(Some("1.2.3")).unwrap_err().to_string(),
            "Unsupported API version 1.2.3, supported range is 1.0 to 1.2"
        );
        assert_eq!(
            negotiate(Some("1")).unwrap_err().to_string(),
            "Unsupported API version 1, supported range is 1.0 to 1.2"
        );
    }

    /// Found by the property tests: Python's int() has no size limit, so 2.2 answered 406
    /// for a huge component, where an i64 overflow made us answer 400.
    #[test]
    fn huge_components_are_out_of_range_not_malformed() {
        for (header, shown) in [
            ("1.99999999999999999999", "1.99999999999999999999"),
            ("-99999999999999999999.0", "-99999999999999999999.0"),
            ("1.+0009223372036854775808", "1.9223372036854775808"),
        ] {
            let err = negotiate(Some(header)).unwrap_err();
            assert_eq!(err.status().as_u16(), 406, "{header}");
            assert_eq!(
                err.to_string(),
                format!("Unsupported API version {shown}, supported range is 1.0 to 1.2")
            );
        }
        assert_eq!(negotiate(Some("0001.-0")).unwrap(), ApiVersion::MIN);
        assert_eq!(
            negotiate(Some("1.3 ")).unwrap_err().to_string(),
            "Unsupported API version 1.3, supported range is 1.0 to 1.2"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::text;

    /// A component as a client may write it: blanks, a sign, leading zeros, any length.
    fn written_component() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["", " ", "\t"]),
            prop::sample::select(vec!["", "+", "-"]),
            prop_oneof!["[0-2]", "0{0,3}[0-9]{1,3}", "[0-9]{15,30}"],
            prop::sample::select(vec!["", " "]),
        )
            .prop_map(|(a, sign, digits, b)| format!("{a}{sign}{digits}{b}"))
    }

    /// The number as Python's `%d` prints `int(text)`.
    fn python_int_text(text: &str) -> String {
        let t = text.trim();
        let (negative, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.trim_start_matches('+')),
        };
        let digits = digits.trim_start_matches('0');
        match (digits.is_empty(), negative) {
            (true, _) => "0".to_string(),
            (false, true) => format!("-{digits}"),
            (false, false) => digits.to_string(),
        }
    }

    proptest! {
        #[test]
        fn any_header_is_accepted_or_refused_with_400_or_406(header in prop_oneof![text(), "[0-9. +-]{0,12}"]) {
            match negotiate(Some(&header)) {
                Ok(version) => prop_assert!((ApiVersion::MIN..=ApiVersion::MAX).contains(&version)),
                Err(Error::BadRequest(message)) => {
                    prop_assert_eq!(message, "Malformed API version: expected string in form of X.Y");
                }
                Err(Error::NotAcceptable(message)) => {
                    prop_assert!(message.starts_with("Unsupported API version "), "{message}");
                    prop_assert!(message.ends_with(", supported range is 1.0 to 1.2"), "{message}");
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn two_numbers_compare_as_python_tuples(major in written_component(), minor in written_component()) {
            let (m, n) = (python_int_text(&major), python_int_text(&minor));
            let supported = m == "1" && ["0", "1", "2"].contains(&n.as_str());
            match negotiate(Some(&format!("{major}.{minor}"))) {
                Ok(version) => {
                    prop_assert!(supported);
                    prop_assert_eq!(version.to_string(), format!("{m}.{n}"));
                }
                Err(err) => {
                    prop_assert!(!supported);
                    prop_assert_eq!(err.status().as_u16(), 406);
                    prop_assert_eq!(
                        err.to_string(),
                        format!("Unsupported API version {m}.{n}, supported range is 1.0 to 1.2")
                    );
                }
            }
        }

        #[test]
        fn formatted_versions_read_back(major in -3i64..4, minor in prop_oneof![-3i64..5, any::<i64>()]) {
            let version = ApiVersion { major, minor };
            match negotiate(Some(&version.to_string())) {
                Ok(read) => prop_assert_eq!(read, version),
                Err(err) => {
                    prop_assert!(version < ApiVersion::MIN || version > ApiVersion::MAX);
                    prop_assert_eq!(err.status().as_u16(), 406);
                }
            }
        }
    }
}
