//! Rule conditions: the operators a condition's `op` names, parsed with their parameter, and
//! how each checks one field value.
//!
//! Ports the `ironic_inspector.rules.conditions` entry points of upstream's `setup.cfg`,
//! their classes in `ironic_inspector/plugins/rules.py` (`coerce`, `SimpleCondition` and its
//! six comparisons, `NetCondition`) and `RuleConditionPlugin` of
//! `ironic_inspector/plugins/base.py`. A condition is parsed once, when its rule is created
//! or loaded, into a [`Condition`]; checking it is one `match` on its [`Op`]. Conditions do
//! no I/O.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnetwork::IpNetwork;
use serde_json::{Map, Value};

use super::check_params;
use super::jsonpath::FieldPath;
use crate::py::{self, Operand};

/// Every condition name, in `setup.cfg` order (the order validation messages list them in).
pub const CONDITION_NAMES: [&str; 7] = ["eq", "lt", "gt", "le", "ge", "ne", "in-net"];

/// A condition of a rule, parsed: the field it reads and the operator that checks each value
/// found there. Its `multiple` mode is kept by the rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The field as written in the rule, for logs and messages.
    pub field: String,
    /// The field, ready to evaluate.
    pub path: FieldPath,
    /// The operator with its parameter.
    pub op: Op,
}

/// An operator with its parameter (`value`).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `eq`, `ne`, `lt`, `le`, `gt`, `ge`: the field's value, coerced to the type of the
    /// rule's value, compared with it as Python compares. A stored condition without a
    /// `value` compares with `null`.
    Compare(CmpOp, Value),
    /// `in-net`: the field is an IP address inside the network. A stored network that does
    /// not parse keeps the reason, which checking the condition reports.
    InNet(Result<IpNetwork, String>),
}

impl Op {
    /// The operator `name` with its parameter taken from `params` (a condition's keys except
    /// `op`, `field` and `multiple`); `None` for an unknown name. Takes what is there, as a
    /// stored row may hold it: [`Op::validate`] is what refuses a new condition.
    pub fn parse(name: &str, params: &Map<String, Value>) -> Option<Op> {
        let value = params.get("value").unwrap_or(&Value::Null);
        let compare = |op| Some(Op::Compare(op, value.clone()));
        match name {
            "eq" => compare(CmpOp::Eq),
            "lt" => compare(CmpOp::Lt),
            "gt" => compare(CmpOp::Gt),
            "le" => compare(CmpOp::Le),
            "ge" => compare(CmpOp::Ge),
            "ne" => compare(CmpOp::Ne),
            "in-net" => Some(Op::InNet(network(value))),
            _ => None,
        }
    }

    /// The name rules use for it (`op`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Compare(op, _) => op.name(),
            Op::InNet(_) => "in-net",
        }
    }

    /// Checks the parameters of a new condition, which this operator was parsed from:
    /// `value` is required and nothing else is allowed (`null` counts as absent); for
    /// `in-net` it must be a network.
    ///
    /// # Errors
    /// The reason, shown after `Invalid parameters for operator <op>: `.
    pub fn validate(&self, params: &Map<String, Value>) -> Result<(), String> {
        check_params(params, &["value"], &[])?;
        match self {
            Op::InNet(Err(err)) => Err(format!("invalid value: {err}")),
            Op::InNet(Ok(_)) | Op::Compare(..) => Ok(()),
        }
    }

    /// Whether the condition holds for one value the field's path matched.
    ///
    /// # Errors
    /// The field's value cannot be compared (upstream raised there and processing failed
    /// with "Unexpected exception during processing"), or a stored network does not parse.
    pub fn check(&self, field: &Value) -> Result<bool, String> {
        match self {
            Op::Compare(op, expected) => {
                let left = coerce(field, expected)?;
                compare(*op, &left, &Operand::from_json(expected))
            }
            Op::InNet(net) => {
                let net = net.as_ref().map_err(Clone::clone)?;
                Ok(net.contains(ip_address(field)?))
            }
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `lt`
    Lt,
    /// `le`
    Le,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
}

impl CmpOp {
    fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// The network a rule names: `a.b.c.d/n`, an IPv6 CIDR, or a single address.
fn network(value: &Value) -> Result<IpNetwork, String> {
    let text = match value {
        Value::String(s) => s.trim(),
        other => return Err(format!("invalid IPNetwork {other}")),
    };
    IpNetwork::from_str(text).map_err(|_| format!("invalid IPNetwork {text}"))
}

/// An IP address as netaddr's `IPAddress` read it: text, or an integer (IPv4 below 2^32).
fn ip_address(value: &Value) -> Result<IpAddr, String> {
    match value {
        Value::String(s) => IpAddr::from_str(s.trim())
            .map_err(|_| format!("failed to detect a valid IP address from {s:?}")),
        Value::Number(n) => match n.as_u64() {
            Some(v) => Ok(match u32::try_from(v) {
                Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                Err(_) => IpAddr::V6(Ipv6Addr::from(u128::from(v))),
            }),
            None => Err(format!("{n} is not a valid IP address")),
        },
        other => Err(format!("{other} is not a valid IP address")),
    }
}

/// Upstream's `coerce(value, expected)`: `float(value)` when the rule's value is a float,
/// `int(value)` when it is an int or a bool, else the value unchanged.
fn coerce<'a>(value: &'a Value, expected: &Value) -> Result<Operand<'a>, String> {
    match expected {
        Value::Number(n) if n.is_f64() => py::float(value).map(Operand::Float),
        Value::Number(_) | Value::Bool(_) => py::int(value).map(Operand::Int),
        _ => Ok(Operand::from_json(value)),
    }
}

