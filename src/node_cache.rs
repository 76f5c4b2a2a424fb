//! The node cache: nodes under introspection (and recently finished), their lookup
//! attributes (BMC address, MACs) and their options, plus a per-node lock.
//!
//! Ports the database half of `ironic_inspector/node_cache.py` (`add_node`, `get_node`,
//! `find_node`, `active_macs`, `clean_up`, `delete_nodes_not_in_list`, and upstream `NodeInfo`'s
//! `set_option`, `finished`, `add_attribute`, `options`, `attributes`). The Ironic half of
//! `NodeInfo` (node, ports, patches) is [`crate::ironic_node::IronicNode`]. This module
//! owns the SQL of the `nodes`, `attributes` and `options` tables and nothing else; it never
//! talks to Ironic or the firewall.
//!
//! Two deliberate departures from 2.2.2: lookups bind their values instead
//! of pasting them into SQL, and [`NodeCache::lock`] serialises work on one node, which
//! upstream did not do until a later release.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sqlx::error::ErrorKind;
use sqlx::{Any, Transaction};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio::time::Instant;

use crate::db::{Db, DbError, float_column, required_text_column, retry_conflicts, text_column};
use crate::error::{DbOutage, Error, Result};
use crate::py;

/// Attribute name under which a node's MAC addresses are stored.
pub const MACS_ATTRIBUTE: &str = "mac";
/// Attribute name under which a node's BMC address is stored.
pub const BMC_ATTRIBUTE: &str = "bmc_address";
/// Option name under which processed introspection data is stored (`store_data = database`).
pub const DATA_OPTION: &str = "introspection_data";
/// How long background work keeps trying to record the end of a node's introspection while
/// the database cannot take it (see [`NodeCache::finished_retrying`]).
pub const FINISH_RETRY_DEADLINE: Duration = Duration::from_secs(600);
const FINISH_FIRST_PAUSE: Duration = Duration::from_secs(1);
const FINISH_MAX_PAUSE: Duration = Duration::from_secs(10);
/// The error recorded on a node whose introspection ran out of time.
pub const TIMEOUT_ERROR: &str = "Introspection timeout";
/// MACs looked up per query by [`NodeCache::find_node`].
const LOOKUP_BATCH: usize = 64;

/// One row of the cache: a node under introspection, or one that finished recently.
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

/// The per-node locks: one async mutex per UUID that somebody holds or waits for.
type LockTable = Arc<StdMutex<HashMap<String, Arc<AsyncMutex<()>>>>>;

/// The node cache over the database. Cheap to clone; clones share the lock table.
#[derive(Clone, Debug)]
pub struct NodeCache {
    db: Db,
    locks: LockTable,
}

impl NodeCache {
    /// Wraps a database whose schema is at head.
    pub fn new(db: Db) -> Self {
        NodeCache {
            db,
            locks: Arc::default(),
        }
    }

    /// The database underneath.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Starts (or restarts) introspection of a node: drops whatever was cached for it, then
    /// records it as started now, with its BMC address as a lookup attribute when given and
    /// not empty. A BMC address that another node under introspection holds is a 400, and
    /// then nothing is written.
    pub async fn add_node(
        &self,
        uuid: &str,
        bmc_address: Option<&str>,
    ) -> Result<IntrospectionRecord> {
        retry_conflicts("add_node", lost_race, || {
            self.add_node_once(uuid, bmc_address)
        })
        .await
    }

    async fn add_node_once(
        &self,
        uuid: &str,
        bmc_address: Option<&str>,
    ) -> Result<IntrospectionRecord> {
        let started_at = now_unix();
        let mut tx = self.db.begin().await?;
        self.delete_rows(&mut tx, uuid).await?;
        let q = self
            .db
            .sql("INSERT INTO nodes (uuid, started_at) VALUES (?, ?)");
        sqlx::query(&q)
            .bind(uuid)
            .bind(started_at)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
        if let Some(bmc) = bmc_address.filter(|b| !b.is_empty()) {
            self.insert_attributes(&mut tx, uuid, BMC_ATTRIBUTE, &[bmc.to_string()])
                .await?;
        }
        tx.commit().await.map_err(write_error)?;
        Ok(IntrospectionRecord {
            uuid: uuid.to_string(),
            started_at,
            finished_at: None,
            error: None,
        })
    }

    /// Adds lookup attribute values for a node (MACs are stored in lower case). Values the
    /// node already has are kept once; if any value belongs to another node, nothing is added
    /// and the answer is a 400.
    pub async fn add_attribute(&self, uuid: &str, name: &str, values: &[String]) -> Result<()> {
        retry_conflicts("add_attribute", lost_race, || {
            self.add_attribute_once(uuid, name, values)
        })
        .await
    }

    async fn add_attribute_once(&self, uuid: &str, name: &str, values: &[String]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        self.insert_attributes(&mut tx, uuid, name, values).await?;
        tx.commit().await.map_err(write_error)?;
        Ok(())
    }

    /// The cached record of a node, finished or not; 404 when there is none.
    pub async fn get_node(&self, uuid: &str) -> Result<IntrospectionRecord> {
        let q = self
            .db
            .sql("SELECT uuid, started_at, finished_at, error FROM nodes WHERE uuid = ?");
        let row = sqlx::query(&q)
            .bind(uuid)
            .fetch_optional(self.db.pool())
            .await
            .map_err(DbError::from)?;
        match row {
            Some(row) => Ok(node_from_row(&row)?),
            None => Err(Error::NotFound(format!(
                "Could not find node {uuid} in cache"
            ))),
        }
    }

