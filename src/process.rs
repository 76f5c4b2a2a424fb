//! Processing the ramdisk's report: `POST /v1/continue`.
//!
//! Ports upstream `process.py`. In order: every hook's `before_processing` (failures are
//! collected, not fatal yet), lookup of the node by BMC address and MACs, the failures
//! reported against the node found, a fresh read of the node from Ironic, the provision-state
//! check, ports for the MACs, every hook's `before_update`, storage of the data, the
//! introspection rules; then the answer, and in the background the power-off (or the
//! finishing of new IPMI credentials), the node marked finished and a firewall refresh.
//! Work on one node is serialised by its lock, so a repeated post cannot create ports twice.
//!
//! # The firewall
//! 2.2 refreshed the DHCP filter in the middle of processing, from a listing of every port
//! Ironic has: a report's cost grew with the data centre (1.5 s at 10,000 ports) and a
//! failing iptables made the ramdisk post again. Nothing in the report needs it: the node's
//! MACs were let through at the start and stay so while it is under introspection, and
//! what must change after a report is that they are blocked again once the node is
//! finished (2.2 left that to the periodic refresh). So a report's path never touches the
//! firewall; once a node is finished (processed, or failed by its report), a refresh is
//! requested in the background ([`introspect::refresh_firewall_in_background`]). Refreshes
//! are coalesced: however many nodes finish during one refresh, one more runs after it, so
//! at most one port listing is under way and the Ironic work of the firewall per second is
//! bounded whatever the rate of reports. A refresh that fails is logged, and the periodic
//! refresh tries again.
//!
//! # A machine no node matches
//! When `[processing] node_not_found_hook` is set, a report that matches no node under
//! introspection goes to that hook (the `enroll` hook creates the node in Ironic, or names
//! the Ironic node the machine already is). Those reports take one lock in turn
//! (`AppState::discovery`): each looks the node up again, runs the hook, and starts an
//! introspection record for the node named, with the report's BMC address and MACs as
//! lookup attributes, unless the node has one under way. A second report of the same
//! machine, even one posted at the same moment, so finds the first one's record and is
//! processed (or refused as finished) as that node: one machine makes one node.
//!
//! # A daemon stopped mid-way
//! Every step before the answer can be done again: a report whose processing was cut short
//! (the daemon killed, Ironic gone) leaves the node waiting, and the ramdisk, which got no
//! answer, posts it again; ports that exist are skipped and the same properties are set
//! again. The steps after the answer cannot count on that: the ramdisk has its answer and
//! will not post again. So, before answering, the node gets the [`FINISHING_OPTION`] marker
//! (in the same options table as its other options, dropped when it is marked finished), and
//! a daemon that starts finishes every waiting node that carries it ([`resume_finishing`]):
//! the power-off is asked again (Ironic accepts powering off a node that is off), then the
//! node is marked finished.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tracing::Instrument;

use crate::data::IntrospectionData;
use crate::error::{Error, Result};
use crate::introspect::{self, MANAGE_BOOT_OPTION, NEW_IPMI_CREDENTIALS_OPTION};
use crate::ironic::{IronicError, PowerTarget};
use crate::ironic_node::IronicNode;
use crate::mac::Mac;
use crate::node_cache::{FINISH_RETRY_DEADLINE, NodeLock};
use crate::state::AppState;
use crate::storage;

/// Attempts to reach the BMC with new IPMI credentials before giving up.
pub const CREDENTIALS_WAIT_RETRIES: u32 = 10;
/// Pause between those attempts.
pub const CREDENTIALS_WAIT_PERIOD: Duration = Duration::from_secs(3);
/// Node option set when a report was processed and only the finishing is left (see the
/// module doc); its value is `{"ipmi_address": <the BMC address the ramdisk reported>}`,
/// which setting new IPMI credentials may need.
pub const FINISHING_OPTION: &str = "finishing";

