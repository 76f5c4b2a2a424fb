//! The root helper `ironic-inspector-rootwrap` as the daemon uses it, and the daemon without
//! any root helper (capabilities only). These tests run as root: the helper refuses files
//! that root does not own, and network namespaces need root. Without root, or when the
//! kernel refuses a namespace, a test prints a skip line, except under CI (env `CI` set),
//! where a missing tool or privilege fails it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capabilities;
mod daemon;
mod environment;
mod helpers;
#[path = "../support/namespace.rs"]
mod namespace;
mod netns;
mod refusals;
mod through_helper;
#[path = "../support/wait.rs"]
mod wait;
