//! The node cache's tables: `nodes` (a node under introspection, or one that finished
//! recently), `attributes` (the lookup values a ramdisk is matched by) and `options` (JSON
//! values kept for a node). Every query on them is here; what the rows mean (states,
//! time-outs, lookup, which values go in) is [`crate::node_cache`]'s.
//!
//! Ports the `Node`, `Attribute` and `Option` models of `ironic_inspector/db.py` and the
//! queries of `ironic_inspector/node_cache.py`. Values are always bound, never pasted into
//! the SQL. There is no `ON DELETE CASCADE`: children are deleted first. Each writing
//! function is one transaction, run once: the caller decides whether to run it again.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use sqlx::any::AnyRow;

use super::{Db, DbError, Tx, args, float_column, required_text_column, text_column};

/// Lookup values asked for per query by [`holders`]. The query text is then the same
/// whatever the ramdisk reports: one prepared statement per connection rather than one per
/// list length (each kept in the statement cache), and never more bound values than a
/// backend takes (SQLite refuses a 32,767th).
pub const LOOKUP_BATCH: usize = 64;

/// One row of `nodes`: a node under introspection, or one that finished recently.
#[derive(Clone, Debug, PartialEq)]
pub struct IntrospectionRecord {
    /// Ironic node UUID.
    pub uuid: String,
    /// When introspection started, Unix seconds.
    pub started_at: f64,
    /// When it finished, Unix seconds; `None` while it runs.
    pub finished_at: Option<f64>,
    /// Why it failed; `None` on success or while it runs.
    pub error: Option<String>,
}

/// What became of lookup attribute values given to [`start`] or [`add_attributes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// They are the node's now (values it already had are kept once).
    Stored,
    /// Another node holds at least one of them: the transaction was rolled back, nothing
    /// was written.
    Taken,
}

/// Lookup attribute values to store with a node: a name and its values.
#[derive(Clone, Copy, Debug)]
pub struct Lookup<'a> {
    /// The attribute name.
    pub name: &'a str,
    /// The values, as they are to be stored.
    pub values: &'a [String],
}

/// Introspection running too long, for [`clean_up`].
#[derive(Clone, Copy, Debug)]
pub struct TimeOut<'a> {
    /// Nodes that started before this (Unix seconds) and have not finished time out.
    pub started_before: f64,
    /// Their finish time.
    pub finished_at: f64,
    /// Their error.
    pub error: &'a str,
}

/// Drops whatever was cached for a node, then records it as started at `started_at` with
/// `lookup`'s values, in one transaction.
pub async fn start(
    db: &Db,
    uuid: &str,
    started_at: f64,
    lookup: Option<Lookup<'_>>,
) -> Result<Claim, DbError> {
    let mut tx = db.begin().await?;
    delete_rows(&mut tx, uuid).await?;
    tx.execute(
        "INSERT INTO nodes (uuid, started_at) VALUES (?, ?)",
        args![uuid, started_at],
    )
    .await?;
    if let Some(lookup) = lookup
        && claim(&mut tx, uuid, lookup).await? == Claim::Taken
    {
        return Ok(Claim::Taken);
    }
    tx.commit().await?;
    Ok(Claim::Stored)
}

/// Adds lookup attribute values to a node, in one transaction.
pub async fn add_attributes(db: &Db, uuid: &str, lookup: Lookup<'_>) -> Result<Claim, DbError> {
    let mut tx = db.begin().await?;
    if claim(&mut tx, uuid, lookup).await? == Claim::Taken {
        return Ok(Claim::Taken);
    }
    tx.commit().await?;
    Ok(Claim::Stored)
}

/// A node's row, finished or not.
pub async fn get(db: &Db, uuid: &str) -> Result<Option<IntrospectionRecord>, DbError> {
    let row = db
        .fetch_optional(
            "SELECT uuid, started_at, finished_at, error FROM nodes WHERE uuid = ?",
            args![uuid],
        )
        .await?;
    row.as_ref().map(record_from_row).transpose()
}

