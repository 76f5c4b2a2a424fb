//! The rules engine's Ironic side against the fake Ironic: each action's PATCH (or none) on
//! apply and on rollback, and `rules::apply`'s order (rollbacks, then actions, on the node as the hooks left it), its
//! failures and what it leaves alone. Ports upstream's `test_plugins_rules.py` action tests
//! and the functional `test_introspection_rules`.

use ironic_inspector::Error;
use ironic_inspector::data::IntrospectionData;
use ironic_inspector::db::Db;
use ironic_inspector::ironic::IronicClient;
use ironic_inspector::ironic_node::IronicNode;
use ironic_inspector::rules::{self, NewRule, actions::Action};
use serde_json::{Map, Value, json};
use tempfile::TempDir;

use crate::fake_ironic::{FakeIronic, Reply, ironic_error, node_json};
use crate::helpers::{init_logging, migrated_db, test_config};

const NODE: &str = "3d1c6e44-1f0b-4b8e-9a2c-6f0e5d4c3b2a";
const NODE_PATH: &str = "/v1/nodes/3d1c6e44-1f0b-4b8e-9a2c-6f0e5d4c3b2a";
const PORTS_PATH: &str = "/v1/nodes/3d1c6e44-1f0b-4b8e-9a2c-6f0e5d4c3b2a/ports/detail";

/// The node document with `extra` and `properties` replaced.
fn node_doc(extra: Value, properties: Value) -> Value {
    let mut node = node_json(NODE);
    node["extra"] = extra;
    node["properties"] = properties;
    node
}

fn client(fake: &FakeIronic) -> IronicClient {
    init_logging();
    let config = test_config(
        &std::env::temp_dir(),
        &format!(
            "[ironic]\nauth_strategy = noauth\nironic_url = {}\nmax_retries = 0\n\
             retry_interval = 0\nconnect_timeout = 2\nrequest_timeout = 5\n",
            fake.url
        ),
    );
    IronicClient::from_config(&config).unwrap()
}

/// A fake Ironic serving `node` (PATCH answers with `patched`, or `node` again) and the
/// node loaded from it, with the recorded requests cleared of the load.
async fn node_with(node: Value, patched: Option<Value>) -> (FakeIronic, IronicNode) {
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node.clone())]);
    fake.on("GET", PORTS_PATH, [Reply::Json(200, json!({"ports": []}))]);
    fake.on(
        "PATCH",
        NODE_PATH,
        [Reply::Json(200, patched.unwrap_or(node))],
    );
    let info = IronicNode::load(client(&fake), NODE).await.unwrap();
    (fake, info)
}

fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The bodies of the PATCH requests made so far, in order.
fn patches(fake: &FakeIronic) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.json())
        .collect()
}

