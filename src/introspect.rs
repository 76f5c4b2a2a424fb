//! Starting introspection: `POST /v1/introspection/<uuid>`.
//!
//! Ports upstream `introspect.py` (and the helpers of `utils.py` it used:
//! `check_provision_state`, `get_ipmi_address`). The synchronous part checks the node and
//! records it in the node cache, so its status exists before the 202 goes out; the rest
//! (ports as lookup attributes, firewall, PXE boot device, reboot) runs in the background and
//! records any failure as the node's error. The order of steps and the messages are
//! upstream's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::firewall::Filter;
use crate::ironic::{IronicClient, IronicError, Node, Port, PowerTarget, UNAVAILABLE_MESSAGE};
use crate::mac::Mac;
use crate::node_cache::{BMC_ATTRIBUTE, FINISH_RETRY_DEADLINE, MACS_ATTRIBUTE};
use crate::state::AppState;

/// Provision states a node may be in for introspection and processing: 2.2's list, plus
/// `inspect failed` (the spelling Ironic really uses for what 2.2 called `inspectfail`) and
/// `inspect wait` (where Ironic's own inspect interface leaves a node while it waits on us;
/// upstream added it after 2.2).
pub const VALID_STATES: &[&str] = &[
    "enroll",
    "manageable",
    "inspecting",
    "inspectfail",
    "inspect failed",
    "inspect wait",
];
/// Provision states a node may be in when new IPMI credentials are requested.
pub const SET_CREDENTIALS_VALID_STATES: &[&str] = &["enroll"];
/// Longest IPMI 2.0 password.
pub const PASSWORD_MAX_LENGTH: usize = 20;
/// Node option set to `false` when Ironic boots the ramdisk itself (`?manage_boot=false`):
/// we then neither set the boot device nor power the node on or off.
pub const MANAGE_BOOT_OPTION: &str = "manage_boot";
/// The error of an introspection an operator stopped.
pub const CANCELED_ERROR: &str = "Canceled by operator";
/// Node option holding the requested IPMI credentials (`[user, password]` or null).
pub const NEW_IPMI_CREDENTIALS_OPTION: &str = "new_ipmi_credentials";

/// New BMC credentials requested with `new_ipmi_username`/`new_ipmi_password`.
#[derive(Clone)]
pub struct NewIpmiCredentials {
    /// New user name; when absent the node's `driver_info[ipmi_username]` is kept.
    pub username: Option<String>,
    /// New password.
    pub password: SecretString,
}