    /// Finds the node the ramdisk is running on, by BMC address and MACs (MACs compared in
    /// lower case). Errors, with upstream's codes: no match is 404, several matching nodes
    /// are 404, a match without a node row is 404, a node that already finished is 400.
    pub async fn find_node(
        &self,
        bmc_address: Option<&str>,
        macs: &[String],
    ) -> Result<IntrospectionRecord> {
        let bmc = bmc_address.filter(|b| !b.is_empty());
        let mut macs_lower: Vec<String> = macs.iter().map(|m| m.to_ascii_lowercase()).collect();
        macs_lower.sort();
        macs_lower.dedup();
        let attrs = attributes_repr(bmc_address, macs);
        if bmc.is_none() && macs_lower.is_empty() {
            return Err(Error::NotFound(format!(
                "Could not find a node for attributes {attrs}"
            )));
        }
        // Upstream tries the attributes in name order (bmc_address, then mac) and unions the
        // results. The MACs go in batches of LOOKUP_BATCH, so the query text is the same
        // whatever the ramdisk reports: one prepared statement per connection rather than
        // one per list length (each kept in the statement cache), and never more bound
        // values than a backend takes (SQLite refuses a 32,767th).
        let mut found = BTreeSet::new();
        if let Some(bmc) = bmc {
            let q = self.db.sql(
                "SELECT DISTINCT uuid FROM attributes WHERE uuid IS NOT NULL AND name = ? AND value = ?",
            );
            let rows = sqlx::query(&q)
                .bind(BMC_ATTRIBUTE)
                .bind(bmc)
                .fetch_all(self.db.pool())
                .await
                .map_err(DbError::from)?;
            for row in &rows {
                found.insert(required_text_column(row, "uuid")?);
            }
        }
        let marks = vec!["?"; LOOKUP_BATCH].join(", ");
        let sql = format!(
            "SELECT DISTINCT uuid FROM attributes WHERE uuid IS NOT NULL AND name = ? AND value IN ({marks})"
        );
        let q = self.db.sql(&sql);
        for batch in macs_lower.chunks(LOOKUP_BATCH) {
            let mut query = sqlx::query(&q).bind(MACS_ATTRIBUTE);
            // A short batch repeats its last MAC to fill the list.
            for i in 0..LOOKUP_BATCH {
                query = query.bind(batch[i.min(batch.len() - 1)].as_str());
            }
            let rows = query
                .fetch_all(self.db.pool())
                .await
                .map_err(DbError::from)?;
            for row in &rows {
                found.insert(required_text_column(row, "uuid")?);
            }
        }
        let found: Vec<String> = found.into_iter().collect();
        let uuid = match found.as_slice() {
            [] => {
                return Err(Error::NotFound(format!(
                    "Could not find a node for attributes {attrs}"
                )));
            }
            [one] => one.clone(),
            many => {
                return Err(Error::NotFound(format!(
                    "Multiple matching nodes found for attributes {attrs}: {}",
                    py::repr_str_list(many)
                )));
            }
        };
        let node = match self.get_node(&uuid).await {
            Ok(node) => node,
            Err(Error::NotFound(_)) => {
                return Err(Error::NotFound(format!(
                    "Could not find node {uuid} in introspection cache, probably it's not on \
                     introspection now"
                )));
            }
            Err(other) => return Err(other),
        };
        // Upstream tests the float for truth, so a zero timestamp counts as "not finished".
        if let Some(finished_at) = node.finished_at.filter(|f| *f != 0.0) {
            return Err(Error::BadRequest(format!(
                "Introspection for node {uuid} already finished on {}",
                py::repr_float(finished_at)
            )));
        }
        Ok(IntrospectionRecord {
            finished_at: None,
            error: None,
            ..node
        })
    }

    /// Every MAC address of every node under introspection (the firewall lets these through).
    pub async fn active_macs(&self) -> Result<HashSet<String>> {
        let q = self.db.sql("SELECT value FROM attributes WHERE name = ?");
        let rows = sqlx::query(&q)
            .bind(MACS_ATTRIBUTE)
            .fetch_all(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(rows
            .iter()
            .map(|row| required_text_column(row, "value"))
            .collect::<Result<_, _>>()?)
    }

    /// A node's lookup attributes: name to values (values sorted).
    pub async fn attributes(&self, uuid: &str) -> Result<BTreeMap<String, Vec<String>>> {
        let q = self
            .db
            .sql("SELECT name, value FROM attributes WHERE uuid = ? ORDER BY name, value");
        let rows = sqlx::query(&q)
            .bind(uuid)
            .fetch_all(self.db.pool())
            .await
            .map_err(DbError::from)?;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in &rows {
            let name = required_text_column(row, "name")?;
            let value = required_text_column(row, "value")?;
            out.entry(name).or_default().push(value);
        }
        Ok(out)
    }

    /// Stores one option of a node as JSON, replacing an earlier value of the same name.
    pub async fn set_option(&self, uuid: &str, name: &str, value: &Value) -> Result<()> {
        retry_conflicts("set_option", lost_race, || {
            self.set_option_once(uuid, name, value)
        })
        .await
    }

    async fn set_option_once(&self, uuid: &str, name: &str, value: &Value) -> Result<()> {
        let encoded = value.to_string();
        let mut tx = self.db.begin().await?;
        let q = self
            .db
            .sql("DELETE FROM options WHERE uuid = ? AND name = ?");
        sqlx::query(&q)
            .bind(uuid)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
        let q = self
            .db
            .sql("INSERT INTO options (uuid, name, value) VALUES (?, ?, ?)");
        sqlx::query(&q)
            .bind(uuid)
            .bind(name)
            .bind(encoded)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
        tx.commit().await.map_err(write_error)?;
        Ok(())
    }

    /// A node's options, decoded from JSON. A NULL value reads as JSON `null`.
    pub async fn options(&self, uuid: &str) -> Result<BTreeMap<String, Value>> {
        let q = self
            .db
            .sql("SELECT name, value FROM options WHERE uuid = ?");
        let rows = sqlx::query(&q)
            .bind(uuid)
            .fetch_all(self.db.pool())
            .await
            .map_err(DbError::from)?;
        let mut out = BTreeMap::new();
        for row in &rows {
            let name = required_text_column(row, "name")?;
            let value = match text_column(row, "value")? {
                None => Value::Null,
                Some(text) => serde_json::from_str(&text).map_err(|e| {
                    Error::internal(
                        "InvalidOption",
                        format!("option {name} of node {uuid} is not JSON: {e}"),
                    )
                })?,
            };
            out.insert(name, value);
        }
        Ok(out)
    }

    /// Records the end of a node's introspection (with the error, if it failed) and drops its
    /// lookup attributes and options, in one transaction. Returns the finish time.
    pub async fn finished(&self, uuid: &str, error: Option<&str>) -> Result<f64> {
        retry_conflicts("finished", lost_race, || self.finished_once(uuid, error)).await
    }

    /// [`NodeCache::finished`] for background work that has already acted on the node
    /// (powered it off): while the database is unavailable, busy or full it tries again,
    /// after 1 s and then twice as long each time up to 10 s, logging each failure, until
    /// `deadline` has passed. So a node is not left "waiting" after the fact without a word
    /// in the log. Other errors, and the last one at the deadline, are returned.
    pub async fn finished_retrying(
        &self,
        uuid: &str,
        error: Option<&str>,
        deadline: Duration,
    ) -> Result<f64> {
        let give_up = Instant::now() + deadline;
        let mut pause = FINISH_FIRST_PAUSE;
        loop {
            let err = match self.finished(uuid, error).await {
                Err(err) if err.is_temporary() => err,
                outcome => return outcome,
            };
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(err);
            }
            tracing::warn!(
                node.uuid = %uuid,
                error = %err,
                "cannot record the end of introspection, trying again in {} s",
                pause.min(left).as_secs_f32()
            );
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(FINISH_MAX_PAUSE);
        }
    }