/// `METHOD path` of every request made so far.
fn calls(fake: &FakeIronic) -> Vec<String> {
    fake.requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

async fn apply(name: &str, node: &mut IronicNode, p: Value) -> ironic_inspector::Result<()> {
    let action = Action::parse(name, &params(p)).unwrap();
    action.apply(node).await
}

async fn rollback(name: &str, node: &mut IronicNode, p: Value) -> ironic_inspector::Result<()> {
    let action = Action::parse(name, &params(p)).unwrap();
    action.rollback(node).await
}

#[tokio::test]
async fn fail_stops_with_its_message() {
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    match apply("fail", &mut node, json!({"message": "boom"})).await {
        Err(Error::BadRequest(msg)) => assert_eq!(msg, "boom"),
        other => panic!("expected the fail message, got {other:?}"),
    }
    rollback("fail", &mut node, json!({"message": "boom"}))
        .await
        .unwrap();
    assert!(patches(&fake).is_empty());
}

#[tokio::test]
async fn example_does_nothing() {
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    apply("example", &mut node, json!({})).await.unwrap();
    rollback("example", &mut node, json!({})).await.unwrap();
    assert!(patches(&fake).is_empty());
}

#[tokio::test]
async fn set_attribute_adds_the_field() {
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    apply(
        "set-attribute",
        &mut node,
        json!({"path": "/extra/value", "value": 42}),
    )
    .await
    .unwrap();
    assert_eq!(
        patches(&fake),
        vec![json!([{"op": "add", "path": "/extra/value", "value": 42}])]
    );
}

#[tokio::test]
async fn set_attribute_rollback_removes_only_an_existing_field() {
    let p = json!({"path": "/extra/value", "value": 42});
    let (fake, mut node) = node_with(node_doc(json!({"value": "value"}), json!({})), None).await;
    rollback("set-attribute", &mut node, p.clone())
        .await
        .unwrap();
    assert_eq!(
        patches(&fake),
        vec![json!([{"op": "remove", "path": "/extra/value"}])]
    );

    let (fake, mut node) = node_with(node_doc(json!({}), json!({})), None).await;
    rollback("set-attribute", &mut node, p).await.unwrap();
    assert!(patches(&fake).is_empty());
}

fn capabilities_patch(value: &str) -> Value {
    json!([{"op": "add", "path": "/properties/capabilities", "value": value}])
}

#[tokio::test]
async fn set_capability_merges_and_rolls_back() {
    let p = json!({"name": "cap1", "value": "val"});
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    apply("set-capability", &mut node, p.clone()).await.unwrap();
    assert_eq!(patches(&fake), vec![capabilities_patch("cap1:val")]);

    let existing = node_doc(
        json!({}),
        json!({"capabilities": "x:y,cap1:old_val,answer:42"}),
    );
    let (fake, mut node) = node_with(existing, None).await;
    apply("set-capability", &mut node, p.clone()).await.unwrap();
    assert_eq!(
        patches(&fake),
        vec![capabilities_patch("x:y,cap1:val,answer:42")]
    );

    let (fake, mut node) = node_with(
        node_doc(json!({}), json!({"capabilities": "foo:bar,cap1:val"})),
        None,
    )
    .await;
    rollback("set-capability", &mut node, p.clone())
        .await
        .unwrap();
    assert_eq!(patches(&fake), vec![capabilities_patch("foo:bar")]);

    // Upstream patches even when there is nothing to remove.
    let (fake, mut node) = node_with(
        node_doc(json!({}), json!({"capabilities": "foo:bar"})),
        None,
    )
    .await;
    rollback("set-capability", &mut node, p).await.unwrap();
    assert_eq!(patches(&fake), vec![capabilities_patch("foo:bar")]);
}

#[tokio::test]
async fn set_capability_value_is_optional_and_formatted_as_python() {
    let (fake, mut node) = node_with(
        node_doc(json!({}), json!({"capabilities": "a:1,b:2"})),
        None,
    )
    .await;
    // Without a value the capability goes away.
    apply("set-capability", &mut node, json!({"name": "a"}))
        .await
        .unwrap();
    let (fake2, mut node2) = node_with(node_json(NODE), None).await;
    apply(
        "set-capability",
        &mut node2,
        json!({"name": "on", "value": true}),
    )
    .await
    .unwrap();
    assert_eq!(patches(&fake), vec![capabilities_patch("b:2")]);
    assert_eq!(patches(&fake2), vec![capabilities_patch("on:True")]);
}

#[tokio::test]
async fn extend_attribute_appends() {
    let p = json!({"path": "/extra/value", "value": 42});
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    apply("extend-attribute", &mut node, p.clone())
        .await
        .unwrap();
    assert_eq!(
        patches(&fake),
        vec![json!([{"op": "add", "path": "/extra/value", "value": [42]}])]
    );

    let (fake, mut node) = node_with(node_doc(json!({"value": [0]}), json!({})), None).await;
    apply("extend-attribute", &mut node, p.clone())
        .await
        .unwrap();
    assert_eq!(
        patches(&fake),
        vec![json!([{"op": "replace", "path": "/extra/value", "value": [0, 42]}])]
    );

    // Not unique: a second copy is added.
    let (fake, mut node) = node_with(node_doc(json!({"value": [42]}), json!({})), None).await;
    apply("extend-attribute", &mut node, p.clone())
        .await
        .unwrap();
    assert_eq!(
        patches(&fake),
        vec![json!([{"op": "replace", "path": "/extra/value", "value": [42, 42]}])]
    );
}

#[tokio::test]
async fn extend_attribute_unique_skips_present_values() {
    let p = json!({"path": "/extra/value", "value": 42, "unique": true});
    let (fake, mut node) = node_with(node_doc(json!({"value": [42]}), json!({})), None).await;
    apply("extend-attribute", &mut node, p.clone())
        .await
        .unwrap();
    assert!(patches(&fake).is_empty());
    // Equal as Python compares: 42.0 == 42.
    let (fake, mut node) = node_with(node_doc(json!({"value": [42.0]}), json!({})), None).await;
    apply("extend-attribute", &mut node, p).await.unwrap();
    assert!(patches(&fake).is_empty());
}

#[tokio::test]
async fn extend_attribute_rollback_removes_every_copy() {
    let p = json!({"path": "/extra/value", "value": 42});
    let (fake, mut node) =
        node_with(node_doc(json!({"value": [1, 42, 0, 42]}), json!({})), None).await;
    rollback("extend-attribute", &mut node, p.clone())
        .await
        .unwrap();
    assert_eq!(
        patches(&fake),
        vec![json!([{"op": "replace", "path": "/extra/value", "value": [1, 0]}])]
    );

    let (fake, mut node) = node_with(node_doc(json!({"value": [1, 0]}), json!({})), None).await;
    rollback("extend-attribute", &mut node, p.clone())
        .await
        .unwrap();
    assert!(patches(&fake).is_empty());

    // Absent: the default [] stays [] and nothing is sent.
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    rollback("extend-attribute", &mut node, p).await.unwrap();
    assert!(patches(&fake).is_empty());
}

#[tokio::test]
async fn extend_attribute_on_a_non_list() {
    let p = json!({"path": "/extra/value", "value": 42});
    let (fake, mut node) = node_with(node_doc(json!({"value": "abc"}), json!({})), None).await;
    let err = apply("extend-attribute", &mut node, p.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Internal { .. }), "{err:?}");
    // Rolling back leaves a field that is not a list alone.
    rollback("extend-attribute", &mut node, p).await.unwrap();
    assert!(patches(&fake).is_empty());
}

