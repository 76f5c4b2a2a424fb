//! API tests: a real daemon on an ephemeral port, spoken to over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod connections;
mod daemon;
#[path = "../e2e/daemon_binary.rs"]
mod daemon_binary;
mod discovery;
mod enroll;
mod errors;
mod exec_hooks;
mod fake_ironic;
mod helpers;
mod hooks;
mod introspect_faults;
mod ironic_client;
mod ironic_driven;
mod keystone;
mod load;
mod periodic;
#[path = "../support/ports.rs"]
mod ports;
mod process_faults;
mod rules;
mod rules_engine;
#[path = "../support/service_env.rs"]
mod service_env;
mod status;
mod swift;
mod tls;
