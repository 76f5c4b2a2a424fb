//! What a database failure means: the one place that reads driver error codes and decides
//! whether trying again can help. Everything else (the start-up retries in
//! [`super::Db::connect`], the transaction retries, the HTTP answer in [`crate::error`])
//! asks [`classify`].
//!
//! Upstream relied on oslo.db, which turned driver exceptions into `DBConnectionError`,
//! `DBDeadlock` and friends; this is our equivalent, for the three drivers we speak.

use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// What a database failure means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The server cannot be reached, is starting or stopping, has too many clients, or
    /// dropped the connection: the same request may work a moment later.
    Unavailable,
    /// The transaction lost a race with another one (deadlock, serialization failure, lock
    /// wait timeout, SQLite still locked after its busy timeout): running the whole
    /// transaction again is the cure.
    Conflict,
    /// The database has no room left to write.
    DiskFull,
    /// The server turned us away for good: wrong credentials, unknown database, missing
    /// privilege, a file that cannot be opened, a URL it cannot use. Retrying cannot help.
    Refused,
    /// Anything else: a bug, unexpected data, a schema that does not match.
    Other,
}

/// Classifies a driver error.
pub fn classify(err: &sqlx::Error) -> Fault {
    match err {
        // The pool gave up waiting for a connection, or a socket failed: the server is
        // away (or the pool is being closed at shutdown).
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Fault::Unavailable,
        sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => Fault::Refused,
        sqlx::Error::Database(db) => classify_database(db.as_ref()),
        _ => Fault::Other,
    }
}

fn classify_database(err: &dyn DatabaseError) -> Fault {
    if let Some(pg) = err.try_downcast_ref::<PgDatabaseError>() {
        return postgres(pg.code());
    }
    if let Some(my) = err.try_downcast_ref::<MySqlDatabaseError>() {
        return mysql(my.number());
    }
    if err.try_downcast_ref::<SqliteError>().is_some() {
        let code = err.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
        return sqlite(code);
    }
    Fault::Other
}

/// PostgreSQL SQLSTATEs (appendix A of its manual).
fn postgres(sqlstate: &str) -> Fault {
    match sqlstate {
        // admin_shutdown, crash_shutdown, cannot_connect_now (starting up),
        // too_many_connections, out_of_memory, io_error, system_error.
        "57P01" | "57P02" | "57P03" | "53300" | "53200" | "58030" | "58000" => Fault::Unavailable,
        // Class 08: connection exceptions.
        s if s.starts_with("08") => Fault::Unavailable,
        // serialization_failure, deadlock_detected, lock_not_available.
        "40001" | "40P01" | "55P03" => Fault::Conflict,
        "53100" => Fault::DiskFull,
        // invalid_authorization_specification, invalid_password, invalid_catalog_name
        // (unknown database), insufficient_privilege.
        "28000" | "28P01" | "3D000" | "42501" => Fault::Refused,
        _ => Fault::Other,
    }
}

/// MySQL and MariaDB server error numbers.
fn mysql(number: u16) -> Fault {
    match number {
        // ER_CON_COUNT_ERROR (too many connections), ER_SERVER_SHUTDOWN, ER_OUT_OF_RESOURCES,
        // ER_ABORTING_CONNECTION, ER_NET_* (read/write errors and timeouts),
        // ER_NEW_ABORTING_CONNECTION, MariaDB's ER_CONNECTION_KILLED, MySQL 8's
        // ER_CLIENT_INTERACTION_TIMEOUT, and the client-side "server has gone away" (2006)
        // and "lost connection" (2013) should a server relay them.
        1040 | 1053 | 1041 | 1152 | 1158..=1161 | 1184 | 1927 | 4031 | 2006 | 2013 => {
            Fault::Unavailable
        }
        // ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK.
        1205 | 1213 => Fault::Conflict,
        // ER_DISK_FULL, ER_RECORD_FILE_FULL (table is full), ER_ERROR_ON_WRITE.
        1021 | 1114 | 1026 => Fault::DiskFull,
        // ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR, ER_BAD_DB_ERROR (unknown
        // database), ER_HOST_IS_BLOCKED, ER_HOST_NOT_PRIVILEGED, ER_NOT_SUPPORTED_AUTH_MODE,
        // ER_ACCESS_DENIED_NO_PASSWORD_ERROR.
        1044 | 1045 | 1049 | 1129 | 1130 | 1251 | 1698 => Fault::Refused,
        _ => Fault::Other,
    }
}

/// SQLite result codes; the driver reports the extended code, whose low byte is the
/// primary one.
fn sqlite(code: i32) -> Fault {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    const AUTH: i32 = 23;
    match code & 0xff {
        BUSY | LOCKED => Fault::Conflict,
        FULL => Fault::DiskFull,
        // A read or write the operating system failed: the disk, not our data.
        IOERR => Fault::Unavailable,
        CANTOPEN | AUTH => Fault::Refused,
        _ => Fault::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&sqlx::Error::Io(refused)), Fault::Unavailable);
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), Fault::Unavailable);
        assert_eq!(classify(&sqlx::Error::PoolClosed), Fault::Unavailable);
        assert_eq!(
            classify(&sqlx::Error::Configuration("bad port".into())),
            Fault::Refused
        );
        assert_eq!(classify(&sqlx::Error::RowNotFound), Fault::Other);
    }

    #[test]
    fn postgres_codes() {
        for (code, fault) in [
            ("57P01", Fault::Unavailable),
            ("57P03", Fault::Unavailable),
            ("08006", Fault::Unavailable),
            ("53300", Fault::Unavailable),
            ("40001", Fault::Conflict),
            ("40P01", Fault::Conflict),
            ("53100", Fault::DiskFull),
            ("28P01", Fault::Refused),
            ("3D000", Fault::Refused),
            ("23505", Fault::Other),
        ] {
            assert_eq!(postgres(code), fault, "{code}");
        }
    }

    #[test]
    fn mysql_numbers() {
        for (number, fault) in [
            (1040, Fault::Unavailable),
            (1053, Fault::Unavailable),
            (1927, Fault::Unavailable),
            (1205, Fault::Conflict),
            (1213, Fault::Conflict),
            (1021, Fault::DiskFull),
            (1114, Fault::DiskFull),
            (1045, Fault::Refused),
            (1049, Fault::Refused),
            (1062, Fault::Other),
        ] {
            assert_eq!(mysql(number), fault, "{number}");
        }
    }

    #[test]
    fn sqlite_codes_use_the_primary_byte() {
        // SQLITE_BUSY_SNAPSHOT (517), SQLITE_IOERR_WRITE (778), SQLITE_CANTOPEN_ISDIR (526).
        assert_eq!(sqlite(5), Fault::Conflict);
        assert_eq!(sqlite(517), Fault::Conflict);
        assert_eq!(sqlite(13), Fault::DiskFull);
        assert_eq!(sqlite(778), Fault::Unavailable);
        assert_eq!(sqlite(526), Fault::Refused);
        assert_eq!(sqlite(2067), Fault::Other);
    }
}
