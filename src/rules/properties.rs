//! Property tests of rule validation, storage and conditions: generated valid rules (and the
//! same rules mutated: wrong types, missing or extra keys) must be stored as posted or
//! refused with one of the documented 400 messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::conditions::Op;
use super::*;
use crate::db::migrate;
use crate::testing::{json_value, mutated, text};

/// The message prefixes of every validation failure (HTTP-API.md, "Validation answers 400").
const PREFIXES: [&str; 5] = [
    "Validation failed for conditions: ",
    "Validation failed for actions: ",
    "Unable to parse field JSON path ",
    "Invalid parameters for operator ",
    "Invalid parameters for action ",
];

const UUID: &str = "7b0f2cb8-5b5a-4b2b-9f52-3c9a1d2e0c01";

fn non_null() -> impl Strategy<Value = Value> {
    json_value().prop_filter("not null", |v| !v.is_null())
}

/// A network in CIDR form (any prefix, host bits possibly set), and an address inside it.
fn network_and_member() -> impl Strategy<Value = (String, IpAddr)> {
    prop_oneof![
        (any::<u32>(), 0u32..=32, any::<u32>()).prop_map(|(base, prefix, host)| {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            let member = (base & mask) | (host & !mask);
            (
                format!("{}/{prefix}", Ipv4Addr::from(base)),
                IpAddr::V4(Ipv4Addr::from(member)),
            )
        }),
        (any::<u128>(), 0u32..=128, any::<u128>()).prop_map(|(base, prefix, host)| {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            let member = (base & mask) | (host & !mask);
            (
                format!("{}/{prefix}", Ipv6Addr::from(base)),
                IpAddr::V6(Ipv6Addr::from(member)),
            )
        }),
    ]
}

/// A valid condition, as a client posts it.
fn condition_json() -> impl Strategy<Value = Value> {
    let multiple = prop::option::of(prop::sample::select(MULTIPLE_NAMES.to_vec()));
    prop_oneof![
        (
            prop::sample::select(vec!["eq", "ne", "lt", "le", "gt", "ge"]),
            jsonpath::properties::field(),
            non_null(),
            multiple.clone(),
        )
            .prop_map(|(op, field, value, multiple)| {
                let mut c = json!({"op": op, "field": field, "value": value});
                if let Some(m) = multiple {
                    c["multiple"] = json!(m);
                }
                c
            }),
        (
            jsonpath::properties::field(),
            network_and_member(),
            multiple
        )
            .prop_map(|(field, (net, _), multiple)| {
                let mut c = json!({"op": "in-net", "field": field, "value": net});
                if let Some(m) = multiple {
                    c["multiple"] = json!(m);
                }
                c
            }),
    ]
}

