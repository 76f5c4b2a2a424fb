//! The helper's configuration file, `rootwrap.conf`: the `[DEFAULT]` keys of oslo.rootwrap.
//!
//! `filters_path` and `exec_dirs` are comma-separated absolute directories; `use_syslog`,
//! `syslog_log_facility` and `syslog_log_level` choose what goes to syslog. The keys of
//! oslo.rootwrap's daemon mode (`daemon_timeout`, `rlimit_nofile`) are checked to be integers
//! and otherwise ignored, like any key this helper does not know. One difference on purpose:
//! without `exec_dirs`, oslo.rootwrap searched the caller's PATH; this helper never does and
//! refuses such a configuration.

use std::path::{Path, PathBuf};

use crate::ini::{self, Ini};
use crate::syslog::{Facility, Severity, Syslog};
use crate::trust;

/// The section oslo.rootwrap reads its settings from.
const SECTION: &str = "DEFAULT";

/// What `rootwrap.conf` says.
#[derive(Debug, PartialEq, Eq)]
pub struct Config {
    /// Directories whose `*.filters` files list the allowed commands, in order.
    pub filters_path: Vec<PathBuf>,
    /// The only directories commands are looked up in, in order.
    pub exec_dirs: Vec<PathBuf>,
    /// Where to log run and refused commands; `None` without `use_syslog`.
    pub syslog: Option<Syslog>,
}

/// Reads and checks the configuration file at `path`; the error says what is wrong.
pub fn load(path: &Path) -> Result<Config, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "configuration file {} is not a regular file",
            path.display()
        ));
    }
    trust::check_root_only(path, "configuration file", &meta)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the text of a configuration file.
pub fn parse(text: &str) -> Result<Config, String> {
    let ini = ini::parse(text)?;
    let filters_path = directories(&ini, "filters_path")?;
    let exec_dirs = directories(&ini, "exec_dirs")?;
    let use_syslog = match ini.get(SECTION, "use_syslog") {
        Some(value) => boolean(value).ok_or_else(|| {
            format!("[{SECTION}] use_syslog = {value} is not a boolean (true or false)")
        })?,
        None => false,
    };
    // Checked even when syslog is off, as oslo.rootwrap did.
    let facility = match ini.get(SECTION, "syslog_log_facility") {
        Some(name) => Facility::from_name(name)
            .ok_or_else(|| format!("[{SECTION}] syslog_log_facility = {name} is not a facility"))?,
        None => Facility::SYSLOG,
    };
    let threshold = match ini.get(SECTION, "syslog_log_level") {
        Some(name) => Severity::from_level_name(name).ok_or_else(|| {
            format!(
                "[{SECTION}] syslog_log_level = {name} is not a level \
                 (DEBUG, INFO, WARNING, ERROR, CRITICAL)"
            )
        })?,
        None => Severity::Error,
    };
    for key in ["daemon_timeout", "rlimit_nofile"] {
        if let Some(value) = ini.get(SECTION, key)
            && value.parse::<i64>().is_err()
        {
            return Err(format!("[{SECTION}] {key} = {value} is not an integer"));
        }
    }
    Ok(Config {
        filters_path,
        exec_dirs,
        syslog: use_syslog.then_some(Syslog {
            facility,
            threshold,
        }),
    })
}

/// A comma-separated list of absolute directories under `[DEFAULT] key`; required.
fn directories(ini: &Ini, key: &str) -> Result<Vec<PathBuf>, String> {
    let value = ini.get(SECTION, key).ok_or_else(|| {
        if key == "exec_dirs" {
            format!(
                "[{SECTION}] exec_dirs is not set (this helper never searches the caller's \
                 PATH; list the directories commands may come from)"
            )
        } else {
            format!("[{SECTION}] {key} is not set")
        }
    })?;
    let dirs: Vec<PathBuf> = value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        return Err(format!("[{SECTION}] {key} names no directory"));
    }
    if let Some(relative) = dirs.iter().find(|d| !d.is_absolute()) {
        return Err(format!(
            "[{SECTION}] {key}: {} is not an absolute path",
            relative.display()
        ));
    }
    Ok(dirs)
}

/// configparser's booleans.
fn boolean(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[DEFAULT]\nfilters_path = /etc/a, /usr/share/b,\nexec_dirs=/sbin,/usr/bin\n";

    #[test]
    fn lists_are_split_on_commas_and_trimmed() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            c.filters_path,
            vec![PathBuf::from("/etc/a"), PathBuf::from("/usr/share/b")]
        );
        assert_eq!(
            c.exec_dirs,
            vec![PathBuf::from("/sbin"), PathBuf::from("/usr/bin")]
        );
        assert_eq!(c.syslog, None);
    }

    #[test]
    fn the_shipped_configuration_parses() {
        let c = parse(include_str!("../../../rootwrap.conf")).unwrap();
        assert_eq!(c.exec_dirs.len(), 4);
        assert_eq!(
            c.filters_path[0],
            PathBuf::from("/etc/ironic-inspector/rootwrap.d")
        );
        assert_eq!(c.syslog, None);
    }

    #[test]
    fn syslog_settings_and_oslo_daemon_keys() {
        let c = parse(&format!(
            "{MINIMAL}use_syslog = True\nsyslog_log_facility = local3\nsyslog_log_level = info\n\
             daemon_timeout = 600\nrlimit_nofile = 1024\nsomething_else = x\n"
        ))
        .unwrap();
        assert_eq!(
            c.syslog,
            Some(Syslog {
                facility: Facility::from_name("local3").unwrap(),
                threshold: Severity::Info
            })
        );
        let c = parse(&format!("{MINIMAL}use_syslog = on\n")).unwrap();
        assert_eq!(
            c.syslog,
            Some(Syslog {
                facility: Facility::SYSLOG,
                threshold: Severity::Error
            })
        );
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        for (extra, needle) in [
            (
                "use_syslog = maybe\n",
                "use_syslog = maybe is not a boolean",
            ),
            (
                "syslog_log_facility = nowhere\n",
                "syslog_log_facility = nowhere",
            ),
            ("syslog_log_level = LOUD\n", "syslog_log_level = LOUD"),
            (
                "daemon_timeout = ten\n",
                "daemon_timeout = ten is not an integer",
            ),
            (
                "rlimit_nofile = 1k\n",
                "rlimit_nofile = 1k is not an integer",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}{extra}")).unwrap_err();
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn directories_are_required_and_absolute() {
        let err = parse("[DEFAULT]\nexec_dirs = /sbin\n").unwrap_err();
        assert_eq!(err, "[DEFAULT] filters_path is not set");
        let err = parse("[DEFAULT]\nfilters_path = /etc/f\n").unwrap_err();
        assert!(err.contains("exec_dirs is not set"), "{err}");
        assert!(err.contains("PATH"), "{err}");
        let err = parse("[DEFAULT]\nfilters_path = /etc/f\nexec_dirs = sbin\n").unwrap_err();
        assert_eq!(err, "[DEFAULT] exec_dirs: sbin is not an absolute path");
        let err = parse("[DEFAULT]\nfilters_path = ,\nexec_dirs = /sbin\n").unwrap_err();
        assert_eq!(err, "[DEFAULT] filters_path names no directory");
        // Keys of another section do not count.
        assert!(parse("[other]\nfilters_path = /a\nexec_dirs = /b\n").is_err());
    }
}
