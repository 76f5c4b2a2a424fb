//! Filter files: which commands may run, and which program runs for them.
//!
//! Every `*.filters` file of each `filters_path` directory is read (in name order, the
//! directories in the configured order); its `[Filters]` section holds one filter per entry,
//! `name: Kind, executable, user[, more]`. Two kinds of oslo.rootwrap are implemented:
//!
//! - `CommandFilter, EXEC, root`: allows EXEC with any arguments. The caller names it as
//!   EXEC itself or by its file name (`iptables` for `/usr/sbin/iptables`).
//! - `RegExpFilter, EXEC, root, RE0, RE1, ...`: allows a command line of exactly as many
//!   words as patterns, each word matching its pattern whole (RE0 the command itself).
//!
//! EXEC is a file name, looked up in `exec_dirs` in order, or an absolute path the operator
//! chose. Every other kind of oslo.rootwrap (PathFilter, KillFilter, EnvFilter, ...) and any
//! unknown kind is a configuration error: a filter this helper cannot enforce must never let
//! a command through, nor be skipped silently as oslo.rootwrap skipped unknown kinds. Only
//! `root` is accepted as the user to run as. Unlike oslo.rootwrap, no filter for
//! `privsep-helper` is added: ironic-inspector does not use it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::ini;
use crate::trust;

/// The section of a filter file that lists the filters.
const SECTION: &str = "Filters";
/// The file names read in a filter directory.
const EXTENSION: &str = ".filters";
/// The only user commands may run as.
const ROOT: &str = "root";
/// Kinds of oslo.rootwrap this helper does not implement.
const UNSUPPORTED_KINDS: [&str; 8] = [
    "PathFilter",
    "KillFilter",
    "ReadFileFilter",
    "IpFilter",
    "EnvFilter",
    "ChainingFilter",
    "IpNetnsExecFilter",
    "ChainingRegExpFilter",
];

/// One allowed command.
#[derive(Debug)]
pub struct Filter {
    /// The entry's name in its file (folded to lower case).
    pub name: String,
    /// A file name looked up in `exec_dirs`, or an absolute path.
    pub exec: String,
    kind: Kind,
}

/// How a filter judges a command line.
#[derive(Debug)]
enum Kind {
    /// The command is `exec` or its file name; any arguments.
    Command,
    /// One anchored pattern per word of the command line.
    RegExp(Vec<Regex>),
}

/// What the filters decide for a command line.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Run `program` (with the caller's arguments): the first filter that allows the
    /// command and whose program exists.
    Run {
        filter: &'a Filter,
        program: PathBuf,
    },
    /// Filters allow the command but none of their programs exists; the first such filter.
    NotExecutable(&'a Filter),
    /// No filter allows the command.
    NoFilter,
}

impl Filter {
    /// Whether this filter allows `argv` (the command and its arguments).
    fn allows(&self, argv: &[String]) -> bool {
        let Some(command) = argv.first() else {
            return false;
        };
        match &self.kind {
            Kind::Command => *command == self.exec || *command == file_name(&self.exec),
            Kind::RegExp(patterns) => {
                patterns.len() == argv.len()
                    && patterns
                        .iter()
                        .zip(argv)
                        .all(|(re, word)| re.is_match(word))
            }
        }
    }

    /// The program this filter runs: `exec` when absolute, else the first `exec_dirs/exec`
    /// that is an executable file; `None` when there is none.
    fn program(&self, exec_dirs: &[PathBuf]) -> Option<PathBuf> {
        if self.exec.starts_with('/') {
            let path = PathBuf::from(&self.exec);
            return is_executable(&path).then_some(path);
        }
        exec_dirs
            .iter()
            .map(|dir| dir.join(&self.exec))
            .find(|path| is_executable(path))
    }
}

/// The part of `path` after its last `/`.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A regular file (after symbolic links) with an execute bit, as root sees it.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Judges `argv` with `filters` in order.
pub fn decide<'a>(filters: &'a [Filter], argv: &[String], exec_dirs: &[PathBuf]) -> Decision<'a> {
    let mut not_executable = None;
    for filter in filters.iter().filter(|f| f.allows(argv)) {
        match filter.program(exec_dirs) {
            Some(program) => return Decision::Run { filter, program },
            None => {
                not_executable.get_or_insert(filter);
            }
        }
    }
    not_executable.map_or(Decision::NoFilter, Decision::NotExecutable)
}

