//! Database integration tests, one binary: the `ironic-inspector-dbsync` command on SQLite,
//! the node-cache contract on SQLite, PostgreSQL and MySQL, interoperability with the
//! Python ironic-inspector's own dbsync, and database faults: connecting at start-up
//! (refused logins, unreachable servers) and what a real server's errors are classified as.
//! The fault tests that stop a server run a private one (`private_server`).
//!
//! PostgreSQL, MySQL and the Python tool are optional locally: without
//! `INSPECTOR_TEST_POSTGRES_URL`, `INSPECTOR_TEST_MYSQL_URL` or `INSPECTOR_TEST_PY_DBSYNC`
//! those tests print a "skipped" line and pass, unless `CI` is set, where they fail.
//! `scripts/services/*.sh` start the services and print the values to export.

// clippy's allow-unwrap-in-tests does not reach helper functions under tests/.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod connect;
mod contract;
mod dbsync_cli;
mod helpers;
mod interop;
#[path = "../support/ports.rs"]
mod ports;
mod private_server;
mod rules_contract;
mod server_faults;
mod servers;
#[path = "../support/service_env.rs"]
mod service_env;
