//! The rules tables: `rules`, `rule_conditions` and `rule_actions`, read and written exactly
//! as upstream's SQLAlchemy models did, so rules created by either program read back
//! identically in the other.
//!
//! Ports the rule models of `ironic_inspector/db.py` (`Rule`, `RuleCondition`,
//! `RuleAction`, `JsonEncodedDict` params) and the queries of `ironic_inspector/rules.py`.
//! Row formats: `created_at` is a naive UTC datetime (written as
//! `YYYY-MM-DD HH:MM:SS.ffffff`, SQLAlchemy's SQLite text form; PostgreSQL casts it to its
//! `TIMESTAMP`, MySQL's `DATETIME` rounds it to the second as it did for SQLAlchemy);
//! `disabled` is always false; `params` is the JSON text of an object, `NULL` reading as
//! `{}`. There is no `ON DELETE CASCADE`: children are deleted first, in one transaction.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use super::{Db, DbError, Fault, args, required_text_column, retry_conflicts, text_column};
use crate::utc::UtcDateTime;

/// A condition row, in the order of its id.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionRow {
    /// The operator name.
    pub op: String,
    /// `any`, `all` or `first`.
    pub multiple: String,
    /// The JSON path (nullable in the schema).
    pub field: Option<String>,
    /// Everything else the client sent with the condition.
    pub params: Map<String, Value>,
}

/// An action row, in the order of its id.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRow {
    /// The action name.
    pub action: String,
    /// Everything else the client sent with the action.
    pub params: Map<String, Value>,
}

/// A rule with its children, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleRow {
    /// The rule's UUID.
    pub uuid: String,
    /// Free text.
    pub description: Option<String>,
    /// Conditions in creation order.
    pub conditions: Vec<ConditionRow>,
    /// Actions in creation order.
    pub actions: Vec<ActionRow>,
}

/// Inserts a rule and its children in one transaction, `created_at` being now (UTC).
///
/// # Errors
/// A unique violation when the UUID is taken (see [`DbError::is_unique_violation`]).
pub async fn insert(db: &Db, rule: &RuleRow) -> Result<(), DbError> {
    insert_at(db, rule, &utc_datetime(SystemTime::now())).await
}

/// [`insert`] with a given `created_at` text (`YYYY-MM-DD HH:MM:SS.ffffff`).
pub async fn insert_at(db: &Db, rule: &RuleRow, created_at: &str) -> Result<(), DbError> {
    retry_conflicts("insert rule", lost_race, || {
        insert_once(db, rule, created_at)
    })
    .await
}

async fn insert_once(db: &Db, rule: &RuleRow, created_at: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let created = db.backend().timestamp_placeholder();
    let insert_rule = format!(
        "INSERT INTO rules (uuid, created_at, description, disabled) VALUES (?, {created}, ?, ?)"
    );
    let args = args![&rule.uuid, created_at, rule.description.as_deref(), false];
    tx.execute(&insert_rule, args).await?;
    for cond in &rule.conditions {
        let params = json_text(&cond.params);
        let args = args![
            &rule.uuid,
            &cond.op,
            &cond.multiple,
            cond.field.as_deref(),
            params
        ];
        tx.execute(
            "INSERT INTO rule_conditions (rule, op, multiple, field, params) \
             VALUES (?, ?, ?, ?, ?)",
            args,
        )
        .await?;
    }
    for act in &rule.actions {
        let args = args![&rule.uuid, &act.action, json_text(&act.params)];
        tx.execute(
            "INSERT INTO rule_actions (rule, action, params) VALUES (?, ?, ?)",
            args,
        )
        .await?;
    }
    tx.commit().await
}

/// One rule by UUID.
pub async fn get(db: &Db, uuid: &str) -> Result<Option<RuleRow>, DbError> {
    let row = db
        .fetch_optional(
            "SELECT uuid, description FROM rules WHERE uuid = ?",
            args![uuid],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut rule = rule_from_row(&row)?;
    let conditions = db
        .fetch_all(
            "SELECT rule, op, multiple, field, params FROM rule_conditions WHERE rule = ? \
             ORDER BY id",
            args![uuid],
        )
        .await?;
    for row in &conditions {
        rule.conditions.push(condition_from_row(row)?);
    }
    let actions = db
        .fetch_all(
            "SELECT rule, action, params FROM rule_actions WHERE rule = ? ORDER BY id",
            args![uuid],
        )
        .await?;
    for row in &actions {
        rule.actions.push(action_from_row(row)?);
    }
    Ok(Some(rule))
}

/// Every rule, oldest first (ties by UUID), each with its children. Three queries in all,
/// one when there is no rule (every report asks, and most sites have none).
pub async fn get_all(db: &Db) -> Result<Vec<RuleRow>, DbError> {
    let rows = db
        .fetch_all(
            "SELECT uuid, description FROM rules ORDER BY created_at, uuid",
            args![],
        )
        .await?;
    let mut rules = rows
        .iter()
        .map(rule_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if rules.is_empty() {
        // Children of no rule would not be shown anyway.
        return Ok(rules);
    }
    let index: HashMap<String, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, rule)| (rule.uuid.clone(), i))
        .collect();
    // Children of no rule (the column is nullable) are not shown, as in upstream.
    let owner = |row: &AnyRow| -> Result<Option<usize>, DbError> {
        Ok(text_column(row, "rule")?.and_then(|uuid| index.get(&uuid).copied()))
    };
    let conditions = db
        .fetch_all(
            "SELECT rule, op, multiple, field, params FROM rule_conditions ORDER BY id",
            args![],
        )
        .await?;
    for row in &conditions {
        if let Some(rule) = owner(row)?.and_then(|i| rules.get_mut(i)) {
            rule.conditions.push(condition_from_row(row)?);
        }
    }
    let actions = db
        .fetch_all(
            "SELECT rule, action, params FROM rule_actions ORDER BY id",
            args![],
        )
        .await?;
    for row in &actions {
        if let Some(rule) = owner(row)?.and_then(|i| rules.get_mut(i)) {
            rule.actions.push(action_from_row(row)?);
        }
    }
    Ok(rules)
}