/// Reads the filters of every directory of `filters_path`. A directory that does not exist
/// is skipped (the shipped configuration names two, packages fill one); one that exists must
/// be trusted, as must each filter file.
pub fn load(filters_path: &[PathBuf]) -> Result<Vec<Filter>, String> {
    let mut filters = Vec::new();
    for dir in filters_path {
        let meta = match std::fs::metadata(dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(format!(
                    "cannot read filter directory {}: {e}",
                    dir.display()
                ));
            }
        };
        if !meta.is_dir() {
            return Err(format!(
                "filter directory {} is not a directory",
                dir.display()
            ));
        }
        trust::check_root_only(dir, "filter directory", &meta)?;
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read filter directory {}: {e}", dir.display()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| format!("cannot read filter directory {}: {e}", dir.display()))?;
            let name = entry.file_name();
            if let Some(name) = name.to_str()
                && name.ends_with(EXTENSION)
                && !name.starts_with('.')
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let meta = std::fs::metadata(&path)
                .map_err(|e| format!("cannot read filter file {}: {e}", path.display()))?;
            if !meta.is_file() {
                continue;
            }
            trust::check_root_only(&path, "filter file", &meta)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read filter file {}: {e}", path.display()))?;
            filters.extend(parse(&text).map_err(|e| format!("{}: {e}", path.display()))?);
        }
    }
    Ok(filters)
}

/// The filters of one file's text. A file without a `[Filters]` section is an error.
pub fn parse(text: &str) -> Result<Vec<Filter>, String> {
    let ini = ini::parse(text)?;
    let section = ini
        .section(SECTION)
        .ok_or_else(|| format!("no [{SECTION}] section"))?;
    section
        .entries
        .iter()
        .map(|(name, value)| {
            parse_filter(name, value).map_err(|e| format!("[{SECTION}] {name}: {e}"))
        })
        .collect()
}

