//! What the command the helper runs inherits: no environment of the caller's (PATH is the
//! exec_dirs), and default signal handling.

use std::process::Command;

use crate::helpers::{HELPER, Outcome, Setup};

/// A filter file of these tests only, never shipped: `env` and `cat` as root would be
/// dangerous in production (`env` runs any command).
const TEST_FILTERS: &str = "[Filters]\n\
    env: CommandFilter, /usr/bin/env, root\n\
    cat: RegExpFilter, cat, root, cat, /proc/self/status\n";

#[test]
fn the_caller_environment_is_not_passed_on() {
    let Some(setup) = Setup::shipped("the_caller_environment_is_not_passed_on") else {
        return;
    };
    setup.add_filters("test-only.filters", TEST_FILTERS);
    let mut command = Command::new(HELPER);
    command
        .env("ROOTWRAP_TEST_MARKER", "caller-value")
        .env("XTABLES_LIBDIR", "/tmp/evil")
        .env("PATH", "/tmp/evil:/usr/bin")
        .arg(&setup.conf)
        .arg("env");
    let outcome = Outcome::of(&mut command, None);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    assert_eq!(
        outcome.stdout, "PATH=/sbin:/usr/sbin:/bin:/usr/bin\n",
        "{outcome:?}"
    );
    // The absolute path the filter names works too, and so does the RegExpFilter's form.
    let by_path = setup.run(&["/usr/bin/env"]);
    assert_eq!(by_path.stdout, "PATH=/sbin:/usr/sbin:/bin:/usr/bin\n");
    setup
        .run(&["cat", "/etc/shadow"])
        .assert_refused(99, &["cat /etc/shadow (no filter allows it)"]);
}

#[test]
fn the_command_starts_with_default_signal_handling() {
    let Some(setup) = Setup::shipped("the_command_starts_with_default_signal_handling") else {
        return;
    };
    setup.add_filters("test-only.filters", TEST_FILTERS);
    let outcome = setup.run(&["cat", "/proc/self/status"]);
    assert_eq!(outcome.code, Some(0), "{outcome:?}");
    let field = |name: &str| {
        let line = outcome
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {outcome:?}"));
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    // The helper (a Rust program) ignores SIGPIPE; what it runs must start as any program
    // does, or it would get write errors instead of ending quietly when its reader goes.
    const SIGPIPE_BIT: u64 = 1 << (13 - 1);
    assert_eq!(field("SigIgn:") & SIGPIPE_BIT, 0, "{}", outcome.stdout);
    assert_eq!(field("SigBlk:"), 0, "{}", outcome.stdout);
}
