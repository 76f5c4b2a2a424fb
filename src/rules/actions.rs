//! Rule actions: what a matching rule does to the node, and what a rule that does not match
//! undoes.
//!
//! Ports the `ironic_inspector.rules.actions` entry points of upstream's `setup.cfg`, their
//! classes in `ironic_inspector/plugins/rules.py` (`FailAction`, `SetAttributeAction`,
//! `SetCapabilityAction`, `ExtendAttributeAction`), `ExampleRuleAction` of
//! `ironic_inspector/plugins/example.py`, and `RuleActionPlugin` of
//! `ironic_inspector/plugins/base.py`. An action is parsed once, when its rule is created or
//! loaded, into an [`Action`] with typed parameters; running it is one `match`. Actions
//! change the node only through [`IronicNode`].

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

/// What an action's `action` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `example`
    Example,
    /// `fail`
    Fail,
    /// `set-attribute`
    SetAttribute,
    /// `set-capability`
    SetCapability,
    /// `extend-attribute`
    ExtendAttribute,
}

impl Kind {
    /// The kind called `name`, if there is one.
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "example" => Some(Kind::Example),
            "fail" => Some(Kind::Fail),
            "set-attribute" => Some(Kind::SetAttribute),
            "set-capability" => Some(Kind::SetCapability),
            "extend-attribute" => Some(Kind::ExtendAttribute),
            _ => None,
        }
    }

    /// The name rules use for it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Example => "example",
            Kind::Fail => "fail",
            Kind::SetAttribute => "set-attribute",
            Kind::SetCapability => "set-capability",
            Kind::ExtendAttribute => "extend-attribute",
        }
    }

    /// Checks the parameters of a new action (all its keys except `action`): every
    /// required one present and not `null`, nothing outside required and optional, and
    /// what the action reads as text is text.
    ///
    /// # Errors
    /// The reason, shown after `Invalid parameters for action <name>: `.
    pub fn validate(self, params: &Map<String, Value>) -> std::result::Result<(), String> {
        match self {
            Kind::Example => check_params(params, &[], &[]),
            Kind::Fail => check_params(params, &["message"], &[]),
            Kind::SetAttribute => {
                check_params(params, &["path", "value"], &[])?;
                check_text_param(params, "path")
            }
            Kind::SetCapability => {
                check_params(params, &["name"], &["value"])?;
                check_capability(params)
            }
            Kind::ExtendAttribute => {
                check_params(params, &["path", "value"], &["unique"])?;
                check_text_param(params, "path")
            }
        }
    }

    /// The action of this kind with the parameters `params` holds. Takes what is there, as
    /// a stored row may hold it (see [`Action::Invalid`]): [`Kind::validate`] is what
    /// refuses a new action.
    pub fn action(self, params: &Map<String, Value>) -> Action {
        let broken = |reason| Action::broken(self.name(), reason);
        match self {
            Kind::Example => Action::Example {
                params: params.clone(),
            },
            Kind::Fail => match param(params, self, "message") {
                Ok(message) => Action::Fail {
                    message: py::to_str(message),
                },
                // Upstream read the message only when failing.
                Err(missing) => Action::Invalid {
                    name: self.name().to_string(),
                    apply: Step::Fail(missing),
                    rollback: Step::Nothing,
                },
            },
            Kind::SetAttribute => match (text_param(params, self, "path"), params.get("value")) {
                (Ok(path), Some(value)) => Action::SetAttribute {
                    path: path.to_string(),
                    value: value.clone(),
                },
                (path, _) => self.invalid_attribute(params, path),
            },
            Kind::SetCapability => match text_param(params, self, "name") {
                Ok(name) => Action::SetCapability {
                    name: name.to_string(),
                    // Upstream formatted the value with "%s": 42 becomes "42", true "True".
                    value: params.get("value").filter(|v| !v.is_null()).map(py::to_str),
                },
                Err(reason) => broken(reason),
            },
            Kind::ExtendAttribute => {
                match (
                    text_param(params, self, "path"),
                    param(params, self, "value"),
                ) {
                    (Ok(path), Ok(value)) => Action::ExtendAttribute {
                        path: path.to_string(),
                        value: value.clone(),
                        unique: params.get("unique").is_some_and(py::truthy),
                    },
                    (Err(reason), _) | (_, Err(reason)) => broken(reason),
                }
            }
        }
    }

    /// A `set-attribute` without a text `path` and a `value`: applying reads `path` (any
    /// value) then `value`; rolling back reads `path` as text.
    fn invalid_attribute(
        self,
        params: &Map<String, Value>,
        path: std::result::Result<&str, String>,
    ) -> Action {
        let apply = match (param(params, self, "path"), param(params, self, "value")) {
            (Ok(path), Ok(value)) => {
                Step::Patch(json!({"op": "add", "path": path, "value": value}))
            }
            (Err(missing), _) | (_, Err(missing)) => Step::Fail(missing),
        };
        let rollback = match path {
            Ok(path) => Step::RemoveField(path.to_string()),
            Err(reason) => Step::Fail(reason),
        };
        Action::Invalid {
            name: self.name().to_string(),
            apply,
            rollback,
        }
    }
}

