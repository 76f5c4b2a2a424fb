//! Rule validation, evaluation and storage (on a temporary SQLite database). The actions'
//! Ironic calls are tested in `tests/api/rules_engine.rs` against the fake Ironic.

use serde_json::{Value, json};

use super::*;
use crate::db::migrate;

const UUID: &str = "7b0f2cb8-5b5a-4b2b-9f52-3c9a1d2e0c01";
const UUID2: &str = "0a1f2cb8-5b5a-4b2b-9f52-3c9a1d2e0c02";

fn conditions() -> Value {
    json!([
        {"op": "eq", "field": "memory_mb", "value": 1024},
        {"op": "eq", "field": "local_gb", "value": 60},
    ])
}

fn actions() -> Value {
    json!([{"action": "fail", "message": "boom!"}])
}

fn new_rule(conditions: Value, actions: Value) -> NewRule {
    NewRule {
        uuid: None,
        description: None,
        conditions,
        actions,
    }
}

/// The rule `create` would store, without a database.
fn rule(conditions: Value, actions: Value) -> Rule {
    validate(UUID.to_string(), None, &conditions, &actions)
        .unwrap()
        .into_rule()
        .unwrap()
}

fn validation_error(conditions: Value, actions: Value) -> String {
    match validate(UUID.to_string(), None, &conditions, &actions) {
        Err(Error::BadRequest(msg)) => msg,
        other => panic!("expected a 400, got {other:?}"),
    }
}

async fn db() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("rules.db").display());
    let db = Db::connect_url(&url).await.unwrap();
    migrate::upgrade(&db, "head", |_| {}).await.unwrap();
    (db, dir)
}

#[test]
fn as_json_echoes_the_input_and_multiple_only_when_not_any() {
    let conds = json!([
        {"op": "eq", "field": "memory_mb", "value": 1024, "multiple": "all"},
        {"op": "in-net", "field": "ip", "value": "10.0.0.0/8", "extra": null},
    ]);
    let rule = rule(conds, actions());
    assert_eq!(rule.multiple, vec![Multiple::All, Multiple::Any]);
    assert_eq!(
        rule.as_json(false),
        json!({
            "uuid": UUID,
            "description": null,
            "conditions": [
                {"op": "eq", "field": "memory_mb", "value": 1024, "multiple": "all"},
                {"op": "in-net", "field": "ip", "value": "10.0.0.0/8", "extra": null},
            ],
            "actions": [{"action": "fail", "message": "boom!"}],
        })
    );
    assert_eq!(
        rule.as_json(true),
        json!({"uuid": UUID, "description": null})
    );
}

#[test]
fn schema_errors_come_first_with_upstream_prefixes() {
    let cases = [
        (
            json!({}),
            actions(),
            "Validation failed for conditions: {} is not of type 'array'",
        ),
        (
            json!(null),
            actions(),
            "Validation failed for conditions: None is not of type 'array'",
        ),
        (
            json!([1]),
            actions(),
            "Validation failed for conditions: 1 is not of type 'object'",
        ),
        (
            json!([{"field": "x", "value": 1}]),
            actions(),
            "Validation failed for conditions: 'op' is a required property",
        ),
        (
            json!([{"op": "eq", "value": 1}]),
            actions(),
            "Validation failed for conditions: 'field' is a required property",
        ),
        (
            json!([{"op": "foobar", "field": "x", "value": 1}]),
            actions(),
            "Validation failed for conditions: 'foobar' is not one of \
             ['eq', 'lt', 'gt', 'le', 'ge', 'ne', 'in-net']",
        ),
        (
            json!([{"op": "eq", "field": 42, "value": 1}]),
            actions(),
            "Validation failed for conditions: 42 is not of type 'string'",
        ),
        (
            json!([{"op": "eq", "field": "x", "value": 1, "multiple": "some"}]),
            actions(),
            "Validation failed for conditions: 'some' is not one of ['all', 'any', 'first']",
        ),
        (
            json!([{"op": "eq", "field": "x", "value": 1, "multiple": null}]),
            actions(),
            "Validation failed for conditions: None is not one of ['all', 'any', 'first']",
        ),
        (
            conditions(),
            json!([]),
            "Validation failed for actions: [] is too short",
        ),
        (
            conditions(),
            json!(null),
            "Validation failed for actions: None is not of type 'array'",
        ),
        (
            conditions(),
            json!([{"message": "boom"}]),
            "Validation failed for actions: 'action' is a required property",
        ),
        (
            conditions(),
            json!([{"action": "foobar"}]),
            "Validation failed for actions: 'foobar' is not one of \
             ['example', 'fail', 'set-attribute', 'set-capability', 'extend-attribute']",
        ),
        (
            conditions(),
            json!(["fail"]),
            "Validation failed for actions: 'fail' is not of type 'object'",
        ),
    ];
    for (conds, acts, want) in cases {
        assert_eq!(
            validation_error(conds.clone(), acts.clone()),
            want,
            "{conds} {acts}"
        );
    }
    // Both bad: conditions are reported.
    assert!(
        validation_error(json!([{"op": "x"}]), json!([]))
            .starts_with("Validation failed for conditions: ")
    );
}

