//! The oslo.config INI dialect: parsing files, layering them, and `$name` interpolation.
//!
//! Ports the parts of oslo.config (`iniparser.py`, `cfg.py`) that decide what a value is:
//! later files override earlier ones per option, `key = value` and `key: value` are both
//! assignments, `#` and `;` start comment lines, indented lines continue the previous value,
//! matching surrounding quotes are removed, and the section `DEFAULT` is case-insensitive.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One value as read, with where it came from (for error messages and warnings).
#[derive(Clone, Debug)]
pub struct RawValue {
    /// The value, trimmed, quotes removed, continuation lines joined with `\n`.
    pub value: String,
    /// File it was read from.
    pub file: PathBuf,
    /// 1-based line of the assignment.
    pub line: usize,
}

/// All files layered: section → option → value (the last assignment wins).
#[derive(Clone, Debug, Default)]
pub struct RawConfig {
    sections: BTreeMap<String, BTreeMap<String, RawValue>>,
}

/// A file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is neither a section, a comment nor an assignment.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl RawConfig {
    /// Reads and layers `files` in order.
    pub fn from_files(files: &[PathBuf]) -> Result<Self, ParseError> {
        let mut raw = RawConfig::default();
        for path in files {
            let text = std::fs::read_to_string(path).map_err(|source| ParseError::Io {
                path: path.clone(),
                source,
            })?;
            raw.merge_str(&text, path)?;
        }
        Ok(raw)
    }

    /// Parses one file's text and layers it over what is already there.
    pub fn merge_str(&mut self, text: &str, path: &Path) -> Result<(), ParseError> {
        let syntax = |line: usize, message: &str| ParseError::Syntax {
            path: path.to_path_buf(),
            line,
            message: message.to_string(),
        };
        let mut section: Option<String> = None;
        // The option the previous assignment wrote, for continuation lines.
        let mut last: Option<(String, String)> = None;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            if line.trim().is_empty() {
                last = None;
                continue;
            }
            let first = line.chars().next().unwrap_or(' ');
            if first == '#' || first == ';' {
                continue;
            }
            if first.is_whitespace() {
                let Some((sect, key)) = &last else {
                    return Err(syntax(number, "unexpected continuation line"));
                };
                if let Some(raw) = self
                    .sections
                    .get_mut(sect)
                    .and_then(|options| options.get_mut(key))
                {
                    raw.value.push('\n');
                    raw.value.push_str(line.trim());
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let Some(name) = rest.trim_end().strip_suffix(']') else {
                    return Err(syntax(number, "section header is not closed with ']'"));
                };
                let name = name.trim();
                if name.is_empty() {
                    return Err(syntax(number, "empty section name"));
                }
                let name = if name.eq_ignore_ascii_case("DEFAULT") {
                    "DEFAULT".to_string()
                } else {
                    name.to_string()
                };
                section = Some(name);
                last = None;
                continue;
            }
            let Some(sect) = &section else {
                return Err(syntax(number, "assignment before any [section]"));
            };
            let (key, value) =
                split_assignment(line).ok_or_else(|| syntax(number, "expected 'name = value'"))?;
            if key.is_empty() {
                return Err(syntax(number, "empty option name"));
            }
            self.sections.entry(sect.clone()).or_default().insert(
                key.to_string(),
                RawValue {
                    value,
                    file: path.to_path_buf(),
                    line: number,
                },
            );
            last = Some((sect.clone(), key.to_string()));
        }
        Ok(())
    }

    /// The value of `section.name`, if any file set it.
    pub fn get(&self, section: &str, name: &str) -> Option<&RawValue> {
        self.sections.get(section).and_then(|o| o.get(name))
    }

    /// Every (section, option) that some file set.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &RawValue)> {
        self.sections.iter().flat_map(|(section, options)| {
            options
                .iter()
                .map(move |(name, raw)| (section.as_str(), name.as_str(), raw))
        })
    }
}

/// Splits `key = value` or `key: value` at whichever separator comes first, as oslo does.
fn split_assignment(line: &str) -> Option<(&str, String)> {
    let at = line.find(['=', ':'])?;
    let key = line[..at].trim();
    let mut value = line[at + 1..].trim();
    let quoted = value.len() >= 2
        && (value.starts_with('"') && value.ends_with('"')
            || value.starts_with('\'') && value.ends_with('\''));
    if quoted {
        value = &value[1..value.len() - 1];
    }
    Some((key, value.to_string()))
}