/// Processes one report of the ramdisk and returns the answer for it.
pub async fn process(state: &AppState, payload: Map<String, Value>) -> Result<Value> {
    let mut data = IntrospectionData::from_payload(
        payload,
        state.config.processing.disk_partitioning_spacing,
    )?;

    let mut failures = Vec::new();
    for hook in &state.hooks.processing {
        if let Err(err) = hook.before_processing(&mut data).await {
            tracing::error!(hook.name = hook.name(), error = %err, "pre-processing hook failed; reporting after the lookup");
            failures.push(match err {
                // The detail stays in the log above: it may name internals.
                Error::Internal { kind, .. } => format!(
                    "Unexpected exception {kind} during preprocessing in hook {}",
                    hook.name()
                ),
                known => format!("Preprocessing hook {}: {known}", hook.name()),
            });
        }
    }

    let Some(uuid) = find_node(state, &mut data, &mut failures).await? else {
        return Err(Error::BadRequest(format!(
            "The following failures happened during running pre-processing hooks for unknown \
             node:\n{}",
            failures.join("\n")
        )));
    };
    tracing::Span::current().record("node.uuid", uuid.as_str());

    let lock = state.node_cache.lock(&uuid).await;
    // The record is read under the lock (once per report): another post for this node may
    // have finished it while this one waited.
    match state.node_cache.unfinished(&uuid).await {
        Ok(_) => {}
        Err(err) if err.is_temporary() => return Err(err),
        Err(err) => {
            failures.push(lookup_error(state, &err));
            return Err(Error::BadRequest(format!(
                "The following failures happened during running pre-processing hooks for \
                 unknown node:\n{}",
                failures.join("\n")
            )));
        }
    }

    if !failures.is_empty() {
        // The node's error is the failures themselves (2.2.4 on), so the status and
        // Ironic's `last_error` say why, not only that pre-processing failed.
        finish(state, &uuid, Some(&failures.join("\n"))).await;
        return Err(Error::BadRequest(format!(
            "The following failures happened during running pre-processing hooks for node \
             {uuid}:\n{}",
            failures.join("\n")
        )));
    }

    let mut node = match IronicNode::load(state.ironic.clone(), &uuid).await {
        Ok(node) => node,
        Err(IronicError::NotFound(_)) => {
            let message =
                format!("Node UUID {uuid} was found in cache, but is not found in Ironic");
            finish(state, &uuid, Some(&message)).await;
            return Err(Error::NotFound(message));
        }
        // Ironic being away or failing is no reason to lose the report: the ramdisk retries
        // on 503.
        Err(err) if err.is_ironic_failure() => return Err(err.into()),
        Err(err) => {
            let message = err.to_string();
            finish(state, &uuid, Some(&message)).await;
            return Err(Error::BadRequest(message));
        }
    };

    match process_node(state, &mut node, &mut data).await {
        Ok(work) => {
            let mut answer = json!({"uuid": uuid});
            if let Some((user, password)) = &work.credentials {
                answer["ipmi_setup_credentials"] = json!(true);
                answer["ipmi_username"] = json!(user);
                answer["ipmi_password"] = json!(password);
            }
            // The lock goes with the finisher: a second post for this node waits until the
            // node is finished, then is refused, instead of processing it again.
            spawn_finisher(state, node, work, lock);
            Ok(answer)
        }
        Err(err) if err.is_temporary() => Err(err),
        Err(err) => {
            let message = match &err {
                Error::Internal { .. } => {
                    tracing::error!(error = %err, "unexpected failure while processing");
                    "Unexpected exception during processing".to_string()
                }
                known => known.to_string(),
            };
            finish(state, &uuid, Some(&message)).await;
            Err(match err {
                Error::NotFound(_) => Error::NotFound(message),
                _ => Error::BadRequest(message),
            })
        }
    }
}

