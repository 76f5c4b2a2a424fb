//! `ironic-inspector-dbsync` end to end on SQLite: every command, as an operator runs it.

use crate::helpers::{DBSYNC, HEAD_TABLES, TestDb, database_config, ours, tables, write_config};

const UP_1: &str = "Running upgrade  -> 578f84f38d, inital_db_schema";
const UP_2: &str = "Running upgrade 578f84f38d -> d588418040d, Add Rules";

#[tokio::test]
async fn upgrade_from_empty_creates_every_table_at_head() {
    let (db, _dir, conf) = sqlite_config();
    let run = ours(&conf, &["upgrade"]).await;
    assert_eq!(run.steps(), vec![UP_1, UP_2]);
    run.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "d588418040d (head)\n");
    assert_eq!(tables(&db.connect().await).await, HEAD_TABLES);
    // The daemon's check accepts it.
    db.connect().await.check_schema().await.unwrap();
}

#[tokio::test]
async fn upgrade_again_is_a_no_op() {
    let (_db, _dir, conf) = sqlite_config();
    ours(&conf, &["upgrade", "--revision", "head"]).await.ok();
    let run = ours(&conf, &["upgrade"]).await;
    assert!(run.steps().is_empty(), "{}", run.stderr);
    run.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "d588418040d (head)\n");
}

#[tokio::test]
async fn upgrade_in_two_steps() {
    let (db, _dir, conf) = sqlite_config();
    let run = ours(&conf, &["upgrade", "--revision", "578f84f38d"]).await;
    assert_eq!(run.steps(), vec![UP_1]);
    run.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "578f84f38d\n");
    assert_eq!(
        tables(&db.connect().await).await,
        ["alembic_version", "attributes", "nodes", "options"]
    );
    // The daemon refuses a database that is not at head.
    let err = db.connect().await.check_schema().await.unwrap_err();
    assert!(
        err.to_string().contains("ironic-inspector-dbsync upgrade"),
        "{err}"
    );

    let run = ours(&conf, &["upgrade"]).await;
    assert_eq!(run.steps(), vec![UP_2]);
    run.ok();
    assert_eq!(tables(&db.connect().await).await, HEAD_TABLES);
}

#[tokio::test]
async fn stamp_then_upgrade_a_database_made_without_bookkeeping() {
    // A 2.2-era database whose first revision's tables were made by other means: stamp it,
    // then only the second revision runs.
    let (db, _dir, conf) = sqlite_config();
    ours(&conf, &["upgrade", "--revision", "578f84f38d"])
        .await
        .ok();
    sqlx::query("DROP TABLE alembic_version")
        .execute(db.connect().await.pool())
        .await
        .unwrap();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "");

    let run = ours(&conf, &["stamp", "--revision", "578f84f38d"]).await;
    assert!(run.steps().is_empty());
    run.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "578f84f38d\n");
    let run = ours(&conf, &["upgrade"]).await;
    assert_eq!(run.steps(), vec![UP_2]);
    run.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "d588418040d (head)\n");
}

#[tokio::test]
async fn stamp_head_and_base_write_only_the_bookkeeping() {
    let (db, _dir, conf) = sqlite_config();
    ours(&conf, &["stamp", "--revision", "head"]).await.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "d588418040d (head)\n");
    assert_eq!(tables(&db.connect().await).await, ["alembic_version"]);
    ours(&conf, &["stamp", "--revision", "base"]).await.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alembic_version")
        .fetch_one(db.connect().await.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn downgrade_to_578f84f38d_and_to_base() {
    let (db, _dir, conf) = sqlite_config();
    ours(&conf, &["upgrade"]).await.ok();

    let run = ours(&conf, &["downgrade", "--revision", "578f84f38d"]).await;
    assert_eq!(
        run.steps(),
        vec!["Running downgrade d588418040d -> 578f84f38d, Add Rules"]
    );
    run.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "578f84f38d\n");
    assert_eq!(
        tables(&db.connect().await).await,
        ["alembic_version", "attributes", "nodes", "options"]
    );

    let run = ours(&conf, &["downgrade", "--revision", "base"]).await;
    assert_eq!(
        run.steps(),
        vec!["Running downgrade 578f84f38d -> , inital_db_schema"]
    );
    run.ok();
    assert_eq!(ours(&conf, &["current"]).await.ok(), "");
    assert_eq!(tables(&db.connect().await).await, ["alembic_version"]);

    // And all the way up again.
    ours(&conf, &["upgrade"]).await.ok();
    assert_eq!(tables(&db.connect().await).await, HEAD_TABLES);
}