impl std::fmt::Debug for NewIpmiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewIpmiCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Starts introspection of node `uuid` (canonical form). Returns once the node is recorded;
/// the background part is spawned on the daemon's task tracker.
pub async fn introspect(
    state: &AppState,
    uuid: &str,
    new_credentials: Option<NewIpmiCredentials>,
    manage_boot: bool,
    token: Option<&str>,
) -> Result<()> {
    let ironic = state.ironic.with_user_token(token);
    let node = ironic.get_node(uuid).await.map_err(|err| match err {
        IronicError::NotFound(_) => Error::NotFound(format!("Cannot find node {uuid}")),
        IronicError::Unavailable(msg) => {
            tracing::error!(node.uuid = %uuid, error = %msg, "cannot get the node from Ironic");
            Error::ServiceUnavailable(format!("Cannot get node {uuid}: {UNAVAILABLE_MESSAGE}"))
        }
        other if other.is_ironic_failure() => {
            Error::ServiceUnavailable(format!("Cannot get node {uuid}: {other}"))
        }
        other => Error::BadRequest(format!("Cannot get node {uuid}: {other}")),
    })?;

    check_provision_state(&node, new_credentials.is_some())?;

    let credentials = match new_credentials {
        Some(requested) => Some(validate_ipmi_credentials(
            state.config.processing.enable_setting_ipmi_credentials,
            &node,
            requested,
        )?),
        None => {
            let validation = ironic.validate_node(uuid).await?;
            if !validation.power.result {
                return Err(Error::BadRequest(format!(
                    "Failed validation of power interface for node {uuid}, reason: {}",
                    validation.power.reason.as_deref().unwrap_or("unknown")
                )));
            }
            None
        }
    };

    let bmc_address = ipmi_address(&node, &state.config.default.ipmi_address_fields).await?;

    {
        // Serialises this start with a running processing or another start of the node.
        let _lock = state.node_cache.lock(uuid).await;
        state
            .node_cache
            .add_node(uuid, bmc_address.as_deref())
            .await?;
        // add_node dropped the options of an earlier run, so without new credentials
        // there is nothing to write: a missing option reads as none (2.2 wrote a null).
        if let Some((user, password)) = &credentials {
            let option = json!([user, password.expose_secret()]);
            state
                .node_cache
                .set_option(uuid, NEW_IPMI_CREDENTIALS_OPTION, &option)
                .await?;
        }
        if !manage_boot {
            state
                .node_cache
                .set_option(uuid, MANAGE_BOOT_OPTION, &Value::Bool(false))
                .await?;
        }
    }

    let span = tracing::info_span!("node", node.uuid = %uuid, node.bmc_address = bmc_address.as_deref().unwrap_or(""));
    let task_state = state.clone();
    let uuid = uuid.to_string();
    let setting_credentials = credentials.is_some();
    state.tasks.spawn(
        async move {
            let Ok(_permit) = task_state.background_slots.clone().acquire_owned().await else {
                return;
            };
            let _lock = task_state.node_cache.lock(&uuid).await;
            // An abort (or a newer start that already ended) may have come first.
            match task_state.node_cache.get_node(&uuid).await {
                Ok(current) if current.finished_at.is_none() => {}
                Ok(_) | Err(Error::NotFound(_)) => return,
                Err(err) => {
                    // Nothing was done to the node yet; a new start will do it all.
                    tracing::error!(error = %err, "cannot read the node back, introspection not started");
                    return;
                }
            }
            let outcome = background_introspect(
                &task_state,
                &ironic,
                &node,
                bmc_address.as_deref(),
                setting_credentials,
                manage_boot,
            )
            .await;
            if let Err(err) = outcome {
                let message = match &err {
                    Error::Internal { .. } => {
                        tracing::error!(error = %err, "unexpected failure while starting introspection");
                        "Unexpected exception in background introspection thread".to_string()
                    }
                    known => {
                        tracing::error!(error = %known, "introspection could not start");
                        known.to_string()
                    }
                };
                if let Err(db_err) = task_state
                    .node_cache
                    .finished_retrying(&uuid, Some(&message), FINISH_RETRY_DEADLINE)
                    .await
                {
                    tracing::error!(error = %db_err, "cannot record the failure of the node");
                }
            }
        }
        .instrument(span),
    );
    Ok(())
}

/// The background part: lookup attributes, firewall, boot device, reboot.
async fn background_introspect(
    state: &AppState,
    ironic: &IronicClient,
    node: &Node,
    bmc_address: Option<&str>,
    setting_credentials: bool,
    manage_boot: bool,
) -> Result<()> {
    let uuid = node.uuid.as_str();
    // Ironic stores only MACs as port addresses, so none is left out here in practice.
    let macs: Vec<Mac> = ironic
        .node_ports(uuid)
        .await?
        .iter()
        .filter_map(Port::mac)
        .collect();
    if !macs.is_empty() {
        state.node_cache.add_macs(uuid, &macs).await?;
        tracing::info!(macs = ?macs, "whitelisting the node's MACs on the firewall");
    }
    // The node's MACs must pass; and without any, DHCP may still be closed for want of a
    // node under introspection.
    if !macs.is_empty() || !state.firewall_refresh.is_open() {
        refresh_firewall(state, ironic).await?;
    }

    // What add_node and add_macs stored, without reading it back.
    let mut attributes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    if let Some(bmc) = bmc_address.filter(|bmc| !bmc.is_empty()) {
        attributes.insert(BMC_ATTRIBUTE, vec![bmc.to_string()]);
    }
    if !macs.is_empty() {
        let mut values: Vec<String> = macs.iter().map(Mac::to_string).collect();
        values.sort();
        values.dedup();
        attributes.insert(MACS_ATTRIBUTE, values);
    }
    if state.config.processing.node_not_found_hook.is_none() && attributes.is_empty() {
        return Err(Error::BadRequest(format!(
            "No lookup attributes were found for node {uuid}, inspector won't be able to find it \
             after introspection. Consider creating ironic ports or providing an IPMI address."
        )));
    }
    tracing::info!(attributes = ?attributes, "the node will be looked up by these attributes");

    if setting_credentials {
        tracing::info!(
            timeout_s = state.config.default.timeout,
            "introspection environment is ready; the node must be powered on by hand within the timeout"
        );
        return Ok(());
    }
    if !manage_boot {
        tracing::info!(
            "Ironic boots the ramdisk itself (manage_boot = false): no boot device or power change"
        );
        return Ok(());
    }

    if let Err(err) = ironic.set_boot_device(uuid, "pxe", false).await {
        tracing::warn!(error = %err, "cannot set the boot device to PXE; rebooting anyway");
    }
    if state
        .config
        .default
        .introspection_delay_drivers
        .is_match(&node.driver)
    {
        pace_reboot(state).await;
    }
    ironic
        .set_power_state(uuid, PowerTarget::Reboot)
        .await
        .map_err(|err| {
            Error::BadRequest(format!(
                "Failed to power on node {uuid}, check it's power management configuration:\n{err}"
            ))
        })?;
    tracing::info!("introspection started");
    Ok(())
}

