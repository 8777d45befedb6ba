//! Private files and directories: the data dirs of both binaries are `0700` and the secrets in
//! them `0600`, whatever the umask, so a local user on the host cannot read tokens, keys or the
//! database.

use anyhow::Context as _;
use std::path::Path;

/// Creates `dir` (and missing parents) readable by the owner only. An existing `dir` open to
/// group or others is narrowed to `0700`: it is a data dir of Arch and holds secrets.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating the data dir {}", dir.display()))?;
    restrict(dir, 0o700)
}

/// Sets the permission bits of `path` to exactly `mode` when they differ (unix only).
pub fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let current = meta.permissions().mode() & 0o777;
        if current != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(
                || format!("setting the permissions of {} to {mode:o}", path.display()),
            )?;
            if current & 0o077 != 0 {
                tracing::info!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "permissions narrowed");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn data_dirs_are_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let fresh = root.path().join("a/b");
        create_private_dir(&fresh).expect("create");
        assert_eq!(mode(&fresh), 0o700);

        let open = root.path().join("open");
        std::fs::create_dir(&open).expect("create");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_private_dir(&open).expect("existing");
        assert_eq!(mode(&open), 0o700);
    }
}