/// An action of a rule, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `example`: logs its parameters, nothing else.
    Example {
        /// Every parameter, as given.
        params: Map<String, Value>,
    },
    /// `fail`: stops processing with `message`; the node is finished with it.
    Fail {
        /// The message, as Python's `str` showed the parameter.
        message: String,
    },
    /// `set-attribute`: sets the node field `path` to `value` (PATCH `add`); rolled back by
    /// removing the field, when the node has it.
    SetAttribute {
        /// An Ironic field path (`/extra/foo`).
        path: String,
        /// The value to set.
        value: Value,
    },
    /// `set-capability`: sets the capability `name` to `value` (removes it when there is
    /// no value); rolled back by removing the capability.
    SetCapability {
        /// The capability.
        name: String,
        /// Its value, as Python's `str` showed the parameter; `None` when absent or `null`.
        value: Option<String>,
    },
    /// `extend-attribute`: appends `value` to the list at `path` (created empty when
    /// absent), unless `unique` and the list already holds it; rolled back by removing
    /// every element equal to `value`. Ironic is patched only when the list changes.
    ExtendAttribute {
        /// An Ironic field path.
        path: String,
        /// The element to add.
        value: Value,
        /// Whether an element equal to `value` (as Python compares) is not added again.
        unique: bool,
    },
    /// A stored action creating it would have refused, and that cannot run as written
    /// (another program wrote it: an unknown name, a parameter missing or not text). Each
    /// half does what the parameters allow; a parameter it needs and lacks fails processing
    /// with [`Error::Internal`] (upstream failed there with a `KeyError` or a `TypeError`).
    Invalid {
        /// The action's name, as stored.
        name: String,
        /// What applying does.
        apply: Step,
        /// What rolling back does.
        rollback: Step,
    },
}

/// One half of an [`Action::Invalid`].
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Nothing.
    Nothing,
    /// Fails processing with [`Error::Internal`] and this detail.
    Fail(String),
    /// Sends this PATCH operation to Ironic as it is.
    Patch(Value),
    /// What rolling back `set-attribute` does: removes the field, when the node has it.
    RemoveField(String),
}

impl Step {
    async fn run(&self, node: &mut IronicNode) -> Result<()> {
        match self {
            Step::Nothing => Ok(()),
            Step::Fail(detail) => Err(Error::internal("RuleActionError", detail)),
            Step::Patch(op) => node.patch(std::slice::from_ref(op)).await,
            Step::RemoveField(path) => remove_field(node, path).await,
        }
    }
}

impl Action {
    /// The action called `name` with the parameters `params` holds (see [`Kind::action`]);
    /// `None` for an unknown name.
    pub fn parse(name: &str, params: &Map<String, Value>) -> Option<Action> {
        Kind::parse(name).map(|kind| kind.action(params))
    }

    /// An action of which both halves fail processing with `detail`.
    pub fn broken(name: &str, detail: String) -> Action {
        Action::Invalid {
            name: name.to_string(),
            apply: Step::Fail(detail.clone()),
            rollback: Step::Fail(detail),
        }
    }

    /// The name rules use for it (`action`).
    pub fn name(&self) -> &str {
        match self {
            Action::Example { .. } => Kind::Example.name(),
            Action::Fail { .. } => Kind::Fail.name(),
            Action::SetAttribute { .. } => Kind::SetAttribute.name(),
            Action::SetCapability { .. } => Kind::SetCapability.name(),
            Action::ExtendAttribute { .. } => Kind::ExtendAttribute.name(),
            Action::Invalid { name, .. } => name,
        }
    }

    /// Runs the action for a rule that matched.
    ///
    /// # Errors
    /// [`Error::BadRequest`] to fail processing with a message; Ironic failures as they
    /// come; [`Error::Internal`] when the node's field cannot be extended, or for an
    /// [`Action::Invalid`] that lacks what it needs.
    pub async fn apply(&self, node: &mut IronicNode) -> Result<()> {
        match self {
            Action::Example { params } => {
                log_example(node, params, "applied");
                Ok(())
            }
            Action::Fail { message } => Err(Error::BadRequest(message.clone())),
            Action::SetAttribute { path, value } => {
                node.patch(&[json!({"op": "add", "path": path, "value": value})])
                    .await
            }
            Action::SetCapability { name, value } => {
                node.update_capabilities(&[(name.clone(), value.clone())])
                    .await
            }
            Action::ExtendAttribute {
                path,
                value,
                unique,
            } => extend_field(node, path, value, *unique).await,
            Action::Invalid { apply, .. } => apply.run(node).await,
        }
    }

