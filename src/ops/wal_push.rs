//! `wal-push <path>`: archive one WAL file (PostgreSQL's `archive_command`), and upload other
//! files PostgreSQL has marked `.ready` in the background so that archiving keeps up.
//!
//! WAL-G compat (internal/databases/postgres/wal_push_handler.go, bguploader.go):
//! - the object is `wal_005/<basename>.<ext>`;
//! - `.history` files are never overwritten with different content, whatever the settings;
//!   with `WALG_PREVENT_WAL_OVERWRITE` the same holds for every file; identical content is
//!   success without upload; the comparison is of the decompressed bytes;
//! - a file uploaded by a background worker gets a marker in
//!   `walg_data/walg_archive_status/<name>` next to it; when PostgreSQL then asks for it, the
//!   marker is removed and nothing is uploaded again. The `.ready` file itself is left to
//!   PostgreSQL (renamed only with `PG_READY_RENAME`), so a file is never reported archived
//!   before it is durable.
//!
//! Each run also removes the temp files that killed uploads left in the local folder's
//! `wal_005/` (never one a live upload holds).
//!
//! Differences: markers live next to the WAL directory given in the path (WAL-G uses
//! `$PGDATA/pg_wal`, or `/tmp` when `PGDATA` is unset, which mixes clusters); at most 8
//! background uploads run at once, whatever `WALG_UPLOAD_CONCURRENCY` says, to bound memory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::wal_object::{open_wal, same_content, upload_file};
use super::{Context, HintedError};
use crate::layout;

/// Most background uploads in flight at once.
const MAX_BACKGROUND_WORKERS: usize = 8;
/// How often the background uploader looks for new `.ready` files.
const SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// What happened to the file PostgreSQL asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Compressed and stored at `key`; `bytes` of WAL read.
    Uploaded { key: String, bytes: u64 },
    /// Already in storage with the same content: nothing uploaded.
    AlreadyArchived { key: String },
    /// Uploaded earlier by a background worker of another `wal-push`.
    DoneInBackground,
}

/// The result of one `wal-push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalPushReport {
    pub file: String,
    pub outcome: PushOutcome,
    /// Other `.ready` files uploaded in the background by this run.
    pub background_uploaded: usize,
}

/// Runs `wal-push` for the file at `path` (as PostgreSQL passes `%p`).
pub async fn run(ctx: &Context, path: &Path) -> anyhow::Result<WalPushReport> {
    let name = file_name(path)?;
    let wal_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let marker = marker_path(&wal_dir, &name);
    if marker.exists() {
        std::fs::remove_file(&marker)
            .with_context(|| format!("removing marker '{}'", marker.display()))?;
        tracing::info!("'{name}' was already uploaded by a background upload");
        return Ok(WalPushReport {
            file: name,
            outcome: PushOutcome::DoneInBackground,
            background_uploaded: 0,
        });
    }
    let meta = std::fs::metadata(path).with_context(|| format!("reading '{}'", path.display()))?;
    if !meta.is_file() {
        bail!("'{}' is not a regular file", path.display());
    }

    let background = Background::start(ctx, &wal_dir, &name);
    let (main, ()) = tokio::join!(push_one(ctx, path, &name), sweep_temporaries(ctx));
    let background_uploaded = match background {
        Some(bg) => bg.finish().await,
        None => 0,
    };
    Ok(WalPushReport {
        file: name,
        outcome: main?,
        background_uploaded,
    })
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .ok_or_else(|| anyhow::anyhow!("'{}' does not name a WAL file", path.display()))
}

fn marker_path(wal_dir: &Path, name: &str) -> PathBuf {
    wal_dir
        .join("walg_data")
        .join("walg_archive_status")
        .join(name)
}

/// Removes the temp files killed uploads left in the WAL folder (see
/// `crate::storage::fs_temp`). Best effort: a failure is logged and changes nothing else.
async fn sweep_temporaries(ctx: &Context) {
    let folder = layout::wal_folder();
    let stale = match ctx.storage.stale_temporaries(&folder).await {
        Ok(stale) => stale,
        Err(e) => {
            tracing::debug!("looking for temp files of interrupted uploads: {e}");
            return;
        }
    };
    if stale.is_empty() {
        return;
    }
    let keys: Vec<_> = stale.into_iter().map(|m| m.key).collect();
    match ctx.storage.remove_temporaries(&keys).await {
        Ok(removed) => tracing::info!("removed {removed} temp files left by interrupted uploads"),
        Err(e) => tracing::warn!("removing temp files of interrupted uploads: {e}"),
    }
}

