//! Backups grouped by cluster and ordered oldest first, and the checks on the inventory that
//! make the order well defined (unique names and keys, valid segment sizes).
//!
//! Groups: one per system identifier, and one for backups whose identifier is unknown. The
//! current group is the group of the newest backup by start time (the sentinel's modification
//! time when the start time is unknown): start times survive copies between storages, sentinel
//! times do not.
//!
//! Order within a group: timeline, start LSN, start time, sentinel time, name. With
//! `--use-sentinel-time` and a start time for every backup: start time, then the same.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::{BackupInfo, Inventory, Options, PlanError};

/// WAL-G's default WAL segment size, used when there is no backup to take it from.
const DEFAULT_SEGMENT_SIZE: u64 = 16 << 20;

/// The backups of one cluster, oldest first (indices into `Inventory::backups`).
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub system_identifier: Option<u64>,
    pub members: Vec<usize>,
}

/// The inventory's backups, grouped and ordered.
#[derive(Debug, Clone)]
pub(super) struct Ordered<'a> {
    pub backups: &'a [BackupInfo],
    /// Other clusters first (by their newest backup), the current one last.
    pub groups: Vec<Group>,
    /// The group of the newest backup; `None` when there is no backup.
    pub current: Option<usize>,
    /// Ordered (and timed) by `start_time`.
    pub by_start_time: bool,
    /// The WAL segment size of every backup; `None` when they differ.
    pub segment_size: Option<u64>,
    /// What the user should know about the order.
    pub notes: Vec<String>,
}

/// The time that picks the newest backup.
fn newest_key(b: &BackupInfo) -> (Timestamp, Timestamp, &str) {
    (
        b.start_time.unwrap_or(b.sentinel_modified),
        b.sentinel_modified,
        b.name.as_str(),
    )
}

fn by_lsn(a: &BackupInfo, b: &BackupInfo) -> Ordering {
    (a.timeline, a.start_lsn)
        .cmp(&(b.timeline, b.start_lsn))
        .then_with(|| newest_key(a).cmp(&newest_key(b)))
}

fn by_start_time(a: &BackupInfo, b: &BackupInfo) -> Ordering {
    a.start_time.cmp(&b.start_time).then_with(|| by_lsn(a, b))
}

/// Shown for a system identifier.
pub(super) fn show_system_identifier(id: Option<u64>) -> String {
    id.map_or_else(|| "unknown".to_string(), |id| id.to_string())
}

impl<'a> Ordered<'a> {
    pub fn new(inventory: &'a Inventory, options: Options) -> Result<Ordered<'a>, PlanError> {
        let backups = inventory.backups.as_slice();
        check(inventory)?;
        let mut notes = Vec::new();
        let mut sizes: BTreeSet<u64> = backups.iter().map(|b| b.segment_size).collect();
        let segment_size = match sizes.len() {
            0 => Some(DEFAULT_SEGMENT_SIZE),
            1 => sizes.pop_first(),
            _ => None,
        };
        let missing: Vec<&str> = backups
            .iter()
            .filter(|b| b.start_time.is_none())
            .map(|b| b.name.as_str())
            .collect();
        let by_time = options.use_sentinel_time && missing.is_empty();
        if options.use_sentinel_time && !missing.is_empty() {
            notes.push(format!(
                "--use-sentinel-time: no start time for {}: ordering by timeline and LSN",
                missing.join(", ")
            ));
        }
        let mut grouped: BTreeMap<Option<u64>, Vec<usize>> = BTreeMap::new();
        for (i, b) in backups.iter().enumerate() {
            grouped.entry(b.system_identifier).or_default().push(i);
        }
        let compare = if by_time { by_start_time } else { by_lsn };
        let mut groups: Vec<Group> = grouped
            .into_iter()
            .map(|(system_identifier, mut members)| {
                members.sort_by(|x, y| compare(&backups[*x], &backups[*y]));
                Group {
                    system_identifier,
                    members,
                }
            })
            .collect();
        let newest_of = |g: &Group| g.members.iter().map(|i| newest_key(&backups[*i])).max();
        groups.sort_by(|a, b| newest_of(a).cmp(&newest_of(b)));
        let current = groups.len().checked_sub(1);
        Ok(Ordered {
            backups,
            groups,
            current,
            by_start_time: by_time,
            segment_size,
            notes,
        })
    }

    /// Every backup index in planning order: other clusters first, each oldest first.
    pub fn all(&self) -> impl Iterator<Item = usize> + '_ {
        self.groups.iter().flat_map(|g| g.members.iter().copied())
    }

    /// The backup's time for time arguments: the sentinel's modification time, or the start
    /// time with `--use-sentinel-time`.
    pub fn time_of(&self, i: usize) -> Timestamp {
        let b = &self.backups[i];
        match (self.by_start_time, b.start_time) {
            (true, Some(start)) => start,
            _ => b.sentinel_modified,
        }
    }
}

/// Unique backup names and object keys; segment sizes PostgreSQL can have.
fn check(inventory: &Inventory) -> Result<(), PlanError> {
    let mut names = BTreeSet::new();
    for b in &inventory.backups {
        if !names.insert(b.name.as_str()) {
            return Err(PlanError::Inventory(format!(
                "backup {} is listed twice",
                b.name
            )));
        }
        let size = b.segment_size;
        if !size.is_power_of_two() || !(1 << 20..=1 << 30).contains(&size) {
            return Err(PlanError::Inventory(format!(
                "backup {} has WAL segment size {size}, not a power of two from 1 MiB to 1 GiB",
                b.name
            )));
        }
    }
    let mut keys = BTreeSet::new();
    for o in &inventory.objects {
        if !keys.insert(o.key.as_str()) {
            return Err(PlanError::Inventory(format!(
                "object {} is listed twice",
                o.key
            )));
        }
    }
    Ok(())
}
