//! Configuration: oslo.config INI files into one typed [`Config`].
//!
//! Ports `ironic_inspector/conf.py` (and the options that `common/swift.py`, oslo.db,
//! oslo.log and keystonemiddleware registered). Option names, sections, types, defaults and
//! deprecated aliases are upstream's; every option is declared once in [`spec::OPTIONS`], which
//! also drives the check that `example.conf` documents them all. This module only reads and
//! validates: it never opens a database, a socket or a file other than the config files.

pub mod oslo;
pub mod spec;

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

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
const SYSLOG_FACILITIES: &[(&str, u8)] = &[
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
    /// Where processed data is stored.
    pub store_data: StoreData,
    /// `extra` key of the node that receives the stored object's name.
    pub store_data_location: Option<String>,
    /// Leave 1 GiB for partitioning when `local_gb` comes from the root disk.
    pub disk_partitioning_spacing: bool,
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

/// The files oslo.config would read for program `ironic-inspector` when none is given.
pub fn default_config_files() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        candidates.push(home.join(".ironic-inspector/ironic-inspector.conf"));
        candidates.push(home.join("ironic-inspector.conf"));
    }
    candidates.push(PathBuf::from("/etc/ironic-inspector/ironic-inspector.conf"));
    candidates.push(PathBuf::from("/etc/ironic-inspector.conf"));
    candidates
        .into_iter()
        .filter(|p| p.is_file())
        .take(1)
        .collect()
}

/// Lists `DIR/*.conf` in sorted order, as `--config-dir` does.
pub fn config_dir_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|source| oslo::ParseError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "conf") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Longest text a value may grow to through `$name` references. References that multiply
/// (`a = $b$b`, `b = $c$c`, ...) would otherwise fill memory at start-up.
const MAX_INTERPOLATED_LEN: usize = 1 << 20;

/// Reads values out of the layered files according to [`spec::OPTIONS`].
struct Resolver<'a> {
    raw: &'a oslo::RawConfig,
    warnings: Vec<String>,
    /// The first value whose `$name` references could not be resolved (a loop, or a value
    /// that grows too long); reported once every option was read.
    unresolvable: Option<ConfigError>,
}

impl Resolver<'_> {
    fn spec(section: &str, name: &str) -> &'static spec::Opt {
        match spec::find(section, name) {
            Some(opt) => opt,
            // Programming error: every option read below is in the table.
            None => panic!("option [{section}] {name} is missing from config::spec::OPTIONS"),
        }
    }

    /// The raw text of an option (file value, alias value or default), interpolated.
    fn text(&mut self, section: &str, name: &str) -> Option<String> {
        let opt = Self::spec(section, name);
        let written = match self.raw.get(section, name) {
            Some(raw) => Some(raw.value.clone()),
            None => opt.deprecated.iter().find_map(|&(s, n)| {
                self.raw.get(s, n).map(|raw| {
                    self.warnings.push(format!(
                        "option [{s}] {n} is deprecated, use [{section}] {name} instead"
                    ));
                    raw.value.clone()
                })
            }),
        };
        let value = written.or_else(|| opt.default.map(str::to_string))?;
        if !matches!(opt.kind, spec::Kind::Str | spec::Kind::List) || !value.contains('$') {
            return Some(value);
        }
        let expansion = Expansion {
            raw: self.raw,
            visiting: RefCell::new(vec![opt]),
            failure: RefCell::new(None),
        };
        let expanded = expansion.expand(opt.section, &value);
        if let Some(reason) = expansion.failure.into_inner() {
            self.unresolvable
                .get_or_insert_with(|| Self::invalid(section, name, &value, reason));
            return Some(value);
        }
        Some(expanded)
    }

    fn invalid(section: &str, name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
        let shown = if Self::spec(section, name).secret {
            "***".to_string()
        } else {
            value.to_string()
        };
        ConfigError::Invalid {
            section: section.to_string(),
            name: name.to_string(),
            value: shown,
            reason: reason.into(),
        }
    }

    fn string(&mut self, section: &str, name: &str) -> String {
        self.text(section, name).unwrap_or_default()
    }

    /// A string option where unset and empty both mean "none".
    fn optional(&mut self, section: &str, name: &str) -> Option<String> {
        self.text(section, name).filter(|v| !v.trim().is_empty())
    }

    fn secret(&mut self, section: &str, name: &str) -> SecretString {
        SecretString::from(self.string(section, name))
    }

    fn int(&mut self, section: &str, name: &str) -> Result<i64, ConfigError> {
        let value = self.string(section, name);
        // Python's int(): surrounding blanks and one sign (`str::parse` takes a `+` too).
        value
            .trim()
            .parse::<i64>()
            .map_err(|_| Self::invalid(section, name, &value, "not an integer"))
    }

    fn positive(&mut self, section: &str, name: &str) -> Result<i64, ConfigError> {
        let value = self.int(section, name)?;
        if value <= 0 {
            return Err(Self::invalid(
                section,
                name,
                &value.to_string(),
                "must be a positive number of seconds",
            ));
        }
        Ok(value)
    }

    fn optional_int(&mut self, section: &str, name: &str) -> Result<Option<i64>, ConfigError> {
        match self.optional(section, name) {
            None => Ok(None),
            Some(_) => self.int(section, name).map(Some),
        }
    }

    fn boolean(&mut self, section: &str, name: &str) -> Result<bool, ConfigError> {
        Ok(self.optional_bool(section, name)?.unwrap_or(false))
    }

    fn optional_bool(&mut self, section: &str, name: &str) -> Result<Option<bool>, ConfigError> {
        let Some(value) = self.text(section, name) else {
            return Ok(None);
        };
        oslo::parse_bool(&value).map(Some).ok_or_else(|| {
            Self::invalid(
                section,
                name,
                &value,
                "expected a boolean (true/false, yes/no, on/off, 1/0)",
            )
        })
    }

    fn list(&mut self, section: &str, name: &str) -> Vec<String> {
        oslo::parse_list(&self.string(section, name))
    }

    fn choice(&mut self, section: &str, name: &str) -> Result<&'static str, ConfigError> {
        let value = self.string(section, name);
        let spec::Kind::Choice(choices) = Self::spec(section, name).kind else {
            panic!("option [{section}] {name} is not a choice option");
        };
        choices
            .iter()
            .find(|c| **c == value.trim())
            .copied()
            .ok_or_else(|| {
                Self::invalid(
                    section,
                    name,
                    &value,
                    format!("must be one of: {}", choices.join(", ")),
                )
            })
    }

    /// Checks every option that was written, whether or not this daemon uses it, so a typo in
    /// an ignored option is still reported; unknown names become warnings.
    fn check_all_written(&mut self) -> Result<(), ConfigError> {
        let raw = self.raw;
        for (section, name, value) in raw.entries() {
            match spec::find(section, name) {
                Some(opt) => {
                    let v = value.value.trim();
                    let ok = match opt.kind {
                        spec::Kind::Int => v.is_empty() || v.parse::<i64>().is_ok(),
                        spec::Kind::Bool => oslo::parse_bool(v).is_some(),
                        _ => true,
                    };
                    if !ok {
                        let reason = match opt.kind {
                            spec::Kind::Int => "not an integer",
                            _ => "expected a boolean (true/false, yes/no, on/off, 1/0)",
                        };
                        return Err(Self::invalid(section, name, &value.value, reason));
                    }
                    if opt.ignored && opt.warn_when_set {
                        self.warnings.push(format!(
                            "option [{section}] {name} ({}:{}) is accepted but not applied by \
                             this daemon",
                            value.file.display(),
                            value.line
                        ));
                    } else if opt.ignored {
                        tracing::debug!(option = %format!("[{section}] {name}"), "option accepted but not used by this daemon");
                    }
                }
                None if spec::is_alias(section, name) => {}
                None => self.warnings.push(format!(
                    "unknown option [{section}] {name} in {}:{} is ignored",
                    value.file.display(),
                    value.line
                )),
            }
        }
        Ok(())
    }
}

