//! The command lines of the daemon and of `ironic-inspector-dbsync`.
//!
//! They live in the library, not in the binaries, so that the man pages can be generated from
//! the same definitions (`examples/manpages.rs`).

/// `ironic-inspector`.
pub mod daemon {
    use std::path::PathBuf;

    use clap::Parser;

    /// Hardware introspection daemon for OpenStack Bare Metal (ironic-inspector 2.2 API).
    #[derive(Parser, Debug)]
    #[command(name = "ironic-inspector", version, about)]
    pub struct Cli {
        /// Configuration file (repeatable; later files override earlier ones). Without one, the
        /// first of ~/.ironic-inspector/ironic-inspector.conf, ~/ironic-inspector.conf,
        /// /etc/ironic-inspector/ironic-inspector.conf and /etc/ironic-inspector.conf is read.
        #[arg(long = "config-file", value_name = "PATH")]
        pub config_file: Vec<PathBuf>,
        /// Directory whose *.conf files are read, in name order, after the --config-file ones.
        #[arg(long = "config-dir", value_name = "DIR")]
        pub config_dir: Vec<PathBuf>,
        /// Log at debug level (overrides [DEFAULT] debug).
        #[arg(short, long)]
        pub debug: bool,
        /// Log at info level (overrides [DEFAULT] verbose).
        #[arg(short, long)]
        pub verbose: bool,
        /// Log to this file (overrides [DEFAULT] log_file).
        #[arg(long = "log-file", value_name = "PATH")]
        pub log_file: Option<PathBuf>,
    }
}

/// `ironic-inspector-dbsync`.
pub mod dbsync {
    use std::path::PathBuf;

    use clap::{Parser, Subcommand};

    /// Creates and migrates the ironic-inspector database (alembic-compatible).
    #[derive(Parser, Debug)]
    #[command(name = "ironic-inspector-dbsync", version)]
    pub struct Cli {
        /// Configuration file (repeatable; later files override earlier ones). Without one, the
        /// standard locations of ironic-inspector.conf are tried.
        #[arg(long = "config-file", value_name = "PATH", global = true)]
        pub config_file: Vec<PathBuf>,
        /// Directory whose *.conf files are read, in name order, after the --config-file ones.
        #[arg(long = "config-dir", value_name = "DIR", global = true)]
        pub config_dir: Vec<PathBuf>,
        #[command(subcommand)]
        pub command: Command,
    }

    /// The commands, alembic's verbs.
    #[derive(Subcommand, Debug)]
    pub enum Command {
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
}