/// A valid action, as a client posts it.
fn action_json() -> impl Strategy<Value = Value> {
    let path = "/(extra|properties|driver_info)/[a-z_]{1,8}";
    let cap_value = prop_oneof![
        Just(Value::Null),
        "[a-z0-9:._-]{0,10}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ];
    prop_oneof![
        non_null().prop_map(|m| json!({"action": "fail", "message": m})),
        (path, non_null())
            .prop_map(|(p, v)| json!({"action": "set-attribute", "path": p, "value": v})),
        ("[a-z_][a-z0-9_]{0,8}", cap_value)
            .prop_map(|(n, v)| json!({"action": "set-capability", "name": n, "value": v})),
        (path, non_null(), prop::option::of(any::<bool>())).prop_map(|(p, v, u)| {
            let mut a = json!({"action": "extend-attribute", "path": p, "value": v});
            if let Some(u) = u {
                a["unique"] = json!(u);
            }
            a
        }),
        Just(json!({"action": "example"})),
    ]
}

fn valid_rule() -> impl Strategy<Value = (Value, Value)> {
    (
        prop::collection::vec(condition_json(), 0..4).prop_map(Value::Array),
        prop::collection::vec(action_json(), 1..4).prop_map(Value::Array),
    )
}

/// What `as_json` shows for posted conditions: `multiple` only when it is not `any`.
fn shown(conditions: &Value) -> Value {
    let mut shown = conditions.clone();
    for c in shown.as_array_mut().into_iter().flatten() {
        if c.get("multiple") == Some(&json!("any")) {
            c.as_object_mut().unwrap().remove("multiple");
        }
    }
    shown
}

fn check_refusal(result: Result<Validated>) -> std::result::Result<(), TestCaseError> {
    match result {
        Ok(_) => {}
        Err(Error::BadRequest(message)) => {
            prop_assert!(PREFIXES.iter().any(|p| message.starts_with(p)), "{message}");
        }
        Err(other) => prop_assert!(false, "not a 400: {other:?}"),
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn valid_rules_read_back_as_posted((conditions, actions) in valid_rule()) {
        let validated = validate(UUID.to_string(), Some("d".into()), &conditions, &actions);
        prop_assert!(validated.is_ok(), "{:?}", validated.err());
        let validated = validated.unwrap();
        // What validation parsed is what loading the rows parses.
        let loaded = Rule::from_row(validated.row.clone()).unwrap();
        let rule = validated.into_rule().unwrap();
        prop_assert_eq!(&loaded, &rule);
        let json = rule.as_json(false);
        prop_assert_eq!(&json["conditions"], &shown(&conditions));
        prop_assert_eq!(&json["actions"], &actions);
        // What reads back is itself a valid rule that reads back the same.
        let again = validate(UUID.to_string(), Some("d".into()), &json["conditions"], &json["actions"]).unwrap();
        prop_assert_eq!(again.into_rule().unwrap(), rule);
    }

    #[test]
    fn mutated_rules_are_stored_or_refused_with_a_400(
        (conditions, actions) in valid_rule().prop_flat_map(|(c, a)| (mutated(c), mutated(a))),
    ) {
        check_refusal(validate(UUID.to_string(), None, &conditions, &actions))?;
    }

    #[test]
    fn arbitrary_members_are_stored_or_refused_with_a_400(conditions in json_value(), actions in json_value()) {
        check_refusal(validate(UUID.to_string(), None, &conditions, &actions))?;
    }

    #[test]
    fn parameter_check_follows_its_model(
        params in prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c", "d"]), prop_oneof![Just(Value::Null), Just(json!(1))], 0..4),
        required in prop::sample::subsequence(vec!["a", "b"], 0..=2),
        optional in prop::sample::subsequence(vec!["c"], 0..=1),
    ) {
        let params: Map<String, Value> = params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let given = |k: &str| params.get(k).is_some_and(|v| !v.is_null());
        let missing = required.iter().any(|k| !given(k));
        let unexpected = params.keys().any(|k| given(k) && !required.contains(&k.as_str()) && !optional.contains(&k.as_str()));
        let result = check_params(&params, &required, &optional);
        prop_assert_eq!(result.is_ok(), !missing && !unexpected);
        if let Err(message) = result {
            prop_assert_eq!(message.contains("missing required parameter(s): "), missing);
            prop_assert_eq!(message.contains("unexpected parameter(s): "), unexpected);
        }
    }

    #[test]
    fn comparisons_never_panic_and_agree(field in json_value(), value in non_null()) {
        let params = Map::from_iter([("value".to_string(), value)]);
        let check = |op: &str| Op::parse(op, &params).unwrap().check(&field);
        let (eq, ne) = (check("eq"), check("ne"));
        prop_assert_eq!(eq.is_ok(), ne.is_ok());
        if let (Ok(eq), Ok(ne)) = (&eq, &ne) {
            prop_assert_ne!(eq, ne);
        }
        for (strict, loose) in [("lt", "ge"), ("gt", "le")] {
            if let (Ok(a), Ok(b)) = (check(strict), check(loose)) {
                // Unordered values (NaN) make both false; otherwise exactly one holds.
                prop_assert!(!(a && b));
            }
        }
        let _ = check("in-net");
    }

    #[test]
    fn every_value_equals_itself(value in non_null()) {
        let params = Map::from_iter([("value".to_string(), value.clone())]);
        prop_assert_eq!(Op::parse("eq", &params).unwrap().check(&value), Ok(true));
        prop_assert_eq!(Op::parse("ne", &params).unwrap().check(&value), Ok(false));
    }

    #[test]
    fn members_are_in_their_network((net, member) in network_and_member(), spaces in any::<bool>()) {
        let params = Map::from_iter([("value".to_string(), json!(net))]);
        let op = Op::parse("in-net", &params).unwrap();
        prop_assert_eq!(op.validate(&params), Ok(()));
        let written = if spaces { format!(" {member} ") } else { member.to_string() };
        prop_assert_eq!(op.check(&json!(written)), Ok(true));
    }

    #[test]
    fn network_values_are_validated_not_trusted(value in prop_oneof![text().prop_map(Value::from), json_value()]) {
        let params = Map::from_iter([("value".to_string(), value)]);
        let op = Op::parse("in-net", &params).unwrap();
        if op.validate(&params).is_ok() {
            prop_assert!(op.check(&json!("10.0.0.1")).is_ok());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Storing goes through SQL and JSON text; what is read back is what was created.
    #[test]
    fn stored_rules_read_back_unchanged(rules in prop::collection::vec(valid_rule(), 1..4)) {
        runtime().block_on(async {
            let db = Db::connect_url("sqlite://").await.unwrap();
            migrate::upgrade(&db, "head", |_| {}).await.unwrap();
            let mut created = Vec::new();
            for (conditions, actions) in rules {
                let rule = create(&db, NewRule { conditions, actions, ..NewRule::default() }).await.unwrap();
                prop_assert_eq!(&get(&db, &rule.uuid).await.unwrap(), &rule);
                created.push(rule);
            }
            let mut all = get_all(&db).await.unwrap();
            all.sort_by(|a, b| a.uuid.cmp(&b.uuid));
            created.sort_by(|a, b| a.uuid.cmp(&b.uuid));
            prop_assert_eq!(all, created);
            Ok(())
        })?;
    }
}
