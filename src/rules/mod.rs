//! Introspection rules: a rule is a list of conditions on the processed data and a list of
//! actions on the Ironic node. This module validates and stores them, and applies them to a
//! node during processing.
//!
//! Ports `ironic_inspector/rules.py` (schemas, `IntrospectionRule`, `create`, `get`,
//! `get_all`, `delete`, `delete_all`, `apply`) and `WithValidation` of
//! `ironic_inspector/plugins/base.py`. Operators live in [`conditions`], actions in
//! [`actions`], the SQL in [`crate::db::rules`], the JSONPath of condition fields in
//! [`jsonpath`]. The HTTP layer (`api`) parses request bodies into [`NewRule`] and renders
//! [`Rule::as_json`].
//!
//! A rule's conditions and actions are parsed once, when it is created (validation yields
//! them) or loaded, into [`Condition`]s and [`Action`]s; applying matches on those. The rule
//! also keeps them as they were stored, which is what [`Rule::as_json`] shows.
//!
//! Departures from 2.2.2, on purpose: validation messages quote values as Python 3 did
//! (`'x' is not one of […]`, no `u''` prefixes) and name only the first problem, as
//! `jsonschema` did, without its schema dump; a comparison that fails to coerce, a bad IP
//! for `in-net` and a stored rule we cannot evaluate are [`Error::Internal`], which
//! processing reports as `Unexpected exception during processing`.

pub mod actions;
pub mod conditions;
pub mod jsonpath;

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::data::IntrospectionData;
use crate::db::Db;
use crate::db::rules::{self as store, ActionRow, ConditionRow, RuleRow};
use crate::error::{Error, Result};
use crate::ironic_node::IronicNode;
use crate::py;
use actions::{ACTION_NAMES, Action, Kind};
use conditions::{CONDITION_NAMES, Condition, Op};
use jsonpath::FieldPath;

/// How a condition treats a field path that matches several values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Multiple {
    /// The condition holds when it holds for at least one value (the default).
    #[default]
    Any,
    /// The condition holds when it holds for every value.
    All,
    /// Only the first value counts.
    First,
}

/// The accepted `multiple` values, in the order upstream's schema listed them.
pub const MULTIPLE_NAMES: [&str; 3] = ["all", "any", "first"];

impl Multiple {
    /// The name stored in `rule_conditions.multiple`.
    pub fn as_str(self) -> &'static str {
        match self {
            Multiple::Any => "any",
            Multiple::All => "all",
            Multiple::First => "first",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(name: &str) -> Option<Multiple> {
        match name {
            "any" => Some(Multiple::Any),
            "all" => Some(Multiple::All),
            "first" => Some(Multiple::First),
            _ => None,
        }
    }
}

/// A stored rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The rule's UUID.
    pub uuid: String,
    /// Free text, if given.
    pub description: Option<String>,
    /// Each condition as upstream shows it: its parameters plus `op` and `field`
    /// (`multiple` is in [`Rule::multiple`]).
    pub conditions: Vec<Map<String, Value>>,
    /// The `multiple` mode of each condition, by position in [`Rule::conditions`].
    pub multiple: Vec<Multiple>,
    /// Each action as upstream shows it: its parameters plus `action`.
    pub actions: Vec<Map<String, Value>>,
    /// The conditions parsed, by position in [`Rule::conditions`]. A stored condition we
    /// cannot evaluate (an unknown operator, a field that does not parse) keeps the reason:
    /// applying fails with it when it reaches that condition.
    parsed_conditions: Vec<std::result::Result<Condition, String>>,
    /// The actions parsed, by position in [`Rule::actions`].
    parsed_actions: Vec<Action>,
}

impl Rule {
    /// Upstream's representation without links: full = `{"uuid", "description",
    /// "conditions", "actions"}`; short = `{"uuid", "description"}`. A condition shows
    /// `multiple` only when it is not the default (see below).
    pub fn as_json(&self, short: bool) -> Value {
        let mut out = json!({"uuid": self.uuid, "description": self.description});
        if !short {
            // 2.2 never echoed `multiple`; we echo it when it is not the default, so a rule
            // posted with `"multiple": "all"` reads back as posted while 2.2-shaped rules
            // (no `multiple`, or `any`) read back exactly as 2.2 showed them.
            let conditions = self
                .conditions
                .iter()
                .zip(&self.multiple)
                .map(|(condition, multiple)| {
                    let mut condition = condition.clone();
                    if *multiple != Multiple::Any {
                        condition.insert("multiple".to_string(), json!(multiple.as_str()));
                    }
                    Value::Object(condition)
                })
                .collect();
            out["conditions"] = Value::Array(conditions);
            out["actions"] =
                Value::Array(self.actions.iter().cloned().map(Value::Object).collect());
        }
        out
    }

