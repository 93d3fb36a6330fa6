//! Crash-safe file replacement, the one way every output file of a sweep is
//! written (points tables, checkpoints' folded weights, summaries): a killed
//! process leaves either the old file or the new one, never a torn one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A failed step of [`replace`], naming the file it touched.
#[derive(Debug, thiserror::Error)]
// The cause is in the message, not the error chain, so `{:#}` prints it once.
#[error("cannot {action} {path}: {error}")]
pub struct WriteError {
    pub action: &'static str,
    pub path: PathBuf,
    pub error: std::io::Error,
}

/// Replaces `path` with what `fill` writes: the bytes go to a temporary file
/// in the same directory (so the rename cannot cross file systems), which is
/// synced and then renamed over `path`. On any error the temporary file is
/// removed and `path` is left as it was; a process killed mid-write leaves a
/// hidden `.<name>.tmp-<pid>-<n>` file beside an intact `path`.
pub fn replace(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |error| WriteError {
            action,
            path: p,
            error,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io("write", path)(std::io::Error::other("the path names no file")))?;
    // Unique per process and call, so concurrent writers never share a temp file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
        fill(&mut file).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("replace", path))
    })();
    if result.is_err() {
        // Best effort: the error being returned matters more than this one.
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Persist the rename itself; directories cannot be opened for syncing on
    // every platform, so a failure to open is not an error.
    if let Ok(d) = File::open(dir) {
        d.sync_all().map_err(io("sync", dir))?;
    }
    Ok(())
}

/// [`replace`] with a byte string.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    use std::io::Write;
    replace(path, |f| f.write_all(bytes))
}

/// The bytes of a file its writer replaces atomically, or `None` when there
/// is none yet (the optional files beside a sweep's tables).
pub fn read_optional(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