#[tokio::test]
async fn listings_need_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "[DEFAULT]\n");
    assert_eq!(
        ours(&conf, &["history"]).await.ok(),
        "578f84f38d -> d588418040d (head), Add Rules\n<base> -> 578f84f38d, inital_db_schema\n"
    );
    assert_eq!(ours(&conf, &["heads"]).await.ok(), "d588418040d (head)\n");
    assert_eq!(ours(&conf, &["branches"]).await.ok(), "");
    let show = ours(&conf, &["show", "--revision", "d588418040d"])
        .await
        .ok();
    assert!(
        show.starts_with("Rev: d588418040d (head)\nParent: 578f84f38d\n"),
        "{show}"
    );
}

#[tokio::test]
async fn unknown_revision_fails_with_failed_line() {
    let (_db, _dir, conf) = sqlite_config();
    for args in [
        &["upgrade", "--revision", "nope"][..],
        &["downgrade", "--revision", "nope"],
        &["stamp", "--revision", "nope"],
        &["show", "--revision", "nope"],
    ] {
        let run = ours(&conf, args).await;
        assert_eq!(run.code, Some(1), "{args:?}");
        assert!(
            run.stderr
                .contains("FAILED: Can't locate revision identified by 'nope'"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // Nothing was created on the way.
    assert_eq!(ours(&conf, &["current"]).await.ok(), "");
}

#[tokio::test]
async fn wrong_direction_fails() {
    let (_db, _dir, conf) = sqlite_config();
    ours(&conf, &["upgrade", "--revision", "578f84f38d"])
        .await
        .ok();
    let run = ours(&conf, &["downgrade", "--revision", "head"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("FAILED: "), "{}", run.stderr);
    ours(&conf, &["upgrade"]).await.ok();
    let run = ours(&conf, &["upgrade", "--revision", "578f84f38d"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("FAILED: "), "{}", run.stderr);
}

#[tokio::test]
async fn developer_verbs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "[DEFAULT]\n");
    let run = ours(&conf, &["revision", "-m", "new"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("FAILED: "), "{}", run.stderr);
    let run = ours(&conf, &["edit", "--revision", "head"]).await;
    assert_eq!(run.code, Some(1));
    // A missing required argument is a usage error.
    let run = ours(&conf, &["downgrade"]).await;
    assert_eq!(run.code, Some(2));
}

#[tokio::test]
async fn help_and_version_work() {
    let help = tokio::process::Command::new(DBSYNC)
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for verb in [
        "upgrade",
        "downgrade",
        "stamp",
        "current",
        "history",
        "heads",
        "--config-file",
    ] {
        assert!(text.contains(verb), "{verb} missing from:\n{text}");
    }
    let version = tokio::process::Command::new(DBSYNC)
        .arg("--version")
        .output()
        .await
        .unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("ironic-inspector-dbsync "));
}

#[tokio::test]
async fn discoverd_database_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("discoverd.db");
    let conf = write_config(
        dir.path(),
        &format!("[discoverd]\ndatabase = {}\n", path.display()),
    );
    ours(&conf, &["upgrade"]).await.ok();
    assert!(path.exists());
    assert_eq!(ours(&conf, &["current"]).await.ok(), "d588418040d (head)\n");
}

#[tokio::test]
async fn relative_sqlite_path_is_relative_to_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let conf = database_config(dir.path(), "sqlite:///relative.db");
    let output = tokio::process::Command::new(DBSYNC)
        .current_dir(dir.path())
        .arg("--config-file")
        .arg(&conf)
        .arg("upgrade")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(dir.path().join("relative.db").exists());
}

#[tokio::test]
async fn missing_connection_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "[DEFAULT]\n");
    let run = ours(&conf, &["upgrade"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("FAILED: "), "{}", run.stderr);
    assert!(
        run.stderr.contains("[database] connection"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn password_never_appears_in_failures() {
    let dir = tempfile::tempdir().unwrap();
    let conf = database_config(
        dir.path(),
        "mysql+pymysql://inspector:hunter2-secret@127.0.0.1:1/inspector",
    );
    let mut config = std::fs::read_to_string(&conf).unwrap();
    config.push_str("max_retries = 0\npool_timeout = 1\n");
    std::fs::write(&conf, config).unwrap();
    let run = ours(&conf, &["current"]).await;
    assert_eq!(run.code, Some(1));
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
}

/// A fresh SQLite database, the directory of its configuration file, and that file.
fn sqlite_config() -> (TestDb, tempfile::TempDir, std::path::PathBuf) {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let conf = database_config(dir.path(), &db.url);
    (db, dir, conf)
}