    /// A name for logs: the description, or the UUID when there is none.
    fn label(&self) -> &str {
        self.description
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or(&self.uuid)
    }

    /// A stored rule, parsed as far as it goes: a condition or action another program
    /// stored and we cannot use fails only when applying reaches it, as it did in 2.2.
    ///
    /// # Errors
    /// [`Error::Internal`] for a condition whose `multiple` we do not know.
    fn from_row(row: RuleRow) -> Result<Rule> {
        let conditions = row
            .conditions
            .iter()
            .map(|cond| {
                let op = Op::parse(&cond.op, &condition_params(&cond.params))
                    .ok_or_else(|| format!("unknown operator {:?}", cond.op))?;
                let field = cond.field.as_deref().unwrap_or_default();
                let path = FieldPath::parse(field)
                    .map_err(|err| format!("cannot parse field {field:?}: {err}"))?;
                Ok(Condition {
                    field: field.to_string(),
                    path,
                    op,
                })
            })
            .collect();
        let actions = row
            .actions
            .iter()
            .map(|act| {
                Action::parse(&act.action, &action_params(&act.params)).unwrap_or_else(|| {
                    Action::broken(
                        &act.action,
                        format!("rule {}: unknown action {:?}", row.uuid, act.action),
                    )
                })
            })
            .collect();
        Rule::assemble(row, conditions, actions)
    }

    /// The rule of `row`, with its conditions and actions parsed.
    fn assemble(
        row: RuleRow,
        parsed_conditions: Vec<std::result::Result<Condition, String>>,
        parsed_actions: Vec<Action>,
    ) -> Result<Rule> {
        let mut conditions = Vec::with_capacity(row.conditions.len());
        let mut multiple = Vec::with_capacity(row.conditions.len());
        for cond in row.conditions {
            let mode = Multiple::parse(&cond.multiple).ok_or_else(|| {
                Error::internal(
                    "RuleError",
                    format!(
                        "rule {} has a condition with unknown multiple {:?}",
                        row.uuid, cond.multiple
                    ),
                )
            })?;
            let mut shown = cond.params;
            shown.insert("op".to_string(), Value::String(cond.op));
            shown.insert(
                "field".to_string(),
                cond.field.map_or(Value::Null, Value::String),
            );
            conditions.push(shown);
            multiple.push(mode);
        }
        let actions = row
            .actions
            .into_iter()
            .map(|act| {
                let mut shown = act.params;
                shown.insert("action".to_string(), Value::String(act.action));
                shown
            })
            .collect();
        Ok(Rule {
            uuid: row.uuid,
            description: row.description,
            conditions,
            multiple,
            actions,
            parsed_conditions,
            parsed_actions,
        })
    }
}

/// A new rule that passed validation: the rows to store, and its conditions and actions
/// parsed.
#[derive(Debug)]
struct Validated {
    row: RuleRow,
    conditions: Vec<Condition>,
    actions: Vec<Action>,
}

impl Validated {
    fn into_rule(self) -> Result<Rule> {
        let conditions = self.conditions.into_iter().map(Ok).collect();
        Rule::assemble(self.row, conditions, self.actions)
    }
}

/// A `POST /v1/rules` body, already known to be a JSON object. [`NewRule::default`] has
/// empty `conditions` and `actions` lists, as upstream's defaults for absent members.
#[derive(Clone, Debug)]
pub struct NewRule {
    /// A UUID the API already checked is UUID-like (canonical lower case); generated when
    /// absent.
    pub uuid: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The `conditions` member (`[]` when absent).
    pub conditions: Value,
    /// The `actions` member (`[]` when absent).
    pub actions: Value,
}

impl Default for NewRule {
    fn default() -> Self {
        NewRule {
            uuid: None,
            description: None,
            conditions: Value::Array(Vec::new()),
            actions: Value::Array(Vec::new()),
        }
    }
}

