//! What upstream's behaviour owes to Python: the truth value, `str()`, `repr()`, `==`,
//! ordering, `int()` and `float()` of decoded JSON values, as ironic-inspector 2.2's hooks,
//! rules and messages used them under Python. Each is documented here once; the rest of the
//! crate calls these instead of writing its own.
//!
//! Python's own rules are followed where a message or a comparison can be observed by an
//! operator (e.g. `"Invalid value: 'x'"` keeps Python's quotes); where we deliberately
//! differ, the function's doc says so.

use std::cmp::Ordering;

use serde_json::Value;

/// Python's truth value of a JSON value: `null`, `false`, `0`, `""`, `[]` and `{}` are
/// false, everything else is true.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// Python's `str()` of a JSON value as upstream decoded it: strings as they are, `None`,
/// `True`/`False`, numbers as written, lists and dicts in their `repr`.
pub fn to_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python 3's `repr()` of a JSON value as upstream decoded it (`{'a': [1, 'b', None]}`),
/// for the messages upstream formatted with `%s` of a dict or list. Object keys come in
/// the map's (sorted) order.
pub fn repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => repr_str(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Python's `repr()` of a string: single quotes unless the text holds a single quote and
/// no double quote; backslash escapes for the quote, backslash and control characters.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `==` on two JSON values as the hooks and rule actions use it: numbers compare by
/// value (`10 == 10.0`), everything else structurally. Unlike Python (and unlike [`equal`],
/// which the rule conditions use), a boolean never equals a number: `1 == True` is not
/// reproduced here, as it never was in our hooks.
pub fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| eq(v, other)))
        }
        _ => a == b,
    }
}

/// A list of strings as Python prints it: `['a', 'b']`.
pub fn repr_str_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| repr_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// A float as Python's `repr` prints it for ordinary magnitudes (`1448526000.0`, `12.5`).
pub fn repr_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// A JSON value as Python holds it for comparing: numbers (and booleans, which are ints in
/// Python) by value, everything else as JSON.
#[derive(Clone, Debug)]
pub enum Operand<'a> {
    /// An int (or a bool).
    Int(i128),
    /// A float.
    Float(f64),
    /// Anything else.
    Json(&'a Value),
}

impl<'a> Operand<'a> {
    /// Reads a decoded JSON value.
    pub fn from_json(value: &'a Value) -> Operand<'a> {
        match value {
            Value::Bool(b) => Operand::Int(i128::from(*b)),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Operand::Int(i128::from(i)),
                (_, Some(u)) => Operand::Int(i128::from(u)),
                _ => Operand::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            other => Operand::Json(other),
        }
    }
}

/// Python's `int(x)` on a JSON value: booleans are 0/1, floats truncate toward zero, text
/// must be an optionally signed run of decimal digits (surrounding white space allowed).
pub fn int(value: &Value) -> Result<i128, String> {
    match Operand::from_json(value) {
        Operand::Int(i) => Ok(i),
        Operand::Float(f) if f.is_finite() => {
            let truncated = f.trunc();
            if truncated.abs() < 1.0e38 {
                // In range by the check above; `as` on a finite, truncated float is exact.
                Ok(truncated as i128)
            } else {
                Err(format!("cannot convert float {f} to integer: too large"))
            }
        }
        Operand::Float(f) => Err(format!("cannot convert float {f} to integer")),
        Operand::Json(Value::String(s)) => {
            let text = s.trim();
            let digits = text
                .strip_prefix('-')
                .or_else(|| text.strip_prefix('+'))
                .unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "invalid literal for int() with base 10: {}",
                    repr_str(s)
                ));
            }
            text.parse::<i128>()
                .map_err(|_| format!("integer {text} is too large"))
        }
        Operand::Json(other) => Err(format!(
            "int() argument must be a string or a number, not {}",
            type_name(other)
        )),
    }
}

/// Python's `float(x)` on a JSON value.
pub fn float(value: &Value) -> Result<f64, String> {
    match Operand::from_json(value) {
        // Python rounds huge ints to the nearest float too.
        Operand::Int(i) => Ok(i as f64),
        Operand::Float(f) => Ok(f),
        Operand::Json(Value::String(s)) => {
            let text = s.trim();
            let lower = text.to_ascii_lowercase();
            let unsigned = lower.trim_start_matches(['+', '-']);
            // Rust also reads "infinity"/"inf"/"nan" as Python does; nothing else special.
            let plausible = !text.is_empty()
                && (matches!(unsigned, "inf" | "infinity" | "nan")
                    || text.bytes().all(|b| {
                        b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')
                    }));
            match text.parse::<f64>() {
                Ok(f) if plausible => Ok(f),
                _ => Err(format!(
                    "could not convert string to float: {}",
                    repr_str(s)
                )),
            }
        }
        Operand::Json(other) => Err(format!(
            "float() argument must be a string or a number, not {}",
            type_name(other)
        )),
    }
}

/// The Python type name of a decoded JSON value, for messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "'NoneType'",
        Value::Bool(_) => "'bool'",
        Value::Number(n) if n.is_f64() => "'float'",
        Value::Number(_) => "'int'",
        Value::String(_) => "'str'",
        Value::Array(_) => "'list'",
        Value::Object(_) => "'dict'",
    }
}

