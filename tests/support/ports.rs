//! Loopback ports for servers a test starts after choosing the port (a private database
//! server, the daemon binary, a port that must stay closed).
//!
//! A port the kernel hands out for `bind(":0")` comes from its ephemeral range, the same range
//! it picks the local ports of outgoing connections from. Between the moment a test chooses
//! such a port and the moment its server binds it, one of the many connections a test run
//! opens may be given that port, and the server then fails with "Address already in use"
//! (seen with a private MariaDB). So ports are taken below the ephemeral range, where the
//! kernel never assigns one by itself, and each is handed out once per test process.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// The range ports are taken from, when it lies below the ephemeral range (Linux's default
/// starts at 32768); above it, the lower end of the ephemeral range bounds it.
const FIRST: u32 = 20_000;
const LAST: u32 = 32_000;

/// How many ports this process has handed out.
static HANDED_OUT: AtomicU32 = AtomicU32::new(0);

/// A loopback port that nothing listens on now, outside the kernel's ephemeral range, not
/// handed out before by this process.
pub fn free_port() -> u16 {
    let last = ephemeral_start().map_or(LAST, |start| LAST.min(start.saturating_sub(1)));
    let span = last.saturating_sub(FIRST).max(1);
    // Test processes of one run start at different places in the range.
    let offset = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        let Ok(port) = u16::try_from(FIRST + (offset + n) % span) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {FIRST} and {last}");
}

/// The first port of the kernel's ephemeral range, when it can be read.
fn ephemeral_start() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