/// Replaces `$name` and `${name}` using `lookup`; `$$` and `\$` are a literal `$`; names
/// `lookup` does not know are left as written (Python's `Template.safe_substitute`, which
/// oslo uses, after oslo's own rewriting of `\$` into `$$`). Replacements are not scanned
/// again.
///
/// Names may hold dots, as oslo's do (`$group.option`). Where oslo then failed on a bare
/// name followed by a dot (`$rootwrap_config.bak`), the longest part before a dot that
/// `lookup` knows is the name, and the rest stays text.
pub fn interpolate(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let value = value.replace("\\$", "$$");
    let mut out = String::with_capacity(value.len());
    let mut rest = value.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let found = if let Some(braced) = after.strip_prefix('{') {
            braced
                .find('}')
                .filter(|end| is_identifier(&braced[..*end]))
                .and_then(|end| Some((lookup(&braced[..end])?, end + 2)))
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(after.len());
            let mut name = &after[..end];
            loop {
                if is_identifier(name)
                    && let Some(replacement) = lookup(name)
                {
                    break Some((replacement, name.len()));
                }
                match name.rfind('.') {
                    Some(dot) => name = &name[..dot],
                    None => break None,
                }
            }
        };
        match found {
            Some((replacement, consumed)) => {
                out.push_str(&replacement);
                rest = &after[consumed..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A name as oslo's templates read it: a letter or `_`, then letters, digits, `_` and `.`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// oslo's boolean words, any case.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// A list option: comma-separated, items trimmed, empty items dropped.
pub fn parse_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RawConfig {
        let mut raw = RawConfig::default();
        raw.merge_str(text, Path::new("test.conf")).unwrap();
        raw
    }

    #[test]
    fn assignments_comments_quotes_and_continuations() {
        let raw = parse(
            "[DEFAULT]\n# comment\n; other\nlisten_port = 6000\nurl: http://x:1/\n\
             quoted = \"a b\"\nmulti = one\n  two\n[default]\ndebug=true\n",
        );
        assert_eq!(raw.get("DEFAULT", "listen_port").unwrap().value, "6000");
        assert_eq!(raw.get("DEFAULT", "url").unwrap().value, "http://x:1/");
        assert_eq!(raw.get("DEFAULT", "quoted").unwrap().value, "a b");
        assert_eq!(raw.get("DEFAULT", "multi").unwrap().value, "one\ntwo");
        assert_eq!(raw.get("DEFAULT", "debug").unwrap().value, "true");
        assert_eq!(raw.get("DEFAULT", "listen_port").unwrap().line, 4);
    }

    #[test]
    fn equals_before_colon_wins() {
        let raw = parse("[database]\nconnection = mysql://u:p@h/db\n");
        assert_eq!(
            raw.get("database", "connection").unwrap().value,
            "mysql://u:p@h/db"
        );
    }

    #[test]
    fn later_files_override_earlier_ones() {
        let mut raw = parse("[DEFAULT]\na = 1\nb = 1\n");
        raw.merge_str("[DEFAULT]\nb = 2\n", Path::new("two.conf"))
            .unwrap();
        assert_eq!(raw.get("DEFAULT", "a").unwrap().value, "1");
        assert_eq!(raw.get("DEFAULT", "b").unwrap().value, "2");
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let mut raw = RawConfig::default();
        let err = raw
            .merge_str("[DEFAULT]\nno separator here\n", Path::new("bad.conf"))
            .unwrap_err();
        assert_eq!(err.to_string(), "bad.conf:2: expected 'name = value'");
        let err = raw.merge_str("a = 1\n", Path::new("bad.conf")).unwrap_err();
        assert!(err.to_string().contains("before any [section]"));
    }

    #[test]
    fn interpolation() {
        let lookup = |name: &str| match name {
            "base" => Some("a,b".to_string()),
            _ => None,
        };
        assert_eq!(interpolate("$base,c", &lookup), "a,b,c");
        assert_eq!(interpolate("${base}c", &lookup), "a,bc");
        assert_eq!(interpolate("$$base", &lookup), "$base");
        assert_eq!(interpolate("$unknown x", &lookup), "$unknown x");
        assert_eq!(interpolate("cost $5", &lookup), "cost $5");
        assert_eq!(interpolate("^.*_ssh$", &lookup), "^.*_ssh$");
    }

    #[test]
    fn names_may_name_a_group() {
        let lookup = |name: &str| match name {
            "ironic.os_auth_url" => Some("http://ks".to_string()),
            "rootwrap_config" => Some("/etc/rw.conf".to_string()),
            _ => None,
        };
        assert_eq!(
            interpolate("$ironic.os_auth_url/v3", &lookup),
            "http://ks/v3"
        );
        assert_eq!(interpolate("${ironic.os_auth_url}", &lookup), "http://ks");
        assert_eq!(
            interpolate("$rootwrap_config.bak", &lookup),
            "/etc/rw.conf.bak"
        );
        assert_eq!(
            interpolate("see $rootwrap_config.", &lookup),
            "see /etc/rw.conf."
        );
        assert_eq!(
            interpolate("${rootwrap_config.bak}", &lookup),
            "${rootwrap_config.bak}"
        );
        assert_eq!(interpolate("$x.y.z", &lookup), "$x.y.z");
    }

    #[test]
    fn backslash_dollar_is_an_escape_as_in_oslo() {
        let lookup = |name: &str| (name == "word").then(|| "X".to_string());
        assert_eq!(interpolate("pa\\$word", &lookup), "pa$word");
        assert_eq!(interpolate("a\\${word}", &lookup), "a${word}");
        assert_eq!(interpolate("\\$$word", &lookup), "$X");
    }

    #[test]
    fn booleans_and_lists() {
        for word in ["1", "yes", "TRUE", "On"] {
            assert_eq!(parse_bool(word), Some(true));
        }
        for word in ["0", "No", "false", "OFF"] {
            assert_eq!(parse_bool(word), Some(false));
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_list(" a, b ,,c "), vec!["a", "b", "c"]);
        assert!(parse_list("").is_empty());
    }
}

#[cfg(test)]
pub(crate) mod properties {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;

    use super::*;
    use crate::testing::{hostile_char, text};

    fn parse_all(files: &[&str]) -> Result<RawConfig, ParseError> {
        let mut raw = RawConfig::default();
        for (i, text) in files.iter().enumerate() {
            raw.merge_str(text, Path::new(&format!("{i}.conf")))?;
        }
        Ok(raw)
    }

    fn option_name() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_.-]{0,12}"
    }

    fn section_name() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_ -]{0,10}[A-Za-z0-9_]"
            .prop_filter("not DEFAULT", |s| !s.eq_ignore_ascii_case("default"))
    }

    /// Any one-line value (written quoted, it must read back exactly).
    fn line_value() -> impl Strategy<Value = String> {
        text().prop_map(|s| s.replace(['\n', '\r'], ""))
    }

    /// A value that needs no quotes: trimmed, one line, not wrapped in matching quotes.
    fn plain_value() -> impl Strategy<Value = String> {
        line_value().prop_map(|s| {
            let s = s.trim();
            let quoted = s.len() >= 2
                && (s.starts_with('"') && s.ends_with('"')
                    || s.starts_with('\'') && s.ends_with('\''));
            if quoted {
                format!("x{s}")
            } else {
                s.to_string()
            }
        })
    }

    type Sections = BTreeMap<String, BTreeMap<String, String>>;

    fn sections(value: impl Strategy<Value = String>) -> impl Strategy<Value = Sections> {
        prop::collection::btree_map(
            section_name(),
            prop::collection::btree_map(option_name(), value, 0..5),
            0..4,
        )
    }

    fn write(sections: &Sections, quote: bool, separator: &str) -> String {
        let mut out = String::new();
        for (section, options) in sections {
            out.push_str(&format!("[{section}]\n"));
            for (name, value) in options {
                if quote {
                    out.push_str(&format!("{name}{separator}\"{value}\"\n"));
                } else {
                    out.push_str(&format!("{name}{separator}{value}\n"));
                }
            }
        }
        out
    }

    /// Lines that look like an INI file, mixed with hostile ones.
    fn ini_like() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            section_name().prop_map(|s| format!("[{s}]")),
            (option_name(), line_value()).prop_map(|(k, v)| format!("{k} = {v}")),
            line_value().prop_map(|v| format!("  {v}")),
            line_value().prop_map(|v| format!("# {v}")),
            Just(String::new()),
            Just("[DEFAULT]".to_string()),
            text(),
        ];
        prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
    }

    fn lookup_in(vars: &HashMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| vars.get(name).cloned()
    }

    /// A piece of an interpolation template and what it stands for.
    #[derive(Clone, Debug)]
    pub(crate) enum Part {
        /// Text without `$`.
        Literal(String),
        /// `$name` / `${name}` of a known name.
        Known(usize, bool),
        /// `$name` / `${name}` of a name the lookup does not know: kept as written.
        Unknown(String, bool),
        /// `$$`: one `$`.
        Escaped,
        /// `$$name` or `\$name` of a known name: `$name`, not expanded.
        EscapedName(usize, bool),
        /// `$` before a space: kept.
        Lone,
    }

    /// A template piece; `Known(i, _)` names the `i`th of three names.
    pub(crate) fn part() -> impl Strategy<Value = Part> {
        prop_oneof![
            line_value().prop_map(|s| {
                // Never empty: an empty piece would hide what follows a bare `$name`.
                let s = s.replace(['$', '\\'], "");
                Part::Literal(if s.is_empty() { " ".to_string() } else { s })
            }),
            (0..3usize, any::<bool>()).prop_map(|(i, b)| Part::Known(i, b)),
            ("zz[a-z0-9_]{0,5}", any::<bool>()).prop_map(|(n, b)| Part::Unknown(n, b)),
            Just(Part::Escaped),
            (0..3usize, any::<bool>()).prop_map(|(i, b)| Part::EscapedName(i, b)),
            Just(Part::Lone),
        ]
    }

    const KNOWN: [&str; 3] = ["base", "_x1", "grp.Mixed_Case"];

    /// The template text and the expected result, `Known(i, _)` standing for `names[i]`
    /// whose value is `values[i]`.
    pub(crate) fn render(parts: &[Part], names: &[&str], values: &[String]) -> (String, String) {
        let mut template = String::new();
        let mut expected = String::new();
        for (i, part) in parts.iter().enumerate() {
            // An unbraced name followed by a name character would read as a longer name.
            let next_is_name_char = match parts.get(i + 1) {
                Some(Part::Literal(s)) => s
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_'),
                _ => false,
            };
            let name_ref = |name: &str, braced: bool| {
                if braced || next_is_name_char {
                    format!("${{{name}}}")
                } else {
                    format!("${name}")
                }
            };
            match part {
                Part::Literal(s) => {
                    template.push_str(s);
                    expected.push_str(s);
                }
                Part::Known(k, braced) => {
                    template.push_str(&name_ref(names[*k], *braced));
                    expected.push_str(&values[*k]);
                }
                Part::Unknown(name, braced) => {
                    let written = name_ref(name, *braced);
                    template.push_str(&written);
                    expected.push_str(&written);
                }
                Part::Escaped => {
                    template.push_str("$$");
                    expected.push('$');
                }
                Part::EscapedName(k, backslash) => {
                    let escape = if *backslash { "\\$" } else { "$$" };
                    template.push_str(&format!("{escape}{}", names[*k]));
                    expected.push_str(&format!("${}", names[*k]));
                }
                Part::Lone => {
                    template.push_str("$ ");
                    expected.push_str("$ ");
                }
            }
        }
        (template, expected)
    }

    proptest! {
        #[test]
        fn parsing_never_panics(texts in prop::collection::vec(prop_oneof![ini_like(), text()], 1..3)) {
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            match parse_all(&texts) {
                Ok(raw) => {
                    for (_, name, value) in raw.entries() {
                        prop_assert!(!name.is_empty());
                        prop_assert!(value.line >= 1);
                    }
                }
                Err(ParseError::Syntax { line, message, .. }) => {
                    prop_assert!(line >= 1 && !message.is_empty());
                }
                Err(ParseError::Io { .. }) => prop_assert!(false, "no I/O here"),
            }
        }

        #[test]
        fn quoted_values_read_back_exactly(
            sections in sections(line_value()),
            colon in any::<bool>(),
        ) {
            let separator = if colon { ": " } else { " = " };
            let raw = parse_all(&[&write(&sections, true, separator)]).unwrap();
            for (section, options) in &sections {
                for (name, value) in options {
                    prop_assert_eq!(&raw.get(section, name).unwrap().value, value);
                }
            }
            prop_assert_eq!(raw.entries().count(), sections.values().map(BTreeMap::len).sum::<usize>());
        }

        #[test]
        fn plain_values_read_back_trimmed(sections in sections(plain_value())) {
            let raw = parse_all(&[&write(&sections, false, "=")]).unwrap();
            for (section, options) in &sections {
                for (name, value) in options {
                    prop_assert_eq!(&raw.get(section, name).unwrap().value, value);
                }
            }
        }

        #[test]
        fn later_files_override_per_option(first in sections(plain_value()), second in sections(plain_value())) {
            let raw = parse_all(&[&write(&first, false, " = "), &write(&second, false, " = ")]).unwrap();
            for (section, options) in first.iter().chain(&second) {
                for name in options.keys() {
                    let expected = second
                        .get(section)
                        .and_then(|o| o.get(name))
                        .or_else(|| first[section].get(name))
                        .unwrap();
                    let got = raw.get(section, name).unwrap();
                    prop_assert_eq!(&got.value, expected);
                    let file = if second.get(section).is_some_and(|o| o.contains_key(name)) { "1.conf" } else { "0.conf" };
                    prop_assert_eq!(got.file.to_str(), Some(file));
                }
            }
        }

        #[test]
        fn continuation_lines_are_joined(
            name in option_name(),
            lines in prop::collection::vec(plain_value().prop_filter("not blank", |s| !s.is_empty()), 1..5),
            indent in prop::sample::select(vec![" ", "  ", "\t", "    "]),
        ) {
            let text = format!("[s]\n{name} = {}\n", lines.join(&format!("\n{indent}")));
            let raw = parse_all(&[&text]).unwrap();
            prop_assert_eq!(&raw.get("s", &name).unwrap().value, &lines.join("\n"));
        }

        #[test]
        fn default_section_is_case_insensitive(
            upper in prop::collection::vec(any::<bool>(), 7),
            name in option_name(),
            value in plain_value(),
        ) {
            let section: String = "default"
                .chars()
                .zip(upper)
                .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            let raw = parse_all(&[&format!("[{section}]\n{name} = {value}\n")]).unwrap();
            prop_assert_eq!(&raw.get("DEFAULT", &name).unwrap().value, &value);
        }

        #[test]
        fn booleans_are_exactly_the_oslo_words(word in prop_oneof![
            prop::sample::select(vec!["1", "yes", "true", "on", "0", "no", "false", "off"])
                .prop_flat_map(|w| (Just(w), prop::collection::vec(any::<bool>(), w.len())))
                .prop_map(|(w, up)| w.chars().zip(up).map(|(c, u)| if u { c.to_ascii_uppercase() } else { c }).collect::<String>()),
            text(),
        ], pad in prop::sample::select(vec!["", " ", "\t", " \t "])) {
            let lower = word.trim().to_ascii_lowercase();
            let expected = match lower.as_str() {
                "1" | "yes" | "true" | "on" => Some(true),
                "0" | "no" | "false" | "off" => Some(false),
                _ => None,
            };
            prop_assert_eq!(parse_bool(&format!("{pad}{word}{pad}")), expected);
        }

        #[test]
        fn lists_split_on_commas(value in text()) {
            let items = parse_list(&value);
            for item in &items {
                prop_assert!(!item.is_empty() && !item.contains(','));
                prop_assert_eq!(item.trim(), item.as_str());
            }
            // Formatting and parsing again gives the same list.
            prop_assert_eq!(parse_list(&items.join(",")), items.clone());
            prop_assert_eq!(parse_list(&items.join(" , ")), items);
        }

        #[test]
        fn list_items_read_back(items in prop::collection::vec(
            prop::collection::vec(hostile_char(), 1..10)
                .prop_map(|c| c.into_iter().collect::<String>().replace(',', "").trim().to_string())
                .prop_filter("not empty", |s| !s.is_empty()),
            0..6,
        )) {
            prop_assert_eq!(parse_list(&items.join(",")), items);
        }

        #[test]
        fn interpolation_never_panics(value in text(), known in text()) {
            let vars = HashMap::from([("a".to_string(), known.clone()), ("b_1".to_string(), known)]);
            let _ = interpolate(&value, &lookup_in(&vars));
        }

        #[test]
        fn interpolation_without_names_only_unescapes(value in text()) {
            let expected = value.replace("\\$", "$$").replace("$$", "$");
            prop_assert_eq!(interpolate(&value, &|_| None), expected);
        }

        #[test]
        fn interpolation_follows_python_templates(
            parts in prop::collection::vec(part(), 0..8),
            values in prop::collection::vec(text(), 3),
        ) {
            let vars: HashMap<String, String> = KNOWN
                .iter()
                .map(|k| k.to_string())
                .zip(values.iter().cloned())
                .collect();
            let (template, expected) = render(&parts, &KNOWN, &values);
            prop_assert_eq!(interpolate(&template, &lookup_in(&vars)), expected);
        }
    }
}
