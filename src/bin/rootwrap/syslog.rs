//! Logging to the local syslog daemon (`use_syslog`): one RFC 3164 datagram per message,
//! `<PRI>ironic-inspector-rootwrap: message`, sent to `/dev/log`; the daemon adds the time
//! and host. Without a syslog daemon (no `/dev/log`), messages are dropped silently: logging
//! must never stop the command from running or change the helper's exit status.

use std::os::unix::net::UnixDatagram;

/// The local syslog socket.
const SOCKET: &str = "/dev/log";
/// The tag every message carries.
const TAG: &str = "ironic-inspector-rootwrap";
/// Longest message sent; the rest is cut (arguments could be long).
const MAX_MESSAGE: usize = 4000;

/// A syslog facility (`syslog_log_facility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facility(u8);

impl Facility {
    /// oslo.rootwrap's default.
    pub const SYSLOG: Facility = Facility(5);

    /// A facility by the names Python's syslog handler knows (`local0`, `auth`, `syslog`...),
    /// in any case, with or without a `LOG_` prefix.
    pub fn from_name(name: &str) -> Option<Facility> {
        let lower = name.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("log_").unwrap_or(&lower);
        let code = match name {
            "kern" => 0,
            "user" => 1,
            "mail" => 2,
            "daemon" => 3,
            "auth" => 4,
            "syslog" => 5,
            "lpr" => 6,
            "news" => 7,
            "uucp" => 8,
            "cron" => 9,
            "authpriv" => 10,
            "ftp" => 11,
            "ntp" => 12,
            "security" => 13,
            "console" => 14,
            "solaris-cron" | "solcron" => 15,
            local => {
                let n: u8 = local.strip_prefix("local")?.parse().ok()?;
                if n > 7 {
                    return None;
                }
                16 + n
            }
        };
        Some(Facility(code))
    }
}

/// How grave a message is (syslog severities; lower is graver).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical = 2,
    Error = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

impl Severity {
    /// The threshold for a Python logging level name (`syslog_log_level`), in any case.
    /// `NOTSET` lets everything through.
    pub fn from_level_name(name: &str) -> Option<Severity> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" | "FATAL" => Severity::Critical,
            "ERROR" => Severity::Error,
            "WARNING" | "WARN" => Severity::Warning,
            "INFO" => Severity::Info,
            "DEBUG" | "NOTSET" => Severity::Debug,
            _ => return None,
        })
    }
}

/// Where and what to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syslog {
    pub facility: Facility,
    /// Messages less grave than this are not sent.
    pub threshold: Severity,
}

impl Syslog {
    /// Sends `message` if it is grave enough; failures are ignored.
    pub fn log(&self, severity: Severity, message: &str) {
        if let Some(datagram) = self.datagram(severity, message)
            && let Ok(socket) = UnixDatagram::unbound()
        {
            let _ = socket.send_to(datagram.as_bytes(), SOCKET);
        }
    }

    /// The datagram for `message`, or `None` when it is below the threshold. Control
    /// characters (a newline in an argument) are escaped, so one message stays one line.
    fn datagram(&self, severity: Severity, message: &str) -> Option<String> {
        if severity > self.threshold {
            return None;
        }
        let mut text = String::with_capacity(message.len().min(MAX_MESSAGE));
        for c in message.chars() {
            if text.len() >= MAX_MESSAGE {
                text.push('…');
                break;
            }
            if c.is_control() {
                text.extend(c.escape_default());
            } else {
                text.push(c);
            }
        }
        let priority = u16::from(self.facility.0) * 8 + severity as u16;
        Some(format!("<{priority}>{TAG}: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facility_names() {
        assert_eq!(Facility::from_name("syslog"), Some(Facility::SYSLOG));
        assert_eq!(Facility::from_name("LOG_AUTH"), Some(Facility(4)));
        assert_eq!(Facility::from_name("authpriv"), Some(Facility(10)));
        assert_eq!(Facility::from_name("local0"), Some(Facility(16)));
        assert_eq!(Facility::from_name("Local7"), Some(Facility(23)));
        assert_eq!(Facility::from_name("local8"), None);
        assert_eq!(Facility::from_name("user0"), None);
        assert_eq!(Facility::from_name(""), None);
    }

    #[test]
    fn level_names() {
        assert_eq!(Severity::from_level_name("error"), Some(Severity::Error));
        assert_eq!(Severity::from_level_name("WARN"), Some(Severity::Warning));
        assert_eq!(Severity::from_level_name("NOTSET"), Some(Severity::Debug));
        assert_eq!(Severity::from_level_name("LOUD"), None);
    }

    #[test]
    fn datagrams_carry_priority_and_tag_and_respect_the_threshold() {
        let log = Syslog {
            facility: Facility::from_name("local0").unwrap(),
            threshold: Severity::Error,
        };
        assert_eq!(
            log.datagram(Severity::Error, "Unauthorized command: /bin/sh")
                .unwrap(),
            "<131>ironic-inspector-rootwrap: Unauthorized command: /bin/sh"
        );
        assert_eq!(log.datagram(Severity::Info, "Executing iptables"), None);
        let all = Syslog {
            threshold: Severity::Debug,
            ..log
        };
        assert_eq!(
            all.datagram(Severity::Info, "a\nb").unwrap(),
            "<134>ironic-inspector-rootwrap: a\\nb"
        );
        let long = all.datagram(Severity::Info, &"x".repeat(10_000)).unwrap();
        assert!(long.len() < MAX_MESSAGE + 100 && long.ends_with('…'));
    }
}
