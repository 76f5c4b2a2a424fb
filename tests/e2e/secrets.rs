//! Secrets never reach the daemon's log, its standard error or an answer's body.
//!
//! The daemon binary runs with `[DEFAULT] debug = true` against the real services: Keystone
//! checks API tokens and gives the daemon its own token for Ironic (found in Keystone's
//! catalog), Swift keeps the processed data under a Keystone user made for the test, the
//! database is a PostgreSQL database of its own whose URL carries a password, and Ironic
//! holds a node whose `driver_info` has an IPMI password. The flow: an introspection start
//! asking for new IPMI credentials (2.2's set-credentials flow), the ramdisk's report, the
//! stored data, rules, and the error cases (no, bogus, revoked and member tokens, bad
//! requests, unknown nodes, a database error under debug). Three more daemons fail on
//! purpose: Keystone refuses their service password, Swift's password is wrong, the
//! database password is wrong (the daemon must not start).
//!
//! Every answer's body, the logs and standard error are then searched for every password
//! and token the test knows, and for the prefix every Keystone (fernet) token starts with,
//! which also catches the daemon's own tokens. One answer is exempt, because carrying the
//! new IPMI password is its purpose: the one to the ramdisk's report when new credentials
//! were asked for (the ramdisk sets them on the BMC).

use std::time::Duration;

use ironic_inspector::db::Db;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::daemon_binary::{Daemon, dbsync};
use crate::helpers::wait_for;
use crate::ironic_api::{IronicApi, unique_macs};
use crate::nodes::fixture;

const DEADLINE: Duration = Duration::from_secs(60);
/// Every fernet token Keystone issues starts with this (a version byte, then a timestamp).
const FERNET_PREFIX: &str = "gAAAAA";
const OLD_IPMI_PASSWORD: &str = "OldIpmiPw4711";
const NEW_IPMI_PASSWORD: &str = "NewIpmiPw0815";
/// Refused for its characters; the answer must name them, not repeat the password.
const REFUSED_IPMI_PASSWORD: &str = "Refused@Pw!93";
const LONG_IPMI_PASSWORD: &str = "TooLongIpmiPassword12345";
const WRONG_SERVICE_PASSWORD: &str = "wrong-service-pw-5512";
const WRONG_SWIFT_PASSWORD: &str = "wrong-swift-pw-6623";
const WRONG_DB_PASSWORD: &str = "wrong-db-pw-7734";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The services this test needs, or `None` after a skip line (a panic under CI).
fn services(test: &str) -> Option<(IronicApi, String, String, String)> {
    let ironic = IronicApi::for_test(test)?;
    let mut found = Vec::new();
    for var in [
        "INSPECTOR_TEST_KEYSTONE_URL",
        "INSPECTOR_TEST_SWIFT_URL",
        "INSPECTOR_TEST_POSTGRES_URL",
    ] {
        found.push(crate::service_env::service_var(var, test)?);
    }
    let postgres = found.pop().unwrap();
    let swift = found.pop().unwrap();
    let keystone = found.pop().unwrap();
    Some((ironic, keystone, swift, postgres))
}

/// The test's own Keystone client: logins, and the admin calls that set the scene.
struct Keystone {
    url: String,
    client: reqwest::Client,
    admin_token: String,
}

impl Keystone {
    async fn new(url: &str) -> Keystone {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut keystone = Keystone {
            url: url.trim_end_matches('/').to_string(),
            client,
            admin_token: String::new(),
        };
        keystone.admin_token = keystone
            .login(
                &env("INSPECTOR_TEST_KEYSTONE_ADMIN_USER"),
                &env("INSPECTOR_TEST_KEYSTONE_ADMIN_PASSWORD"),
                &env("INSPECTOR_TEST_KEYSTONE_ADMIN_PROJECT"),
            )
            .await;
        keystone
    }

