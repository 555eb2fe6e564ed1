//! Tests of the retention planner: a fixture that builds inventories (backups with their objects
//! and the WAL around them), the safety checks every plan must pass, the table of cases and a
//! property test over random inventories and rules.

mod cases;
mod property;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use jiff::Timestamp;

use super::*;
use crate::pg::wal::Segment;

pub(super) const SEG: u64 = 16 << 20;
pub(super) const SYS: u64 = 7_312_345_678_901_234_567;

/// `h` hours after a fixed epoch.
pub(super) fn hour(h: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + h * 3600).unwrap()
}

/// "Now" for every case: long after every backup.
pub(super) fn now() -> Timestamp {
    hour(10_000)
}

/// The name of segment `n` of timeline `tl`.
pub(super) fn seg(tl: u32, n: u64) -> String {
    Segment {
        timeline: tl,
        number: n,
        size: SEG,
    }
    .name()
}

/// `wal_005/<segment>.lz4`.
pub(super) fn wal_key(tl: u32, n: u64) -> String {
    format!("wal_005/{}.lz4", seg(tl, n))
}

/// Builds an inventory.
#[derive(Debug, Clone, Default)]
pub(super) struct Fx {
    pub inv: Inventory,
}

impl Fx {
    pub fn new() -> Fx {
        Fx::default()
    }

    /// A full backup of cluster [`SYS`] starting in segment `n` of timeline `tl` and stopping in
    /// the next one; its sentinel written at hour `h`, started ten minutes before.
    pub fn full(&mut self, tl: u32, n: u64, h: i64) -> String {
        self.push(format!("base_{}", seg(tl, n)), tl, n, h, None)
    }

    /// A delta backup on `base`.
    pub fn delta(&mut self, tl: u32, n: u64, h: i64, base: &str) -> String {
        let token = crate::layout::backup::wal_file_name(base).to_string();
        let name = format!("base_{}_D_{token}", seg(tl, n));
        self.push(name, tl, n, h, Some(base.to_string()))
    }

    fn push(
        &mut self,
        name: String,
        tl: u32,
        n: u64,
        h: i64,
        delta_from: Option<String>,
    ) -> String {
        self.inv.backups.push(BackupInfo {
            name: name.clone(),
            sentinel_modified: hour(h),
            start_time: Some(hour(h) - jiff::SignedDuration::from_mins(10)),
            start_lsn: n * SEG + 0x28,
            finish_lsn: (n + 1) * SEG + 0x100,
            timeline: tl,
            system_identifier: Some(SYS),
            is_permanent: false,
            delta_from,
            user_data: None,
            segment_size: SEG,
        });
        for (key, size) in [
            (
                format!("basebackups_005/{name}_backup_stop_sentinel.json"),
                500,
            ),
            (format!("basebackups_005/{name}/metadata.json"), 200),
            (
                format!("basebackups_005/{name}/tar_partitions/part_001.tar.lz4"),
                10_000,
            ),
            (
                format!("basebackups_005/{name}/tar_partitions/pg_control.tar.lz4"),
                300,
            ),
            (format!("wal_005/{}.00000028.backup.lz4", seg(tl, n)), 50),
        ] {
            self.object_sized(&key, size);
        }
        name
    }

    /// Changes a backup.
    pub fn set(&mut self, name: &str, change: impl FnOnce(&mut BackupInfo)) -> &mut Fx {
        let backup = self
            .inv
            .backups
            .iter_mut()
            .find(|b| b.name == name)
            .unwrap();
        change(backup);
        self
    }

    pub fn permanent(&mut self, name: &str) -> &mut Fx {
        self.set(name, |b| b.is_permanent = true)
    }

    /// Segments `range` of timeline `tl`.
    pub fn wal(&mut self, tl: u32, range: RangeInclusive<u64>) -> &mut Fx {
        for n in range {
            let key = wal_key(tl, n);
            self.object_sized(&key, 1000);
        }
        self
    }

    pub fn object(&mut self, key: &str) -> &mut Fx {
        self.object_sized(key, 100)
    }

    fn object_sized(&mut self, key: &str, size: u64) -> &mut Fx {
        if !self.inv.objects.iter().any(|o| o.key == key) {
            self.inv.objects.push(StoredObject {
                key: key.to_string(),
                size,
                modified: hour(0),
            });
        }
        self
    }

    pub fn plan(&self, rule: &Rule) -> Result<Plan, PlanError> {
        self.plan_with(rule, Options::default())
    }

    /// Plans, and checks the plan is safe.
    pub fn plan_with(&self, rule: &Rule, options: Options) -> Result<Plan, PlanError> {
        let result = plan(&self.inv, rule, options, now());
        if let Ok(p) = &result {
            assert_safe(&self.inv, rule, p);
        }
        result
    }
}

/// The backup a key belongs to (sentinel or folder), if it is one of `names`.
fn backup_of<'a>(key: &str, names: &BTreeSet<&'a str>) -> Option<&'a str> {
    let rest = key.strip_prefix("basebackups_005/")?;
    let name = match rest.split_once('/') {
        Some((folder, _)) => folder,
        None => rest.strip_suffix("_backup_stop_sentinel.json")?,
    };
    names.get(name).copied()
}