#[tokio::test]
async fn ironic_errors_from_actions_propagate() {
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    fake.on("GET", PORTS_PATH, [Reply::Json(200, json!({"ports": []}))]);
    fake.on(
        "PATCH",
        NODE_PATH,
        [ironic_error(400, "Invalid patch: /foo is not allowed")],
    );
    let mut node = IronicNode::load(client(&fake), NODE).await.unwrap();
    let err = apply(
        "set-attribute",
        &mut node,
        json!({"path": "/foo", "value": 1}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("Invalid patch"),
        "the Ironic error is kept: {err}"
    );
}

// ---- rules::apply ----

async fn db() -> (Db, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = migrated_db(&test_config(dir.path(), "")).await;
    (db, dir)
}

async fn add_rule(db: &Db, conditions: Value, actions: Value) -> String {
    rules::create(
        db,
        NewRule {
            uuid: None,
            description: None,
            conditions,
            actions,
        },
    )
    .await
    .unwrap()
    .uuid
}

/// A rule without conditions that sets `extra.a` to 1.
async fn add_unconditional_rule(db: &Db) {
    add_rule(
        db,
        json!([]),
        json!([{"action": "set-attribute", "path": "/extra/a", "value": 1}]),
    )
    .await;
}

fn data(value: Value) -> IntrospectionData {
    IntrospectionData::from_map_unchecked(params(value))
}

fn upstream_data() -> IntrospectionData {
    data(json!({"memory_mb": 12288, "local_gb": 999, "cpus": 4}))
}

#[tokio::test]
async fn no_rules_means_no_ironic_requests() {
    let (db, _dir) = db().await;
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    let before = fake.requests().len();
    rules::apply(&db, &mut node, &upstream_data())
        .await
        .unwrap();
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn rollbacks_of_non_matching_rules_come_before_actions() {
    let (db, _dir) = db().await;
    // Upstream's functional test: the first rule matches, the second does not.
    add_rule(
        &db,
        json!([
            {"field": "memory_mb", "op": "eq", "value": 12288},
            {"field": "local_gb", "op": "gt", "value": 998},
            {"field": "local_gb", "op": "lt", "value": 1000},
        ]),
        json!([{"action": "set-attribute", "path": "/extra/foo", "value": "bar"}]),
    )
    .await;
    add_rule(
        &db,
        json!([{"field": "memory_mb", "op": "ge", "value": 100500}]),
        json!([
            {"action": "set-attribute", "path": "/extra/bar", "value": "foo"},
            {"action": "fail", "message": "boom"},
        ]),
    )
    .await;
    // A hook adds extra.bar: Ironic answers its PATCH with the node as it now is, which
    // is what the rules see (it is not read again).
    let fresh = node_doc(json!({"bar": "foo"}), json!({}));
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    fake.on("GET", PORTS_PATH, [Reply::Json(200, json!({"ports": []}))]);
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, fresh)]);
    let mut node = IronicNode::load(client(&fake), NODE).await.unwrap();
    node.patch(&[json!({"op": "add", "path": "/extra/bar", "value": "foo"})])
        .await
        .unwrap();
    let loaded = fake.requests().len();

    rules::apply(&db, &mut node, &upstream_data())
        .await
        .unwrap();

    // One PATCH for every action, in order: the rollback first.
    let after: Vec<String> = calls(&fake).into_iter().skip(loaded).collect();
    assert_eq!(after, vec![format!("PATCH {NODE_PATH}")]);
    assert_eq!(
        patches(&fake)[1..],
        vec![json!([
            {"op": "remove", "path": "/extra/bar"},
            {"op": "add", "path": "/extra/foo", "value": "bar"},
        ])]
    );
}

