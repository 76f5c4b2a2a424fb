//! Commands and configurations the helper refuses, each with oslo.rootwrap's exit status
//! and a message naming the reason; nothing is run.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::helpers::{EXEC_DIRS, HELPER, Outcome, Setup, chmod, write};

/// Writes an executable script at `path` that would leave `marker` behind if it ran.
fn trap(path: &std::path::Path, marker: &std::path::Path) {
    write(
        path,
        &format!("#!/bin/sh\ntouch {}\n", marker.display()),
        0o755,
    );
}

#[test]
fn a_shell_is_not_allowed() {
    let Some(setup) = Setup::shipped("a_shell_is_not_allowed") else {
        return;
    };
    setup.run(&["/bin/sh", "-c", "id"]).assert_refused(
        99,
        &["Unauthorized command: /bin/sh -c id (no filter allows it)"],
    );
    setup.run(&["sh", "-c", "id"]).assert_refused(
        99,
        &["Unauthorized command: sh -c id (no filter allows it)"],
    );
    // An allowed name given by an absolute path the filter does not name.
    setup
        .run(&["/usr/sbin/iptables", "-S"])
        .assert_refused(99, &["/usr/sbin/iptables -S (no filter allows it)"]);
}

#[test]
fn relative_paths_are_refused_even_to_an_allowed_name() {
    let Some(setup) = Setup::shipped("relative_paths_are_refused_even_to_an_allowed_name") else {
        return;
    };
    // The caller's working directory holds an `iptables` of its own, and a `sbin` beside it.
    let cwd = setup.dir.path().join("work");
    std::fs::create_dir_all(cwd.join("sub")).unwrap();
    std::fs::create_dir_all(setup.dir.path().join("sbin")).unwrap();
    let marker = setup.dir.path().join("ran");
    trap(&cwd.join("iptables"), &marker);
    trap(&setup.dir.path().join("sbin/iptables"), &marker);
    let run = |argv: &[&str]| {
        let mut command = Command::new(HELPER);
        command
            .current_dir(cwd.join("sub"))
            .arg(&setup.conf)
            .args(argv);
        Outcome::of(&mut command, None)
    };
    run(&["./iptables", "-S"]).assert_refused(
        99,
        &["Unauthorized command: ./iptables -S (a relative path"],
    );
    run(&["../iptables", "-S"]).assert_refused(99, &["../iptables -S (the command contains `..`)"]);
    run(&["../../sbin/iptables", "-S"])
        .assert_refused(99, &["../../sbin/iptables -S (the command contains `..`)"]);
    run(&["/usr/sbin/../../tmp/iptables"]).assert_refused(99, &["contains `..`"]);
    assert!(!marker.exists(), "a refused command ran");
}

#[test]
fn an_absolute_path_outside_exec_dirs_is_refused() {
    let Some(setup) = Setup::shipped("an_absolute_path_outside_exec_dirs_is_refused") else {
        return;
    };
    // Even a filter naming that very path does not let it through.
    let tool = setup.dir.path().join("iptables");
    let marker = setup.dir.path().join("ran");
    trap(&tool, &marker);
    setup.add_filters(
        "outside.filters",
        &format!(
            "[Filters]\noutside: CommandFilter, {}, root\n",
            tool.display()
        ),
    );
    let tool = tool.to_str().unwrap();
    setup.run(&[tool, "-S"]).assert_refused(
        99,
        &[
            &format!("Unauthorized command: {tool} -S"),
            &format!("{} is not one of exec_dirs", setup.dir.path().display()),
        ],
    );
    assert!(!marker.exists(), "a refused command ran");
}

#[test]
fn no_command_is_refused() {
    let Some(setup) = Setup::shipped("no_command_is_refused") else {
        return;
    };
    setup
        .run(&[])
        .assert_refused(98, &["No command given", "usage:"]);
    let outcome = Outcome::of(&mut Command::new(HELPER), None);
    outcome.assert_refused(98, &["No command given"]);
}

#[test]
fn a_filter_file_others_can_change_is_refused() {
    let Some(setup) = Setup::shipped("a_filter_file_others_can_change_is_refused") else {
        return;
    };
    let file = setup.filters.join("ironic-inspector-firewall.filters");
    chmod(&file, 0o664);
    setup.run(&["iptables", "--version"]).assert_refused(
        97,
        &[
            "Bad configuration: filter file",
            "ironic-inspector-firewall.filters is writable by its group (mode 0664)",
        ],
    );
    chmod(&file, 0o644);
    std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
    setup
        .run(&["iptables", "--version"])
        .assert_refused(97, &["is owned by uid 65534, not by root"]);
    std::os::unix::fs::chown(&file, Some(0), None).unwrap();
    // The directory, too: anyone could add a filter file to it.
    chmod(&setup.filters, 0o777);
    setup.run(&["iptables", "--version"]).assert_refused(
        97,
        &[
            "filter directory",
            "writable by its group and by others (mode 0777)",
        ],
    );
    chmod(&setup.filters, 0o755);
    let ok = setup.run(&["iptables", "--version"]);
    assert_eq!(ok.code, Some(0), "{ok:?}");
}