/// Looks the node up by the data's BMC address and MACs; a failure is added to `failures`.
/// A database that cannot answer now is an error of its own (503, the ramdisk posts
/// again), not a failed lookup. Its record is checked by the caller, under the node's lock.
async fn find_node(
    state: &AppState,
    data: &mut IntrospectionData,
    failures: &mut Vec<String>,
) -> Result<Option<String>> {
    let macs = data.macs();
    let found = match state.node_cache.lookup(data.ipmi_address(), &macs).await {
        Ok(uuid) => Some(uuid),
        Err(err) if err.is_temporary() => return Err(err),
        Err(Error::NoMatchingNode(message)) => {
            let Some(hook) = &state.hooks.node_not_found else {
                failures.push(format!("Look up error: {message}"));
                return Ok(None);
            };
            not_found(state, hook.as_ref(), data, failures).await?
        }
        Err(err) => {
            failures.push(lookup_error(state, &err));
            None
        }
    };
    Ok(found)
}

/// The not-found path: asks the node-not-found hook, and starts an introspection record
/// for the node it names unless one is under way, with the report's BMC address and MACs
/// as lookup attributes. All of it under `state.discovery`, after looking the node up
/// again: a second report of the same machine that waited here finds the record the first
/// one started, instead of running the hook again (which would enroll the machine twice).
async fn not_found(
    state: &AppState,
    hook: &dyn crate::hooks::NodeNotFoundHook,
    data: &mut IntrospectionData,
    failures: &mut Vec<String>,
) -> Result<Option<String>> {
    let _discovery = state.discovery.lock().await;
    let macs = data.macs();
    let bmc = data.ipmi_address().map(str::to_string);
    match state.node_cache.lookup(bmc.as_deref(), &macs).await {
        Ok(uuid) => return Ok(Some(uuid)),
        Err(Error::NoMatchingNode(_)) => {}
        Err(err) if err.is_temporary() => return Err(err),
        Err(err) => {
            failures.push(lookup_error(state, &err));
            return Ok(None);
        }
    }
    let uuid = match hook.run(data).await {
        Ok(Some(uuid)) => uuid,
        Ok(None) => {
            failures.push("Node not found hook returned nothing".to_string());
            return Ok(None);
        }
        // Ironic or the database being away: the ramdisk posts again.
        Err(err) if err.is_temporary() => return Err(err),
        Err(err) => {
            failures.push(format!("Node not found hook failed: {err}"));
            return Ok(None);
        }
    };
    // Taken so that a finisher still powering off the node's last run ends first.
    let _lock = state.node_cache.lock(&uuid).await;
    match state.node_cache.get_node(&uuid).await {
        Ok(record) if record.finished_at.is_none() => return Ok(Some(uuid)),
        Ok(_) | Err(Error::NotFound(_)) => {}
        Err(err) => return Err(err),
    }
    let valid_macs: Vec<Mac> = macs.iter().filter_map(|m| m.parse().ok()).collect();
    if let Err(err) = state.node_cache.add_node(&uuid, bmc.as_deref()).await {
        // Nothing was written.
        if err.is_temporary() {
            return Err(err);
        }
        failures.push(format!(
            "Node not found hook: cannot start node {uuid}: {err}"
        ));
        return Ok(None);
    }
    if let Err(err) = state.node_cache.add_macs(&uuid, &valid_macs).await {
        // The record stands, found by its BMC address when the ramdisk posts again.
        if err.is_temporary() {
            return Err(err);
        }
        let message = format!("Node not found hook: cannot start node {uuid}: {err}");
        finish(state, &uuid, Some(&message)).await;
        failures.push(message);
        return Ok(None);
    }
    tracing::info!(node.uuid = %uuid, hook.name = hook.name(), "introspection record started for the node the node-not-found hook named");
    Ok(Some(uuid))
}

/// A failed lookup as the ramdisk is told it. What went wrong inside (SQL text, say) is
/// logged, not told.
fn lookup_error(state: &AppState, err: &Error) -> String {
    tracing::error!(error = %err, "looking the node up failed");
    let shown = err.client_message(state.config.default.debug);
    format!("Look up error: {shown}")
}

