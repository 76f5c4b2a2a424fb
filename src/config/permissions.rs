//! The permission check: a config file that holds a password and that every user may read
//! gives a start-up warning. Only Unix has the permission bits; elsewhere nothing is checked.

use std::path::PathBuf;

use super::{oslo, spec};

/// Warns about config files that others can read while they hold a password.
#[cfg(unix)]
pub(super) fn world_readable_secrets(files: &[PathBuf], raw: &oslo::RawConfig) -> Vec<String> {
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
pub(super) fn world_readable_secrets(_files: &[PathBuf], _raw: &oslo::RawConfig) -> Vec<String> {
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
    use proptest::prelude::*;

    use super::*;
    use crate::config::Config;

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
}