/// The UUIDs of the nodes (with or without a `nodes` row) that hold the attribute `name`
/// with any of `values`, or the attribute `also.0` with the value `also.1` (a ramdisk's MACs
/// and its BMC address: one query for both). Asks [`LOOKUP_BATCH`] values at a time.
pub async fn holders(
    db: &Db,
    also: Option<(&str, &str)>,
    name: &str,
    values: &[String],
) -> Result<BTreeSet<String>, DbError> {
    let marks = vec!["?"; LOOKUP_BATCH].join(", ");
    let sql = format!(
        "SELECT DISTINCT uuid FROM attributes WHERE uuid IS NOT NULL \
         AND ((name = ? AND value IN ({marks})) OR (name = ? AND value = ?))"
    );
    let also_values: Vec<String> = also.map(|(_, v)| v.to_string()).into_iter().collect();
    let mut batches: Vec<(&str, &[String])> = values
        .chunks(LOOKUP_BATCH)
        .map(|batch| (name, batch))
        .collect();
    if let (true, Some((also_name, _))) = (batches.is_empty(), also) {
        batches.push((also_name, &also_values));
    }
    let mut found = BTreeSet::new();
    for (i, (batch_name, batch)) in batches.into_iter().enumerate() {
        let mut args = args![batch_name];
        // A short batch repeats its last value to fill the list.
        for j in 0..LOOKUP_BATCH {
            args = args.bind(batch[j.min(batch.len() - 1)].as_str());
        }
        // Without `also` (or after the first batch) the second test repeats the first.
        let (or_name, or_value) = match also {
            Some(pair) if i == 0 => pair,
            _ => (batch_name, batch[0].as_str()),
        };
        args = args.bind(or_name).bind(or_value);
        for row in &db.fetch_all(&sql, args).await? {
            found.insert(required_text_column(row, "uuid")?);
        }
    }
    Ok(found)
}

/// Every value of the attribute `name`, whichever node holds it.
pub async fn attribute_values(db: &Db, name: &str) -> Result<HashSet<String>, DbError> {
    let rows = db
        .fetch_all("SELECT value FROM attributes WHERE name = ?", args![name])
        .await?;
    rows.iter()
        .map(|row| required_text_column(row, "value"))
        .collect()
}

/// Whether at least one node is under introspection (not finished).
pub async fn any_unfinished(db: &Db) -> Result<bool, DbError> {
    let row = db
        .fetch_optional(
            "SELECT uuid FROM nodes WHERE finished_at IS NULL LIMIT 1",
            args![],
        )
        .await?;
    Ok(row.is_some())
}

/// A node's lookup attributes: name to values (values sorted).
pub async fn attributes(db: &Db, uuid: &str) -> Result<BTreeMap<String, Vec<String>>, DbError> {
    let rows = db
        .fetch_all(
            "SELECT name, value FROM attributes WHERE uuid = ? ORDER BY name, value",
            args![uuid],
        )
        .await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &rows {
        let name = required_text_column(row, "name")?;
        let value = required_text_column(row, "value")?;
        out.entry(name).or_default().push(value);
    }
    Ok(out)
}

/// Stores one option of a node (its JSON text), replacing an earlier value of the same
/// name, in one transaction.
pub async fn set_option(db: &Db, uuid: &str, name: &str, json: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    tx.execute(
        "DELETE FROM options WHERE uuid = ? AND name = ?",
        args![uuid, name],
    )
    .await?;
    tx.execute(
        "INSERT INTO options (uuid, name, value) VALUES (?, ?, ?)",
        args![uuid, name, json],
    )
    .await?;
    tx.commit().await
}

/// A node's options: name to JSON text (`None` for a NULL value).
pub async fn options(db: &Db, uuid: &str) -> Result<Vec<(String, Option<String>)>, DbError> {
    let rows = db
        .fetch_all(
            "SELECT name, value FROM options WHERE uuid = ?",
            args![uuid],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                required_text_column(row, "name")?,
                text_column(row, "value")?,
            ))
        })
        .collect()
}

/// Records the end of a node's introspection and drops its lookup attributes and its
/// options but `keep_option`, in one transaction.
pub async fn finish(
    db: &Db,
    uuid: &str,
    finished_at: f64,
    error: Option<&str>,
    keep_option: &str,
) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    tx.execute(
        "UPDATE nodes SET finished_at = ?, error = ? WHERE uuid = ?",
        args![finished_at, error, uuid],
    )
    .await?;
    tx.execute("DELETE FROM attributes WHERE uuid = ?", args![uuid])
        .await?;
    tx.execute(
        "DELETE FROM options WHERE uuid = ? AND name <> ?",
        args![uuid, keep_option],
    )
    .await?;
    tx.commit().await
}

/// Deletes a node's row, attributes and options, in one transaction.
pub async fn delete(db: &Db, uuid: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    delete_rows(&mut tx, uuid).await?;
    tx.commit().await
}

