//! The node cache: which nodes are under introspection (and which finished recently, how,
//! and when), how a ramdisk is matched to one, and a per-node lock.
//!
//! Ports the domain half of `ironic_inspector/node_cache.py` (`add_node`, `get_node`,
//! `find_node`, `active_macs`, `clean_up`, `delete_nodes_not_in_list`, and upstream
//! `NodeInfo`'s `set_option`, `finished`, `add_attribute`, `options`, `attributes`). The
//! rows and their SQL are [`crate::db::nodes`]; the Ironic half of `NodeInfo` (node, ports,
//! patches) is [`crate::ironic_node::IronicNode`]. This module never talks to Ironic or the
//! firewall.
//!
//! Two deliberate departures from 2.2.2: lookups bind their values instead
//! of pasting them into SQL, and [`NodeCache::lock`] serialises work on one node, which
//! upstream did not do until a later release.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio::time::Instant;

use crate::db::nodes::{self, Claim, Lookup, TimeOut};
use crate::db::{Db, DbError, retry_conflicts};
use crate::error::{DbOutage, Error, Result};
use crate::mac::Mac;
use crate::py;
use crate::retry::Backoff;

pub use crate::db::nodes::IntrospectionRecord;

/// Attribute name under which a node's MAC addresses are stored.
pub const MACS_ATTRIBUTE: &str = "mac";
/// Attribute name under which a node's BMC address is stored.
pub const BMC_ATTRIBUTE: &str = "bmc_address";
/// Option name under which processed introspection data is stored (`store_data = database`).
pub const DATA_OPTION: &str = "introspection_data";
/// How long background work keeps trying to record the end of a node's introspection while
/// the database cannot take it (see [`NodeCache::finished_retrying`]).
pub const FINISH_RETRY_DEADLINE: Duration = Duration::from_secs(600);
/// Pauses between those attempts: 1 s, doubling up to 10 s, until the deadline.
const FINISH_BACKOFF: Backoff =
    Backoff::doubling(None, Duration::from_secs(1), Duration::from_secs(10));
