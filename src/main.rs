//! `ironic-inspector`: the introspection daemon.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use ironic_inspector::cli::daemon::Cli;
use ironic_inspector::config::{self, Config};
use ironic_inspector::systemd::Notifier;
use ironic_inspector::telemetry::{self, LogSettings};

/// The program name: the log file `log_dir` alone gives, and the syslog tag.
const PROGRAM: &str = "ironic-inspector";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Read before the runtime starts its threads; the variables are kept from children.
    let systemd = Notifier::from_env();
    let loaded = config::config_files(&cli.config_file, &cli.config_dir)
        .and_then(|files| Config::from_files(&files));
    let (mut config, warnings) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("{PROGRAM}: configuration error: {err}");
            return ExitCode::FAILURE;
        }
    };
    if cli.debug {
        config.default.debug = true;
    }
    if cli.verbose {
        config.default.verbose = true;
    }
    if cli.log_file.is_some() {
        config.default.log_file = cli.log_file.clone();
    }
    let settings = LogSettings::from_config(&config, PROGRAM);
    let logs = match telemetry::init(&settings) {
        Ok(logs) => logs,
        Err(err) => {
            eprintln!("{PROGRAM}: cannot set up logging: {err}");
            return ExitCode::FAILURE;
        }
    };
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ironic_inspector::app::run(Arc::new(config), systemd, logs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("ironic-inspector cannot run: {err:#}");
            // Without standard error in the log, the reason would not reach the console (or
            // systemd's status).
            if !settings.stderr {
                eprintln!("{PROGRAM}: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}
