//! `wal-prefetch <name> <location>` (hidden): download the segments after `name` into
//! `.wal-g/prefetch/`, so that the next `wal-fetch` calls find them locally.
//!
//! WAL-G compat (internal/databases/postgres/prefetch.go): up to `WALG_DOWNLOAD_CONCURRENCY`
//! following segments of the same timeline are fetched in parallel into
//! `.wal-g/prefetch/running/<seg>` and renamed to `.wal-g/prefetch/<seg>` when complete;
//! prefetched files older than `name` are removed. A missing segment ends the run.
//!
//! A download holds a lock on its file in `running/` until the file is renamed; a file there
//! that nobody holds belongs to a killed run and is removed (by this command and by
//! `wal-fetch`). Each file gets the checks of `wal-fetch` while it is written.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;

use super::Context;
use super::wal_fetch::prefetch_dir;
use super::wal_object::{decode_to_file, open_wal, read_head};
use crate::pg::wal::{Segment, WalCheck, check_segment_header};
use crate::storage::fs_temp;

/// How many segments were prefetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefetchReport {
    pub fetched: usize,
}

/// Runs `wal-prefetch` after `name` was restored to `location`.
pub async fn run(ctx: &Context, name: &str, location: &Path) -> anyhow::Result<PrefetchReport> {
    let dest_dir = match location.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // The segment size: from the file just restored, else from the settings.
    let size = read_head(location)
        .ok()
        .and_then(|head| check_segment_header(name, &head).ok())
        .map_or(ctx.settings.wal.segment_size, |s| s.size);
    let current = Segment::parse(name, size)
        .ok_or_else(|| anyhow::anyhow!("'{name}' is not a WAL segment name"))?;
    let ready = prefetch_dir(ctx, &dest_dir);
    let running = ready.join("running");
    std::fs::create_dir_all(&running)
        .with_context(|| format!("creating '{}'", running.display()))?;
    remove_older(&ready, current);
    remove_older(&running, current);
    sweep_running(&running, std::time::SystemTime::now());

    let mut downloads = JoinSet::new();
    let mut next = current;
    for _ in 0..ctx.settings.download_concurrency {
        next = next.next();
        let seg_name = next.name();
        if ready.join(&seg_name).exists() || running.join(&seg_name).exists() {
            continue;
        }
        let ctx = ctx.clone();
        let (ready, running) = (ready.clone(), running.clone());
        downloads.spawn(async move { prefetch_one(&ctx, &seg_name, &ready, &running).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut fetched = 0;
    while let Some(result) = downloads.join_next().await {
        match result {
            Ok(Ok(true)) => fetched += 1,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::debug!("prefetch failed: {e:#}"),
            Err(e) => tracing::debug!("prefetch task failed: {e}"),
        }
    }
    Ok(PrefetchReport { fetched })
}

async fn prefetch_one(
    ctx: &Context,
    name: &str,
    ready: &Path,
    running: &Path,
) -> anyhow::Result<bool> {
    let preferred = ctx.settings.compression.method.decoder();
    let Some(found) = open_wal(&ctx.storage, name, preferred).await? else {
        return Ok(false);
    };
    let partial = running.join(name);
    let file = match fs_temp::create_locked(&partial) {
        Ok(file) => file,
        // Another run is downloading it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => {
            return Err(e).with_context(|| format!("creating '{}'", partial.display()));
        }
    };
    let (_, file) =
        decode_to_file(found, name, partial.clone(), file, WalCheck::for_name(name)).await?;
    let moved = std::fs::rename(&partial, ready.join(name));
    if moved.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    drop(file);
    moved.with_context(|| format!("moving prefetched '{name}'"))?;
    Ok(true)
}

/// Removes the downloads in `running` that no live process holds: their run was killed.
pub fn sweep_running(running: &Path, now: std::time::SystemTime) {
    let Ok(entries) = std::fs::read_dir(running) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        if let Ok(Some(_)) = fs_temp::check_stale(&path, fs_temp::Writer::Walg, now, true) {
            tracing::debug!(
                "removed '{}', left by an interrupted prefetch",
                path.display()
            );
        }
    }
}

/// Removes prefetched segments older than `current`: recovery has passed them.
fn remove_older(dir: &Path, current: Segment) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seg) = Segment::parse(name, current.size)
            && (seg.timeline, seg.number) < (current.timeline, current.number)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