/// What the background finisher must do once the answer is out.
struct Finish {
    /// New IPMI credentials to hand to the driver, when they were requested.
    credentials: Option<(String, String)>,
    /// False when Ironic boots the ramdisk itself: then the node is not powered off.
    manage_boot: bool,
    /// The BMC address the ramdisk reported (written to the node with new credentials when
    /// the node has none).
    ipmi_address: Option<String>,
}

impl Finish {
    /// The finishing a node's options call for.
    fn from_options(options: &BTreeMap<String, Value>, ipmi_address: Option<String>) -> Finish {
        let credentials = match options.get(NEW_IPMI_CREDENTIALS_OPTION) {
            Some(Value::Array(pair)) => match pair.as_slice() {
                [Value::String(user), Value::String(password)] => {
                    Some((user.clone(), password.clone()))
                }
                _ => None,
            },
            _ => None,
        };
        Finish {
            credentials,
            manage_boot: options.get(MANAGE_BOOT_OPTION) != Some(&Value::Bool(false)),
            ipmi_address,
        }
    }
}

/// The part after the node is known.
async fn process_node(
    state: &AppState,
    node: &mut IronicNode,
    data: &mut IntrospectionData,
) -> Result<Finish> {
    introspect::check_provision_state(node.node(), false)?;
    node.create_ports(&data.macs()).await?;
    for hook in &state.hooks.processing {
        hook.before_update(data, node).await?;
    }
    storage::store(state, node, data).await?;
    crate::rules::apply(&state.db, node, data).await?;

    let options = state.node_cache.options(&node.uuid).await?;
    let ipmi_address = data.ipmi_address().map(str::to_string);
    // Last, so that the marker means "everything up to the answer is done".
    state
        .node_cache
        .set_option(
            &node.uuid,
            FINISHING_OPTION,
            &json!({"ipmi_address": ipmi_address}),
        )
        .await?;
    Ok(Finish::from_options(&options, ipmi_address))
}

/// Powers the node off (after setting new IPMI credentials, when requested) and marks it
/// finished, in the background: the ramdisk has its answer already.
fn spawn_finisher(state: &AppState, node: IronicNode, work: Finish, lock: NodeLock) {
    let span = tracing::info_span!("node", node.uuid = %node.uuid);
    let task_state = state.clone();
    state.tasks.spawn(
        async move {
            let _lock = lock;
            let uuid = node.uuid.clone();
            complete(&task_state, &uuid, work, Some(node)).await;
        }
        .instrument(span),
    );
}

/// The finishing itself; `node` is read from Ironic when new credentials need it and it is
/// not given.
async fn complete(state: &AppState, uuid: &str, work: Finish, node: Option<IronicNode>) {
    let outcome = match work.credentials {
        Some((user, password)) => {
            let node = match node {
                Some(node) => Ok(node),
                None => IronicNode::load(state.ironic.clone(), uuid)
                    .await
                    .map_err(|err| format!("Cannot get node {uuid}: {err}")),
            };
            match node {
                Ok(node) => {
                    finish_setting_credentials(
                        state,
                        node,
                        work.ipmi_address.as_deref(),
                        (&user, &password),
                        work.manage_boot,
                    )
                    .await
                }
                Err(message) => Err(message),
            }
        }
        None if work.manage_boot => power_off(state, uuid).await,
        // Ironic boots the ramdisk itself and decides what happens to the power.
        None => Ok(()),
    };
    let error = outcome.err();
    if let Some(error) = &error {
        tracing::error!(error, "introspection failed");
    }
    // The node has been dealt with (powered off) already: its end must be recorded, so a
    // database that is away is waited for.
    match state
        .node_cache
        .finished_retrying(uuid, error.as_deref(), FINISH_RETRY_DEADLINE)
        .await
    {
        Ok(_) if error.is_none() => tracing::info!("introspection finished"),
        Ok(_) => {}
        Err(err) => tracing::error!(
            error = %err,
            "gave up recording the end of introspection: the node stays waiting until its \
             report is posted again, the daemon restarts, or [DEFAULT] timeout ends it"
        ),
    }
    introspect::refresh_firewall_in_background(state);
}

