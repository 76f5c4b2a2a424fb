//! Condition fields: JSONPath as upstream's `jsonpath-rw` 1.4 read it, evaluated by
//! `jsonpath-rust` (RFC 9535).
//!
//! Ports the use of `jsonpath_rw.parse(field).find(data)` in `ironic_inspector/rules.py`.
//! A field is stored exactly as the client wrote it (so Python reads the same rule back);
//! it is translated here into an RFC 9535 query, which `jsonpath-rust` parses once and then
//! evaluates against the processed data.
//!
//! The `jsonpath-rw` syntax accepted: an optional leading `$`, names (`memory_mb`, with `-`
//! and `@` allowed after the first character, or quoted with `'…'` / `"…"`), `*`, `.` and
//! `..` between steps, `[n]`, `[*]`, `[start:end]`, `[name, …]`, `a,b` alternatives and
//! parentheses. `jsonpath-rw`'s `where`, `|`, `&` and the back-quoted operators (`` `this` ``,
//! `` `parent` ``) are refused as unsupported; no introspection rule example uses them.
//!
//! Known differences in evaluation, kept on purpose: `jsonpath-rw` made `[*]` on an object
//! or a scalar yield that value itself (its "slice hack"), and `*` on a list yield nothing;
//! RFC 9535 yields an object's member values, nothing for a scalar, and a list's elements.
//! `[n]` on something that is not a list matches nothing here (upstream crashed on objects
//! and indexed into strings).

use std::fmt::Write as _;

use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

/// A condition's field, checked and ready to evaluate.
#[derive(Clone, Debug)]
pub struct FieldPath {
    /// The RFC 9535 form of the field, for logs.
    rfc: String,
    query: JpQuery,
}

impl FieldPath {
    /// Parses a field written in `jsonpath-rw` syntax.
    ///
    /// # Errors
    /// A text saying why the field is not a path we can evaluate (upstream put the parser's
    /// exception text after `Unable to parse field JSON path <field>: `).
    pub fn parse(field: &str) -> Result<FieldPath, String> {
        let tokens = lex(field)?;
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            depth: 0,
        };
        let segments = parser.path()?;
        if let Some(token) = parser.peek() {
            return Err(parser.unexpected(token));
        }
        let rfc = to_rfc9535(&segments)?;
        let query = parse_json_path(&rfc).map_err(|err| err.to_string())?;
        Ok(FieldPath { rfc, query })
    }

    /// Every value the path matches in `data`, in document order. No match is an empty list.
    ///
    /// # Errors
    /// When the evaluator reports a failure (not expected for the syntax we produce).
    pub fn find<'a>(&self, data: &'a Value) -> Result<Vec<&'a Value>, String> {
        js_path_process(&self.query, data)
            .map(|found| found.into_iter().map(|r| r.val).collect())
            .map_err(|err| err.to_string())
    }

    /// The RFC 9535 query the field was translated into.
    pub fn rfc9535(&self) -> &str {
        &self.rfc
    }
}

/// Two paths are the same when they translate into the same query.
impl PartialEq for FieldPath {
    fn eq(&self, other: &Self) -> bool {
        self.rfc == other.rfc
    }
}

/// A `jsonpath-rw` token, with where it starts (line from 1, column as `jsonpath-rw` counted).
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Dollar,
    Dot,
    DoubleDot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Colon,
    Star,
    Pipe,
    Amp,
    Where,
    Id(String),
    Number(String),
    Named(String),
}

