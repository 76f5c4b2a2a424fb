//! Reaching the database at start-up, for `ironic-inspector-dbsync` and the daemon alike: a
//! server that turns us away for good (wrong password, unknown database) fails at once with
//! a message naming the problem and never the password; a server that is not up yet is
//! tried again, each attempt logged, until it comes up or the retries run out.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use ironic_inspector::db::Db;

use crate::helpers::{DBSYNC, Run, ours, service_var, with_database, write_config};
use crate::private_server::{Kind, PrivateServer, free_port};

const DAEMON: &str = env!("CARGO_BIN_EXE_ironic-inspector");
const PG_VAR: &str = "INSPECTOR_TEST_POSTGRES_URL";
const MYSQL_VAR: &str = "INSPECTOR_TEST_MYSQL_URL";
/// What "at once" means here: with the default retry options (10 retries, 10 s apart) a
/// retried failure takes 100 s; an immediate one well under a second. The margin is for a
/// loaded CI box.
const AT_ONCE: Duration = Duration::from_secs(15);
/// How long a run may take before the test stops waiting and fails.
const RUN_DEADLINE: Duration = Duration::from_secs(90);
/// Marks each logged retry.
const RETRY_LINE: &str = "cannot connect to the database (attempt";

/// The URL with its password replaced.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

/// A unique wrong password, so its absence from the output means something.
fn wrong_password() -> String {
    format!("wrong-{}", uuid::Uuid::new_v4().simple())
}

/// Runs `binary` with `config` and `args`, killing it after [`RUN_DEADLINE`]. Returns what
/// it printed and how long it ran.
async fn run_timed(binary: &str, config: &Path, args: &[&str]) -> (Run, Duration) {
    let started = Instant::now();
    let child = Command::new(binary)
        .arg("--config-file")
        .arg(config)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(RUN_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{binary} {args:?} still running after {RUN_DEADLINE:?}"))
        .unwrap();
    (Run::from(output), started.elapsed())
}

/// A daemon configuration that fails on nothing but the database.
fn daemon_config(dir: &Path, url: &str, extra: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "[DEFAULT]\nauth_strategy = noauth\nlisten_address = 127.0.0.1\nlisten_port = {}\n\
             [firewall]\nmanage_firewall = false\n[database]\nconnection = {url}\n{extra}",
            free_port()
        ),
    )
}

/// dbsync and the daemon both fail at once, exit non-zero, say `expected` and never show
/// `secret`.
async fn both_fail_at_once(url: &str, expected: &str, secret: &str) {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), &format!("[database]\nconnection = {url}\n"));
    let (run, took) = run_timed(DBSYNC, &conf, &["upgrade"]).await;
    assert_eq!(run.code, Some(1), "dbsync: {}", run.stderr);
    assert!(took < AT_ONCE, "dbsync took {took:?}: {}", run.stderr);
    assert!(
        run.stderr
            .contains("FAILED: cannot connect to the database"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches(expected).count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains(RETRY_LINE), "{}", run.stderr);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(secret), "password shown: {text}");
    }

    let conf = daemon_config(dir.path(), url, "");
    let (run, took) = run_timed(DAEMON, &conf, &[]).await;
    assert_eq!(run.code, Some(1), "daemon: {}", run.stderr);
    assert!(took < AT_ONCE, "the daemon took {took:?}: {}", run.stderr);
    assert!(
        run.stderr.contains("cannot connect to the database"),
        "{}",
        run.stderr
    );
    // Said once: the reason is not repeated as the error's cause.
    assert_eq!(run.stderr.matches(expected).count(), 1, "{}", run.stderr);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(secret), "password shown: {text}");
    }
}

#[tokio::test]
async fn wrong_password_fails_at_once_on_postgres() {
    let Some(url) = service_var(PG_VAR, "PostgreSQL wrong password") else {
        return;
    };
    let secret = wrong_password();
    both_fail_at_once(
        &with_password(&url, &secret),
        "password authentication failed",
        &secret,
    )
    .await;
}

#[tokio::test]
async fn wrong_password_fails_at_once_on_mysql() {
    let Some(url) = service_var(MYSQL_VAR, "MySQL wrong password") else {
        return;
    };
    let secret = wrong_password();
    both_fail_at_once(&with_password(&url, &secret), "Access denied", &secret).await;
}

