//! Processing hooks: the plugins that check and enrich the ramdisk's data around the node
//! lookup, and the hook asked when no node matches.
//!
//! Ports `ironic_inspector/plugins/base.py` (`ProcessingHook`, the stevedore managers) and
//! the `ironic_inspector.hooks.*` entry points of `setup.cfg`. Instead of entry points,
//! [`load`] maps each configured name to an implementation in one `match`; an unknown name
//! stops the daemon at start-up, as upstream's `init()` did for processing hooks (upstream
//! noticed an unknown node-not-found hook only at the first unknown node). Since a compiled
//! daemon cannot load Python plugins, an entry `exec:/absolute/path` runs an external
//! program instead ([`exec`], described for operators in `PLUGINS.md`); its path is checked
//! at start-up too.
//!
//! Error convention for the pipeline: a hook answers [`Error::BadRequest`](crate::Error::BadRequest) (or another
//! client error) for what upstream raised as `utils.Error`, whose message is shown to the
//! client (`Preprocessing hook <name>: <msg>`, or the processing error); it answers
//! [`Error::Internal`](crate::Error::Internal) for what upstream failed on with any other exception, which the
//! pipeline reports as `Unexpected exception <kind> during preprocessing in hook <name>` /
//! `Unexpected exception during processing`.

pub mod discovery;
pub mod example;
pub mod exec;
pub mod extra_hardware;
pub mod raid_device;
pub mod ramdisk_error;
pub mod root_disk_selection;
pub mod scheduler;
pub mod validate_interfaces;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::data::IntrospectionData;
use crate::error::Result;
use crate::ironic_node::IronicNode;

/// Names accepted in `[processing] processing_hooks`.
pub const PROCESSING_HOOK_NAMES: [&str; 8] = [
    "scheduler",
    "validate_interfaces",
    "ramdisk_error",
    "root_disk_selection",
    "example",
    "extra_hardware",
    "raid_device",
    "root_device_hint",
];

/// Names accepted in `[processing] node_not_found_hook`.
pub const NODE_NOT_FOUND_HOOK_NAMES: [&str; 2] = ["example", "enroll"];

/// A processing hook. Both steps default to doing nothing.
#[async_trait]
pub trait ProcessingHook: Send + Sync {
    /// The name it was enabled under, used in failure messages.
    fn name(&self) -> &str;

    /// Runs before the node lookup, on the data as the ramdisk sent it (after
    /// normalisation); may change it. A failure is reported after the lookup, together
    /// with the other hooks' failures.
    async fn before_processing(&self, _data: &mut IntrospectionData) -> Result<()> {
        Ok(())
    }

    /// Runs after the node was found and its ports created, before rules; may change the
    /// data and the node (through `node`'s patch methods).
    async fn before_update(
        &self,
        _data: &mut IntrospectionData,
        _node: &mut IronicNode,
    ) -> Result<()> {
        Ok(())
    }
}

/// The hook asked when no node under introspection matches the data.
#[async_trait]
pub trait NodeNotFoundHook: Send + Sync {
    /// Its configured name.
    fn name(&self) -> &str;

    /// The UUID of the node to process the data for, or `None` when it has none. It may
    /// change the data (e.g. mark it as coming from a machine enrolled just now).
    async fn run(&self, data: &mut IntrospectionData) -> Result<Option<String>>;
}

/// The enabled hooks, in run order.
#[derive(Clone, Default)]
pub struct Hooks {
    /// `[processing] processing_hooks`, in order.
    pub processing: Vec<Arc<dyn ProcessingHook>>,
    /// `[processing] node_not_found_hook`, when set.
    pub node_not_found: Option<Arc<dyn NodeNotFoundHook>>,
}

impl Hooks {
    /// The processing hooks' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.processing.iter().map(|hook| hook.name()).collect()
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("processing", &self.names())
            .field(
                "node_not_found",
                &self.node_not_found.as_ref().map(|hook| hook.name()),
            )
            .finish()
    }
}

/// The option `[processing] processing_hooks`, as named in start-up errors.
pub const PROCESSING_HOOKS_OPTION: &str = "[processing] processing_hooks";
/// The option `[processing] node_not_found_hook`, as named in start-up errors.
pub const NODE_NOT_FOUND_HOOK_OPTION: &str = "[processing] node_not_found_hook";

/// A configured hook that cannot be used. Fatal at start-up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// A name with no built-in implementation.
    #[error(
        "Hook {name} failed to load or was not found: {option} takes the built-in hooks {} \
         or an external program as exec:/absolute/path (see PLUGINS.md)",
        known.join(", ")
    )]
    Unknown {
        /// The name as configured.
        name: String,
        /// The option it was configured in.
        option: &'static str,
        /// The built-in names that option takes.
        known: &'static [&'static str],
    },
    /// An `exec:` entry whose program cannot be run.
    #[error("{option} = {entry}: {problem} (see PLUGINS.md)")]
    Exec {
        /// The option it was configured in.
        option: &'static str,
        /// The entry as configured.
        entry: String,
        /// What is wrong with the path.
        problem: String,
    },
}

