//! `backup-mark NAME [-i]`: make a backup permanent (retention never deletes it) or not.
//!
//! WAL-G compat (internal/backup_mark_handler.go): permanence lives in `metadata.json`
//! (`is_permanent`), the sentinel is left alone; marking a delta permanent marks its ancestors
//! too; marking a backup impermanent fails while a permanent delta depends on it; a backup
//! already in the asked state only gets a warning. `metadata.json` is rewritten keeping every
//! field it has, known or not.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use bytes::Bytes;

use super::{Context, HintedError, backup_list};
use crate::layout::BackupName;
use crate::layout::backup as keys;
use crate::layout::documents::Sentinel;
use crate::storage::StorageExt;

/// What was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupMarkReport {
    /// Backups whose permanence changed, the named one last.
    pub changed: Vec<String>,
}

/// Runs `backup-mark`.
pub async fn run(ctx: &Context, name: &str, permanent: bool) -> anyhow::Result<BackupMarkReport> {
    let backups = backup_list::list(ctx.storage.as_ref()).await?;
    let Some(named) = backups
        .iter()
        .find(|b| b.name == name)
        .map(|b| b.name.clone())
    else {
        return Err(HintedError::new(
            format!("backup '{name}' does not exist"),
            "walg backup-list shows the backups in this storage",
        )
        .into());
    };
    // The delta relation of every backup: name → parent.
    let mut parents = BTreeMap::new();
    for backup in &backups {
        let bytes = ctx
            .storage
            .get_bytes(&keys::sentinel_key(&backup.name))
            .await?;
        let sentinel = Sentinel::from_json(&bytes)
            .with_context(|| format!("reading the sentinel of backup '{}'", backup.name))?;
        parents.insert(backup.name.clone(), sentinel.delta_from);
    }

    let targets: Vec<BackupName> = if permanent {
        // The backup and every ancestor it needs to restore.
        let mut chain = vec![named.clone()];
        let mut current = named;
        while let Some(Some(parent)) = parents.get(&current) {
            let parent = BackupName::parse(parent)?;
            if chain.contains(&parent) {
                bail!("backup '{name}' has a cycle in its delta chain");
            }
            chain.push(parent.clone());
            current = parent;
        }
        chain.reverse();
        chain
    } else {
        // No permanent backup may depend on it.
        for (child, parent) in &parents {
            if parent.as_deref() == Some(name) && is_permanent(ctx, child).await? {
                return Err(HintedError::new(
                    format!("backup '{name}' cannot be made impermanent: the permanent delta backup '{child}' depends on it"),
                    format!("make '{child}' impermanent first"),
                )
                .into());
            }
        }
        vec![named]
    };

    let mut changed = Vec::new();
    for target in targets {
        if set_permanent(ctx, &target, permanent).await? {
            tracing::info!(
                "backup '{target}' is now {}",
                if permanent {
                    "permanent"
                } else {
                    "impermanent"
                }
            );
            changed.push(target.to_string());
        } else {
            tracing::warn!(
                "backup '{target}' is already {}",
                if permanent {
                    "permanent"
                } else {
                    "impermanent"
                }
            );
        }
    }
    Ok(BackupMarkReport { changed })
}

async fn is_permanent(ctx: &Context, name: &BackupName) -> anyhow::Result<bool> {
    Ok(backup_list::metadata(ctx.storage.as_ref(), name)
        .await?
        .is_some_and(|m| m.is_permanent))
}

/// Sets `is_permanent` in the backup's `metadata.json`; false when it already had that value.
async fn set_permanent(ctx: &Context, name: &BackupName, permanent: bool) -> anyhow::Result<bool> {
    let key = keys::metadata_key(name);
    let bytes = ctx
        .storage
        .get_bytes(&key)
        .await
        .with_context(|| format!("backup '{name}' has no readable metadata.json"))?;
    let mut document: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing '{key}'"))?;
    let object = document
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("'{key}' is not a JSON object"))?;
    // Go reads keys case-insensitively: update whatever spelling is there.
    let field = object
        .keys()
        .find(|k| k.eq_ignore_ascii_case("is_permanent"))
        .cloned()
        .unwrap_or_else(|| "is_permanent".to_string());
    if object.get(&field).and_then(serde_json::Value::as_bool) == Some(permanent) {
        return Ok(false);
    }
    object.insert(field, serde_json::Value::Bool(permanent));
    let text = serde_json::to_vec(&document).with_context(|| format!("writing '{key}'"))?;
    ctx.storage
        .put_bytes(&key, Bytes::from(text))
        .await
        .with_context(|| format!("uploading '{key}'"))?;
    Ok(true)
}