/// One value's `$name` references, resolved as oslo.config does: `$name` is an option of the
/// value's section or of `[DEFAULT]`, `$group.name` one of `[group]`; a referenced option's
/// own value is expanded in its own section, and the result is not scanned again (so
/// `$$name` stays `$name`).
struct Expansion<'a> {
    raw: &'a oslo::RawConfig,
    /// The options being expanded, outermost first: meeting one again is a loop.
    visiting: RefCell<Vec<&'static spec::Opt>>,
    /// Why the value cannot be resolved; set once, then every lookup gives up.
    failure: RefCell<Option<String>>,
}

impl Expansion<'_> {
    fn expand(&self, section: &str, value: &str) -> String {
        let lookup = |key: &str| -> Option<String> {
            if self.failure.borrow().is_some() {
                return None;
            }
            let opt = match key.split_once('.') {
                Some((group, name)) => spec::find(group, name)?,
                None => [section, "DEFAULT"]
                    .iter()
                    .find_map(|s| spec::find(s, key))?,
            };
            let written = self
                .raw
                .get(opt.section, opt.name)
                .or_else(|| opt.deprecated.iter().find_map(|&(s, n)| self.raw.get(s, n)))
                .map(|raw| raw.value.clone())
                .or_else(|| opt.default.map(str::to_string))?;
            if self.visiting.borrow().iter().any(|v| std::ptr::eq(*v, opt)) {
                *self.failure.borrow_mut() =
                    Some(format!("${key} refers back to the option being expanded"));
                return None;
            }
            self.visiting.borrow_mut().push(opt);
            let expanded = self.expand(opt.section, &written);
            self.visiting.borrow_mut().pop();
            Some(expanded)
        };
        let out = oslo::interpolate(value, &lookup);
        if out.len() > MAX_INTERPOLATED_LEN {
            self.failure.borrow_mut().get_or_insert_with(|| {
                format!("$name references make it longer than {MAX_INTERPOLATED_LEN} bytes")
            });
        }
        out
    }
}

impl Config {
    /// Reads `files` in order (later ones override earlier ones) and validates every option.
    /// Returns the configuration and the warnings to log once logging is set up.
    pub fn from_files(files: &[PathBuf]) -> Result<(Config, Vec<String>), ConfigError> {
        let raw = oslo::RawConfig::from_files(files)?;
        let (config, mut warnings) = Self::from_raw(&raw)?;
        warnings.extend(world_readable_secrets(files, &raw));
        Ok((config, warnings))
    }

    /// Builds the configuration from already-parsed files.
    pub fn from_raw(raw: &oslo::RawConfig) -> Result<(Config, Vec<String>), ConfigError> {
        let mut r = Resolver {
            raw,
            warnings: Vec::new(),
            unresolvable: None,
        };
        r.check_all_written()?;
        let config = Config {
            default: default_section(&mut r)?,
            firewall: FirewallSection {
                manage_firewall: r.boolean("firewall", "manage_firewall")?,
                dnsmasq_interface: r.string("firewall", "dnsmasq_interface"),
                firewall_update_period: r.int("firewall", "firewall_update_period")?,
                firewall_chain: r.string("firewall", "firewall_chain"),
                root_helper: r.string("firewall", "root_helper"),
            },
            ironic: IronicSection {
                os_auth_url: r.string("ironic", "os_auth_url"),
                os_username: r.string("ironic", "os_username"),
                os_password: r.secret("ironic", "os_password"),
                os_tenant_name: r.string("ironic", "os_tenant_name"),
                identity_uri: r.string("ironic", "identity_uri"),
                auth_strategy: strategy(r.choice("ironic", "auth_strategy")?),
                ironic_url: r.string("ironic", "ironic_url"),
                os_service_type: r.string("ironic", "os_service_type"),
                os_endpoint_type: r.string("ironic", "os_endpoint_type"),
                retry_interval: r.int("ironic", "retry_interval")?,
                max_retries: r.int("ironic", "max_retries")?,
                connect_timeout: r.positive("ironic", "connect_timeout")?,
                request_timeout: r.positive("ironic", "request_timeout")?,
            },
            processing: processing_section(&mut r)?,
            swift: SwiftSection {
                max_retries: r.int("swift", "max_retries")?,
                delete_after: r.int("swift", "delete_after")?,
                container: r.string("swift", "container"),
                username: r.string("swift", "username"),
                password: r.secret("swift", "password"),
                tenant_name: r.string("swift", "tenant_name"),
                os_auth_version: r.string("swift", "os_auth_version"),
                os_auth_url: r.string("swift", "os_auth_url"),
                os_service_type: r.string("swift", "os_service_type"),
                os_endpoint_type: r.string("swift", "os_endpoint_type"),
            },
            database: database_section(&mut r)?,
            keystone_authtoken: keystone_section(&mut r)?,
            oslo_middleware: OsloMiddleware {
                max_request_body_size: {
                    let size = r.int("oslo_middleware", "max_request_body_size")?;
                    usize::try_from(size)
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| {
                            Resolver::invalid(
                                "oslo_middleware",
                                "max_request_body_size",
                                &size.to_string(),
                                "must be a positive number of bytes",
                            )
                        })?
                },
            },
        };
        if let Some(err) = r.unresolvable.take() {
            return Err(err);
        }
        if r.boolean("DEFAULT", "fatal_deprecations")?
            && let Some(first) = r.warnings.iter().find(|w| w.contains("deprecated"))
        {
            return Err(ConfigError::Unusable {
                section: "DEFAULT".into(),
                name: "fatal_deprecations".into(),
                reason: first.clone(),
            });
        }
        Ok((config, r.warnings))
    }
}

fn strategy(name: &str) -> AuthStrategy {
    if name == "noauth" {
        AuthStrategy::Noauth
    } else {
        AuthStrategy::Keystone
    }
}

