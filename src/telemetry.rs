//! Logging set-up: one `tracing` subscriber for the whole process.
//!
//! Replaces upstream's oslo.log set-up in `main.py`. `[DEFAULT] debug` gives debug level,
//! `verbose = false` gives warnings only, otherwise info; `RUST_LOG` overrides both.
//! `[DEFAULT] log_file` (relative to `log_dir`) redirects the log from standard error.
//! Nothing here formats secrets: callers keep passwords and tokens in `SecretString`.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// Where and how verbosely to log.
#[derive(Clone, Debug, Default)]
pub struct LogSettings {
    /// Debug level.
    pub debug: bool,
    /// Info level (otherwise warnings only) when not debugging.
    pub verbose: bool,
    /// File to append to instead of standard error.
    pub file: Option<PathBuf>,
}

impl LogSettings {
    /// Settings from the `[DEFAULT]` logging options.
    pub fn from_config(config: &crate::config::Config, verbose: bool) -> Self {
        let file = config.default.log_file.as_ref().map(|file| {
            match (&config.default.log_dir, file.is_relative()) {
                (Some(dir), true) => dir.join(file),
                _ => file.clone(),
            }
        });
        LogSettings {
            debug: config.default.debug,
            verbose,
            file,
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

/// Installs the global subscriber. Call once, at start-up; a second call is a no-op.
pub fn init(settings: &LogSettings) -> std::io::Result<()> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(settings.filter())
        .with_target(true);
    let result = match &settings.file {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .try_init()
        }
        // Colours only for a person at a terminal, not for journald or a redirected log.
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init(),
    };
    // An already-installed subscriber (tests) is fine.
    let _ = result;
    Ok(())
}
