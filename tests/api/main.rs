//! API tests: a real daemon on an ephemeral port, spoken to over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod daemon;
mod discovery;
mod errors;
mod helpers;
mod keystone;
mod load;
mod status;
mod tls;
