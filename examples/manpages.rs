//! Writes the manual pages into a directory:
//!
//! ```sh
//! cargo run --example manpages -- OUTDIR
//! ```
//!
//! `ironic-inspector.8` and `ironic-inspector-dbsync.8` come from the command-line definitions
//! in `src/cli.rs`, `ironic-inspector-rootwrap.8` from `src/bin/rootwrap/cli.rs` (the helper
//! does not use the library), and `inspector.conf.5` from the option table in
//! `src/config/spec.rs`, the one `example.conf` documents. `scripts/package` gzips them into
//! the Debian package.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[path = "../src/bin/rootwrap/cli.rs"]
mod rootwrap_cli;

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use ironic_inspector::cli;
use ironic_inspector::config::spec::{self, Kind, Opt};

/// The `source` field of every page's title line.
const SOURCE: &str = concat!("ironic-inspector ", env!("CARGO_PKG_VERSION"));

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: cargo run --example manpages -- OUTDIR");
        return ExitCode::FAILURE;
    };
    match write_all(&dir) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("manpages: {}: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes every page; returns their paths.
fn write_all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let pages = [
        ("ironic-inspector.8", daemon_page()?),
        ("ironic-inspector-dbsync.8", dbsync_page()?),
        ("ironic-inspector-rootwrap.8", rootwrap_page()?),
        ("inspector.conf.5", config_page()),
    ];
    let mut written = Vec::new();
    for (name, text) in pages {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

fn man(cmd: clap::Command) -> Man {
    Man::new(cmd)
        .section("8")
        .source(SOURCE)
        .manual("System Administration")
}

/// Renders a section of our own: a heading, then paragraphs of plain text.
fn section(roff: &mut Roff, heading: &str, paragraphs: &[&str]) {
    roff.control("SH", [heading]);
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*paragraph)]);
    }
}

/// A `.TP` list of (term, text) pairs under a heading.
fn tagged(roff: &mut Roff, heading: &str, items: &[(&str, &str)]) {
    roff.control("SH", [heading]);
    for (term, text) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}

fn render(roff: &Roff) -> String {
    roff.to_roff()
}

fn daemon_page() -> std::io::Result<String> {
    let mut out = Vec::new();
    man(cli::daemon::Cli::command()).render(&mut out)?;
    let mut roff = Roff::new();
    section(
        &mut roff,
        "SIGNALS",
        &[
            "SIGTERM and SIGINT stop the daemon gracefully: it stops accepting connections, \
           answers the requests in progress, waits for background work, removes its firewall \
           chain and exits with status 0.",
        ],
    );
    tagged(
        &mut roff,
        "FILES",
        &[
            (
                "/etc/ironic-inspector/inspector.conf",
                "The configuration the packaged service reads (see inspector.conf(5)).",
            ),
            (
                "/etc/ironic-inspector/rootwrap.conf",
                "Configuration of ironic-inspector-rootwrap(8), used when [firewall] root_helper \
                 runs it through sudo.",
            ),
            (
                "/var/lib/ironic-inspector",
                "Home of the service user and of the packaged SQLite database.",
            ),
        ],
    );
    see_also(
        &mut roff,
        "ironic-inspector-dbsync(8), ironic-inspector-rootwrap(8), inspector.conf(5)",
    );
    Ok(String::from_utf8_lossy(&out).into_owned() + &render(&roff))
}

fn rootwrap_page() -> std::io::Result<String> {
    let mut out = Vec::new();
    man(rootwrap_cli::Cli::command()).render(&mut out)?;
    let mut roff = Roff::new();
    tagged(
        &mut roff,
        "FILES",
        &[
            (
                "/etc/ironic-inspector/rootwrap.conf",
                "The configuration: filters_path and exec_dirs.",
            ),
            (
                "/etc/ironic-inspector/rootwrap.d/",
                "The filter files, which list the commands allowed.",
            ),
            (
                "/usr/share/doc/ironic-inspector/examples/sudoers",
                "The sudoers rule that lets the service user run the helper (not active as \
                 installed).",
            ),
        ],
    );
    see_also(
        &mut roff,
        "ironic-inspector(8), inspector.conf(5), sudoers(5)",
    );
    Ok(String::from_utf8_lossy(&out).into_owned() + &render(&roff))
}

/// dbsync's page lists its commands with their own options, on one page.
fn dbsync_page() -> std::io::Result<String> {
    let cmd = cli::dbsync::Cli::command();
    let page = man(cmd.clone());
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    roff.text([roman(
        "The commands and their --revision arguments are alembic's, on the same revision \
         ids, so scripts written for the Python tool keep working.",
    )]);
    for sub in cmd.get_subcommands() {
        let args: Vec<&clap::Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && !a.is_hide_set())
            .collect();
        roff.control("TP", []);
        let mut synopsis = vec![bold(sub.get_name())];
        for arg in &args {
            synopsis.push(roman(" "));
            synopsis.extend(arg_usage(arg));
        }
        roff.text(synopsis);
        if let Some(about) = sub.get_about() {
            roff.text([roman(about.to_string())]);
        }
        for arg in &args {
            roff.control("RS", []);
            roff.control("TP", []);
            roff.text(arg_flag(arg));
            if let Some(help) = arg.get_help() {
                roff.text([roman(help.to_string())]);
            }
            roff.control("RE", []);
        }
    }
    section(
        &mut roff,
        "EXIT STATUS",
        &["0 on success; 1 on failure, after a line starting with FAILED: on standard error."],
    );
    see_also(&mut roff, "ironic-inspector(8), inspector.conf(5)");
    Ok(String::from_utf8_lossy(&out).into_owned() + &render(&roff))
}

