//! The table of every option we read or accept: section, name, type, default, aliases.
//!
//! Mirrors the options registered by upstream 2.2.x (`conf.py`, `common/swift.py`) and by the
//! libraries it used (oslo.log, oslo.db, keystonemiddleware), plus the few of our own
//! (marked in their help). `example.conf` documents exactly this table; a test checks that.

/// The type of an option's value.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Free text (after `$name` interpolation).
    Str,
    /// A decimal integer.
    Int,
    /// oslo's boolean words.
    Bool,
    /// Comma-separated list.
    List,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
}

/// One option.
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    /// Section (`DEFAULT` or a group name).
    pub section: &'static str,
    /// Option name.
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Default as it would be written in the file; `None` means "unset".
    pub default: Option<&'static str>,
    /// Older (section, name) spellings still read, with a warning.
    pub deprecated: &'static [(&'static str, &'static str)],
    /// Holds a password or key: never logged, and a world-readable file holding it is warned about.
    pub secret: bool,
    /// Accepted for compatibility, but this daemon does not act on it.
    pub ignored: bool,
    /// An ignored option whose setting changes what an operator expects to see (the Python
    /// logging formats): setting it gives a start-up warning, not only a debug line.
    pub warn_when_set: bool,
    /// One line of help, in our words.
    pub help: &'static str,
}

const NO_ALIASES: &[(&str, &str)] = &[];

const fn opt(
    section: &'static str,
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    help: &'static str,
) -> Opt {
    Opt {
        section,
        name,
        kind,
        default,
        deprecated: NO_ALIASES,
        secret: false,
        ignored: false,
        warn_when_set: false,
        help,
    }
}

impl Opt {
    const fn dep(mut self, aliases: &'static [(&'static str, &'static str)]) -> Opt {
        self.deprecated = aliases;
        self
    }
    const fn secret(mut self) -> Opt {
        self.secret = true;
        self
    }
    const fn ignored(mut self) -> Opt {
        self.ignored = true;
        self
    }
    /// Ignored, with a start-up warning when set.
    const fn unapplied(mut self) -> Opt {
        self.ignored = true;
        self.warn_when_set = true;
        self
    }
}

use Kind::{Bool, Choice, Int, List, Str};

macro_rules! discoverd {
    ($name:literal) => {
        &[("discoverd", $name)]
    };
}

/// Values of `[processing] add_ports`.
pub const ADD_PORTS: &[&str] = &["all", "active", "pxe"];
/// Values of `[processing] keep_ports`.
pub const KEEP_PORTS: &[&str] = &["all", "present", "added"];
/// Values of `[processing] store_data`.
pub const STORE_DATA: &[&str] = &["none", "swift", "database"];
/// Values of the two `auth_strategy` options.
pub const AUTH_STRATEGIES: &[&str] = &["keystone", "noauth"];