/// `operator.<op>(left, right)` with Python 3 semantics: equality never fails (values of
/// different kinds are unequal; ints, floats and booleans compare by value); ordering
/// works between numbers, between strings and between lists, and fails otherwise.
fn compare(op: CmpOp, left: &Operand<'_>, right: &Operand<'_>) -> Result<bool, String> {
    match op {
        CmpOp::Eq => Ok(py::equal(left, right)),
        CmpOp::Ne => Ok(!py::equal(left, right)),
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
            let order = py::order(left, right)?;
            Ok(match (op, order) {
                (_, None) => false,
                (CmpOp::Lt, Some(o)) => o == Ordering::Less,
                (CmpOp::Le, Some(o)) => o != Ordering::Greater,
                (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
                (_, Some(o)) => o != Ordering::Less,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("value".to_string(), value);
        map
    }

    fn op(name: &str, value: Value) -> Op {
        Op::parse(name, &params(value)).unwrap()
    }

    fn check(name: &str, field: Value, value: Value) -> bool {
        op(name, value).check(&field).unwrap()
    }

    fn check_err(name: &str, field: Value, value: Value) -> String {
        op(name, value).check(&field).unwrap_err()
    }

    /// Upstream's table: (field, rule value) pairs, equal, then greater, then smaller.
    fn test_set() -> Vec<(Value, Value)> {
        vec![
            (json!(42), json!(42)),
            (json!("42"), json!(42)),
            (json!("4.2"), json!(4.2)),
            (json!(42), json!(41)),
            (json!("42"), json!(41)),
            (json!("4.2"), json!(4.0)),
            (json!(41), json!(42)),
            (json!("41"), json!(42)),
            (json!("4.0"), json!(4.2)),
        ]
    }

    fn run(op: &str, expected: [bool; 9]) {
        for ((field, value), want) in test_set().into_iter().zip(expected) {
            assert_eq!(
                check(op, field.clone(), value.clone()),
                want,
                "{op} {field} {value}"
            );
        }
    }

    const T: bool = true;
    const F: bool = false;

    #[test]
    fn comparisons_follow_upstream_table() {
        run("eq", [T, T, T, F, F, F, F, F, F]);
        run("ne", [F, F, F, T, T, T, T, T, T]);
        run("gt", [F, F, F, T, T, T, F, F, F]);
        run("ge", [T, T, T, T, T, T, F, F, F]);
        run("le", [T, T, T, F, F, F, T, T, T]);
        run("lt", [F, F, F, F, F, F, T, T, T]);
        assert!(check("eq", json!("foo"), json!("foo")));
        assert!(!check("eq", json!("foo"), json!("bar")));
        assert!(!check("ne", json!("foo"), json!("foo")));
        assert!(check("ne", json!("foo"), json!("bar")));
    }

    #[test]
    fn int_coercion_is_pythons_int() {
        assert!(check("eq", json!(" 12 "), json!(12)));
        assert!(check("eq", json!("+12"), json!(12)));
        assert!(check("eq", json!("-12"), json!(-12)));
        assert!(check("eq", json!("007"), json!(7)));
        // int(1.9) == 1: floats truncate toward zero.
        assert!(check("eq", json!(1.9), json!(1)));
        assert!(check("eq", json!(-1.9), json!(-1)));
        assert!(check("eq", json!(true), json!(1)));
        assert!(check("lt", json!(false), json!(1)));
        let big = json!(u64::MAX);
        assert!(check("gt", big, json!(1)));
        for bad in [
            json!("1.5"),
            json!("abc"),
            json!(""),
            json!("1e3"),
            json!(null),
            json!([1]),
            json!({}),
        ] {
            let err = check_err("eq", bad.clone(), json!(1));
            assert!(!err.is_empty(), "{bad}");
        }
        assert_eq!(
            check_err("eq", json!("1.5"), json!(1)),
            "invalid literal for int() with base 10: '1.5'"
        );
    }

    #[test]
    fn bool_rule_value_counts_as_int() {
        assert!(check("eq", json!(true), json!(true)));
        assert!(check("eq", json!("1"), json!(true)));
        assert!(check("eq", json!(1.7), json!(true)));
        assert!(!check("eq", json!(0), json!(true)));
        assert!(check("eq", json!(0), json!(false)));
        assert!(check("lt", json!(0), json!(true)));
        assert!(check_err("eq", json!("yes"), json!(true)).contains("invalid literal"));
    }

    #[test]
    fn float_coercion_is_pythons_float() {
        assert!(check("eq", json!(4), json!(4.0)));
        assert!(check("eq", json!("4"), json!(4.0)));
        assert!(check("eq", json!(" 1e3 "), json!(1000.0)));
        assert!(check("eq", json!(true), json!(1.0)));
        assert!(check("gt", json!("inf"), json!(1.5)));
        assert!(!check("eq", json!("nan"), json!(1.5)));
        assert!(check("ne", json!("nan"), json!(1.5)));
        assert!(!check("lt", json!("nan"), json!(1.5)));
        for bad in [json!("x"), json!(""), json!("0x10"), json!(null), json!([])] {
            assert!(
                !check_err("eq", bad.clone(), json!(1.5)).is_empty(),
                "{bad}"
            );
        }
    }

    #[test]
    fn other_rule_values_compare_uncoerced() {
        // A string rule value: no coercion, so 42 != "42".
        assert!(!check("eq", json!(42), json!("42")));
        assert!(check("ne", json!(42), json!("42")));
        assert!(check("lt", json!("abc"), json!("abd")));
        assert!(check("ge", json!("b"), json!("abc")));
        assert!(check_err("lt", json!(42), json!("42")).contains("not supported"));
        assert!(check("eq", json!([1, "a"]), json!([1, "a"])));
        assert!(check("eq", json!([1.0, true]), json!([1, 1])));
        assert!(check("lt", json!([1, 2]), json!([1, 3])));
        assert!(check("lt", json!([1]), json!([1, 0])));
        assert!(check("eq", json!({"a": [1]}), json!({"a": [1.0]})));
        assert!(!check("eq", json!(null), json!({"a": 1})));
        assert!(check_err("gt", json!({"a": 1}), json!({"a": 1})).contains("not supported"));
    }

    /// What creating a condition `name` with these parameters answers.
    fn validate(name: &str, params: &Map<String, Value>) -> Result<(), String> {
        Op::parse(name, params).unwrap().validate(params)
    }

    #[test]
    fn comparison_validation() {
        validate("eq", &params(json!(42))).unwrap();
        assert_eq!(
            validate("eq", &Map::new()).unwrap_err(),
            "missing required parameter(s): value"
        );
        assert_eq!(
            validate("eq", &params(Value::Null)).unwrap_err(),
            "missing required parameter(s): value"
        );
        let mut extra = params(json!(1));
        extra.insert("foo".to_string(), json!("bar"));
        extra.insert("baz".to_string(), json!(1));
        extra.insert("ignored".to_string(), Value::Null);
        assert_eq!(
            validate("eq", &extra).unwrap_err(),
            "unexpected parameter(s): baz, foo"
        );
        extra.remove("value");
        assert_eq!(
            validate("eq", &extra).unwrap_err(),
            "missing required parameter(s): value; unexpected parameter(s): baz, foo"
        );
    }

    #[test]
    fn in_net() {
        validate("in-net", &params(json!("192.0.2.1/24"))).unwrap();
        validate("in-net", &params(json!("2001:db8::/32"))).unwrap();
        validate("in-net", &params(json!("192.0.2.1"))).unwrap();
        assert_eq!(
            validate("in-net", &params(json!("foo"))).unwrap_err(),
            "invalid value: invalid IPNetwork foo"
        );
        assert!(
            validate("in-net", &params(json!(42)))
                .unwrap_err()
                .starts_with("invalid value: ")
        );
        assert!(validate("in-net", &params(json!("10.0.0.0/33"))).is_err());
        assert_eq!(
            validate("in-net", &Map::new()).unwrap_err(),
            "missing required parameter(s): value"
        );
        assert!(check("in-net", json!("192.0.2.4"), json!("192.0.2.1/24")));
        assert!(!check("in-net", json!("192.1.2.4"), json!("192.0.2.1/24")));
        assert!(check(
            "in-net",
            json!("2001:db8::5"),
            json!("2001:db8::/32")
        ));
        assert!(!check("in-net", json!("192.0.2.4"), json!("::/0")));
        assert!(check(
            "in-net",
            json!(3_221_225_988_u64),
            json!("192.0.2.0/24")
        ));
        assert!(!check_err("in-net", json!("not an ip"), json!("192.0.2.0/24")).is_empty());
        assert!(!check_err("in-net", json!(null), json!("192.0.2.0/24")).is_empty());
        // A stored network that does not parse fails when checked, before the field is read.
        assert_eq!(
            check_err("in-net", json!("not an ip"), json!("foo")),
            "invalid IPNetwork foo"
        );
    }

    #[test]
    fn every_name_parses_to_its_operator() {
        for name in CONDITION_NAMES {
            assert_eq!(Op::parse(name, &Map::new()).unwrap().name(), name);
        }
        assert!(Op::parse("matches", &Map::new()).is_none());
        // A stored comparison without a value compares with null.
        assert_eq!(
            Op::parse("lt", &Map::new()),
            Some(Op::Compare(CmpOp::Lt, Value::Null))
        );
    }
}
