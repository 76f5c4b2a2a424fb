//! The typed configuration: [`Config`], one struct per section, the enums of the choice
//! options, and [`ConfigError`], which refuses a configuration.
//!
//! Plain data: the option groups of upstream's `ironic_inspector/conf.py` (and of the
//! libraries it registered options for) as Rust types. Nothing here reads a file or a value.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::oslo;

/// How the API checks callers (`[DEFAULT] auth_strategy`, or the deprecated `authenticate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStrategy {
    /// Every request is accepted.
    Noauth,
    /// Requests to protected endpoints need a Keystone token with role `admin`.
    Keystone,
}

/// `[processing] add_ports`: which NICs become Ironic ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddPorts {
    /// Every valid interface.
    All,
    /// Interfaces that have an IP address.
    Active,
    /// Only the PXE boot interface (falls back to `active` without `boot_interface`).
    Pxe,
}

/// `[processing] keep_ports`: which existing Ironic ports survive processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepPorts {
    /// Keep every port.
    All,
    /// Keep ports whose MAC the ramdisk saw.
    Present,
    /// Keep only the ports that processing added.
    Added,
}

/// `[processing] store_data`: where processed introspection data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreData {
    /// Not stored.
    None,
    /// Stored as an object in Swift.
    Swift,
    /// Stored in our own database (ours; 2.2 had only Swift).
    Database,
}

/// The whole configuration, read once at start-up and shared as `Arc<Config>`.
#[derive(Clone, Debug)]
pub struct Config {
    /// `[DEFAULT]`.
    pub default: DefaultSection,
    /// `[firewall]`.
    pub firewall: FirewallSection,
    /// `[ironic]`.
    pub ironic: IronicSection,
    /// `[processing]`.
    pub processing: ProcessingSection,
    /// `[swift]`.
    pub swift: SwiftSection,
    /// `[database]` (oslo.db), with `[discoverd] database` already folded in.
    pub database: DatabaseSection,
    /// `[keystone_authtoken]`, with upstream's `[ironic]` overrides already applied.
    pub keystone_authtoken: KeystoneAuthtoken,
    /// `[oslo_middleware]`.
    pub oslo_middleware: OsloMiddleware,
    /// `[discovery]`: the `enroll` node-not-found hook.
    pub discovery: DiscoverySection,
}

/// `[DEFAULT]`: the service itself and logging.
#[derive(Clone, Debug)]
pub struct DefaultSection {
    /// IP address to listen on.
    pub listen_address: String,
    /// Port to listen on.
    pub listen_port: u16,
    /// Effective API authentication (the deprecated `authenticate` wins when set).
    pub auth_strategy: AuthStrategy,
    /// Seconds an introspection may run before it is failed; `<= 0` disables timeouts and
    /// the whole clean-up loop, as upstream.
    pub timeout: i64,
    /// Seconds a finished node's status is kept.
    pub node_status_keep_time: i64,
    /// Seconds between clean-up runs.
    pub clean_up_period: i64,
    /// Root URL of the API as clients reach it (behind a proxy); `None`: from each request.
    pub public_endpoint: Option<String>,
    /// Serve HTTPS.
    pub use_ssl: bool,
    /// PEM certificate for HTTPS.
    pub ssl_cert_path: String,
    /// PEM private key for HTTPS.
    pub ssl_key_path: String,
    /// Most client connections served at once (ours).
    pub max_connections: usize,
    /// Time a client has to send a request's head (ours).
    pub client_header_timeout: Duration,
    /// Time a client has to send a request's whole body once it is being read (ours).
    pub client_body_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request; `None` turns keep-alive
    /// off (ours).
    pub keepalive_timeout: Option<Duration>,
    /// Time a client has to complete the TLS handshake (ours).
    pub tls_handshake_timeout: Duration,
    /// Upper bound on background introspection tasks.
    pub max_concurrency: i64,
    /// Minimum seconds between two reboots of nodes whose driver matches the regex below.
    pub introspection_delay: i64,
    /// Drivers that get `introspection_delay` between reboots: upstream's regular expression,
    /// compiled anchored at the start as Python's `re.match` used it.
    pub introspection_delay_drivers: regex::Regex,
    /// `driver_info` keys read as the BMC address after `ipmi_address`.
    pub ipmi_address_fields: Vec<String>,
    /// Path given to `ironic-inspector-rootwrap`.
    pub rootwrap_config: String,
    /// Debug logging, and error details in 500 answers.
    pub debug: bool,
    /// Log to this file instead of standard error.
    pub log_file: Option<PathBuf>,
    /// Directory for `log_file` when that is relative; alone, the log file is
    /// `<log_dir>/<program>.log`.
    pub log_dir: Option<PathBuf>,
    /// Info level (otherwise warnings only) when not debugging.
    pub verbose: bool,
    /// Log to standard error as well as to the file or syslog.
    pub use_stderr: bool,
    /// Also send the log to the local syslog socket.
    pub use_syslog: bool,
    /// Syslog messages name the program (`ironic-inspector[pid]:`); false leaves it out.
    pub use_syslog_rfc_format: bool,
    /// The facility syslog messages are filed under.
    pub syslog_log_facility: SyslogFacility,
}

