//! `delete …`: read the inventory of the storage, let `crate::retention` plan, and carry the
//! plan out only with `--confirm`.
//!
//! Refuses to run while a `backup-push` writes to the same prefix: a running backup-push keeps
//! `basebackups_005/<name>/walg_backup_in_progress_<run>.json` fresh (every minute) until its sentinel
//! is written; a marker younger than [`IN_PROGRESS_FRESH`] in a folder without a sentinel
//! means a backup is being written. (A WAL-G backup-push writes no marker.)
//!
//! Every mode also removes the temp files of interrupted writes that no live process holds
//! (local folder: see `crate::storage::fs_temp`); the dry run lists them.
//!
//! Deletes in batches (S3: DeleteObjects, 1000 keys a call); sentinels first, so a backup
//! disappears from listings before its parts do and an interrupted delete leaves garbage, never
//! a listed backup with missing parts.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;

use super::{Context, HintedError, backup_list};
use crate::layout::backup as keys;
use crate::layout::documents::Sentinel;
use crate::layout::{ObjectKind, classify};
use crate::retention::{self, BackupInfo, Inventory, Options, Plan, Rule, StoredObject};
use crate::storage::{Key, StorageExt};

/// A marker refreshed within this long means a backup-push is running.
pub const IN_PROGRESS_FRESH: Duration = Duration::from_secs(5 * 60);
/// Keys per delete call.
const BATCH: usize = 1000;

/// The outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeleteReport {
    pub plan: Plan,
    /// False for a dry run.
    pub confirmed: bool,
    /// Objects deleted (0 for a dry run).
    pub deleted: usize,
    /// Temp files of interrupted writes that no live process holds (removed unless a dry run).
    pub temporaries: Vec<String>,
    /// Temp files removed (0 for a dry run).
    pub temporaries_removed: usize,
}

/// Runs `delete` with `rule`.
pub async fn run(
    ctx: &Context,
    rule: &Rule,
    options: Options,
    confirm: bool,
    now: jiff::Timestamp,
) -> anyhow::Result<DeleteReport> {
    let inventory = inventory(ctx).await?;
    refuse_if_backup_running(&inventory, now)?;
    let plan = retention::plan(&inventory, rule, options, now)?;
    let temporaries: Vec<Key> = ctx
        .storage
        .stale_temporaries(&Key::root())
        .await
        .context("looking for temp files of interrupted writes")?
        .into_iter()
        .map(|meta| meta.key)
        .collect();
    for note in &plan.notes {
        tracing::info!("{note}");
    }
    for key in &plan.delete_objects {
        tracing::info!("Object marked for deletion: {key} storage=default");
    }
    for key in &temporaries {
        tracing::info!("Temp file of an interrupted write marked for deletion: {key}");
    }
    let mut report = DeleteReport {
        plan,
        confirmed: confirm,
        deleted: 0,
        temporaries: temporaries.iter().map(Key::to_string).collect(),
        temporaries_removed: 0,
    };
    if report.plan.delete_objects.is_empty() {
        tracing::info!("No backup found for deletion");
        if temporaries.is_empty() {
            return Ok(report);
        }
    }
    if !confirm {
        tracing::info!(
            "Dry run: objects would be deleted count={}, {} bytes, temp files count={}, Run with --confirm to execute",
            report.plan.delete_objects.len(),
            report.plan.bytes_freed,
            temporaries.len()
        );
        return Ok(report);
    }
    if !report.plan.delete_objects.is_empty() {
        report.deleted = execute(ctx, &report.plan).await?;
        tracing::info!(
            "Objects deleted successfully: count={}, {} bytes freed",
            report.deleted,
            report.plan.bytes_freed
        );
    }
    if !temporaries.is_empty() {
        report.temporaries_removed = ctx
            .storage
            .remove_temporaries(&temporaries)
            .await
            .context("removing temp files of interrupted writes")?;
        tracing::info!(
            "Temp files of interrupted writes removed: count={}",
            report.temporaries_removed
        );
    }
    Ok(report)
}

