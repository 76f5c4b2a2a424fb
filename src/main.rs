//! `ironic-inspector`: the introspection daemon.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use ironic_inspector::cli::daemon::Cli;
use ironic_inspector::config::{self, Config};
use ironic_inspector::telemetry::{self, LogSettings};

/// Layers the config files as oslo.config would.
fn config_files(cli: &Cli) -> Result<Vec<PathBuf>, config::ConfigError> {
    let mut files = cli.config_file.clone();
    if files.is_empty() && cli.config_dir.is_empty() {
        files = config::default_config_files();
    }
    for dir in &cli.config_dir {
        files.extend(config::config_dir_files(dir)?);
    }
    Ok(files)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = config_files(&cli).and_then(|files| Config::from_files(&files));
    let (mut config, warnings) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("ironic-inspector: configuration error: {err}");
            return ExitCode::FAILURE;
        }
    };
    if cli.debug {
        config.default.debug = true;
    }
    if cli.log_file.is_some() {
        config.default.log_file = cli.log_file.clone();
    }
    let verbose = cli.verbose || verbose_from_files(&cli);
    if let Err(err) = telemetry::init(&LogSettings::from_config(&config, verbose)) {
        eprintln!("ironic-inspector: cannot open the log: {err}");
        return ExitCode::FAILURE;
    }
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let config_has_log_file = config.default.log_file.is_some();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ironic_inspector::app::run(Arc::new(config))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("ironic-inspector cannot run: {err:#}");
            // With a log file the reason would not reach the console (or systemd's status).
            if config_has_log_file {
                eprintln!("ironic-inspector: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `[DEFAULT] verbose` (default true), read separately because only logging uses it.
fn verbose_from_files(cli: &Cli) -> bool {
    let Ok(files) = config_files(cli) else {
        return true;
    };
    let Ok(raw) = config::oslo::RawConfig::from_files(&files) else {
        return true;
    };
    raw.get("DEFAULT", "verbose")
        .and_then(|v| config::oslo::parse_bool(&v.value))
        .unwrap_or(true)
}