/// Timeline and segment numbers a WAL key stands for, when it names a segment.
fn wal_segments(key: &str) -> Option<(u32, u64, u64)> {
    let file = key.strip_prefix("wal_005/")?;
    let s = Segment::parse(file.get(..24)?, SEG)?;
    let width = if file[24..].starts_with("_delta") {
        15
    } else {
        0
    };
    Some((s.timeline, s.number, s.number + width))
}

/// What every plan must satisfy, whatever the rule.
pub(super) fn assert_safe(inv: &Inventory, rule: &Rule, plan: &Plan) {
    assert_accounts(inv, plan);
    if matches!(rule, Rule::Everything { .. }) {
        assert_eq!(plan.delete_objects.len(), inv.objects.len());
        return;
    }
    assert_deleted_objects_are_unneeded(inv, rule, plan);
    assert_deleted_backups_may_go(inv, rule, plan);
}

/// Every backup of the inventory, those the plan deletes and those it keeps.
fn backup_sets<'a>(
    inv: &'a Inventory,
    plan: &'a Plan,
) -> (BTreeSet<&'a str>, BTreeSet<&'a str>, BTreeSet<&'a str>) {
    let all: BTreeSet<&str> = inv.backups.iter().map(|b| b.name.as_str()).collect();
    let deleted: BTreeSet<&str> = plan.delete_backups.iter().map(String::as_str).collect();
    let kept: BTreeSet<&str> = plan.keep_backups.iter().map(String::as_str).collect();
    (all, deleted, kept)
}

/// Each backup is kept or deleted; the objects are sorted, unique, and add up to the bytes
/// freed.
fn assert_accounts(inv: &Inventory, plan: &Plan) {
    let (all, deleted, kept) = backup_sets(inv, plan);
    assert!(deleted.is_disjoint(&kept), "{plan:?}");
    assert_eq!(
        deleted.union(&kept).copied().collect::<BTreeSet<_>>(),
        all,
        "every backup is kept or deleted"
    );
    let mut sorted = plan.delete_objects.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, plan.delete_objects, "sorted and unique");
    let sizes: BTreeMap<&str, u64> = inv
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.size))
        .collect();
    let freed: u64 = plan
        .delete_objects
        .iter()
        .map(|k| sizes.get(k.as_str()).copied().unwrap())
        .sum();
    assert_eq!(freed, plan.bytes_freed);
}

/// A deleted object belongs to a deleted backup, is an incomplete backup's, or is WAL outside
/// the range of every kept backup; `target` deletes only backups.
fn assert_deleted_objects_are_unneeded(inv: &Inventory, rule: &Rule, plan: &Plan) {
    let (all, deleted, kept) = backup_sets(inv, plan);
    let by_name: BTreeMap<&str, &BackupInfo> =
        inv.backups.iter().map(|b| (b.name.as_str(), b)).collect();
    let sentinels: BTreeSet<&str> = inv
        .objects
        .iter()
        .filter_map(|o| {
            let rest = o.key.strip_prefix("basebackups_005/")?;
            (!rest.contains('/')).then(|| rest.split("_backup").next())?
        })
        .collect();
    for key in &plan.delete_objects {
        if let Some(name) = backup_of(key, &all) {
            assert!(deleted.contains(name), "{key} of kept backup {name}");
            continue;
        }
        if let Some(folder) = key
            .strip_prefix("basebackups_005/")
            .and_then(|r| r.split_once('/'))
            .map(|(f, _)| f)
        {
            assert!(
                !sentinels.contains(folder),
                "{key}: a folder with a sentinel is not garbage"
            );
            assert!(!matches!(rule, Rule::Target { .. }), "{key}");
            continue;
        }
        assert!(
            !matches!(rule, Rule::Target { .. }),
            "target never deletes WAL: {key}"
        );
        let (tl, first, last) = wal_segments(key)
            .unwrap_or_else(|| panic!("{key}: only WAL naming a segment is deleted"));
        for name in &kept {
            let b = by_name[name];
            let start = (b.start_lsn - 1) / b.segment_size;
            let stop = b.finish_lsn / b.segment_size;
            assert!(
                !(b.timeline == tl && first <= stop && last >= start),
                "{key} is in the range of kept backup {name}"
            );
        }
    }
}

/// Kept deltas keep their bases; no permanent backup, none of another cluster (`retain`,
/// `before`) and none at all (`garbage`) is deleted.
fn assert_deleted_backups_may_go(inv: &Inventory, rule: &Rule, plan: &Plan) {
    let (all, deleted, kept) = backup_sets(inv, plan);
    let by_name: BTreeMap<&str, &BackupInfo> =
        inv.backups.iter().map(|b| (b.name.as_str(), b)).collect();
    for name in &kept {
        if let Some(base) = by_name[name].delta_from.as_deref()
            && all.contains(base)
        {
            assert!(kept.contains(base), "kept {name} needs {base}");
        }
    }
    for name in &deleted {
        assert!(!by_name[name].is_permanent, "permanent {name} deleted");
    }
    if matches!(rule, Rule::Retain { .. } | Rule::Before { .. }) {
        let newest = inv.backups.iter().max_by_key(|b| {
            (
                b.start_time.unwrap_or(b.sentinel_modified),
                b.sentinel_modified,
                &b.name,
            )
        });
        for name in &deleted {
            assert_eq!(
                by_name[name].system_identifier,
                newest.unwrap().system_identifier,
                "{name} of another cluster deleted"
            );
        }
    }
    if matches!(rule, Rule::Garbage { .. }) {
        assert!(deleted.is_empty(), "garbage deletes no backup");
    }
}