#[tokio::test]
async fn unknown_database_fails_at_once_on_postgres() {
    let Some(url) = service_var(PG_VAR, "PostgreSQL unknown database") else {
        return;
    };
    let name = format!("inspector_missing_{}", uuid::Uuid::new_v4().simple());
    let secret = url.split(':').nth(2).unwrap().split('@').next().unwrap();
    both_fail_at_once(
        &with_database(&url, &name),
        &format!("database \"{name}\" does not exist"),
        secret,
    )
    .await;
}

#[tokio::test]
async fn unknown_database_fails_at_once_on_mysql() {
    let Some(url) = service_var(MYSQL_VAR, "MySQL unknown database") else {
        return;
    };
    let name = format!("inspector_missing_{}", uuid::Uuid::new_v4().simple());
    let secret = url.split(':').nth(2).unwrap().split('@').next().unwrap();
    both_fail_at_once(
        &with_database(&url, &name),
        &format!("Unknown database '{name}'"),
        secret,
    )
    .await;
}

#[tokio::test]
async fn malformed_and_unsupported_urls_fail_at_once() {
    let secret = wrong_password();
    for (url, expected) in [
        (
            format!("postgresql://inspector:{secret}@127.0.0.1:notaport/inspector"),
            "cannot use [database] connection",
        ),
        (
            format!("oracle://inspector:{secret}@127.0.0.1/inspector"),
            "unsupported database kind",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let conf = write_config(dir.path(), &format!("[database]\nconnection = {url}\n"));
        let (run, took) = run_timed(DBSYNC, &conf, &["upgrade"]).await;
        assert_eq!(run.code, Some(1), "{url}: {}", run.stderr);
        assert!(took < AT_ONCE, "{url} took {took:?}");
        assert!(run.stderr.contains(expected), "{}", run.stderr);
        assert!(!run.stderr.contains(&secret), "{}", run.stderr);
    }
}

/// Nothing listens on the port (1, which no test server takes): each of the three attempts
/// is logged, then a clear failure.
#[tokio::test]
async fn refused_connection_is_retried_and_each_attempt_logged() {
    let secret = wrong_password();
    let url = format!("postgresql://inspector:{secret}@127.0.0.1:1/inspector");
    let retries = "max_retries = 2\nretry_interval = 1\n";
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(
        dir.path(),
        &format!("[database]\nconnection = {url}\n{retries}"),
    );
    let (run, _) = run_timed(DBSYNC, &conf, &["upgrade"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches(RETRY_LINE).count(),
        2,
        "one line per retry: {}",
        run.stderr
    );
    assert!(run.stderr.contains("attempt 2 of 3"), "{}", run.stderr);
    assert!(
        run.stderr.contains("(gave up after 3 attempts)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
    assert!(!run.stderr.contains(&secret), "{}", run.stderr);

    let conf = daemon_config(dir.path(), &url, &format!("[database]\n{retries}"));
    let (run, _) = run_timed(DAEMON, &conf, &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches(RETRY_LINE).count(),
        2,
        "one line per retry: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(gave up after 3 attempts)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&secret), "{}", run.stderr);
}

/// dbsync is started while the server is down, logs its retries, and succeeds once the
/// server is up.
#[tokio::test]
async fn dbsync_waits_for_a_server_that_comes_up() {
    if service_var(PG_VAR, "a PostgreSQL server that comes up late").is_none() {
        return;
    }
    // Initialise first (role and database), so the server that comes up knows our user;
    // then stop it before dbsync starts.
    let server = PrivateServer::start(Kind::Postgres).await;
    server.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(
        dir.path(),
        &format!(
            "[database]\nconnection = {}\nmax_retries = 120\nretry_interval = 1\n",
            server.url
        ),
    );
    let mut child = Command::new(DBSYNC)
        .arg("--config-file")
        .arg(&conf)
        .arg("upgrade")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    // The first retry proves dbsync found the server down.
    tokio::time::timeout(RUN_DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            stderr.push_str(&line);
            stderr.push('\n');
            if line.contains(RETRY_LINE) {
                return;
            }
        }
        panic!("dbsync ended without retrying: {stderr}");
    })
    .await
    .unwrap_or_else(|_| panic!("no retry logged: {stderr}"));

    server.resume().await;
    let rest = tokio::time::timeout(RUN_DEADLINE, async {
        let mut rest = String::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    })
    .await
    .expect("dbsync still running after the server came up");
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{stderr}{rest}");
    assert!(
        rest.contains("Running upgrade 578f84f38d -> d588418040d"),
        "{rest}"
    );

    assert_eq!(ours(&conf, &["current"]).await.ok(), "d588418040d (head)\n");
    let db = Db::connect_url(&server.url).await.unwrap();
    db.check_schema().await.unwrap();
    db.close().await;
}
