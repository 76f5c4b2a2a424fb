//! ironic-inspector: hardware introspection for OpenStack Bare Metal, in Rust.
//!
//! A drop-in replacement for upstream ironic-inspector 2.2 (Liberty): same HTTP API
//! (versions 1.0 to 1.2), same `inspector.conf`, same database schema.
//!
//! # Layout
//!
//! Dependencies point down this list only: a module uses modules listed after it, never one
//! before it. `docs/ARCHITECTURE.md` walks a request and a ramdisk report through them.
//!
//! - [`app`]: builds the shared state, serves the API, stops gracefully.
//! - [`server`]: HTTP/1.1 connections: TLS, the connection limit, client timeouts, clean closes.
//! - [`api`]: HTTP only: version negotiation, routes, error bodies, authentication checks.
//! - [`periodic`]: the firewall refresh and the clean-up loop (timeouts, old statuses), and
//!   at start-up the finishing of reports a stopped daemon left unfinished.
//! - [`process`]: the ramdisk's report: hooks, lookup, Ironic updates, finishing.
//! - [`storage`]: where processed data is kept (Swift or the database) and read back.
//! - [`introspect`]: starting introspection (node checks, lookup attributes, PXE, reboot),
//!   aborting it, and the firewall refresh from Ironic's ports.
//! - [`state`]: the handles every handler and workflow shares ([`state::AppState`]).
//! - [`auth`]: who may call the API (noauth, Keystone tokens).
//! - [`firewall`]: the DHCP filter: the iptables backend, and coalesced refreshes.
//! - [`hooks`]: the processing hooks (`[processing] processing_hooks`) and the
//!   node-not-found hook, built in or external programs (`exec:/path`).
//! - [`rules`]: introspection rules: validation, parsed conditions and actions, applying.
//! - [`ironic_node`]: the Ironic half of a node in processing: its document, ports and patches.
//! - [`node_cache`]: nodes under introspection: states, lookup, options and per-node locks.
//! - [`data`]: the ramdisk's report, checked and normalised once.
//! - [`error`]: the one error type and its HTTP mapping.
//! - [`db`]: the SQL database (SQLite, PostgreSQL, MySQL): every table and query, the
//!   dialects, migrations and fault classification.
//! - [`swift`]: the Swift object store for processed and extra hardware data.
//! - [`ironic`]: the Ironic API client: the calls we make, retries, pagination.
//! - [`keystone`]: the service user's Keystone v3 session: login, token renewal, catalog.
//! - [`http_client`]: outbound HTTP shared by the service clients: client building, the
//!   token header, credential-free URLs and transport failures.
//! - [`retry`]: the one backoff policy of the service clients and the database.
//! - [`telemetry`]: logging set-up: standard error, the log file (reopened on SIGHUP), syslog.
//! - [`config`]: `inspector.conf` into a typed [`config::Config`].
//! - [`cli`]: the command lines of the daemon and of dbsync (also read by the man pages).
//! - [`systemd`]: readiness, stopping and watchdog notifications to the service manager.
//! - [`utc`]: moments in UTC as text: calendar fields, Keystone's ISO 8601 times.
//! - [`mac`]: MAC addresses, parsed once, compared and printed in one form.
//! - [`py`]: the Python semantics 2.2's behaviour depends on (truth, `repr`, `==`, `int()`).
//!
//! The binaries: `ironic-inspector` (`src/main.rs`, the daemon) and `ironic-inspector-dbsync`
//! (`src/bin/dbsync.rs`, the schema tool) are thin layers over this library. The root helper
//! `ironic-inspector-rootwrap` (`src/bin/rootwrap/`) runs as root and deliberately uses none
//! of it.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod data;
pub mod db;
pub mod error;
pub mod firewall;
pub mod hooks;
pub mod http_client;
pub mod introspect;
pub mod ironic;
pub mod ironic_node;
pub mod keystone;
pub mod mac;
pub mod node_cache;
pub mod periodic;
pub mod process;
pub mod py;
pub mod retry;
pub mod rules;
pub mod server;
pub mod state;
pub mod storage;
pub mod swift;
pub mod systemd;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod utc;

pub use error::{Error, Result};
