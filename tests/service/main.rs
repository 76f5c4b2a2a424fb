//! The daemon binary under a service manager: systemd's notifications, the logging options,
//! SIGHUP, and the unit files of `packaging/systemd/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../e2e/daemon_binary.rs"]
mod daemon_binary;
#[allow(dead_code)] // shared with the api tests, which use all of it
#[path = "../api/helpers.rs"]
mod helpers;
mod launch;
mod log_reopen;
mod logging;
mod notify;
#[path = "../support/ports.rs"]
mod ports;
mod units;
