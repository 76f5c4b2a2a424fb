//! The `keystone` auth strategy against a real Keystone.
//!
//! Start one with `eval "$(scripts/services/keystone.sh start .work/keystone 35357)"`; it
//! exports the `INSPECTOR_TEST_KEYSTONE_*` variables read here. Without them the tests that
//! need Keystone print a skip line, unless `CI` is set, where they fail. The fault cases
//! (nothing listening, a server that never answers) need no Keystone and always run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironic_inspector::Error;
use ironic_inspector::auth::{Auth, KeystoneAuth, KeystoneOptions};
use ironic_inspector::config::oslo::RawConfig;
use ironic_inspector::config::{Config, KeystoneAuthtoken};
use secrecy::SecretString;

use crate::helpers::{assert_error, free_port, spawn_app_with};
use crate::service_env::service_var;

const UUID: &str = "6d1c5a3e-0b2f-4c7d-8e9a-1b2c3d4e5f60";

/// What `scripts/services/keystone.sh start` exported.
pub struct KeystoneEnv {
    /// The v3 root.
    pub url: String,
    /// The inspector's service user (admin on project `service`).
    pub service: Credentials,
    /// The cloud admin.
    pub admin: Credentials,
    /// A user with only the member role.
    pub member: Credentials,
}

/// A user, its password and project (all in the Default domain).
pub struct Credentials {
    pub user: String,
    pub password: String,
    pub project: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set; source the exports of scripts/services/keystone.sh")
    })
}

fn credentials(kind: &str) -> Credentials {
    Credentials {
        user: var(&format!("INSPECTOR_TEST_KEYSTONE_{kind}_USER")),
        password: var(&format!("INSPECTOR_TEST_KEYSTONE_{kind}_PASSWORD")),
        project: var(&format!("INSPECTOR_TEST_KEYSTONE_{kind}_PROJECT")),
    }
}

/// The running Keystone, or `None` (after printing why) when the test should be skipped.
pub fn keystone_env(test: &str) -> Option<KeystoneEnv> {
    let url = service_var("INSPECTOR_TEST_KEYSTONE_URL", test)?;
    Some(KeystoneEnv {
        url,
        service: credentials("SERVICE"),
        admin: credentials("ADMIN"),
        member: credentials("MEMBER"),
    })
}

/// `[keystone_authtoken]` as an operator would write it for this Keystone: the endpoint and
/// the service credentials set, every other option at its default.
fn section(url: &str, service: &Credentials) -> KeystoneAuthtoken {
    KeystoneAuthtoken {
        identity_uri: Some(url.to_string()),
        admin_user: Some(service.user.clone()),
        admin_password: Some(SecretString::from(service.password.clone())),
        admin_tenant_name: service.project.clone(),
        ..Config::from_raw(&RawConfig::default())
            .unwrap()
            .0
            .keystone_authtoken
    }
}

/// The checker under test, with a request timeout wide enough for the real Keystone on a
/// busy CI machine (one gunicorn worker serving every test at once can take longer than the
/// 10 s default per answer). Tests of the timeout itself set their own.
fn keystone_auth(section: &KeystoneAuthtoken) -> KeystoneAuth {
    let mut options = KeystoneOptions::from_section(section).unwrap();
    options.session.request_timeout = Duration::from_secs(30);
    KeystoneAuth::new(options).unwrap()
}

/// The check of tokens an operator sets up with the service user's credentials.
fn service_auth(env: &KeystoneEnv) -> KeystoneAuth {
    keystone_auth(&section(&env.url, &env.service))
}

/// [`service_auth`], and a token issued to `who`.
async fn auth_and_token(env: &KeystoneEnv, who: &Credentials) -> (KeystoneAuth, String) {
    (service_auth(env), issue_token(&env.url, who).await)
}