    /// Undoes what [`Action::apply`] would have done, for a rule that did not match.
    ///
    /// # Errors
    /// As for [`Action::apply`].
    pub async fn rollback(&self, node: &mut IronicNode) -> Result<()> {
        match self {
            Action::Example { params } => {
                log_example(node, params, "rolled back");
                Ok(())
            }
            Action::Fail { .. } => Ok(()),
            Action::SetAttribute { path, .. } => remove_field(node, path).await,
            Action::SetCapability { name, .. } => {
                node.update_capabilities(&[(name.clone(), None)]).await
            }
            Action::ExtendAttribute { path, value, .. } => shrink_field(node, path, value).await,
            Action::Invalid { rollback, .. } => rollback.run(node).await,
        }
    }
}

/// What `example` does.
fn log_example(node: &IronicNode, params: &Map<String, Value>, what: &str) {
    let shown = Value::Object(params.clone());
    tracing::debug!(node.uuid = %node.uuid, params = %shown, "example rule action {what}");
}

/// A parameter that validation made sure of; the reason it is missing otherwise.
fn param<'a>(
    params: &'a Map<String, Value>,
    kind: Kind,
    key: &str,
) -> std::result::Result<&'a Value, String> {
    params
        .get(key)
        .ok_or_else(|| format!("action {} has no parameter {key}", kind.name()))
}

/// A parameter that must be text; the reason it is not otherwise.
fn text_param<'a>(
    params: &'a Map<String, Value>,
    kind: Kind,
    key: &str,
) -> std::result::Result<&'a str, String> {
    match param(params, kind, key)? {
        Value::String(s) => Ok(s),
        other => Err(format!(
            "parameter {key} of action {} must be a string, not {other}",
            kind.name()
        )),
    }
}

/// Validation of a parameter the action reads as text (upstream took anything and failed
/// later, when the rule was applied).
fn check_text_param(params: &Map<String, Value>, key: &str) -> std::result::Result<(), String> {
    match params.get(key) {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(other) => Err(format!(
            "parameter {key} must be a string, got {}",
            py::repr(other)
        )),
    }
}