/// Finishes every node whose report was processed but which was never marked finished,
/// because the daemon stopped in between (see the module doc). Run once when the daemon
/// starts, before the ramdisks' next posts matter; nodes are taken one at a time, each
/// under its lock. Returns the nodes finished this way.
pub async fn resume_finishing(state: &AppState) -> Result<Vec<String>> {
    let mut uuids: Vec<String> = state.node_cache.node_uuids().await?.into_iter().collect();
    uuids.sort();
    let mut resumed = Vec::new();
    for uuid in uuids {
        let _lock = state.node_cache.lock(&uuid).await;
        match state.node_cache.get_node(&uuid).await {
            Ok(cached) if cached.finished_at.is_none() => {}
            Ok(_) | Err(Error::NotFound(_)) => continue,
            Err(err) => return Err(err),
        }
        let options = state.node_cache.options(&uuid).await?;
        let Some(marker) = options.get(FINISHING_OPTION) else {
            continue;
        };
        let ipmi_address = marker
            .get("ipmi_address")
            .and_then(Value::as_str)
            .map(str::to_string);
        let work = Finish::from_options(&options, ipmi_address);
        let span = tracing::info_span!("node", node.uuid = %uuid);
        async {
            tracing::warn!(
                "the report of this node was processed before the daemon stopped; finishing it"
            );
            complete(state, &uuid, work, None).await;
        }
        .instrument(span)
        .await;
        resumed.push(uuid);
    }
    Ok(resumed)
}

async fn power_off(state: &AppState, uuid: &str) -> std::result::Result<(), String> {
    state
        .ironic
        .set_power_state(uuid, PowerTarget::Off)
        .await
        .map_err(|err| {
            format!(
                "Failed to power off node {uuid}, check it's power management configuration: {err}"
            )
        })
}

/// Gives the node's driver the new IPMI credentials the ramdisk set on the BMC, waits until
/// the BMC answers with them, then powers the node off.
async fn finish_setting_credentials(
    state: &AppState,
    mut node: IronicNode,
    reported_bmc: Option<&str>,
    (user, password): (&str, &str),
    manage_boot: bool,
) -> std::result::Result<(), String> {
    let uuid = node.uuid.clone();
    let mut patch = vec![
        json!({"op": "add", "path": "/driver_info/ipmi_username", "value": user}),
        json!({"op": "add", "path": "/driver_info/ipmi_password", "value": password}),
    ];
    let known_bmc =
        introspect::ipmi_address(node.node(), &state.config.default.ipmi_address_fields)
            .await
            .ok()
            .flatten();
    if known_bmc.is_none()
        && let Some(address) = reported_bmc
    {
        patch.push(json!({"op": "add", "path": "/driver_info/ipmi_address", "value": address}));
    }
    node.patch(&patch).await.map_err(|e| e.to_string())?;
    for attempt in 1..=CREDENTIALS_WAIT_RETRIES {
        // Reading the boot device needs working credentials; its value does not matter.
        match state.ironic.get_boot_device(&uuid).await {
            Ok(_) if manage_boot => return power_off(state, &uuid).await,
            Ok(_) => return Ok(()),
            Err(err) => {
                tracing::info!(attempt, error = %err, "waiting for the new IPMI credentials to work");
                tokio::time::sleep(CREDENTIALS_WAIT_PERIOD).await;
            }
        }
    }
    Err(format!(
        "Failed to validate updated IPMI credentials for node {uuid}, node might require maintenance"
    ))
}

/// Marks the node finished (with an error, or not); a failure to record it is logged.
async fn finish(state: &AppState, uuid: &str, error: Option<&str>) {
    if let Some(error) = error {
        tracing::error!(error, "introspection failed");
    }
    if let Err(err) = state.node_cache.finished(uuid, error).await {
        tracing::error!(error = %err, "cannot record the end of introspection");
    }
    introspect::refresh_firewall_in_background(state);
}
