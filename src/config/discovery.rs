//! Which config files are read: the default search when the command line names none, and
//! the files of a `--config-dir`.
//!
//! Follows oslo.config for program `ironic-inspector`: [`config_files`] puts the
//! `--config-file`s first, in the order given, then each `--config-dir`'s files; the caller
//! layers them all with [`Config::from_files`](super::Config::from_files).

use std::path::{Path, PathBuf};

use super::oslo;
use super::types::ConfigError;

/// The files oslo.config would read for program `ironic-inspector` when none is given.
pub fn default_config_files() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        candidates.push(home.join(".ironic-inspector/ironic-inspector.conf"));
        candidates.push(home.join("ironic-inspector.conf"));
    }
    candidates.push(PathBuf::from("/etc/ironic-inspector/ironic-inspector.conf"));
    candidates.push(PathBuf::from("/etc/ironic-inspector.conf"));
    candidates
        .into_iter()
        .filter(|p| p.is_file())
        .take(1)
        .collect()
}

/// Lists `DIR/*.conf` in sorted order, as `--config-dir` does.
pub fn config_dir_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|source| oslo::ParseError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "conf") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// The files the daemon and dbsync read, from their `--config-file` and `--config-dir`
/// options: the default search only when both are empty.
///
/// # Errors
/// A `--config-dir` that cannot be listed.
pub fn config_files(
    config_file: &[PathBuf],
    config_dir: &[PathBuf],
) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = config_file.to_vec();
    if files.is_empty() && config_dir.is_empty() {
        files = default_config_files();
    }
    for dir in config_dir {
        files.extend(config_dir_files(dir)?);
    }
    Ok(files)
}