fn default_section(r: &mut Resolver<'_>) -> Result<DefaultSection, ConfigError> {
    let port = r.int("DEFAULT", "listen_port")?;
    let listen_port = u16::try_from(port).map_err(|_| {
        Resolver::invalid(
            "DEFAULT",
            "listen_port",
            &port.to_string(),
            "not a TCP port (0-65535)",
        )
    })?;
    let mut auth_strategy = strategy(r.choice("DEFAULT", "auth_strategy")?);
    if let Some(authenticate) = r.optional_bool("DEFAULT", "authenticate")? {
        r.warnings.push(
            "option [DEFAULT] authenticate is deprecated, use [DEFAULT] auth_strategy instead"
                .to_string(),
        );
        auth_strategy = if authenticate {
            AuthStrategy::Keystone
        } else {
            AuthStrategy::Noauth
        };
    }
    let use_ssl = r.boolean("DEFAULT", "use_ssl")?;
    let ssl_cert_path = r.string("DEFAULT", "ssl_cert_path");
    let ssl_key_path = r.string("DEFAULT", "ssl_key_path");
    if use_ssl {
        for (name, value) in [
            ("ssl_cert_path", &ssl_cert_path),
            ("ssl_key_path", &ssl_key_path),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::Unusable {
                    section: "DEFAULT".into(),
                    name: name.into(),
                    reason: "must be set when use_ssl = true".into(),
                });
            }
        }
    }
    let clean_up_period = r.positive("DEFAULT", "clean_up_period")?;
    let delay_drivers = r.string("DEFAULT", "introspection_delay_drivers");
    let introspection_delay_drivers =
        regex::Regex::new(&format!("^(?:{delay_drivers})")).map_err(|e| {
            Resolver::invalid(
                "DEFAULT",
                "introspection_delay_drivers",
                &delay_drivers,
                format!("not a regular expression: {e}"),
            )
        })?;
    // Checked whether or not use_syslog is set, as a typo in any option is.
    let facility = r.string("DEFAULT", "syslog_log_facility");
    let syslog_log_facility = SyslogFacility::from_name(&facility).ok_or_else(|| {
        let names: Vec<&str> = SYSLOG_FACILITIES.iter().map(|(n, _)| *n).collect();
        Resolver::invalid(
            "DEFAULT",
            "syslog_log_facility",
            &facility,
            format!("not a syslog facility; one of: {}", names.join(", ")),
        )
    })?;
    Ok(DefaultSection {
        listen_address: r.string("DEFAULT", "listen_address"),
        listen_port,
        auth_strategy,
        timeout: r.int("DEFAULT", "timeout")?,
        node_status_keep_time: r.int("DEFAULT", "node_status_keep_time")?,
        clean_up_period,
        public_endpoint: r
            .optional("DEFAULT", "public_endpoint")
            .map(|url| url.trim_end_matches('/').to_string()),
        use_ssl,
        ssl_cert_path,
        ssl_key_path,
        max_connections: {
            let most = r.int("DEFAULT", "max_connections")?;
            usize::try_from(most)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Resolver::invalid(
                        "DEFAULT",
                        "max_connections",
                        &most.to_string(),
                        "must be a positive number of connections",
                    )
                })?
        },
        client_header_timeout: seconds(r.positive("DEFAULT", "client_header_timeout")?),
        client_body_timeout: seconds(r.positive("DEFAULT", "client_body_timeout")?),
        keepalive_timeout: match r.int("DEFAULT", "keepalive_timeout")? {
            0 => None,
            idle if idle > 0 => Some(seconds(idle)),
            idle => {
                return Err(Resolver::invalid(
                    "DEFAULT",
                    "keepalive_timeout",
                    &idle.to_string(),
                    "must be 0 (no keep-alive) or a positive number of seconds",
                ));
            }
        },
        tls_handshake_timeout: seconds(r.positive("DEFAULT", "tls_handshake_timeout")?),
        max_concurrency: r.int("DEFAULT", "max_concurrency")?,
        introspection_delay: r.int("DEFAULT", "introspection_delay")?,
        introspection_delay_drivers,
        ipmi_address_fields: r.list("DEFAULT", "ipmi_address_fields"),
        rootwrap_config: r.string("DEFAULT", "rootwrap_config"),
        debug: r.boolean("DEFAULT", "debug")?,
        log_file: r.optional("DEFAULT", "log_file").map(PathBuf::from),
        log_dir: r.optional("DEFAULT", "log_dir").map(PathBuf::from),
        verbose: r.boolean("DEFAULT", "verbose")?,
        use_stderr: r.boolean("DEFAULT", "use_stderr")?,
        use_syslog: r.boolean("DEFAULT", "use_syslog")?,
        use_syslog_rfc_format: r.boolean("DEFAULT", "use_syslog_rfc_format")?,
        syslog_log_facility,
    })
}

/// A positive number of seconds as a duration.
fn seconds(value: i64) -> Duration {
    Duration::from_secs(value.unsigned_abs())
}

fn processing_section(r: &mut Resolver<'_>) -> Result<ProcessingSection, ConfigError> {
    let add_ports = match r.choice("processing", "add_ports")? {
        "all" => AddPorts::All,
        "active" => AddPorts::Active,
        _ => AddPorts::Pxe,
    };
    let keep_ports = match r.choice("processing", "keep_ports")? {
        "present" => KeepPorts::Present,
        "added" => KeepPorts::Added,
        _ => KeepPorts::All,
    };
    let store_data = match r.choice("processing", "store_data")? {
        "swift" => StoreData::Swift,
        "database" => StoreData::Database,
        _ => StoreData::None,
    };
    Ok(ProcessingSection {
        add_ports,
        keep_ports,
        overwrite_existing: r.boolean("processing", "overwrite_existing")?,
        enable_setting_ipmi_credentials: r
            .boolean("processing", "enable_setting_ipmi_credentials")?,
        default_processing_hooks: r.string("processing", "default_processing_hooks"),
        processing_hooks: r.list("processing", "processing_hooks"),
        ramdisk_logs_dir: r
            .optional("processing", "ramdisk_logs_dir")
            .map(PathBuf::from),
        always_store_ramdisk_logs: r.boolean("processing", "always_store_ramdisk_logs")?,
        node_not_found_hook: r.optional("processing", "node_not_found_hook"),
        store_data,
        store_data_location: r.optional("processing", "store_data_location"),
        disk_partitioning_spacing: r.boolean("processing", "disk_partitioning_spacing")?,
    })
}

fn database_section(r: &mut Resolver<'_>) -> Result<DatabaseSection, ConfigError> {
    // `[discoverd] database` only changes the default, so an explicit connection still wins.
    let discoverd = r.optional("discoverd", "database");
    if discoverd.is_some() {
        r.warnings.push(
            "option [discoverd] database is deprecated, use [database] connection instead"
                .to_string(),
        );
    }
    let connection = r
        .optional("database", "connection")
        .or_else(|| discoverd.map(|path| format!("sqlite:///{}", path.trim())))
        .map(SecretString::from);
    let max_pool_size = match r.optional_int("database", "max_pool_size")? {
        None => None,
        Some(n) => Some(u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            Resolver::invalid(
                "database",
                "max_pool_size",
                &n.to_string(),
                "must be positive",
            )
        })?),
    };
    Ok(DatabaseSection {
        connection,
        sqlite_synchronous: r.boolean("database", "sqlite_synchronous")?,
        max_retries: r.int("database", "max_retries")?,
        retry_interval: r.int("database", "retry_interval")?,
        max_pool_size,
        idle_timeout: r.int("database", "idle_timeout")?,
        pool_timeout: r.optional_int("database", "pool_timeout")?,
    })
}

