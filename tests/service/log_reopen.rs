//! SIGHUP, as logrotate's `postrotate` sends it: the log file is reopened and the daemon
//! serves on.

use crate::launch::{Service, configure};

#[tokio::test]
async fn sighup_reopens_a_log_file_that_was_moved_away() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("inspector.log");
    let rotated = dir.path().join("inspector.log.1");
    let (conf, port) = configure(dir.path(), &format!("log_file = {}", log.display())).await;
    let mut daemon = Service::spawn(dir.path(), port, Service::command(&conf));
    daemon.wait_answering().await;
    daemon
        .wait_for_text(&log, "ironic-inspector is serving")
        .await;

    std::fs::rename(&log, &rotated).unwrap();
    daemon.signal("HUP").await;
    let new = daemon
        .wait_for_text(&log, "SIGHUP: log file reopened")
        .await;
    assert!(daemon.is_alive(), "SIGHUP ended the daemon");
    assert!(daemon.answers().await);
    assert!(!new.contains("is serving"), "{new}");

    // Later lines land in the new file too, and a second SIGHUP appends to it.
    daemon.signal("HUP").await;
    wait_for_two_reopens(&log).await;
    assert_eq!(daemon.stop().await, Some(0));
    let new = std::fs::read_to_string(&log).unwrap();
    assert!(new.contains("ironic-inspector stopped"), "{new}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("ironic-inspector is serving"), "{old}");
    assert!(
        !old.contains("reopened") && !old.contains("stopped"),
        "{old}"
    );
}

async fn wait_for_two_reopens(log: &std::path::Path) {
    crate::helpers::wait_for(crate::launch::DEADLINE, "a second reopen line", || async {
        let text = std::fs::read_to_string(log).ok()?;
        (text.matches("SIGHUP: log file reopened").count() == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn sighup_without_a_log_file_only_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (conf, port) = configure(dir.path(), "").await;
    let mut daemon = Service::spawn(dir.path(), port, Service::command(&conf));
    daemon.wait_answering().await;
    daemon.signal("HUP").await;
    daemon
        .wait_for_text(&daemon.stderr.clone(), "SIGHUP: no log file to reopen")
        .await;
    assert!(daemon.is_alive(), "SIGHUP ended the daemon");
    assert!(daemon.answers().await);
    assert_eq!(daemon.stop().await, Some(0));
}