/// The UUIDs of every node row.
pub async fn uuids(db: &Db) -> Result<HashSet<String>, DbError> {
    let rows = db.fetch_all("SELECT uuid FROM nodes", args![]).await?;
    rows.iter()
        .map(|row| required_text_column(row, "uuid"))
        .collect()
}

/// In one transaction: deletes the nodes that finished before `purge_before` (Unix
/// seconds), with anything left hanging off them; then, with `time_out`, finishes every
/// node that started before its threshold and has not finished, and drops their attributes
/// and options. Returns the UUIDs that timed out, sorted.
pub async fn clean_up(
    db: &Db,
    purge_before: f64,
    time_out: Option<TimeOut<'_>>,
) -> Result<Vec<String>, DbError> {
    let mut tx = db.begin().await?;
    // Finished nodes normally have no attributes or options left; drop any stragglers
    // first so that enforced foreign keys cannot block the purge.
    for table in ["attributes", "options"] {
        let sql = format!(
            "DELETE FROM {table} WHERE uuid IN (SELECT uuid FROM nodes \
             WHERE finished_at IS NOT NULL AND finished_at < ?)"
        );
        tx.execute(&sql, args![purge_before]).await?;
    }
    tx.execute(
        "DELETE FROM nodes WHERE finished_at IS NOT NULL AND finished_at < ?",
        args![purge_before],
    )
    .await?;
    let Some(time_out) = time_out else {
        tx.commit().await?;
        return Ok(Vec::new());
    };
    let rows = tx
        .fetch_all(
            "SELECT uuid FROM nodes WHERE started_at < ? AND finished_at IS NULL",
            args![time_out.started_before],
        )
        .await?;
    let mut uuids = rows
        .iter()
        .map(|row| required_text_column(row, "uuid"))
        .collect::<Result<Vec<_>, _>>()?;
    uuids.sort();
    for uuid in &uuids {
        tx.execute(
            "UPDATE nodes SET finished_at = ?, error = ? WHERE uuid = ?",
            args![time_out.finished_at, time_out.error, uuid.as_str()],
        )
        .await?;
        delete_children(&mut tx, uuid).await?;
    }
    tx.commit().await?;
    Ok(uuids)
}

/// Gives `lookup`'s values to the node. Values this node already holds are kept as they are
/// (a second start or a repeated post must not fail on its own MACs); a value held by
/// another node is [`Claim::Taken`]. Checked before inserting because a failed `INSERT`
/// aborts a PostgreSQL transaction.
async fn claim(tx: &mut Tx, uuid: &str, lookup: Lookup<'_>) -> Result<Claim, DbError> {
    if lookup.values.is_empty() {
        return Ok(Claim::Stored);
    }
    let marks = vec!["?"; lookup.values.len()].join(", ");
    let select =
        format!("SELECT value, uuid FROM attributes WHERE name = ? AND value IN ({marks})");
    let mut args = args![lookup.name];
    for value in lookup.values {
        args = args.bind(value.as_str());
    }
    let mut own = HashSet::new();
    for row in &tx.fetch_all(&select, args).await? {
        let value = required_text_column(row, "value")?;
        if text_column(row, "uuid")?.as_deref() != Some(uuid) {
            return Ok(Claim::Taken);
        }
        own.insert(value);
    }
    for value in lookup.values.iter().filter(|v| !own.contains(*v)) {
        // A value taken since the check above was taken by a writer on another daemon:
        // the INSERT fails on the unique key, and the caller may run the transaction again.
        tx.execute(
            "INSERT INTO attributes (name, value, uuid) VALUES (?, ?, ?)",
            args![lookup.name, value.as_str(), uuid],
        )
        .await?;
    }
    Ok(Claim::Stored)
}

/// Deletes a node's attributes and options (children first: foreign keys).
async fn delete_children(tx: &mut Tx, uuid: &str) -> Result<(), DbError> {
    for sql in [
        "DELETE FROM attributes WHERE uuid = ?",
        "DELETE FROM options WHERE uuid = ?",
    ] {
        tx.execute(sql, args![uuid]).await?;
    }
    Ok(())
}

/// Deletes a node's row and everything hanging off it.
async fn delete_rows(tx: &mut Tx, uuid: &str) -> Result<(), DbError> {
    delete_children(tx, uuid).await?;
    tx.execute("DELETE FROM nodes WHERE uuid = ?", args![uuid])
        .await?;
    Ok(())
}

fn record_from_row(row: &AnyRow) -> Result<IntrospectionRecord, DbError> {
    Ok(IntrospectionRecord {
        uuid: required_text_column(row, "uuid")?,
        started_at: float_column(row, "started_at")?.unwrap_or_default(),
        finished_at: float_column(row, "finished_at")?,
        error: text_column(row, "error")?,
    })
}

