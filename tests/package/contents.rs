//! What the package holds (`dpkg-deb -c`, `-I`): every file at its path with its mode,
//! the conffiles, the control fields, and binaries that run and carry no debug sections.

use std::collections::BTreeMap;
use std::process::Command;

use crate::deb::{self, built, enabled, stdout, unpacked};

/// Path (without the leading `.`) → (mode string, owner/group) from `dpkg-deb -c`.
fn listing() -> BTreeMap<String, (String, String)> {
    stdout(Command::new("dpkg-deb").arg("-c").arg(built()))
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields[5].trim_start_matches('.').trim_end_matches('/');
            (
                path.to_string(),
                (fields[0].to_string(), fields[1].to_string()),
            )
        })
        .collect()
}

/// Every file an operator relies on, with its mode.
const FILES: &[(&str, &str)] = &[
    ("/usr/bin/ironic-inspector", "-rwxr-xr-x"),
    ("/usr/bin/ironic-inspector-dbsync", "-rwxr-xr-x"),
    ("/usr/bin/ironic-inspector-rootwrap", "-rwxr-xr-x"),
    (
        "/usr/lib/systemd/system/ironic-inspector.service",
        "-rw-r--r--",
    ),
    (
        "/usr/lib/systemd/system/ironic-inspector-dbsync.service",
        "-rw-r--r--",
    ),
    // Holds passwords: readable by root and (after postinst) the service's group only.
    ("/etc/ironic-inspector/inspector.conf", "-rw-r-----"),
    ("/etc/ironic-inspector/rootwrap.conf", "-rw-r--r--"),
    (
        "/etc/ironic-inspector/rootwrap.d/ironic-inspector-firewall.filters",
        "-rw-r--r--",
    ),
    ("/usr/share/man/man8/ironic-inspector.8.gz", "-rw-r--r--"),
    (
        "/usr/share/man/man8/ironic-inspector-dbsync.8.gz",
        "-rw-r--r--",
    ),
    (
        "/usr/share/man/man8/ironic-inspector-rootwrap.8.gz",
        "-rw-r--r--",
    ),
    ("/usr/share/man/man5/inspector.conf.5.gz", "-rw-r--r--"),
    ("/usr/share/doc/ironic-inspector/copyright", "-rw-r--r--"),
    (
        "/usr/share/doc/ironic-inspector/changelog.Debian.gz",
        "-rw-r--r--",
    ),
    ("/usr/share/doc/ironic-inspector/README.md", "-rw-r--r--"),
    // README and the start-up error for an unknown hook point at it.
    ("/usr/share/doc/ironic-inspector/PLUGINS.md", "-rw-r--r--"),
    // README links to these two.
    (
        "/usr/share/doc/ironic-inspector/docs/ARCHITECTURE.md",
        "-rw-r--r--",
    ),
    (
        "/usr/share/doc/ironic-inspector/docs/LOGGING.md",
        "-rw-r--r--",
    ),
    (
        "/usr/share/doc/ironic-inspector/examples/sudoers",
        "-rw-r--r--",
    ),
    (
        "/usr/share/doc/ironic-inspector/examples/sudo-rootwrap.conf",
        "-rw-r--r--",
    ),
    // PLUGINS.md's examples, not executable under /usr/share/doc: copied, then chmod 755.
    (
        "/usr/share/doc/ironic-inspector/examples/hooks/set-property.sh",
        "-rw-r--r--",
    ),
    (
        "/usr/share/doc/ironic-inspector/examples/hooks/rewrite_data.py",
        "-rw-r--r--",
    ),
    (
        "/usr/share/doc/ironic-inspector/examples/hooks/find_node.py",
        "-rw-r--r--",
    ),
];

