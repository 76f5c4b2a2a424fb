//! Logging set-up: one `tracing` subscriber for the whole process, writing to the places
//! the `[DEFAULT]` logging options name.
//!
//! Ports what oslo.log's `setup()` did for upstream's `main.py` in 2.2 (Liberty):
//! - the log file is `log_file` (relative to `log_dir` when both are set), or
//!   `<log_dir>/<program>.log` when only `log_dir` is set;
//! - standard error gets the log when `use_stderr` is set (the default), with a file or not;
//!   with `use_stderr = false` and no file, the log goes to standard output;
//! - with `use_syslog`, each line is also sent to the local syslog socket (`/dev/log`) under
//!   `syslog_log_facility`;
//! - `debug` gives debug level, `verbose = false` warnings only, otherwise info; `RUST_LOG`
//!   overrides both.
//!
//! Where oslo.log's file handler noticed by itself that logrotate had moved the file, here the
//! file is reopened on request ([`LogHandle::reopen`], on SIGHUP). Python's format options
//! are not applied (the config module warns when they are set).
//! Nothing here formats secrets: callers keep passwords and tokens in `SecretString`.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, SyslogFacility};

/// The local syslog socket (journald's or rsyslog's).
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Where and how verbosely to log.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// Debug level.
    pub debug: bool,
    /// Info level (otherwise warnings only) when not debugging.
    pub verbose: bool,
    /// File to append to.
    pub file: Option<PathBuf>,
    /// Standard error gets the log too; with neither this nor a file, standard output does.
    pub stderr: bool,
    /// Syslog gets the log too.
    pub syslog: Option<SyslogSettings>,
}

impl Default for LogSettings {
    /// Warnings and errors on standard error.
    fn default() -> Self {
        LogSettings {
            debug: false,
            verbose: false,
            file: None,
            stderr: true,
            syslog: None,
        }
    }
}

/// How to reach syslog.
#[derive(Clone, Debug)]
pub struct SyslogSettings {
    /// The facility messages are filed under.
    pub facility: SyslogFacility,
    /// The tag (`program[pid]`) that starts each message, if any.
    pub tag: Option<String>,
    /// The datagram socket, normally [`SYSLOG_SOCKET`].
    pub socket: PathBuf,
}

impl LogSettings {
    /// Settings from the `[DEFAULT]` logging options; `program` names the file that
    /// `log_dir` alone gives, and tags syslog messages.
    pub fn from_config(config: &Config, program: &str) -> Self {
        let d = &config.default;
        let file = match (&d.log_file, &d.log_dir) {
            (Some(file), Some(dir)) => Some(dir.join(file)),
            (Some(file), None) => Some(file.clone()),
            (None, Some(dir)) => Some(dir.join(format!("{program}.log"))),
            (None, None) => None,
        };
        let syslog = d.use_syslog.then(|| SyslogSettings {
            facility: d.syslog_log_facility,
            tag: d
                .use_syslog_rfc_format
                .then(|| format!("{program}[{}]", std::process::id())),
            socket: PathBuf::from(SYSLOG_SOCKET),
        });
        LogSettings {
            debug: d.debug,
            verbose: d.verbose,
            file,
            stderr: d.use_stderr,
            syslog,
        }
    }

    fn filter(&self) -> EnvFilter {
        if let Ok(filter) = EnvFilter::try_from_default_env() {
            return filter;
        }
        let level = if self.debug {
            "debug"
        } else if self.verbose {
            "info"
        } else {
            "warn"
        };
        // Our crate at the chosen level; chatty dependencies one notch quieter.
        EnvFilter::new(format!(
            "warn,ironic_inspector={level},ironic_inspector_dbsync={level},tower_http={}",
            if self.debug { "debug" } else { "warn" }
        ))
    }
}

/// The running logger's file, for reopening it. Cheap to clone; without a file,
/// [`LogHandle::reopen`] does nothing.
#[derive(Clone, Debug, Default)]
pub struct LogHandle {
    file: Option<Arc<LogFile>>,
}

impl LogHandle {
    /// The log file, if the log goes to one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref().map(|f| f.path.as_path())
    }

    /// Opens the log file's path again (creating the file if it was moved away) and writes
    /// the following lines there. Returns the path, or `None` without a log file. On an
    /// error the old file stays in use. Blocking: call it off the async runtime.
    pub fn reopen(&self) -> io::Result<Option<PathBuf>> {
        let Some(log) = &self.file else {
            return Ok(None);
        };
        let fresh = open_append(&log.path)?;
        *log.lock() = fresh;
        Ok(Some(log.path.clone()))
    }
}

/// The log file: its path and the open file, swapped whole on reopen.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    // A std mutex: held only for one write, never across an await.
    file: Mutex<File>,
}

impl LogFile {
    fn lock(&self) -> MutexGuard<'_, File> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The subscriber's writer for the log file.
struct FileWriter(Arc<LogFile>);

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = LockedFile<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LockedFile(self.0.lock())
    }
}

