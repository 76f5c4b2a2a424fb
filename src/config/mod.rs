//! Configuration: oslo.config INI files into one typed [`Config`].
//!
//! Ports `ironic_inspector/conf.py` (and the options that `common/swift.py`, oslo.db,
//! oslo.log and keystonemiddleware registered). Option names, sections, types, defaults and
//! deprecated aliases are upstream's; every option is declared once in [`spec::OPTIONS`], which
//! also drives the check that `example.conf` documents them all. This module only reads and
//! validates: it never opens a database, a socket or a file other than the config files.
//!
//! # Layout
//!
//! Dependencies point down this list only.
//!
//! - this file: [`Config::from_files`], the whole load: read and layer the files, build the
//!   configuration, check the files' permissions.
//! - `sections`: [`Config::from_raw`]: each section built from resolved values, with the
//!   checks that span options.
//! - `permissions`: the warning about a file that holds a password and every user may read.
//! - `discovery`: which files are read: [`config_files`], [`default_config_files`],
//!   [`config_dir_files`].
//! - `resolve`: one option's value: written, deprecated spelling or default; `$name`
//!   references; its type. Errors name the option and hide secrets.
//! - `types`: [`Config`], one struct per section, the choice enums, [`ConfigError`].
//! - [`spec`]: the table of every option: section, name, type, default, aliases, help.
//! - [`oslo`]: the INI dialect: parsing, layering files, `$name` interpolation.

mod discovery;
pub mod oslo;
mod permissions;
mod resolve;
mod sections;
pub mod spec;
mod types;

use std::path::PathBuf;

pub use discovery::{config_dir_files, config_files, default_config_files};
pub use types::{
    AddPorts, AuthStrategy, Config, ConfigError, DatabaseSection, DefaultSection, DiscoverySection,
    FirewallSection, IronicSection, KeepPorts, KeystoneAuthtoken, OsloMiddleware,
    ProcessingSection, StoreData, SwiftSection, SyslogFacility,
};

impl Config {
    /// Reads `files` in order (later ones override earlier ones) and validates every option.
    /// Returns the configuration and the warnings to log once logging is set up.
    pub fn from_files(files: &[PathBuf]) -> Result<(Config, Vec<String>), ConfigError> {
        let raw = oslo::RawConfig::from_files(files)?;
        let (config, mut warnings) = Self::from_raw(&raw)?;
        warnings.extend(permissions::world_readable_secrets(files, &raw));
        Ok((config, warnings))
    }
}

/// The configuration from one file's text (named `test.conf` in messages), for the tests of
/// its submodules.
#[cfg(test)]
fn load(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
    let mut raw = oslo::RawConfig::default();
    raw.merge_str(text, std::path::Path::new("test.conf"))
        .unwrap();
    Config::from_raw(&raw)
}
