//! Rule actions: what a matching rule does to the node, and what a rule that does not match
//! undoes.
//!
//! Ports the `ironic_inspector.rules.actions` entry points of upstream's `setup.cfg`, their
//! classes in `ironic_inspector/plugins/rules.py` (`FailAction`, `SetAttributeAction`,
//! `SetCapabilityAction`, `ExtendAttributeAction`), `ExampleRuleAction` of
//! `ironic_inspector/plugins/example.py`, and `RuleActionPlugin` of
//! `ironic_inspector/plugins/base.py`. [`action`] is the registry: one `match` from name to
//! implementation. Actions change the node only through [`IronicNode`].

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::check_params;
use crate::error::{Error, Result};
use crate::ironic_node::IronicNode;
use crate::py;

/// Every action name, in `setup.cfg` order (the order validation messages list them in).
pub const ACTION_NAMES: [&str; 5] = [
    "example",
    "fail",
    "set-attribute",
    "set-capability",
    "extend-attribute",
];

/// One action.
#[async_trait]
pub trait Action: Send + Sync {
    /// The name rules use for it (`action`).
    fn name(&self) -> &'static str;

    /// Parameters that must be present (and not `null`).
    fn required(&self) -> &'static [&'static str];

    /// Parameters that may be present.
    fn optional(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks the parameters of a new action (all its keys except `action`).
    ///
    /// # Errors
    /// The reason, shown after `Invalid parameters for action <name>: `.
    fn validate(&self, params: &Map<String, Value>) -> Result<(), String> {
        check_params(params, self.required(), self.optional())
    }

    /// Runs the action for a rule that matched.
    ///
    /// # Errors
    /// [`Error::BadRequest`] to fail processing with a message; Ironic failures as they
    /// come; [`Error::Internal`] for parameters the action cannot use.
    async fn apply(&self, node: &mut IronicNode, params: &Map<String, Value>) -> Result<()>;

    /// Undoes what [`Action::apply`] would have done, for a rule that did not match. The
    /// default does nothing.
    ///
    /// # Errors
    /// As for [`Action::apply`].
    async fn rollback(&self, _node: &mut IronicNode, _params: &Map<String, Value>) -> Result<()> {
        Ok(())
    }
}

/// The action called `name`, if there is one.
pub fn action(name: &str) -> Option<&'static dyn Action> {
    match name {
        "example" => Some(&Example),
        "fail" => Some(&Fail),
        "set-attribute" => Some(&SetAttribute),
        "set-capability" => Some(&SetCapability),
        "extend-attribute" => Some(&ExtendAttribute),
        _ => None,
    }
}

/// A parameter that validation made sure of, yet is missing: the rule was stored by
/// something else. Upstream failed with a `KeyError` here.
fn param<'a>(params: &'a Map<String, Value>, action: &str, key: &str) -> Result<&'a Value> {
    params.get(key).ok_or_else(|| {
        Error::internal(
            "RuleActionError",
            format!("action {action} has no parameter {key}"),
        )
    })
}

/// A parameter that must be text.
fn str_param<'a>(params: &'a Map<String, Value>, action: &str, key: &str) -> Result<&'a str> {
    match param(params, action, key)? {
        Value::String(s) => Ok(s),
        other => Err(Error::internal(
            "RuleActionError",
            format!("parameter {key} of action {action} must be a string, not {other}"),
        )),
    }
}

/// Validation of a parameter the action reads as text (upstream took anything and failed
/// later, when the rule was applied).
fn check_text_param(params: &Map<String, Value>, key: &str) -> Result<(), String> {
    match params.get(key) {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(other) => Err(format!(
            "parameter {key} must be a string, got {}",
            py::repr(other)
        )),
    }
}

/// `example`: logs, nothing else.
#[derive(Clone, Copy, Debug)]
pub struct Example;

#[async_trait]
impl Action for Example {
    fn name(&self) -> &'static str {
        "example"
    }

    fn required(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(&self, node: &mut IronicNode, params: &Map<String, Value>) -> Result<()> {
        let shown = Value::Object(params.clone());
        tracing::debug!(node.uuid = %node.uuid, params = %shown, "example rule action applied");
        Ok(())
    }

    async fn rollback(&self, node: &mut IronicNode, params: &Map<String, Value>) -> Result<()> {
        let shown = Value::Object(params.clone());
        tracing::debug!(node.uuid = %node.uuid, params = %shown, "example rule action rolled back");
        Ok(())
    }
}

/// `fail`: stops processing with `message`; the node is finished with it.
#[derive(Clone, Copy, Debug)]
pub struct Fail;

#[async_trait]
impl Action for Fail {
    fn name(&self) -> &'static str {
        "fail"
    }

    fn required(&self) -> &'static [&'static str] {
        &["message"]
    }

    async fn apply(&self, _node: &mut IronicNode, params: &Map<String, Value>) -> Result<()> {
        Err(Error::BadRequest(py::to_str(param(
            params, "fail", "message",
        )?)))
    }
}