/// Every option, grouped by section in the order `example.conf` documents them.
pub const OPTIONS: &[Opt] = &[
    // [DEFAULT]: the service.
    opt("DEFAULT", "listen_address", Str, Some("0.0.0.0"), "IP address the API listens on.").dep(discoverd!("listen_address")),
    opt("DEFAULT", "listen_port", Int, Some("5050"), "TCP port the API listens on.").dep(discoverd!("listen_port")),
    opt("DEFAULT", "auth_strategy", Choice(AUTH_STRATEGIES), Some("keystone"), "How API callers are checked: keystone (token with role admin) or noauth (anyone)."),
    opt("DEFAULT", "authenticate", Bool, None, "Deprecated: when set, true means auth_strategy = keystone and false means noauth.").dep(discoverd!("authenticate")),
    opt("DEFAULT", "timeout", Int, Some("3600"), "Seconds before an unfinished introspection is failed; 0 or less turns timeouts and the clean-up loop off.").dep(discoverd!("timeout")),
    opt("DEFAULT", "node_status_keep_time", Int, Some("604800"), "Seconds the status of a finished introspection is kept.").dep(discoverd!("node_status_keep_time")),
    opt("DEFAULT", "clean_up_period", Int, Some("60"), "Seconds between runs of the clean-up loop (timeouts, old statuses, nodes gone from Ironic).").dep(discoverd!("clean_up_period")),
    opt("DEFAULT", "public_endpoint", Str, Some(""), "URL clients use to reach this API, for the links of GET / and GET /v1 behind a proxy (ours); empty builds them from each request."),
    opt("DEFAULT", "use_ssl", Bool, Some("false"), "Serve the API over HTTPS."),
    opt("DEFAULT", "ssl_cert_path", Str, Some(""), "PEM certificate (chain) for HTTPS."),
    opt("DEFAULT", "ssl_key_path", Str, Some(""), "PEM private key for HTTPS."),
    opt("DEFAULT", "max_connections", Int, Some("500"), "Most client connections served at once (ours). At the limit the daemon first closes connections that wait between requests; others wait in the listen backlog until a connection ends."),
    opt("DEFAULT", "client_header_timeout", Int, Some("30"), "Seconds a client has to send a request line and headers, from the moment it connects (after TLS) or starts its next request; then the connection is closed (ours)."),
    opt("DEFAULT", "client_body_timeout", Int, Some("60"), "Seconds a client has to send a whole request body once the daemon reads it; a slower body is answered 408 and the connection closed (ours)."),
    opt("DEFAULT", "keepalive_timeout", Int, Some("60"), "Seconds a kept-alive connection may wait for its next request before it is closed; 0 closes every connection after one request (ours)."),
    opt("DEFAULT", "tls_handshake_timeout", Int, Some("10"), "Seconds a client has to complete the TLS handshake when use_ssl is set (ours)."),
    opt("DEFAULT", "max_concurrency", Int, Some("1000"), "Most background introspection tasks run at once."),
    opt("DEFAULT", "introspection_delay", Int, Some("5"), "Least seconds between two reboots of nodes whose driver matches introspection_delay_drivers."),
    opt("DEFAULT", "introspection_delay_drivers", Str, Some("^.*_ssh$"), "Regular expression over the driver name, matched from its start."),
    opt("DEFAULT", "ipmi_address_fields", List, Some("ilo_address,drac_host,cimc_address"), "driver_info keys tried, after ipmi_address, for the BMC address."),
    opt("DEFAULT", "rootwrap_config", Str, Some("/etc/ironic-inspector/rootwrap.conf"), "Configuration file handed to ironic-inspector-rootwrap."),
    // [DEFAULT]: logging (oslo.log names). As oslo.log did in 2.2: the log goes to the file
    // (log_file, or log_dir alone), to standard error when use_stderr is set (also with a
    // file), to standard output when neither, and to syslog as well when use_syslog is set.
    opt("DEFAULT", "debug", Bool, Some("false"), "Log at debug level, and add the cause to 500 answers."),
    opt("DEFAULT", "verbose", Bool, Some("true"), "Log at info level (otherwise warnings only), unless debug is set."),
    opt("DEFAULT", "log_config_append", Str, None, "Python logging configuration file; accepted, not applied (a start-up warning says so): the options below set where the log goes.").unapplied(),
    opt("DEFAULT", "log_format", Str, None, "Python log format; accepted, not applied (a start-up warning says so).").unapplied(),
    opt("DEFAULT", "log_date_format", Str, Some("%Y-%m-%d %H:%M:%S"), "Python date format; accepted, not applied (a start-up warning says so): times are written in UTC, RFC 3339.").unapplied(),
    opt("DEFAULT", "log_file", Str, None, "Append the log to this file (relative: to log_dir). It is created when missing, and closed and opened again on SIGHUP, so logrotate can move it away."),
    opt("DEFAULT", "log_dir", Str, None, "Directory of the log: a relative log_file is taken from it; without log_file the log goes to <log_dir>/<program>.log (ironic-inspector.log)."),
    opt("DEFAULT", "use_syslog", Bool, Some("false"), "Also send the log to the local syslog socket /dev/log, one datagram per line."),
    opt("DEFAULT", "use_syslog_rfc_format", Bool, Some("true"), "Syslog messages start with the program name and pid (ironic-inspector[pid]:); false leaves them out (deprecated in 2.2)."),
    opt("DEFAULT", "syslog_log_facility", Str, Some("LOG_USER"), "Syslog facility: LOG_USER, LOG_DAEMON, LOG_LOCAL0 to LOG_LOCAL7... (case and the LOG_ prefix do not matter)."),
    opt("DEFAULT", "use_stderr", Bool, Some("true"), "Log to standard error, also when log_file, log_dir or use_syslog is set; when false and no file is set, the log goes to standard output."),
    opt("DEFAULT", "logging_context_format_string", Str, None, "Python log format; accepted, not applied (a start-up warning says so).").unapplied(),
    opt("DEFAULT", "logging_default_format_string", Str, None, "Python log format; accepted, not applied (a start-up warning says so).").unapplied(),
    opt("DEFAULT", "logging_debug_format_suffix", Str, None, "Python log format; accepted, not applied (a start-up warning says so).").unapplied(),
    opt("DEFAULT", "logging_exception_prefix", Str, None, "Python log format; accepted, not applied (a start-up warning says so).").unapplied(),
    opt("DEFAULT", "default_log_levels", List, None, "Python logger levels; accepted, not applied (a start-up warning says so): RUST_LOG sets levels per module.").unapplied(),
    opt("DEFAULT", "publish_errors", Bool, Some("false"), "Sends errors to a message queue; accepted, not applied (a start-up warning says so).").unapplied(),
    opt("DEFAULT", "instance_format", Str, None, "Python log format; accepted, not applied (a start-up warning says so).").unapplied(),
    opt("DEFAULT", "instance_uuid_format", Str, None, "Python log format; accepted, not applied (a start-up warning says so).").unapplied(),
    opt("DEFAULT", "fatal_deprecations", Bool, Some("false"), "Stop at start-up when a deprecated option is used."),
    // [database] (oslo.db names).
    opt("database", "connection", Str, None, "SQLAlchemy URL of the database: sqlite:///relative.db, sqlite:////absolute.db, mysql+pymysql://user:pass@host/db or postgresql://user:pass@host/db.").dep(&[("DEFAULT", "sql_connection"), ("DATABASE", "sql_connection"), ("sql", "connection")]).secret(),
    opt("database", "slave_connection", Str, None, "Read-only replica URL; accepted, not used.").secret().ignored(),
    opt("database", "sqlite_db", Str, Some("oslo.sqlite"), "Deprecated by oslo.db; accepted, not used.").ignored(),
    opt("database", "sqlite_synchronous", Bool, Some("true"), "SQLite waits for the disk on every commit (synchronous FULL); false trades safety for speed."),
    opt("database", "backend", Str, Some("sqlalchemy"), "Accepted, not used.").ignored(),
    opt("database", "mysql_sql_mode", Str, Some("TRADITIONAL"), "sql_mode set on MySQL connections."),
    opt("database", "idle_timeout", Int, Some("3600"), "Seconds an idle pooled connection is kept."),
    opt("database", "min_pool_size", Int, Some("1"), "Connections the pool keeps open."),
    opt("database", "max_pool_size", Int, None, "Most pooled connections (unset: 10 for servers, 5 for SQLite)."),
    opt("database", "max_retries", Int, Some("10"), "Retries at start-up of a database that cannot be reached (a refused login or an unknown database fails at once); -1 retries forever."),
    opt("database", "retry_interval", Int, Some("10"), "Seconds between those retries."),
    opt("database", "max_overflow", Int, None, "Accepted, not used.").ignored(),
    opt("database", "connection_debug", Int, Some("0"), "Accepted, not used.").ignored(),
    opt("database", "connection_trace", Bool, Some("false"), "Accepted, not used.").ignored(),
    opt("database", "pool_timeout", Int, None, "Seconds to wait for a pooled connection (unset: 30); also how long a request waits for an unreachable database before its 503."),
    opt("database", "use_db_reconnect", Bool, Some("false"), "Accepted, not used: the pool reconnects by itself.").ignored(),
    opt("database", "db_retry_interval", Int, Some("1"), "Accepted, not used.").ignored(),
    opt("database", "db_inc_retry_interval", Bool, Some("true"), "Accepted, not used.").ignored(),
    opt("database", "db_max_retry_interval", Int, Some("10"), "Accepted, not used.").ignored(),
    opt("database", "db_max_retries", Int, Some("20"), "Accepted, not used.").ignored(),
    // [discoverd]: the name of the project before it was renamed.
    opt("discoverd", "database", Str, Some(""), "Deprecated: path of an SQLite database, used when [database] connection is unset."),
    // [firewall].
    opt("firewall", "manage_firewall", Bool, Some("true"), "Keep an iptables chain that lets only nodes under introspection reach our DHCP server.").dep(discoverd!("manage_firewall")),
    opt("firewall", "dnsmasq_interface", Str, Some("br-ctlplane"), "Interface the introspection DHCP server listens on.").dep(discoverd!("dnsmasq_interface")),
    opt("firewall", "firewall_update_period", Int, Some("15"), "Seconds between periodic firewall refreshes.").dep(discoverd!("firewall_update_period")),
    opt("firewall", "firewall_chain", Str, Some("ironic-inspector"), "Name of our iptables chain."),
    opt("firewall", "root_helper", Str, Some("sudo ironic-inspector-rootwrap $rootwrap_config"), "Command prefix that runs iptables and iptables-restore as root, split on whitespace (no shell); empty runs them directly (as root, or with CAP_NET_ADMIN and CAP_NET_RAW). Ours; 2.2 always used the default."),
    // [ironic].
    opt("ironic", "os_auth_url", Str, Some(""), "Keystone URL for the service credentials below.").dep(discoverd!("os_auth_url")),
    opt("ironic", "os_username", Str, Some(""), "Service user name for Ironic (and for checking API tokens).").dep(discoverd!("os_username")),
    opt("ironic", "os_password", Str, Some(""), "Password of that user.").dep(discoverd!("os_password")).secret(),
    opt("ironic", "os_tenant_name", Str, Some(""), "Tenant (project) of that user.").dep(discoverd!("os_tenant_name")),
    opt("ironic", "identity_uri", Str, Some(""), "Deprecated: Keystone admin URL; use [keystone_authtoken] identity_uri.").dep(discoverd!("identity_uri")),
    opt("ironic", "auth_strategy", Choice(AUTH_STRATEGIES), Some("keystone"), "How we reach Ironic: keystone (catalog and token) or noauth (ironic_url)."),
    opt("ironic", "ironic_url", Str, Some("http://localhost:6385/"), "Ironic API URL, used when [ironic] auth_strategy = noauth."),
    opt("ironic", "os_service_type", Str, Some("baremetal"), "Service type of Ironic in the Keystone catalog."),
    opt("ironic", "os_endpoint_type", Str, Some("internalURL"), "Endpoint type of Ironic in the Keystone catalog."),
    opt("ironic", "retry_interval", Int, Some("2"), "Seconds between retries of an Ironic call that hit a locked node (409) or an unavailable Ironic."),
    opt("ironic", "max_retries", Int, Some("30"), "Retries of such a call."),
    opt("ironic", "connect_timeout", Int, Some("10"), "Seconds to wait for a connection to Ironic (ours; 2.2 waited as long as the system did)."),
    opt("ironic", "request_timeout", Int, Some("60"), "Seconds one Ironic request may take before it counts as failed (ours)."),
    // [keystone_authtoken] (keystonemiddleware names).
    opt("keystone_authtoken", "auth_uri", Str, None, "Public Keystone URL (v2.0 or v3); used when identity_uri is unset."),
    opt("keystone_authtoken", "auth_version", Str, None, "Accepted, not used: tokens are checked with the v3 API.").ignored(),
    opt("keystone_authtoken", "delay_auth_decision", Bool, Some("false"), "Accepted, not used: protected endpoints always decide.").ignored(),
    opt("keystone_authtoken", "http_connect_timeout", Int, None, "Seconds to wait for a connection to Keystone (unset: 5)."),
    opt("keystone_authtoken", "http_request_max_retries", Int, Some("3"), "Retries of a Keystone request that could not connect."),
    opt("keystone_authtoken", "cache", Str, None, "Accepted, not used: tokens are cached in memory.").ignored(),
    opt("keystone_authtoken", "certfile", Str, None, "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "keyfile", Str, None, "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "cafile", Str, None, "CA bundle for Keystone's certificate."),
    opt("keystone_authtoken", "insecure", Bool, Some("false"), "Do not verify Keystone's certificate."),
    opt("keystone_authtoken", "region_name", Str, None, "Region of the identity endpoint."),
    opt("keystone_authtoken", "signing_dir", Str, None, "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "memcached_servers", List, None, "Accepted, not used: tokens are cached in memory.").ignored(),
    opt("keystone_authtoken", "token_cache_time", Int, Some("300"), "Seconds a checked token is trusted before Keystone is asked again."),
    opt("keystone_authtoken", "revocation_cache_time", Int, Some("10"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "memcache_security_strategy", Str, None, "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "memcache_secret_key", Str, None, "Accepted, not used.").secret().ignored(),
    opt("keystone_authtoken", "memcache_pool_dead_retry", Int, Some("300"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "memcache_pool_maxsize", Int, Some("10"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "memcache_pool_socket_timeout", Int, Some("3"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "memcache_pool_unused_timeout", Int, Some("60"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "memcache_pool_conn_get_timeout", Int, Some("10"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "memcache_use_advanced_pool", Bool, Some("false"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "include_service_catalog", Bool, Some("true"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "enforce_token_bind", Str, Some("permissive"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "check_revocations_for_cached", Bool, Some("false"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "hash_algorithms", List, Some("md5"), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "auth_admin_prefix", Str, Some(""), "Accepted, not used.").ignored(),
    opt("keystone_authtoken", "auth_host", Str, Some("127.0.0.1"), "Accepted, not used: set identity_uri.").ignored(),
    opt("keystone_authtoken", "auth_port", Int, Some("35357"), "Accepted, not used: set identity_uri.").ignored(),
    opt("keystone_authtoken", "auth_protocol", Str, Some("https"), "Accepted, not used: set identity_uri.").ignored(),
    opt("keystone_authtoken", "identity_uri", Str, None, "Keystone URL used to check API tokens (admin endpoint)."),
    opt("keystone_authtoken", "admin_token", Str, None, "Accepted, not used: tokens are checked with the service user below.").secret().ignored(),
    opt("keystone_authtoken", "admin_user", Str, None, "Service user that checks API tokens ([ironic] os_username wins when set)."),
    opt("keystone_authtoken", "admin_password", Str, None, "Its password ([ironic] os_password wins when set).").secret(),
    opt("keystone_authtoken", "admin_tenant_name", Str, Some("admin"), "Its tenant ([ironic] os_tenant_name wins when set)."),
    // Later keystonemiddleware spelled the service credentials as an auth plugin's options.
    opt("keystone_authtoken", "auth_type", Str, None, "Auth plugin name; only password credentials are supported."),
    opt("keystone_authtoken", "auth_plugin", Str, None, "Older name of auth_type."),
    opt("keystone_authtoken", "auth_url", Str, None, "Keystone URL of the password plugin; used when identity_uri is unset."),
    opt("keystone_authtoken", "www_authenticate_uri", Str, None, "Later name of auth_uri."),
    opt("keystone_authtoken", "username", Str, None, "Password plugin user; used when admin_user is unset."),
    opt("keystone_authtoken", "password", Str, None, "Password plugin password; used when admin_password is unset.").secret(),
    opt("keystone_authtoken", "project_name", Str, None, "Password plugin project; used when admin_tenant_name is not set explicitly."),
    opt("keystone_authtoken", "user_domain_name", Str, None, "Domain of the user (unset: Default)."),
    opt("keystone_authtoken", "project_domain_name", Str, None, "Domain of the project (unset: Default)."),
    // [processing].
    opt("processing", "add_ports", Choice(ADD_PORTS), Some("pxe"), "Which NICs become Ironic ports: all, active (those with an IP) or pxe (the boot NIC; active when unknown).").dep(discoverd!("add_ports")),
    opt("processing", "keep_ports", Choice(KEEP_PORTS), Some("all"), "Which existing ports survive: all, present (NICs the ramdisk saw) or added (only those added now).").dep(discoverd!("keep_ports")),
    opt("processing", "overwrite_existing", Bool, Some("true"), "Overwrite node properties that are already set.").dep(discoverd!("overwrite_existing")),
    opt("processing", "enable_setting_ipmi_credentials", Bool, Some("false"), "Allow new IPMI credentials to be set through introspection.").dep(discoverd!("enable_setting_ipmi_credentials")),
    opt("processing", "default_processing_hooks", Str, Some("ramdisk_error,root_disk_selection,scheduler,validate_interfaces"), "The base set of processing hooks; change only if you know why."),
    opt("processing", "processing_hooks", Str, Some("$default_processing_hooks"), "Processing hooks to run, in order; $default_processing_hooks stands for the base set.").dep(discoverd!("processing_hooks")),
    opt("processing", "ramdisk_logs_dir", Str, None, "Directory where logs sent by the ramdisk are written.").dep(discoverd!("ramdisk_logs_dir")),
    opt("processing", "always_store_ramdisk_logs", Bool, Some("false"), "Write ramdisk logs even when the ramdisk reports no error.").dep(discoverd!("always_store_ramdisk_logs")),
    opt("processing", "node_not_found_hook", Str, None, "Hook run when no node matches the ramdisk's data."),
    opt("processing", "hook_timeout", Int, Some("30"), "Seconds an external hook (exec:/path, see PLUGINS.md) may run before it is killed and fails (ours)."),
    opt("processing", "store_data", Choice(STORE_DATA), Some("none"), "Where processed introspection data is kept: none, swift, or database (ours: our own database, no Swift needed)."),
    opt("processing", "store_data_location", Str, None, "Key of the node's extra that receives the name of the stored object."),
    opt("processing", "disk_partitioning_spacing", Bool, Some("true"), "Leave 1 GiB of the root disk for partitioning when computing local_gb."),
    // [swift].
    opt("swift", "max_retries", Int, Some("2"), "Retries of a failed Swift request."),
    opt("swift", "delete_after", Int, Some("0"), "Seconds after which Swift removes stored objects; 0 keeps them."),
    opt("swift", "container", Str, Some("ironic-inspector"), "Container for stored objects."),
    opt("swift", "username", Str, Some(""), "User for Swift."),
    opt("swift", "password", Str, Some(""), "Its password.").secret(),
    opt("swift", "tenant_name", Str, Some(""), "Its tenant."),
    opt("swift", "os_auth_version", Str, Some("2"), "Keystone API version for these credentials."),
    opt("swift", "os_auth_url", Str, Some(""), "Keystone URL for these credentials."),
    opt("swift", "os_service_type", Str, Some("object-store"), "Service type of Swift in the catalog."),
    opt("swift", "os_endpoint_type", Str, Some("internalURL"), "Endpoint type of Swift in the catalog."),
    // [discovery]: the enroll node-not-found hook (the section of upstream's later releases).
    opt("discovery", "enroll_node_driver", Str, Some("ipmi"), "Driver (hardware type) of the nodes the enroll hook creates for machines Ironic does not know."),
    opt("discovery", "enroll_node_fields", List, Some(""), "More fields for the nodes the enroll hook creates, as key:value pairs (e.g. resource_class:baremetal,power_interface:ipmitool); values are strings."),
    // [oslo_middleware]: ours, named as other OpenStack services name it.
    opt("oslo_middleware", "max_request_body_size", Int, Some("16777216"), "Largest request body accepted, in bytes (ours; a ramdisk's data with logs must fit)."),
];

/// The option `section.name`, if we know it.
pub fn find(section: &str, name: &str) -> Option<&'static Opt> {
    OPTIONS
        .iter()
        .find(|o| o.section == section && o.name == name)
}

/// Whether `section.name` is a deprecated spelling of a known option.
pub fn is_alias(section: &str, name: &str) -> bool {
    OPTIONS
        .iter()
        .any(|o| o.deprecated.iter().any(|&(s, n)| s == section && n == name))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{AuthStrategy, Config, oslo, spec};

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