/// Validates and stores a new rule.
///
/// # Errors
/// [`Error::BadRequest`] for invalid conditions or actions, with upstream's message
/// prefixes and in upstream's order (schemas of conditions then actions, then for each
/// condition its field path and parameters, then each action's parameters);
/// [`Error::Conflict`] `Rule with UUID <uuid> already exists`.
pub async fn create(db: &Db, rule: NewRule) -> Result<Rule> {
    let uuid = rule
        .uuid
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    tracing::debug!(rule.uuid = %uuid, "creating introspection rule");
    let rule = validate(uuid, rule.description, &rule.conditions, &rule.actions)?;
    let row = &rule.row;
    if let Err(err) = store::insert(db, row).await {
        if err.is_unique_violation() {
            tracing::debug!(rule.uuid = %row.uuid, error = %err, "rule UUID is taken");
            return Err(Error::Conflict(format!(
                "Rule with UUID {} already exists",
                row.uuid
            )));
        }
        return Err(err.into());
    }
    tracing::info!(rule.uuid = %row.uuid, description = ?row.description, "created introspection rule");
    rule.into_rule()
}

/// One rule.
///
/// # Errors
/// [`Error::NotFound`] `Rule <uuid> was not found`.
pub async fn get(db: &Db, uuid: &str) -> Result<Rule> {
    match store::get(db, uuid).await? {
        Some(row) => Rule::from_row(row),
        None => Err(not_found(uuid)),
    }
}

/// Every rule, oldest first (rules created in the same instant by UUID).
pub async fn get_all(db: &Db) -> Result<Vec<Rule>> {
    store::get_all(db)
        .await?
        .into_iter()
        .map(Rule::from_row)
        .collect()
}

/// Deletes a rule with its conditions and actions.
///
/// # Errors
/// [`Error::NotFound`] `Rule <uuid> was not found`.
pub async fn delete(db: &Db, uuid: &str) -> Result<()> {
    if !store::delete(db, uuid).await? {
        return Err(not_found(uuid));
    }
    tracing::info!(rule.uuid = %uuid, "introspection rule deleted");
    Ok(())
}

/// Deletes every rule.
pub async fn delete_all(db: &Db) -> Result<()> {
    store::delete_all(db).await?;
    tracing::info!("all introspection rules deleted");
    Ok(())
}

fn not_found(uuid: &str) -> Error {
    Error::NotFound(format!("Rule {uuid} was not found"))
}

/// Applies every stored rule to the node's processed data. The rules see the node as the
/// hooks left it: 2.2 read the node from Ironic again here, but [`IronicNode`] already holds
/// what Ironic answered to each of the hooks' changes (a PATCH answers with the whole node,
/// a port created or changed with the port), so reading it again would cost two requests
/// and show nothing new.
///
/// All rules are checked first; then the rollback actions of every rule that does not
/// match run (rules oldest first, actions in order), then the actions of every rule that
/// matches. A failure stops at once; what was already patched stays. The PATCHes of all
/// the actions go to Ironic as one (2.2 sent one per action), unless Ironic refuses it.
///
/// # Errors
/// [`Error::BadRequest`] with the message of a `fail` action; Ironic failures as they come;
/// [`Error::Internal`] when a condition cannot compare the data (processing reports it as
/// `Unexpected exception during processing`) or a stored rule cannot be evaluated.
pub async fn apply(db: &Db, node: &mut IronicNode, data: &IntrospectionData) -> Result<()> {
    let rules = get_all(db).await?;
    if rules.is_empty() {
        tracing::debug!(node.uuid = %node.uuid, "no introspection rules to apply");
        return Ok(());
    }
    tracing::debug!(node.uuid = %node.uuid, rules = rules.len(), "applying introspection rules");

    let data = Value::Object(data.as_map().clone());
    let mut to_apply = Vec::new();
    let mut to_rollback = Vec::new();
    for rule in &rules {
        if check_conditions(rule, &data, &node.uuid)? {
            to_apply.push(rule);
        } else {
            to_rollback.push(rule);
        }
    }
    // The actions only PATCH the node: held back and sent as one PATCH at the end (when a
    // `fail` stops them too), with 2.2's outcome if Ironic refuses (see
    // `IronicNode::end_batch`). An Ironic failure there came before the actions' own.
    node.begin_batch();
    let outcome = run_all(node, &to_rollback, &to_apply).await;
    node.end_batch().await?;
    outcome?;
    tracing::info!(node.uuid = %node.uuid, "introspection rules applied");
    Ok(())
}

/// The rollbacks, then the actions, stopping at the first failure.
async fn run_all(node: &mut IronicNode, to_rollback: &[&Rule], to_apply: &[&Rule]) -> Result<()> {
    for rule in to_rollback {
        run_actions(rule, node, true).await?;
    }
    for rule in to_apply {
        run_actions(rule, node, false).await?;
    }
    Ok(())
}

