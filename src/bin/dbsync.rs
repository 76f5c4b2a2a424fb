//! `ironic-inspector-dbsync`: creates and migrates the database schema.
//!
//! Ports `ironic_inspector/dbsync.py`, which wrapped alembic's commands. The commands, their
//! `--revision` arguments and their output follow alembic's, so operators' scripts keep
//! working and the Python tool can take over a database this one migrated (and back). The
//! database is the one the daemon uses: `[database] connection`, or the deprecated
//! `[discoverd] database`. This is the only program that changes the schema.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ironic_inspector::config::{self, Config};
use ironic_inspector::db::{Db, DbError, migrate};
use ironic_inspector::telemetry::{self, LogSettings};

/// Creates and migrates the ironic-inspector database (alembic-compatible).
#[derive(Parser, Debug)]
#[command(name = "ironic-inspector-dbsync", version)]
struct Cli {
    /// Configuration file (repeatable; later files override earlier ones). Without one, the
    /// standard locations of ironic-inspector.conf are tried.
    #[arg(long = "config-file", value_name = "PATH", global = true)]
    config_file: Vec<PathBuf>,
    /// Directory whose *.conf files are read, in name order, after the --config-file ones.
    #[arg(long = "config-dir", value_name = "DIR", global = true)]
    config_dir: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Upgrade the schema to a later revision (default: head).
    Upgrade {
        /// Target revision: an id, a unique prefix of one, or `head`.
        #[arg(long, value_name = "REV")]
        revision: Option<String>,
    },
    /// Revert the schema to an earlier revision, or to `base` (drops every table).
    Downgrade {
        /// Target revision: an id, a unique prefix of one, or `base`.
        #[arg(long, value_name = "REV")]
        revision: String,
    },
    /// Record a revision as current without running any migration (`base` clears it).
    Stamp {
        /// Revision to record.
        #[arg(long, value_name = "REV")]
        revision: String,
    },
    /// Show the details of one revision.
    Show {
        /// Revision to show.
        #[arg(long, value_name = "REV")]
        revision: String,
    },
    /// Print the revision the database is at.
    Current,
    /// Print every revision, newest first.
    History,
    /// Print the head revision(s).
    Heads,
    /// Print branch points (there are none).
    Branches,
    /// Developer command of the Python tool (create a migration script); not supported.
    Revision {
        /// Message of the new revision.
        #[arg(short, long)]
        message: Option<String>,
        /// Compare the models with the database.
        #[arg(long)]
        autogenerate: bool,
    },
    /// Developer command of the Python tool (open a migration in an editor); not supported.
    Edit {
        /// Revision to edit.
        #[arg(long, value_name = "REV")]
        revision: String,
    },
}

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
    let mut files = cli.config_file.clone();
    if files.is_empty() && cli.config_dir.is_empty() {
        files = config::default_config_files();
    }
    for dir in &cli.config_dir {
        files.extend(config::config_dir_files(dir).map_err(|e| e.to_string())?);
    }
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
