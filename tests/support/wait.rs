//! Waiting with a deadline for tests whose checks block (they read files, run commands and
//! poll child processes rather than await a client).

use std::time::{Duration, Instant};

/// Calls `check` every 50 ms until it gives a value; fails the test after `timeout` with
/// what `explain` says then (a log, the state seen last).
pub fn wait_blocking<T>(
    timeout: Duration,
    explain: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {}",
            explain()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