#[test]
fn every_file_is_packaged_with_its_mode() {
    if !enabled("every_file_is_packaged_with_its_mode") {
        return;
    }
    let listing = listing();
    for (path, mode) in FILES {
        let Some((found, owner)) = listing.get(*path) else {
            panic!("the package lacks {path}; it holds:\n{listing:#?}");
        };
        assert_eq!(found, mode, "mode of {path}");
        assert_eq!(owner, "0/0", "owner of {path}");
    }
    // Nothing of the sudo mode is active as installed.
    assert!(
        !listing.keys().any(|p| p.starts_with("/etc/sudoers")),
        "{listing:#?}"
    );
}

#[test]
fn conffiles_and_control_fields() {
    if !enabled("conffiles_and_control_fields") {
        return;
    }
    let info = stdout(Command::new("dpkg-deb").arg("-I").arg(built()));
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim_start().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} field in:\n{info}"))
            .to_string()
    };
    assert_eq!(field("Package"), deb::PACKAGE);
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    assert_eq!(field("Architecture"), "amd64");
    let depends = field("Depends");
    for needed in ["libc6", "adduser", "iptables"] {
        assert!(depends.contains(needed), "Depends: {depends}");
    }

    let conffiles = stdout(
        Command::new("dpkg-deb")
            .args(["-I"])
            .arg(built())
            .arg("conffiles"),
    );
    let conffiles: Vec<&str> = conffiles.lines().map(str::trim).collect();
    for path in [
        "/etc/ironic-inspector/inspector.conf",
        "/etc/ironic-inspector/rootwrap.conf",
        "/etc/ironic-inspector/rootwrap.d/ironic-inspector-firewall.filters",
    ] {
        assert!(conffiles.contains(&path), "{path} in {conffiles:?}");
    }
    // The maintainer scripts create the user and remove its data on purge.
    let postinst = stdout(
        Command::new("dpkg-deb")
            .arg("-I")
            .arg(built())
            .arg("postinst"),
    );
    assert!(postinst.contains("adduser"), "{postinst}");
    let postrm = stdout(
        Command::new("dpkg-deb")
            .arg("-I")
            .arg(built())
            .arg("postrm"),
    );
    assert!(postrm.contains("purge"), "{postrm}");
}

#[test]
fn binaries_run_and_are_stripped() {
    if !enabled("binaries_run_and_are_stripped") {
        return;
    }
    for name in [
        "ironic-inspector",
        "ironic-inspector-dbsync",
        "ironic-inspector-rootwrap",
    ] {
        let path = unpacked().join("usr/bin").join(name);
        let version = stdout(Command::new(&path).arg("--version"));
        assert!(
            version.contains(env!("CARGO_PKG_VERSION")),
            "{name} --version: {version}"
        );
        let sections = stdout(Command::new("readelf").arg("-S").arg(&path));
        assert!(
            !sections.contains(".debug_"),
            "{name} still has debug sections:\n{sections}"
        );
    }
}

/// The packaged configuration is example.conf with the package's settings: it loads
/// without unknown options, keeps 2.2's defaults (Keystone, the firewall) and points at
/// the service's database, with iptables run directly.
#[test]
fn packaged_config_is_example_conf_with_the_package_settings() {
    if !enabled("packaged_config_is_example_conf_with_the_package_settings") {
        return;
    }
    use ironic_inspector::config::Config;
    let path = unpacked().join("etc/ironic-inspector/inspector.conf");
    let (config, warnings) = Config::from_files(std::slice::from_ref(&path)).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.firewall.root_helper, "");
    assert!(config.firewall.manage_firewall);
    assert_eq!(
        config.default.auth_strategy,
        ironic_inspector::config::AuthStrategy::Keystone
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let active: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .collect();
    assert_eq!(
        active,
        [
            "connection = sqlite:////var/lib/ironic-inspector/inspector.sqlite",
            "root_helper =",
        ]
    );
    // Every option example.conf documents is documented here too.
    let example = std::fs::read_to_string(deb::repo().join("example.conf")).unwrap();
    for line in example
        .lines()
        .filter(|l| l.starts_with('#') && l.contains(" ="))
    {
        assert!(
            text.contains(line),
            "packaged inspector.conf lacks {line:?}"
        );
    }
}
