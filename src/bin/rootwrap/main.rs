//! `ironic-inspector-rootwrap CONFIG COMMAND [ARGS...]`: the root helper the daemon runs its
//! firewall commands through (`[firewall] root_helper`), under sudo.
//!
//! Ports the behaviour of oslo.rootwrap's `oslo_rootwrap/cmd.py` and `wrapper.py` (the
//! `ironic-inspector-rootwrap` of 2.2 was oslo.rootwrap under another name): the same
//! configuration file and filter files, the same exit statuses (99 unauthorized, 98 no
//! command, 97 bad configuration, 96 executable not found; otherwise the command's own), the
//! same syslog messages. Stricter on purpose: executables come from `exec_dirs` only (never
//! the caller's PATH), a command given as a relative path, with `..`, or outside `exec_dirs`
//! is refused, configuration and filter files that others than root can change are refused,
//! unknown filter kinds are errors rather than skipped, and the command gets an empty
//! environment (oslo.rootwrap relied on sudo to clean it).
//!
//! The helper is deliberately separate from the daemon's library crate: it runs as root, so
//! it is kept small enough to read in one sitting.

mod cli;
mod command;
mod config;
mod filters;
mod ini;
mod syslog;
mod trust;

use std::convert::Infallible;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::filters::Decision;
use crate::syslog::Severity;

/// Prefix of every message on standard error.
const NAME: &str = "ironic-inspector-rootwrap";

/// Why the helper stops without running a command.
#[derive(Debug)]
enum Refusal {
    /// No filter allows the command, or its path is not acceptable: exit 99.
    Unauthorized(String),
    /// The command line names no command (or cannot be read): exit 98. Its message is
    /// complete.
    NoCommand(String),
    /// The configuration or a filter file is unreadable, invalid or untrusted: exit 97.
    BadConfig(String),
    /// A filter allows the command but its program is missing or cannot be run: exit 96.
    NotFound(String),
}

impl Refusal {
    /// oslo.rootwrap's exit status for this refusal.
    fn status(&self) -> u8 {
        match self {
            Refusal::Unauthorized(_) => 99,
            Refusal::NoCommand(_) => 98,
            Refusal::BadConfig(_) => 97,
            Refusal::NotFound(_) => 96,
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::Unauthorized(why) => format!("Unauthorized command: {why}"),
            Refusal::NoCommand(why) => why.clone(),
            Refusal::BadConfig(why) => format!("Bad configuration: {why}"),
            Refusal::NotFound(why) => format!("Executable not found: {why}"),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let why = if err.kind() == clap::error::ErrorKind::MissingRequiredArgument {
                "No command given".to_string()
            } else {
                let rendered = err.render().to_string();
                let first = rendered.lines().next().unwrap_or_default();
                format!("Bad command line: {}", first.trim_start_matches("error: "))
            };
            return refuse(&Refusal::NoCommand(format!(
                "{why} (usage: {NAME} CONFIG COMMAND [ARGS...])"
            )));
        }
    };
    match run(cli) {
        Ok(never) => match never {},
        Err(refusal) => refuse(&refusal),
    }
}

fn refuse(refusal: &Refusal) -> ExitCode {
    eprintln!("{NAME}: {}", refusal.message());
    ExitCode::from(refusal.status())
}

/// Loads the configuration and filters, judges the command, and runs it in place of this
/// process; returns only with the reason it is not run.
fn run(cli: Cli) -> Result<Infallible, Refusal> {
    let config = config::load(&cli.config).map_err(Refusal::BadConfig)?;
    let filters = filters::load(&config.filters_path).map_err(Refusal::BadConfig)?;
    let log = |severity: Severity, message: &str| {
        if let Some(syslog) = &config.syslog {
            syslog.log(severity, message);
        }
    };
    let refused = |refusal: Refusal| {
        log(Severity::Error, &refusal.message());
        refusal
    };
    let argv = utf8_argv(&cli.command).map_err(|why| refused(Refusal::Unauthorized(why)))?;
    let Some(command_name) = argv.first() else {
        // clap requires a command; this keeps an empty command line a refusal anyway.
        return Err(Refusal::NoCommand("No command given".to_string()));
    };
    let line = argv.join(" ");
    command::check_path(command_name, &config.exec_dirs)
        .map_err(|why| refused(Refusal::Unauthorized(format!("{line} ({why})"))))?;
    let (filter, program) = match filters::decide(&filters, &argv, &config.exec_dirs) {
        Decision::Run { filter, program } => (filter, program),
        Decision::NotExecutable(filter) => {
            let where_ = if filter.exec.starts_with('/') {
                "does not exist or is not executable".to_string()
            } else {
                format!(
                    "is in no directory of exec_dirs ({})",
                    command::list(&config.exec_dirs)
                )
            };
            return Err(refused(Refusal::NotFound(format!(
                "{} {where_} (filter {})",
                filter.exec, filter.name
            ))));
        }
        Decision::NoFilter => {
            return Err(refused(Refusal::Unauthorized(format!(
                "{line} (no filter allows it)"
            ))));
        }
    };
    log(
        Severity::Info,
        &format!(
            "({} > root) Executing {} {} (filter match = {})",
            caller(),
            program.display(),
            argv.get(1..).unwrap_or_default().join(" "),
            filter.name
        ),
    );
    let err = command::exec(
        &program,
        cli.command.get(1..).unwrap_or_default(),
        &config.exec_dirs,
    );
    Err(refused(Refusal::NotFound(format!(
        "cannot run {}: {err} (filter {})",
        program.display(),
        filter.name
    ))))
}

/// The command line as strings; filters judge text, and no command of ours needs other
/// bytes.
fn utf8_argv(words: &[OsString]) -> Result<Vec<String>, String> {
    words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            word.to_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{} (word {i} is not valid UTF-8)", word.to_string_lossy()))
        })
        .collect()
}

/// Who asked, for the log: the user sudo names, or the real user id.
fn caller() -> String {
    if let Some(user) = std::env::var_os("SUDO_USER") {
        return user.to_string_lossy().into_owned();
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .next()
                .map(|uid| format!("uid {uid}"))
        })
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn everything_after_the_command_is_the_commands_even_help_and_version() {
        let cli = Cli::try_parse_from([
            NAME,
            "/etc/rw.conf",
            "iptables",
            "--version",
            "-h",
            "--help",
            "-w",
        ])
        .unwrap();
        assert_eq!(cli.config, std::path::PathBuf::from("/etc/rw.conf"));
        assert_eq!(
            cli.command,
            ["iptables", "--version", "-h", "--help", "-w"].map(OsString::from)
        );
    }

    #[test]
    fn a_missing_command_is_a_usage_error() {
        let err = Cli::try_parse_from([NAME, "/etc/rw.conf"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn exit_statuses_are_oslo_rootwraps() {
        let s = String::new;
        assert_eq!(Refusal::Unauthorized(s()).status(), 99);
        assert_eq!(Refusal::NoCommand(s()).status(), 98);
        assert_eq!(Refusal::BadConfig(s()).status(), 97);
        assert_eq!(Refusal::NotFound(s()).status(), 96);
    }
}