/// Three matching rules whose actions read what the ones before them set: they see it
/// before anything is sent, and Ironic gets one PATCH.
#[tokio::test]
async fn the_actions_of_all_rules_go_in_one_patch() {
    let (db, _dir) = db().await;
    add_rule(
        &db,
        json!([]),
        json!([
            {"action": "set-capability", "name": "profile", "value": "large"},
            {"action": "extend-attribute", "path": "/extra/tags", "value": "a"},
        ]),
    )
    .await;
    add_rule(
        &db,
        json!([]),
        json!([
            {"action": "set-capability", "name": "boot_mode", "value": "uefi"},
            {"action": "extend-attribute", "path": "/extra/tags", "value": "b", "unique": true},
            {"action": "extend-attribute", "path": "/extra/tags", "value": "a", "unique": true},
        ]),
    )
    .await;
    let answered = node_doc(
        json!({"tags": ["a", "b"]}),
        json!({"capabilities": "profile:large,boot_mode:uefi"}),
    );
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    fake.on("GET", PORTS_PATH, [Reply::Json(200, json!({"ports": []}))]);
    fake.on("PATCH", NODE_PATH, [Reply::Json(200, answered.clone())]);
    let mut node = IronicNode::load(client(&fake), NODE).await.unwrap();

    rules::apply(&db, &mut node, &upstream_data())
        .await
        .unwrap();

    assert_eq!(
        patches(&fake),
        vec![json!([
            {"op": "add", "path": "/properties/capabilities", "value": "profile:large"},
            {"op": "add", "path": "/extra/tags", "value": ["a"]},
            {"op": "add", "path": "/properties/capabilities", "value": "profile:large,boot_mode:uefi"},
            {"op": "replace", "path": "/extra/tags", "value": ["a", "b"]},
        ])]
    );
    // What Ironic answered is cached.
    assert_eq!(node.node().raw, answered);
}

/// Ironic refusing the one PATCH: the actions are sent again one by one, as 2.2 sent them,
/// so what was before the refused one is applied and the error is Ironic's for it.
#[tokio::test]
async fn a_refused_patch_is_sent_again_action_by_action() {
    let (db, _dir) = db().await;
    add_rule(
        &db,
        json!([]),
        json!([
            {"action": "set-attribute", "path": "/extra/a", "value": 1},
            {"action": "set-attribute", "path": "/driver", "value": "nope"},
            {"action": "set-attribute", "path": "/extra/c", "value": 3},
        ]),
    )
    .await;
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    fake.on("GET", PORTS_PATH, [Reply::Json(200, json!({"ports": []}))]);
    fake.on(
        "PATCH",
        NODE_PATH,
        [
            ironic_error(400, "Cannot update driver: nope is not enabled"),
            Reply::Json(200, node_doc(json!({"a": 1}), json!({}))),
            ironic_error(400, "Cannot update driver: nope is not enabled"),
        ],
    );
    let mut node = IronicNode::load(client(&fake), NODE).await.unwrap();

    let err = rules::apply(&db, &mut node, &upstream_data())
        .await
        .unwrap_err();

    assert!(err.to_string().contains("nope is not enabled"), "{err}");
    assert_eq!(
        patches(&fake),
        vec![
            json!([
                {"op": "add", "path": "/extra/a", "value": 1},
                {"op": "add", "path": "/driver", "value": "nope"},
                {"op": "add", "path": "/extra/c", "value": 3},
            ]),
            json!([{"op": "add", "path": "/extra/a", "value": 1}]),
            json!([{"op": "add", "path": "/driver", "value": "nope"}]),
        ]
    );
    assert_eq!(
        node.node().extra,
        *node_doc(json!({"a": 1}), json!({}))["extra"]
            .as_object()
            .unwrap()
    );
}