/// `set-attribute`: sets the node field `path` to `value` (PATCH `add`); rolled back by
/// removing the field, when the node has it.
#[derive(Clone, Copy, Debug)]
pub struct SetAttribute;

#[async_trait]
impl Action for SetAttribute {
    fn name(&self) -> &'static str {
        "set-attribute"
    }

    fn required(&self) -> &'static [&'static str] {
        &["path", "value"]
    }

    fn validate(&self, params: &Map<String, Value>) -> Result<(), String> {
        check_params(params, self.required(), self.optional())?;
        check_text_param(params, "path")
    }

    async fn apply(&self, node: &mut IronicNode, params: &Map<String, Value>) -> Result<()> {
        let path = param(params, self.name(), "path")?;
        let value = param(params, self.name(), "value")?;
        node.patch(&[json!({"op": "add", "path": path, "value": value})])
            .await
    }

    async fn rollback(&self, node: &mut IronicNode, params: &Map<String, Value>) -> Result<()> {
        let path = str_param(params, self.name(), "path")?;
        if node.get_by_path(path).is_none() {
            tracing::debug!(node.uuid = %node.uuid, path, "field is not set, nothing to roll back");
            return Ok(());
        }
        node.patch(&[json!({"op": "remove", "path": path})]).await
    }
}

/// `set-capability`: sets the capability `name` to `value` (removes it when `value` is
/// absent or `null`); rolled back by removing the capability.
#[derive(Clone, Copy, Debug)]
pub struct SetCapability;

#[async_trait]
impl Action for SetCapability {
    fn name(&self) -> &'static str {
        "set-capability"
    }

    fn required(&self) -> &'static [&'static str] {
        &["name"]
    }

    fn optional(&self) -> &'static [&'static str] {
        &["value"]
    }

    /// Besides the parameters, refuses what would corrupt the `k1:v1,k2:v2` capabilities
    /// string (upstream wrote it as given): a name that is not text, is empty or holds `,`
    /// or `:`, and a value whose text holds `,`.
    fn validate(&self, params: &Map<String, Value>) -> Result<(), String> {
        check_params(params, self.required(), self.optional())?;
        match params.get("name") {
            Some(Value::String(name)) if !name.is_empty() && !name.contains([',', ':']) => {}
            Some(other) => {
                return Err(format!(
                    "parameter name must be a non-empty string without ',' or ':', got {}",
                    py::repr(other)
                ));
            }
            None => {}
        }
        match params.get("value") {
            Some(value) if !value.is_null() && py::to_str(value).contains(',') => Err(format!(
                "parameter value must not hold ',', got {}",
                py::repr(value)
            )),
            _ => Ok(()),
        }
    }

    async fn apply(&self, node: &mut IronicNode, params: &Map<String, Value>) -> Result<()> {
        let name = str_param(params, self.name(), "name")?;
        // Upstream formatted the value with "%s": 42 becomes "42", true "True".
        let value = match params.get("value") {
            None | Some(Value::Null) => None,
            Some(value) => Some(py::to_str(value)),
        };
        node.update_capabilities(&[(name.to_string(), value)]).await
    }

    async fn rollback(&self, node: &mut IronicNode, params: &Map<String, Value>) -> Result<()> {
        let name = str_param(params, self.name(), "name")?;
        node.update_capabilities(&[(name.to_string(), None)]).await
    }
}

/// `extend-attribute`: appends `value` to the list at `path` (created empty when absent),
/// unless `unique` is true and the list already holds it; rolled back by removing every
/// element equal to `value`. Ironic is patched only when the list changes.
#[derive(Clone, Copy, Debug)]
pub struct ExtendAttribute;