/// Uploads one file, honouring the overwrite rules.
async fn push_one(ctx: &Context, path: &Path, name: &str) -> anyhow::Result<PushOutcome> {
    let compression = ctx.settings.compression;
    let protected = name.ends_with(".history") || ctx.settings.wal.prevent_overwrite;
    if protected {
        let existing = open_wal(&ctx.storage, name, compression.method.decoder())
            .await
            .with_context(|| format!("checking whether '{name}' is already archived"))?;
        if let Some(found) = existing {
            let key = found.key.to_string();
            if same_content(found, path).await? {
                tracing::info!(
                    "'{name}' is already archived as '{key}' with equal content, skipping"
                );
                return Ok(PushOutcome::AlreadyArchived { key });
            }
            return Err(HintedError::new(
                format!("wal file '{name}' is already archived as '{key}' with different content; refusing to overwrite it"),
                "two clusters may be archiving into the same storage prefix: check WALG_S3_PREFIX / WALG_FILE_PREFIX and the timeline history",
            )
            .into());
        }
    }
    let key = layout::wal_key(name, compression.method.decoder())?;
    let bytes = upload_file(&ctx.storage, compression, path, &key).await?;
    tracing::info!("'{name}' archived as '{key}'");
    Ok(PushOutcome::Uploaded {
        key: key.to_string(),
        bytes,
    })
}

/// The background uploader of other `.ready` files.
struct Background {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Background {
    /// Starts it when the settings allow background uploads and an `archive_status` folder is
    /// next to the file.
    fn start(ctx: &Context, wal_dir: &Path, main_name: &str) -> Option<Background> {
        let workers = ctx
            .settings
            .upload_concurrency
            .saturating_sub(1)
            .min(MAX_BACKGROUND_WORKERS);
        let limit = ctx.settings.wal.total_bg_uploaded_limit.saturating_sub(1);
        let status_dir = wal_dir.join("archive_status");
        if workers == 0 || limit == 0 || !status_dir.is_dir() {
            return None;
        }
        let (stop, stopped) = watch::channel(false);
        let worker = Worker {
            ctx: ctx.clone(),
            wal_dir: wal_dir.to_path_buf(),
            status_dir,
        };
        let task = tokio::spawn(worker.run(main_name.to_string(), workers, limit, stopped));
        Some(Background { stop, task })
    }

    /// Stops looking for new files and waits for the uploads under way.
    async fn finish(self) -> usize {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or(0)
    }
}

#[derive(Clone)]
struct Worker {
    ctx: Context,
    wal_dir: PathBuf,
    status_dir: PathBuf,
}

impl Worker {
    async fn run(
        self,
        main_name: String,
        workers: usize,
        limit: usize,
        mut stopped: watch::Receiver<bool>,
    ) -> usize {
        let permits = Arc::new(Semaphore::new(workers));
        let mut started: HashSet<String> = HashSet::from([main_name]);
        let mut uploads = JoinSet::new();
        loop {
            for name in self.ready_files() {
                if started.len() > limit {
                    break;
                }
                if started.contains(&name) || marker_path(&self.wal_dir, &name).exists() {
                    continue;
                }
                started.insert(name.clone());
                let worker = self.clone();
                let permits = Arc::clone(&permits);
                uploads.spawn(async move {
                    let _permit = permits.acquire_owned().await.ok()?;
                    worker.upload(&name).await
                });
            }
            if *stopped.borrow() {
                break;
            }
            tokio::select! {
                _ = stopped.changed() => {}
                () = tokio::time::sleep(SCAN_INTERVAL) => {}
            }
        }
        let mut done = 0;
        while let Some(result) = uploads.join_next().await {
            if matches!(result, Ok(Some(()))) {
                done += 1;
            }
        }
        done
    }

    /// Names of files with a `.ready` status, oldest name first.
    fn ready_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.status_dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".ready"))
                    .map(str::to_string)
            })
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .collect();
        names.sort();
        names
    }

    /// Uploads one `.ready` file; errors are logged, PostgreSQL will ask for the file again.
    async fn upload(&self, name: &str) -> Option<()> {
        let path = self.wal_dir.join(name);
        if !path.is_file() {
            return None;
        }
        match push_one(&self.ctx, &path, name).await {
            Ok(_) => {
                let marker = marker_path(&self.wal_dir, name);
                let marked = marker
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::File::create(&marker).map(drop));
                if let Err(e) = marked {
                    tracing::warn!(
                        "background upload of '{name}' done, but its marker could not be written: {e}"
                    );
                }
                if self.ctx.settings.wal.ready_rename {
                    let ready = self.status_dir.join(format!("{name}.ready"));
                    let done = self.status_dir.join(format!("{name}.done"));
                    if let Err(e) = std::fs::rename(&ready, &done) {
                        tracing::warn!("renaming '{}': {e}", ready.display());
                    }
                }
                Some(())
            }
            Err(e) => {
                tracing::warn!("background upload of '{name}' failed: {e:#}");
                None
            }
        }
    }
}