/// Whether every condition of the rule holds on `data`. A field that matches nothing makes
/// the rule not apply (no shipped operator accepts a missing field).
fn check_conditions(rule: &Rule, data: &Value, node_uuid: &str) -> Result<bool> {
    let broken = |detail: String| {
        Error::internal(
            "RuleConditionError",
            format!("rule {}: {detail}", rule.uuid),
        )
    };
    let conditions = rule.parsed_conditions.iter().zip(&rule.multiple);
    for ((cond, multiple), shown) in conditions.zip(&rule.conditions) {
        let Condition { field, path, op } =
            cond.as_ref().map_err(|detail| broken(detail.clone()))?;
        let field = field.as_str();
        let values = path
            .find(data)
            .map_err(|err| broken(format!("cannot evaluate field {field:?}: {err}")))?;
        if values.is_empty() {
            tracing::info!(
                node.uuid = %node_uuid, rule.uuid = %rule.uuid, field,
                "field was not found in the data, rule \"{}\" will not be applied", rule.label()
            );
            return Ok(false);
        }
        let mut result = false;
        for value in values {
            result = op.check(value).map_err(|err| {
                broken(format!(
                    "condition {field} {} failed on {}: {err}",
                    op.name(),
                    py::repr(value)
                ))
            })?;
            let done = match multiple {
                Multiple::First => true,
                Multiple::All => !result,
                Multiple::Any => result,
            };
            if done {
                break;
            }
        }
        if !result {
            let params = Value::Object(condition_params(shown));
            tracing::info!(
                node.uuid = %node_uuid, rule.uuid = %rule.uuid, field, op = op.name(),
                params = %params,
                "rule \"{}\" will not be applied: condition failed", rule.label()
            );
            return Ok(false);
        }
    }
    tracing::info!(node.uuid = %node_uuid, rule.uuid = %rule.uuid, "rule \"{}\" will be applied", rule.label());
    Ok(true)
}

