//! `wal-fetch <name> <dest>`: restore one WAL file (PostgreSQL's `restore_command`).
//!
//! The file is decoded into a temp file in the destination's folder while its content is
//! checked (every page header of a segment, the lines of a history file: see
//! [`crate::pg::wal::WalCheck`]), fsynced and renamed into place: `dest` either does not exist
//! or holds the whole file. A truncated, corrupt or misfiled object is an error rather than a
//! bad file handed to recovery. The temp file is locked while it is written, and each run first
//! removes the temp files of killed runs from the destination's folder and dead downloads from
//! the prefetch folder.
//!
//! WAL-G compat (internal/databases/postgres/wal_fetch_handler.go, prefetch.go): a complete
//! prefetched copy in `.wal-g/prefetch/<name>` next to the destination is used first; otherwise
//! the object is looked for under each extension in WAL-G's probe order; after a segment is
//! fetched, a detached `wal-prefetch` process downloads the next segments (WAL-G starts it
//! after a miss too, which only costs requests at the end of every recovery).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};

use super::wal_object::{decode_to_file, open_wal, read_head};
use super::wal_prefetch::sweep_running;
use super::{Context, HintedError};
use crate::pg::wal::{Segment, WalCheck, check_segment_header};
use crate::storage::fs::sync_dir;
use crate::storage::fs_temp;

/// The outcome of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The file is at the destination, from storage (`from` is the object key) or from the
    /// prefetch folder.
    Written { from: String, bytes: u64 },
    /// The file is not in storage (exit 74).
    Missing,
}

/// Runs `wal-fetch`.
pub async fn run(ctx: &Context, name: &str, dest: &Path) -> anyhow::Result<Fetched> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        bail!("'{name}' is not a WAL file name");
    }
    let dest_dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dest_dir.is_dir() {
        return Err(HintedError::new(
            format!(
                "destination folder '{}' does not exist; nothing was read from storage",
                dest_dir.display()
            ),
            "PostgreSQL restores into pg_wal of its data directory: check that the data \
             directory is complete and that restore_command passes %p",
        )
        .into());
    }
    if dest.exists() {
        bail!(
            "destination '{}' already exists; refusing to overwrite it",
            dest.display()
        );
    }
    let prefetch = prefetch_dir(ctx, &dest_dir);
    sweep(&dest_dir, &prefetch);
    let fetched = match take_prefetched(&prefetch, name, dest)? {
        Some(bytes) => Fetched::Written {
            from: prefetch.join(name).display().to_string(),
            bytes,
        },
        None => download(ctx, name, dest, &dest_dir).await?,
    };
    // After a miss the following segments are missing too: prefetching would only probe.
    let found = matches!(fetched, Fetched::Written { .. });
    if found && is_prefetchable(name) && ctx.settings.download_concurrency > 1 {
        spawn_prefetch(ctx, name, dest);
    }
    Ok(fetched)
}

/// `.wal-g/prefetch` next to the destination, or `WALG_PREFETCH_DIR/.wal-g/prefetch`.
pub fn prefetch_dir(ctx: &Context, dest_dir: &Path) -> PathBuf {
    ctx.settings
        .wal
        .prefetch_dir
        .as_deref()
        .unwrap_or(dest_dir)
        .join(".wal-g")
        .join("prefetch")
}

fn is_prefetchable(name: &str) -> bool {
    name.len() == 24 && name.bytes().all(|c| c.is_ascii_hexdigit())
}

async fn download(
    ctx: &Context,
    name: &str,
    dest: &Path,
    dest_dir: &Path,
) -> anyhow::Result<Fetched> {
    let preferred = ctx.settings.compression.method.decoder();
    let Some(found) = open_wal(&ctx.storage, name, preferred)
        .await
        .with_context(|| format!("looking for '{name}' in storage"))?
    else {
        return Ok(Fetched::Missing);
    };
    let from = found.key.to_string();
    let dest_name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("wal");
    let (tmp, file) = fs_temp::create_temp(dest_dir, dest_name)
        .with_context(|| format!("creating a temp file in '{}'", dest_dir.display()))?;
    let (bytes, file) = decode_to_file(found, name, tmp.clone(), file, WalCheck::for_name(name))
        .await
        .with_context(|| format!("restoring '{from}'"))?;
    let placed = std::fs::rename(&tmp, dest)
        .with_context(|| format!("renaming into '{}'", dest.display()))
        .and_then(|()| {
            sync_dir(dest_dir).with_context(|| format!("syncing '{}'", dest_dir.display()))
        });
    if placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drop(file);
    placed.with_context(|| format!("restoring '{from}'"))?;
    Ok(Fetched::Written { from, bytes })
}

/// Removes what killed runs left: temp files in the destination's folder, downloads in
/// `.wal-g/prefetch/running/` no live process holds. Best effort: a failure only leaves them.
fn sweep(dest_dir: &Path, prefetch: &Path) {
    let now = std::time::SystemTime::now();
    match fs_temp::sweep_dir(dest_dir, now) {
        Ok(removed) => {
            for path in removed {
                tracing::info!(
                    "removed '{}', left by an interrupted wal-fetch",
                    path.display()
                );
            }
        }
        Err(e) => tracing::debug!("looking for temp files in '{}': {e}", dest_dir.display()),
    }
    sweep_running(&prefetch.join("running"), now);
}

/// Moves a complete, valid prefetched copy into place. A copy that fails the checks is removed.
fn take_prefetched(prefetch: &Path, name: &str, dest: &Path) -> anyhow::Result<Option<u64>> {
    let path = prefetch.join(name);
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    let valid = read_head(&path)
        .ok()
        .and_then(|head| check_segment_header(name, &head).ok())
        .is_some_and(|segment: Segment| segment.size == meta.len());
    if !valid {
        tracing::warn!("discarding invalid prefetched file '{}'", path.display());
        let _ = std::fs::remove_file(&path);
        return Ok(None);
    }
    std::fs::rename(&path, dest)
        .with_context(|| format!("moving '{}' to '{}'", path.display(), dest.display()))?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        sync_dir(dir).with_context(|| format!("syncing '{}'", dir.display()))?;
    }
    Ok(Some(meta.len()))
}

/// Starts `walg wal-prefetch <name> <dest>` detached, with the same settings. Failure to
/// start it only costs speed.
fn spawn_prefetch(ctx: &Context, name: &str, dest: &Path) {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(&ctx.exe);
    command
        .args(&ctx.child_args)
        .arg("wal-prefetch")
        .arg(name)
        .arg(dest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: signals meant for the restore command do not reach it.
        .process_group(0);
    match command.spawn() {
        Ok(child) => drop(child),
        Err(e) => tracing::debug!("could not start wal-prefetch: {e}"),
    }
}
