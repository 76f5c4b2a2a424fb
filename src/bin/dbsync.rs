//! `ironic-inspector-dbsync`: creates and migrates the database schema.
//!
//! Ports `ironic_inspector/dbsync.py`, which wrapped alembic's commands. The commands, their
//! `--revision` arguments and their output follow alembic's, so operators' scripts keep
//! working and the Python tool can take over a database this one migrated (and back). The
//! database is the one the daemon uses: `[database] connection`, or the deprecated
//! `[discoverd] database`. This is the only program that changes the schema.

use std::process::ExitCode;

use clap::Parser;
use ironic_inspector::cli::dbsync::{Cli, Command};
use ironic_inspector::config::{self, Config};
use ironic_inspector::db::{Db, DbError, migrate};
use ironic_inspector::telemetry::{self, LogSettings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return failed(&format!("cannot start the async runtime: {err}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => failed(&message),
    }
}

/// Reports a failure the way the Python tool does.
fn failed(message: &str) -> ExitCode {
    eprintln!("FAILED: {message}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> Result<(), String> {
    // Commands that need no database.
    match &cli.command {
        Command::History => {
            migrate::history()
                .iter()
                .for_each(|line| println!("{line}"));
            return Ok(());
        }
        Command::Heads => {
            migrate::heads().iter().for_each(|line| println!("{line}"));
            return Ok(());
        }
        Command::Branches => {
            migrate::branches()
                .iter()
                .for_each(|line| println!("{line}"));
            return Ok(());
        }
        Command::Show { revision } => {
            print!("{}", migrate::show(revision).map_err(|e| e.to_string())?);
            return Ok(());
        }
        Command::Revision { .. } | Command::Edit { .. } => {
            return Err(
                "creating or editing revisions is a developer task: add SQL files under \
                 migrations/ and a revision in src/db/migrate.rs (see migrations/README.md)"
                    .to_string(),
            );
        }
        _ => {}
    }

    let db = open(&cli).await?;
    let result = execute(&db, &cli.command).await;
    db.close().await;
    result.map_err(|e| e.to_string())
}

/// Loads the configuration like the daemon and connects to its database.
async fn open(cli: &Cli) -> Result<Db, String> {
    let files =
        config::config_files(&cli.config_file, &cli.config_dir).map_err(|e| e.to_string())?;
    let (config, warnings) = Config::from_files(&files).map_err(|e| e.to_string())?;
    for warning in warnings {
        eprintln!("WARNING: {warning}");
    }
    // Warnings of the library on standard error: above all each failed attempt to reach
    // the database, so an operator sees what the tool is waiting for. Upstream's tool read
    // the logging options but never set up oslo.log, so the log file and syslog options do
    // not apply here (its output belongs to whoever runs it: a terminal, a unit's journal);
    // `debug` does.
    let settings = LogSettings {
        debug: config.default.debug,
        ..LogSettings::default()
    };
    telemetry::init(&settings).map_err(|e| e.to_string())?;
    Db::connect(&config.database)
        .await
        .map_err(|e| e.to_string())
}

async fn execute(db: &Db, command: &Command) -> Result<(), DbError> {
    let log_step = |step: &migrate::Step| eprintln!("INFO  {step}");
    match command {
        Command::Upgrade { revision } => {
            let target = revision.as_deref().unwrap_or("head");
            migrate::upgrade(db, target, log_step).await?;
        }
        Command::Downgrade { revision } => {
            migrate::downgrade(db, revision, log_step).await?;
        }
        Command::Stamp { revision } => {
            migrate::stamp(db, revision).await?;
        }
        Command::Current => {
            // A revision this version does not know is an error, as alembic reports it.
            let point = migrate::current_point(db).await?;
            if let Some(id) = point.id() {
                println!("{}", migrate::describe_current(id));
            }
        }
        Command::History
        | Command::Heads
        | Command::Branches
        | Command::Show { .. }
        | Command::Revision { .. }
        | Command::Edit { .. } => {}
    }
    Ok(())
}