    async fn finished_once(&self, uuid: &str, error: Option<&str>) -> Result<f64> {
        let finished_at = now_unix();
        let mut tx = self.db.begin().await?;
        let q = self
            .db
            .sql("UPDATE nodes SET finished_at = ?, error = ? WHERE uuid = ?");
        sqlx::query(&q)
            .bind(finished_at)
            .bind(error)
            .bind(uuid)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
        // Lookup attributes and options go (the node's MACs are blocked again); the stored
        // introspection data stays, so it can be read after the end.
        let q = self.db.sql("DELETE FROM attributes WHERE uuid = ?");
        sqlx::query(&q)
            .bind(uuid)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
        let q = self
            .db
            .sql("DELETE FROM options WHERE uuid = ? AND name <> ?");
        sqlx::query(&q)
            .bind(uuid)
            .bind(DATA_OPTION)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
        tx.commit().await.map_err(write_error)?;
        Ok(finished_at)
    }

    /// Keeps a node's processed introspection data (`[processing] store_data = database`).
    /// It lives in the node's options under [`DATA_OPTION`], so upstream's schema holds it
    /// unchanged; it survives [`NodeCache::finished`] and goes with the node's record.
    pub async fn store_data(&self, uuid: &str, data: &Value) -> Result<()> {
        self.set_option(uuid, DATA_OPTION, data).await
    }

    /// The data kept by [`NodeCache::store_data`], if any.
    pub async fn stored_data(&self, uuid: &str) -> Result<Option<Value>> {
        Ok(self.options(uuid).await?.remove(DATA_OPTION))
    }

    /// Forgets a node entirely: its row, attributes and options.
    pub async fn delete_node(&self, uuid: &str) -> Result<()> {
        retry_conflicts("delete_node", lost_race, || self.delete_node_once(uuid)).await
    }

    async fn delete_node_once(&self, uuid: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        self.delete_rows(&mut tx, uuid).await?;
        tx.commit().await.map_err(write_error)?;
        Ok(())
    }

    /// The UUIDs of every cached node.
    pub async fn node_uuids(&self) -> Result<HashSet<String>> {
        let rows = sqlx::query("SELECT uuid FROM nodes")
            .fetch_all(self.db.pool())
            .await
            .map_err(write_error)?;
        Ok(rows
            .iter()
            .map(|row| required_text_column(row, "uuid"))
            .collect::<Result<_, _>>()?)
    }

    /// Forgets the cached nodes whose UUID is not in `uuids` (the nodes Ironic still has).
    /// Returns the UUIDs dropped, sorted.
    pub async fn delete_nodes_not_in_list(&self, uuids: &HashSet<String>) -> Result<Vec<String>> {
        let mut gone: Vec<String> = self
            .node_uuids()
            .await?
            .into_iter()
            .filter(|u| !uuids.contains(u))
            .collect();
        gone.sort();
        for uuid in &gone {
            tracing::warn!(
                node.uuid = %uuid,
                "node was deleted from Ironic, dropping it from the inspector database"
            );
            self.delete_node(uuid).await?;
        }
        Ok(gone)
    }

    /// The periodic clean-up, in one transaction: drops finished records older than
    /// `keep_time` seconds, then (unless `timeout <= 0`) fails every introspection that
    /// started more than `timeout` seconds before `now` with "Introspection timeout" and
    /// drops its attributes and options. Returns the UUIDs that timed out, sorted. Timed-out
    /// nodes are neither powered off nor reported to Ironic, as upstream.
    pub async fn clean_up(&self, now: f64, timeout: i64, keep_time: i64) -> Result<Vec<String>> {
        retry_conflicts("clean_up", lost_race, || {
            self.clean_up_once(now, timeout, keep_time)
        })
        .await
    }

    async fn clean_up_once(&self, now: f64, timeout: i64, keep_time: i64) -> Result<Vec<String>> {
        let keep_threshold = now - keep_time as f64;
        let mut tx = self.db.begin().await?;
        // Finished nodes normally have no attributes or options left; drop any stragglers
        // first so that enforced foreign keys cannot block the purge.
        for table in ["attributes", "options"] {
            let sql = format!(
                "DELETE FROM {table} WHERE uuid IN (SELECT uuid FROM nodes \
                 WHERE finished_at IS NOT NULL AND finished_at < ?)"
            );
            let q = self.db.sql(&sql);
            sqlx::query(&q)
                .bind(keep_threshold)
                .execute(&mut *tx)
                .await
                .map_err(write_error)?;
        }
        let q = self
            .db
            .sql("DELETE FROM nodes WHERE finished_at IS NOT NULL AND finished_at < ?");
        sqlx::query(&q)
            .bind(keep_threshold)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;

        if timeout <= 0 {
            tx.commit().await.map_err(write_error)?;
            return Ok(Vec::new());
        }
        let threshold = now - timeout as f64;
        let q = self
            .db
            .sql("SELECT uuid FROM nodes WHERE started_at < ? AND finished_at IS NULL");
        let rows = sqlx::query(&q)
            .bind(threshold)
            .fetch_all(&mut *tx)
            .await
            .map_err(write_error)?;
        let mut uuids = rows
            .iter()
            .map(|row| required_text_column(row, "uuid"))
            .collect::<Result<Vec<_>, _>>()?;
        uuids.sort();
        if uuids.is_empty() {
            tx.commit().await.map_err(write_error)?;
            return Ok(uuids);
        }
        tracing::error!(nodes = ?uuids, "introspection timed out");
        for uuid in &uuids {
            let q = self
                .db
                .sql("UPDATE nodes SET finished_at = ?, error = ? WHERE uuid = ?");
            sqlx::query(&q)
                .bind(now)
                .bind(TIMEOUT_ERROR)
                .bind(uuid.as_str())
                .execute(&mut *tx)
                .await
                .map_err(write_error)?;
            self.delete_children(&mut tx, uuid).await?;
        }
        tx.commit().await.map_err(write_error)?;
        Ok(uuids)
    }

