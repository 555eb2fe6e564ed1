//! Which backups storage holds: their sentinels, the latest one, and their `metadata.json`
//! (`backup-list`, `backup-list --detail`, and every command that picks a backup).
//!
//! WAL-G compat (internal/backup_util.go `GetBackups`, `SortBackupTimeSlices`,
//! `GetLatestBackup`; internal/databases/postgres/backup_util.go `GetBackupsDetails`,
//! `SortBackupDetails`): a backup is a sentinel directly in `basebackups_005/`; the list is in
//! storage listing order (by key), then stably sorted by the sentinel's modification time;
//! LATEST is the last of that list. WAL-G fails `--detail` when a `metadata.json` is missing;
//! here the backup is reported without metadata and the caller decides.

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};

use crate::layout::backup::{backup_name_of_sentinel_key, metadata_key, wal_file_name};
use crate::layout::documents::ExtendedMetadata;
use crate::layout::{BackupName, basebackups_folder};
use crate::storage::{Key, Storage, StorageError, StorageExt as _};

/// How many `metadata.json` objects are read at once.
const METADATA_READS: usize = 8;

/// One backup, as its sentinel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The backup name (the sentinel's file name before `_backup`).
    pub name: BackupName,
    /// The sentinel object's modification time in storage.
    pub modified: jiff::Timestamp,
    /// The first 24-hex run of the name, or `ZZZZZZZZZZZZZZZZZZZZZZZZ`.
    pub wal_file_name: String,
    /// The sentinel's key.
    pub sentinel: Key,
}

/// A backup with its `metadata.json`, when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupDetail {
    pub backup: BackupSummary,
    pub metadata: Option<ExtendedMetadata>,
}

/// Every backup, oldest sentinel first (ties in key order). A sentinel whose name cannot be a
/// key segment (`_backup_stop_sentinel.json`, an empty name; `._backup_stop_sentinel.json`)
/// names no backup walg can read and is left out.
pub async fn list(storage: &dyn Storage) -> Result<Vec<BackupSummary>, StorageError> {
    let folder = basebackups_folder();
    let mut objects = storage.list(&folder).await?;
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let mut backups: Vec<BackupSummary> = objects
        .into_iter()
        .filter_map(|object| {
            let name = BackupName::parse(backup_name_of_sentinel_key(&object.key)?).ok()?;
            Some(BackupSummary {
                wal_file_name: wal_file_name(object.key.file_name()).to_string(),
                name,
                modified: object.last_modified,
                sentinel: object.key,
            })
        })
        .collect();
    backups.sort_by_key(|b| b.modified);
    Ok(backups)
}

/// The backup whose sentinel was modified last (WAL-G's `LATEST`); `None` when there is none.
pub async fn latest(storage: &dyn Storage) -> Result<Option<BackupSummary>, StorageError> {
    Ok(list(storage).await?.pop())
}