/// A condition's parameters: everything but `op`, `field` and `multiple`.
fn condition_params(cond: &Map<String, Value>) -> Map<String, Value> {
    cond.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "op" | "field" | "multiple"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// An action's parameters: everything but `action`.
fn action_params(act: &Map<String, Value>) -> Map<String, Value> {
    act.iter()
        .filter(|(k, _)| k.as_str() != "action")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

async fn run_actions(rule: &Rule, node: &mut IronicNode, rollback: bool) -> Result<()> {
    let what = if rollback { "rollback" } else { "apply" };
    tracing::debug!(node.uuid = %node.uuid, rule.uuid = %rule.uuid, what, "running rule actions");
    for action in &rule.parsed_actions {
        tracing::debug!(node.uuid = %node.uuid, rule.uuid = %rule.uuid, action = action.name(), what, "running rule action");
        if rollback {
            action.rollback(node).await?;
        } else {
            action.apply(node).await?;
        }
    }
    Ok(())
}

/// Upstream's `WithValidation.validate`: every required parameter present, nothing outside
/// required and optional; a `null` value counts as absent. Names are listed sorted.
///
/// # Errors
/// `missing required parameter(s): a, b` and/or `unexpected parameter(s): c`, joined by
/// `; `.
pub fn check_params(
    params: &Map<String, Value>,
    required: &[&str],
    optional: &[&str],
) -> std::result::Result<(), String> {
    let passed: BTreeSet<&str> = params
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k.as_str())
        .collect();
    let missing: Vec<&str> = {
        let mut names: Vec<&str> = required
            .iter()
            .copied()
            .filter(|name| !passed.contains(name))
            .collect();
        names.sort_unstable();
        names
    };
    let unexpected: Vec<&str> = passed
        .iter()
        .copied()
        .filter(|name| !required.contains(name) && !optional.contains(name))
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "missing required parameter(s): {}",
            missing.join(", ")
        ));
    }
    if !unexpected.is_empty() {
        problems.push(format!(
            "unexpected parameter(s): {}",
            unexpected.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Every check of upstream's `create`, in its order; the rows to store, and the conditions
/// and actions parsed.
fn validate(
    uuid: String,
    description: Option<String>,
    conditions: &Value,
    actions: &Value,
) -> Result<Validated> {
    let bad = |prefix: &str, detail: String| Error::BadRequest(format!("{prefix}{detail}"));
    let conditions = check_conditions_schema(conditions)
        .map_err(|e| bad("Validation failed for conditions: ", e))?;
    let actions =
        check_actions_schema(actions).map_err(|e| bad("Validation failed for actions: ", e))?;

    let mut condition_rows = Vec::with_capacity(conditions.len());
    let mut parsed_conditions = Vec::with_capacity(conditions.len());
    for cond in conditions {
        let field = text(cond, "field");
        let path = FieldPath::parse(field).map_err(|err| {
            bad(
                "",
                format!("Unable to parse field JSON path {field}: {err}"),
            )
        })?;
        let name = text(cond, "op");
        let params = condition_params(cond);
        let op = Op::parse(name, &params).ok_or_else(|| {
            bad(
                "Validation failed for conditions: ",
                format!("unknown op {name}"),
            )
        })?;
        op.validate(&params)
            .map_err(|err| bad("", format!("Invalid parameters for operator {name}: {err}")))?;
        let multiple = cond
            .get("multiple")
            .and_then(Value::as_str)
            .unwrap_or(Multiple::Any.as_str());
        condition_rows.push(ConditionRow {
            op: name.to_string(),
            multiple: multiple.to_string(),
            field: Some(field.to_string()),
            params,
        });
        parsed_conditions.push(Condition {
            field: field.to_string(),
            path,
            op,
        });
    }

    let mut action_rows = Vec::with_capacity(actions.len());
    let mut parsed_actions = Vec::with_capacity(actions.len());
    for act in actions {
        let name = text(act, "action");
        let kind = Kind::parse(name).ok_or_else(|| {
            bad(
                "Validation failed for actions: ",
                format!("unknown action {name}"),
            )
        })?;
        let params = action_params(act);
        kind.validate(&params)
            .map_err(|err| bad("", format!("Invalid parameters for action {name}: {err}")))?;
        parsed_actions.push(kind.action(&params));
        action_rows.push(ActionRow {
            action: name.to_string(),
            params,
        });
    }

    Ok(Validated {
        row: RuleRow {
            uuid,
            description,
            conditions: condition_rows,
            actions: action_rows,
        },
        conditions: parsed_conditions,
        actions: parsed_actions,
    })
}

/// The text member `key` (the schema check made sure it is text).
fn text<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Python's list repr of names, as `jsonschema` quoted an `enum`.
fn names_repr(names: &[&str]) -> String {
    let items: Vec<Value> = names
        .iter()
        .map(|n| Value::String((*n).to_string()))
        .collect();
    py::repr(&Value::Array(items))
}

fn not_of_type(value: &Value, kind: &str) -> String {
    format!("{} is not of type '{kind}'", py::repr(value))
}

fn not_one_of(value: &Value, names: &[&str]) -> String {
    format!("{} is not one of {}", py::repr(value), names_repr(names))
}

/// An array of objects, each with a string `field`, a known `op` and, if given, a known
/// `multiple`; other keys are allowed.
fn check_conditions_schema(value: &Value) -> std::result::Result<Vec<&Map<String, Value>>, String> {
    each_object(value, |cond| {
        for key in ["op", "field"] {
            if !cond.contains_key(key) {
                return Err(format!("'{key}' is a required property"));
            }
        }
        if let Some(op) = cond.get("op")
            && !op.as_str().is_some_and(|op| CONDITION_NAMES.contains(&op))
        {
            return Err(not_one_of(op, &CONDITION_NAMES));
        }
        if let Some(field) = cond.get("field")
            && !field.is_string()
        {
            return Err(not_of_type(field, "string"));
        }
        if let Some(multiple) = cond.get("multiple")
            && !multiple
                .as_str()
                .is_some_and(|m| MULTIPLE_NAMES.contains(&m))
        {
            return Err(not_one_of(multiple, &MULTIPLE_NAMES));
        }
        Ok(())
    })
}

/// A non-empty array of objects, each with a known `action`; other keys are allowed.
fn check_actions_schema(value: &Value) -> std::result::Result<Vec<&Map<String, Value>>, String> {
    if value.as_array().is_some_and(Vec::is_empty) {
        return Err("[] is too short".to_string());
    }
    each_object(value, |act| match act.get("action") {
        None => Err("'action' is a required property".to_string()),
        Some(name) if !name.as_str().is_some_and(|n| ACTION_NAMES.contains(&n)) => {
            Err(not_one_of(name, &ACTION_NAMES))
        }
        Some(_) => Ok(()),
    })
}

/// An array of objects, each passing `check` (checked one by one, in order).
fn each_object(
    value: &Value,
    check: impl Fn(&Map<String, Value>) -> std::result::Result<(), String>,
) -> std::result::Result<Vec<&Map<String, Value>>, String> {
    let Value::Array(items) = value else {
        return Err(not_of_type(value, "array"));
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(map) = item else {
                return Err(not_of_type(item, "object"));
            };
            check(map).map(|()| map)
        })
        .collect()
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