/// Refuses what would corrupt the `k1:v1,k2:v2` capabilities string (upstream wrote it as
/// given): a name that is not text, is empty or holds `,` or `:`, and a value whose text
/// holds `,`.
fn check_capability(params: &Map<String, Value>) -> std::result::Result<(), String> {
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

/// Removes the node field `path`, when the node has it.
async fn remove_field(node: &mut IronicNode, path: &str) -> Result<()> {
    if node.get_by_path(path).is_none() {
        tracing::debug!(node.uuid = %node.uuid, path, "field is not set, nothing to roll back");
        return Ok(());
    }
    node.patch(&[json!({"op": "remove", "path": path})]).await
}

/// Applies `extend-attribute`.
async fn extend_field(
    node: &mut IronicNode,
    path: &str,
    value: &Value,
    unique: bool,
) -> Result<()> {
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
    let value = value.clone();
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

/// Rolls back `extend-attribute`.
async fn shrink_field(node: &mut IronicNode, path: &str, value: &Value) -> Result<()> {
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
        |old| match old {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .filter(|item| !py::eq(item, value))
                    .collect(),
            ),
            other => other,
        },
        Some(Value::Array(Vec::new())),
    )
    .await
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

    /// What creating an action `name` with the parameters `value` answers.
    fn validate(name: &str, value: Value) -> Result<(), String> {
        Kind::parse(name).unwrap().validate(&params(value))
    }

    #[test]
    fn every_name_parses_to_its_kind() {
        for name in ACTION_NAMES {
            assert_eq!(Kind::parse(name).unwrap().name(), name);
        }
        assert!(Kind::parse("foobar").is_none());
        assert!(Action::parse("foobar", &Map::new()).is_none());
    }

    #[test]
    fn validation_per_action() {
        validate("fail", json!({"message": "boom"})).unwrap();
        assert_eq!(
            validate("fail", json!({})).unwrap_err(),
            "missing required parameter(s): message"
        );
        assert_eq!(
            validate("fail", json!({"message": "boom", "foo": "bar"})).unwrap_err(),
            "unexpected parameter(s): foo"
        );

        validate(
            "set-attribute",
            json!({"path": "/extra/value", "value": 42}),
        )
        .unwrap();
        assert_eq!(
            validate("set-attribute", json!({"value": 42})).unwrap_err(),
            "missing required parameter(s): path"
        );
        assert_eq!(
            validate("set-attribute", json!({"path": "/extra/value"})).unwrap_err(),
            "missing required parameter(s): value"
        );
        assert_eq!(
            validate("set-attribute", json!({"x": 1})).unwrap_err(),
            "missing required parameter(s): path, value; unexpected parameter(s): x"
        );

        validate("set-capability", json!({"name": "cap1", "value": "val"})).unwrap();
        validate("set-capability", json!({"name": "cap1"})).unwrap();
        assert_eq!(
            validate("set-capability", json!({"value": 42})).unwrap_err(),
            "missing required parameter(s): name"
        );

        validate(
            "extend-attribute",
            json!({"path": "/extra/v", "value": 1, "unique": true}),
        )
        .unwrap();
        assert_eq!(
            validate("extend-attribute", json!({"value": 42})).unwrap_err(),
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
            assert_eq!(validate(name, bad).unwrap_err(), expected);
        }
        validate(
            "set-capability",
            json!({"name": "boot_mode", "value": "uefi:x"}),
        )
        .unwrap();
        validate("set-capability", json!({"name": "n", "value": null})).unwrap();

        validate("example", json!({})).unwrap();
        validate("example", json!({"x": null})).unwrap();
        assert_eq!(
            validate("example", json!({"x": 1})).unwrap_err(),
            "unexpected parameter(s): x"
        );
    }

    fn parse(name: &str, value: Value) -> Action {
        Action::parse(name, &params(value)).unwrap()
    }

    #[test]
    fn valid_parameters_parse_into_their_types() {
        assert_eq!(
            parse("fail", json!({"message": ["a", 1]})),
            Action::Fail {
                message: "['a', 1]".to_string()
            }
        );
        assert_eq!(
            parse(
                "set-attribute",
                json!({"path": "/extra/a", "value": {"b": 1}})
            ),
            Action::SetAttribute {
                path: "/extra/a".to_string(),
                value: json!({"b": 1})
            }
        );
        for (value, shown) in [
            (json!(42), Some("42")),
            (json!(true), Some("True")),
            (json!("x"), Some("x")),
            (json!(null), None),
        ] {
            assert_eq!(
                parse("set-capability", json!({"name": "n", "value": value})),
                Action::SetCapability {
                    name: "n".to_string(),
                    value: shown.map(str::to_string)
                }
            );
        }
        assert_eq!(
            parse(
                "extend-attribute",
                json!({"path": "/extra/a", "value": 1, "unique": 1})
            ),
            Action::ExtendAttribute {
                path: "/extra/a".to_string(),
                value: json!(1),
                unique: true
            }
        );
        assert_eq!(
            parse("example", json!({"x": null})),
            Action::Example {
                params: params(json!({"x": null}))
            }
        );
    }

    /// Rows another program stored: each half does what 2.2 did with them.
    #[test]
    fn stored_parameters_we_would_refuse() {
        let invalid = |name: &str, apply: Step, rollback: Step| Action::Invalid {
            name: name.to_string(),
            apply,
            rollback,
        };
        let fail = |detail: &str| Step::Fail(detail.to_string());
        // A null message is Python's "None"; extra parameters are ignored.
        assert_eq!(
            parse("fail", json!({"message": null, "x": 1})),
            Action::Fail {
                message: "None".to_string()
            }
        );
        assert_eq!(
            parse("fail", json!({})),
            invalid(
                "fail",
                fail("action fail has no parameter message"),
                Step::Nothing
            )
        );
        assert_eq!(
            parse("set-attribute", json!({"path": 42, "value": 1})),
            invalid(
                "set-attribute",
                Step::Patch(json!({"op": "add", "path": 42, "value": 1})),
                fail("parameter path of action set-attribute must be a string, not 42")
            )
        );
        assert_eq!(
            parse("set-attribute", json!({"path": "/extra/a"})),
            invalid(
                "set-attribute",
                fail("action set-attribute has no parameter value"),
                Step::RemoveField("/extra/a".to_string())
            )
        );
        assert_eq!(
            parse("set-attribute", json!({"value": 1})),
            Action::broken(
                "set-attribute",
                "action set-attribute has no parameter path".to_string()
            )
        );
        assert_eq!(
            parse("set-capability", json!({"name": 1})),
            Action::broken(
                "set-capability",
                "parameter name of action set-capability must be a string, not 1".to_string()
            )
        );
        assert_eq!(
            parse("extend-attribute", json!({"value": 1})),
            Action::broken(
                "extend-attribute",
                "action extend-attribute has no parameter path".to_string()
            )
        );
        assert_eq!(
            parse("extend-attribute", json!({"path": "/extra/a"})),
            Action::broken(
                "extend-attribute",
                "action extend-attribute has no parameter value".to_string()
            )
        );
        // A capability name or value creating would refuse is used as written.
        assert_eq!(
            parse("set-capability", json!({"name": "a:b", "value": "x,y"})),
            Action::SetCapability {
                name: "a:b".to_string(),
                value: Some("x,y".to_string())
            }
        );
    }
}