/// Builds the hooks `[processing]` enables. `swift` is the client `extra_hardware` stores
/// through (`None` when Swift is not configured; the hook then fails each node it runs
/// for, as upstream's Swift client did without credentials).
///
/// A name listed twice runs once, at its first place.
pub fn load(
    config: &Arc<Config>,
    swift: Option<crate::swift::SwiftClient>,
) -> Result<Hooks, LoadError> {
    load_with_ironic(config, swift, None)
}

/// [`load`], with the daemon's Ironic client for the hooks that call Ironic (the `enroll`
/// node-not-found hook, which fails to load without one).
pub fn load_with_ironic(
    config: &Arc<Config>,
    swift: Option<crate::swift::SwiftClient>,
    ironic: Option<&crate::ironic::IronicClient>,
) -> Result<Hooks, LoadError> {
    let mut processing: Vec<Arc<dyn ProcessingHook>> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for name in config
        .processing
        .processing_hooks
        .iter()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
    {
        if seen.contains(&name) {
            tracing::warn!(hook.name = %name, "processing hook listed twice, running it once");
            continue;
        }
        seen.push(name);
        processing.push(processing_hook(name, config, swift.as_ref())?);
    }
    let node_not_found = match config.processing.node_not_found_hook.as_deref() {
        None | Some("") => None,
        Some(name) => Some(node_not_found_hook(name, config, ironic)?),
    };
    let hooks = Hooks {
        processing,
        node_not_found,
    };
    tracing::info!(hooks = ?hooks, "hooks loaded");
    Ok(hooks)
}

/// The processing hook called `name`.
fn processing_hook(
    name: &str,
    config: &Config,
    swift: Option<&crate::swift::SwiftClient>,
) -> Result<Arc<dyn ProcessingHook>, LoadError> {
    let p = &config.processing;
    let hook: Arc<dyn ProcessingHook> = match name {
        "ramdisk_error" => Arc::new(ramdisk_error::RamdiskError::new(
            p.ramdisk_logs_dir.clone(),
            p.always_store_ramdisk_logs,
        )),
        "scheduler" => Arc::new(scheduler::Scheduler::new(
            p.overwrite_existing,
            p.disk_partitioning_spacing,
        )),
        "validate_interfaces" => Arc::new(validate_interfaces::ValidateInterfaces::new(
            p.add_ports,
            p.keep_ports,
        )),
        "root_disk_selection" => Arc::new(root_disk_selection::RootDiskSelection),
        "raid_device" => Arc::new(raid_device::RaidDevice::new("raid_device")),
        "root_device_hint" => {
            tracing::warn!(
                "processing hook root_device_hint is deprecated, use raid_device instead"
            );
            Arc::new(raid_device::RaidDevice::new("root_device_hint"))
        }
        "extra_hardware" => Arc::new(extra_hardware::ExtraHardware::new(swift.cloned())),
        "example" => Arc::new(example::Example),
        external if exec::is_exec(external) => Arc::new(exec::ExecHook::new(
            PROCESSING_HOOKS_OPTION,
            external,
            p.hook_timeout,
        )?),
        other => {
            return Err(LoadError::Unknown {
                name: other.to_string(),
                option: PROCESSING_HOOKS_OPTION,
                known: &PROCESSING_HOOK_NAMES,
            });
        }
    };
    Ok(hook)
}

/// The node-not-found hook called `name`.
fn node_not_found_hook(
    name: &str,
    config: &Config,
    ironic: Option<&crate::ironic::IronicClient>,
) -> Result<Arc<dyn NodeNotFoundHook>, LoadError> {
    match (name, ironic) {
        ("example", _) => Ok(Arc::new(example::ExampleNotFound)),
        (external, _) if exec::is_exec(external.trim()) => Ok(Arc::new(exec::ExecHook::new(
            NODE_NOT_FOUND_HOOK_OPTION,
            external.trim(),
            config.processing.hook_timeout,
        )?)),
        ("enroll", Some(ironic)) => Ok(Arc::new(discovery::Enroll::new(
            ironic.clone(),
            config.discovery.enroll_node_driver.clone(),
            config.discovery.enroll_node_fields.clone(),
            config.default.ipmi_address_fields.clone(),
        ))),
        (other, _) => Err(LoadError::Unknown {
            name: other.to_string(),
            option: NODE_NOT_FOUND_HOOK_OPTION,
            known: &NODE_NOT_FOUND_HOOK_NAMES,
        }),
    }
}