/// `--revision REV`, `[--message MESSAGE]` and the like.
fn arg_usage(arg: &clap::Arg) -> Vec<clap_mangen::roff::Inline> {
    let mut parts = arg_flag(arg);
    if !arg.is_required_set() {
        parts.insert(0, roman("["));
        parts.push(roman("]"));
    }
    parts
}

/// `--revision REV`.
fn arg_flag(arg: &clap::Arg) -> Vec<clap_mangen::roff::Inline> {
    let flag = match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => arg.get_id().to_string(),
    };
    let mut parts = vec![bold(flag)];
    if arg.get_action().takes_values()
        && let Some(names) = arg.get_value_names()
    {
        for name in names {
            parts.push(roman(" "));
            parts.push(italic(name.to_string()));
        }
    }
    parts
}

fn see_also(roff: &mut Roff, pages: &str) {
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(pages)]);
}

/// `inspector.conf.5`: the file format, then every option of `spec::OPTIONS` by section.
fn config_page() -> String {
    let mut roff = Roff::new();
    roff.control(
        "TH",
        ["INSPECTOR.CONF", "5", "", SOURCE, "File Formats Manual"],
    );
    roff.control("SH", ["NAME"]);
    roff.text([roman("inspector.conf - configuration of ironic-inspector")]);
    roff.control("SH", ["SYNOPSIS"]);
    roff.text([bold("/etc/ironic-inspector/inspector.conf")]);
    section(
        &mut roff,
        "DESCRIPTION",
        &[
            "ironic-inspector(8) and ironic-inspector-dbsync(8) read their settings from files \
             in oslo.config's INI dialect, so an inspector.conf written for the Python \
             ironic-inspector 2.2 works unchanged. The packaged service reads \
             /etc/ironic-inspector/inspector.conf. Options this daemon accepts for \
             compatibility but does not act on are marked so below.",
        ],
    );
    section(
        &mut roff,
        "FILE FORMAT",
        &[
            "A file is made of sections, each opened by its name in brackets ([DEFAULT], \
             [database], ...), holding lines of the form name = value (name: value works \
             too). Lines starting with # or ; are comments. An indented line continues the \
             value above it, and matching quotes around a value are removed. The section \
             DEFAULT is case-insensitive.",
            "Booleans are true/false, yes/no, on/off or 1/0, in any case. Lists are \
             comma-separated. In a value, $name stands for another option of the same section \
             or of [DEFAULT], $section.name or ${section.name} for an option of another \
             section, and $$ or \\$ for a literal $.",
            "An invalid value, or references that loop, stop start-up with a message naming \
             the section and the option. An unknown option is a warning. A deprecated \
             spelling (an older section or name, listed with each option below) is read, with \
             a warning. A file that holds a password and that every user may read gets a \
             warning too.",
        ],
    );
    section(
        &mut roff,
        "LAYERING",
        &[
            "--config-file PATH may be given several times: later files override earlier \
             ones, option by option. --config-dir DIR then adds the files DIR/*.conf, in name \
             order. Without either option, the first file found of \
             ~/.ironic-inspector/ironic-inspector.conf, ~/ironic-inspector.conf, \
             /etc/ironic-inspector/ironic-inspector.conf and /etc/ironic-inspector.conf is \
             read.",
        ],
    );
    roff.control("SH", ["OPTIONS"]);
    roff.text([roman(
        "Each option is shown with its default; (unset) means the option has no value \
         unless one is given.",
    )]);
    let mut current = "";
    for opt in spec::OPTIONS {
        if opt.section != current {
            current = opt.section;
            roff.control("SS", [format!("[{current}]").as_str()]);
        }
        option(&mut roff, opt);
    }
    tagged(
        &mut roff,
        "FILES",
        &[
            (
                "/etc/ironic-inspector/inspector.conf",
                "The packaged configuration: the options above with their defaults, commented \
                 out, and the settings of the package.",
            ),
            (
                "/usr/share/doc/ironic-inspector/examples/",
                "Example sudoers rule and systemd drop-in for running the firewall commands \
                 through sudo and ironic-inspector-rootwrap instead of with capabilities.",
            ),
        ],
    );
    see_also(
        &mut roff,
        "ironic-inspector(8), ironic-inspector-dbsync(8), ironic-inspector-rootwrap(8)",
    );
    render(&roff)
}

fn option(roff: &mut Roff, opt: &Opt) {
    roff.control("TP", []);
    let default = match opt.default {
        Some("") => roman(" (empty)"),
        Some(value) => roman(format!(" = {value}")),
        None => roman(" (unset)"),
    };
    roff.text([bold(opt.name), default]);
    roff.text([roman(opt.help)]);
    let mut facts = vec![kind(opt.kind)];
    if opt.ignored {
        facts.push("accepted for compatibility, not used by this daemon".to_string());
    }
    if opt.help.starts_with("Deprecated") {
        facts.push("deprecated".to_string());
    }
    if !opt.deprecated.is_empty() {
        let aliases: Vec<String> = opt
            .deprecated
            .iter()
            .map(|(section, name)| format!("[{section}] {name}"))
            .collect();
        facts.push(format!("also read from {}, deprecated", aliases.join(", ")));
    }
    if opt.secret {
        facts.push("secret: never logged".to_string());
    }
    roff.control("br", []);
    roff.text([italic(format!("({})", facts.join("; ")))]);
}

fn kind(kind: Kind) -> String {
    match kind {
        Kind::Str => "string".to_string(),
        Kind::Int => "integer".to_string(),
        Kind::Bool => "boolean".to_string(),
        Kind::List => "comma-separated list".to_string(),
        Kind::Choice(values) => format!("one of: {}", values.join(", ")),
    }
}
