//! Mutations of valid JSON documents (ramdisk reports, rules): structure-aware changes of a
//! value somewhere in the tree (wrong types, huge numbers, deep nesting, long strings,
//! unicode, NUL), then optionally changes of the text (duplicate keys, invalid UTF-8, lone
//! surrogates, truncation, nesting beyond the parser's limit).

use serde_json::{Map, Value, json};

use crate::rng::Rng;

/// Strings that tend to find bugs: empty, unicode of every width, direction marks, NUL,
/// byte-order mark, the highest code point, things shaped like the fields they replace.
const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "é",
    "日本語のテキスト",
    "🦀🔥💾",
    "\u{202e}evil\u{202c}",
    "a\u{0}b",
    "\u{0}",
    "\u{feff}",
    "\u{10ffff}",
    "e\u{301}\u{301}\u{301}",
    "\n\r\t",
    "\"quoted\"",
    "\\",
    "52:54:00:00:00:01",
    "52-54-00-00-00-01",
    "5254.0000.0001",
    "ZZ:ZZ:ZZ:ZZ:ZZ:ZZ",
    "01-52-54-00-00-00-01",
    "0.0.0.0",
    "::/0",
    "::1",
    "999.1.1.1",
    "192.0.2.1/24",
    "fe80::1%eth0",
    "2001:db8::1",
    "16384",
    "1e3",
    "-5",
    "NaN",
    "inf",
    "true",
    "null",
    "x86_64",
    "$.memory_mb",
    "/extra/x",
    "%s%s%n",
    "'; DROP TABLE nodes; --",
    "<script>",
    "00000000-0000-0000-0000-000000000000",
];

/// The most copies of an array element one mutation adds. Bounded because a rule's actions
/// are applied with one Ironic PATCH each: a rule with hundreds of them makes every report
/// take tens of seconds (correctly, but the run would crawl).
pub const MAX_REPEATS: usize = 100;

/// A value of any type, biased toward edges.
pub fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => json!(*rng.pick(&[
            0i64,
            -1,
            1,
            i64::MIN,
            i64::MAX,
            (1i64 << 53) + 1,
            -(1i64 << 31),
            4_294_967_296,
        ])),
        3 => json!(*rng.pick(&[u64::MAX, 1u64 << 63, 18_446_744_073_709_551_000])),
        4 => json!(*rng.pick(&[
            1e308,
            -1e308,
            5e-324,
            0.5,
            -0.0,
            1.7976931348623157e308,
            123_456_789.123_456_79,
        ])),
        5 | 6 => Value::String(rng.pick(ODD_STRINGS).to_string()),
        7 => Value::String(long_string(rng)),
        8 => json!([]),
        9 => json!({}),
        10 => Value::Array((0..rng.between(1, 8)).map(|_| small_value(rng)).collect()),
        11 => {
            let mut map = Map::new();
            for _ in 0..rng.between(1, 6) {
                map.insert(key(rng), small_value(rng));
            }
            Value::Object(map)
        }
        12 => {
            let depth = rng.between(2, 100);
            nested(rng, depth)
        }
        _ => Value::String(format!("{:x}", rng.next_u64())),
    }
}

fn small_value(rng: &mut Rng) -> Value {
    match rng.below(5) {
        0 => Value::Null,
        1 => json!(rng.next_u64() as i64),
        2 => Value::String(rng.pick(ODD_STRINGS).to_string()),
        3 => json!(rng.one_in(2)),
        _ => json!([]),
    }
}

fn key(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => String::new(),
        1 => "\u{0}".to_string(),
        2 => "k".repeat(rng.log_size(1, 5000)),
        3 => rng.pick(ODD_STRINGS).to_string(),
        4 => rng
            .pick(&[
                "cpus",
                "memory_mb",
                "local_gb",
                "interfaces",
                "inventory",
                "ipmi_address",
                "error",
                "logs",
                "boot_interface",
                "root_disk",
                "uuid",
                "op",
                "field",
                "value",
                "action",
                "path",
                "multiple",
                "conditions",
                "actions",
            ])
            .to_string(),
        _ => format!("k{}", rng.below(1000)),
    }
}

/// A long string: repeated ASCII, repeated multi-byte characters, or random code points.
pub fn long_string(rng: &mut Rng) -> String {
    long_string_upto(rng, 100_000)
}

