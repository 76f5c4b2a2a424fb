//! Who may call the protected API endpoints.
//!
//! Ports `ironic_inspector/utils.py`: `check_auth` (the decision) and `add_auth_middleware`
//! (Keystone token validation, which upstream delegated to keystonemiddleware). The API layer
//! hands the raw `X-Auth-Token` value to [`Auth::authorize`] for protected endpoints only;
//! this module knows nothing of routes or status codes beyond the [`Error`] variant it
//! returns.
//!
//! Upstream's outcomes, kept here: no token or a token Keystone does not accept is
//! `401 Authentication required`; a valid token without the exact role `admin` is
//! `403 Access denied`. Where upstream crashed (a missing identity header) or let the
//! middleware answer, the port fails closed: Keystone trouble is a 503, never a pass.

mod cache;
pub mod keystone;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{AuthStrategy, Config};
use crate::error::Error;

pub use keystone::{KeystoneAuth, KeystoneOptions};

/// Message of the 401 answer (upstream's text).
pub const AUTHENTICATION_REQUIRED: &str = "Authentication required";
/// Message of the 403 answer (upstream's text).
pub const ACCESS_DENIED: &str = "Access denied";
/// The only role that grants access; compared exactly, as upstream did.
pub const ADMIN_ROLE: &str = "admin";

/// Decides whether a request to a protected endpoint may proceed.
///
/// Implementations: [`NoAuth`] (`[DEFAULT] auth_strategy = noauth`) and [`KeystoneAuth`]
/// (`keystone`). Picked once at start-up by [`from_config`].
#[async_trait]
pub trait Auth: Send + Sync + std::fmt::Debug {
    /// Checks the caller's `X-Auth-Token` value (`None` when the header is absent).
    ///
    /// Returns [`Error::Unauthorized`] for a missing or invalid token,
    /// [`Error::Forbidden`] for a valid token without the `admin` role, and
    /// [`Error::ServiceUnavailable`] when the token cannot be checked right now.
    async fn authorize(&self, token: Option<&str>) -> crate::Result<()>;
}

/// `auth_strategy = noauth`: every request is allowed.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAuth;

#[async_trait]
impl Auth for NoAuth {
    async fn authorize(&self, _token: Option<&str>) -> crate::Result<()> {
        Ok(())
    }
}

pub use crate::http_client::SetupError;

/// Builds the authentication back-end chosen by `[DEFAULT] auth_strategy`.
///
/// With `keystone`, checks the `[keystone_authtoken]` options and builds the one HTTP
/// client used for Keystone; nothing is sent to Keystone until the first request needs it,
/// so the daemon starts even while Keystone is down (requests then get 503).
///
/// Call once at start-up: reading `cafile` is a small synchronous file read.
pub fn from_config(cfg: &Config) -> Result<Arc<dyn Auth>, SetupError> {
    match cfg.default.auth_strategy {
        // The start-up warning about noauth is logged by `app`, with the other start-up notes.
        AuthStrategy::Noauth => Ok(Arc::new(NoAuth)),
        AuthStrategy::Keystone => {
            let options = KeystoneOptions::from_section(&cfg.keystone_authtoken)?;
            Ok(Arc::new(KeystoneAuth::new(options)?))
        }
    }
}

/// Upstream's role check: the exact name `admin` must be one of the token's roles.
pub fn has_admin_role<'a>(roles: impl IntoIterator<Item = &'a str>) -> bool {
    roles.into_iter().any(|role| role == ADMIN_ROLE)
}

/// The 401 error.
pub(crate) fn unauthorized() -> Error {
    Error::Unauthorized(AUTHENTICATION_REQUIRED.to_string())
}

/// The 403 error.
pub(crate) fn forbidden() -> Error {
    Error::Forbidden(ACCESS_DENIED.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;

    #[test]
    fn admin_role_is_matched_exactly() {
        assert!(has_admin_role(["member", "admin"]));
        assert!(has_admin_role(["admin"]));
        assert!(!has_admin_role(["member", "reader"]));
        assert!(!has_admin_role(["Admin"]));
        assert!(!has_admin_role([" admin"]));
        assert!(!has_admin_role(["administrator"]));
        assert!(!has_admin_role(Vec::<&str>::new()));
    }

    #[tokio::test]
    async fn noauth_allows_everything() {
        assert!(NoAuth.authorize(None).await.is_ok());
        assert!(NoAuth.authorize(Some("anything")).await.is_ok());
    }

    #[test]
    fn strategy_picks_the_implementation() {
        let noauth = from_config(&config("[DEFAULT]\nauth_strategy = noauth\n")).unwrap();
        assert_eq!(format!("{noauth:?}"), "NoAuth");
        let keystone = from_config(&config(
            "[DEFAULT]\nauth_strategy = keystone\n[keystone_authtoken]\n\
             identity_uri = http://127.0.0.1:35357\nadmin_user = inspector\n\
             admin_password = pw-do-not-print\nadmin_tenant_name = service\n",
        ))
        .unwrap();
        let printed = format!("{keystone:?}");
        assert!(printed.starts_with("KeystoneAuth"), "{printed}");
        assert!(!printed.contains("pw-do-not-print"), "{printed}");
    }

    #[test]
    fn keystone_without_credentials_fails_start_up() {
        let err = from_config(&config(
            "[DEFAULT]\nauth_strategy = keystone\n[keystone_authtoken]\n\
             identity_uri = http://127.0.0.1:35357\nadmin_password = pw\n",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "[keystone_authtoken] admin_user must be set when auth_strategy is keystone"
        );
    }

    #[test]
    fn error_messages_are_upstreams() {
        assert!(matches!(unauthorized(), Error::Unauthorized(m) if m == "Authentication required"));
        assert!(matches!(forbidden(), Error::Forbidden(m) if m == "Access denied"));
    }
}
