//! The command line of `ironic-inspector-rootwrap`.
//!
//! This file depends on clap and std only: the manual-page generator includes it by path and
//! renders [`Cli`]'s definition, so nothing else of the helper may be named here.

use std::ffi::OsString;
use std::path::PathBuf;

/// Runs one command as root, if a filter allows it (a root helper for ironic-inspector).
#[derive(clap::Parser, Debug)]
#[command(
    name = "ironic-inspector-rootwrap",
    version,
    about = "Runs one command as root, if a filter of the configuration allows it",
    long_about = "Runs one command as root for ironic-inspector, if a filter allows it.\n\n\
        The daemon calls it through sudo as its [firewall] root_helper, followed by the command \
        it wants to run (iptables or iptables-restore). The configuration file names the \
        directories of filter files ([DEFAULT] filters_path) and the only directories in which \
        commands are looked up ([DEFAULT] exec_dirs); the caller's PATH is never searched. A \
        command that no filter allows is refused. The command runs in place of the helper with \
        an empty environment (PATH set to exec_dirs) and the helper's standard input, output \
        and error, so its exit status is the helper's.\n\n\
        The configuration file, the filter directories and the filter files must be owned by \
        root and writable by nobody else.\n\n\
        Exit status: the command's own, or 99 when the command is not allowed, 98 when no \
        command is given, 97 when the configuration or a filter file is unreadable, invalid or \
        writable by others than root, 96 when an allowed command is found in no directory of \
        exec_dirs or cannot be run."
)]
pub struct Cli {
    /// The helper's configuration file (rootwrap.conf).
    #[arg(value_name = "CONFIG")]
    pub config: PathBuf,
    /// The command to run, then its arguments, passed on unchanged. The command is a name
    /// looked up in exec_dirs, or an absolute path inside one of them. Everything after it
    /// belongs to the command, `--help` included.
    #[arg(
        value_names = ["COMMAND", "ARGS"],
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}