/// Rows this program never writes, as another writer could leave them. For tests.
#[cfg(test)]
pub(crate) mod stray {
    use super::*;

    /// An attribute row whose node has no row (foreign keys off, as upstream's SQLite).
    pub async fn attribute_without_node(db: &Db, name: &str, value: &str, uuid: &str) {
        let mut conn = db.pool().acquire().await.unwrap();
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO attributes (name, value, uuid) VALUES (?, ?, ?)")
            .bind(name)
            .bind(value)
            .bind(uuid)
            .execute(&mut *conn)
            .await
            .unwrap();
    }

    /// An option whose value is NULL.
    pub async fn null_option(db: &Db, uuid: &str, name: &str) {
        db.execute(
            "INSERT INTO options (uuid, name, value) VALUES (?, ?, NULL)",
            args![uuid, name],
        )
        .await
        .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::migrated_sqlite;

    const U1: &str = "0b5ae9c4-4f2b-4dd7-9d4f-2c6c0e0f9d01";

    #[tokio::test]
    async fn holders_takes_more_values_than_a_query_binds() {
        // A report may carry any number of MACs: more than SQLite's 32,766 bound values
        // (the lookup once failed on them), in lists of every length (each length once
        // became a prepared statement of its own in every pooled connection's cache).
        let (db, _dir) = migrated_sqlite().await;
        let mac = "52:54:00:ab:cd:ef".to_string();
        let lookup = Lookup {
            name: "mac",
            values: std::slice::from_ref(&mac),
        };
        assert_eq!(
            start(&db, U1, 1.0, Some(lookup)).await.unwrap(),
            Claim::Stored
        );
        let mut reported: Vec<String> = (0..40_000u32)
            .map(|i| {
                format!(
                    "02:00:00:{:02x}:{:02x}:{:02x}",
                    i >> 16,
                    (i >> 8) & 0xff,
                    i & 0xff
                )
            })
            .collect();
        let only_u1 = BTreeSet::from([U1.to_string()]);
        for len in [1, LOOKUP_BATCH - 1, LOOKUP_BATCH, LOOKUP_BATCH + 1] {
            let mut some = reported[..len].to_vec();
            some.insert(len / 2, mac.clone());
            assert_eq!(
                holders(&db, None, "mac", &some).await.unwrap(),
                only_u1,
                "{len}"
            );
            let none = holders(&db, None, "mac", &reported[..len]).await.unwrap();
            assert!(none.is_empty(), "{len}: {none:?}");
        }
        reported.push(mac);
        assert_eq!(holders(&db, None, "mac", &reported).await.unwrap(), only_u1);
        assert!(holders(&db, None, "mac", &[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn holders_of_macs_or_a_bmc_address_in_one_query() {
        let (db, _dir) = migrated_sqlite().await;
        const U2: &str = "0b5ae9c4-4f2b-4dd7-9d4f-2c6c0e0f9d02";
        let bmc = ["192.0.2.1".to_string()];
        let mac = ["52:54:00:ab:cd:01".to_string()];
        let lookup = |name, values| Some(Lookup { name, values });
        start(&db, U1, 1.0, lookup("bmc_address", &bmc))
            .await
            .unwrap();
        start(&db, U2, 1.0, lookup("mac", &mac)).await.unwrap();
        let both = BTreeSet::from([U1.to_string(), U2.to_string()]);
        let before = db.counts().statements;
        let found = holders(&db, Some(("bmc_address", "192.0.2.1")), "mac", &mac).await;
        assert_eq!(found.unwrap(), both);
        assert_eq!(db.counts().statements, before + 1);
        let only_u1 = BTreeSet::from([U1.to_string()]);
        let by_bmc = holders(&db, Some(("bmc_address", "192.0.2.1")), "mac", &[]).await;
        assert_eq!(by_bmc.unwrap(), only_u1);
        // The BMC address is looked for under its own name only.
        let by_mac_name = holders(&db, Some(("mac", "192.0.2.1")), "mac", &[]).await;
        assert!(by_mac_name.unwrap().is_empty());
        let other = ["52:54:00:ab:cd:02".to_string()];
        let by_mac = holders(&db, Some(("bmc_address", "192.0.2.9")), "mac", &mac).await;
        assert_eq!(by_mac.unwrap(), BTreeSet::from([U2.to_string()]));
        assert!(
            holders(&db, Some(("bmc_address", "192.0.2.9")), "mac", &other)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