impl Tok {
    /// The token's value and type as `jsonpath-rw`'s parse errors showed them.
    fn describe(&self) -> (String, &'static str) {
        let literal = |c: &str| (c.to_string(), "literal");
        match self {
            Tok::Dollar => literal("$"),
            Tok::Dot => literal("."),
            Tok::DoubleDot => ("..".to_string(), "DOUBLEDOT"),
            Tok::LBracket => literal("["),
            Tok::RBracket => literal("]"),
            Tok::LParen => literal("("),
            Tok::RParen => literal(")"),
            Tok::Comma => literal(","),
            Tok::Colon => literal(":"),
            Tok::Star => literal("*"),
            Tok::Pipe => literal("|"),
            Tok::Amp => literal("&"),
            Tok::Where => ("where".to_string(), "WHERE"),
            Tok::Id(name) => (name.clone(), "ID"),
            Tok::Number(n) => (n.clone(), "NUMBER"),
            Tok::Named(name) => (name.clone(), "NAMED_OPERATOR"),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
}

fn is_id_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '@'
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '-'
}

/// Splits a field into tokens the way `jsonpath-rw`'s lexer did.
fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut line_start = 0;
    while let Some(&c) = chars.get(i) {
        let col = i - line_start;
        let start = i;
        let tok = match c {
            ' ' | '\t' => {
                i += 1;
                continue;
            }
            '\n' => {
                line += 1;
                line_start = i;
                i += 1;
                continue;
            }
            '.' if chars.get(i + 1) == Some(&'.') => {
                i += 2;
                Tok::DoubleDot
            }
            '\'' | '"' | '`' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(
                                "Unexpected EOF in string literal or identifier".to_string()
                            );
                        }
                        Some('\\') => {
                            let Some(&escaped) = chars.get(i + 1) else {
                                return Err(
                                    "Unexpected EOF in string literal or identifier".to_string()
                                );
                            };
                            value.push(escaped);
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
                if c == '`' {
                    Tok::Named(value)
                } else {
                    Tok::Id(value)
                }
            }
            c if is_id_start(c) => {
                while chars.get(i).is_some_and(|&c| is_id_char(c)) {
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
                if word == "where" {
                    Tok::Where
                } else {
                    Tok::Id(word)
                }
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                Tok::Number(chars.get(start..i).unwrap_or_default().iter().collect())
            }
            _ => {
                let tok = match c {
                    '$' => Tok::Dollar,
                    '.' => Tok::Dot,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    ':' => Tok::Colon,
                    '*' => Tok::Star,
                    '|' => Tok::Pipe,
                    '&' => Tok::Amp,
                    other => {
                        return Err(format!(
                            "Error on line {line}, col {col}: Unexpected character: {other}"
                        ));
                    }
                };
                i += 1;
                tok
            }
        };
        tokens.push(Token { tok, line, col });
    }
    Ok(tokens)
}

/// What one step selects.
#[derive(Clone, Debug, PartialEq)]
enum Selector {
    /// `$`: only meaningful as the first step.
    Root,
    /// One or more member names.
    Names(Vec<String>),
    /// `*` or `[*]`.
    Wildcard,
    /// `[n]`.
    Index(i64),
    /// `[start:end]`.
    Slice(Option<i64>, Option<i64>),
}

/// One step of a path: a selector applied to the children (`.`) or to every descendant
/// (`..`) of what the previous steps matched.
#[derive(Clone, Debug, PartialEq)]
struct Segment {
    descendant: bool,
    selector: Selector,
}