    /// A project-scoped token for the user.
    async fn login(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }});
        let response = self
            .client
            .post(format!("{}/auth/tokens", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "login of {user} failed");
        response.headers()["X-Subject-Token"]
            .to_str()
            .unwrap()
            .to_string()
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/{path}", self.url))
            .header("X-Auth-Token", &self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The id of the one `collection` item called `name`.
    async fn id_of(&self, collection: &str, name: &str) -> String {
        let (status, body) = self
            .call(Method::GET, &format!("{collection}?name={name}"), None)
            .await;
        assert_eq!(status, 200, "listing {collection}: {body}");
        body[collection][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no {collection} called {name}: {body}"))
            .to_string()
    }

    /// A user of the test, with the `member` role on `project`; its id.
    async fn create_user(&self, name: &str, password: &str, project: &str) -> String {
        let project_id = self.id_of("projects", project).await;
        let (status, body) = self
            .call(
                Method::POST,
                "users",
                Some(
                    json!({"user": {"name": name, "password": password, "domain_id": "default",
                                     "default_project_id": project_id, "enabled": true}}),
                ),
            )
            .await;
        assert_eq!(status, 201, "creating user {name}: {body}");
        let user_id = body["user"]["id"].as_str().unwrap().to_string();
        let role_id = self.id_of("roles", "member").await;
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("projects/{project_id}/users/{user_id}/roles/{role_id}"),
                None,
            )
            .await;
        assert_eq!(status, 204, "granting member to {name}: {body}");
        user_id
    }

    /// A catalog entry of a type of its own pointing at `url`; the type and the service id.
    async fn register(&self, kind: &str, url: &str) -> (String, String) {
        let service_type = format!("{kind}-test-{}", uuid::Uuid::new_v4().simple());
        let (status, body) = self
            .call(
                Method::POST,
                "services",
                Some(json!({"service": {"type": service_type, "name": kind}})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["service"]["id"].as_str().unwrap().to_string();
        for interface in ["internal", "public"] {
            let (status, body) = self
                .call(
                    Method::POST,
                    "endpoints",
                    Some(
                        json!({"endpoint": {"service_id": id, "interface": interface,
                                             "url": url, "region_id": "RegionOne"}}),
                    ),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        (service_type, id)
    }

    async fn revoke(&self, token: &str) {
        let response = self
            .client
            .delete(format!("{}/auth/tokens", self.url))
            .header("X-Auth-Token", &self.admin_token)
            .header("X-Subject-Token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "revocation failed");
    }

    async fn delete(&self, path: &str) {
        self.call(Method::DELETE, path, None).await;
    }
}

/// `url` with the password of its user replaced (SQLAlchemy URL form).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (credentials, host) = rest.rsplit_once('@').unwrap();
    let user = credentials.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// The password in a database URL.
fn password_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let credentials = rest.rsplit_once('@').unwrap().0;
    credentials.split_once(':').unwrap().1.to_string()
}

/// One request of the error cases: name, method, path, token, JSON body.
type Case<'a> = (&'a str, Method, String, Option<&'a str>, Option<Value>);

/// Everything the daemons said, to be searched: (where, text).
#[derive(Default)]
struct Said(Vec<(String, String)>);

impl Said {
    /// Records the answer's body; returns status and body.
    async fn answer(&mut self, what: &str, response: reqwest::Response) -> (StatusCode, String) {
        let status = response.status();
        let body = response.text().await.unwrap();
        self.0
            .push((format!("{what}: {status} answer"), body.clone()));
        (status, body)
    }

    fn file(&mut self, what: &str, text: String) {
        self.0.push((what.to_string(), text));
    }
}

struct Api<'a> {
    daemon: &'a Daemon,
}

impl Api<'_> {
    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self
            .daemon
            .client
            .request(method, format!("{}{path}", self.daemon.address));
        match token {
            Some(token) => request.header("X-Auth-Token", token),
            None => request,
        }
    }
}

fn config(database: &str, keystone: &str, extra: &str) -> String {
    format!(
        "[DEFAULT]\ndebug = true\nauth_strategy = keystone\n\
         [database]\nconnection = {database}\n\
         [firewall]\nmanage_firewall = false\n\
         [keystone_authtoken]\nidentity_uri = {keystone}\nadmin_user = {}\n\
         admin_password = {}\nadmin_tenant_name = {}\n{extra}",
        env("INSPECTOR_TEST_KEYSTONE_SERVICE_USER"),
        env("INSPECTOR_TEST_KEYSTONE_SERVICE_PASSWORD"),
        env("INSPECTOR_TEST_KEYSTONE_SERVICE_PROJECT"),
    )
}

#[tokio::test]
async fn no_secret_reaches_a_log_or_an_answer() {
    let test = "no_secret_reaches_a_log_or_an_answer";
    let Some((ironic, keystone_url, swift_url, postgres_url)) = services(test) else {
        return;
    };
    let keystone = Keystone::new(&keystone_url).await;
    let service_user = env("INSPECTOR_TEST_KEYSTONE_SERVICE_USER");
    let service_password = env("INSPECTOR_TEST_KEYSTONE_SERVICE_PASSWORD");
    let service_project = env("INSPECTOR_TEST_KEYSTONE_SERVICE_PROJECT");

    // The scene: Swift's user, Ironic in the catalog, a database, a node with a BMC password.
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let swift_user = format!("inspector-swift-{}", &unique[..12]);
    let swift_password = format!("swift-key-{}", &unique[12..24]);
    let swift_user_id = keystone
        .create_user(&swift_user, &swift_password, &service_project)
        .await;
    let (baremetal_type, baremetal_id) = keystone.register("baremetal", ironic.url()).await;
    let admin = Db::connect_url(&postgres_url).await.unwrap();
    let db_name = format!("inspector_secrets_{}", &unique[..12]);
    sqlx::query(&format!("CREATE DATABASE {db_name}"))
        .execute(admin.pool())
        .await
        .unwrap();
    let database = with_database(&postgres_url, &db_name);
    // (Not starting with "inspector-": that would contain the service password of the
    // test Keystone, `inspector-secret`.)
    let container = format!("insp-data-{}", &unique[..12]);
    let macs = unique_macs(2);
    let bmc = "192.0.2.71";
    let node = ironic
        .enroll(
            json!({"ipmi_address": bmc, "ipmi_username": "olduser",
                   "ipmi_password": OLD_IPMI_PASSWORD}),
            &[macs[0].as_str()],
        )
        .await;

    let dir = tempfile::tempdir().unwrap();
    let mut said = Said::default();
    let main_config = config(
        &database,
        &keystone_url,
        &format!(
            "[ironic]\nauth_strategy = keystone\nos_auth_url = {keystone_url}\n\
             os_username = {service_user}\nos_password = {service_password}\n\
             os_tenant_name = {service_project}\nos_service_type = {baremetal_type}\n\
             max_retries = 5\nretry_interval = 1\n\
             [processing]\nstore_data = swift\nstore_data_location = inspector_data_object\n\
             enable_setting_ipmi_credentials = true\n\
             [swift]\nos_auth_url = {keystone_url}\nusername = {swift_user}\n\
             password = {swift_password}\ntenant_name = {service_project}\n\
             container = {container}\n"
        ),
    );
    let mut daemon = Daemon::start(dir.path(), &main_config).await;
    let api = Api { daemon: &daemon };
    let admin_token = keystone
        .login(
            &env("INSPECTOR_TEST_KEYSTONE_ADMIN_USER"),
            &env("INSPECTOR_TEST_KEYSTONE_ADMIN_PASSWORD"),
            &env("INSPECTOR_TEST_KEYSTONE_ADMIN_PROJECT"),
        )
        .await;
    let member_token = keystone
        .login(
            &env("INSPECTOR_TEST_KEYSTONE_MEMBER_USER"),
            &env("INSPECTOR_TEST_KEYSTONE_MEMBER_PASSWORD"),
            &env("INSPECTOR_TEST_KEYSTONE_MEMBER_PROJECT"),
        )
        .await;
    let revoked_token = keystone
        .login(
            &env("INSPECTOR_TEST_KEYSTONE_ADMIN_USER"),
            &env("INSPECTOR_TEST_KEYSTONE_ADMIN_PASSWORD"),
            &env("INSPECTOR_TEST_KEYSTONE_ADMIN_PROJECT"),
        )
        .await;
    keystone.revoke(&revoked_token).await;
    let bogus_token = format!("{FERNET_PREFIX}bogus{unique}");
    let token = Some(admin_token.as_str());

    // A rule, applied at the end of processing.
    let rule = json!({"description": "secrets test", "conditions": [
        {"op": "ge", "field": "memory_mb", "value": 1}],
        "actions": [{"action": "set-attribute", "path": "/extra/secrets_test", "value": "yes"}]});
    let (status, body) = said
        .answer(
            "rule creation",
            api.request(Method::POST, "/v1/rules", token)
                .json(&rule)
                .send()
                .await
                .unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Set-credentials flow: the start, the ramdisk's report, the end.
    let start = |query: &str| {
        api.request(
            Method::POST,
            &format!("/v1/introspection/{node}{query}"),
            token,
        )
        .send()
    };
    for (what, query, expected) in [
        (
            "refused new IPMI password",
            format!(
                "?new_ipmi_username=newuser&new_ipmi_password={}",
                "Refused%40Pw%2193"
            ),
            400,
        ),
        (
            "too long new IPMI password",
            format!("?new_ipmi_username=newuser&new_ipmi_password={LONG_IPMI_PASSWORD}"),
            400,
        ),
        (
            "start with new IPMI credentials",
            format!("?new_ipmi_username=newuser&new_ipmi_password={NEW_IPMI_PASSWORD}"),
            202,
        ),
    ] {
        let (status, body) = said.answer(what, start(&query).await.unwrap()).await;
        assert_eq!(status.as_u16(), expected, "{what}: {body}");
    }
    let report = fixture("liberty-flat.json", &macs, bmc);
    let response = api
        .request(Method::POST, "/v1/continue", None)
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Exempt: this answer hands the ramdisk the credentials to set on the BMC.
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer,
        json!({"uuid": node, "ipmi_setup_credentials": true, "ipmi_username": "newuser",
               "ipmi_password": NEW_IPMI_PASSWORD})
    );
    let status_path = format!("/v1/introspection/{node}");
    let finished = wait_for(DEADLINE, "the introspection to finish", || async {
        let response = api
            .request(Method::GET, &status_path, token)
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        (body["finished"] == true).then_some(body)
    })
    .await;
    assert_eq!(finished, json!({"finished": true, "error": null}));
    // The driver got the new credentials (Ironic shows the password masked).
    let in_ironic = ironic.wait_for_power_state(&node, "power off").await;
    assert_eq!(in_ironic["driver_info"]["ipmi_username"], "newuser");

    assert_eq!(
        in_ironic["extra"]["secrets_test"], "yes",
        "the rule applied"
    );

    // Reads, and what callers get wrong.
    let unknown = "00000000-0000-4000-8000-0000000000aa";
    let cases: Vec<Case> = vec![
        ("status", Method::GET, status_path.clone(), token, None),
        (
            "data",
            Method::GET,
            format!("/v1/introspection/{node}/data"),
            token,
            None,
        ),
        ("rules", Method::GET, "/v1/rules".into(), token, None),
        ("no token", Method::GET, status_path.clone(), None, None),
        (
            "bogus token",
            Method::GET,
            status_path.clone(),
            Some(bogus_token.as_str()),
            None,
        ),
        (
            "revoked token",
            Method::GET,
            status_path.clone(),
            Some(revoked_token.as_str()),
            None,
        ),
        (
            "member token",
            Method::GET,
            status_path.clone(),
            Some(member_token.as_str()),
            None,
        ),
        (
            "malformed uuid",
            Method::GET,
            "/v1/introspection/not-a-uuid".into(),
            token,
            None,
        ),
        (
            "unknown node",
            Method::GET,
            format!("/v1/introspection/{unknown}"),
            token,
            None,
        ),
        (
            "no data in Swift",
            Method::GET,
            format!("/v1/introspection/{unknown}/data"),
            token,
            None,
        ),
        (
            "start of a node Ironic does not know",
            Method::POST,
            format!("/v1/introspection/{unknown}"),
            token,
            None,
        ),
        (
            "bad rule",
            Method::POST,
            "/v1/rules".into(),
            token,
            Some(json!({"conditions": "nope", "actions": []})),
        ),
        (
            "report of nobody",
            Method::POST,
            "/v1/continue".into(),
            None,
            Some(fixture("liberty-flat.json", &unique_macs(2), "192.0.2.72")),
        ),
    ];
    for (what, method, path, token, body) in cases {
        let mut request = api.request(method, &path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, text) = said.answer(what, request.send().await.unwrap()).await;
        let expected: &[u16] = match what {
            "status" | "data" | "rules" => &[200],
            "no token" | "bogus token" | "revoked token" => &[401],
            "member token" => &[403],
            "unknown node" | "no data in Swift" | "start of a node Ironic does not know" => &[404],
            _ => &[400],
        };
        assert!(
            expected.contains(&status.as_u16()),
            "{what}: {status} {text}"
        );
    }

    // A database error under debug: the 500 carries its cause, never the connection's.
    let db = Db::connect_url(&database).await.unwrap();
    sqlx::query("DROP TABLE rule_actions")
        .execute(db.pool())
        .await
        .unwrap();
    db.close().await;
    let (status, text) = said
        .answer(
            "database error",
            api.request(Method::GET, "/v1/rules", token)
                .send()
                .await
                .unwrap(),
        )
        .await;
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("Internal server error ("), "{text}");
    assert_eq!(daemon.stop().await, Some(0));
    said.file("main daemon's log", daemon.log_text());
    said.file("main daemon's stderr", daemon.stderr_text());

    // Keystone refuses the service password: API calls get 503.
    let wrong_keystone = tempfile::tempdir().unwrap();
    let text =
        config(&database, &keystone_url, "").replace(&service_password, WRONG_SERVICE_PASSWORD);
    let mut other = Daemon::start(wrong_keystone.path(), &text).await;
    let api = Api { daemon: &other };
    let (status, text) = said
        .answer(
            "Keystone refusing the service user",
            api.request(Method::GET, &status_path, Some(&admin_token))
                .send()
                .await
                .unwrap(),
        )
        .await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(other.stop().await, Some(0));
    said.file(
        "daemon with a wrong service password: log",
        other.log_text(),
    );
    said.file(
        "daemon with a wrong service password: stderr",
        other.stderr_text(),
    );

    // Swift refuses its password: the data cannot be read.
    let wrong_swift = tempfile::tempdir().unwrap();
    let text = main_config.replace(&swift_password, WRONG_SWIFT_PASSWORD);
    let mut other = Daemon::start(wrong_swift.path(), &text).await;
    let api = Api { daemon: &other };
    let (status, text) = said
        .answer(
            "Swift refusing its user",
            api.request(
                Method::GET,
                &format!("/v1/introspection/{node}/data"),
                Some(&admin_token),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status} {text}"
    );
    assert_eq!(other.stop().await, Some(0));
    said.file("daemon with a wrong Swift password: log", other.log_text());
    said.file(
        "daemon with a wrong Swift password: stderr",
        other.stderr_text(),
    );

    // The database refuses its password: the daemon does not start, and says why.
    let wrong_db = tempfile::tempdir().unwrap();
    // Two attempts, not oslo.db's eleven ten seconds apart.
    let text = main_config.replace(&database, &with_password(&database, WRONG_DB_PASSWORD))
        + "[database]\nmax_retries = 1\nretry_interval = 1\n";
    let conf = crate::helpers::write_file(wrong_db.path(), "dbsync.conf", &text);
    let refused = dbsync(&conf, "upgrade").await;
    assert!(!refused.status.success());
    said.file(
        "dbsync with a wrong database password: output",
        format!(
            "{}{}",
            String::from_utf8_lossy(&refused.stdout),
            String::from_utf8_lossy(&refused.stderr)
        ),
    );
    let (log, stderr) = Daemon::fail_to_start(wrong_db.path(), &text).await;
    assert!(
        log.contains("database") || stderr.contains("database"),
        "{log}{stderr}"
    );
    said.file("daemon with a wrong database password: log", log);
    said.file("daemon with a wrong database password: stderr", stderr);

    // Clean up before judging, so a finding does not leave the scene behind.
    ironic.delete_node(&node).await;
    keystone.delete(&format!("services/{baremetal_id}")).await;
    let swift_token = keystone
        .login(&swift_user, &swift_password, &service_project)
        .await;
    let account = format!(
        "{}/v1/AUTH_{}",
        swift_url.trim_end_matches('/'),
        keystone.id_of("projects", &service_project).await
    );
    for path in [
        format!("{container}/inspector_data-{node}"),
        container.clone(),
    ] {
        keystone
            .client
            .delete(format!("{account}/{path}"))
            .header("X-Auth-Token", &swift_token)
            .send()
            .await
            .unwrap();
    }
    keystone.delete(&format!("users/{swift_user_id}")).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .execute(admin.pool())
        .await
        .unwrap();
    admin.close().await;

    let secrets = [
        ("the service password", service_password.clone()),
        (
            "the admin password",
            env("INSPECTOR_TEST_KEYSTONE_ADMIN_PASSWORD"),
        ),
        (
            "the member password",
            env("INSPECTOR_TEST_KEYSTONE_MEMBER_PASSWORD"),
        ),
        ("the caller's admin token", admin_token.clone()),
        ("the member's token", member_token.clone()),
        ("the revoked token", revoked_token.clone()),
        ("a bogus token", bogus_token.clone()),
        ("a Keystone token", FERNET_PREFIX.to_string()),
        ("the Swift key", swift_password.clone()),
        ("the Swift user's token", swift_token.clone()),
        ("the old IPMI password", OLD_IPMI_PASSWORD.to_string()),
        ("the new IPMI password", NEW_IPMI_PASSWORD.to_string()),
        ("a refused IPMI password", REFUSED_IPMI_PASSWORD.to_string()),
        ("a too long IPMI password", LONG_IPMI_PASSWORD.to_string()),
        ("the database password", password_of(&postgres_url)),
        (
            "a wrong service password",
            WRONG_SERVICE_PASSWORD.to_string(),
        ),
        ("a wrong Swift password", WRONG_SWIFT_PASSWORD.to_string()),
        ("a wrong database password", WRONG_DB_PASSWORD.to_string()),
    ];
    let mut leaks = Vec::new();
    for (place, text) in &said.0 {
        for (secret, value) in &secrets {
            if let Some(at) = text.find(value.as_str()) {
                let line = text[..at].rsplit('\n').next().unwrap_or_default();
                let end = text[at..].find('\n').map_or(text.len(), |e| at + e);
                leaks.push(format!(
                    "{secret} in {place}: {}",
                    format!("{line}{}", &text[at..end]).replace(value.as_str(), "<SECRET>")
                ));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    // The search saw what it should have: debug logs of a whole flow.
    let main_log = &said
        .0
        .iter()
        .find(|(p, _)| p == "main daemon's log")
        .unwrap()
        .1;
    assert!(main_log.contains("DEBUG"), "not a debug log");
    assert!(
        main_log.contains(&node),
        "the log does not mention the node"
    );
}