/// A syslog facility (`[DEFAULT] syslog_log_facility`): its numeric code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyslogFacility(u8);

/// The facility names oslo.log accepted, with their codes (`LOG_` may be left out, and case
/// does not matter).
pub(super) const SYSLOG_FACILITIES: &[(&str, u8)] = &[
    ("LOG_KERN", 0),
    ("LOG_USER", 1),
    ("LOG_MAIL", 2),
    ("LOG_DAEMON", 3),
    ("LOG_AUTH", 4),
    ("LOG_SYSLOG", 5),
    ("LOG_LPR", 6),
    ("LOG_NEWS", 7),
    ("LOG_UUCP", 8),
    ("LOG_CRON", 9),
    ("LOG_AUTHPRIV", 10),
    ("LOG_FTP", 11),
    ("LOG_LOCAL0", 16),
    ("LOG_LOCAL1", 17),
    ("LOG_LOCAL2", 18),
    ("LOG_LOCAL3", 19),
    ("LOG_LOCAL4", 20),
    ("LOG_LOCAL5", 21),
    ("LOG_LOCAL6", 22),
    ("LOG_LOCAL7", 23),
];

impl SyslogFacility {
    /// `LOG_DAEMON`, `daemon`, `local0`...; `None` for a name syslog does not have.
    pub fn from_name(name: &str) -> Option<SyslogFacility> {
        let upper = name.trim().to_ascii_uppercase();
        let full = if upper.starts_with("LOG_") {
            upper
        } else {
            format!("LOG_{upper}")
        };
        SYSLOG_FACILITIES
            .iter()
            .find(|(n, _)| *n == full)
            .map(|&(_, code)| SyslogFacility(code))
    }

    /// The facility's code (the priority of a message is `code * 8 + severity`).
    pub fn code(self) -> u8 {
        self.0
    }
}

/// `[firewall]`.
#[derive(Clone, Debug)]
pub struct FirewallSection {
    /// Manage the iptables chain at all.
    pub manage_firewall: bool,
    /// Interface dnsmasq answers DHCP on.
    pub dnsmasq_interface: String,
    /// Seconds between periodic firewall refreshes.
    pub firewall_update_period: i64,
    /// Name of our iptables chain.
    pub firewall_chain: String,
    /// Command prefix running iptables as root, interpolated but not yet split (ours;
    /// upstream hard-coded `sudo ironic-inspector-rootwrap <rootwrap_config>`).
    pub root_helper: String,
}

/// `[ironic]`: how we reach Ironic.
#[derive(Clone, Debug)]
pub struct IronicSection {
    /// Keystone URL for the service credentials.
    pub os_auth_url: String,
    /// Service user name.
    pub os_username: String,
    /// Service password.
    pub os_password: SecretString,
    /// Service tenant (project) name.
    pub os_tenant_name: String,
    /// Deprecated Keystone admin endpoint.
    pub identity_uri: String,
    /// `noauth` (use `ironic_url`) or `keystone`.
    pub auth_strategy: AuthStrategy,
    /// Ironic endpoint when `auth_strategy = noauth`.
    pub ironic_url: String,
    /// Catalog service type of Ironic.
    pub os_service_type: String,
    /// Catalog endpoint interface of Ironic.
    pub os_endpoint_type: String,
    /// Seconds between retries of a failed Ironic call.
    pub retry_interval: i64,
    /// Retries of a failed Ironic call.
    pub max_retries: i64,
    /// Seconds to wait for a TCP connection to Ironic.
    pub connect_timeout: i64,
    /// Seconds one request to Ironic may take.
    pub request_timeout: i64,
}

/// `[processing]`.
#[derive(Clone, Debug)]
pub struct ProcessingSection {
    /// Which NICs become ports.
    pub add_ports: AddPorts,
    /// Which ports are kept.
    pub keep_ports: KeepPorts,
    /// Scheduler hook overwrites properties that are already set.
    pub overwrite_existing: bool,
    /// Allow `new_ipmi_password` on introspection start.
    pub enable_setting_ipmi_credentials: bool,
    /// The base hook list, as written (comma-separated).
    pub default_processing_hooks: String,
    /// Enabled hooks in run order, after `$default_processing_hooks` expansion.
    pub processing_hooks: Vec<String>,
    /// Where ramdisk logs are written.
    pub ramdisk_logs_dir: Option<PathBuf>,
    /// Store ramdisk logs even when the ramdisk reports no error.
    pub always_store_ramdisk_logs: bool,
    /// Hook run when no node matches the ramdisk's data.
    pub node_not_found_hook: Option<String>,
    /// How long an external (`exec:`) hook may run before it is killed and fails.
    pub hook_timeout: Duration,
    /// Where processed data is stored.
    pub store_data: StoreData,
    /// `extra` key of the node that receives the stored object's name.
    pub store_data_location: Option<String>,
    /// Leave 1 GiB for partitioning when `local_gb` comes from the root disk.
    pub disk_partitioning_spacing: bool,
}