/// Deepest parenthesised path accepted. The parser recurses once per level, so an unbounded
/// depth (a field of a million `(`) would overflow the stack and abort the daemon.
const MAX_NESTING: usize = 32;

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    /// Parentheses open at this point.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Result<&Token, String> {
        let token = self
            .tokens
            .get(self.pos)
            .ok_or_else(|| "Parse error at the end of the path".to_string())?;
        self.pos += 1;
        Ok(token)
    }

    fn unexpected(&self, token: &Token) -> String {
        match &token.tok {
            Tok::Where => "Unsupported JSON path operator: where".to_string(),
            Tok::Pipe => "Unsupported JSON path operator: |".to_string(),
            Tok::Amp => "Unsupported JSON path operator: &".to_string(),
            Tok::Named(name) => format!("Unsupported JSON path operator: `{name}`"),
            other => {
                let (value, kind) = other.describe();
                format!(
                    "Parse error at {}:{} near token {value} ({kind})",
                    token.line, token.col
                )
            }
        }
    }

    fn expect(&mut self, want: &Tok) -> Result<(), String> {
        let token = self.next()?;
        if &token.tok == want {
            Ok(())
        } else {
            let token = token.clone();
            Err(self.unexpected(&token))
        }
    }

    /// `term (('.' term) | ('..' term) | bracket)*`
    fn path(&mut self) -> Result<Vec<Segment>, String> {
        let mut segments = self.term()?;
        while let Some(token) = self.peek() {
            match token.tok {
                Tok::Dot => {
                    self.pos += 1;
                    segments.extend(self.term()?);
                }
                Tok::DoubleDot => {
                    self.pos += 1;
                    let mut rest = self.term()?;
                    if let Some(first) = rest.first_mut() {
                        first.descendant = true;
                    }
                    segments.extend(rest);
                }
                Tok::LBracket => {
                    self.pos += 1;
                    segments.push(self.bracket()?);
                }
                _ => break,
            }
        }
        Ok(segments)
    }

    /// `'$' | '*' | names | bracket | '(' path ')'`
    fn term(&mut self) -> Result<Vec<Segment>, String> {
        let token = self.next()?.clone();
        let child = |selector| {
            vec![Segment {
                descendant: false,
                selector,
            }]
        };
        match token.tok {
            Tok::Dollar => Ok(child(Selector::Root)),
            Tok::Star => Ok(child(Selector::Wildcard)),
            Tok::Id(name) => Ok(child(Selector::Names(self.more_names(name)?))),
            Tok::LBracket => Ok(vec![self.bracket()?]),
            Tok::LParen => {
                if self.depth >= MAX_NESTING {
                    return Err(format!(
                        "Parse error at {}:{}: parentheses nested deeper than {MAX_NESTING}",
                        token.line, token.col
                    ));
                }
                self.depth += 1;
                let inner = self.path()?;
                self.expect(&Tok::RParen)?;
                self.depth -= 1;
                Ok(inner)
            }
            _ => Err(self.unexpected(&token)),
        }
    }

    /// The names after the first one of a `a,b,c` list.
    fn more_names(&mut self, first: String) -> Result<Vec<String>, String> {
        let mut names = vec![first];
        while self.peek().is_some_and(|t| t.tok == Tok::Comma) {
            self.pos += 1;
            let token = self.next()?.clone();
            match token.tok {
                Tok::Id(name) => names.push(name),
                _ => return Err(self.unexpected(&token)),
            }
        }
        Ok(names)
    }

    /// What follows a `[`: `n]`, `*]`, `start:end]` or `names]`.
    fn bracket(&mut self) -> Result<Segment, String> {
        let token = self.next()?.clone();
        let selector = match token.tok {
            Tok::Star => Selector::Wildcard,
            Tok::Id(name) => Selector::Names(self.more_names(name)?),
            Tok::Number(n) => {
                let n = number(&n)?;
                if self.peek().is_some_and(|t| t.tok == Tok::Colon) {
                    self.pos += 1;
                    Selector::Slice(Some(n), self.slice_end()?)
                } else {
                    Selector::Index(n)
                }
            }
            Tok::Colon => Selector::Slice(None, self.slice_end()?),
            _ => return Err(self.unexpected(&token)),
        };
        self.expect(&Tok::RBracket)?;
        Ok(Segment {
            descendant: false,
            selector,
        })
    }

    fn slice_end(&mut self) -> Result<Option<i64>, String> {
        match self.peek().map(|t| &t.tok) {
            Some(Tok::Number(n)) => {
                let n = number(n)?;
                self.pos += 1;
                Ok(Some(n))
            }
            _ => Ok(None),
        }
    }
}

/// Largest index or slice bound RFC 9535 allows (2^53 - 1, the integers every JSON reader
/// holds exactly); the evaluator refuses larger ones with a parser dump, so they are refused
/// here with a plain message. No list is that long, so nothing that could match is lost.
const MAX_INDEX: i64 = (1 << 53) - 1;

fn number(text: &str) -> Result<i64, String> {
    text.parse::<i64>()
        .ok()
        .filter(|n| (-MAX_INDEX..=MAX_INDEX).contains(n))
        .ok_or_else(|| format!("Index {text} is out of range"))
}