#[test]
fn field_and_parameter_errors() {
    let err = validation_error(json!([{"op": "eq", "field": "!*!", "value": 1}]), actions());
    assert_eq!(
        err,
        "Unable to parse field JSON path !*!: Error on line 1, col 0: Unexpected character: !"
    );
    let err = validation_error(json!([{"op": "eq", "field": "memory_mb"}]), actions());
    assert_eq!(
        err,
        "Invalid parameters for operator eq: missing required parameter(s): value"
    );
    let err = validation_error(
        json!([{"op": "eq", "field": "memory_mb", "value": 1, "foo": "bar"}]),
        actions(),
    );
    assert_eq!(
        err,
        "Invalid parameters for operator eq: unexpected parameter(s): foo"
    );
    let err = validation_error(
        json!([{"op": "in-net", "field": "ip", "value": "foo"}]),
        actions(),
    );
    assert_eq!(
        err,
        "Invalid parameters for operator in-net: invalid value: invalid IPNetwork foo"
    );
    // Conditions are checked one by one: the first condition's bad parameters come before
    // the second one's bad field.
    let err = validation_error(
        json!([
            {"op": "eq", "field": "a", "value": 1, "x": 1},
            {"op": "eq", "field": "!", "value": 1},
        ]),
        actions(),
    );
    assert!(
        err.starts_with("Invalid parameters for operator eq"),
        "{err}"
    );
    let err = validation_error(
        conditions(),
        json!([{"action": "fail", "message": "boom", "foo": "bar"}]),
    );
    assert_eq!(
        err,
        "Invalid parameters for action fail: unexpected parameter(s): foo"
    );
    let err = validation_error(conditions(), json!([{"action": "set-attribute"}]));
    assert_eq!(
        err,
        "Invalid parameters for action set-attribute: missing required parameter(s): path, value"
    );
    let err = validation_error(conditions(), json!([{"action": "fail", "message": null}]));
    assert_eq!(
        err,
        "Invalid parameters for action fail: missing required parameter(s): message"
    );
}

fn check(rule: &Rule, data: &Value) -> Result<bool> {
    check_conditions(rule, data, "node")
}

#[test]
fn every_condition_must_hold() {
    let rule = rule(conditions(), actions());
    assert!(check(&rule, &json!({"memory_mb": 1024, "local_gb": 60})).unwrap());
    assert!(!check(&rule, &json!({"memory_mb": 1024, "local_gb": 42})).unwrap());
    assert!(!check(&rule, &json!({"memory_mb": 512, "local_gb": 60})).unwrap());
    // Coercion: strings from the ramdisk compare with ints.
    assert!(check(&rule, &json!({"memory_mb": "1024", "local_gb": 60.5})).unwrap());
}