    /// Waits until no one else works on this node, then holds it until the guard drops.
    /// Introspection start and ramdisk processing take it, so two requests for one node
    /// never interleave. A tokio mutex, since the holder awaits Ironic and the database.
    pub async fn lock(&self, uuid: &str) -> NodeLock {
        let entry = LockEntry::new(&self.locks, uuid);
        let guard = entry.mutex.clone().lock_owned().await;
        NodeLock {
            guard: Some(guard),
            _entry: entry,
        }
    }

    /// The node's lock if nobody holds it now; `None` when the node is busy (abort answers
    /// 409 then, as upstream did).
    pub fn try_lock(&self, uuid: &str) -> Option<NodeLock> {
        let entry = LockEntry::new(&self.locks, uuid);
        let guard = entry.mutex.clone().try_lock_owned().ok()?;
        Some(NodeLock {
            guard: Some(guard),
            _entry: entry,
        })
    }

    /// How many nodes currently have a lock entry (held or awaited). For tests and metrics.
    pub fn lock_entries(&self) -> usize {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    async fn insert_attributes(
        &self,
        tx: &mut Transaction<'static, Any>,
        uuid: &str,
        name: &str,
        values: &[String],
    ) -> Result<()> {
        let mut wanted: Vec<String> = values
            .iter()
            .map(|value| {
                if name == MACS_ATTRIBUTE {
                    value.to_ascii_lowercase()
                } else {
                    value.clone()
                }
            })
            .collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        // Values this node already holds are kept as they are (a second start or a repeated
        // post must not fail on its own MACs); a value held by another node is a conflict.
        // Checked before inserting because a failed INSERT aborts a PostgreSQL transaction.
        let placeholders = vec!["?"; wanted.len()].join(", ");
        let select = format!(
            "SELECT value, uuid FROM attributes WHERE name = ? AND value IN ({placeholders})"
        );
        let q = self.db.sql(&select);
        let mut query = sqlx::query(&q).bind(name);
        for value in &wanted {
            query = query.bind(value.as_str());
        }
        let taken = query.fetch_all(&mut **tx).await.map_err(DbError::from)?;
        let mut own = HashSet::new();
        for row in &taken {
            let value = required_text_column(row, "value")?;
            if text_column(row, "uuid")?.as_deref() == Some(uuid) {
                own.insert(value);
            } else {
                tracing::debug!(node.uuid = %uuid, attribute = %name, "lookup attribute held by another node");
                return Err(Error::BadRequest(format!(
                    "Some or all of {name}'s {} are already on introspection",
                    py::repr_str_list(values)
                )));
            }
        }
        let q = self
            .db
            .sql("INSERT INTO attributes (name, value, uuid) VALUES (?, ?, ?)");
        for stored in wanted.into_iter().filter(|v| !own.contains(v)) {
            // A value taken since the check above was taken by a writer on another daemon:
            // the transaction runs again, and the check then gives the right answer.
            sqlx::query(&q)
                .bind(name)
                .bind(stored)
                .bind(uuid)
                .execute(&mut **tx)
                .await
                .map_err(write_error)?;
        }
        Ok(())
    }

    /// Deletes a node's attributes and options (children first: foreign keys).
    async fn delete_children(&self, tx: &mut Transaction<'static, Any>, uuid: &str) -> Result<()> {
        for sql in [
            "DELETE FROM attributes WHERE uuid = ?",
            "DELETE FROM options WHERE uuid = ?",
        ] {
            let q = self.db.sql(sql);
            sqlx::query(&q)
                .bind(uuid)
                .execute(&mut **tx)
                .await
                .map_err(write_error)?;
        }
        Ok(())
    }

    /// Deletes a node's row and everything hanging off it.
    async fn delete_rows(&self, tx: &mut Transaction<'static, Any>, uuid: &str) -> Result<()> {
        self.delete_children(tx, uuid).await?;
        let q = self.db.sql("DELETE FROM nodes WHERE uuid = ?");
        sqlx::query(&q)
            .bind(uuid)
            .execute(&mut **tx)
            .await
            .map_err(write_error)?;
        Ok(())
    }
}

/// Converts the failure of a statement in a node-cache write transaction. Besides deadlocks
/// and lock waits, a duplicate key or a broken reference is a lost race here: the node locks
/// are per process, so on PostgreSQL and MySQL another daemon on the same database may have
/// written the same node's rows since this transaction looked (both found no row and both
/// inserted one, or one deleted a node the other was adding attributes to). The whole
/// transaction then runs again and sees the other's work. (SQLite has one writer at a time.)
fn write_error(err: sqlx::Error) -> Error {
    let raced = err.as_database_error().is_some_and(|e| {
        matches!(
            e.kind(),
            ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation
        )
    });
    if raced {
        Error::Database {
            outage: DbOutage::Busy,
            detail: err.to_string(),
        }
    } else {
        Error::from(err)
    }
}

/// Whether a write lost a race with another transaction, even after the driver's own
/// waiting (deadlock, serialization failure, lock wait timeout, SQLite's busy timeout).
fn lost_race(err: &Error) -> bool {
    matches!(
        err,
        Error::Database {
            outage: DbOutage::Busy,
            ..
        }
    )
}

/// Holds one node's lock; dropping it lets the next request for the node in.
#[derive(Debug)]
pub struct NodeLock {
    guard: Option<OwnedMutexGuard<()>>,
    _entry: LockEntry,
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        // Release the mutex before the entry checks whether anyone still needs it.
        self.guard.take();
    }
}