/// Writes the RFC 9535 query for the parsed steps: `$` then one bracketed selection each.
fn to_rfc9535(segments: &[Segment]) -> Result<String, String> {
    let mut out = String::from("$");
    for (i, segment) in segments.iter().enumerate() {
        if segment.descendant {
            out.push_str("..");
        }
        match &segment.selector {
            Selector::Root if i == 0 && !segment.descendant => {}
            Selector::Root => {
                return Err("Unsupported JSON path: $ is only allowed at the start".to_string());
            }
            Selector::Names(names) => {
                out.push('[');
                for (j, name) in names.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_quoted(&mut out, name);
                }
                out.push(']');
            }
            Selector::Wildcard => out.push_str("[*]"),
            Selector::Index(n) => {
                let _ = write!(out, "[{n}]");
            }
            Selector::Slice(start, end) => {
                out.push('[');
                if let Some(start) = start {
                    let _ = write!(out, "{start}");
                }
                out.push(':');
                if let Some(end) = end {
                    let _ = write!(out, "{end}");
                }
                out.push(']');
            }
        }
    }
    Ok(out)
}

/// A single-quoted RFC 9535 string literal.
fn push_quoted(out: &mut String, name: &str) {
    out.push('\'');
    for c in name.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rfc(field: &str) -> String {
        FieldPath::parse(field).unwrap().rfc9535().to_string()
    }

    fn find(field: &str, data: &Value) -> Vec<Value> {
        FieldPath::parse(field)
            .unwrap()
            .find(data)
            .unwrap()
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn translates_jsonpath_rw_syntax() {
        assert_eq!(rfc("memory_mb"), "$['memory_mb']");
        assert_eq!(rfc("$.memory_mb"), "$['memory_mb']");
        assert_eq!(rfc("$"), "$");
        assert_eq!(rfc("interfaces.eth0.ip"), "$['interfaces']['eth0']['ip']");
        assert_eq!(
            rfc("inventory.disks[0].size"),
            "$['inventory']['disks'][0]['size']"
        );
        assert_eq!(rfc("a[*].b"), "$['a'][*]['b']");
        assert_eq!(rfc("a.*.b"), "$['a'][*]['b']");
        assert_eq!(rfc("a..b"), "$['a']..['b']");
        assert_eq!(rfc("$..b.c"), "$..['b']['c']");
        assert_eq!(rfc("a..[0]"), "$['a']..[0]");
        assert_eq!(rfc("a[-1]"), "$['a'][-1]");
        assert_eq!(rfc("a[1:3]"), "$['a'][1:3]");
        assert_eq!(rfc("a[:2]"), "$['a'][:2]");
        assert_eq!(rfc("a[1:]"), "$['a'][1:]");
        assert_eq!(rfc("a.b,c"), "$['a']['b','c']");
        assert_eq!(rfc("a[b,c]"), "$['a']['b','c']");
        assert_eq!(rfc("a.'b c'.\"d.e\""), "$['a']['b c']['d.e']");
        assert_eq!(rfc("'it\\'s'"), "$['it\\'s']");
        assert_eq!(rfc("root-disk.size_gb"), "$['root-disk']['size_gb']");
        assert_eq!(rfc(" a . b "), "$['a']['b']");
        assert_eq!(rfc("(a.b).c"), "$['a']['b']['c']");
        assert_eq!(rfc("a.(b..c)"), "$['a']['b']..['c']");
        assert_eq!(rfc("*"), "$[*]");
        assert_eq!(rfc("a.'0'"), "$['a']['0']");
    }

    #[test]
    fn refuses_what_jsonpath_rw_refused() {
        for bad in [
            "!*!", "", "a.", "a..", "[", "a[", "a[0", "a]", "a.0", "'open", "a b", ".a",
            "a[0:1:2]", "a,", "a[*,b]", "()", "$$",
        ] {
            let err = FieldPath::parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert_eq!(
            FieldPath::parse("!*!").unwrap_err(),
            "Error on line 1, col 0: Unexpected character: !"
        );
        assert_eq!(
            FieldPath::parse("a.0").unwrap_err(),
            "Parse error at 1:2 near token 0 (NUMBER)"
        );
        assert_eq!(
            FieldPath::parse("'open").unwrap_err(),
            "Unexpected EOF in string literal or identifier"
        );
    }

    #[test]
    fn refuses_unsupported_operators() {
        for (bad, op) in [
            ("a where b", "where"),
            ("a | b", "|"),
            ("a & b", "&"),
            ("a.`this`", "`this`"),
            ("a.`parent`", "`parent`"),
        ] {
            assert_eq!(
                FieldPath::parse(bad).unwrap_err(),
                format!("Unsupported JSON path operator: {op}")
            );
        }
        assert!(
            FieldPath::parse("a.$")
                .unwrap_err()
                .contains("only allowed at the start")
        );
        assert!(FieldPath::parse("a[99999999999999999999]").is_err());
        for huge in [
            "a[9007199254740992]",
            "a[0:9007199254740992]",
            "a[-9007199254740992:]",
        ] {
            let err = FieldPath::parse(huge).unwrap_err();
            assert!(
                err.starts_with("Index ") && err.ends_with(" is out of range"),
                "{err}"
            );
        }
        assert_eq!(
            rfc("a[-9007199254740991:9007199254740991]"),
            "$['a'][-9007199254740991:9007199254740991]"
        );
    }

    #[test]
    fn deep_parentheses_are_refused_not_a_stack_overflow() {
        let nested = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(rfc(&nested(MAX_NESTING)), "$['a']");
        assert_eq!(
            FieldPath::parse(&nested(MAX_NESTING + 1)).unwrap_err(),
            format!("Parse error at 1:{MAX_NESTING}: parentheses nested deeper than {MAX_NESTING}")
        );
        assert!(FieldPath::parse(&"(".repeat(1_000_000)).is_err());
    }

    #[test]
    fn finds_values() {
        let data = json!({
            "memory_mb": 1024,
            "interfaces": {"eth0": {"ip": "1.2.3.4"}, "eth1": {"ip": null}},
            "inventory": {"disks": [{"size": 10}, {"size": 20}]},
            "list": [{"ip": "a"}, {"ip": "b"}, {"x": 1}],
            "with space": 1,
        });
        assert_eq!(find("memory_mb", &data), vec![json!(1024)]);
        assert_eq!(find("$.memory_mb", &data), vec![json!(1024)]);
        assert_eq!(find("interfaces.eth0.ip", &data), vec![json!("1.2.3.4")]);
        assert_eq!(find("interfaces.eth1.ip", &data), vec![Value::Null]);
        assert_eq!(find("inventory.disks[1].size", &data), vec![json!(20)]);
        assert_eq!(find("inventory.disks[-1].size", &data), vec![json!(20)]);
        assert_eq!(find("list[*].ip", &data), vec![json!("a"), json!("b")]);
        assert_eq!(find("list[0:2].ip", &data), vec![json!("a"), json!("b")]);
        assert_eq!(find("'with space'", &data), vec![json!(1)]);
        assert_eq!(find("inventory..size", &data), vec![json!(10), json!(20)]);
        assert!(find("nothing", &data).is_empty());
        assert!(find("memory_mb.x", &data).is_empty());
        assert!(find("inventory.disks[5]", &data).is_empty());
        assert!(find("memory_mb[0]", &data).is_empty());
        assert_eq!(find("$", &data), vec![data.clone()]);
    }
}

#[cfg(test)]
pub(crate) mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{json_value, text};

    /// A name as `jsonpath-rw` reads it bare, or quoted otherwise.
    pub(crate) fn write_name(name: &str) -> String {
        let mut chars = name.chars();
        let bare =
            chars.next().is_some_and(is_id_start) && chars.all(is_id_char) && name != "where";
        if bare {
            return name.to_string();
        }
        let mut out = String::from("'");
        for c in name.chars() {
            if c == '\'' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('\'');
        out
    }

    /// A field in `jsonpath-rw` syntax, as rule authors write them.
    pub(crate) fn field() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            4 => "[a-z_][a-z0-9_-]{0,8}",
            1 => text(),
        ];
        let step = prop_oneof![
            4 => name.clone().prop_map(|n| format!(".{}", write_name(&n))),
            1 => name.clone().prop_map(|n| format!("..{}", write_name(&n))),
            1 => Just(".*".to_string()),
            1 => Just("[*]".to_string()),
            1 => (-5i64..5).prop_map(|i| format!("[{i}]")),
            1 => (prop::option::of(-5i64..5), prop::option::of(-5i64..5)).prop_map(|(a, b)| {
                format!("[{}:{}]", a.map(|a| a.to_string()).unwrap_or_default(), b.map(|b| b.to_string()).unwrap_or_default())
            }),
            1 => ("[a-z]{1,4}", "[a-z]{1,4}").prop_map(|(a, b)| format!("[{a},{b}]")),
        ];
        (any::<bool>(), name, prop::collection::vec(step, 0..5)).prop_map(
            |(dollar, first, steps)| {
                let head = if dollar {
                    format!("$.{}", write_name(&first))
                } else {
                    write_name(&first)
                };
                format!("{head}{}", steps.concat())
            },
        )
    }

    /// A document and the path of keys and indices to one of its values.
    fn document_and_path() -> impl Strategy<Value = (Value, Vec<Value>)> {
        (
            json_value(),
            prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        )
            .prop_map(|(doc, picks)| {
                let mut path = Vec::new();
                let mut node = &doc;
                for pick in picks {
                    match node {
                        Value::Object(map) if !map.is_empty() => {
                            let (key, child) = map.iter().nth(pick.index(map.len())).unwrap();
                            path.push(Value::from(key.as_str()));
                            node = child;
                        }
                        Value::Array(items) if !items.is_empty() => {
                            let i = pick.index(items.len());
                            path.push(Value::from(i));
                            node = &items[i];
                        }
                        _ => break,
                    }
                }
                (doc, path)
            })
    }

    fn lookup<'a>(doc: &'a Value, path: &[Value]) -> &'a Value {
        path.iter().fold(doc, |node, step| match step {
            Value::String(key) => &node[key.as_str()],
            other => &node[other.as_u64().unwrap() as usize],
        })
    }

    proptest! {
        #[test]
        fn parsing_never_panics(field in prop_oneof![text(), field()]) {
            if let Ok(path) = FieldPath::parse(&field) {
                prop_assert!(path.rfc9535().starts_with('$'));
                let _ = path.find(&json!({"a": [1, {"b": 2}], "c": {"d": null}}));
            } else {
                let err = FieldPath::parse(&field).unwrap_err();
                prop_assert!(!err.is_empty() && !err.contains('\n'), "{field:?}: {err}");
            }
        }

        #[test]
        fn written_fields_parse_and_evaluate(field in field(), doc in json_value()) {
            let path = FieldPath::parse(&field);
            prop_assert!(path.is_ok(), "{field:?}: {:?}", path.err());
            prop_assert!(path.unwrap().find(&doc).is_ok());
        }

        #[test]
        fn a_path_to_a_value_finds_exactly_it((doc, steps) in document_and_path(), dollar in any::<bool>()) {
            let mut field = if dollar { "$".to_string() } else { String::new() };
            for (i, step) in steps.iter().enumerate() {
                match step {
                    Value::String(key) => {
                        if i > 0 || dollar {
                            field.push('.');
                        }
                        field.push_str(&write_name(key));
                    }
                    index => field.push_str(&format!("[{index}]")),
                }
            }
            // A bare index needs something before it.
            if field.is_empty() || field.starts_with('[') {
                field.insert(0, '$');
            }
            let path = FieldPath::parse(&field).unwrap();
            let found = path.find(&doc).unwrap();
            prop_assert_eq!(found, vec![lookup(&doc, &steps)], "{} as {}", field, path.rfc9535());
        }

        #[test]
        fn huge_indices_and_slices_are_safe(
            a in any::<i64>(), b in any::<i64>(),
            form in 0..3usize,
            doc in json_value(),
        ) {
            let field = match form {
                0 => format!("a[{a}]"),
                1 => format!("a[{a}:{b}]"),
                _ => format!("a[:{b}]"),
            };
            match FieldPath::parse(&field) {
                Ok(path) => {
                    let data = json!({"a": doc});
                    prop_assert!(path.find(&data).is_ok());
                }
                Err(err) => prop_assert!(err.starts_with("Index ") && err.ends_with(" is out of range"), "{field}: {err}"),
            }
        }
    }
}
