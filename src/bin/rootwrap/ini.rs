//! The INI dialect of Python's `configparser`, as far as rootwrap files use it: `[section]`
//! headers, `name = value` or `name: value` (the first `=` or `:` splits), names folded to
//! lower case, whole-line comments starting with `#` or `;`, and indented lines continuing
//! the value above. A name given twice keeps its first place and its last value, as the
//! lenient parser oslo.rootwrap used for filter files does.

/// One section: its name and its entries, in file order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

/// A parsed file: its sections in order of first appearance (a section given twice is one).
#[derive(Debug, Default)]
pub struct Ini {
    pub sections: Vec<Section>,
}

impl Ini {
    /// The section named `name` (case matters, as in configparser).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The value of `key` in `section`, if both exist.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.section(section)?
            .entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `text`; the error names the line (1-based) and what is wrong with it.
pub fn parse(text: &str) -> Result<Ini, String> {
    let mut ini = Ini::default();
    // Index of the current section and of the entry an indented line would continue.
    let mut section: Option<usize> = None;
    let mut last_entry: Option<usize> = None;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            last_entry = None;
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if indented && let (Some(s), Some(e)) = (section, last_entry) {
            let value = &mut ini.sections[s].entries[e].1;
            value.push('\n');
            value.push_str(trimmed);
            continue;
        }
        if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            let index = match ini.sections.iter().position(|s| s.name == name) {
                Some(index) => index,
                None => {
                    ini.sections.push(Section {
                        name: name.to_string(),
                        entries: Vec::new(),
                    });
                    ini.sections.len() - 1
                }
            };
            section = Some(index);
            last_entry = None;
            continue;
        }
        let Some(s) = section else {
            return Err(format!(
                "line {number}: an entry before any [section] header"
            ));
        };
        let Some(split) = trimmed.find(['=', ':']) else {
            return Err(format!(
                "line {number}: neither a [section], a comment nor `name = value`: {trimmed}"
            ));
        };
        let key = trimmed[..split].trim().to_lowercase();
        let value = trimmed[split + 1..].trim().to_string();
        if key.is_empty() {
            return Err(format!("line {number}: an entry without a name"));
        }
        let entries = &mut ini.sections[s].entries;
        let index = match entries.iter().position(|(k, _)| *k == key) {
            Some(index) => {
                entries[index].1 = value;
                index
            }
            None => {
                entries.push((key, value));
                entries.len() - 1
            }
        };
        last_entry = Some(index);
    }
    Ok(ini)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_entries_comments_and_both_delimiters() {
        let ini = parse(
            "# top comment\n[DEFAULT]\nFilters_Path = /a,/b\n  ; indented comment\n\
             exec_dirs: /sbin\n\n[Filters]\niptables: CommandFilter, iptables, root\n",
        )
        .unwrap();
        assert_eq!(ini.get("DEFAULT", "filters_path"), Some("/a,/b"));
        assert_eq!(ini.get("DEFAULT", "exec_dirs"), Some("/sbin"));
        assert_eq!(
            ini.get("Filters", "iptables"),
            Some("CommandFilter, iptables, root")
        );
        assert_eq!(ini.get("filters", "iptables"), None);
    }

    #[test]
    fn the_first_delimiter_splits() {
        let ini = parse("[s]\na: b = c\nd = e: f\n").unwrap();
        assert_eq!(ini.get("s", "a"), Some("b = c"));
        assert_eq!(ini.get("s", "d"), Some("e: f"));
    }

    #[test]
    fn indented_lines_continue_a_value() {
        let ini = parse("[Filters]\niptables: CommandFilter,\n    iptables, root\nx: y\n").unwrap();
        assert_eq!(
            ini.get("Filters", "iptables"),
            Some("CommandFilter,\niptables, root")
        );
        assert_eq!(ini.get("Filters", "x"), Some("y"));
    }

    #[test]
    fn a_repeated_name_keeps_its_place_and_last_value_and_sections_merge() {
        let ini = parse("[s]\na = 1\nb = 2\n[t]\n[s]\na = 3\n").unwrap();
        let s = ini.section("s").unwrap();
        assert_eq!(
            s.entries,
            vec![("a".into(), "3".into()), ("b".into(), "2".into())]
        );
        assert_eq!(ini.sections.len(), 2);
    }

    #[test]
    fn malformed_lines_name_their_number() {
        assert_eq!(
            parse("a = 1\n").unwrap_err(),
            "line 1: an entry before any [section] header"
        );
        assert!(
            parse("[s]\n\njust words\n")
                .unwrap_err()
                .starts_with("line 3: ")
        );
        assert_eq!(
            parse("[s]\n= x\n").unwrap_err(),
            "line 2: an entry without a name"
        );
    }
}