fn keystone_section(r: &mut Resolver<'_>) -> Result<KeystoneAuthtoken, ConfigError> {
    const KS: &str = "keystone_authtoken";
    // Upstream let the [ironic] service credentials win over [keystone_authtoken]; the later
    // password-plugin spellings are our fallback for configs written for newer releases.
    let first = |values: [Option<String>; 3]| values.into_iter().flatten().next();
    let ironic_user = r.optional("ironic", "os_username");
    let admin_user = first([
        ironic_user,
        r.optional(KS, "admin_user"),
        r.optional(KS, "username"),
    ]);
    let ironic_password = r.optional("ironic", "os_password");
    let admin_password = first([
        ironic_password,
        r.optional(KS, "admin_password"),
        r.optional(KS, "password"),
    ])
    .map(SecretString::from);
    let explicit_tenant = r.raw.get(KS, "admin_tenant_name").is_some();
    let tenant = if explicit_tenant {
        r.optional(KS, "admin_tenant_name")
    } else {
        r.optional(KS, "project_name")
            .or_else(|| r.optional(KS, "admin_tenant_name"))
    };
    let admin_tenant_name = first([r.optional("ironic", "os_tenant_name"), tenant, None])
        .unwrap_or_else(|| "admin".to_string());
    let auth_uri = first([
        r.optional("ironic", "os_auth_url"),
        r.optional(KS, "auth_uri"),
        r.optional(KS, "www_authenticate_uri"),
    ]);
    let identity_uri = first([
        r.optional("ironic", "identity_uri"),
        r.optional(KS, "identity_uri"),
        r.optional(KS, "auth_url"),
    ]);
    let plugin = r
        .optional(KS, "auth_type")
        .or_else(|| r.optional(KS, "auth_plugin"));
    if let Some(plugin) = plugin
        && !matches!(plugin.as_str(), "password" | "v3password" | "v2password")
    {
        return Err(ConfigError::Unusable {
            section: KS.into(),
            name: "auth_type".into(),
            reason: format!("auth plugin {plugin:?} is not supported, use password"),
        });
    }
    Ok(KeystoneAuthtoken {
        auth_uri,
        identity_uri,
        admin_user,
        admin_password,
        admin_tenant_name,
        token_cache_time: r.int(KS, "token_cache_time")?,
        http_connect_timeout: r.optional_int(KS, "http_connect_timeout")?,
        http_request_max_retries: r.int(KS, "http_request_max_retries")?,
        cafile: r.optional(KS, "cafile").map(PathBuf::from),
        insecure: r.boolean(KS, "insecure")?,
        region_name: r.optional(KS, "region_name"),
    })
}

/// Warns about config files that others can read while they hold a password.
#[cfg(unix)]
fn world_readable_secrets(files: &[PathBuf], raw: &oslo::RawConfig) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut warnings = Vec::new();
    for file in files {
        let holds_secret = raw.entries().any(|(section, name, value)| {
            let secret = spec::find(section, name).is_some_and(|o| o.secret)
                || OPTIONS_ALIASING_SECRETS.contains(&(section, name));
            value.file == *file && secret && holds_password(&value.value)
        });
        let readable_by_others = std::fs::metadata(file)
            .map(|m| m.permissions().mode() & 0o004 != 0)
            .unwrap_or(false);
        if holds_secret && readable_by_others {
            warnings.push(format!(
                "config file {} holds a password and is readable by every user: chmod o-r it",
                file.display()
            ));
        }
    }
    warnings
}

#[cfg(not(unix))]
fn world_readable_secrets(_files: &[PathBuf], _raw: &oslo::RawConfig) -> Vec<String> {
    Vec::new()
}

/// Whether a secret option's value really holds a password: any non-empty value, except a
/// URL (a database connection) without a password in it. A URL's password is read as
/// SQLAlchemy 1.0 read it: after the user name (no `:` or `/`) and a `:`, up to the last
/// `@`, so it may hold `/`, `?`, `#` and `@`.
fn holds_password(value: &str) -> bool {
    match value.split_once("://") {
        Some((_, rest)) => rest[rest.find([':', '/']).unwrap_or(rest.len())..]
            .strip_prefix(':')
            .and_then(|tail| tail.rsplit_once('@'))
            .is_some_and(|(password, _)| !password.is_empty()),
        None => !value.is_empty(),
    }
}