/// Python 3's `==` between two operands: never fails; values of different kinds are unequal;
/// ints, floats and booleans compare by value.
pub fn equal(left: &Operand<'_>, right: &Operand<'_>) -> bool {
    match (left, right) {
        (Operand::Int(a), Operand::Int(b)) => a == b,
        (Operand::Int(a), Operand::Float(b)) | (Operand::Float(b), Operand::Int(a)) => {
            (*a as f64) == *b
        }
        (Operand::Float(a), Operand::Float(b)) => a == b,
        (Operand::Json(Value::String(a)), Operand::Json(Value::String(b))) => a == b,
        (Operand::Json(Value::Null), Operand::Json(Value::Null)) => true,
        (Operand::Json(Value::Array(a)), Operand::Json(Value::Array(b))) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| equal(&Operand::from_json(x), &Operand::from_json(y)))
        }
        (Operand::Json(Value::Object(a)), Operand::Json(Value::Object(b))) => {
            a.len() == b.len()
                && a.iter().all(|(k, x)| {
                    b.get(k)
                        .is_some_and(|y| equal(&Operand::from_json(x), &Operand::from_json(y)))
                })
        }
        _ => false,
    }
}

/// Python 3's ordering of two operands (`<` and friends); `None` when unordered (NaN).
///
/// # Errors
/// Python's `TypeError` text when the kinds cannot be ordered (numbers, strings and lists
/// can).
pub fn order(left: &Operand<'_>, right: &Operand<'_>) -> Result<Option<Ordering>, String> {
    match (left, right) {
        (Operand::Int(a), Operand::Int(b)) => Ok(Some(a.cmp(b))),
        (Operand::Int(a), Operand::Float(b)) => Ok((*a as f64).partial_cmp(b)),
        (Operand::Float(a), Operand::Int(b)) => Ok(a.partial_cmp(&(*b as f64))),
        (Operand::Float(a), Operand::Float(b)) => Ok(a.partial_cmp(b)),
        (Operand::Json(Value::String(a)), Operand::Json(Value::String(b))) => Ok(Some(a.cmp(b))),
        (Operand::Json(Value::Array(a)), Operand::Json(Value::Array(b))) => {
            for (x, y) in a.iter().zip(b) {
                let (x, y) = (Operand::from_json(x), Operand::from_json(y));
                if !equal(&x, &y) {
                    return order(&x, &y);
                }
            }
            Ok(Some(a.len().cmp(&b.len())))
        }
        _ => Err(format!(
            "'<' not supported between instances of {} and {}",
            operand_type(left),
            operand_type(right)
        )),
    }
}

fn operand_type(value: &Operand<'_>) -> &'static str {
    match value {
        Operand::Int(_) => "'int'",
        Operand::Float(_) => "'float'",
        Operand::Json(v) => type_name(v),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{json_value, text};

    #[test]
    fn python_semantics() {
        assert!(!truthy(&json!(0)) && !truthy(&json!(0.0)) && !truthy(&json!("")));
        assert!(!truthy(&json!([])) && !truthy(&json!({})) && !truthy(&Value::Null));
        assert!(truthy(&json!("0")) && truthy(&json!(-1)) && truthy(&json!([0])));
        assert_eq!(repr(&json!(["cpus", "local_gb"])), "['cpus', 'local_gb']");
        assert_eq!(
            repr(&json!({"em1": {"ip": null, "mac": "11", "up": true}})),
            "{'em1': {'ip': None, 'mac': '11', 'up': True}}"
        );
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a'\"\n"), "'a\\'\"\\n'");
        assert_eq!(repr_str("a\\b"), "'a\\\\b'");
        assert_eq!(repr_float(1448526000.0), "1448526000.0");
        assert_eq!(repr_float(1448526000.25), "1448526000.25");
        assert_eq!(to_str(&json!("x")), "x");
        assert_eq!(to_str(&json!(12288)), "12288");
        assert!(eq(&json!(10), &json!(10.0)));
        assert!(!eq(&json!(10), &json!("10")));
        assert!(eq(&json!({"a": [1]}), &json!({"a": [1.0]})));
    }

    proptest! {
        #[test]
        fn python_repr_quotes_every_string_safely(s in text()) {
            let repr = repr_str(&s);
            prop_assert!(repr.len() >= 2);
            prop_assert!(!repr.chars().any(|c| (c as u32) < 0x20 || c == '\u{7f}'), "{repr:?}");
            let quote = repr.chars().next().unwrap();
            prop_assert!(quote == '\'' || quote == '"');
            prop_assert!(repr.ends_with(quote));
        }

        #[test]
        fn python_equality_is_reflexive_and_symmetric(a in json_value(), b in json_value()) {
            let nan_free = |v: &Value| !v.to_string().contains("NaN");
            if nan_free(&a) {
                prop_assert!(eq(&a, &a));
            }
            prop_assert_eq!(eq(&a, &b), eq(&b, &a));
        }
    }
}