#[test]
fn a_configuration_file_others_can_change_is_refused() {
    let Some(setup) = Setup::shipped("a_configuration_file_others_can_change_is_refused") else {
        return;
    };
    chmod(&setup.conf, 0o646);
    setup.run(&["iptables", "--version"]).assert_refused(
        97,
        &[
            "Bad configuration: configuration file",
            "rootwrap.conf is writable by others (mode 0646)",
        ],
    );
}

#[test]
fn unknown_and_unsupported_filter_kinds_are_configuration_errors() {
    let Some(setup) =
        Setup::shipped("unknown_and_unsupported_filter_kinds_are_configuration_errors")
    else {
        return;
    };
    let file = setup.add_filters(
        "zz-extra.filters",
        "[Filters]\nnew: SuperFilter, iptables, root\n",
    );
    // Refused although the command itself would pass the shipped filter.
    setup.run(&["iptables", "--version"]).assert_refused(
        97,
        &["zz-extra.filters: [Filters] new: unknown filter kind \"SuperFilter\""],
    );
    write(
        &file,
        "[Filters]\nenv: EnvFilter, env, root, LD_PRELOAD=, iptables\n",
        0o644,
    );
    setup.run(&["iptables", "--version"]).assert_refused(
        97,
        &["filter kind EnvFilter is not supported by this helper"],
    );
    write(&file, "[Filters]\nip: CommandFilter, ip, nova\n", 0o644);
    setup.run(&["iptables", "--version"]).assert_refused(
        97,
        &["runs as \"nova\"; this helper only runs commands as root"],
    );
}

#[test]
fn a_missing_or_malformed_configuration_is_refused() {
    let Some(setup) = Setup::shipped("a_missing_or_malformed_configuration_is_refused") else {
        return;
    };
    let missing = setup.dir.path().join("missing.conf");
    let mut command = Command::new(HELPER);
    command.arg(&missing).args(["iptables", "-S"]);
    Outcome::of(&mut command, None).assert_refused(
        97,
        &[&format!(
            "Bad configuration: cannot read configuration file {}: No such file",
            missing.display()
        )],
    );
    write(&setup.conf, "[DEFAULT]\nfilters_path = /nowhere\n", 0o644);
    setup
        .run(&["iptables", "-S"])
        .assert_refused(97, &["exec_dirs is not set"]);
    write(&setup.conf, "filters_path = /nowhere\n", 0o644);
    setup.run(&["iptables", "-S"]).assert_refused(
        97,
        &["rootwrap.conf: line 1: an entry before any [section] header"],
    );
    setup.write_conf(EXEC_DIRS, "use_syslog = perhaps\n");
    setup
        .run(&["iptables", "-S"])
        .assert_refused(97, &["use_syslog = perhaps is not a boolean"]);
}

#[test]
fn an_allowed_name_missing_from_exec_dirs_is_not_found_and_path_is_not_searched() {
    let Some(setup) = Setup::shipped(
        "an_allowed_name_missing_from_exec_dirs_is_not_found_and_path_is_not_searched",
    ) else {
        return;
    };
    // The caller's PATH holds the allowed name; exec_dirs does not.
    let bin = setup.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let marker = setup.dir.path().join("ran");
    trap(&bin.join("rootwrap-test-tool"), &marker);
    assert!(
        std::fs::metadata(bin.join("rootwrap-test-tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111
            != 0
    );
    setup.add_filters(
        "tool.filters",
        "[Filters]\ntool: CommandFilter, rootwrap-test-tool, root\n",
    );
    let mut command = Command::new(HELPER);
    command
        .env("PATH", &bin)
        .arg(&setup.conf)
        .args(["rootwrap-test-tool", "--now"]);
    Outcome::of(&mut command, None).assert_refused(
        96,
        &[
            "Executable not found: rootwrap-test-tool is in no directory of exec_dirs \
           (/sbin, /usr/sbin, /bin, /usr/bin) (filter tool)",
        ],
    );
    assert!(!marker.exists(), "the caller's PATH was searched");
    // The shipped filter's iptables, with exec_dirs that lack it.
    setup.write_conf("/nonexistent", "");
    setup.run(&["iptables", "-S"]).assert_refused(
        96,
        &["iptables is in no directory of exec_dirs (/nonexistent)"],
    );
}
