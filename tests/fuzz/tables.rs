//! The node cache and rules tables after the run: read straight from the daemon's SQLite
//! file (read-only, beside the running daemon) and compared with what the API serves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

/// The option under which `store_data = database` keeps a node's data; it outlives the end
/// of introspection, every other option goes with it.
const DATA_OPTION: &str = "introspection_data";

/// What the tables hold, for the summary.
#[derive(Default, Debug)]
pub struct Counts {
    pub nodes: usize,
    pub finished: usize,
    pub attributes: usize,
    pub options: usize,
    pub rules: usize,
    pub conditions: usize,
    pub actions: usize,
}

/// Checks the tables; the problems found (empty when consistent) and the row counts.
///
/// `known_nodes`: the nodes enrolled in Ironic for this run (no other node can have been
/// recorded, since Ironic is asked first). `run_started`: Unix time before the daemon
/// started.
pub async fn check(
    database: &Path,
    api: &str,
    known_nodes: &BTreeSet<String>,
    run_started: f64,
) -> (Vec<String>, Counts) {
    let mut problems = Vec::new();
    let mut counts = Counts::default();
    let options = SqliteConnectOptions::new()
        .filename(database)
        .read_only(true);
    let pool = match SqlitePool::connect_with(options).await {
        Ok(pool) => pool,
        Err(e) => {
            return (
                vec![format!("cannot open {}: {e}", database.display())],
                counts,
            );
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());

    // Nodes.
    let mut finished: BTreeMap<String, bool> = BTreeMap::new();
    match sqlx::query("SELECT uuid, started_at, finished_at, error FROM nodes")
        .fetch_all(&pool)
        .await
    {
        Ok(rows) => {
            for row in rows {
                let uuid: String = row.try_get("uuid").unwrap_or_default();
                let started: Option<f64> = row.try_get("started_at").ok().flatten();
                let ended: Option<f64> = row.try_get("finished_at").ok().flatten();
                let error: Option<String> = row.try_get("error").ok().flatten();
                if !known_nodes.contains(&uuid) {
                    problems.push(format!("nodes: {uuid:?} is no node enrolled for this run"));
                }
                match started {
                    Some(s) if s >= run_started - 1.0 && s <= now + 1.0 => {}
                    other => problems.push(format!(
                        "nodes: {uuid} started_at {other:?} is outside the run ({run_started:.3}..{now:.3})"
                    )),
                }
                if let Some(ended) = ended
                    && (started.is_some_and(|s| ended < s) || ended > now + 1.0)
                {
                    problems.push(format!(
                        "nodes: {uuid} finished_at {ended} is before started_at {started:?} or in the future"
                    ));
                }
                if error.is_some() && ended.is_none() {
                    problems.push(format!(
                        "nodes: {uuid} has error {error:?} but is not finished"
                    ));
                }
                finished.insert(uuid, ended.is_some());
            }
        }
        Err(e) => problems.push(format!("nodes: {e}")),
    }
    counts.nodes = finished.len();
    counts.finished = finished.values().filter(|f| **f).count();

    // Lookup attributes: each belongs to a node under introspection.
    match sqlx::query("SELECT name, value, uuid FROM attributes")
        .fetch_all(&pool)
        .await
    {
        Ok(rows) => {
            counts.attributes = rows.len();
            for row in rows {
                let name: String = row.try_get("name").unwrap_or_default();
                let value: String = row.try_get("value").unwrap_or_default();
                let uuid: Option<String> = row.try_get("uuid").ok().flatten();
                match uuid.as_deref().and_then(|u| finished.get(u)) {
                    None => problems.push(format!(
                        "attributes: {name}={value} belongs to no node ({uuid:?})"
                    )),
                    Some(true) => problems.push(format!(
                        "attributes: {name}={value} belongs to finished node {uuid:?}"
                    )),
                    Some(false) => {}
                }
            }
        }
        Err(e) => problems.push(format!("attributes: {e}")),
    }

    // Options: each belongs to a node; a finished node keeps only its stored data; every
    // value is JSON.
    match sqlx::query("SELECT uuid, name, value FROM options")
        .fetch_all(&pool)
        .await
    {
        Ok(rows) => {
            counts.options = rows.len();
            for row in rows {
                let uuid: String = row.try_get("uuid").unwrap_or_default();
                let name: String = row.try_get("name").unwrap_or_default();
                let value: Option<String> = row.try_get("value").ok().flatten();
                match finished.get(&uuid) {
                    None => problems.push(format!("options: {name} belongs to no node ({uuid})")),
                    Some(true) if name != DATA_OPTION => problems.push(format!(
                        "options: {name} outlived the end of node {uuid}'s introspection"
                    )),
                    _ => {}
                }
                if let Some(value) = value
                    && serde_json::from_str::<Value>(&value).is_err()
                {
                    problems.push(format!("options: {name} of {uuid} is not JSON"));
                }
            }
        }
        Err(e) => problems.push(format!("options: {e}")),
    }

    // Rules, their conditions and actions.
    let mut rules: BTreeSet<String> = BTreeSet::new();
    match sqlx::query("SELECT uuid FROM rules").fetch_all(&pool).await {
        Ok(rows) => {
            for row in rows {
                rules.insert(row.try_get("uuid").unwrap_or_default());
            }
        }
        Err(e) => problems.push(format!("rules: {e}")),
    }
    counts.rules = rules.len();
    let mut children: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (table, kind) in [
        ("rule_conditions", "conditions"),
        ("rule_actions", "actions"),
    ] {
        match sqlx::query(&format!("SELECT id, rule, params FROM {table}"))
            .fetch_all(&pool)
            .await
        {
            Ok(rows) => {
                for row in rows {
                    let id: i64 = row.try_get("id").unwrap_or_default();
                    let rule: Option<String> = row.try_get("rule").ok().flatten();
                    let params: Option<String> = row.try_get("params").ok().flatten();
                    match &rule {
                        Some(rule) if rules.contains(rule) => {
                            *children.entry((kind, rule.clone())).or_default() += 1;
                        }
                        _ => problems
                            .push(format!("{table}: row {id} belongs to no rule ({rule:?})")),
                    }
                    let params_ok = params
                        .as_deref()
                        .and_then(|p| serde_json::from_str::<Value>(p).ok())
                        .is_some_and(|p| p.is_object());
                    if !params_ok {
                        problems.push(format!("{table}: row {id} params are not a JSON object"));
                    }
                }
            }
            Err(e) => problems.push(format!("{table}: {e}")),
        }
    }
    counts.conditions = children
        .iter()
        .filter(|((k, _), _)| *k == "conditions")
        .map(|(_, n)| n)
        .sum();
    counts.actions = children
        .iter()
        .filter(|((k, _), _)| *k == "actions")
        .map(|(_, n)| n)
        .sum();
    pool.close().await;

    // The API serves exactly these rules, each as stored.
    let client = reqwest::Client::new();
    match api_json(&client, &format!("{api}/v1/rules")).await {
        Ok((200, listing)) => {
            let listed: Vec<String> = listing["rules"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|r| r["uuid"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
            if listed_set != rules || listed.len() != rules.len() {
                problems.push(format!(
                    "GET /v1/rules lists {} rules, the table has {}; only listed: {:?}; only in the table: {:?}",
                    listed.len(),
                    rules.len(),
                    listed_set.difference(&rules).collect::<Vec<_>>(),
                    rules.difference(&listed_set).collect::<Vec<_>>()
                ));
            }
        }
        Ok((status, body)) => problems.push(format!("GET /v1/rules answered {status}: {body}")),
        Err(e) => problems.push(format!("GET /v1/rules: {e}")),
    }
    for uuid in &rules {
        match api_json(&client, &format!("{api}/v1/rules/{uuid}")).await {
            Ok((200, rule)) => {
                let conditions = children
                    .get(&("conditions", uuid.clone()))
                    .copied()
                    .unwrap_or(0);
                let actions = children
                    .get(&("actions", uuid.clone()))
                    .copied()
                    .unwrap_or(0);
                let served_conditions = rule["conditions"].as_array().map(Vec::len);
                let served_actions = rule["actions"].as_array().map(Vec::len);
                if rule["uuid"] != uuid.as_str()
                    || served_conditions != Some(conditions)
                    || served_actions != Some(actions)
                    || actions == 0
                {
                    problems.push(format!(
                        "rule {uuid}: the table has {conditions} conditions and {actions} actions, the API serves {rule}"
                    ));
                }
            }
            Ok((status, body)) => {
                problems.push(format!("GET /v1/rules/{uuid} answered {status}: {body}"))
            }
            Err(e) => problems.push(format!("GET /v1/rules/{uuid}: {e}")),
        }
    }
    (problems, counts)
}

async fn api_json(client: &reqwest::Client, url: &str) -> Result<(u16, Value), String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    let body = serde_json::from_str(&text).map_err(|e| format!("{status}, not JSON: {e}"))?;
    Ok((status, body))
}
