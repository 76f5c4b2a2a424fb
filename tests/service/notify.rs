//! systemd's notify protocol, as a `Type=notify` unit sees it: the test plays systemd's
//! end of `NOTIFY_SOCKET`.

use std::os::unix::net::SocketAddr;
use std::path::Path;

use tokio::net::UnixDatagram;

use crate::launch::{DEADLINE, Service, configure};

/// The next datagram, at most [`DEADLINE`] away.
async fn next_message(socket: &UnixDatagram, waiting_for: &str) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(DEADLINE, socket.recv(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no notification within {DEADLINE:?} ({waiting_for})"))
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Reads notifications until one has the line `line`; returns that one.
async fn wait_for_line(socket: &UnixDatagram, line: &str) -> String {
    loop {
        let message = next_message(socket, line).await;
        if message.lines().any(|l| l == line) {
            return message;
        }
    }
}

fn bind_path(dir: &Path) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.join("notify.sock");
    (UnixDatagram::bind(&path).unwrap(), path)
}

#[tokio::test]
async fn ready_comes_once_the_api_answers_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, path) = bind_path(dir.path());
    let (conf, port) = configure(dir.path(), "").await;
    let mut command = Service::command(&conf);
    command.env("NOTIFY_SOCKET", &path);
    let mut daemon = Service::spawn(dir.path(), port, command);

    let ready = wait_for_line(&socket, "READY=1").await;
    // Readiness means clients are served from now on: no retry here.
    assert!(
        daemon.answers().await,
        "READY=1 came before the API answered"
    );
    assert!(
        ready.contains(&format!(
            "STATUS=Serving the API on http://127.0.0.1:{port}"
        )),
        "{ready}"
    );

    daemon.signal("TERM").await;
    let stopping = wait_for_line(&socket, "STOPPING=1").await;
    assert!(stopping.contains("STATUS=Stopping"), "{stopping}");
    assert_eq!(daemon.exit_status().await.code(), Some(0));
}

#[tokio::test]
async fn the_watchdog_is_fed_on_an_abstract_socket_when_meant_for_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("ironic-inspector-test-{}", uuid::Uuid::new_v4());
    let std_socket = {
        use std::os::linux::net::SocketAddrExt;
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap()
    };
    std_socket.set_nonblocking(true).unwrap();
    let socket = UnixDatagram::from_std(std_socket).unwrap();
    let (conf, port) = configure(dir.path(), "").await;
    // As systemd does, WATCHDOG_PID names the daemon's own pid: the shell execs it.
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg("export WATCHDOG_PID=$$; exec \"$0\" \"$@\"")
        .arg(crate::daemon_binary::DAEMON)
        .arg("--config-file")
        .arg(&conf)
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .env("WATCHDOG_USEC", "2000000");
    let mut daemon = Service::spawn(dir.path(), port, command);

    wait_for_line(&socket, "READY=1").await;
    // Keep-alives every second: two of them, however the daemon is scheduled.
    wait_for_line(&socket, "WATCHDOG=1").await;
    wait_for_line(&socket, "WATCHDOG=1").await;
    assert_eq!(daemon.stop().await, Some(0));
}

#[tokio::test]
async fn commands_the_daemon_runs_do_not_get_the_notify_variables() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, path) = bind_path(dir.path());
    // A root helper that records its environment and succeeds, as iptables would.
    let helper = dir.path().join("helper.sh");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nenv > \"{}/helper-env.$$\"\nexit 0\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (conf, port) = configure(dir.path(), "").await;
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "manage_firewall = false",
        &format!(
            "manage_firewall = true\nroot_helper = {}\ndnsmasq_interface = lo\n",
            helper.display()
        ),
    );
    std::fs::write(&conf, text).unwrap();
    let mut command = Service::command(&conf);
    command
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "60000000")
        .env("SERVICE_TEST_MARKER", "inherited");
    let mut daemon = Service::spawn(dir.path(), port, command);

    // The firewall is set up (through the helper) before READY=1.
    wait_for_line(&socket, "READY=1").await;
    let envs: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("helper-env."))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(!envs.is_empty(), "the helper never ran");
    for env in envs {
        // The rest of the environment is passed on.
        assert!(env.contains("SERVICE_TEST_MARKER=inherited"), "{env}");
        assert!(!env.contains("NOTIFY_SOCKET"), "{env}");
        assert!(!env.contains("WATCHDOG_USEC"), "{env}");
    }
    assert_eq!(daemon.stop().await, Some(0));
}