/// The log file, locked for the one event being written.
struct LockedFile<'a>(MutexGuard<'a, File>);

impl Write for LockedFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// The syslog sink: datagrams to the local socket.
#[derive(Debug)]
struct Syslog {
    socket: UnixDatagram,
    settings: SyslogSettings,
}

impl Syslog {
    /// Checks that the socket can be reached now, so that a missing syslog is reported at
    /// start-up rather than every line being lost without a word.
    fn connect(settings: &SyslogSettings) -> io::Result<Syslog> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(&settings.socket).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot reach syslog at {} ([DEFAULT] use_syslog): {e}",
                    settings.socket.display()
                ),
            )
        })?;
        // A syslog daemon that falls behind must not stall the threads that log: a line
        // that finds its queue full is dropped.
        socket.set_nonblocking(true)?;
        Ok(Syslog {
            socket,
            settings: settings.clone(),
        })
    }

    /// One message: `<PRI>tag: text`. The date is left out, as Python's syslog handler
    /// did: the local daemon stamps the time it receives the line.
    fn send(&self, severity: u8, text: &[u8]) {
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let priority = u16::from(self.settings.facility.code()) * 8 + u16::from(severity);
        let mut datagram = format!("<{priority}>").into_bytes();
        if let Some(tag) = &self.settings.tag {
            datagram.extend_from_slice(tag.as_bytes());
            datagram.extend_from_slice(b": ");
        }
        datagram.extend_from_slice(text);
        if self.socket.send(&datagram).is_err() {
            // The daemon restarted (a new socket at the same path): connect again once.
            let _ = self
                .socket
                .connect(&self.settings.socket)
                .and_then(|()| self.socket.send(&datagram));
        }
    }
}

/// The subscriber's writer for syslog: one datagram per event, at the event's severity.
struct SyslogWriter(Arc<Syslog>);

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = SyslogLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        self.line(Severity::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.line(Severity::of(meta.level()))
    }
}

impl SyslogWriter {
    fn line(&self, severity: u8) -> SyslogLine<'_> {
        SyslogLine {
            syslog: &self.0,
            severity,
            text: Vec::new(),
        }
    }
}

/// Syslog severities (RFC 5424).
struct Severity;

impl Severity {
    const ERR: u8 = 3;
    const WARNING: u8 = 4;
    const INFO: u8 = 6;
    const DEBUG: u8 = 7;

    fn of(level: &Level) -> u8 {
        match *level {
            Level::ERROR => Self::ERR,
            Level::WARN => Self::WARNING,
            Level::INFO => Self::INFO,
            Level::DEBUG | Level::TRACE => Self::DEBUG,
        }
    }
}

/// One event's text, sent when the formatter is done with it.
struct SyslogLine<'a> {
    syslog: &'a Syslog,
    severity: u8,
    text: Vec<u8>,
}

impl Write for SyslogLine<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine<'_> {
    fn drop(&mut self) {
        if !self.text.is_empty() {
            self.syslog.send(self.severity, &self.text);
        }
    }
}

/// Builds the subscriber the settings describe, and the handle on its log file.
pub fn build(
    settings: &LogSettings,
) -> io::Result<(impl Subscriber + Send + Sync + 'static, LogHandle)> {
    let file = match &settings.file {
        Some(path) => Some(Arc::new(LogFile {
            file: Mutex::new(open_append(path)?),
            path: path.clone(),
        })),
        None => None,
    };
    let syslog = match &settings.syslog {
        Some(syslog) => Some(Arc::new(Syslog::connect(syslog)?)),
        None => None,
    };
    let to_file = file.clone().map(|file| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(FileWriter(file))
    });
    // Colours only for a person at a terminal, not for journald or a redirected log.
    let to_stderr = settings.stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(io::stderr().is_terminal())
            .with_writer(io::stderr)
    });
    let to_stdout = (!settings.stderr && file.is_none()).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(io::stdout().is_terminal())
            .with_writer(io::stdout)
    });
    // The time comes from the syslog daemon, the level from the priority.
    let to_syslog = syslog.map(|syslog| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_writer(SyslogWriter(syslog))
    });
    let subscriber = tracing_subscriber::registry()
        .with(settings.filter())
        .with(to_file)
        .with(to_stderr)
        .with(to_stdout)
        .with(to_syslog);
    Ok((subscriber, LogHandle { file }))
}

