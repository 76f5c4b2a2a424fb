//! `ramdisk_error`: stores the logs the ramdisk sent and turns its reported error into a
//! processing failure.
//!
//! Ports `RamdiskErrorHook` of `ironic_inspector/plugins/standard.py`.
//! It runs before the lookup, so even an unknown node's logs are kept. `logs` stays in
//! the data, as upstream.
//!
//! Departures: the BMC address is made safe for a file name (upstream pasted whatever the
//! ramdisk sent into the path); base64 is decoded leniently like Python's `b64decode`
//! (characters outside the alphabet, such as line breaks, are skipped).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;

use super::ProcessingHook;
use crate::data::IntrospectionData;
use crate::error::{Error, Result};
use crate::utc::UtcDateTime;

/// The `ramdisk_error` hook.
#[derive(Clone, Debug)]
pub struct RamdiskError {
    /// `[processing] ramdisk_logs_dir`.
    logs_dir: Option<PathBuf>,
    /// `[processing] always_store_ramdisk_logs`.
    always_store: bool,
}

impl RamdiskError {
    /// The hook with `[processing] ramdisk_logs_dir` and `always_store_ramdisk_logs`.
    pub fn new(logs_dir: Option<PathBuf>, always_store: bool) -> RamdiskError {
        RamdiskError {
            logs_dir,
            always_store,
        }
    }

    /// Writes the decoded logs to `<dir>/bmc_<address>_<UTC time>`, creating the folder.
    async fn store_logs(&self, logs: &str, bmc_address: Option<&str>) -> Result<()> {
        let Some(dir) = &self.logs_dir else {
            tracing::warn!(
                "Failed to store logs received from the ramdisk because ramdisk_logs_dir \
                 configuration option is not set"
            );
            return Ok(());
        };
        let bytes = decode_base64(logs)
            .ok_or_else(|| Error::internal("LogsDecodeError", "ramdisk logs are not base64"))?;
        let path = dir.join(log_file_name(bmc_address, SystemTime::now()));
        write_file(dir, &path, &bytes).await.map_err(|err| {
            Error::internal(
                "LogsWriteError",
                format!("cannot write {}: {err}", path.display()),
            )
        })?;
        tracing::info!(path = %path.display(), "ramdisk logs stored");
        Ok(())
    }
}

#[async_trait]
impl ProcessingHook for RamdiskError {
    fn name(&self) -> &'static str {
        "ramdisk_error"
    }

    async fn before_processing(&self, data: &mut IntrospectionData) -> Result<()> {
        let error = data.get_str("error").filter(|e| !e.is_empty());
        if let Some(logs) = data.get_str("logs").filter(|l| !l.is_empty())
            && (error.is_some() || self.always_store)
        {
            self.store_logs(logs, data.ipmi_address()).await?;
        }
        match error {
            Some(error) => Err(Error::BadRequest(format!(
                "Ramdisk reported error: {error}"
            ))),
            None => Ok(()),
        }
    }
}

async fn write_file(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    tokio::fs::write(path, bytes).await
}

/// `bmc_<address or unknown>_<UTC %Y.%m.%d_%H.%M.%S_%f>`. Characters of the address other
/// than letters, digits, `.`, `:`, `-` and `_` become `_`, so it cannot leave the folder.
pub fn log_file_name(bmc_address: Option<&str>, now: SystemTime) -> String {
    let address: String = bmc_address
        .unwrap_or("unknown")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("bmc_{address}_{}", utc_timestamp(now))
}

/// `%Y.%m.%d_%H.%M.%S_%f` in UTC (microseconds, six digits).
fn utc_timestamp(now: SystemTime) -> String {
    let t = UtcDateTime::from_system_time(now);
    format!(
        "{:04}.{:02}.{:02}_{:02}.{:02}.{:02}_{:06}",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros
    )
}

