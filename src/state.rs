//! The shared state every request handler and workflow receives.
//!
//! Built once by [`crate::app`]; cheap to clone (every field is a handle). Upstream kept these
//! as module globals (`CONF`, the DB facade, the green pool); we pass them in.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, Semaphore};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::Config;
use crate::db::Db;
use crate::firewall::{Firewall, Refresh};
use crate::hooks::Hooks;
use crate::ironic::IronicClient;
use crate::node_cache::NodeCache;
use crate::swift::SwiftClient;

/// Handles to everything the daemon shares between requests.
#[derive(Clone)]
pub struct AppState {
    /// The configuration read at start-up.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// Nodes under introspection.
    pub node_cache: NodeCache,
    /// Who may call protected endpoints.
    pub auth: Arc<dyn Auth>,
    /// Ironic, with the service credentials (one pooled client for the whole daemon).
    pub ironic: IronicClient,
    /// The processing hooks, loaded at start-up in `[processing] processing_hooks` order.
    pub hooks: Arc<Hooks>,
    /// Swift, when `store_data = swift` or a hook stores objects.
    pub swift: Option<SwiftClient>,
    /// The DHCP filter.
    pub firewall: Arc<dyn Firewall>,
    /// Serialises, coalesces and skips unchanged firewall refreshes (Ironic's ports,
    /// active MACs, apply): see [`crate::introspect::refresh_firewall`].
    pub firewall_refresh: Arc<Refresh>,
    /// Bounds background introspection work (`[DEFAULT] max_concurrency`).
    pub background_slots: Arc<Semaphore>,
    /// When the last reboot of a node with a paced driver was requested
    /// (`introspection_delay_drivers`); the lock also serialises those reboots.
    pub last_paced_reboot: Arc<Mutex<Option<Instant>>>,
    /// Serialises the not-found path of processing (the lookup again, the node-not-found
    /// hook, the start of the node's record), so one machine reporting twice at once makes
    /// one node: see [`crate::process`].
    pub discovery: Arc<Mutex<()>>,
    /// Background work started by requests; waited for at shutdown.
    pub tasks: TaskTracker,
    /// Cancelled when the daemon stops.
    pub shutdown: CancellationToken,
}