/// Installs the global subscriber. Call once, at start-up; a second call leaves the first
/// subscriber in place (tests) but still returns a handle on the file it opened.
pub fn init(settings: &LogSettings) -> io::Result<LogHandle> {
    let (subscriber, handle) = build(settings)?;
    // An already-installed subscriber (tests) is fine.
    let _ = subscriber.try_init();
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::oslo::RawConfig;
    use crate::testing::receive_datagram;

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inspector.conf");
        std::fs::write(&path, text).unwrap();
        Config::from_raw(&RawConfig::from_files(&[path]).unwrap())
            .unwrap()
            .0
    }

    #[test]
    fn the_file_follows_log_file_and_log_dir_as_oslo_log() {
        let file = |text: &str| LogSettings::from_config(&config(text), "ironic-inspector").file;
        assert_eq!(file("[DEFAULT]\n"), None);
        assert_eq!(
            file("[DEFAULT]\nlog_file = /var/log/i.log\n"),
            Some(PathBuf::from("/var/log/i.log"))
        );
        assert_eq!(
            file("[DEFAULT]\nlog_file = i.log\nlog_dir = /var/log/x\n"),
            Some(PathBuf::from("/var/log/x/i.log"))
        );
        assert_eq!(
            file("[DEFAULT]\nlog_dir = /var/log/x\n"),
            Some(PathBuf::from("/var/log/x/ironic-inspector.log"))
        );
    }

    #[test]
    fn syslog_settings_follow_the_options() {
        let s = LogSettings::from_config(&config("[DEFAULT]\n"), "p");
        assert!(s.syslog.is_none());
        assert!(s.stderr && s.verbose && !s.debug);
        let s = LogSettings::from_config(
            &config(
                "[DEFAULT]\nuse_syslog = true\nsyslog_log_facility = local3\nuse_stderr = false\n",
            ),
            "p",
        );
        let syslog = s.syslog.unwrap();
        assert_eq!(syslog.facility.code(), 19);
        assert_eq!(syslog.tag, Some(format!("p[{}]", std::process::id())));
        assert!(!s.stderr);
        let s = LogSettings::from_config(
            &config("[DEFAULT]\nuse_syslog = true\nuse_syslog_rfc_format = false\n"),
            "p",
        );
        assert_eq!(s.syslog.unwrap().tag, None);
    }

    #[test]
    fn syslog_gets_one_datagram_per_event_with_its_priority() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let settings = LogSettings {
            verbose: true,
            stderr: false,
            file: Some(dir.path().join("file.log")),
            syslog: Some(SyslogSettings {
                facility: SyslogFacility::from_name("LOG_DAEMON").unwrap(),
                tag: Some("ironic-inspector[7]".into()),
                socket: path,
            }),
            ..LogSettings::default()
        };
        let (subscriber, _) = build(&settings).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(node.uuid = "abc", "hello");
            tracing::error!("broken");
            tracing::debug!("not at info level");
        });
        let info = receive_datagram(&server);
        assert!(
            info.starts_with("<30>ironic-inspector[7]: ironic_inspector::telemetry::tests: hello"),
            "{info}"
        );
        assert!(info.ends_with("node.uuid=\"abc\""), "{info}");
        let error = receive_datagram(&server);
        assert!(error.starts_with("<27>ironic-inspector[7]: "), "{error}");
        server.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        assert!(server.recv(&mut buf).is_err(), "a debug line was sent");
    }

    #[test]
    fn an_unreachable_syslog_fails_start_up_with_the_option_named() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LogSettings {
            syslog: Some(SyslogSettings {
                facility: SyslogFacility::from_name("user").unwrap(),
                tag: None,
                socket: dir.path().join("missing"),
            }),
            ..LogSettings::default()
        };
        let err = build(&settings).err().unwrap().to_string();
        assert!(err.contains("[DEFAULT] use_syslog"), "{err}");
    }

    #[test]
    fn reopen_creates_the_file_again_after_it_was_moved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("inspector.log");
        let settings = LogSettings {
            verbose: true,
            stderr: false,
            file: Some(path.clone()),
            ..LogSettings::default()
        };
        let (subscriber, handle) = build(&settings).unwrap();
        let dispatch = tracing::Dispatch::new(subscriber);
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("first"));
        let moved = dir.path().join("inspector.log.1");
        std::fs::rename(&path, &moved).unwrap();
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("second"));
        assert_eq!(handle.reopen().unwrap(), Some(path.clone()));
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("third"));
        let old = std::fs::read_to_string(&moved).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(old.contains("first") && old.contains("second"), "{old}");
        assert!(!old.contains("third"), "{old}");
        assert!(new.contains("third") && !new.contains("second"), "{new}");
        assert_eq!(LogHandle::default().reopen().unwrap(), None);
    }

    #[test]
    fn facility_names_are_those_oslo_log_accepted() {
        for (name, code) in [
            ("LOG_USER", 1),
            ("user", 1),
            ("LOG_DAEMON", 3),
            ("daemon", 3),
            ("LOG_LOCAL0", 16),
            ("local7", 23),
            ("Log_Auth", 4),
        ] {
            assert_eq!(
                SyslogFacility::from_name(name).map(|f| f.code()),
                Some(code)
            );
        }
        for bad in ["", "LOG_", "local8", "kernel", "LOG_LOCAL"] {
            assert_eq!(SyslogFacility::from_name(bad), None, "{bad}");
        }
    }
}
