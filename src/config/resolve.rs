//! The option resolver: one option's value out of the layered files, as oslo.config found it.
//!
//! The file's value, else a deprecated spelling's (with a warning), else the default from
//! [`spec::OPTIONS`]; `$name` references expanded; then parsed into its type. An invalid
//! value is reported with its section and option, and a secret's value as `***`. Every
//! option that was written is type-checked, used or not; unknown ones become warnings.

use std::cell::RefCell;

use secrecy::SecretString;

use super::types::ConfigError;
use super::{oslo, spec};

/// Longest text a value may grow to through `$name` references. References that multiply
/// (`a = $b$b`, `b = $c$c`, ...) would otherwise fill memory at start-up.
const MAX_INTERPOLATED_LEN: usize = 1 << 20;

/// Reads values out of the layered files according to [`spec::OPTIONS`].
pub(super) struct Resolver<'a> {
    pub(super) raw: &'a oslo::RawConfig,
    pub(super) warnings: Vec<String>,
    /// The first value whose `$name` references could not be resolved (a loop, or a value
    /// that grows too long); reported once every option was read.
    pub(super) unresolvable: Option<ConfigError>,
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

    pub(super) fn invalid(
        section: &str,
        name: &str,
        value: &str,
        reason: impl Into<String>,
    ) -> ConfigError {
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

    pub(super) fn string(&mut self, section: &str, name: &str) -> String {
        self.text(section, name).unwrap_or_default()
    }

    /// A string option where unset and empty both mean "none".
    pub(super) fn optional(&mut self, section: &str, name: &str) -> Option<String> {
        self.text(section, name).filter(|v| !v.trim().is_empty())
    }

    pub(super) fn secret(&mut self, section: &str, name: &str) -> SecretString {
        SecretString::from(self.string(section, name))
    }

    pub(super) fn int(&mut self, section: &str, name: &str) -> Result<i64, ConfigError> {
        let value = self.string(section, name);
        // Python's int(): surrounding blanks and one sign (`str::parse` takes a `+` too).
        value
            .trim()
            .parse::<i64>()
            .map_err(|_| Self::invalid(section, name, &value, "not an integer"))
    }

    pub(super) fn positive(&mut self, section: &str, name: &str) -> Result<i64, ConfigError> {
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

    /// A positive number of `what` (connections, bytes) that fits in a `usize`.
    pub(super) fn count(
        &mut self,
        section: &str,
        name: &str,
        what: &str,
    ) -> Result<usize, ConfigError> {
        let value = self.int(section, name)?;
        usize::try_from(value)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                Self::invalid(
                    section,
                    name,
                    &value.to_string(),
                    format!("must be a positive number of {what}"),
                )
            })
    }

    pub(super) fn optional_int(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<Option<i64>, ConfigError> {
        match self.optional(section, name) {
            None => Ok(None),
            Some(_) => self.int(section, name).map(Some),
        }
    }

    pub(super) fn boolean(&mut self, section: &str, name: &str) -> Result<bool, ConfigError> {
        Ok(self.optional_bool(section, name)?.unwrap_or(false))
    }

    pub(super) fn optional_bool(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<Option<bool>, ConfigError> {
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

    pub(super) fn list(&mut self, section: &str, name: &str) -> Vec<String> {
        oslo::parse_list(&self.string(section, name))
    }

    pub(super) fn choice(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<&'static str, ConfigError> {
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
    pub(super) fn check_all_written(&mut self) -> Result<(), ConfigError> {
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use crate::config::load;

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

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use crate::config::oslo::properties::{Part, part, render};
    use crate::config::{ConfigError, load, oslo, spec};
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
}
