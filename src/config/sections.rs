//! The section builders: [`Config::from_raw`] reads each section through the resolver, and
//! checks what a type alone cannot: ports that fit in 16 bits, the certificate and key that
//! `use_ssl` needs, the syslog facility, the Keystone credentials upstream took from
//! `[ironic]` first, the `[discoverd] database` fallback and `fatal_deprecations`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::oslo;
use super::resolve::Resolver;
use super::types::{
    AddPorts, AuthStrategy, Config, ConfigError, DatabaseSection, DefaultSection, DiscoverySection,
    FirewallSection, IronicSection, KeepPorts, KeystoneAuthtoken, OsloMiddleware,
    ProcessingSection, SYSLOG_FACILITIES, StoreData, SwiftSection, SyslogFacility,
};

impl Config {
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
                max_request_body_size: r.count(
                    "oslo_middleware",
                    "max_request_body_size",
                    "bytes",
                )?,
            },
            discovery: discovery_section(&mut r)?,
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
        max_connections: r.count("DEFAULT", "max_connections", "connections")?,
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
        hook_timeout: seconds(r.positive("processing", "hook_timeout")?),
        store_data,
        store_data_location: r.optional("processing", "store_data_location"),
        disk_partitioning_spacing: r.boolean("processing", "disk_partitioning_spacing")?,
    })
}

/// Node fields `[discovery] enroll_node_fields` may not set: the hook sets them itself, or
/// Ironic does.
const RESERVED_NODE_FIELDS: &[&str] = &["driver", "driver_info", "uuid", "provision_state"];

fn discovery_section(r: &mut Resolver<'_>) -> Result<DiscoverySection, ConfigError> {
    let driver = r.string("discovery", "enroll_node_driver");
    if driver.trim().is_empty() {
        return Err(Resolver::invalid(
            "discovery",
            "enroll_node_driver",
            &driver,
            "must name an Ironic driver",
        ));
    }
    // oslo's DictOpt: `key:value` pairs, comma-separated; the value may hold colons.
    let mut fields = std::collections::BTreeMap::new();
    for pair in r.list("discovery", "enroll_node_fields") {
        let invalid = |reason: &str| {
            Resolver::invalid("discovery", "enroll_node_fields", &pair, reason.to_string())
        };
        let Some((key, value)) = pair.split_once(':') else {
            return Err(invalid("expected key:value pairs"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid("a field name is empty"));
        }
        if RESERVED_NODE_FIELDS.contains(&key) {
            return Err(invalid(
                "driver, driver_info, uuid and provision_state are set by the enroll hook \
                 (the driver by enroll_node_driver)",
            ));
        }
        fields.insert(key.to_string(), value.trim().to_string());
    }
    Ok(DiscoverySection {
        enroll_node_driver: driver.trim().to_string(),
        enroll_node_fields: fields,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::load;

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
    fn discovery_section_reads_the_driver_and_field_pairs() {
        let (c, _) = load("").unwrap();
        assert_eq!(c.discovery.enroll_node_driver, "ipmi");
        assert!(c.discovery.enroll_node_fields.is_empty());
        let (c, _) = load(
            "[discovery]\nenroll_node_driver = fake-hardware\n\
             enroll_node_fields = resource_class: baremetal , description:a:b\n",
        )
        .unwrap();
        assert_eq!(c.discovery.enroll_node_driver, "fake-hardware");
        let fields: Vec<(&str, &str)> = c
            .discovery
            .enroll_node_fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [("description", "a:b"), ("resource_class", "baremetal")]
        );
        for (bad, reason) in [
            (
                "enroll_node_fields = resource_class",
                "expected key:value pairs",
            ),
            ("enroll_node_fields = :x", "a field name is empty"),
            (
                "enroll_node_fields = driver_info:x",
                "are set by the enroll hook",
            ),
            (
                "enroll_node_fields = driver:ipmi",
                "are set by the enroll hook",
            ),
            ("enroll_node_driver = ", "must name an Ironic driver"),
        ] {
            let err = load(&format!("[discovery]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(reason), "{bad}: {err}");
            assert!(err.contains("[discovery]"), "{bad}: {err}");
        }
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
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use crate::config::load;

    proptest! {
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
    }
}