/// Deletes a rule and its children; `false` when there was no such rule.
pub async fn delete(db: &Db, uuid: &str) -> Result<bool, DbError> {
    retry_conflicts("delete rule", lost_race, || delete_once(db, uuid)).await
}

async fn delete_once(db: &Db, uuid: &str) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    for query in [
        "DELETE FROM rule_actions WHERE rule = ?",
        "DELETE FROM rule_conditions WHERE rule = ?",
    ] {
        tx.execute(query, args![uuid]).await?;
    }
    let deleted = tx
        .execute("DELETE FROM rules WHERE uuid = ?", args![uuid])
        .await?;
    if deleted == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Deletes every rule and child row.
pub async fn delete_all(db: &Db) -> Result<(), DbError> {
    retry_conflicts("delete every rule", lost_race, || delete_all_once(db)).await
}

async fn delete_all_once(db: &Db) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    for query in [
        "DELETE FROM rule_actions",
        "DELETE FROM rule_conditions",
        "DELETE FROM rules",
    ] {
        tx.execute(query, args![]).await?;
    }
    tx.commit().await
}

/// Whether a write lost a race with another transaction (see [`retry_conflicts`]).
fn lost_race(err: &DbError) -> bool {
    err.fault() == Fault::Conflict
}

fn rule_from_row(row: &AnyRow) -> Result<RuleRow, DbError> {
    Ok(RuleRow {
        uuid: required_text_column(row, "uuid")?,
        description: text_column(row, "description")?,
        conditions: Vec::new(),
        actions: Vec::new(),
    })
}

fn condition_from_row(row: &AnyRow) -> Result<ConditionRow, DbError> {
    Ok(ConditionRow {
        op: required_text_column(row, "op")?,
        multiple: required_text_column(row, "multiple")?,
        field: text_column(row, "field")?,
        params: params_column(row)?,
    })
}

fn action_from_row(row: &AnyRow) -> Result<ActionRow, DbError> {
    Ok(ActionRow {
        action: required_text_column(row, "action")?,
        params: params_column(row)?,
    })
}

/// A `JsonEncodedDict` column: JSON text of an object, `NULL` for `{}`.
fn params_column(row: &AnyRow) -> Result<Map<String, Value>, DbError> {
    let Some(text) = text_column(row, "params")? else {
        return Ok(Map::new());
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(decode_error(format!(
            "params column holds {other}, not a JSON object"
        ))),
        Err(err) => Err(decode_error(format!("params column is not JSON: {err}"))),
    }
}

fn decode_error(message: String) -> DbError {
    DbError::Sql(sqlx::Error::Decode(message.into()))
}

/// JSON text as Python's `json.dumps` wrote it by default: every non-ASCII character
/// escaped, which also keeps 4-byte characters out of MySQL's 3-byte `utf8` columns.
pub fn json_text(params: &Map<String, Value>) -> String {
    // Serialising a map of JSON values cannot fail; non-ASCII only occurs inside strings.
    let text = Value::Object(params.clone()).to_string();
    let mut out = String::with_capacity(text.len());
    let mut units = [0u16; 2];
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// A naive UTC datetime as SQLAlchemy wrote it into SQLite: `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn utc_datetime(now: SystemTime) -> String {
    let t = UtcDateTime::from_system_time(now);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn datetime_text_is_sqlalchemys() {
        let t = UNIX_EPOCH + Duration::new(1_445_000_000, 123_456_789);
        assert_eq!(utc_datetime(t), "2015-10-16 12:53:20.123456");
        assert_eq!(utc_datetime(UNIX_EPOCH), "1970-01-01 00:00:00.000000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_datetime(leap), "2000-02-29 00:00:00.000000");
    }

    #[test]
    fn params_text_escapes_like_python() {
        let params = json!({"value": "é😀", "n": 1});
        let Value::Object(map) = params else {
            unreachable!()
        };
        let text = json_text(&map);
        assert_eq!(text, r#"{"n":1,"value":"\u00e9\ud83d\ude00"}"#);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap()["value"],
            "é😀"
        );
    }
}