/// Reads the `metadata.json` of one backup: `None` when it does not exist.
pub async fn metadata(
    storage: &dyn Storage,
    name: &BackupName,
) -> anyhow::Result<Option<ExtendedMetadata>> {
    let key = metadata_key(name);
    let bytes = match storage.get_bytes(&key).await {
        Ok(bytes) => bytes,
        Err(StorageError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let metadata = ExtendedMetadata::from_json(&bytes)
        .with_context(|| format!("'{key}' is not a valid backup metadata document"))?;
    Ok(Some(metadata))
}

/// The `metadata.json` of each backup, in the order given. A missing one is `None`; one that
/// cannot be read or parsed is an error naming the object.
pub async fn details(
    storage: &dyn Storage,
    backups: &[BackupSummary],
) -> anyhow::Result<Vec<BackupDetail>> {
    futures::stream::iter(backups.iter().cloned())
        .map(|backup| async move {
            let metadata = metadata(storage, &backup.name).await?;
            Ok::<_, anyhow::Error>(BackupDetail { backup, metadata })
        })
        .buffered(METADATA_READS)
        .try_collect()
        .await
}

/// Orders details as `backup-list --detail` shows them: by metadata `start_time`, or by
/// sentinel modification time when any backup lacks metadata or a start time. Ties come in
/// reverse list order, as WAL-G walks the list backwards before sorting.
pub fn sort_details(details: &mut [BackupDetail]) {
    details.reverse();
    let by_start = details.iter().all(|d| {
        d.metadata
            .as_ref()
            .is_some_and(|m| *m != ExtendedMetadata::default() && !m.start_time.is_zero())
    });
    if by_start {
        details.sort_by_key(|d| {
            d.metadata
                .as_ref()
                .map(|m| m.start_time.timestamp())
                .unwrap_or_default()
        });
    } else {
        details.sort_by_key(|d| d.backup.modified);
    }
}

/// What `backup-list` shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Listing {
    /// Every backup, oldest sentinel first.
    Backups(Vec<BackupSummary>),
    /// With `--detail`: every backup with its metadata, in [`sort_details`] order.
    Details(Vec<BackupDetail>),
}

impl Listing {
    /// True when storage holds no backup.
    pub fn is_empty(&self) -> bool {
        match self {
            Listing::Backups(backups) => backups.is_empty(),
            Listing::Details(details) => details.is_empty(),
        }
    }
}

/// `backup-list`, and with `detail` each backup's `metadata.json` too (a backup without one is
/// listed with a warning and no metadata).
pub async fn run(storage: &dyn Storage, detail: bool) -> anyhow::Result<Listing> {
    let backups = list(storage).await.context("listing backups")?;
    if !detail {
        return Ok(Listing::Backups(backups));
    }
    let mut details = details(storage, &backups).await?;
    for detail in details.iter().filter(|d| d.metadata.is_none()) {
        tracing::warn!(
            "backup '{}' has no metadata.json: its details are shown empty",
            detail.backup.name
        );
    }
    sort_details(&mut details);
    Ok(Listing::Details(details))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::backup::sentinel_key;
    use crate::layout::documents::GoTime;
    use crate::storage::memory::MemoryStorage;
    use bytes::Bytes;
    use std::time::Duration;

    async fn put(storage: &MemoryStorage, key: &str, body: &str) {
        storage
            .put_bytes(&Key::new(key).unwrap(), Bytes::from(body.to_string()))
            .await
            .unwrap();
        // Distinct modification times for the objects put one after another.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    fn name(text: &str) -> BackupName {
        BackupName::parse(text).unwrap()
    }

    async fn sentinel(storage: &MemoryStorage, text: &str) {
        put(storage, sentinel_key(&name(text)).as_str(), "{}").await;
    }

    fn names(backups: &[BackupSummary]) -> Vec<&str> {
        backups.iter().map(|b| b.name.as_str()).collect()
    }

    #[tokio::test]
    async fn lists_sentinels_by_modification_time() {
        let storage = MemoryStorage::new();
        assert!(list(&storage).await.unwrap().is_empty());
        assert_eq!(latest(&storage).await.unwrap(), None);

        sentinel(&storage, "base_000000010000000000000009").await;
        sentinel(&storage, "base_000000010000000000000002").await;
        sentinel(&storage, "base_333").await;
        // Not backups: objects of a backup, a sentinel in a sub-folder, other folders.
        put(
            &storage,
            "basebackups_005/base_000000010000000000000002/metadata.json",
            "{}",
        )
        .await;
        put(
            &storage,
            "basebackups_005/base_x/base_000000010000000000000007_backup_stop_sentinel.json",
            "{}",
        )
        .await;
        put(
            &storage,
            "basebackups_005/base_000000010000000000000004/tar_partitions/part_001.tar.lz4",
            "",
        )
        .await;
        put(
            &storage,
            "wal_005/base_000000010000000000000005_backup_stop_sentinel.json",
            "{}",
        )
        .await;

        let backups = list(&storage).await.unwrap();
        assert_eq!(
            names(&backups),
            [
                "base_000000010000000000000009",
                "base_000000010000000000000002",
                "base_333"
            ]
        );
        assert_eq!(backups[0].wal_file_name, "000000010000000000000009");
        assert_eq!(backups[2].wal_file_name, "ZZZZZZZZZZZZZZZZZZZZZZZZ");
        assert_eq!(
            backups[1].sentinel.as_str(),
            "basebackups_005/base_000000010000000000000002_backup_stop_sentinel.json"
        );
        assert!(backups[0].modified < backups[1].modified);
        assert_eq!(
            latest(&storage).await.unwrap().map(|b| b.name),
            Some(name("base_333"))
        );

        // Re-writing a sentinel makes that backup the latest.
        sentinel(&storage, "base_000000010000000000000009").await;
        assert_eq!(
            latest(&storage).await.unwrap().map(|b| b.name),
            Some(name("base_000000010000000000000009"))
        );
    }

    #[tokio::test]
    async fn a_sentinel_whose_name_cannot_be_a_key_segment_is_no_backup() {
        let storage = MemoryStorage::new();
        sentinel(&storage, "base_a").await;
        for odd in [
            "basebackups_005/_backup_stop_sentinel.json",
            "basebackups_005/_backup_1_backup_stop_sentinel.json",
            "basebackups_005/._backup_stop_sentinel.json",
            "basebackups_005/.._backup_stop_sentinel.json",
        ] {
            put(&storage, odd, "{}").await;
        }
        sentinel(&storage, "...").await;
        let backups = list(&storage).await.unwrap();
        assert_eq!(names(&backups), ["base_a", "..."]);
        assert_eq!(
            backups[1].sentinel.as_str(),
            "basebackups_005/..._backup_stop_sentinel.json"
        );
    }

    fn meta_json(start: &str) -> String {
        format!(
            r#"{{"start_time":"{start}","finish_time":"{start}","hostname":"h","pg_version":150000,"start_lsn":1,"finish_lsn":2,"is_permanent":false,"system_identifier":null,"uncompressed_size":0,"compressed_size":0}}"#
        )
    }

    #[tokio::test]
    async fn details_read_metadata_and_sort_by_start_time() {
        let storage = MemoryStorage::new();
        for (text, start) in [
            ("base_a", "2024-01-03T00:00:00Z"),
            ("base_b", "2024-01-01T00:00:00Z"),
            ("base_c", "2024-01-02T00:00:00Z"),
        ] {
            put(
                &storage,
                metadata_key(&name(text)).as_str(),
                &meta_json(start),
            )
            .await;
            sentinel(&storage, text).await;
        }
        let backups = list(&storage).await.unwrap();
        assert_eq!(names(&backups), ["base_a", "base_b", "base_c"]);
        let mut details = details(&storage, &backups).await.unwrap();
        assert_eq!(details.len(), 3);
        assert_eq!(details[1].backup.name, "base_b");
        let meta = details[1].metadata.as_ref().unwrap();
        assert_eq!(meta.hostname, "h");
        assert_eq!(
            meta.start_time,
            GoTime::parse("2024-01-01T00:00:00Z").unwrap()
        );
        sort_details(&mut details);
        let order: Vec<&str> = details.iter().map(|d| d.backup.name.as_str()).collect();
        assert_eq!(order, ["base_b", "base_c", "base_a"]);
    }

    #[tokio::test]
    async fn missing_metadata_is_none_and_sorts_by_modification_time() {
        let storage = MemoryStorage::new();
        put(
            &storage,
            metadata_key(&name("base_a")).as_str(),
            &meta_json("2024-01-03T00:00:00Z"),
        )
        .await;
        sentinel(&storage, "base_a").await;
        sentinel(&storage, "base_b").await;
        let backups = list(&storage).await.unwrap();
        let mut details = details(&storage, &backups).await.unwrap();
        assert!(details[0].metadata.is_some());
        assert_eq!(details[1].metadata, None);
        sort_details(&mut details);
        let order: Vec<&str> = details.iter().map(|d| d.backup.name.as_str()).collect();
        assert_eq!(order, ["base_a", "base_b"]);
    }

    #[tokio::test]
    async fn unparsable_metadata_names_the_object() {
        let storage = MemoryStorage::new();
        put(
            &storage,
            "basebackups_005/base_a/metadata.json",
            "{not json",
        )
        .await;
        sentinel(&storage, "base_a").await;
        let backups = list(&storage).await.unwrap();
        let err = details(&storage, &backups).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("'basebackups_005/base_a/metadata.json'"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn the_listing_has_the_details_in_start_time_order_only_when_asked() {
        let storage = MemoryStorage::new();
        for (name, start) in [
            ("base_a", "2024-01-03T00:00:00Z"),
            ("base_b", "2024-01-01T00:00:00Z"),
        ] {
            put(
                &storage,
                metadata_key(&BackupName::parse(name).unwrap()).as_str(),
                &meta_json(start),
            )
            .await;
            sentinel(&storage, name).await;
        }
        let Listing::Backups(backups) = run(&storage, false).await.unwrap() else {
            panic!("a listing without details");
        };
        assert_eq!(names(&backups), ["base_a", "base_b"]);
        let Listing::Details(details) = run(&storage, true).await.unwrap() else {
            panic!("a listing with details");
        };
        let order: Vec<&str> = details.iter().map(|d| d.backup.name.as_str()).collect();
        assert_eq!(order, ["base_b", "base_a"]);
        assert_eq!(details[0].metadata.as_ref().unwrap().hostname, "h");
        assert!(run(&MemoryStorage::new(), true).await.unwrap().is_empty());
    }

    #[test]
    fn ties_in_start_time_come_in_reverse_list_order() {
        let start = GoTime::parse("2024-01-01T00:00:00Z").unwrap();
        let detail = |text: &str| BackupDetail {
            backup: BackupSummary {
                name: name(text),
                modified: jiff::Timestamp::UNIX_EPOCH,
                wal_file_name: wal_file_name(text).to_string(),
                sentinel: sentinel_key(&name(text)),
            },
            metadata: Some(ExtendedMetadata {
                start_time: start,
                ..ExtendedMetadata::default()
            }),
        };
        let mut details = vec![detail("base_1"), detail("base_2")];
        sort_details(&mut details);
        assert_eq!(details[0].backup.name, "base_2");
    }
}
