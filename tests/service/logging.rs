//! The `[DEFAULT]` logging options of oslo.log, as the daemon binary applies them.

use tokio::net::UnixDatagram;

use crate::launch::{DEADLINE, Service, can_mount, configure};

/// The info line every start logs.
const SERVING: &str = "ironic-inspector is serving";
/// The warning every start without Keystone logs.
const NOAUTH: &str = "starting without authentication";

/// Starts the daemon with `default_extra`, makes one request, stops it; its standard
/// output and error, and the directory (for files it wrote).
async fn run_once(default_extra: &str) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (conf, port) = configure(dir.path(), default_extra).await;
    let mut daemon = Service::spawn(dir.path(), port, Service::command(&conf));
    daemon.wait_answering().await;
    assert_eq!(daemon.stop().await, Some(0));
    (daemon.stdout_text(), daemon.stderr_text(), dir)
}

#[tokio::test]
async fn log_dir_alone_logs_to_a_file_named_after_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let (_, stderr, _) = run_once(&format!("log_dir = {}", logs.display())).await;
    let file = std::fs::read_to_string(logs.join("ironic-inspector.log")).unwrap();
    assert!(file.contains(SERVING), "{file}");
    // use_stderr is true by default: standard error has the same lines.
    assert!(stderr.contains(SERVING), "{stderr}");
}

#[tokio::test]
async fn use_stderr_false_keeps_the_log_to_the_file_or_else_to_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("inspector.log");
    let (stdout, stderr, _) =
        run_once(&format!("log_file = {}\nuse_stderr = false", log.display())).await;
    let file = std::fs::read_to_string(&log).unwrap();
    assert!(file.contains(SERVING), "{file}");
    assert!(
        !stderr.contains(SERVING) && !stdout.contains(SERVING),
        "{stderr}{stdout}"
    );

    let (stdout, stderr, _) = run_once("use_stderr = false").await;
    assert!(stdout.contains(SERVING), "{stdout}");
    assert!(!stderr.contains(SERVING), "{stderr}");
}

#[tokio::test]
async fn debug_and_verbose_set_the_level() {
    // Default: info, no debug.
    let (_, stderr, _) = run_once("").await;
    assert!(
        stderr.contains(SERVING) && stderr.contains(NOAUTH),
        "{stderr}"
    );
    assert!(!stderr.contains(" DEBUG "), "{stderr}");
    // verbose = false: warnings only.
    let (_, stderr, _) = run_once("verbose = false").await;
    assert!(stderr.contains(NOAUTH), "{stderr}");
    assert!(!stderr.contains(SERVING), "{stderr}");
    // debug = true: the requests' debug lines too (and debug wins over verbose = false).
    let (_, stderr, _) = run_once("debug = true\nverbose = false").await;
    assert!(stderr.contains(SERVING), "{stderr}");
    assert!(stderr.contains(" DEBUG "), "{stderr}");
}

#[tokio::test]
async fn python_logging_options_are_accepted_with_a_warning() {
    let (_, stderr, _) =
        run_once("log_config_append = /etc/ironic-inspector/logging.conf\nlog_date_format = %H")
            .await;
    for option in ["[DEFAULT] log_config_append", "[DEFAULT] log_date_format"] {
        let line = stderr
            .lines()
            .find(|l| l.contains(option))
            .unwrap_or_else(|| panic!("no warning about {option}: {stderr}"));
        assert!(
            line.contains("WARN") && line.contains("not applied"),
            "{line}"
        );
    }
    assert!(stderr.contains(SERVING), "{stderr}");
}

#[tokio::test]
async fn an_unknown_syslog_facility_stops_start_up_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let (conf, port) = configure(
        dir.path(),
        "use_syslog = true\nsyslog_log_facility = LOG_LOCAL8",
    )
    .await;
    let mut daemon = Service::spawn(dir.path(), port, Service::command(&conf));
    assert_eq!(daemon.exit_status().await.code(), Some(1));
    let stderr = daemon.stderr_text();
    assert!(
        stderr.contains("[DEFAULT] syslog_log_facility") && stderr.contains("LOG_LOCAL8"),
        "{stderr}"
    );
}

/// The first datagram that contains `needle`, among those received so far (`seen`) and
/// those still to come.
async fn wait_for_datagram(socket: &UnixDatagram, seen: &mut Vec<String>, needle: &str) -> String {
    if let Some(line) = seen.iter().find(|l| l.contains(needle)) {
        return line.clone();
    }
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::time::timeout(DEADLINE, socket.recv(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!("no syslog line with {needle:?} within {DEADLINE:?}: {seen:?}")
            })
            .unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        seen.push(line.clone());
        if line.contains(needle) {
            return line;
        }
    }
}

/// The daemon runs in a mount namespace of its own where the test's socket is bound over
/// /dev/log (on an overlay of /dev, so the host's /dev is untouched).
#[tokio::test]
async fn use_syslog_sends_lines_with_the_facility_and_severity_to_dev_log() {
    if !can_mount("use_syslog_sends_lines_with_the_facility_and_severity_to_dev_log") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("syslog.sock");
    let socket = UnixDatagram::bind(&sock).unwrap();
    for sub in ["upper", "work"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let (conf, port) = configure(
        dir.path(),
        "use_syslog = true\nsyslog_log_facility = daemon\nuse_stderr = false",
    )
    .await;
    let script = format!(
        "set -e; mount -t overlay overlay -o lowerdir=/dev,upperdir='{0}/upper',workdir='{0}/work' /dev; \
         touch /dev/log; mount --bind '{1}' /dev/log; exec \"$0\" \"$@\"",
        dir.path().display(),
        sock.display()
    );
    let mut command = tokio::process::Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(crate::daemon_binary::DAEMON)
        .arg("--config-file")
        .arg(&conf);
    let mut daemon = Service::spawn(dir.path(), port, command);
    let pid = daemon.pid();
    let mut seen = Vec::new();

    // LOG_DAEMON (3) * 8 + info (6) = 30; warning (4) gives 28.
    let serving = wait_for_datagram(&socket, &mut seen, SERVING).await;
    assert!(
        serving.starts_with(&format!("<30>ironic-inspector[{pid}]: ")),
        "{serving}"
    );
    assert!(!serving.ends_with('\n'), "{serving:?}");
    let noauth = wait_for_datagram(&socket, &mut seen, NOAUTH).await;
    assert!(noauth.starts_with("<28>"), "{noauth}");
    assert!(daemon.answers().await);
    assert_eq!(daemon.stop().await, Some(0));
    let stopped = wait_for_datagram(&socket, &mut seen, "ironic-inspector stopped").await;
    assert!(stopped.starts_with("<30>"), "{stopped}");
    // use_stderr = false, no file: the rest went to standard output.
    assert!(daemon.stdout_text().contains(SERVING));
}
