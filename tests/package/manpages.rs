//! The man pages in the package: each renders with `man` without a warning, and
//! inspector.conf(5) documents every option of the option table, in its section.

use std::process::Command;

use ironic_inspector::config::spec;

use crate::deb::{enabled, run, stdout, unpacked};

const PAGES: &[&str] = &[
    "usr/share/man/man8/ironic-inspector.8.gz",
    "usr/share/man/man8/ironic-inspector-dbsync.8.gz",
    "usr/share/man/man8/ironic-inspector-rootwrap.8.gz",
    "usr/share/man/man5/inspector.conf.5.gz",
];

#[test]
fn every_page_renders_without_warnings() {
    if !enabled("every_page_renders_without_warnings") {
        return;
    }
    for page in PAGES {
        let path = unpacked().join(page);
        let out = run(Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .env_remove("MAN_KEEP_FORMATTING"));
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.trim().is_empty(), "{page}:\n{warnings}");
        // Bold is drawn by overstriking ("N\x08N") when formatting is kept.
        let text = String::from_utf8_lossy(&out.stdout).replace('\x08', "");
        assert!(
            text.contains("NAME") || text.contains("NNAAMMEE"),
            "{page} renders as:\n{text}"
        );
    }
}

#[test]
fn inspector_conf_5_documents_every_option() {
    if !enabled("inspector_conf_5_documents_every_option") {
        return;
    }
    let roff = stdout(
        Command::new("gzip")
            .arg("-dc")
            .arg(unpacked().join("usr/share/man/man5/inspector.conf.5.gz")),
    );
    // The page's options, by section: `.SS "[section]"`, then one `.TP` per option whose
    // first line starts with the option's name in bold.
    let mut section = String::new();
    let mut documented = std::collections::HashSet::new();
    let mut lines = roff.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(heading) = line.strip_prefix(".SS ") {
            section = heading
                .trim_matches('"')
                .trim_matches(['[', ']'])
                .to_string();
        } else if line == ".TP"
            && let Some(term) = lines.peek()
            && let Some(name) = term.strip_prefix("\\fB")
            && let Some((name, _)) = name.split_once("\\fR")
        {
            documented.insert((section.clone(), name.replace("\\(ru", "_")));
        }
    }
    for opt in spec::OPTIONS {
        assert!(
            documented.contains(&(opt.section.to_string(), opt.name.to_string())),
            "inspector.conf(5) lacks [{}] {}",
            opt.section,
            opt.name
        );
    }
    // Options accepted only for compatibility say so.
    let ignored = spec::OPTIONS.iter().filter(|o| o.ignored).count();
    assert_eq!(
        roff.matches("accepted for compatibility, not used by this daemon")
            .count(),
        ignored
    );
}
