//! Which backup, incomplete backup or WAL segment range each stored object belongs to, and when
//! a range of segments is "older" than a kept backup.
//!
//! A WAL object's segment is the 24-hex segment name that starts its file name: a segment
//! (`000000010000000000000004.lz4`), a `.partial` or `.backup` file, a WAL metadata `.json`, or
//! a WAL-delta file (`<group start>_delta…`, which covers the 16 segments of its group). Other
//! names (`00000002.history`, bulk metadata) have none and are never old.
//!
//! Timelines: a segment on timeline `t` is older than a backup on timeline `T` when `t <= T` and
//! its number is below the backup's start segment number. A segment on a later timeline than a
//! backup is never older than it: it is the WAL that follows the backup after a promotion. A
//! segment of an earlier timeline past the backup's start segment is on a branch that may still
//! matter to another backup; it is kept.

use std::collections::{BTreeMap, BTreeSet};

use super::{BackupInfo, Inventory};
use crate::layout::backup::{NO_WAL_FILE_NAME, wal_file_name};
use crate::layout::{ObjectKind, classify};
use crate::pg::wal::Segment;

/// WAL-G writes one WAL-delta file per this many segments.
const DELTA_GROUP: u64 = 16;

/// Segments `first..=last` on one timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentSpan {
    pub timeline: u32,
    pub first: u64,
    pub last: u64,
}

impl SegmentSpan {
    /// Older than every one of `backups` (see the module doc); true when there is none.
    pub fn older_than_all(&self, backups: &[SegmentSpan]) -> bool {
        backups
            .iter()
            .all(|b| self.timeline <= b.timeline && self.last < b.first)
    }

    /// Shares a segment with one of `ranges` on the same timeline.
    pub fn overlaps_any(&self, ranges: &[SegmentSpan]) -> bool {
        ranges
            .iter()
            .any(|r| r.timeline == self.timeline && self.first <= r.last && self.last >= r.first)
    }
}

/// The WAL a backup needs: from the segment holding the byte before its start LSN (its name's
/// segment) to the segment holding its stop LSN, on its timeline. The stop end is one segment
/// generous when the stop LSN is on a segment boundary. `segment_size` is checked beforehand.
pub(super) fn backup_span(backup: &BackupInfo) -> SegmentSpan {
    let size = backup.segment_size.max(1);
    let first = backup.start_lsn.saturating_sub(1) / size;
    SegmentSpan {
        timeline: backup.timeline,
        first,
        last: (backup.finish_lsn / size).max(first),
    }
}

/// The segment of a 24-hex segment name.
fn segment(name: &str, size: u64) -> Option<Segment> {
    Segment::parse(name, size)
}

/// The segments a WAL object's file name (after `wal_005/`) stands for; `None` when it names
/// no segment.
pub(super) fn wal_span(file_name: &str, size: u64) -> Option<SegmentSpan> {
    let segment = segment(file_name.get(..24)?, size)?;
    let rest = file_name.get(24..).unwrap_or("");
    let count = if rest.starts_with("_delta") {
        DELTA_GROUP
    } else {
        1
    };
    Some(SegmentSpan {
        timeline: segment.timeline,
        first: segment.number,
        last: segment.number + (count - 1),
    })
}

/// The start segment of an incomplete backup folder: its first 24-hex run.
pub(super) fn leftover_span(folder: &str, size: u64) -> Option<SegmentSpan> {
    let token = wal_file_name(folder);
    if token == NO_WAL_FILE_NAME {
        return None;
    }
    let segment = segment(token, size)?;
    Some(SegmentSpan {
        timeline: segment.timeline,
        first: segment.number,
        last: segment.number,
    })
}

/// What an object is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner<'a> {
    /// The sentinel or a folder object of `inventory.backups[i]`.
    Backup(usize),
    /// The sentinel or folder of a backup the inventory does not list: never deleted.
    UnlistedSentinel(&'a str),
    /// An object in `basebackups_005/<folder>/` with no sentinel: an incomplete backup.
    Leftover(&'a str),
    /// A direct child of `wal_005/`, by file name (history files too: they name no segment).
    Wal(&'a str),
    /// Anything else: other folders, deeper keys under `wal_005/`, stray files.
    Other,
}

/// Resolves object keys to their owners.
pub(super) struct Owners<'a> {
    by_name: BTreeMap<&'a str, usize>,
    /// Names and sentinel stems of every sentinel object in storage.
    sentinels: BTreeSet<&'a str>,
}

impl<'a> Owners<'a> {
    pub fn new(inventory: &'a Inventory) -> Owners<'a> {
        let by_name = inventory
            .backups
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i))
            .collect();
        let mut sentinels = BTreeSet::new();
        for object in &inventory.objects {
            if let ObjectKind::Sentinel { name, stem } = classify(&object.key) {
                sentinels.insert(stem);
                sentinels.insert(name);
            }
        }
        Owners { by_name, sentinels }
    }

    pub fn owner<'k>(&self, key: &'k str) -> Owner<'k> {
        let kind = classify(key);
        if let Some(file) = kind.wal_file() {
            return Owner::Wal(file);
        }
        if let Some(folder) = kind.backup_folder() {
            return if let Some(&i) = self.by_name.get(folder) {
                Owner::Backup(i)
            } else if self.sentinels.contains(folder) {
                Owner::UnlistedSentinel(folder)
            } else {
                Owner::Leftover(folder)
            };
        }
        match kind {
            ObjectKind::Sentinel { name, .. } => match self.by_name.get(name) {
                Some(&i) => Owner::Backup(i),
                None => Owner::UnlistedSentinel(name),
            },
            _ => Owner::Other,
        }
    }
}