/// A claim on a lock-table entry, by a holder or a waiter. The last claim to go removes the
/// entry, so the table only ever lists nodes that someone works on. Claims are made and
/// dropped under the table's std mutex, which is never held across an `.await`.
#[derive(Debug)]
struct LockEntry {
    table: LockTable,
    uuid: String,
    mutex: Arc<AsyncMutex<()>>,
}

impl LockEntry {
    fn new(table: &LockTable, uuid: &str) -> Self {
        let mut locks = table.lock().unwrap_or_else(PoisonError::into_inner);
        let mutex = locks.entry(uuid.to_string()).or_default().clone();
        LockEntry {
            table: table.clone(),
            uuid: uuid.to_string(),
            mutex,
        }
    }
}

impl Drop for LockEntry {
    fn drop(&mut self) {
        let mut locks = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        // Two references left: the table's and ours. Every other claim holds one more, and
        // claims are only made under this same std mutex.
        if Arc::strong_count(&self.mutex) <= 2 {
            locks.remove(&self.uuid);
        }
    }
}

fn node_from_row(row: &sqlx::any::AnyRow) -> Result<IntrospectionRecord, DbError> {
    Ok(IntrospectionRecord {
        uuid: required_text_column(row, "uuid")?,
        started_at: float_column(row, "started_at")?.unwrap_or_default(),
        finished_at: float_column(row, "finished_at")?,
        error: text_column(row, "error")?,
    })
}