#[test]
fn missing_field_means_the_rule_does_not_apply() {
    let rule = rule(conditions(), actions());
    assert!(!check(&rule, &json!({"memory_mb": 1024})).unwrap());
    // A path going deeper than the data matches nothing either.
    let deep = self::rule(
        json!([{"op": "eq", "field": "memory_mb.x", "value": 1}]),
        actions(),
    );
    assert!(!check(&deep, &json!({"memory_mb": 1024})).unwrap());
    let listed = self::rule(
        json!([{"op": "eq", "field": "disks[*].size", "value": 1}]),
        actions(),
    );
    assert!(!check(&listed, &json!({"disks": []})).unwrap());
}

#[test]
fn no_conditions_always_apply() {
    let rule = rule(json!([]), actions());
    assert!(check(&rule, &json!({})).unwrap());
}

#[test]
fn coercion_failures_are_internal_errors() {
    let rule = rule(conditions(), actions());
    let err = check(&rule, &json!({"memory_mb": "lots", "local_gb": 60})).unwrap_err();
    assert!(matches!(err, Error::Internal { .. }), "{err:?}");
    assert!(
        err.to_string().contains("invalid literal for int()"),
        "{err}"
    );
    let net = self::rule(
        json!([{"op": "in-net", "field": "ip", "value": "10.0.0.0/8"}]),
        actions(),
    );
    assert!(check(&net, &json!({"ip": "10.1.2.3"})).unwrap());
    assert!(!check(&net, &json!({"ip": "11.1.2.3"})).unwrap());
    let err = check(&net, &json!({"ip": "nope"})).unwrap_err();
    assert!(matches!(err, Error::Internal { .. }), "{err:?}");
}

fn ips(list: &[&str]) -> Value {
    let interfaces: Vec<Value> = list.iter().map(|ip| json!({"ip": ip})).collect();
    json!({"interfaces": interfaces})
}

fn multiple_rule(multiple: Option<&str>) -> Rule {
    let mut cond = json!({"op": "eq", "field": "interfaces[*].ip", "value": "1.2.3.4"});
    if let Some(m) = multiple {
        cond["multiple"] = json!(m);
    }
    rule(json!([cond]), actions())
}

fn run_multiple(multiple: Option<&str>, expected: [bool; 4]) {
    let rule = multiple_rule(multiple);
    let sets: [&[&str]; 4] = [
        &["1.1.1.1", "1.2.3.4", "1.3.2.2"],
        &["1.2.3.4"],
        &["1.1.1.1", "1.3.2.2"],
        &["1.2.3.4", "1.3.2.2"],
    ];
    for (set, want) in sets.iter().zip(expected) {
        assert_eq!(
            check(&rule, &ips(set)).unwrap(),
            want,
            "{multiple:?} {set:?}"
        );
    }
}

#[test]
fn multiple_modes() {
    run_multiple(None, [true, true, false, true]);
    run_multiple(Some("any"), [true, true, false, true]);
    run_multiple(Some("all"), [false, true, false, false]);
    run_multiple(Some("first"), [false, true, false, true]);
}

#[test]
fn multiple_any_stops_at_the_first_true_value() {
    // A value after the match that cannot be coerced is never looked at.
    let rule = rule(
        json!([{"op": "eq", "field": "sizes[*]", "value": 1}]),
        actions(),
    );
    assert!(check(&rule, &json!({"sizes": [2, 1, "x"]})).unwrap());
    assert!(check(&rule, &json!({"sizes": [2, "x"]})).is_err());
    let first = self::rule(
        json!([{"op": "eq", "field": "sizes[*]", "value": 1, "multiple": "first"}]),
        actions(),
    );
    assert!(check(&first, &json!({"sizes": [1, "x"]})).unwrap());
    let all = self::rule(
        json!([{"op": "eq", "field": "sizes[*]", "value": 1, "multiple": "all"}]),
        actions(),
    );
    assert!(!check(&all, &json!({"sizes": [2, "x"]})).unwrap());
}

