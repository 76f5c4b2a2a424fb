//! The Debian package: built by `scripts/package`, inspected with `dpkg-deb` and lintian,
//! then installed on this machine, run as its service user, upgraded, removed and purged.
//!
//! Installing a package and creating a system user changes the machine, so these tests run
//! only when `INSPECTOR_TEST_PACKAGE=1` (scripts/test sets it, on CI's throw-away machine,
//! as root); otherwise each prints a skip line. They own `/etc/ironic-inspector`,
//! `/var/lib/ironic-inspector` and the package `ironic-inspector`, and hold a lock file
//! while they use them, so two runs on one machine take turns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contents;
mod deb;
mod lifecycle;
mod lintian;
mod manpages;
#[path = "../support/namespace.rs"]
mod namespace;
#[path = "../support/wait.rs"]
mod wait;