/// The current time as Unix seconds, as stored in `nodes.started_at` and `finished_at`.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The lookup attributes rendered as upstream's messages show them (a Python dict).
fn attributes_repr(bmc_address: Option<&str>, macs: &[String]) -> String {
    let bmc = bmc_address.map_or_else(|| "None".to_string(), py::repr_str);
    format!(
        "{{'bmc_address': {bmc}, 'mac': {}}}",
        py::repr_str_list(macs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrate;
    use serde_json::json;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    const U1: &str = "0b5ae9c4-4f2b-4dd7-9d4f-2c6c0e0f9d01";
    const U2: &str = "1c6bf0d5-5a3c-4ee8-8e5a-3d7d1f1a0e02";

    /// A migrated SQLite file in a temp dir (the dir must outlive the cache).
    async fn cache() -> (NodeCache, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:///{}", dir.path().join("inspector.db").display());
        let db = Db::connect_url(&url).await.unwrap();
        migrate::upgrade(&db, "head", |_| {}).await.unwrap();
        (NodeCache::new(db), dir)
    }

    fn macs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn add_node_records_start_and_bmc() {
        let (cache, _dir) = cache().await;
        let before = now_unix();
        let node = cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        assert_eq!(node.uuid, U1);
        assert!(node.started_at >= before && node.started_at <= now_unix());
        assert_eq!(cache.get_node(U1).await.unwrap(), node);
        let attrs = cache.attributes(U1).await.unwrap();
        assert_eq!(attrs.get("bmc_address"), Some(&macs(&["1.2.3.4"])));
    }

    #[tokio::test]
    async fn add_node_without_bmc_adds_no_attribute() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, None).await.unwrap();
        cache.add_node(U2, Some("")).await.unwrap();
        assert!(cache.attributes(U1).await.unwrap().is_empty());
        assert!(cache.attributes(U2).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn add_node_replaces_the_previous_record() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        cache
            .add_attribute(U1, "mac", &macs(&["11:22:33:44:55:66"]))
            .await
            .unwrap();
        cache.set_option(U1, "foo", &json!("bar")).await.unwrap();
        cache.finished(U1, Some("boom")).await.unwrap();

        let again = cache.add_node(U1, Some("5.6.7.8")).await.unwrap();
        let node = cache.get_node(U1).await.unwrap();
        assert_eq!(node, again);
        assert_eq!(node.finished_at, None);
        assert_eq!(node.error, None);
        let attrs = cache.attributes(U1).await.unwrap();
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs.get("bmc_address"), Some(&macs(&["5.6.7.8"])));
        assert!(cache.options(U1).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn duplicate_bmc_is_rejected_and_rolled_back() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        let err = cache.add_node(U2, Some("1.2.3.4")).await.unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "Some or all of bmc_address's ['1.2.3.4'] are already on introspection"
        );
        // The whole transaction went, including the new node row.
        assert!(matches!(cache.get_node(U2).await, Err(Error::NotFound(_))));
        assert_eq!(
            cache.node_uuids().await.unwrap(),
            HashSet::from([U1.to_string()])
        );
    }

    #[tokio::test]
    async fn stored_data_survives_finishing_but_not_a_new_start() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        cache
            .set_option(U1, "new_ipmi_credentials", &json!(null))
            .await
            .unwrap();
        let data = json!({"cpus": 4, "interfaces": {"eth0": {"mac": "11:22:33:44:55:66"}}});
        cache.store_data(U1, &data).await.unwrap();
        cache.finished(U1, None).await.unwrap();
        assert_eq!(cache.stored_data(U1).await.unwrap(), Some(data));
        assert!(
            !cache
                .options(U1)
                .await
                .unwrap()
                .contains_key("new_ipmi_credentials")
        );
        cache.add_node(U1, None).await.unwrap();
        assert_eq!(cache.stored_data(U1).await.unwrap(), None);
    }

    #[tokio::test]
    async fn adding_a_nodes_own_attributes_again_is_harmless() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        let both = macs(&["11:22:33:44:55:66", "AA:BB:CC:DD:EE:FF"]);
        cache.add_attribute(U1, "mac", &both).await.unwrap();
        cache.add_attribute(U1, "mac", &both).await.unwrap();
        cache
            .add_attribute(U1, "bmc_address", &macs(&["1.2.3.4"]))
            .await
            .unwrap();
        let attrs = cache.attributes(U1).await.unwrap();
        let mut stored = attrs["mac"].clone();
        stored.sort();
        assert_eq!(stored, ["11:22:33:44:55:66", "aa:bb:cc:dd:ee:ff"]);
        assert_eq!(attrs["bmc_address"], ["1.2.3.4"]);
    }

    #[tokio::test]
    async fn add_attribute_conflict_keeps_nothing() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, None).await.unwrap();
        cache.add_node(U2, None).await.unwrap();
        cache
            .add_attribute(U1, "mac", &macs(&["11:22:33:44:55:66"]))
            .await
            .unwrap();
        let err = cache
            .add_attribute(
                U2,
                "mac",
                &macs(&["aa:bb:cc:dd:ee:ff", "11:22:33:44:55:66"]),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Some or all of mac's ['aa:bb:cc:dd:ee:ff', '11:22:33:44:55:66'] are already on \
             introspection"
        );
        assert!(cache.attributes(U2).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn macs_are_lowercased_on_write_and_lookup() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, None).await.unwrap();
        cache
            .add_attribute(U1, "mac", &macs(&["AA:BB:CC:DD:EE:FF"]))
            .await
            .unwrap();
        assert_eq!(
            cache.active_macs().await.unwrap(),
            HashSet::from(["aa:bb:cc:dd:ee:ff".to_string()])
        );
        let found = cache
            .find_node(None, &macs(&["Aa:bB:cc:DD:ee:ff"]))
            .await
            .unwrap();
        assert_eq!(found.uuid, U1);
    }

    #[tokio::test]
    async fn get_node_unknown_is_404() {
        let (cache, _dir) = cache().await;
        let err = cache.get_node(U1).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)));
        assert_eq!(
            err.to_string(),
            format!("Could not find node {U1} in cache")
        );
    }

    #[tokio::test]
    async fn find_node_by_bmc_or_macs() {
        let (cache, _dir) = cache().await;
        let node = cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        cache
            .add_attribute(
                U1,
                "mac",
                &macs(&["11:22:33:44:55:66", "66:55:44:33:22:11"]),
            )
            .await
            .unwrap();
        let by_bmc = cache.find_node(Some("1.2.3.4"), &[]).await.unwrap();
        assert_eq!(by_bmc.uuid, U1);
        assert_eq!(by_bmc.started_at, node.started_at);
        let by_mac = cache
            .find_node(None, &macs(&["00:00:00:00:00:00", "66:55:44:33:22:11"]))
            .await
            .unwrap();
        assert_eq!(by_mac.uuid, U1);
        let both = cache
            .find_node(Some("1.2.3.4"), &macs(&["11:22:33:44:55:66"]))
            .await
            .unwrap();
        assert_eq!(both.uuid, U1);
    }

    #[tokio::test]
    async fn find_node_without_match_is_404_naming_the_attributes() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        let err = cache
            .find_node(Some("9.9.9.9"), &macs(&["aa:aa:aa:aa:aa:aa"]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)));
        assert_eq!(
            err.to_string(),
            "Could not find a node for attributes {'bmc_address': '9.9.9.9', 'mac': \
             ['aa:aa:aa:aa:aa:aa']}"
        );
        let err = cache.find_node(None, &[]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "Could not find a node for attributes {'bmc_address': None, 'mac': []}"
        );
    }

    #[tokio::test]
    async fn find_node_binds_values_instead_of_pasting_them() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        // With string concatenation (upstream) this matched every row.
        let err = cache
            .find_node(Some("x\" OR \"1\"=\"1"), &macs(&["' OR '1'='1"]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            r#"Could not find a node for attributes {'bmc_address': 'x" OR "1"="1', 'mac': ["' OR '1'='1"]}"#
        );
    }

    #[tokio::test]
    async fn find_node_takes_more_macs_than_a_query_binds() {
        // A report may carry any number of MACs: more than SQLite's 32,766 bound values
        // (the lookup once failed on them), in lists of every length (each length once
        // became a prepared statement of its own in every pooled connection's cache).
        let (cache, _dir) = cache().await;
        cache.add_node(U1, None).await.unwrap();
        cache
            .add_attribute(U1, "mac", &macs(&["52:54:00:ab:cd:ef"]))
            .await
            .unwrap();
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
        reported.push("52:54:00:AB:CD:EF".to_string());
        assert_eq!(cache.find_node(None, &reported).await.unwrap().uuid, U1);
        for len in [1, LOOKUP_BATCH - 1, LOOKUP_BATCH, LOOKUP_BATCH + 1] {
            let mut some = reported[..len].to_vec();
            some.insert(len / 2, "52:54:00:ab:cd:ef".to_string());
            assert_eq!(
                cache.find_node(None, &some).await.unwrap().uuid,
                U1,
                "{len}"
            );
            let err = cache.find_node(None, &reported[..len]).await.unwrap_err();
            assert!(matches!(err, Error::NotFound(_)), "{len}: {err:?}");
        }
    }

    #[tokio::test]
    async fn find_node_with_several_matches_is_404() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        cache.add_node(U2, None).await.unwrap();
        cache
            .add_attribute(U2, "mac", &macs(&["11:22:33:44:55:66"]))
            .await
            .unwrap();
        let err = cache
            .find_node(Some("1.2.3.4"), &macs(&["11:22:33:44:55:66"]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)));
        assert_eq!(
            err.to_string(),
            format!(
                "Multiple matching nodes found for attributes {{'bmc_address': '1.2.3.4', \
                 'mac': ['11:22:33:44:55:66']}}: ['{U1}', '{U2}']"
            )
        );
    }

    #[tokio::test]
    async fn find_node_on_a_finished_node_is_400() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        // A finished node has no attributes left, so put one back as a stale row would be.
        cache.finished(U1, None).await.unwrap();
        sqlx::query("UPDATE nodes SET finished_at = 1448526000.0")
            .execute(cache.db().pool())
            .await
            .unwrap();
        cache
            .add_attribute(U1, "bmc_address", &macs(&["1.2.3.4"]))
            .await
            .unwrap();
        let err = cache.find_node(Some("1.2.3.4"), &[]).await.unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("Introspection for node {U1} already finished on 1448526000.0")
        );
    }

    #[tokio::test]
    async fn find_node_with_attribute_but_no_node_row_is_404() {
        let (cache, _dir) = cache().await;
        // Only reachable through a database written without foreign keys (upstream SQLite).
        let mut conn = cache.db().pool().acquire().await.unwrap();
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO attributes (name, value, uuid) VALUES ('mac', 'aa', ?)")
            .bind(U2)
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        let err = cache.find_node(None, &macs(&["aa"])).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)));
        assert_eq!(
            err.to_string(),
            format!(
                "Could not find node {U2} in introspection cache, probably it's not on \
                 introspection now"
            )
        );
    }

    #[tokio::test]
    async fn active_macs_lists_only_macs() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        cache
            .add_attribute(U1, "mac", &macs(&["11:22:33:44:55:66"]))
            .await
            .unwrap();
        cache.add_node(U2, None).await.unwrap();
        cache
            .add_attribute(U2, "mac", &macs(&["66:55:44:33:22:11"]))
            .await
            .unwrap();
        assert_eq!(
            cache.active_macs().await.unwrap(),
            HashSet::from([
                "11:22:33:44:55:66".to_string(),
                "66:55:44:33:22:11".to_string()
            ])
        );
        cache.finished(U2, None).await.unwrap();
        assert_eq!(
            cache.active_macs().await.unwrap(),
            HashSet::from(["11:22:33:44:55:66".to_string()])
        );
    }

    #[tokio::test]
    async fn options_round_trip_json() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, None).await.unwrap();
        cache
            .set_option(U1, "new_ipmi_credentials", &Value::Null)
            .await
            .unwrap();
        cache
            .set_option(U1, "list", &json!(["user", "pass"]))
            .await
            .unwrap();
        cache
            .set_option(U1, "list", &json!(["admin", "secret"]))
            .await
            .unwrap();
        let options = cache.options(U1).await.unwrap();
        assert_eq!(options.len(), 2);
        assert_eq!(options["new_ipmi_credentials"], Value::Null);
        assert_eq!(options["list"], json!(["admin", "secret"]));
        // A NULL column (written by someone else) reads as JSON null.
        sqlx::query("INSERT INTO options (uuid, name, value) VALUES (?, 'raw', NULL)")
            .bind(U1)
            .execute(cache.db().pool())
            .await
            .unwrap();
        assert_eq!(cache.options(U1).await.unwrap()["raw"], Value::Null);
        assert!(cache.options(U2).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn finished_retrying_records_at_once_when_it_can() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, None).await.unwrap();
        cache
            .finished_retrying(U1, Some("boom"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            cache.get_node(U1).await.unwrap().error.as_deref(),
            Some("boom")
        );
    }

    #[tokio::test]
    async fn finished_retrying_keeps_trying_until_its_deadline() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, None).await.unwrap();
        // A closed pool answers "unavailable" for ever.
        cache.db().close().await;
        let deadline = Duration::from_millis(1500);
        let started = Instant::now();
        let err = cache
            .finished_retrying(U1, None, deadline)
            .await
            .unwrap_err();
        assert!(err.is_temporary(), "{err:?}");
        assert_eq!(
            err.client_message(false),
            "The database is unavailable, try again later"
        );
        // Tried at 0 s, 1 s and at the deadline.
        assert!(started.elapsed() >= deadline, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn finished_records_error_and_drops_attributes_and_options() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        cache.set_option(U1, "foo", &json!(1)).await.unwrap();
        let before = now_unix();
        let at = cache.finished(U1, Some("boom")).await.unwrap();
        let node = cache.get_node(U1).await.unwrap();
        assert_eq!(node.finished_at, Some(at));
        assert!(at >= before);
        assert_eq!(node.error.as_deref(), Some("boom"));
        assert!(cache.attributes(U1).await.unwrap().is_empty());
        assert!(cache.options(U1).await.unwrap().is_empty());
        // The BMC address is free again.
        cache.add_node(U2, Some("1.2.3.4")).await.unwrap();
        cache.finished(U2, None).await.unwrap();
        assert_eq!(cache.get_node(U2).await.unwrap().error, None);
    }

    #[tokio::test]
    async fn delete_node_and_delete_nodes_not_in_list() {
        let (cache, _dir) = cache().await;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        cache.add_node(U2, Some("5.6.7.8")).await.unwrap();
        cache.set_option(U2, "x", &json!(true)).await.unwrap();
        let gone = cache
            .delete_nodes_not_in_list(&HashSet::from([U1.to_string()]))
            .await
            .unwrap();
        assert_eq!(gone, vec![U2.to_string()]);
        assert_eq!(
            cache.node_uuids().await.unwrap(),
            HashSet::from([U1.to_string()])
        );
        assert!(cache.options(U2).await.unwrap().is_empty());
        cache.delete_node(U1).await.unwrap();
        assert!(cache.node_uuids().await.unwrap().is_empty());
        assert!(cache.active_macs().await.unwrap().is_empty());
    }

    /// Sets a node's timestamps directly, as if it had started/finished at those times.
    async fn set_times(cache: &NodeCache, uuid: &str, started: f64, finished: Option<f64>) {
        sqlx::query("UPDATE nodes SET started_at = ?, finished_at = ? WHERE uuid = ?")
            .bind(started)
            .bind(finished)
            .bind(uuid)
            .execute(cache.db().pool())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn clean_up_times_out_old_introspections() {
        let (cache, _dir) = cache().await;
        let now = 1_000_000.0;
        cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
        cache
            .add_attribute(U1, "mac", &macs(&["11:22:33:44:55:66"]))
            .await
            .unwrap();
        cache.set_option(U1, "foo", &json!("bar")).await.unwrap();
        set_times(&cache, U1, now - 100.0, None).await;
        cache.add_node(U2, Some("5.6.7.8")).await.unwrap();
        set_times(&cache, U2, now - 10.0, None).await;

        let timed_out = cache.clean_up(now, 60, 604_800).await.unwrap();
        assert_eq!(timed_out, vec![U1.to_string()]);
        let node = cache.get_node(U1).await.unwrap();
        assert_eq!(node.finished_at, Some(now));
        assert_eq!(node.error.as_deref(), Some("Introspection timeout"));
        assert!(cache.attributes(U1).await.unwrap().is_empty());
        assert!(cache.options(U1).await.unwrap().is_empty());
        // The young one is untouched.
        let young = cache.get_node(U2).await.unwrap();
        assert_eq!(young.finished_at, None);
        assert_eq!(cache.attributes(U2).await.unwrap().len(), 1);
        // Nothing more to do the second time.
        assert!(cache.clean_up(now, 60, 604_800).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn clean_up_purges_old_finished_nodes_even_without_timeout() {
        let (cache, _dir) = cache().await;
        let now = 1_000_000.0;
        cache.add_node(U1, None).await.unwrap();
        cache.add_node(U2, None).await.unwrap();
        set_times(&cache, U1, now - 5000.0, Some(now - 2000.0)).await;
        set_times(&cache, U2, now - 5000.0, Some(now - 500.0)).await;
        // timeout 0 disables timeouts but still purges.
        assert!(cache.clean_up(now, 0, 1000).await.unwrap().is_empty());
        assert_eq!(
            cache.node_uuids().await.unwrap(),
            HashSet::from([U2.to_string()])
        );
        // A running node older than any timeout is left alone when timeouts are off.
        cache.add_node(U1, None).await.unwrap();
        set_times(&cache, U1, now - 1e6, None).await;
        assert!(cache.clean_up(now, -1, 1000).await.unwrap().is_empty());
        assert_eq!(cache.get_node(U1).await.unwrap().finished_at, None);
    }

    #[tokio::test]
    async fn lock_serialises_work_on_one_node() {
        let (cache, _dir) = cache().await;
        let first = cache.lock(U1).await;
        assert_eq!(cache.lock_entries(), 1);
        let acquired = Arc::new(AtomicBool::new(false));
        let task = {
            let cache = cache.clone();
            let acquired = acquired.clone();
            tokio::spawn(async move {
                let _guard = cache.lock(U1).await;
                acquired.store(true, Ordering::SeqCst);
            })
        };
        // Give the task every chance to run; it must stay blocked on the lock.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!acquired.load(Ordering::SeqCst));
        // Another node is not blocked.
        drop(cache.lock(U2).await);
        drop(first);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert!(acquired.load(Ordering::SeqCst));
        assert_eq!(cache.lock_entries(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lock_holders_never_overlap() {
        let (cache, _dir) = cache().await;
        let inside = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let cache = cache.clone();
            let inside = inside.clone();
            let overlaps = overlaps.clone();
            tasks.push(tokio::spawn(async move {
                let _guard = cache.lock(U1).await;
                if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                // Real work under the lock: a write to the database.
                cache.add_node(U1, Some("1.2.3.4")).await.unwrap();
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
        assert_eq!(cache.lock_entries(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_no_entry() {
        let (cache, _dir) = cache().await;
        let held = cache.lock(U1).await;
        let waiting = tokio::time::timeout(Duration::from_millis(10), cache.lock(U1)).await;
        assert!(waiting.is_err());
        drop(held);
        assert_eq!(cache.lock_entries(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_on_sqlite_do_not_fail() {
        let (cache, _dir) = cache().await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move {
                let uuid = format!("00000000-0000-0000-0000-{i:012}");
                cache
                    .add_node(&uuid, Some(&format!("10.0.0.{i}")))
                    .await
                    .unwrap();
                cache
                    .add_attribute(&uuid, "mac", &[format!("52:54:00:00:00:{i:02x}")])
                    .await
                    .unwrap();
                cache.set_option(&uuid, "step", &json!(i)).await.unwrap();
                cache.get_node(&uuid).await.unwrap();
                cache.finished(&uuid, None).await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(cache.node_uuids().await.unwrap().len(), 40);
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py::repr_str("a'b"), "\"a'b\"");
        assert_eq!(py::repr_str("a\\b"), "'a\\\\b'");
        assert_eq!(py::repr_str("a'\"b"), "'a\\'\"b'");
        assert_eq!(py::repr_float(1448526000.0), "1448526000.0");
        assert_eq!(py::repr_float(1448526000.25), "1448526000.25");
    }
}

#[cfg(test)]
mod mac_properties {
    use proptest::prelude::*;

    use super::*;
    use crate::db::migrate;
    use crate::testing::{mac, text};

    const U1: &str = "0b5ae9c4-4f2b-4dd7-9d4f-2c6c0e0f9d01";

    fn flip_case(s: &str, flips: &[bool]) -> String {
        s.chars()
            .zip(flips.iter().cycle())
            .map(|(c, f)| {
                if *f {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// MACs are stored in lower case and found whatever case the ramdisk reports them in.
        #[test]
        fn macs_are_found_in_any_case(
            stored in prop::collection::vec(mac(), 1..4),
            flips in prop::collection::vec(any::<bool>(), 1..17),
            pick in any::<prop::sample::Index>(),
            strangers in prop::collection::vec(prop_oneof![mac(), text()], 0..3),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let db = Db::connect_url("sqlite://").await.unwrap();
                migrate::upgrade(&db, "head", |_| {}).await.unwrap();
                let cache = NodeCache::new(db);
                cache.add_node(U1, None).await.unwrap();
                cache.add_attribute(U1, MACS_ATTRIBUTE, &stored).await.unwrap();
                let lower: HashSet<String> = stored.iter().map(|m| m.to_lowercase()).collect();
                prop_assert_eq!(cache.active_macs().await.unwrap(), lower.clone());
                let reported = flip_case(&stored[pick.index(stored.len())], &flips);
                let found = cache.find_node(None, &[reported]).await.unwrap();
                prop_assert_eq!(found.uuid, U1);
                let unknown: Vec<String> = strangers
                    .into_iter()
                    .filter(|s| !lower.contains(&s.to_lowercase()))
                    .collect();
                if !unknown.is_empty() {
                    let err = cache.find_node(None, &unknown).await.unwrap_err();
                    prop_assert!(matches!(err, Error::NotFound(_)), "{err:?}");
                }
                Ok(())
            })?;
        }
    }
}