/// Every object under the prefix, and every complete backup with its sentinel and metadata.
async fn inventory(ctx: &Context) -> anyhow::Result<Inventory> {
    let objects: Vec<StoredObject> = ctx
        .storage
        .list(&Key::root())
        .await
        .context("listing the storage")?
        .into_iter()
        .map(|o| StoredObject {
            key: o.key.to_string(),
            size: o.size,
            modified: o.last_modified,
        })
        .collect();
    let mut backups = Vec::new();
    for summary in backup_list::list(ctx.storage.as_ref()).await? {
        let bytes = ctx
            .storage
            .get_bytes(&keys::sentinel_key(&summary.name))
            .await?;
        let sentinel = Sentinel::from_json(&bytes)
            .with_context(|| format!("reading the sentinel of backup '{}'", summary.name))?;
        let metadata = backup_list::metadata(ctx.storage.as_ref(), &summary.name).await?;
        let timeline =
            u32::from_str_radix(summary.wal_file_name.get(0..8).unwrap_or("ZZ"), 16).unwrap_or(0);
        let start_lsn = sentinel
            .lsn
            .or(metadata.as_ref().map(|m| m.start_lsn))
            .unwrap_or(0);
        let finish_lsn = sentinel
            .finish_lsn
            .or(metadata.as_ref().map(|m| m.finish_lsn))
            .unwrap_or(start_lsn);
        backups.push(BackupInfo {
            name: summary.name.to_string(),
            sentinel_modified: summary.modified,
            start_time: metadata.as_ref().map(|m| m.start_time.timestamp()),
            start_lsn,
            finish_lsn,
            timeline,
            system_identifier: sentinel
                .system_identifier
                .or(metadata.as_ref().and_then(|m| m.system_identifier)),
            is_permanent: metadata.as_ref().is_some_and(|m| m.is_permanent),
            delta_from: sentinel.delta_from.clone(),
            user_data: metadata
                .as_ref()
                .and_then(|m| m.user_data.clone())
                .or(sentinel.user_data.clone()),
            segment_size: ctx.settings.wal.segment_size,
        });
    }
    Ok(Inventory { backups, objects })
}

/// Fails while a fresh in-progress marker sits in a folder without a sentinel.
fn refuse_if_backup_running(inventory: &Inventory, now: jiff::Timestamp) -> anyhow::Result<()> {
    let complete: HashSet<&str> = inventory.backups.iter().map(|b| b.name.as_str()).collect();
    for object in &inventory.objects {
        let ObjectKind::InProgressMarker { folder: name } = classify(&object.key) else {
            continue;
        };
        if complete.contains(name) {
            continue;
        }
        let age = now.duration_since(object.modified).unsigned_abs();
        if age < IN_PROGRESS_FRESH {
            return Err(HintedError::new(
                format!("backup '{name}' is being written (its in-progress marker was refreshed {}s ago); refusing to delete", age.as_secs()),
                "wait for backup-push to finish; a marker older than 5 minutes is ignored",
            )
            .into());
        }
    }
    Ok(())
}

/// Deletes the plan's objects: sentinels first, then the rest, in batches.
async fn execute(ctx: &Context, plan: &Plan) -> anyhow::Result<usize> {
    let (sentinels, rest): (Vec<&String>, Vec<&String>) = plan
        .delete_objects
        .iter()
        .partition(|k| matches!(classify(k), ObjectKind::Sentinel { .. }));
    let mut deleted = 0;
    for group in [sentinels, rest] {
        for batch in group.chunks(BATCH) {
            let keys: Vec<Key> = batch
                .iter()
                .map(|k| Key::new(k))
                .collect::<Result<_, _>>()?;
            ctx.storage.delete(&keys).await.with_context(|| {
                format!("deleting {} objects (after {deleted} deleted)", keys.len())
            })?;
            deleted += keys.len();
        }
    }
    Ok(deleted)
}