/// A client for the test's own calls to Keystone (logins, revocations).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Logs in with the password method, scoped to the user's project; returns the token.
pub async fn issue_token(url: &str, who: &Credentials) -> String {
    let body = serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": who.user, "domain": {"id": "default"}, "password": who.password}}},
        "scope": {"project": {"name": who.project, "domain": {"id": "default"}}},
    }});
    let response = client()
        .post(format!("{url}/auth/tokens"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "login of {} failed", who.user);
    response.headers()["X-Subject-Token"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Revokes `token` (a token may revoke itself).
async fn revoke_token(url: &str, token: &str) {
    let response = client()
        .delete(format!("{url}/auth/tokens"))
        .header("X-Auth-Token", token)
        .header("X-Subject-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "revocation failed");
}

fn assert_unauthorized(result: ironic_inspector::Result<()>) {
    match result {
        Err(Error::Unauthorized(message)) => assert_eq!(message, "Authentication required"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

fn assert_forbidden(result: ironic_inspector::Result<()>) {
    match result {
        Err(Error::Forbidden(message)) => assert_eq!(message, "Access denied"),
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

fn assert_unavailable(result: ironic_inspector::Result<()>) {
    assert!(
        matches!(result, Err(Error::ServiceUnavailable(_))),
        "expected ServiceUnavailable, got {result:?}"
    );
}

#[tokio::test]
async fn admin_tokens_are_accepted() {
    let Some(env) = keystone_env("admin_tokens_are_accepted") else {
        return;
    };
    let (auth, admin) = auth_and_token(&env, &env.admin).await;
    auth.authorize(Some(&admin)).await.unwrap();
    // Asked again (now from the cache) the answer is the same.
    auth.authorize(Some(&admin)).await.unwrap();
    // The service user has `admin` on its own project too.
    let service = issue_token(&env.url, &env.service).await;
    auth.authorize(Some(&service)).await.unwrap();
}

#[tokio::test]
async fn member_only_token_is_forbidden() {
    let Some(env) = keystone_env("member_only_token_is_forbidden") else {
        return;
    };
    let (auth, member) = auth_and_token(&env, &env.member).await;
    assert_forbidden(auth.authorize(Some(&member)).await);
    assert_forbidden(auth.authorize(Some(&member)).await);
}

#[tokio::test]
async fn missing_and_bogus_tokens_are_unauthorized() {
    let Some(env) = keystone_env("missing_and_bogus_tokens_are_unauthorized") else {
        return;
    };
    let auth = service_auth(&env);
    assert_unauthorized(auth.authorize(None).await);
    assert_unauthorized(auth.authorize(Some("")).await);
    assert_unauthorized(auth.authorize(Some("bogus-token")).await);
    // Looks like a fernet token, but Keystone never issued it.
    let forged = format!("gAAAAA{}", "A".repeat(177));
    assert_unauthorized(auth.authorize(Some(&forged)).await);
    // Not even a valid header value.
    assert_unauthorized(auth.authorize(Some("bad\ntoken")).await);
    // Larger than any header Keystone's server accepts.
    assert_unauthorized(auth.authorize(Some(&"x".repeat(20_000))).await);
}

#[tokio::test]
async fn revoked_tokens_are_unauthorized() {
    let Some(env) = keystone_env("revoked_tokens_are_unauthorized") else {
        return;
    };
    // With caching off, every check reaches Keystone, so revocation shows at once.
    let mut no_cache = section(&env.url, &env.service);
    no_cache.token_cache_time = 0;
    let auth = keystone_auth(&no_cache);
    let admin = issue_token(&env.url, &env.admin).await;
    auth.authorize(Some(&admin)).await.unwrap();
    revoke_token(&env.url, &admin).await;
    assert_unauthorized(auth.authorize(Some(&admin)).await);

    // A token revoked before we ever saw it, with the default cache.
    let (auth, admin) = auth_and_token(&env, &env.admin).await;
    revoke_token(&env.url, &admin).await;
    assert_unauthorized(auth.authorize(Some(&admin)).await);
}

#[tokio::test]
async fn wrong_service_password_is_unavailable_not_a_pass() {
    let Some(env) = keystone_env("wrong_service_password_is_unavailable_not_a_pass") else {
        return;
    };
    let mut wrong = section(&env.url, &env.service);
    wrong.admin_password = Some(SecretString::from("not-the-password".to_string()));
    let auth = keystone_auth(&wrong);
    let admin = issue_token(&env.url, &env.admin).await;
    assert_unavailable(auth.authorize(Some(&admin)).await);
    // Requests without a token are still refused as such, without asking Keystone.
    assert_unauthorized(auth.authorize(None).await);
}

#[tokio::test]
async fn every_url_form_reaches_the_same_keystone() {
    let Some(env) = keystone_env("every_url_form_reaches_the_same_keystone") else {
        return;
    };
    let root = env
        .url
        .trim_end_matches('/')
        .trim_end_matches("/v3")
        .to_string();
    let admin = issue_token(&env.url, &env.admin).await;
    for form in [
        root.clone(),
        format!("{root}/"),
        format!("{root}/v2.0"),
        env.url.clone(),
    ] {
        // As auth_uri (identity_uri unset), like `[ironic] os_auth_url` used to be.
        let mut s = section(&form, &env.service);
        s.auth_uri = s.identity_uri.take();
        let auth = keystone_auth(&s);
        auth.authorize(Some(&admin))
            .await
            .unwrap_or_else(|e| panic!("{form}: {e:?}"));
    }
}

#[tokio::test]
async fn concurrent_first_checks_all_succeed() {
    let Some(env) = keystone_env("concurrent_first_checks_all_succeed") else {
        return;
    };
    let auth = Arc::new(service_auth(&env));
    let admin = issue_token(&env.url, &env.admin).await;
    let member = issue_token(&env.url, &env.member).await;
    check_at_once(&auth, 16, &admin, &member).await;
}

/// Checks `count` tokens at once, `admin` and `member` in turn: the admin's pass, the
/// member's are forbidden.
async fn check_at_once(auth: &Arc<KeystoneAuth>, count: usize, admin: &str, member: &str) {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let auth = Arc::clone(auth);
            let token = if i % 2 == 0 { admin } else { member }.to_string();
            tokio::spawn(async move { (i, auth.authorize(Some(&token)).await) })
        })
        .collect();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        if i % 2 == 0 {
            result.unwrap();
        } else {
            assert_forbidden(result);
        }
    }
}

/// A Keystone URL where nothing listens, and credentials for it.
fn keystone_nowhere() -> (String, Credentials) {
    let url = format!("http://127.0.0.1:{}/v3", free_port());
    let nobody = Credentials {
        user: "inspector".to_string(),
        password: "secret".to_string(),
        project: "service".to_string(),
    };
    (url, nobody)
}

/// Fault: nothing listens on the port. Retries are quick, then 503.
#[tokio::test]
async fn unreachable_keystone_is_unavailable_promptly() {
    let (url, nobody) = keystone_nowhere();
    let auth = keystone_auth(&section(&url, &nobody));
    let started = Instant::now();
    assert_unavailable(auth.authorize(Some("some-token")).await);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Fault: Keystone accepts connections but never answers. The request timeout bounds the
/// wait, and the answer is 503, not a pass and not a hang.
#[tokio::test]
async fn silent_keystone_is_unavailable_within_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let nobody = Credentials {
        user: "inspector".to_string(),
        password: "secret".to_string(),
        project: "service".to_string(),
    };
    let mut options =
        KeystoneOptions::from_section(&section(&format!("http://127.0.0.1:{port}"), &nobody))
            .unwrap();
    options.session.request_timeout = Duration::from_secs(2);
    let auth = KeystoneAuth::new(options).unwrap();
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), auth.authorize(Some("some-token")))
        .await
        .expect("authorize hung past its own timeout");
    assert_unavailable(result);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "answered before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    silent.abort();
}

/// The daemon's `[DEFAULT]` and `[keystone_authtoken]` for Keystone at `url`.
fn daemon_config(url: &str, service: &Credentials) -> String {
    format!(
        "[DEFAULT]\nauth_strategy = keystone\n\
         [keystone_authtoken]\nidentity_uri = {url}\nadmin_user = {}\n\
         admin_password = {}\nadmin_tenant_name = {}\n",
        service.user, service.password, service.project
    )
}

#[tokio::test]
async fn api_checks_tokens_with_keystone() {
    let Some(env) = keystone_env("api_checks_tokens_with_keystone") else {
        return;
    };
    let app = spawn_app_with(&daemon_config(&env.url, &env.service)).await;
    let admin = issue_token(&env.url, &env.admin).await;
    let member = issue_token(&env.url, &env.member).await;
    let path = format!("/v1/introspection/{UUID}");

    // Past authentication, the unknown node is what stops the request.
    let response = app.get(&path, &[("X-Auth-Token", &admin)]).await;
    assert_error(
        response,
        404,
        &format!("Could not find node {UUID} in cache"),
    )
    .await;

    let response = app.get(&path, &[("X-Auth-Token", &member)]).await;
    assert_error(response, 403, "Access denied").await;

    let response = app.get(&path, &[("X-Auth-Token", "bogus")]).await;
    assert_error(response, 401, "Authentication required").await;

    let response = app.get(&path, &[]).await;
    assert_error(response, 401, "Authentication required").await;

    // Authentication comes before UUID validation, as upstream.
    let response = app.get("/v1/introspection/not-a-uuid", &[]).await;
    assert_error(response, 401, "Authentication required").await;

    for open in ["/", "/v1"] {
        let response = app.get(open, &[]).await;
        assert_eq!(response.status(), 200, "{open}");
    }
    app.stop().await;
}

#[tokio::test]
async fn api_answers_503_while_keystone_is_down() {
    let (url, nobody) = keystone_nowhere();
    let app = spawn_app_with(&daemon_config(&url, &nobody)).await;
    let path = format!("/v1/introspection/{UUID}");

    let started = Instant::now();
    let response = app.get(&path, &[("X-Auth-Token", "some-token")]).await;
    assert_error(response, 503, "Authentication service is unavailable").await;
    assert!(started.elapsed() < Duration::from_secs(5));

    // No token is refused without asking Keystone; open endpoints stay open.
    let response = app.get(&path, &[]).await;
    assert_error(response, 401, "Authentication required").await;
    for open in ["/", "/v1"] {
        let response = app.get(open, &[]).await;
        assert_eq!(response.status(), 200, "{open}");
    }
    app.stop().await;
}

/// A stand-in Keystone for faults a real one will not produce on demand: a service token
/// refused once, 5xx, 403 on validation, a malformed body. Behaviour by subject token.
mod fake {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;

    /// Counters and switches shared with the test.
    #[derive(Default)]
    pub struct Fake {
        /// Logins answered.
        pub logins: AtomicUsize,
        /// Validations answered.
        pub validations: AtomicUsize,
        /// Refuse the first service token with 401 on validation.
        pub refuse_first_service_token: AtomicBool,
    }

    fn token_document(roles: &[&str]) -> serde_json::Value {
        let roles: Vec<_> = roles
            .iter()
            .map(|r| serde_json::json!({"name": r}))
            .collect();
        serde_json::json!({"token": {"expires_at": "2999-01-01T00:00:00.000000Z", "roles": roles}})
    }

    async fn login(State(fake): State<Arc<Fake>>) -> Response {
        let n = fake.logins.fetch_add(1, Ordering::SeqCst) + 1;
        let mut response =
            (StatusCode::CREATED, axum::Json(token_document(&["admin"]))).into_response();
        response
            .headers_mut()
            .insert("X-Subject-Token", format!("svc-{n}").parse().unwrap());
        response
    }

    async fn validate(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
        fake.validations.fetch_add(1, Ordering::SeqCst);
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let service = header("X-Auth-Token");
        if !service.starts_with("svc-") {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        if service == "svc-1" && fake.refuse_first_service_token.load(Ordering::SeqCst) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        match header("X-Subject-Token").as_str() {
            "admin-token" => axum::Json(token_document(&["reader", "admin"])).into_response(),
            "member-token" => axum::Json(token_document(&["reader", "member"])).into_response(),
            "server-error" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            "denied" => StatusCode::FORBIDDEN.into_response(),
            "garbage" => (StatusCode::OK, "<html>not json</html>").into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }

    /// Serves the fake on a loopback port; returns its v3 URL.
    pub async fn start(fake: Arc<Fake>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let router = Router::new()
            .route("/v3/auth/tokens", post(login).get(validate))
            .with_state(fake);
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://127.0.0.1:{port}/v3")
    }
}

fn fake_service() -> Credentials {
    Credentials {
        user: "inspector".to_string(),
        password: "secret".to_string(),
        project: "service".to_string(),
    }
}

#[tokio::test]
async fn refused_service_token_is_renewed_once() {
    use std::sync::atomic::Ordering;
    let fake = Arc::new(fake::Fake::default());
    fake.refuse_first_service_token
        .store(true, Ordering::SeqCst);
    let url = fake::start(Arc::clone(&fake)).await;
    let auth = keystone_auth(&section(&url, &fake_service()));
    auth.authorize(Some("admin-token")).await.unwrap();
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    assert_eq!(fake.validations.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn one_login_serves_concurrent_checks_and_outcomes_are_cached() {
    use std::sync::atomic::Ordering;
    let fake = Arc::new(fake::Fake::default());
    let url = fake::start(Arc::clone(&fake)).await;
    let auth = Arc::new(keystone_auth(&section(&url, &fake_service())));
    check_at_once(&auth, 12, "admin-token", "member-token").await;
    assert_eq!(fake.logins.load(Ordering::SeqCst), 1, "one login for all");
    let validations = fake.validations.load(Ordering::SeqCst);
    auth.authorize(Some("admin-token")).await.unwrap();
    assert_forbidden(auth.authorize(Some("member-token")).await);
    assert_unauthorized(auth.authorize(Some("unknown")).await);
    assert_unauthorized(auth.authorize(Some("unknown")).await);
    assert_eq!(
        fake.validations.load(Ordering::SeqCst),
        validations + 1,
        "only the first check of the unknown token reaches Keystone"
    );
}

#[tokio::test]
async fn keystone_faults_are_unavailable_never_a_pass() {
    let fake = Arc::new(fake::Fake::default());
    let url = fake::start(Arc::clone(&fake)).await;
    let auth = keystone_auth(&section(&url, &fake_service()));
    for token in ["server-error", "denied", "garbage"] {
        let result = auth.authorize(Some(token)).await;
        assert!(
            matches!(result, Err(Error::ServiceUnavailable(_))),
            "{token}: {result:?}"
        );
    }
}

/// A service registered in Keystone's catalog for one test, under a type of its own so that
/// tests sharing the Keystone cannot make a lookup ambiguous; removed on `remove`.
pub struct RegisteredService {
    /// Keystone's v3 root.
    pub url: String,
    /// The cloud admin's token, which registered it.
    pub admin_token: String,
    /// The service's id.
    pub id: String,
    /// `<kind>-test-<unique>`: what the client under test must be configured to look up.
    pub service_type: String,
}

impl RegisteredService {
    /// Registers a `<kind>-test-…` service with an `internal` endpoint at `internal` and a
    /// `public` one at `public`.
    pub async fn register(
        env: &KeystoneEnv,
        kind: &str,
        internal: &str,
        public: &str,
    ) -> RegisteredService {
        let admin_token = issue_token(&env.url, &env.admin).await;
        let service_type = format!("{kind}-test-{}", uuid::Uuid::new_v4().simple());
        let created = admin_post(
            &env.url,
            &admin_token,
            "services",
            serde_json::json!({"service": {"type": service_type, "name": format!("fake-{kind}")}}),
        )
        .await;
        let id = created["service"]["id"].as_str().unwrap().to_string();
        for (interface, url) in [("internal", internal), ("public", public)] {
            admin_post(
                &env.url,
                &admin_token,
                "endpoints",
                serde_json::json!({"endpoint": {"service_id": id, "interface": interface,
                                                "url": url, "region_id": "RegionOne"}}),
            )
            .await;
        }
        RegisteredService {
            url: env.url.clone(),
            admin_token,
            id,
            service_type,
        }
    }

    /// Deletes the service (Keystone deletes its endpoints with it).
    pub async fn remove(self) {
        let response = client()
            .delete(format!("{}/services/{}", self.url, self.id))
            .header("X-Auth-Token", &self.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "service deletion failed");
    }
}

/// POSTs `body` to Keystone's `collection` with the admin's token; expects 201.
pub async fn admin_post(
    url: &str,
    token: &str,
    collection: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = client()
        .post(format!("{url}/{collection}"))
        .header("X-Auth-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "creating {collection} failed");
    response.json().await.unwrap()
}
