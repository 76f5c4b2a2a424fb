//! Whether a file the helper reads can be trusted: the helper runs as root and does what
//! its configuration and filter files allow, so anyone who can change one of them, or add a
//! file to a filter directory, could run anything as root. Such a file or directory is
//! refused, and with it the whole configuration.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Write permission for the group and for others.
const GROUP_OR_OTHER_WRITE: u32 = 0o022;

/// Ok when `meta` (of `path`, a `what` such as "filter file") says only root can change it:
/// owned by root, not writable by its group or by others.
pub fn check_root_only(path: &Path, what: &str, meta: &Metadata) -> Result<(), String> {
    if meta.uid() != 0 {
        return Err(format!(
            "{what} {} is owned by uid {}, not by root",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_OR_OTHER_WRITE != 0 {
        return Err(format!(
            "{what} {} is writable by {} (mode {mode:04o}); only root may be able to change it",
            path.display(),
            match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "its group and by others",
                (true, false) => "its group",
                _ => "others",
            }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn with_mode(dir: &Path, mode: u32) -> (std::path::PathBuf, Metadata) {
        let path = dir.join(format!("f{mode:o}"));
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        (path, meta)
    }

    #[test]
    fn writable_by_group_or_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, meta) = with_mode(dir.path(), 0o664);
        if meta.uid() != 0 {
            // The ownership check fires first for a non-root test run.
            assert!(
                check_root_only(&path, "file", &meta)
                    .unwrap_err()
                    .contains("not by root")
            );
            return;
        }
        let err = check_root_only(&path, "filter file", &meta).unwrap_err();
        assert!(err.contains("writable by its group (mode 0664)"), "{err}");
        let (path, meta) = with_mode(dir.path(), 0o646);
        let err = check_root_only(&path, "file", &meta).unwrap_err();
        assert!(err.contains("writable by others (mode 0646)"), "{err}");
        let (path, meta) = with_mode(dir.path(), 0o777);
        let err = check_root_only(&path, "file", &meta).unwrap_err();
        assert!(err.contains("its group and by others (mode 0777)"), "{err}");
        let (path, meta) = with_mode(dir.path(), 0o644);
        check_root_only(&path, "file", &meta).unwrap();
        let (path, meta) = with_mode(dir.path(), 0o755);
        check_root_only(&path, "file", &meta).unwrap();
    }
}
