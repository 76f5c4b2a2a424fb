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

/// Replaces `$name` and `${name}` using `lookup`; `$$` is a literal `$`; names `lookup` does
/// not know are left as written (Python's `Template.safe_substitute`, which oslo uses).
pub fn interpolate(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if is_identifier(&braced[..end]) => (&braced[..end], end + 2),
                _ => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..end];
            if is_identifier(name) {
                (name, end)
            } else {
                ("", 0)
            }
        };
        match (consumed, lookup(name)) {
            (0, _) | (_, None) => {
                out.push('$');
                rest = after;
            }
            (_, Some(replacement)) => {
                out.push_str(&replacement);
                rest = &after[consumed..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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