/// Deprecated spellings that hold secrets (the table marks only the current names).
const OPTIONS_ALIASING_SECRETS: &[(&str, &str)] = &[
    ("discoverd", "os_password"),
    ("DEFAULT", "sql_connection"),
    ("DATABASE", "sql_connection"),
    ("sql", "connection"),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    use secrecy::ExposeSecret;

    use super::*;

    fn load(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let mut raw = oslo::RawConfig::default();
        raw.merge_str(text, Path::new("test.conf")).unwrap();
        Config::from_raw(&raw)
    }

    #[test]
    fn defaults_are_upstreams() {
        let (c, warnings) = load("").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.default.listen_address, "0.0.0.0");
        assert_eq!(c.default.listen_port, 5050);
        assert_eq!(c.default.auth_strategy, AuthStrategy::Keystone);
        assert_eq!(c.default.timeout, 3600);
        assert_eq!(c.default.node_status_keep_time, 604800);
        assert_eq!(c.default.clean_up_period, 60);
        assert!(!c.default.use_ssl);
        assert_eq!(c.default.max_concurrency, 1000);
        assert_eq!(c.default.introspection_delay, 5);
        let delay = &c.default.introspection_delay_drivers;
        assert!(delay.is_match("pxe_ssh") && !delay.is_match("pxe_ipmitool"));
        assert_eq!(
            c.default.ipmi_address_fields,
            ["ilo_address", "drac_host", "cimc_address"]
        );
        assert_eq!(
            c.default.rootwrap_config,
            "/etc/ironic-inspector/rootwrap.conf"
        );
        assert!(c.firewall.manage_firewall);
        assert_eq!(c.firewall.dnsmasq_interface, "br-ctlplane");
        assert_eq!(c.firewall.firewall_update_period, 15);
        assert_eq!(c.firewall.firewall_chain, "ironic-inspector");
        assert_eq!(
            c.firewall.root_helper,
            "sudo ironic-inspector-rootwrap /etc/ironic-inspector/rootwrap.conf"
        );
        assert_eq!(c.ironic.auth_strategy, AuthStrategy::Keystone);
        assert_eq!(c.ironic.ironic_url, "http://localhost:6385/");
        assert_eq!(c.ironic.os_service_type, "baremetal");
        assert_eq!(c.ironic.os_endpoint_type, "internalURL");
        assert_eq!((c.ironic.retry_interval, c.ironic.max_retries), (2, 30));
        assert_eq!(c.processing.add_ports, AddPorts::Pxe);
        assert_eq!(c.processing.keep_ports, KeepPorts::All);
        assert!(c.processing.overwrite_existing);
        assert!(!c.processing.enable_setting_ipmi_credentials);
        assert_eq!(
            c.processing.processing_hooks,
            [
                "ramdisk_error",
                "root_disk_selection",
                "scheduler",
                "validate_interfaces"
            ]
        );
        assert_eq!(c.processing.store_data, StoreData::None);
        assert!(c.processing.disk_partitioning_spacing);
        assert_eq!(c.swift.container, "ironic-inspector");
        assert_eq!(c.swift.os_auth_version, "2");
        assert_eq!(c.swift.max_retries, 2);
        assert!(c.database.connection.is_none());
        assert!(c.database.sqlite_synchronous);
        assert_eq!(c.database.max_retries, 10);
        assert_eq!(c.keystone_authtoken.admin_tenant_name, "admin");
        assert_eq!(c.keystone_authtoken.token_cache_time, 300);
        assert_eq!(c.oslo_middleware.max_request_body_size, 16 * 1024 * 1024);
    }

    #[test]
    fn connection_limits() {
        let (c, _) = load("").unwrap();
        assert_eq!(c.default.max_connections, 500);
        assert_eq!(c.default.client_header_timeout, Duration::from_secs(30));
        assert_eq!(c.default.client_body_timeout, Duration::from_secs(60));
        assert_eq!(c.default.keepalive_timeout, Some(Duration::from_secs(60)));
        assert_eq!(c.default.tls_handshake_timeout, Duration::from_secs(10));
        let (c, _) = load("[DEFAULT]\nkeepalive_timeout = 0\n").unwrap();
        assert_eq!(c.default.keepalive_timeout, None);
        for bad in [
            "max_connections = 0",
            "client_header_timeout = 0",
            "client_body_timeout = -1",
            "keepalive_timeout = -1",
            "tls_handshake_timeout = 0",
        ] {
            let err = load(&format!("[DEFAULT]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            let name = bad.split(' ').next().unwrap();
            assert!(err.contains(&format!("[DEFAULT] {name}")), "{bad}: {err}");
        }
    }

    #[test]
    fn invalid_values_name_section_and_option() {
        let cases = [
            ("[DEFAULT]\nlisten_port = abc\n", "[DEFAULT] listen_port"),
            ("[DEFAULT]\nlisten_port = 70000\n", "[DEFAULT] listen_port"),
            ("[DEFAULT]\nuse_ssl = maybe\n", "[DEFAULT] use_ssl"),
            ("[processing]\nadd_ports = some\n", "[processing] add_ports"),
            (
                "[DEFAULT]\nauth_strategy = ldap\n",
                "[DEFAULT] auth_strategy",
            ),
            (
                "[database]\nidle_timeout = soon\n",
                "[database] idle_timeout",
            ),
            // Ignored options are still type-checked.
            (
                "[DEFAULT]\npublish_errors = perhaps\n",
                "[DEFAULT] publish_errors",
            ),
            ("[DEFAULT]\nuse_ssl = true\n", "[DEFAULT] ssl_cert_path"),
            (
                "[DEFAULT]\nclean_up_period = 0\n",
                "[DEFAULT] clean_up_period",
            ),
            (
                "[DEFAULT]\nintrospection_delay_drivers = (\n",
                "[DEFAULT] introspection_delay_drivers",
            ),
            (
                "[ironic]\nrequest_timeout = 0\n",
                "[ironic] request_timeout",
            ),
        ];
        for (text, named) in cases {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains(named), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn booleans_take_oslo_words_in_any_case() {
        let (c, _) = load("[firewall]\nmanage_firewall = NO\n[processing]\noverwrite_existing = Off\nalways_store_ramdisk_logs = 1\n").unwrap();
        assert!(!c.firewall.manage_firewall);
        assert!(!c.processing.overwrite_existing);
        assert!(c.processing.always_store_ramdisk_logs);
    }

    #[test]
    fn discoverd_aliases_are_read_with_a_warning_and_lose_to_new_names() {
        let (c, warnings) =
            load("[discoverd]\nlisten_port = 6000\ntimeout = 10\n[DEFAULT]\ntimeout = 20\n")
                .unwrap();
        assert_eq!(c.default.listen_port, 6000);
        assert_eq!(c.default.timeout, 20);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("[discoverd] listen_port is deprecated"));
    }

    #[test]
    fn authenticate_overrides_auth_strategy() {
        let (c, warnings) =
            load("[DEFAULT]\nauth_strategy = keystone\nauthenticate = false\n").unwrap();
        assert_eq!(c.default.auth_strategy, AuthStrategy::Noauth);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("authenticate is deprecated"))
        );
        let (c, _) =
            load("[discoverd]\nauthenticate = true\n[DEFAULT]\nauth_strategy = noauth\n").unwrap();
        assert_eq!(c.default.auth_strategy, AuthStrategy::Keystone);
    }

    #[test]
    fn hook_list_expands_the_default_set() {
        let (c, _) = load(
            "[processing]\nprocessing_hooks = $default_processing_hooks, example ,extra_hardware\n",
        )
        .unwrap();
        assert_eq!(
            c.processing.processing_hooks,
            [
                "ramdisk_error",
                "root_disk_selection",
                "scheduler",
                "validate_interfaces",
                "example",
                "extra_hardware"
            ]
        );
        let (c, _) = load("[processing]\ndefault_processing_hooks = scheduler\nprocessing_hooks = ${default_processing_hooks},example\n").unwrap();
        assert_eq!(c.processing.processing_hooks, ["scheduler", "example"]);
    }

    #[test]
    fn discoverd_database_is_the_fallback_connection() {
        let (c, warnings) = load("[discoverd]\ndatabase = /var/lib/inspector.db \n").unwrap();
        assert_eq!(
            c.database.connection.unwrap().expose_secret(),
            "sqlite:////var/lib/inspector.db"
        );
        assert!(warnings.iter().any(|w| w.contains("[discoverd] database")));
        let (c, _) =
            load("[discoverd]\ndatabase = /x.db\n[database]\nconnection = sqlite:///y.db\n")
                .unwrap();
        assert_eq!(
            c.database.connection.unwrap().expose_secret(),
            "sqlite:///y.db"
        );
        let (c, _) = load("[DEFAULT]\nsql_connection = sqlite:///z.db\n").unwrap();
        assert_eq!(
            c.database.connection.unwrap().expose_secret(),
            "sqlite:///z.db"
        );
    }

    #[test]
    fn unknown_options_are_warnings() {
        let (_, warnings) = load("[DEFAULT]\nlisten_prot = 1\n[nonsense]\nx = 1\n").unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("[DEFAULT] listen_prot"));
        assert!(warnings[0].contains("test.conf:2"));
    }

    #[test]
    fn python_logging_formats_are_accepted_with_a_warning_that_they_are_not_applied() {
        let (_, warnings) = load(
            "[DEFAULT]\nlog_config_append = /etc/logging.conf\nlogging_context_format_string = %(message)s\n\
             [keystone_authtoken]\nmemcached_servers = m:11211\n",
        )
        .unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("[DEFAULT] log_config_append")
                && warnings[0].contains("not applied")
                && warnings[0].contains("test.conf:2"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("[DEFAULT] logging_context_format_string"));
    }

    #[test]
    fn logging_options_are_read() {
        let (c, _) = load("").unwrap();
        let d = c.default;
        assert!(d.verbose && d.use_stderr && !d.use_syslog && d.use_syslog_rfc_format);
        assert_eq!(d.syslog_log_facility.code(), 1);
        let (c, _) = load(
            "[DEFAULT]\nverbose = false\nuse_stderr = false\nuse_syslog = true\nsyslog_log_facility = LOG_LOCAL7\n",
        )
        .unwrap();
        let d = c.default;
        assert!(!d.verbose && !d.use_stderr && d.use_syslog);
        assert_eq!(d.syslog_log_facility.code(), 23);
        let err = load("[DEFAULT]\nsyslog_log_facility = LOG_LOCAL9\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[DEFAULT] syslog_log_facility") && err.contains("LOG_LOCAL9"),
            "{err}"
        );
        assert!(err.contains("LOG_DAEMON"), "{err}");
    }

    #[test]
    fn keystone_credentials_prefer_the_ironic_section() {
        let text = "[ironic]\nos_username = svc\nos_password = pw1\nos_tenant_name = service\nos_auth_url = http://ks:5000/v2.0\n\
                    [keystone_authtoken]\nadmin_user = other\nadmin_password = pw2\nidentity_uri = http://ks:35357\n";
        let (c, _) = load(text).unwrap();
        let k = c.keystone_authtoken;
        assert_eq!(k.admin_user.as_deref(), Some("svc"));
        assert_eq!(k.admin_password.unwrap().expose_secret(), "pw1");
        assert_eq!(k.admin_tenant_name, "service");
        assert_eq!(k.auth_uri.as_deref(), Some("http://ks:5000/v2.0"));
        assert_eq!(k.identity_uri.as_deref(), Some("http://ks:35357"));
        let (c, _) = load("[keystone_authtoken]\nauth_type = password\nauth_url = http://ks:5000\nusername = u\npassword = p\nproject_name = service\n").unwrap();
        let k = c.keystone_authtoken;
        assert_eq!(k.admin_user.as_deref(), Some("u"));
        assert_eq!(k.admin_tenant_name, "service");
        assert_eq!(k.identity_uri.as_deref(), Some("http://ks:5000"));
        assert!(load("[keystone_authtoken]\nauth_type = token\n").is_err());
    }

    #[test]
    fn passwords_in_urls() {
        assert!(holds_password(
            "mysql+pymysql://u:pw@db.example.org/inspector"
        ));
        assert!(holds_password("postgresql://u:p@h:5432/db?sslmode=require"));
        assert!(!holds_password("sqlite:////var/lib/inspector.sqlite"));
        assert!(!holds_password("postgresql://u@h/db"));
        assert!(holds_password("plain-password"));
        assert!(!holds_password(""));
        // Found by the property tests: these passwords went unnoticed.
        assert!(holds_password("mysql://u:pa/ss@h/db"));
        assert!(holds_password("mysql://u:pa?ss@h/db"));
        assert!(!holds_password("mysql://u:@h/db"));
        assert!(!holds_password("postgresql://u@h:5432/db"));
    }

    #[test]
    fn secrets_are_hidden_in_errors_and_debug() {
        let err = load("[ironic]\nos_password = hunter2\n[DEFAULT]\nlisten_port = x\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"));
        let (c, _) = load(
            "[ironic]\nos_password = hunter2\n[database]\nconnection = mysql://u:hunter2@h/db\n",
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn later_files_override_and_world_readable_secrets_warn() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one.conf");
        let two = dir.path().join("two.conf");
        std::fs::write(&one, "[DEFAULT]\nlisten_port = 1000\ntimeout = 5\n").unwrap();
        std::fs::write(
            &two,
            "[DEFAULT]\nlisten_port = 2000\n[ironic]\nos_password = pw\n",
        )
        .unwrap();
        std::fs::set_permissions(&two, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (c, warnings) = Config::from_files(&[one.clone(), two.clone()]).unwrap();
        assert_eq!((c.default.listen_port, c.default.timeout), (2000, 5));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("two.conf"));
        // A database URL without a password is not a secret worth warning about.
        std::fs::write(&one, "[database]\nconnection = sqlite:////var/lib/i.db\n").unwrap();
        std::fs::set_permissions(&one, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&two, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (_, warnings) = Config::from_files(&[one, two]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn root_helper_follows_rootwrap_config_and_may_be_empty() {
        let (c, _) = load("[DEFAULT]\nrootwrap_config = /opt/rw.conf\n").unwrap();
        assert_eq!(
            c.firewall.root_helper,
            "sudo ironic-inspector-rootwrap /opt/rw.conf"
        );
        let (c, _) = load("[firewall]\nroot_helper =\n").unwrap();
        assert_eq!(c.firewall.root_helper, "");
        let (c, _) = load("[firewall]\nroot_helper = ip netns exec ns1\n").unwrap();
        assert_eq!(c.firewall.root_helper, "ip netns exec ns1");
    }

    #[test]
    fn example_conf_is_valid_and_documents_every_option() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("example.conf");
        let (c, warnings) = Config::from_files(std::slice::from_ref(&path)).unwrap();
        assert!(
            warnings.iter().all(|w| !w.contains("unknown option")),
            "{warnings:?}"
        );
        assert_eq!(c.default.auth_strategy, AuthStrategy::Noauth);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut section = "";
        let mut documented = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name;
            } else if let Some(rest) = line.strip_prefix('#')
                && let Some((name, value)) = rest
                    .split_once(" = ")
                    .or_else(|| rest.strip_suffix(" =").map(|name| (name, "")))
            {
                documented.insert((section.to_string(), name.to_string(), value.to_string()));
            }
        }
        for opt in spec::OPTIONS {
            let default = opt.default.unwrap_or("<None>");
            let default = if opt.default.is_none() && opt.name == "authenticate" {
                ""
            } else {
                default
            };
            assert!(
                documented.contains(&(
                    opt.section.to_string(),
                    opt.name.to_string(),
                    default.to_string()
                )),
                "example.conf lacks '#{} = {}' in [{}]",
                opt.name,
                default,
                opt.section
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use std::path::Path;

    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    use super::oslo::properties::{Part, part, render};
    use super::*;
    use crate::testing::{edge_string, text};

    /// A value that suits an option's kind.
    fn valid_value(kind: spec::Kind) -> BoxedStrategy<String> {
        match kind {
            spec::Kind::Str => text().boxed(),
            spec::Kind::Int => any::<i64>().prop_map(|n| n.to_string()).boxed(),
            spec::Kind::Bool => prop::sample::select(vec!["true", "False", "1", "no", "ON"])
                .prop_map(str::to_string)
                .boxed(),
            spec::Kind::List => prop::collection::vec("[a-z_]{1,8}", 0..4)
                .prop_map(|items| items.join(","))
                .boxed(),
            spec::Kind::Choice(choices) => prop::sample::select(choices)
                .prop_map(str::to_string)
                .boxed(),
        }
    }

    /// A value for any option: often of the right kind, often not.
    fn any_value(kind: spec::Kind) -> BoxedStrategy<String> {
        prop_oneof![
            3 => valid_value(kind),
            2 => text(),
            1 => edge_string().prop_map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)),
            1 => prop::sample::select(vec!["$os_password", "${password}", "$connection", "$$", "\\$x", "$default_processing_hooks"])
                .prop_map(str::to_string),
        ]
        .boxed()
    }

    /// One assignment: a known option (or a deprecated spelling, or an unknown name) and a value.
    fn entry() -> impl Strategy<Value = (String, String, String)> {
        let aliases: Vec<(&str, &str, spec::Kind)> = spec::OPTIONS
            .iter()
            .flat_map(|o| o.deprecated.iter().map(move |(s, n)| (*s, *n, o.kind)))
            .collect();
        prop_oneof![
            6 => prop::sample::select(spec::OPTIONS).prop_flat_map(|o| {
                (Just(o.section.to_string()), Just(o.name.to_string()), any_value(o.kind))
            }),
            1 => prop::sample::select(aliases).prop_flat_map(|(s, n, kind)| {
                (Just(s.to_string()), Just(n.to_string()), any_value(kind))
            }),
            1 => ("[a-z]{1,8}", "[a-z_]{1,10}", text()),
        ]
    }

    fn ini(entries: &[(String, String, String)]) -> String {
        entries
            .iter()
            .map(|(section, name, value)| {
                format!(
                    "[{section}]\n{name} = \"{}\"\n",
                    value.replace(['\n', '\r'], "")
                )
            })
            .collect()
    }

    fn load(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let mut raw = oslo::RawConfig::default();
        raw.merge_str(text, Path::new("prop.conf")).unwrap();
        Config::from_raw(&raw)
    }

    fn with_case(word: &str, upper: &[bool]) -> String {
        word.chars()
            .zip(upper.iter().chain(std::iter::repeat(&false)))
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect()
    }

    proptest! {
        #[test]
        fn any_config_loads_or_names_a_known_option(entries in prop::collection::vec(entry(), 0..12)) {
            match load(&ini(&entries)) {
                Ok(_) => {}
                Err(ConfigError::Invalid { section, name, reason, .. }
                    | ConfigError::Unusable { section, name, reason }) => {
                    prop_assert!(spec::find(&section, &name).is_some(), "[{section}] {name}");
                    prop_assert!(!reason.is_empty());
                }
                Err(ConfigError::Parse(err)) => prop_assert!(false, "{err}"),
            }
        }

        #[test]
        fn secrets_never_show_in_errors_or_debug(
            entries in prop::collection::vec(entry(), 0..8),
            secret in prop::sample::select(
                spec::OPTIONS.iter().filter(|o| o.secret).collect::<Vec<_>>()
            ),
            password in "[A-Za-z0-9]{12}",
        ) {
            let password = format!("Pw{password}");
            // An option that refers to a secret one ($os_password) holds it by the operator's
            // choice, as one holding it literally does; that is not a leak of ours.
            let entries: Vec<_> = entries.into_iter().filter(|(_, _, v)| !v.contains('$')).collect();
            let value = if secret.name.contains("connection") {
                format!("mysql+pymysql://user:{password}@db.example/inspector")
            } else {
                password.clone()
            };
            let mut entries = entries;
            entries.push((secret.section.to_string(), secret.name.to_string(), value));
            match load(&ini(&entries)) {
                Ok((config, warnings)) => {
                    let shown = format!("{config:?}");
                    prop_assert!(!shown.contains(&password));
                    prop_assert!(!warnings.iter().any(|w| w.contains(&password)));
                }
                Err(err) => prop_assert!(!err.to_string().contains(&password), "{err}"),
            }
        }

        #[test]
        fn integers_read_as_python_int(n in any::<i64>(), pad in prop::sample::select(vec!["", " ", "\t"]), plus in any::<bool>()) {
            let written = if plus && n >= 0 { format!("+{n}") } else { n.to_string() };
            let (c, _) = load(&format!("[DEFAULT]\ntimeout = \"{pad}{written}{pad}\"\n")).unwrap();
            prop_assert_eq!(c.default.timeout, n);
            let doubled = if n >= 0 { format!("++{n}") } else { format!("--{}", n.unsigned_abs()) };
            let err = load(&format!("[DEFAULT]\ntimeout = {doubled}\n")).unwrap_err();
            prop_assert!(err.to_string().contains("[DEFAULT] timeout"), "{err}");
        }

        #[test]
        fn listen_port_is_a_tcp_port(n in prop_oneof![any::<i64>(), -10i64..70_000]) {
            match load(&format!("[DEFAULT]\nlisten_port = {n}\n")) {
                Ok((c, _)) => prop_assert_eq!(i64::from(c.default.listen_port), n),
                Err(err) => {
                    prop_assert!(!(0..=65535).contains(&n));
                    prop_assert!(err.to_string().contains("[DEFAULT] listen_port"), "{err}");
                }
            }
        }

        #[test]
        fn booleans_take_any_case(
            opt in prop::sample::select(vec![
                ("firewall", "manage_firewall"), ("processing", "overwrite_existing"),
                ("DEFAULT", "use_ssl"), ("DEFAULT", "debug"), ("keystone_authtoken", "insecure"),
            ]),
            word in prop::sample::select(vec!["1", "yes", "true", "on", "0", "no", "false", "off", "maybe", "2", ""]),
            upper in prop::collection::vec(any::<bool>(), 5),
        ) {
            let (section, name) = opt;
            let written = with_case(word, &upper);
            let expected = oslo::parse_bool(word);
            let extra = if name == "use_ssl" { "ssl_cert_path = c\nssl_key_path = k\n" } else { "" };
            let result = load(&format!("[{section}]\n{name} = {written}\n[DEFAULT]\n{extra}"));
            match (expected, result) {
                (Some(value), Ok((c, _))) => {
                    let got = match name {
                        "manage_firewall" => c.firewall.manage_firewall,
                        "overwrite_existing" => c.processing.overwrite_existing,
                        "use_ssl" => c.default.use_ssl,
                        "debug" => c.default.debug,
                        _ => c.keystone_authtoken.insecure,
                    };
                    prop_assert_eq!(got, value);
                }
                (None, Err(err)) => {
                    prop_assert!(err.to_string().contains(&format!("[{section}] {name}")), "{err}");
                }
                (expected, result) => prop_assert!(false, "{written:?}: expected {expected:?}, got {result:?}"),
            }
        }

        #[test]
        fn choices_are_exact_words(
            opt in prop::sample::select(
                spec::OPTIONS.iter().filter(|o| matches!(o.kind, spec::Kind::Choice(_))).collect::<Vec<_>>()
            ),
            value in prop_oneof![
                prop::sample::select(vec!["all", "active", "pxe", "present", "added", "none", "swift", "database", "keystone", "noauth"]).prop_map(str::to_string),
                text(),
            ],
        ) {
            let spec::Kind::Choice(choices) = opt.kind else { unreachable!() };
            let written = value.replace(['\n', '\r'], "");
            let result = load(&format!("[{}]\n{} = \"{written}\"\n", opt.section, opt.name));
            let valid = choices.contains(&written.trim());
            prop_assert_eq!(result.is_ok(), valid, "{:?}", result.err());
        }

        #[test]
        fn references_expand_once_as_oslo_does(
            key_parts in prop::collection::vec(part(), 0..5),
            cert_parts in prop::collection::vec(part(), 0..5),
            address_parts in prop::collection::vec(part(), 0..5),
        ) {
            // ssl_key_path has no references; ssl_cert_path may name it; listen_address may
            // name both. A name's value is its own expansion, never scanned again.
            let no_refs = |parts: &[Part]| -> Vec<Part> {
                parts.iter().filter(|p| !matches!(p, Part::Known(..))).cloned().collect()
            };
            let names = ["ssl_key_path", "ssl_cert_path", "listen_address"];
            let (key_text, key_value) = render(&no_refs(&key_parts), &names, &[]);
            let cert_parts: Vec<Part> = cert_parts
                .into_iter()
                .map(|p| match p { Part::Known(_, b) => Part::Known(0, b), p => p })
                .collect();
            let (cert_text, cert_value) = render(&cert_parts, &names, std::slice::from_ref(&key_value));
            let address_parts: Vec<Part> = address_parts
                .into_iter()
                .map(|p| match p { Part::Known(i, b) => Part::Known(i % 2, b), p => p })
                .collect();
            let (address_text, address_value) =
                render(&address_parts, &names, &[key_value.clone(), cert_value.clone()]);
            let text = format!(
                "[DEFAULT]\nssl_key_path = \"{key_text}\"\nssl_cert_path = \"{cert_text}\"\nlisten_address = \"{address_text}\"\n"
            );
            let (c, _) = load(&text).unwrap();
            prop_assert_eq!(c.default.ssl_key_path, key_value);
            prop_assert_eq!(c.default.ssl_cert_path, cert_value);
            prop_assert_eq!(c.default.listen_address, address_value);
        }
    }

    proptest! {
        #[test]
        fn passwords_in_urls_are_noticed(
            user in "[a-z@._-]{0,8}",
            password in "[^\n]{1,12}",
            tail in "[a-z0-9.:-]{0,10}(/[a-z0-9_/?=]{0,10})?",
        ) {
            let with = format!("mysql+pymysql://{user}:{password}@{tail}");
            let without = format!("mysql+pymysql://{}@{tail}", user.replace('@', ""));
            prop_assert!(holds_password(&with), "{with}");
            prop_assert!(!holds_password(&without), "{without}");
        }
    }

    /// The option table itself: unique names, defaults of the declared kind, aliases that
    /// name no current option.
    #[test]
    fn the_option_table_is_consistent() {
        for (i, opt) in spec::OPTIONS.iter().enumerate() {
            assert!(
                spec::OPTIONS[..i]
                    .iter()
                    .all(|o| (o.section, o.name) != (opt.section, opt.name)),
                "[{}] {} twice",
                opt.section,
                opt.name
            );
            if let Some(default) = opt.default {
                let ok = match opt.kind {
                    spec::Kind::Int => default.parse::<i64>().is_ok(),
                    spec::Kind::Bool => oslo::parse_bool(default).is_some(),
                    spec::Kind::Choice(choices) => choices.contains(&default),
                    spec::Kind::Str | spec::Kind::List => true,
                };
                assert!(ok, "[{}] {} default {default:?}", opt.section, opt.name);
            }
            for (section, name) in opt.deprecated {
                assert!(spec::find(section, name).is_none(), "[{section}] {name}");
            }
        }
    }

    #[test]
    fn escaped_dollars_stay_literal() {
        let (c, _) =
            load("[firewall]\nroot_helper = echo $$rootwrap_config \\$rootwrap_config\n").unwrap();
        assert_eq!(
            c.firewall.root_helper,
            "echo $rootwrap_config $rootwrap_config"
        );
        // A referenced value is used as it expands, and not expanded again.
        let (c, _) = load("[DEFAULT]\nrootwrap_config = /etc/$$listen_address\n").unwrap();
        assert_eq!(
            c.firewall.root_helper,
            "sudo ironic-inspector-rootwrap /etc/$listen_address"
        );
        let (c, _) = load("[ironic]\nos_password = pa\\$word\n").unwrap();
        assert_eq!(c.ironic.os_password.expose_secret(), "pa$word");
    }

    #[test]
    fn references_may_name_another_section() {
        let (c, _) = load("[ironic]\nos_auth_url = http://ks:5000\n[keystone_authtoken]\nidentity_uri = ${ironic.os_auth_url}/admin\n[swift]\nos_auth_url = $keystone_authtoken.identity_uri\n").unwrap();
        assert_eq!(c.swift.os_auth_url, "http://ks:5000/admin");
        let (c, _) = load("[firewall]\nroot_helper = sudo rw $rootwrap_config.d\n").unwrap();
        assert_eq!(
            c.firewall.root_helper,
            "sudo rw /etc/ironic-inspector/rootwrap.conf.d"
        );
    }

    #[test]
    fn reference_loops_are_refused() {
        let err = load(
            "[DEFAULT]\nlisten_address = $rootwrap_config\nrootwrap_config = x$listen_address\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("[DEFAULT] listen_address"), "{err}");
        assert!(err.contains("refers back"), "{err}");
        let err = load("[DEFAULT]\nlog_dir = ${log_dir}/x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[DEFAULT] log_dir"), "{err}");
    }

    #[test]
    fn multiplying_references_are_refused() {
        let times16 = |name: &str| format!("${name}").repeat(16);
        let text = format!(
            "[DEFAULT]\nlisten_address = {}\nrootwrap_config = {}\nssl_cert_path = {}\nssl_key_path = {}\nlog_dir = {}\n",
            times16("rootwrap_config"),
            times16("ssl_cert_path"),
            times16("ssl_key_path"),
            times16("log_dir"),
            "x".repeat(100),
        );
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains("longer than"), "{err}");
    }

    #[test]
    fn doubled_signs_are_not_integers() {
        for bad in ["++5", "+-5", "--5", "5+"] {
            let err = load(&format!("[DEFAULT]\ntimeout = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("[DEFAULT] timeout"), "{bad}: {err}");
            // Options this daemon ignores are checked the same way.
            let err = load(&format!("[database]\nconnection_debug = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("[database] connection_debug"), "{bad}: {err}");
        }
        let (c, _) = load("[DEFAULT]\ntimeout = +5\n").unwrap();
        assert_eq!(c.default.timeout, 5);
    }
}