/// `[discovery]`: how the `enroll` node-not-found hook creates nodes (the section of
/// upstream's later releases).
#[derive(Clone, Debug)]
pub struct DiscoverySection {
    /// Driver (hardware type) of the nodes it creates.
    pub enroll_node_driver: String,
    /// More top-level fields for the nodes it creates (`resource_class`, `*_interface`,
    /// ...), as strings; never `driver`, `driver_info`, `uuid` or `provision_state`.
    pub enroll_node_fields: std::collections::BTreeMap<String, String>,
}

/// `[swift]`.
#[derive(Clone, Debug)]
pub struct SwiftSection {
    /// Retries of a failed Swift request.
    pub max_retries: i64,
    /// Seconds after which Swift deletes stored objects; 0 keeps them.
    pub delete_after: i64,
    /// Container for stored objects.
    pub container: String,
    /// Swift user.
    pub username: String,
    /// Swift password.
    pub password: SecretString,
    /// Swift tenant.
    pub tenant_name: String,
    /// Keystone API version for Swift's credentials.
    pub os_auth_version: String,
    /// Keystone URL for Swift's credentials.
    pub os_auth_url: String,
    /// Catalog service type of Swift.
    pub os_service_type: String,
    /// Catalog endpoint interface of Swift.
    pub os_endpoint_type: String,
}

/// `[database]` (oslo.db options the daemon honours; the rest are accepted and ignored).
#[derive(Clone, Debug)]
pub struct DatabaseSection {
    /// SQLAlchemy URL (`sqlite:///x.db`, `mysql+pymysql://…`, `postgresql://…`). `None` when
    /// neither `[database] connection` nor `[discoverd] database` is set.
    pub connection: Option<SecretString>,
    /// SQLite `synchronous` pragma: FULL when true, OFF when false.
    pub sqlite_synchronous: bool,
    /// Connection attempts at start-up; -1 retries forever.
    pub max_retries: i64,
    /// Seconds between start-up connection attempts.
    pub retry_interval: i64,
    /// Largest number of pooled connections (`None`: our default).
    pub max_pool_size: Option<u32>,
    /// Seconds an idle pooled connection is kept.
    pub idle_timeout: i64,
    /// Seconds to wait for a pooled connection (`None`: our default).
    pub pool_timeout: Option<i64>,
}

/// `[keystone_authtoken]`, after upstream's overrides from `[ironic]`
/// (`os_username` → `admin_user`, `os_password` → `admin_password`, `os_tenant_name` →
/// `admin_tenant_name`, `os_auth_url` → `auth_uri`, `identity_uri` → `identity_uri`;
/// the first non-empty wins).
#[derive(Clone, Debug)]
pub struct KeystoneAuthtoken {
    /// Public Keystone endpoint (v2.0 or v3 URL, or the bare root).
    pub auth_uri: Option<String>,
    /// Admin Keystone endpoint; preferred over `auth_uri` for validating tokens.
    pub identity_uri: Option<String>,
    /// Service user that validates tokens.
    pub admin_user: Option<String>,
    /// Its password.
    pub admin_password: Option<SecretString>,
    /// Its tenant (project).
    pub admin_tenant_name: String,
    /// Seconds a validated token is cached; keystonemiddleware's default is 300, we cap the
    /// cache at this value.
    pub token_cache_time: i64,
    /// Seconds to wait for Keystone to accept a connection (`None`: our default).
    pub http_connect_timeout: Option<i64>,
    /// Retries of a Keystone request that could not connect.
    pub http_request_max_retries: i64,
    /// CA bundle for Keystone's certificate.
    pub cafile: Option<PathBuf>,
    /// Skip verification of Keystone's certificate.
    pub insecure: bool,
    /// Region to pick endpoints from.
    pub region_name: Option<String>,
}

/// `[oslo_middleware]`.
#[derive(Clone, Debug)]
pub struct OsloMiddleware {
    /// Largest accepted request body, in bytes.
    pub max_request_body_size: usize,
}

/// A configuration that cannot be used: the daemon refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    Parse(#[from] oslo::ParseError),
    /// An option has a value of the wrong type or outside its choices.
    #[error("invalid value {value:?} for option [{section}] {name}: {reason}")]
    Invalid {
        /// Section of the option.
        section: String,
        /// Option name.
        name: String,
        /// The value as written (secrets are replaced by `***`).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A combination of options that cannot work.
    #[error("option [{section}] {name}: {reason}")]
    Unusable {
        /// Section of the option.
        section: String,
        /// Option name.
        name: String,
        /// Why.
        reason: String,
    },
}