/// Keeps at least `introspection_delay` seconds between two reboots of nodes whose driver
/// matches `introspection_delay_drivers` (virtual BMCs like the SSH driver choke otherwise).
async fn pace_reboot(state: &AppState) {
    let delay =
        Duration::from_secs(u64::try_from(state.config.default.introspection_delay).unwrap_or(0));
    let mut last = state.last_paced_reboot.lock().await;
    if let Some(previous) = *last {
        let wait = (previous + delay).saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "waiting before the next reboot"
            );
            tokio::time::sleep(wait).await;
        }
    }
    *last = Some(Instant::now());
}

/// Recomputes and applies the DHCP filter ([`Filter`]): closed when no node is under
/// introspection and no `node_not_found_hook` is set; otherwise every MAC Ironic knows, less
/// those of nodes under introspection, is blocked. Does nothing (and asks Ironic nothing)
/// when the firewall is off; a filter equal to the one in force is not applied again.
///
/// The one entry point for every refresh (introspection start, abort, time-out, a node
/// finished by its report through [`refresh_firewall_in_background`], the periodic loop).
/// Refreshes run one at a time, and callers arriving during one share the next
/// (`state.firewall_refresh`): the whole refresh is coalesced, since a list read before a
/// running refresh ends may already be stale.
pub async fn refresh_firewall(state: &AppState, ironic: &IronicClient) -> Result<()> {
    if !state.firewall.is_enabled() {
        return Ok(());
    }
    let refresh = &state.firewall_refresh;
    refresh
        .run(|| async {
            let open = state.hooks.node_not_found.is_some()
                || state.node_cache.introspection_active().await?;
            let filter = if open {
                Filter::Open {
                    blocked: idle_macs(state, ironic).await?,
                }
            } else {
                Filter::Closed
            };
            refresh.apply(state.firewall.as_ref(), filter).await
        })
        .await
}

/// Asks for a [`refresh_firewall`] without waiting for it: on the daemon's task tracker,
/// sharing a run with every other request that arrives meanwhile, and given up when the
/// daemon stops. A failure is logged; the periodic refresh tries again. For the places
/// where nothing waits on the filter (a node finished: its MACs may be blocked again).
pub fn refresh_firewall_in_background(state: &AppState) {
    if !state.firewall.is_enabled() {
        return;
    }
    let task_state = state.clone();
    state.tasks.spawn(async move {
        tokio::select! {
            outcome = refresh_firewall(&task_state, &task_state.ironic) => {
                if let Err(err) = outcome {
                    tracing::warn!(error = %err, "cannot refresh the firewall after a node finished; the periodic refresh will try again");
                }
            }
            () = task_state.shutdown.cancelled() => {}
        }
    });
}

/// The MACs of Ironic's ports whose nodes are not under introspection.
async fn idle_macs(state: &AppState, ironic: &IronicClient) -> Result<BTreeSet<Mac>> {
    let ports = ironic.list_ports().await?;
    let active = state.node_cache.active_macs().await?;
    let mut blocked = BTreeSet::new();
    for port in &ports {
        match port.mac() {
            Some(mac) if active.contains(&mac) => {}
            Some(mac) => {
                blocked.insert(mac);
            }
            None => tracing::warn!(
                mac = %port.address,
                "not a MAC address; left out of the firewall"
            ),
        }
    }
    Ok(blocked)
}

/// Refuses nodes in a state introspection must not touch; nodes in maintenance are accepted
/// whatever their state, with a warning, as in 2.2.
pub fn check_provision_state(node: &Node, with_credentials: bool) -> Result<()> {
    if node.maintenance {
        tracing::warn!(
            node.uuid = %node.uuid,
            "introspecting a node in maintenance mode; this is deprecated"
        );
        return Ok(());
    }
    let state = node
        .provision_state
        .as_deref()
        .unwrap_or("None")
        .to_lowercase();
    if with_credentials {
        if !SET_CREDENTIALS_VALID_STATES.contains(&state.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid provision state \"{state}\" for setting IPMI credentials on node {}, \
                 valid states are {}",
                node.uuid,
                python_list(SET_CREDENTIALS_VALID_STATES)
            )));
        }
    } else if !VALID_STATES.contains(&state.as_str()) {
        return Err(Error::BadRequest(format!(
            "Invalid provision state \"{state}\" for introspection of node {}, valid states are \"{}\"",
            node.uuid,
            python_list(VALID_STATES)
        )));
    }
    Ok(())
}

