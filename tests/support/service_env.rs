//! How a test learns of a running service: `scripts/test` starts each one and exports its
//! address in a variable (`scripts/services/*.sh` print what to export). Without it a test
//! prints a skip line and passes, except under CI (`CI` set), where every service must run.

/// The value of `var`, or `None` after printing that `what` (the test, or what it checks) is
/// skipped; a panic when `CI` is set.
pub fn service_var(var: &str, what: &str) -> Option<String> {
    if let Some(value) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        return Some(value);
    }
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "{what}: {var} is not set but CI is: start the service (scripts/test does, see \
         scripts/services/) and export what its script prints"
    );
    println!("{what}: skipped: {var} is not set (see scripts/services/)");
    None
}