/// The error recorded on a node whose introspection ran out of time.
pub const TIMEOUT_ERROR: &str = "Introspection timeout";

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
        let bmc: Vec<String> = bmc_address
            .filter(|b| !b.is_empty())
            .map(str::to_string)
            .into_iter()
            .collect();
        let lookup = (!bmc.is_empty()).then_some(Lookup {
            name: BMC_ATTRIBUTE,
            values: &bmc,
        });
        let (claim, started_at) = write("add_node", || async move {
            let started_at = now_unix();
            let claim = nodes::start(&self.db, uuid, started_at, lookup).await?;
            Ok((claim, started_at))
        })
        .await?;
        claimed(claim, uuid, BMC_ATTRIBUTE, &bmc)?;
        Ok(IntrospectionRecord {
            uuid: uuid.to_string(),
            started_at,
            finished_at: None,
            error: None,
        })
    }

    /// Adds a node's MACs to its lookup attributes (stored in [`Mac`]'s one form). See
    /// [`NodeCache::add_attribute`].
    pub async fn add_macs(&self, uuid: &str, macs: &[Mac]) -> Result<()> {
        let values: Vec<String> = macs.iter().map(Mac::to_string).collect();
        self.add_attribute(uuid, MACS_ATTRIBUTE, &values).await
    }

    /// Adds lookup attribute values for a node, stored as given (MACs go through
    /// [`NodeCache::add_macs`]). Values the node already has are kept once; if any value
    /// belongs to another node, nothing is added and the answer is a 400.
    pub async fn add_attribute(&self, uuid: &str, name: &str, values: &[String]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let mut wanted = values.to_vec();
        wanted.sort();
        wanted.dedup();
        let lookup = Lookup {
            name,
            values: &wanted,
        };
        let claim = write("add_attribute", || {
            nodes::add_attributes(&self.db, uuid, lookup)
        })
        .await?;
        claimed(claim, uuid, name, values)
    }

    /// The cached record of a node, finished or not; 404 when there is none.
    pub async fn get_node(&self, uuid: &str) -> Result<IntrospectionRecord> {
        match nodes::get(&self.db, uuid).await? {
            Some(node) => Ok(node),
            None => Err(Error::NotFound(format!(
                "Could not find node {uuid} in cache"
            ))),
        }
    }

    /// Finds the node the ramdisk is running on, by BMC address and MACs (the report's text,
    /// parsed as [`Mac`]s; messages quote it as sent): [`NodeCache::lookup`], then
    /// [`NodeCache::unfinished`]. Errors, with upstream's codes: no match is 404, several
    /// matching nodes are 404, a match without a node row is 404, a node that already
    /// finished is 400.
    pub async fn find_node(
        &self,
        bmc_address: Option<&str>,
        macs: &[String],
    ) -> Result<IntrospectionRecord> {
        let uuid = self.lookup(bmc_address, macs).await?;
        self.unfinished(&uuid).await
    }

    /// The first half of [`NodeCache::find_node`]: the one node holding the BMC address or
    /// any of the MACs, in one query, whatever its record says.
    ///
    /// # Errors
    /// [`Error::NoMatchingNode`] when none does, [`Error::NotFound`] when several do.
    pub async fn lookup(&self, bmc_address: Option<&str>, macs: &[String]) -> Result<String> {
        let bmc = bmc_address.filter(|b| !b.is_empty());
        // Only MACs are stored under "mac" (see `add_macs`): other text cannot match.
        let wanted: BTreeSet<String> = macs
            .iter()
            .filter_map(|m| m.parse::<Mac>().ok())
            .map(|mac| mac.to_string())
            .collect();
        let wanted: Vec<String> = wanted.into_iter().collect();
        let attrs = attributes_repr(bmc_address, macs);
        if bmc.is_none() && wanted.is_empty() {
            return Err(Error::NoMatchingNode(format!(
                "Could not find a node for attributes {attrs}"
            )));
        }
        // Upstream tries the attributes in name order (bmc_address, then mac) and unions the
        // results.
        let also = bmc.map(|bmc| (BMC_ATTRIBUTE, bmc));
        let found = nodes::holders(&self.db, also, MACS_ATTRIBUTE, &wanted).await?;
        let found: Vec<String> = found.into_iter().collect();
        match found.as_slice() {
            [] => Err(Error::NoMatchingNode(format!(
                "Could not find a node for attributes {attrs}"
            ))),
            [one] => Ok(one.clone()),
            many => Err(Error::NotFound(format!(
                "Multiple matching nodes found for attributes {attrs}: {}",
                py::repr_str_list(many)
            ))),
        }
    }

    /// The second half of [`NodeCache::find_node`]: the record of a node found by
    /// [`NodeCache::lookup`], which must be under introspection. Processing calls it under
    /// the node's lock, so the answer cannot change before the lock is released.
    ///
    /// # Errors
    /// [`Error::NotFound`] without a record, [`Error::BadRequest`] when it has finished.
    pub async fn unfinished(&self, uuid: &str) -> Result<IntrospectionRecord> {
        let node = match self.get_node(uuid).await {
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
    /// A stored value that is not a MAC (only another program could have written it) matches
    /// no port, so it is left out.
    pub async fn active_macs(&self) -> Result<HashSet<Mac>> {
        let values = nodes::attribute_values(&self.db, MACS_ATTRIBUTE).await?;
        Ok(values.iter().filter_map(|v| v.parse().ok()).collect())
    }

    /// Whether at least one node is under introspection now.
    pub async fn introspection_active(&self) -> Result<bool> {
        Ok(nodes::any_unfinished(&self.db).await?)
    }

    /// A node's lookup attributes: name to values (values sorted).
    pub async fn attributes(&self, uuid: &str) -> Result<BTreeMap<String, Vec<String>>> {
        Ok(nodes::attributes(&self.db, uuid).await?)
    }

    /// Stores one option of a node as JSON, replacing an earlier value of the same name.
    pub async fn set_option(&self, uuid: &str, name: &str, value: &Value) -> Result<()> {
        let encoded = value.to_string();
        write("set_option", || {
            nodes::set_option(&self.db, uuid, name, &encoded)
        })
        .await
    }

    /// A node's options, decoded from JSON. A NULL value reads as JSON `null`.
    pub async fn options(&self, uuid: &str) -> Result<BTreeMap<String, Value>> {
        let mut out = BTreeMap::new();
        for (name, text) in nodes::options(&self.db, uuid).await? {
            let value = match text {
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
    /// lookup attributes and options, in one transaction. Returns the finish time. The
    /// stored introspection data ([`NodeCache::store_data`]) stays, so it can be read after
    /// the end; the node's MACs are blocked again.
    pub async fn finished(&self, uuid: &str, error: Option<&str>) -> Result<f64> {
        write("finished", || async move {
            let finished_at = now_unix();
            nodes::finish(&self.db, uuid, finished_at, error, DATA_OPTION).await?;
            Ok(finished_at)
        })
        .await
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
        let mut retries = FINISH_BACKOFF.start();
        loop {
            let err = match self.finished(uuid, error).await {
                Err(err) if err.is_temporary() => err,
                outcome => return outcome,
            };
            let left = give_up.saturating_duration_since(Instant::now());
            let Some(pause) = retries.next_pause().filter(|_| !left.is_zero()) else {
                return Err(err);
            };
            tracing::warn!(
                node.uuid = %uuid,
                error = %err,
                "cannot record the end of introspection, trying again in {} s",
                pause.min(left).as_secs_f32()
            );
            tokio::time::sleep(pause.min(left)).await;
        }
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
        write("delete_node", || nodes::delete(&self.db, uuid)).await
    }

    /// The UUIDs of every cached node.
    pub async fn node_uuids(&self) -> Result<HashSet<String>> {
        Ok(nodes::uuids(&self.db).await?)
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
        let purge_before = now - keep_time as f64;
        let time_out = (timeout > 0).then_some(TimeOut {
            started_before: now - timeout as f64,
            finished_at: now,
            error: TIMEOUT_ERROR,
        });
        let timed_out = write("clean_up", || {
            nodes::clean_up(&self.db, purge_before, time_out)
        })
        .await?;
        if !timed_out.is_empty() {
            tracing::error!(nodes = ?timed_out, "introspection timed out");
        }
        Ok(timed_out)
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
}

/// Runs `attempt`, one write transaction of [`crate::db::nodes`], again when it lost a race
/// ([`retry_conflicts`]). Besides deadlocks and lock waits, a duplicate key or a broken
/// reference is a lost race here: the node locks are per process, so on PostgreSQL and
/// MySQL another daemon on the same database may have written the same node's rows since
/// this transaction looked (both found no row and both inserted one, or one deleted a node
/// the other was adding attributes to). The transaction then runs again and sees the
/// other's work; should it keep losing, the answer is "busy". (SQLite has one writer at a
/// time.)
async fn write<T, F, Fut>(what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    retry_conflicts(what, lost_race, || {
        let run = attempt();
        async move { run.await.map_err(write_error) }
    })
    .await
}

/// Converts the failure of a node-cache write transaction (see [`write`]).
fn write_error(err: DbError) -> Error {
    if err.is_unique_violation() || err.is_foreign_key_violation() {
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

/// The answer to lookup attribute values another node holds: a 400 naming them as given.
fn claimed(claim: Claim, uuid: &str, name: &str, values: &[String]) -> Result<()> {
    match claim {
        Claim::Stored => Ok(()),
        Claim::Taken => {
            tracing::debug!(node.uuid = %uuid, attribute = %name, "lookup attribute held by another node");
            Err(Error::BadRequest(format!(
                "Some or all of {name}'s {} are already on introspection",
                py::repr_str_list(values)
            )))
        }
    }
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
    use crate::db::nodes::stray;
    use serde_json::json;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    const U1: &str = "0b5ae9c4-4f2b-4dd7-9d4f-2c6c0e0f9d01";
    const U2: &str = "1c6bf0d5-5a3c-4ee8-8e5a-3d7d1f1a0e02";

    /// A migrated SQLite file in a temp dir (the dir must outlive the cache).
    async fn cache() -> (NodeCache, tempfile::TempDir) {
        let (db, dir) = crate::testing::migrated_sqlite().await;
        (NodeCache::new(db), dir)
    }

    /// [`cache`] holding node U1, with `bmc` as its BMC address.
    async fn cache_with_u1(bmc: Option<&str>) -> (NodeCache, tempfile::TempDir) {
        let (cache, dir) = cache().await;
        cache.add_node(U1, bmc).await.unwrap();
        (cache, dir)
    }

    /// The message of the error that looking up `bmc` and `mac_list` gives, once `kind` has
    /// accepted the error.
    async fn lookup_error(
        cache: &NodeCache,
        bmc: Option<&str>,
        mac_list: &[&str],
        kind: fn(&Error) -> bool,
    ) -> String {
        let err = cache.find_node(bmc, &macs(mac_list)).await.unwrap_err();
        assert!(kind(&err), "{err:?}");
        err.to_string()
    }

    fn no_match(err: &Error) -> bool {
        matches!(err, Error::NoMatchingNode(_))
    }

    fn not_found(err: &Error) -> bool {
        matches!(err, Error::NotFound(_))
    }

    fn macs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn parsed(list: &[&str]) -> Vec<Mac> {
        list.iter().map(|s| s.parse().unwrap()).collect()
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
        let (cache, _dir) = cache_with_u1(Some("1.2.3.4")).await;
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
    async fn stored_data_survives_finishing_but_not_a_new_start() {
        let (cache, _dir) = cache_with_u1(Some("1.2.3.4")).await;
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
        let (cache, _dir) = cache_with_u1(Some("1.2.3.4")).await;
        let both = parsed(&["11:22:33:44:55:66", "AA:BB:CC:DD:EE:FF"]);
        cache.add_macs(U1, &both).await.unwrap();
        cache.add_macs(U1, &both).await.unwrap();
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
    async fn macs_are_lowercased_on_write_and_lookup() {
        let (cache, _dir) = cache_with_u1(None).await;
        cache
            .add_macs(U1, &parsed(&["AA:BB:CC:DD:EE:FF"]))
            .await
            .unwrap();
        let stored = cache.attributes(U1).await.unwrap();
        assert_eq!(stored["mac"], ["aa:bb:cc:dd:ee:ff"]);
        assert_eq!(
            cache.active_macs().await.unwrap(),
            parsed(&["aa:bb:cc:dd:ee:ff"])
                .into_iter()
                .collect::<HashSet<Mac>>()
        );
        let found = cache
            .find_node(None, &macs(&["Aa:bB:cc:DD:ee:ff"]))
            .await
            .unwrap();
        assert_eq!(found.uuid, U1);
    }

    #[tokio::test]
    async fn find_node_without_match_is_404_naming_the_attributes() {
        let (cache, _dir) = cache_with_u1(Some("1.2.3.4")).await;
        assert_eq!(
            lookup_error(&cache, Some("9.9.9.9"), &["aa:aa:aa:aa:aa:aa"], no_match).await,
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
        let (cache, _dir) = cache_with_u1(Some("1.2.3.4")).await;
        // With string concatenation (upstream) this matched every row.
        assert_eq!(
            lookup_error(&cache, Some("x\" OR \"1\"=\"1"), &["' OR '1'='1"], no_match).await,
            r#"Could not find a node for attributes {'bmc_address': 'x" OR "1"="1', 'mac': ["' OR '1'='1"]}"#
        );
    }

    #[tokio::test]
    async fn find_node_with_several_matches_is_404() {
        let (cache, _dir) = cache_with_u1(Some("1.2.3.4")).await;
        cache.add_node(U2, None).await.unwrap();
        cache
            .add_attribute(U2, "mac", &macs(&["11:22:33:44:55:66"]))
            .await
            .unwrap();
        assert_eq!(
            lookup_error(&cache, Some("1.2.3.4"), &["11:22:33:44:55:66"], not_found).await,
            format!(
                "Multiple matching nodes found for attributes {{'bmc_address': '1.2.3.4', \
                 'mac': ['11:22:33:44:55:66']}}: ['{U1}', '{U2}']"
            )
        );
    }

    #[tokio::test]
    async fn find_node_with_attribute_but_no_node_row_is_404() {
        let (cache, _dir) = cache().await;
        // Only reachable through a database written without foreign keys (upstream SQLite).
        stray::attribute_without_node(cache.db(), "mac", "aa:aa:aa:aa:aa:aa", U2).await;
        assert_eq!(
            lookup_error(&cache, None, &["AA:aa:aa:aa:aa:aa"], not_found).await,
            format!(
                "Could not find node {U2} in introspection cache, probably it's not on \
                 introspection now"
            )
        );
    }

    #[tokio::test]
    async fn options_decode_json_and_null() {
        // The round trip of values is in the contract (tests/db/contract.rs).
        let (cache, _dir) = cache_with_u1(None).await;
        cache.set_option(U1, "list", &json!([1])).await.unwrap();
        // A NULL column (written by someone else) reads as JSON null.
        stray::null_option(cache.db(), U1, "raw").await;
        let options = cache.options(U1).await.unwrap();
        assert_eq!(options["raw"], Value::Null);
        assert_eq!(options["list"], json!([1]));
        assert!(cache.options(U2).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn finished_retrying_records_at_once_when_it_can() {
        let (cache, _dir) = cache_with_u1(None).await;
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
        let (cache, _dir) = cache_with_u1(None).await;
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
                let stored_macs: Vec<Mac> = stored.iter().map(|m| m.parse().unwrap()).collect();
                cache.add_macs(U1, &stored_macs).await.unwrap();
                let lower: HashSet<String> = stored.iter().map(|m| m.to_lowercase()).collect();
                prop_assert_eq!(cache.active_macs().await.unwrap(), stored_macs.iter().copied().collect::<HashSet<Mac>>());
                let reported = flip_case(&stored[pick.index(stored.len())], &flips);
                let found = cache.find_node(None, &[reported]).await.unwrap();
                prop_assert_eq!(found.uuid, U1);
                let unknown: Vec<String> = strangers
                    .into_iter()
                    .filter(|s| !lower.contains(&s.to_lowercase()))
                    .collect();
                if !unknown.is_empty() {
                    let err = cache.find_node(None, &unknown).await.unwrap_err();
                    prop_assert!(matches!(err, Error::NoMatchingNode(_)), "{err:?}");
                }
                Ok(())
            })?;
        }
    }
}