/// Renders strings as a Python list literal, as upstream's messages show them.
pub fn python_list(items: &[impl AsRef<str>]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{}'", i.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

/// Checks requested IPMI credentials; returns the user name (falling back to the node's) and
/// the password.
pub fn validate_ipmi_credentials(
    enabled: bool,
    node: &Node,
    requested: NewIpmiCredentials,
) -> Result<(String, SecretString)> {
    if !enabled {
        return Err(Error::BadRequest(
            "IPMI credentials setup is disabled in configuration".to_string(),
        ));
    }
    let username = requested
        .username
        .filter(|u| !u.is_empty())
        .or_else(|| {
            node.driver_info
                .get("ipmi_username")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
        })
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "Setting IPMI credentials requested for node {}, but neither new user name nor \
                 driver_info[ipmi_username] are provided",
                node.uuid
            ))
        })?;
    let password = requested.password.expose_secret();
    let mut forbidden = String::new();
    for c in password.chars() {
        if !c.is_ascii_alphanumeric() && !forbidden.contains(c) {
            forbidden.push(c);
        }
    }
    if !forbidden.is_empty() {
        return Err(Error::BadRequest(format!(
            "Forbidden characters encountered in new IPMI password for node {}: \"{forbidden}\"; \
             use only letters and numbers",
            node.uuid
        )));
    }
    let length = password.chars().count();
    if length == 0 || length > PASSWORD_MAX_LENGTH {
        return Err(Error::BadRequest(format!(
            "IPMI password length should be > 0 and <= {PASSWORD_MAX_LENGTH}"
        )));
    }
    Ok((username, requested.password))
}

/// The node's BMC address as an IP: `driver_info[ipmi_address]`, else the first set field of
/// `ipmi_address_fields`, resolved (IPv4, as 2.2's `gethostbyname`) when it is a host name.
/// None when IPMI bridging is on (the address then says nothing about this node).
pub async fn ipmi_address(node: &Node, extra_fields: &[String]) -> Result<Option<String>> {
    let Some(value) = node.bmc_address_field(extra_fields) else {
        return Ok(None);
    };
    match crate::ironic_node::resolve_bmc_address(&value).await {
        Some(ip) => Ok(Some(ip)),
        None => Err(Error::BadRequest(format!(
            "Failed to resolve the hostname ({value}) for node {}",
            node.uuid
        ))),
    }
}