/// Decodes base64 as Python's `base64.b64decode` without `validate`: characters outside
/// the alphabet (line breaks, spaces) are skipped, decoding stops at padding. `None` when
/// the data ends with a lone sextet (Python: "Incorrect padding").
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut buffer: u32 = 0;
    let mut count = 0u32;
    for byte in text.bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' if count % 4 >= 2 => break,
            _ => continue,
        };
        buffer = (buffer << 6) | u32::from(sextet);
        count += 1;
        if count.is_multiple_of(4) {
            out.extend_from_slice(&buffer.to_be_bytes()[1..]);
            buffer = 0;
        }
    }
    match count % 4 {
        0 => {}
        2 => out.push((buffer >> 4) as u8),
        3 => {
            out.push((buffer >> 10) as u8);
            out.push((buffer >> 2) as u8);
        }
        _ => return None,
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;
    use crate::testing::data;

    fn files(dir: &Path) -> Vec<PathBuf> {
        match std::fs::read_dir(dir) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The name and contents of the one log file in `dir`.
    fn only_log(dir: &Path) -> (String, Vec<u8>) {
        let written = files(dir);
        assert_eq!(written.len(), 1);
        let name = written[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        (name, std::fs::read(&written[0]).unwrap())
    }

    #[test]
    fn base64_like_python() {
        assert_eq!(decode_base64("bG9nIGNvbnRlbnRz").unwrap(), b"log contents");
        assert_eq!(
            decode_base64("bG9n\nIGNv\r\nbnRlbnRz\n").unwrap(),
            b"log contents"
        );
        assert_eq!(decode_base64("bG9nMQ==").unwrap(), b"log1");
        assert_eq!(decode_base64("bG9nMTI=").unwrap(), b"log12");
        assert_eq!(decode_base64("bG9nMQ").unwrap(), b"log1");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("bG9nM"), None);
    }

    #[test]
    fn file_name_has_address_and_utc_time() {
        let t = UNIX_EPOCH + Duration::new(1_445_000_000, 123_456_000);
        assert_eq!(
            log_file_name(Some("1.2.3.4"), t),
            "bmc_1.2.3.4_2015.10.16_12.53.20_123456"
        );
        assert_eq!(
            log_file_name(None, UNIX_EPOCH),
            "bmc_unknown_1970.01.01_00.00.00_000000"
        );
        assert_eq!(
            log_file_name(Some("../../etc/x y"), UNIX_EPOCH),
            "bmc_.._.._etc_x_y_1970.01.01_00.00.00_000000"
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(log_file_name(None, leap).contains("2000.02.29_00.00.00"));
    }

    #[tokio::test]
    async fn no_error_no_logs_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let hook = RamdiskError::new(Some(dir.path().to_path_buf()), false);
        hook.before_processing(&mut data(json!({"ipmi_address": "1.2.3.4"})))
            .await
            .unwrap();
        assert!(files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn error_without_logs() {
        let dir = tempfile::tempdir().unwrap();
        let hook = RamdiskError::new(Some(dir.path().to_path_buf()), false);
        let err = hook
            .before_processing(&mut data(
                json!({"error": "BOOM", "ipmi_address": "1.2.3.4"}),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "Ramdisk reported error: BOOM");
        assert!(matches!(err, Error::BadRequest(_)));
        assert!(files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn logs_dir_unset_only_warns() {
        let hook = RamdiskError::new(None, true);
        let mut d = data(json!({"error": "BOOM", "logs": "bG9n"}));
        let err = hook.before_processing(&mut d).await.unwrap_err();
        assert_eq!(err.to_string(), "Ramdisk reported error: BOOM");
    }

    #[tokio::test]
    async fn logs_are_written_with_the_error_and_the_folder_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let logs_dir = dir.path().join("a").join("b");
        let hook = RamdiskError::new(Some(logs_dir.clone()), false);
        let mut d = data(json!({
            "error": "BOOM", "ipmi_address": "1.2.3.4", "logs": "bG9nIGNvbnRlbnRz",
        }));
        let err = hook.before_processing(&mut d).await.unwrap_err();
        assert_eq!(err.to_string(), "Ramdisk reported error: BOOM");
        let (name, contents) = only_log(&logs_dir);
        assert!(name.starts_with("bmc_1.2.3.4_"), "{name}");
        assert_eq!(contents, b"log contents");
        assert!(d.get("logs").is_some(), "logs stay in the data");
    }

    #[tokio::test]
    async fn logs_without_error_only_when_always_stored() {
        let dir = tempfile::tempdir().unwrap();
        let payload = json!({"logs": "bG9nIGNvbnRlbnRz"});
        let hook = RamdiskError::new(Some(dir.path().to_path_buf()), false);
        hook.before_processing(&mut data(payload.clone()))
            .await
            .unwrap();
        assert!(files(dir.path()).is_empty());

        let hook = RamdiskError::new(Some(dir.path().to_path_buf()), true);
        hook.before_processing(&mut data(payload)).await.unwrap();
        let (name, contents) = only_log(dir.path());
        assert!(name.starts_with("bmc_unknown_"), "{name}");
        assert_eq!(contents, b"log contents");
    }

    #[tokio::test]
    async fn undecodable_logs_are_an_unexpected_failure() {
        let dir = tempfile::tempdir().unwrap();
        let hook = RamdiskError::new(Some(dir.path().to_path_buf()), true);
        let err = hook
            .before_processing(&mut data(json!({"logs": "a"})))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Internal { .. }), "{err:?}");
    }
}

#[cfg(test)]
mod properties {
    use std::time::{Duration, UNIX_EPOCH};

    use proptest::prelude::*;

    use super::*;
    use crate::testing::text;

    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Standard base64 with padding, written independently of the decoder.
    fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            }
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
        out
    }

    proptest! {
        #[test]
        fn encoded_logs_decode_to_the_same_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let encoded = encode(&bytes);
            prop_assert_eq!(decode_base64(&encoded), Some(bytes.clone()));
            // Missing padding is tolerated (see base64_like_python).
            prop_assert_eq!(decode_base64(encoded.trim_end_matches('=')), Some(bytes));
        }

        #[test]
        fn characters_outside_the_alphabet_are_skipped(
            bytes in prop::collection::vec(any::<u8>(), 0..100),
            noise in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec!["\n", "\r\n", " ", "\t", "*", "é"])), 0..10),
        ) {
            let encoded = encode(&bytes);
            let mut noisy = encoded.trim_end_matches('=').to_string();
            for (at, text) in noise {
                let mut i = at.index(noisy.len() + 1);
                while !noisy.is_char_boundary(i) {
                    i -= 1;
                }
                noisy.insert_str(i, text);
            }
            prop_assert_eq!(decode_base64(&noisy), Some(bytes));
        }

        #[test]
        fn any_text_decodes_or_not_without_panicking(s in text()) {
            if let Some(bytes) = decode_base64(&s) {
                prop_assert!(bytes.len() <= s.len());
            }
        }

        #[test]
        fn log_file_names_stay_in_their_folder(address in prop::option::of(text()), secs in 0u64..1 << 40) {
            let name = log_file_name(address.as_deref(), UNIX_EPOCH + Duration::from_secs(secs));
            prop_assert!(name.starts_with("bmc_"));
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_')), "{name}");
            prop_assert!(name != "." && name != "..");
        }
    }
}