/// One entry: `Kind, exec, user, args...`.
fn parse_filter(name: &str, value: &str) -> Result<Filter, String> {
    let words: Vec<&str> = value.split(',').map(str::trim).collect();
    let kind_name = words[0];
    let kind_is_known = matches!(kind_name, "CommandFilter" | "RegExpFilter");
    if !kind_is_known {
        return Err(if UNSUPPORTED_KINDS.contains(&kind_name) {
            format!("filter kind {kind_name} is not supported by this helper")
        } else {
            format!("unknown filter kind {kind_name:?}")
        });
    }
    let (Some(exec), Some(run_as)) = (words.get(1), words.get(2)) else {
        return Err(format!(
            "{kind_name} needs an executable and a user (`{kind_name}, iptables, root`)"
        ));
    };
    check_exec(exec)?;
    if *run_as != ROOT {
        return Err(format!(
            "runs as {run_as:?}; this helper only runs commands as {ROOT}"
        ));
    }
    let kind = if kind_name == "RegExpFilter" {
        let patterns = words[3..]
            .iter()
            .map(|pattern| {
                Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("bad pattern {pattern:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.is_empty() {
            return Err("RegExpFilter needs a pattern for the command at least".to_string());
        }
        Kind::RegExp(patterns)
    } else {
        Kind::Command
    };
    Ok(Filter {
        name: name.to_string(),
        exec: exec.to_string(),
        kind,
    })
}

/// A filter's executable is a file name or an absolute path without `..`.
fn check_exec(exec: &str) -> Result<(), String> {
    if exec.is_empty() {
        return Err("no executable".to_string());
    }
    if exec.contains('/') && !exec.starts_with('/') {
        return Err(format!(
            "executable {exec:?} is a relative path (give a file name or an absolute path)"
        ));
    }
    if exec.split('/').any(|part| part == "..") {
        return Err(format!("executable {exec:?} contains `..`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn one(entry: &str) -> Result<Filter, String> {
        let mut filters = parse(&format!("[Filters]\n{entry}\n"))?;
        assert_eq!(filters.len(), 1);
        Ok(filters.remove(0))
    }

    #[test]
    fn the_shipped_filter_file_allows_iptables_and_iptables_restore_only() {
        let filters = parse(include_str!(
            "../../../rootwrap.d/ironic-inspector-firewall.filters"
        ))
        .unwrap();
        let names: Vec<_> = filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["iptables", "iptables-restore"]);
        let allowed = |line: &str| filters.iter().any(|f| f.allows(&argv(line)));
        assert!(allowed("iptables -w -S INPUT"));
        assert!(allowed("iptables-restore --noflush -w"));
        assert!(!allowed("ip6tables -S"));
        assert!(!allowed("sh -c iptables"));
        assert!(!allowed("/usr/sbin/iptables -S"));
        assert!(!allowed("iptables-save"));
    }

    #[test]
    fn a_command_filter_matches_its_path_or_file_name() {
        let by_name = one("iptables: CommandFilter, iptables, root").unwrap();
        assert!(by_name.allows(&argv("iptables")));
        assert!(!by_name.allows(&argv("/sbin/iptables")));
        assert!(!by_name.allows(&[]));
        let by_path = one("env: CommandFilter, /usr/bin/env, root").unwrap();
        assert!(by_path.allows(&argv("env")));
        assert!(by_path.allows(&argv("/usr/bin/env -i")));
        assert!(!by_path.allows(&argv("/bin/env")));
        assert!(!by_path.allows(&argv("usr/bin/env")));
    }

    #[test]
    fn a_regexp_filter_matches_every_word_whole() {
        let f = one(r"list: RegExpFilter, iptables, root, iptables, -w, -S, [a-z-]+").unwrap();
        assert!(f.allows(&argv("iptables -w -S ironic-inspector")));
        assert!(!f.allows(&argv("iptables -w -S")));
        assert!(!f.allows(&argv("iptables -w -S INPUT")));
        assert!(!f.allows(&argv("iptables -w -S chain extra")));
        // Anchored at both ends.
        assert!(!f.allows(&argv("iptables -w -Sx chain")));
        assert!(!f.allows(&argv("xiptables -w -S chain")));
    }

    #[test]
    fn bad_filters_are_errors_never_skipped() {
        for (entry, needle) in [
            ("x: FooFilter, x, root", "unknown filter kind \"FooFilter\""),
            ("x: EnvFilter, env, root, A=", "EnvFilter is not supported"),
            ("x: KillFilter, root, /bin/x", "KillFilter is not supported"),
            (
                "x: CommandFilter, iptables",
                "needs an executable and a user",
            ),
            ("x: CommandFilter", "needs an executable and a user"),
            (
                "x: CommandFilter, iptables, nova",
                "only runs commands as root",
            ),
            (
                "x: CommandFilter, sbin/iptables, root",
                "is a relative path",
            ),
            ("x: CommandFilter, /sbin/../tmp/x, root", "contains `..`"),
            ("x: CommandFilter, , root", "no executable"),
            ("x: RegExpFilter, iptables, root, (", "bad pattern"),
            ("x: RegExpFilter, iptables, root", "needs a pattern"),
        ] {
            let err = one(entry).unwrap_err();
            assert!(err.contains(needle), "{entry}: {err}");
            assert!(err.starts_with("[Filters] x: "), "{entry}: {err}");
        }
        assert_eq!(
            parse("[Other]\na: CommandFilter, a, root\n").unwrap_err(),
            "no [Filters] section"
        );
    }

    #[test]
    fn the_first_allowing_filter_with_a_program_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir(d).unwrap();
        }
        let make = |path: &Path, mode: u32| {
            std::fs::write(path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        make(&a.join("tool"), 0o644); // not executable: skipped
        make(&b.join("tool"), 0o755);
        make(&a.join("other"), 0o755);
        let filters = parse(
            "[Filters]\nmissing: CommandFilter, nothing-here, root\n\
             missing-too: CommandFilter, tool2, root\ntool: CommandFilter, tool, root\n\
             other: RegExpFilter, other, root, other, x\n",
        )
        .unwrap();
        let dirs = vec![a.clone(), b.clone()];
        match decide(&filters, &argv("tool -x"), &dirs) {
            Decision::Run { filter, program } => {
                assert_eq!(filter.name, "tool");
                assert_eq!(program, b.join("tool"));
            }
            other => panic!("{other:?}"),
        }
        match decide(&filters, &argv("other x"), &dirs) {
            Decision::Run { program, .. } => assert_eq!(program, a.join("other")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&filters, &argv("other y"), &dirs),
            Decision::NoFilter
        ));
        match decide(&filters, &argv("nothing-here"), &dirs) {
            Decision::NotExecutable(filter) => assert_eq!(filter.name, "missing"),
            other => panic!("{other:?}"),
        }
        // Only exec_dirs are searched.
        assert!(matches!(
            decide(&filters, &argv("tool"), std::slice::from_ref(&a)),
            Decision::NotExecutable(_)
        ));
    }

    #[test]
    fn filter_directories_are_read_in_name_order_and_must_be_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Written out of order; a hidden file and a backup file are not read.
        for (file, filter) in [
            ("b.filters", "b"),
            ("a.filters", "a"),
            (".c.filters", "c"),
            ("d.filters~", "d"),
        ] {
            let text = format!("[Filters]\n{filter}: CommandFilter, {filter}, root\n");
            std::fs::write(d.join(file), text).unwrap();
        }
        std::fs::write(d.join("README"), "not a filter file").unwrap();
        std::fs::create_dir(d.join("sub.filters")).unwrap();
        for path in [d.join("a.filters"), d.join("b.filters")] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let missing = d.join("missing");
        let loaded = load(&[missing, d.to_path_buf()]);
        if std::fs::metadata(d).unwrap().permissions().mode() & 0o022 != 0 || !is_root_owned(d) {
            assert!(loaded.is_err());
            return;
        }
        let names: Vec<_> = loaded.unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["a", "b"]);
        std::fs::set_permissions(d.join("b.filters"), std::fs::Permissions::from_mode(0o664))
            .unwrap();
        let err = load(&[d.to_path_buf()]).unwrap_err();
        assert!(err.contains("b.filters is writable by its group"), "{err}");
        std::fs::set_permissions(d.join("b.filters"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        std::fs::write(d.join("e.filters"), "[Filters]\ne: Nope, e, root\n").unwrap();
        std::fs::set_permissions(d.join("e.filters"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = load(&[d.to_path_buf()]).unwrap_err();
        assert!(
            err.ends_with("e.filters: [Filters] e: unknown filter kind \"Nope\""),
            "{err}"
        );
    }

    fn is_root_owned(path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().uid() == 0
    }
}
