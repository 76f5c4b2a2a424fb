//! The service manager's notification protocol (`Type=notify` units): readiness, stopping,
//! and watchdog keep-alives.
//!
//! Upstream had no such support (it was run as a simple service). systemd tells a service
//! where to send its state through `NOTIFY_SOCKET` (a path, or `@name` for an abstract
//! socket), and asks for keep-alives through `WATCHDOG_USEC` (the timeout) and
//! `WATCHDOG_PID` (the process meant). The variables are read once, at start-up
//! ([`Notifier::from_env`]); without `NOTIFY_SOCKET` every call here does nothing, so
//! in-process tests and a daemon started by hand send nothing.
//!
//! The protocol is one datagram of `KEY=value` lines per state change, so it is written here
//! over a `UnixDatagram` rather than taken from a crate: the usual crate reads the environment
//! again on every call, and its way of hiding the variables from children is an `unsafe`
//! `remove_var`, which this crate forbids (and which races the runtime's threads). So the
//! variables stay in our environment, and [`scrub`] keeps them from the child processes we
//! start.

use std::ffi::OsStr;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Where systemd listens for our state.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The watchdog timeout, in microseconds.
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The process the watchdog is meant for (unset: us).
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// The channel to the service manager; a no-op when the daemon was not started by one.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier::default()
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` of this process. An
    /// unusable value is reported on standard error (logging is not set up yet) and
    /// leaves that feature off.
    pub fn from_env() -> Notifier {
        let (notifier, problem) = Notifier::from_vars(
            std::env::var_os(NOTIFY_SOCKET).as_deref(),
            std::env::var(WATCHDOG_USEC).ok().as_deref(),
            std::env::var(WATCHDOG_PID).ok().as_deref(),
            std::process::id(),
        );
        if let Some(problem) = problem {
            eprintln!("ironic-inspector: {problem}");
        }
        notifier
    }

    /// [`Notifier::from_env`] over given values; also says why a value was not usable.
    pub fn from_vars(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        own_pid: u32,
    ) -> (Notifier, Option<String>) {
        let Some(target) = notify_socket.filter(|s| !s.is_empty()) else {
            return (Notifier::disabled(), None);
        };
        let socket = match address(target).and_then(|addr| {
            let socket = UnixDatagram::unbound()?;
            // A full queue at systemd's end must not block a runtime thread.
            socket.set_nonblocking(true)?;
            Ok((socket, addr))
        }) {
            Ok(socket) => socket,
            Err(err) => {
                let problem = format!(
                    "{NOTIFY_SOCKET}={} is not usable ({err}); systemd will not hear from us",
                    target.to_string_lossy()
                );
                return (Notifier::disabled(), Some(problem));
            }
        };
        let meant_for_us = watchdog_pid.is_none_or(|pid| pid.trim() == own_pid.to_string());
        let watchdog = watchdog_usec
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|usec| *usec > 0 && meant_for_us)
            .map(Duration::from_micros);
        (
            Notifier {
                socket: Some(socket),
                watchdog,
            },
            None,
        )
    }

    /// Whether a service manager listens.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send keep-alives: half the watchdog timeout, as systemd advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// Start-up is complete: the API answers.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}\n"));
    }

    /// A stop was requested; the daemon is draining.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={status}\n"));
    }

    /// A free-form status line (shown by `systemctl status`).
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}\n"));
    }

    /// Sends `WATCHDOG=1` every [`Notifier::watchdog_interval`] until `stop` is cancelled;
    /// returns at once when no watchdog is asked for.
    pub async fn feed_watchdog(&self, stop: CancellationToken) {
        let Some(interval) = self.watchdog_interval() else {
            return;
        };
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => self.send("WATCHDOG=1\n"),
            }
        }
    }

    /// One datagram; a failure is logged and otherwise ignored (the daemon serves on).
    fn send(&self, message: &str) {
        let Some((socket, addr)) = &self.socket else {
            return;
        };
        if let Err(err) = socket.send_to_addr(message.as_bytes(), addr) {
            tracing::warn!(error = %err, "cannot notify systemd ({NOTIFY_SOCKET})");
        }
    }
}

/// Keeps the service manager's variables from a child process: they are addressed to us,
/// and a child that speaks the protocol would be taken for the daemon.
pub fn scrub(command: &mut tokio::process::Command) {
    for name in [NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID] {
        command.env_remove(name);
    }
}

/// The socket address of a `NOTIFY_SOCKET` value: an absolute path, or `@name` for a
/// socket in the abstract namespace.
fn address(value: &OsStr) -> std::io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(value),
        Some(b'@') => abstract_address(&bytes[1..]),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "neither an absolute path nor @name",
        )),
    }
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &[u8]) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_address(_name: &[u8]) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::receive_datagram;

    #[test]
    fn nothing_is_sent_without_notify_socket() {
        let (n, problem) = Notifier::from_vars(None, Some("1000000"), None, 1);
        assert!(!n.is_enabled());
        assert_eq!(n.watchdog_interval(), None);
        assert_eq!(problem, None);
        n.ready("x");
    }

    #[test]
    fn ready_and_stopping_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let (n, problem) = Notifier::from_vars(Some(path.as_os_str()), None, None, 1);
        assert_eq!(problem, None);
        n.ready("serving");
        assert_eq!(receive_datagram(&listener), "READY=1\nSTATUS=serving\n");
        n.stopping("draining");
        assert_eq!(receive_datagram(&listener), "STOPPING=1\nSTATUS=draining\n");
    }

    #[test]
    fn abstract_sockets_are_reached() {
        let name = format!("ironic-inspector-test-{}", uuid::Uuid::new_v4());
        let listener =
            UnixDatagram::bind_addr(&abstract_address(name.as_bytes()).unwrap()).unwrap();
        let value = format!("@{name}");
        let (n, _) = Notifier::from_vars(Some(OsStr::new(&value)), None, None, 1);
        n.status("hello");
        assert_eq!(receive_datagram(&listener), "STATUS=hello\n");
    }

    #[test]
    fn a_relative_path_is_refused_with_a_reason() {
        let (n, problem) = Notifier::from_vars(Some(OsStr::new("notify")), None, None, 1);
        assert!(!n.is_enabled());
        assert!(problem.unwrap().contains("NOTIFY_SOCKET=notify"));
    }

    #[test]
    fn the_watchdog_is_fed_at_half_its_timeout_only_when_meant_for_us() {
        let sock = Some(OsStr::new("/run/notify"));
        let interval = |usec, pid| {
            Notifier::from_vars(sock, usec, pid, 42)
                .0
                .watchdog_interval()
        };
        assert_eq!(
            interval(Some("2000000"), None),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            interval(Some("2000000"), Some("42")),
            Some(Duration::from_secs(1))
        );
        assert_eq!(interval(Some("2000000"), Some("43")), None);
        assert_eq!(interval(Some("0"), None), None);
        assert_eq!(interval(Some("soon"), None), None);
        assert_eq!(interval(None, None), None);
    }
}