/// [`long_string`] of at most `max` characters.
pub fn long_string_upto(rng: &mut Rng, max: usize) -> String {
    let len = rng.log_size(256.min(max), max);
    match rng.below(3) {
        0 => "a".repeat(len),
        1 => "é🦀".repeat(len / 2 + 1),
        _ => (0..len)
            .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'))
            .collect(),
    }
}

/// A value nested `depth` arrays or objects deep (within what a JSON parser accepts when
/// `depth` is under 128).
pub fn nested(rng: &mut Rng, depth: usize) -> Value {
    let mut value = small_value(rng);
    for _ in 0..depth {
        value = if rng.one_in(2) {
            json!([value])
        } else {
            json!({ "n": value })
        };
    }
    value
}

/// JSON pointers to every value in the tree, with their depth.
fn pointers(value: &Value, prefix: &str, depth: usize, out: &mut Vec<(usize, String)>) {
    out.push((depth, prefix.to_string()));
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                pointers(v, &format!("{prefix}/{escaped}"), depth + 1, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, &format!("{prefix}/{i}"), depth + 1, out);
            }
        }
        _ => {}
    }
}

/// One structure-aware mutation somewhere in `doc`: depth is chosen first, so shallow
/// fields (the ones the daemon reads) are hit as often as the leaves of long lists.
pub fn mutate(rng: &mut Rng, doc: &mut Value) {
    let mut all = Vec::new();
    pointers(doc, "", 0, &mut all);
    let max_depth = all.iter().map(|(d, _)| *d).max().unwrap_or(0);
    let depth = rng
        .between(0, max_depth)
        .max(if max_depth > 0 { 1 } else { 0 });
    let at: Vec<&String> = all
        .iter()
        .filter(|(d, _)| *d == depth)
        .map(|(_, p)| p)
        .collect();
    let pointer = at[rng.below(at.len())].clone();
    let (parent_pointer, last) = match pointer.rfind('/') {
        Some(cut) => (
            pointer[..cut].to_string(),
            Some(pointer[cut + 1..].to_string()),
        ),
        None => (String::new(), None),
    };
    let choice = rng.below(10);
    // Removal and duplication work on the parent.
    if choice == 0
        && let Some(last) = &last
        && let Some(parent) = doc.pointer_mut(&parent_pointer)
    {
        match parent {
            Value::Object(map) => {
                map.remove(&last.replace("~1", "/").replace("~0", "~"));
            }
            Value::Array(items) => {
                if let Ok(i) = last.parse::<usize>()
                    && i < items.len()
                {
                    items.remove(i);
                }
            }
            _ => {}
        }
        return;
    }
    let Some(target) = doc.pointer_mut(&pointer) else {
        return;
    };
    match (choice, &mut *target) {
        (1, Value::Object(map)) => {
            map.insert(key(rng), odd_value(rng));
        }
        (1, Value::Array(items)) if !items.is_empty() => {
            let copy = items[rng.below(items.len())].clone();
            for _ in 0..rng.log_size(1, MAX_REPEATS) {
                items.push(copy.clone());
            }
        }
        (2, Value::Number(n)) => {
            *target = Value::String(n.to_string());
        }
        (2, Value::String(s)) => {
            *target = s
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                .unwrap_or_else(|| json!(s.len()));
        }
        (3, Value::String(s)) => {
            let insert = rng.pick(ODD_STRINGS);
            let cut = (0..=s.len()).filter(|i| s.is_char_boundary(*i)).count();
            let at = (0..=s.len())
                .filter(|i| s.is_char_boundary(*i))
                .nth(rng.below(cut))
                .unwrap_or(0);
            s.insert_str(at, insert);
        }
        (4, _) => {
            let depth = rng.between(2, 100);
            *target = nested(rng, depth);
        }
        _ => *target = odd_value(rng),
    }
}

/// `doc` as text, then (some of the time) one change of the text itself.
pub fn to_text(rng: &mut Rng, doc: &Value, corrupt_percent: usize) -> Vec<u8> {
    let mut text = if rng.one_in(4) {
        serde_json::to_vec_pretty(doc)
    } else {
        serde_json::to_vec(doc)
    }
    .unwrap_or_default();
    if rng.percent(corrupt_percent) {
        corrupt(rng, &mut text, doc);
    }
    text
}