#[async_trait]
impl Action for ExtendAttribute {
    fn name(&self) -> &'static str {
        "extend-attribute"
    }

    fn required(&self) -> &'static [&'static str] {
        &["path", "value"]
    }

    fn optional(&self) -> &'static [&'static str] {
        &["unique"]
    }

    fn validate(&self, params: &Map<String, Value>) -> Result<(), String> {
        check_params(params, self.required(), self.optional())?;
        check_text_param(params, "path")
    }

    async fn apply(&self, node: &mut IronicNode, params: &Map<String, Value>) -> Result<()> {
        let path = str_param(params, self.name(), "path")?;
        let value = param(params, self.name(), "value")?.clone();
        let unique = params.get("unique").is_some_and(py::truthy);
        match node.get_by_path(path) {
            None | Some(Value::Array(_)) => {}
            Some(other) => {
                // Upstream failed here too: it called `append` on whatever it found.
                return Err(Error::internal(
                    "RuleActionError",
                    format!("cannot extend field {path}: it is not a list but {other}"),
                ));
            }
        }
        node.replace_field(
            path,
            move |old| {
                let mut items = match old {
                    Value::Array(items) => items,
                    _ => Vec::new(),
                };
                if !unique || !items.iter().any(|item| py::eq(item, &value)) {
                    items.push(value);
                }
                Value::Array(items)
            },
            Some(Value::Array(Vec::new())),
        )
        .await
    }

    async fn rollback(&self, node: &mut IronicNode, params: &Map<String, Value>) -> Result<()> {
        let path = str_param(params, self.name(), "path")?;
        let value = param(params, self.name(), "value")?.clone();
        match node.get_by_path(path) {
            None | Some(Value::Array(_)) => {}
            Some(other) => {
                // Upstream iterated whatever it found (a string became a list of its
                // characters); leaving a field that is not a list alone is the safe choice.
                tracing::warn!(node.uuid = %node.uuid, path, found = %other, "field is not a list, nothing to roll back");
                return Ok(());
            }
        }
        node.replace_field(
            path,
            move |old| match old {
                Value::Array(items) => Value::Array(
                    items
                        .into_iter()
                        .filter(|item| !py::eq(item, &value))
                        .collect(),
                ),
                other => other,
            },
            Some(Value::Array(Vec::new())),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn registry_knows_every_name() {
        for name in ACTION_NAMES {
            assert_eq!(action(name).unwrap().name(), name);
        }
        assert!(action("foobar").is_none());
    }

    #[test]
    fn validation_per_action() {
        let fail = action("fail").unwrap();
        fail.validate(&params(json!({"message": "boom"}))).unwrap();
        assert_eq!(
            fail.validate(&Map::new()).unwrap_err(),
            "missing required parameter(s): message"
        );
        assert_eq!(
            fail.validate(&params(json!({"message": "boom", "foo": "bar"})))
                .unwrap_err(),
            "unexpected parameter(s): foo"
        );

        let set_attr = action("set-attribute").unwrap();
        set_attr
            .validate(&params(json!({"path": "/extra/value", "value": 42})))
            .unwrap();
        assert_eq!(
            set_attr
                .validate(&params(json!({"value": 42})))
                .unwrap_err(),
            "missing required parameter(s): path"
        );
        assert_eq!(
            set_attr
                .validate(&params(json!({"path": "/extra/value"})))
                .unwrap_err(),
            "missing required parameter(s): value"
        );
        assert_eq!(
            set_attr.validate(&params(json!({"x": 1}))).unwrap_err(),
            "missing required parameter(s): path, value; unexpected parameter(s): x"
        );

        let set_cap = action("set-capability").unwrap();
        set_cap
            .validate(&params(json!({"name": "cap1", "value": "val"})))
            .unwrap();
        set_cap.validate(&params(json!({"name": "cap1"}))).unwrap();
        assert_eq!(
            set_cap.validate(&params(json!({"value": 42}))).unwrap_err(),
            "missing required parameter(s): name"
        );

        let extend = action("extend-attribute").unwrap();
        extend
            .validate(&params(
                json!({"path": "/extra/v", "value": 1, "unique": true}),
            ))
            .unwrap();
        assert_eq!(
            extend.validate(&params(json!({"value": 42}))).unwrap_err(),
            "missing required parameter(s): path"
        );

        // What the action reads as text must be text; a capability must keep the
        // `k1:v1,k2:v2` string readable.
        for (name, bad, expected) in [
            (
                "set-attribute",
                json!({"path": 42, "value": 1}),
                "parameter path must be a string, got 42",
            ),
            (
                "extend-attribute",
                json!({"path": ["/extra/x"], "value": 1}),
                "parameter path must be a string, got ['/extra/x']",
            ),
            (
                "set-capability",
                json!({"name": 42}),
                "parameter name must be a non-empty string without ',' or ':', got 42",
            ),
            (
                "set-capability",
                json!({"name": "a,b", "value": "x"}),
                "parameter name must be a non-empty string without ',' or ':', got 'a,b'",
            ),
            (
                "set-capability",
                json!({"name": "a:b"}),
                "parameter name must be a non-empty string without ',' or ':', got 'a:b'",
            ),
            (
                "set-capability",
                json!({"name": ""}),
                "parameter name must be a non-empty string without ',' or ':', got ''",
            ),
            (
                "set-capability",
                json!({"name": "a", "value": "x,y"}),
                "parameter value must not hold ',', got 'x,y'",
            ),
            (
                "set-capability",
                json!({"name": "a", "value": [1, 2]}),
                "parameter value must not hold ',', got [1, 2]",
            ),
        ] {
            assert_eq!(
                action(name).unwrap().validate(&params(bad)).unwrap_err(),
                expected
            );
        }
        set_cap
            .validate(&params(json!({"name": "boot_mode", "value": "uefi:x"})))
            .unwrap();
        set_cap
            .validate(&params(json!({"name": "n", "value": null})))
            .unwrap();

        let example = action("example").unwrap();
        example.validate(&Map::new()).unwrap();
        example.validate(&params(json!({"x": null}))).unwrap();
        assert_eq!(
            example.validate(&params(json!({"x": 1}))).unwrap_err(),
            "unexpected parameter(s): x"
        );
    }
}