/// A `fail` action after others: what came before it is sent (one PATCH), then the
/// introspection fails with its message.
#[tokio::test]
async fn a_fail_action_sends_what_came_before_it() {
    let (db, _dir) = db().await;
    add_rule(
        &db,
        json!([]),
        json!([
            {"action": "set-attribute", "path": "/extra/a", "value": 1},
            {"action": "set-attribute", "path": "/extra/b", "value": 2},
            {"action": "fail", "message": "no thanks"},
            {"action": "set-attribute", "path": "/extra/never", "value": 3},
        ]),
    )
    .await;
    let fake = FakeIronic::start().await;
    fake.on("GET", NODE_PATH, [Reply::Json(200, node_json(NODE))]);
    fake.on("GET", PORTS_PATH, [Reply::Json(200, json!({"ports": []}))]);
    fake.on(
        "PATCH",
        NODE_PATH,
        [Reply::Json(
            200,
            node_doc(json!({"a": 1, "b": 2}), json!({})),
        )],
    );
    let mut node = IronicNode::load(client(&fake), NODE).await.unwrap();

    let err = rules::apply(&db, &mut node, &upstream_data())
        .await
        .unwrap_err();

    assert_eq!(err.to_string(), "no thanks");
    assert_eq!(
        patches(&fake),
        vec![json!([
            {"op": "add", "path": "/extra/a", "value": 1},
            {"op": "add", "path": "/extra/b", "value": 2},
        ])]
    );
}

#[tokio::test]
async fn fail_action_aborts_after_earlier_changes() {
    let (db, _dir) = db().await;
    add_unconditional_rule(&db).await;
    add_rule(
        &db,
        json!([{"field": "cpus", "op": "lt", "value": 8}]),
        json!([
            {"action": "fail", "message": "not enough CPUs"},
            {"action": "set-attribute", "path": "/extra/never", "value": 1},
        ]),
    )
    .await;
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    match rules::apply(&db, &mut node, &upstream_data()).await {
        Err(Error::BadRequest(msg)) => assert_eq!(msg, "not enough CPUs"),
        other => panic!("expected the fail message, got {other:?}"),
    }
    assert_eq!(
        patches(&fake),
        vec![json!([{"op": "add", "path": "/extra/a", "value": 1}])]
    );
}

#[tokio::test]
async fn rules_whose_field_is_missing_are_rolled_back() {
    let (db, _dir) = db().await;
    add_rule(
        &db,
        json!([{"field": "inventory.disks[0].size", "op": "ge", "value": 10}]),
        json!([{"action": "extend-attribute", "path": "/extra/tags", "value": "big"}]),
    )
    .await;
    let (fake, mut node) =
        node_with(node_doc(json!({"tags": ["big", "x"]}), json!({})), None).await;
    rules::apply(&db, &mut node, &upstream_data())
        .await
        .unwrap();
    assert_eq!(
        patches(&fake),
        vec![json!([{"op": "replace", "path": "/extra/tags", "value": ["x"]}])]
    );

    // With the field present the same rule applies.
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    let with_disks = data(json!({"inventory": {"disks": [{"size": "20"}]}}));
    rules::apply(&db, &mut node, &with_disks).await.unwrap();
    assert_eq!(
        patches(&fake),
        vec![json!([{"op": "add", "path": "/extra/tags", "value": ["big"]}])]
    );
}

#[tokio::test]
async fn uncomparable_data_is_an_unexpected_error_before_any_change() {
    let (db, _dir) = db().await;
    add_unconditional_rule(&db).await;
    add_rule(
        &db,
        json!([{"field": "memory_mb", "op": "eq", "value": 1024}]),
        json!([{"action": "example"}]),
    )
    .await;
    let (fake, mut node) = node_with(node_json(NODE), None).await;
    let err = rules::apply(&db, &mut node, &data(json!({"memory_mb": "lots"})))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Internal { .. }), "{err:?}");
    assert!(patches(&fake).is_empty());
}
