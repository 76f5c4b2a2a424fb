//! The caller's command: whether the path it gives may be considered at all, and running
//! the allowed program in place of the helper.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Why the command's own name or path is refused before any filter is asked: a command is
/// a file name looked up in `exec_dirs`, or an absolute path inside one of them. Relative
/// paths (the caller's working directory), `..` and absolute paths elsewhere would let the
/// caller pick a program the operator never listed.
pub fn check_path(command: &str, exec_dirs: &[PathBuf]) -> Result<(), String> {
    if command.is_empty() {
        return Err("the command is empty".to_string());
    }
    if command.contains("..") {
        return Err("the command contains `..`".to_string());
    }
    if !command.contains('/') {
        return Ok(());
    }
    if !command.starts_with('/') {
        return Err(
            "a relative path; give a name looked up in exec_dirs or an absolute path".to_string(),
        );
    }
    let dir = Path::new(command).parent().unwrap_or(Path::new("/"));
    if exec_dirs.iter().any(|allowed| allowed == dir) {
        Ok(())
    } else {
        Err(format!(
            "{} is not one of exec_dirs ({})",
            dir.display(),
            list(exec_dirs)
        ))
    }
}

/// `exec_dirs` for messages.
pub fn list(exec_dirs: &[PathBuf]) -> String {
    exec_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Replaces the helper with `program`, given `args`, the helper's standard streams, and an
/// environment of `PATH` (the exec_dirs) alone: nothing the caller set (`LD_PRELOAD`,
/// `XTABLES_LIBDIR`, ...) reaches a program running as root. The program's exit status, or
/// the signal that ends it, is then the helper's own. Returns only when the program could
/// not be started.
pub fn exec(program: &Path, args: &[OsString], exec_dirs: &[PathBuf]) -> std::io::Error {
    let mut command = std::process::Command::new(program);
    command.args(args).env_clear();
    // A directory with a `:` in it cannot be part of PATH; the program then gets none.
    if let Ok(path) = std::env::join_paths(exec_dirs) {
        command.env("PATH", path);
    }
    command.exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> Vec<PathBuf> {
        vec![PathBuf::from("/sbin"), PathBuf::from("/usr/bin/")]
    }

    #[test]
    fn names_and_absolute_paths_in_exec_dirs_pass() {
        check_path("iptables", &dirs()).unwrap();
        check_path("/sbin/iptables", &dirs()).unwrap();
        check_path("/usr/bin/env", &dirs()).unwrap();
        check_path("/usr//bin/env", &dirs()).unwrap();
    }

    #[test]
    fn relative_parent_and_outside_paths_are_refused() {
        for (command, needle) in [
            ("./iptables", "a relative path"),
            ("sbin/iptables", "a relative path"),
            ("../sbin/iptables", "contains `..`"),
            ("/sbin/../tmp/iptables", "contains `..`"),
            ("..", "contains `..`"),
            (
                "/tmp/iptables",
                "/tmp is not one of exec_dirs (/sbin, /usr/bin/)",
            ),
            ("/usr/sbin/iptables", "/usr/sbin is not one of exec_dirs"),
            ("/sbin/sub/iptables", "/sbin/sub is not one of exec_dirs"),
            ("/iptables", "/ is not one of exec_dirs"),
            ("", "empty"),
        ] {
            let err = check_path(command, &dirs()).unwrap_err();
            assert!(err.contains(needle), "{command}: {err}");
        }
    }
}
