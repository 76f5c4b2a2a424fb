//! `[database] connection`: SQLAlchemy's URL, translated for sqlx, and shown without its
//! password.

use super::{Backend, DbError};

/// A SQLAlchemy URL translated for sqlx.
pub(super) struct Target {
    pub(super) backend: Backend,
    pub(super) url: String,
    pub(super) in_memory: bool,
}

/// Translates a SQLAlchemy URL into the form sqlx reads, and picks the backend.
pub(super) fn translate_url(url: &str) -> Result<Target, DbError> {
    let bad = |why: &str| {
        DbError::Config(format!(
            "cannot use [database] connection {}: {why}",
            redact_url(url)
        ))
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not a URL (expected e.g. sqlite:///inspector.db)"))?;
    // SQLAlchemy names the Python driver after a '+'; sqlx has one driver per backend.
    let dialect = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    match dialect.as_str() {
        "sqlite" => {
            translate_sqlite(rest).ok_or_else(|| bad("expected sqlite:///PATH or sqlite://"))
        }
        "postgresql" | "postgres" | "pgsql" => Ok(Target {
            backend: Backend::Postgres,
            url: format!("postgres://{rest}"),
            in_memory: false,
        }),
        "mysql" | "mariadb" => Ok(Target {
            backend: Backend::MySql,
            // PyMySQL spells the socket option `unix_socket`, sqlx `socket`.
            url: format!(
                "mysql://{}",
                rename_query_key(rest, "unix_socket", "socket")
            ),
            in_memory: false,
        }),
        other => Err(bad(&format!("unsupported database kind {other:?}"))),
    }
}

/// `rest` is what follows `sqlite://`: empty for memory, `/relative.db`, or `//abs.db`.
fn translate_sqlite(rest: &str) -> Option<Target> {
    let (path, _query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == "/" || path == "/:memory:" {
        return Some(Target {
            backend: Backend::Sqlite,
            url: "sqlite::memory:".to_string(),
            in_memory: true,
        });
    }
    // SQLAlchemy: one slash after the authority, then the path as given (relative unless it
    // starts with another slash). sqlx percent-decodes the path, so encode what it would
    // otherwise misread.
    let path = path.strip_prefix('/')?;
    let encoded = path.replace('%', "%25").replace('#', "%23");
    Some(Target {
        backend: Backend::Sqlite,
        url: format!("sqlite:{encoded}?mode=rwc"),
        in_memory: false,
    })
}

/// Renames one key in the query string of a URL tail.
fn rename_query_key(rest: &str, from: &str, to: &str) -> String {
    let Some((base, query)) = rest.split_once('?') else {
        return rest.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if key == from => format!("{to}={value}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// The URL with its password replaced by `***`, for logs and messages. The password is
/// taken as SQLAlchemy 1.0 read it: after the user name (which holds no `:` or `/`) and a
/// `:`, up to the last `@`; so one holding `/`, `?`, `#` or `@` is hidden whole.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (user, after_user) = rest.split_at(rest.find([':', '/']).unwrap_or(rest.len()));
    match after_user
        .strip_prefix(':')
        .and_then(|tail| tail.rsplit_once('@'))
    {
        Some((_password, host)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// `text` with the URL's password, should it appear anywhere, replaced by `***`.
pub(super) fn hide_password(text: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(password) => text.replace(password, "***"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_follow_sqlalchemy() {
        let t = translate_url("sqlite:///inspector.db").unwrap();
        assert_eq!(t.backend, Backend::Sqlite);
        assert_eq!(t.url, "sqlite:inspector.db?mode=rwc");
        let t = translate_url("sqlite:////var/lib/inspector/x.db").unwrap();
        assert_eq!(t.url, "sqlite:/var/lib/inspector/x.db?mode=rwc");
        // SQLAlchemy reads a '?' as the start of the query; '#' and '%' are part of the path.
        let t = translate_url("sqlite:///dir/odd#1%.db?timeout=3").unwrap();
        assert_eq!(t.url, "sqlite:dir/odd%231%25.db?mode=rwc");
        for memory in ["sqlite://", "sqlite:///", "sqlite:///:memory:"] {
            let t = translate_url(memory).unwrap();
            assert!(t.in_memory, "{memory}");
        }
    }

    #[test]
    fn server_urls_drop_the_python_driver() {
        let t = translate_url("mysql+pymysql://u:p@127.0.0.1:3306/db?charset=utf8").unwrap();
        assert_eq!(t.backend, Backend::MySql);
        assert_eq!(t.url, "mysql://u:p@127.0.0.1:3306/db?charset=utf8");
        let t = translate_url("mysql://u:p@localhost/db?unix_socket=/run/m.sock").unwrap();
        assert_eq!(t.url, "mysql://u:p@localhost/db?socket=/run/m.sock");
        let t = translate_url("postgresql+psycopg2://u:p@h/db").unwrap();
        assert_eq!(t.backend, Backend::Postgres);
        assert_eq!(t.url, "postgres://u:p@h/db");
        assert_eq!(
            translate_url("postgresql://u@h:5432/db").unwrap().url,
            "postgres://u@h:5432/db"
        );
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        let err = translate_url("oracle://scott:tiger@h/db").err().unwrap();
        assert!(matches!(err, DbError::Config(_)));
        let msg = err.to_string();
        assert!(msg.contains("oracle"), "{msg}");
        assert!(!msg.contains("tiger"), "{msg}");
        assert!(matches!(
            translate_url("inspector.db"),
            Err(DbError::Config(_))
        ));
    }

    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact_url("mysql+pymysql://user:s3cr@t@db.example:3306/insp?charset=utf8"),
            "mysql+pymysql://user:***@db.example:3306/insp?charset=utf8"
        );
        assert_eq!(
            redact_url("postgresql://user@h/db"),
            "postgresql://user@h/db"
        );
        assert_eq!(redact_url("sqlite:////tmp/x.db"), "sqlite:////tmp/x.db");
        assert_eq!(redact_url("not a url"), "not a url");
        // Found by the property tests: a password holding '/', '?' or '#' was shown whole.
        assert_eq!(
            redact_url("mysql://u:pa/ss#w?rd@h/db"),
            "mysql://u:***@h/db"
        );
        assert_eq!(
            redact_url("postgresql://u@h:5432/db"),
            "postgresql://u@h:5432/db"
        );
    }
}

#[cfg(test)]
mod url_properties {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::text;

    fn scheme() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "mysql",
            "mysql+pymysql",
            "postgresql",
            "postgresql+psycopg2",
            "sqlite",
            "oracle",
            "MySQL",
        ])
    }

    /// A password that appears nowhere else in the URL: any text around a marker.
    fn password() -> impl Strategy<Value = String> {
        (text(), text()).prop_map(|(a, b)| format!("{a}\u{1F511}{b}"))
    }

    /// What follows the `@`: host, port, database, query (no `@`).
    fn host_tail() -> impl Strategy<Value = String> {
        (
            "[a-z0-9.-]{0,12}",
            prop::option::of(0u16..),
            "(/[a-z0-9_./]{0,10})?",
            "(\\?[a-z_]{1,8}=[a-z0-9/]{0,8})?",
        )
            .prop_map(|(host, port, db, query)| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{host}{port}{db}{query}")
            })
    }

    proptest! {
        #[test]
        fn redacted_urls_never_hold_the_password(
            scheme in scheme(),
            user in "[a-z@._-]{0,8}",
            password in password(),
            tail in host_tail(),
            at_in_tail in any::<bool>(),
        ) {
            let tail = if at_in_tail { format!("{tail}?x=a@b") } else { tail };
            let url = format!("{scheme}://{user}:{password}@{tail}");
            let shown = redact_url(&url);
            prop_assert!(!shown.contains('\u{1F511}'), "{shown}");
            if !at_in_tail {
                prop_assert_eq!(shown, format!("{scheme}://{user}:***@{tail}"));
            }
            // Errors about the URL show it redacted.
            if let Err(err) = translate_url(&url) {
                prop_assert!(!err.to_string().contains('\u{1F511}'), "{err}");
            }
        }

        #[test]
        fn urls_without_a_password_are_shown_as_they_are(
            scheme in scheme(),
            user in prop::option::of("[a-z._-]{1,8}"),
            tail in host_tail(),
        ) {
            let url = match user {
                Some(user) => format!("{scheme}://{user}@{tail}"),
                None => format!("{scheme}://{tail}"),
            };
            prop_assert_eq!(redact_url(&url), url);
        }

        #[test]
        fn translation_never_panics(url in prop_oneof![text(), (scheme(), text()).prop_map(|(s, t)| format!("{s}://{t}"))]) {
            if let Ok(target) = translate_url(&url) {
                let expected = ["sqlite:", "postgres://", "mysql://"];
                prop_assert!(expected.iter().any(|p| target.url.starts_with(p)), "{}", target.url);
            }
            let _ = redact_url(&url);
        }

        #[test]
        fn sqlite_paths_keep_every_character(path in "[^?]{1,20}", absolute in any::<bool>()) {
            prop_assume!(path != ":memory:" && !path.starts_with('/'));
            let url = if absolute { format!("sqlite:////{path}") } else { format!("sqlite:///{path}") };
            let target = translate_url(&url).unwrap();
            prop_assert_eq!(target.backend, Backend::Sqlite);
            let encoded = target.url.strip_prefix("sqlite:").unwrap().strip_suffix("?mode=rwc").unwrap();
            let decoded = encoded.replace("%23", "#").replace("%25", "%");
            let expected = if absolute { format!("/{path}") } else { path.clone() };
            prop_assert_eq!(decoded, expected);
        }
    }
}