/// Stops a running introspection (`POST /v1/introspection/<uuid>/abort`, upstream 12.x):
/// the node is finished with [`CANCELED_ERROR`], its MACs leave the DHCP whitelist, and it is
/// powered off unless Ironic manages its boot. 404 for a node we do not know, 409 while the
/// node is busy (its lock is held); an introspection that already ended is left as it is.
pub async fn abort(state: &AppState, uuid: &str, token: Option<&str>) -> Result<()> {
    let cached = state.node_cache.get_node(uuid).await?;
    let Some(lock) = state.node_cache.try_lock(uuid) else {
        return Err(Error::Conflict(format!(
            "Node {uuid} is locked, please, retry later"
        )));
    };
    if cached.finished_at.is_some() {
        tracing::debug!(node.uuid = %uuid, "abort of a finished introspection: nothing to do");
        return Ok(());
    }
    let manage_boot = state
        .node_cache
        .options(uuid)
        .await?
        .get(MANAGE_BOOT_OPTION)
        != Some(&Value::Bool(false));
    state
        .node_cache
        .finished(uuid, Some(CANCELED_ERROR))
        .await?;
    tracing::info!(node.uuid = %uuid, "introspection canceled by operator");
    let ironic = state.ironic.with_user_token(token);
    let task_state = state.clone();
    let uuid = uuid.to_string();
    let span = tracing::info_span!("node", node.uuid = %uuid);
    state.tasks.spawn(
        async move {
            let _lock = lock;
            if let Err(err) = refresh_firewall(&task_state, &ironic).await {
                tracing::error!(error = %err, "cannot refresh the firewall after an abort");
            }
            if manage_boot && let Err(err) = ironic.set_power_state(&uuid, PowerTarget::Off).await {
                tracing::error!(error = %err, "cannot power off the aborted node");
            }
        }
        .instrument(span),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(value: Value) -> Node {
        let mut base = json!({
            "uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
            "driver": "fake-hardware",
            "provision_state": "manageable",
            "maintenance": false,
            "driver_info": {},
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), value.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    fn credentials(user: Option<&str>, password: &str) -> NewIpmiCredentials {
        NewIpmiCredentials {
            username: user.map(str::to_string),
            password: SecretString::from(password.to_string()),
        }
    }

    #[test]
    fn provision_states() {
        for state in [
            "inspect wait",
            "enroll",
            "manageable",
            "inspecting",
            "INSPECTFAIL",
            "inspect failed",
        ] {
            assert!(
                check_provision_state(&node(json!({"provision_state": state})), false).is_ok(),
                "{state}"
            );
        }
        let err =
            check_provision_state(&node(json!({"provision_state": "active"})), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid provision state \"active\" for introspection of node \
             1be26c0b-03f2-4d2e-ae87-c02d7f33c123, valid states are \"['enroll', 'manageable', \
             'inspecting', 'inspectfail', 'inspect failed', 'inspect wait']\""
        );
        assert!(check_provision_state(&node(json!({"provision_state": "enroll"})), true).is_ok());
        let err = check_provision_state(&node(json!({})), true).unwrap_err();
        assert!(
            err.to_string().ends_with("valid states are ['enroll']"),
            "{err}"
        );
        // Maintenance accepts any state, with or without credentials.
        let maintained = node(json!({"provision_state": "active", "maintenance": true}));
        assert!(check_provision_state(&maintained, false).is_ok());
        assert!(check_provision_state(&maintained, true).is_ok());
    }

    #[test]
    fn ipmi_credentials() {
        let n = node(json!({"driver_info": {"ipmi_username": "old"}}));
        let err = validate_ipmi_credentials(false, &n, credentials(Some("u"), "p")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "IPMI credentials setup is disabled in configuration"
        );
        let (user, _) = validate_ipmi_credentials(true, &n, credentials(None, "abc123")).unwrap();
        assert_eq!(user, "old");
        let (user, password) =
            validate_ipmi_credentials(true, &n, credentials(Some("new"), "abc123")).unwrap();
        assert_eq!((user.as_str(), password.expose_secret()), ("new", "abc123"));
        let err = validate_ipmi_credentials(true, &node(json!({})), credentials(Some(""), "x"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("neither new user name nor driver_info[ipmi_username]")
        );
        let err = validate_ipmi_credentials(true, &n, credentials(None, "a-b_c-é")).unwrap_err();
        assert!(
            err.to_string()
                .contains(": \"-_é\"; use only letters and numbers"),
            "{err}"
        );
        for bad in ["", "123456789012345678901"] {
            let err = validate_ipmi_credentials(true, &n, credentials(None, bad)).unwrap_err();
            assert_eq!(
                err.to_string(),
                "IPMI password length should be > 0 and <= 20"
            );
        }
        assert!(validate_ipmi_credentials(true, &n, credentials(None, &"a".repeat(20))).is_ok());
    }

    #[tokio::test]
    async fn bmc_address() {
        let fields = vec!["ilo_address".to_string(), "drac_host".to_string()];
        let n =
            node(json!({"driver_info": {"ipmi_address": "10.0.0.1", "ilo_address": "10.0.0.2"}}));
        assert_eq!(
            ipmi_address(&n, &fields).await.unwrap().as_deref(),
            Some("10.0.0.1")
        );
        let n = node(json!({"driver_info": {"ipmi_address": "", "drac_host": "10.0.0.3"}}));
        assert_eq!(
            ipmi_address(&n, &fields).await.unwrap().as_deref(),
            Some("10.0.0.3")
        );
        let n = node(json!({"driver_info": {"ipmi_address": "localhost"}}));
        assert_eq!(
            ipmi_address(&n, &fields).await.unwrap().as_deref(),
            Some("127.0.0.1")
        );
        let n =
            node(json!({"driver_info": {"ipmi_address": "10.0.0.1", "ipmi_bridging": "single"}}));
        assert_eq!(ipmi_address(&n, &fields).await.unwrap(), None);
        let n = node(json!({"driver_info": {"ipmi_address": "10.0.0.1", "ipmi_bridging": "no"}}));
        assert_eq!(
            ipmi_address(&n, &fields).await.unwrap().as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(ipmi_address(&node(json!({})), &fields).await.unwrap(), None);
        let n = node(json!({"driver_info": {"ipmi_address": "bmc.invalid"}}));
        assert_eq!(
            ipmi_address(&n, &fields).await.unwrap_err().to_string(),
            "Failed to resolve the hostname (bmc.invalid) for node \
             1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
        );
    }
}