#[test]
fn param_check_sorts_and_ignores_nulls() {
    let params = json!({"b": 1, "a": 2, "n": null, "r": 1});
    let Value::Object(params) = params else {
        unreachable!()
    };
    assert_eq!(
        check_params(&params, &["z", "r", "y"], &["b"]).unwrap_err(),
        "missing required parameter(s): y, z; unexpected parameter(s): a"
    );
    check_params(&params, &["r"], &["a", "b"]).unwrap();
}

/// Found by the property tests: serde_json's default float parser may miss the nearest
/// double by one unit, so a float `value` read back from the database differed from the
/// one posted (an `eq` on it then failed to match).
#[tokio::test]
async fn stored_floats_read_back_exactly() {
    let (db, _dir) = db().await;
    let values = [
        -4.050_368_647_738_449_4e-147,
        0.1 + 0.2,
        5e-324,
        1.797_693_134_862_315_7e308,
    ];
    let conds: Vec<Value> = values
        .iter()
        .map(|v| json!({"op": "eq", "field": "x", "value": v}))
        .collect();
    let created = create(&db, new_rule(Value::Array(conds), actions()))
        .await
        .unwrap();
    let fetched = get(&db, &created.uuid).await.unwrap();
    for (condition, value) in fetched.conditions.iter().zip(values) {
        assert_eq!(condition["value"].as_f64(), Some(value));
    }
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn storage_round_trip() {
    let (db, _dir) = db().await;
    let conds = json!([
        {"op": "eq", "field": "memory_mb", "value": 1024, "multiple": "first"},
        {"op": "ge", "field": "$.local_gb", "value": 60.5},
        {"op": "in-net", "field": "interfaces.eth0.ip", "value": "192.0.2.0/24", "note": null},
    ]);
    let acts = json!([
        {"action": "set-attribute", "path": "/extra/foo", "value": {"a": [1, null]}},
        {"action": "set-capability", "name": "x", "value": "é😀"},
        {"action": "example", "ignored": null},
    ]);
    let created = create(
        &db,
        NewRule {
            uuid: Some(UUID.to_string()),
            description: Some("a rule".to_string()),
            conditions: conds.clone(),
            actions: acts.clone(),
        },
    )
    .await
    .unwrap();
    let fetched = get(&db, UUID).await.unwrap();
    assert_eq!(fetched, created);
    assert_eq!(
        fetched.multiple,
        vec![Multiple::First, Multiple::Any, Multiple::Any]
    );
    // What was posted reads back as posted, `multiple` included.
    assert_eq!(
        fetched.as_json(false),
        json!({"uuid": UUID, "description": "a rule", "conditions": conds, "actions": acts})
    );

    // The rows are upstream's: params without op/field/multiple, disabled false.
    let rows = sqlx::query("SELECT op, multiple, field, params FROM rule_conditions ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let first = &rows[0];
    let params: String = sqlx::Row::get(first, "params");
    assert_eq!(
        serde_json::from_str::<Value>(&params).unwrap(),
        json!({"value": 1024})
    );
    assert_eq!(sqlx::Row::get::<String, _>(first, "multiple"), "first");
    assert_eq!(sqlx::Row::get::<String, _>(&rows[1], "multiple"), "any");
    let (disabled, created_at): (i64, String) =
        sqlx::query_as("SELECT CAST(disabled AS INTEGER), CAST(created_at AS TEXT) FROM rules")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(disabled, 0);
    assert_eq!(
        created_at.len(),
        "2015-10-16 12:53:20.123456".len(),
        "{created_at}"
    );
    let action_params: String =
        sqlx::query_scalar("SELECT params FROM rule_actions WHERE action = 'set-attribute'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&action_params).unwrap(),
        json!({"path": "/extra/foo", "value": {"a": [1, null]}})
    );
}

#[tokio::test]
async fn rows_written_by_python_read_back() {
    let (db, _dir) = db().await;
    // What SQLAlchemy wrote for upstream's functional test rule (plus a NULL params row).
    for stmt in [
        "INSERT INTO rules (uuid, created_at, description, disabled) \
         VALUES ('py-rule', '2015-10-16 12:53:20.123456', 'py', 0)",
        "INSERT INTO rule_conditions (rule, op, multiple, field, params) \
         VALUES ('py-rule', 'eq', 'any', 'memory_mb', '{\"value\": 1024}')",
        "INSERT INTO rule_conditions (rule, op, multiple, field, params) \
         VALUES ('py-rule', 'lt', 'all', 'cpus', NULL)",
        "INSERT INTO rule_actions (rule, action, params) \
         VALUES ('py-rule', 'set-attribute', '{\"path\": \"/extra/foo\", \"value\": \"bar\"}')",
    ] {
        sqlx::query(stmt).execute(db.pool()).await.unwrap();
    }
    let rule = get(&db, "py-rule").await.unwrap();
    assert_eq!(
        rule.as_json(false),
        json!({
            "uuid": "py-rule",
            "description": "py",
            "conditions": [
                {"op": "eq", "field": "memory_mb", "value": 1024},
                {"op": "lt", "field": "cpus", "multiple": "all"},
            ],
            "actions": [{"action": "set-attribute", "path": "/extra/foo", "value": "bar"}],
        })
    );
    assert_eq!(rule.multiple, vec![Multiple::Any, Multiple::All]);
}

/// A condition row as another program may have stored it.
fn stored_condition(op: &str, field: Option<&str>, params: Value) -> ConditionRow {
    ConditionRow {
        op: op.to_string(),
        multiple: "any".to_string(),
        field: field.map(str::to_string),
        params: params.as_object().unwrap().clone(),
    }
}

#[tokio::test]
async fn stored_conditions_we_would_refuse_fail_only_when_reached() {
    let (db, _dir) = db().await;
    let guard = stored_condition("eq", Some("memory_mb"), json!({"value": 1024}));
    let cases = [
        (
            stored_condition("matches", Some("x"), json!({"value": 1})),
            "unknown operator \"matches\"",
        ),
        (
            stored_condition("eq", Some("!*!"), json!({"value": 1})),
            "cannot parse field \"!*!\"",
        ),
        (
            stored_condition("eq", None, json!({"value": 1})),
            "cannot parse field \"\"",
        ),
        (
            stored_condition("in-net", Some("ip"), json!({"value": "foo"})),
            "invalid IPNetwork foo",
        ),
    ];
    for (stored, reason) in cases {
        let row = RuleRow {
            uuid: UUID.to_string(),
            description: None,
            conditions: vec![guard.clone(), stored.clone()],
            actions: vec![ActionRow {
                action: "example".to_string(),
                params: Map::new(),
            }],
        };
        store::insert(&db, &row).await.unwrap();
        // It loads and reads back as stored.
        let rule = get(&db, UUID).await.unwrap();
        assert_eq!(rule.as_json(false)["conditions"][1]["op"], json!(stored.op));
        // A failing condition before it: the rule does not apply, nothing fails.
        assert!(!check(&rule, &json!({"memory_mb": 1, "x": 1, "ip": "10.0.0.1"})).unwrap());
        let err = check(&rule, &json!({"memory_mb": 1024, "x": 1, "ip": "10.0.0.1"})).unwrap_err();
        assert!(matches!(err, Error::Internal { .. }), "{err:?}");
        assert!(err.to_string().contains(reason), "{err} ~ {reason}");
        delete_all(&db).await.unwrap();
    }
}

#[tokio::test]
async fn generated_uuid_and_duplicates() {
    let (db, _dir) = db().await;
    let rule = create(&db, new_rule(json!([]), actions())).await.unwrap();
    assert!(uuid::Uuid::parse_str(&rule.uuid).is_ok(), "{}", rule.uuid);
    assert_eq!(rule.uuid, rule.uuid.to_lowercase());
    assert_eq!(
        rule.as_json(false),
        json!({"uuid": rule.uuid, "description": null, "conditions": [], "actions": actions()})
    );

    let mut again = new_rule(conditions(), actions());
    again.uuid = Some(rule.uuid.clone());
    match create(&db, again).await {
        Err(Error::Conflict(msg)) => {
            assert_eq!(msg, format!("Rule with UUID {} already exists", rule.uuid));
        }
        other => panic!("expected 409, got {other:?}"),
    }
    // The failed insert left nothing behind.
    assert_eq!(get_all(&db).await.unwrap().len(), 1);
    let conds: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rule_conditions")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(conds, 0);
    // A validation failure stores nothing either; the default body has no actions.
    match create(&db, NewRule::default()).await {
        Err(Error::BadRequest(msg)) => {
            assert_eq!(msg, "Validation failed for actions: [] is too short");
        }
        other => panic!("expected 400, got {other:?}"),
    }
    assert_eq!(get_all(&db).await.unwrap().len(), 1);
}

/// The UUIDs of every rule, in listing order.
async fn uuids(db: &Db) -> Vec<String> {
    get_all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uuid)
        .collect()
}

/// Creates the same rule under [`UUID`], then under [`UUID2`].
async fn create_two(db: &Db) {
    for uuid in [UUID, UUID2] {
        let mut rule = new_rule(conditions(), actions());
        rule.uuid = Some(uuid.to_string());
        create(db, rule).await.unwrap();
    }
}

#[tokio::test]
async fn listing_is_by_creation_time_then_uuid() {
    let (db, _dir) = db().await;
    // Created later but with an earlier-sorting UUID: creation time wins.
    create_two(&db).await;
    let uuids = uuids(&db).await;
    assert_eq!(uuids, vec![UUID, UUID2]);

    // Same instant: by UUID.
    delete_all(&db).await.unwrap();
    for uuid in [UUID, UUID2] {
        let rule = validate(uuid.to_string(), None, &conditions(), &actions()).unwrap();
        store::insert_at(&db, &rule.row, "2015-10-16 12:53:20.000000")
            .await
            .unwrap();
    }
    let rule = validate("early".to_string(), None, &json!([]), &actions()).unwrap();
    store::insert_at(&db, &rule.row, "2015-10-16 12:53:19.999999")
        .await
        .unwrap();
    let rules = get_all(&db).await.unwrap();
    let uuids: Vec<&str> = rules.iter().map(|r| r.uuid.as_str()).collect();
    assert_eq!(uuids, vec!["early", UUID2, UUID]);
    // Children stay with their rule.
    assert_eq!(rules[0].conditions.len(), 0);
    assert_eq!(rules[1].conditions.len(), 2);
    assert_eq!(
        rules[2].actions,
        vec![actions()[0].as_object().unwrap().clone()]
    );
}

#[tokio::test]
async fn get_and_delete() {
    let (db, _dir) = db().await;
    create_two(&db).await;
    match get(&db, "foobar").await {
        Err(Error::NotFound(msg)) => assert_eq!(msg, "Rule foobar was not found"),
        other => panic!("expected 404, got {other:?}"),
    }
    delete(&db, UUID).await.unwrap();
    let uuids = uuids(&db).await;
    assert_eq!(uuids, vec![UUID2]);
    for table in ["rule_conditions", "rule_actions"] {
        let left: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE rule = ?"))
            .bind(UUID)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    match delete(&db, UUID).await {
        Err(Error::NotFound(msg)) => assert_eq!(msg, format!("Rule {UUID} was not found")),
        other => panic!("expected 404, got {other:?}"),
    }
    delete_all(&db).await.unwrap();
    assert!(get_all(&db).await.unwrap().is_empty());
    for table in ["rules", "rule_conditions", "rule_actions"] {
        let left: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    // Deleting everything when there is nothing is fine.
    delete_all(&db).await.unwrap();
}