/// One change of JSON text that a structural edit cannot make.
pub fn corrupt(rng: &mut Rng, text: &mut Vec<u8>, doc: &Value) {
    let quote_positions: Vec<usize> = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'"')
        .map(|(i, _)| i + 1)
        .collect();
    let in_string = |rng: &mut Rng, len: usize| {
        if quote_positions.is_empty() {
            rng.below(len + 1)
        } else {
            *rng.pick(&quote_positions)
        }
    };
    match rng.below(12) {
        // Duplicate key: the same key twice in the top object, the odd value first or last.
        0 | 1 => {
            if let Some(map) = doc.as_object()
                && let Some(k) = map.keys().nth(rng.below(map.len().max(1)))
                && text.first() == Some(&b'{')
            {
                let pair = format!(
                    "{}:{}",
                    Value::String(k.clone()),
                    serde_json::to_string(&odd_value(rng)).unwrap_or_default()
                );
                if rng.one_in(2) {
                    let insert = format!("{pair},");
                    text.splice(1..1, insert.into_bytes());
                } else if let Some(end) = text.iter().rposition(|b| *b == b'}') {
                    let insert = format!(",{pair}");
                    text.splice(end..end, insert.into_bytes());
                }
            }
        }
        // Invalid UTF-8 inside a string.
        2 | 3 => {
            const BAD: [&[u8]; 6] = [
                &[0xff],
                &[0xc3, 0x28],
                &[0xed, 0xa0, 0x80],
                &[0xf4, 0x90, 0x80, 0x80],
                &[0xc0, 0xaf],
                &[0x80],
            ];
            let bad = rng.pick(&BAD);
            let at = in_string(rng, text.len());
            text.splice(at..at, bad.iter().copied());
        }
        // A raw control character (NUL) inside a string.
        4 => {
            let at = in_string(rng, text.len());
            text.insert(at, 0);
        }
        // A lone or reversed surrogate escape.
        5 => {
            let escape = rng.pick(&["\\ud800", "\\udc00\\ud800", "\\uDFFF", "\\u00", "\\x41"]);
            let at = in_string(rng, text.len());
            text.splice(at..at, escape.bytes());
        }
        // Truncated.
        6 | 7 => {
            let keep = rng.below(text.len().max(1));
            text.truncate(keep);
        }
        // Nesting beyond the parser's recursion limit, as the whole body or one value.
        8 => {
            let depth = rng.log_size(129, 200_000);
            let (open, close) = if rng.one_in(2) {
                ("[", "]")
            } else {
                ("{\"a\":", "}")
            };
            let deep = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            if rng.one_in(2) {
                *text = deep.into_bytes();
            } else if let Some(colon) = text.iter().position(|b| *b == b':') {
                text.splice(colon + 1..colon + 1, format!("{deep},\"z\":").into_bytes());
            }
        }
        // Numbers a strict parser refuses or cannot hold.
        9 => {
            let number = rng.pick(&[
                "1e400", "-1e400", "NaN", "Infinity", "01", "1.", ".5", "+1", "0x10",
            ]);
            if let Some(colon) = text.iter().position(|b| *b == b':') {
                text.splice(
                    colon + 1..colon + 1,
                    format!("{number},\"z\":").into_bytes(),
                );
            }
        }
        // Huge integer literal (valid JSON, out of every integer range).
        10 => {
            let digits = "9".repeat(rng.log_size(20, 5000));
            if let Some(colon) = text.iter().position(|b| *b == b':') {
                text.splice(
                    colon + 1..colon + 1,
                    format!("{digits},\"z\":").into_bytes(),
                );
            }
        }
        // Byte flips, a BOM, trailing garbage, comments.
        _ => match rng.below(4) {
            0 => {
                for _ in 0..rng.between(1, 5) {
                    if !text.is_empty() {
                        let i = rng.below(text.len());
                        text[i] ^= 1 << rng.below(8);
                    }
                }
            }
            1 => {
                text.splice(0..0, [0xef, 0xbb, 0xbf]);
            }
            2 => text.extend_from_slice(b" trailing"),
            _ => {
                text.splice(0..0, b"/* comment */".iter().copied());
            }
        },
    }
}
