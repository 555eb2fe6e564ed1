//! The table of cases: every mode over fixed inventories.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use super::*;

fn retain(count: u32) -> Rule {
    retain_with(Modifier::None, count, None)
}

fn retain_with(modifier: Modifier, count: u32, after: Option<Anchor>) -> Rule {
    Rule::Retain {
        modifier,
        count,
        after,
    }
}

fn before(anchor: Anchor) -> Rule {
    Rule::Before {
        find_full: false,
        anchor,
    }
}

fn before_full(anchor: Anchor) -> Rule {
    Rule::Before {
        find_full: true,
        anchor,
    }
}

fn name(text: &str) -> Anchor {
    Anchor::Name(text.to_string())
}

fn time(h: i64, minutes: i64) -> Anchor {
    Anchor::Time(hour(h) + jiff::SignedDuration::from_mins(minutes))
}

fn target(find_full: bool, text: &str) -> Rule {
    Rule::Target {
        find_full,
        selector: TargetSelector::Name(text.to_string()),
    }
}

fn garbage(scope: GarbageScope) -> Rule {
    Rule::Garbage {
        scope,
        without_backup_check: false,
    }
}

/// The plain WAL segment files (`wal_005/<segment>.lz4`) a plan deletes, as (timeline, number).
fn deleted_segments(plan: &Plan) -> Vec<(u32, u64)> {
    plan.delete_objects
        .iter()
        .filter_map(|key| {
            let file = key.strip_prefix("wal_005/")?.strip_suffix(".lz4")?;
            let s = Segment::parse(file, SEG)?;
            Some((s.timeline, s.number))
        })
        .collect()
}

fn expand(ranges: &[(u32, RangeInclusive<u64>)]) -> Vec<(u32, u64)> {
    let mut out: Vec<(u32, u64)> = ranges
        .iter()
        .flat_map(|(tl, r)| r.clone().map(move |n| (*tl, n)))
        .collect();
    out.sort();
    out
}

/// One row: a rule, the backups it deletes (by index into the fixture's names), the plain
/// segments it deletes, and a text one of the notes must contain.
struct Case {
    rule: Rule,
    options: Options,
    deleted: &'static [usize],
    segments: &'static [(u32, RangeInclusive<u64>)],
    note: Option<&'static str>,
}

fn row(
    rule: Rule,
    deleted: &'static [usize],
    segments: &'static [(u32, RangeInclusive<u64>)],
) -> Case {
    Case {
        rule,
        options: Options::default(),
        deleted,
        segments,
        note: None,
    }
}

impl Case {
    fn note(mut self, text: &'static str) -> Case {
        self.note = Some(text);
        self
    }

    fn sentinel_time(mut self) -> Case {
        self.options.use_sentinel_time = true;
        self
    }
}

fn run(fx: &Fx, names: &[String], cases: Vec<Case>) {
    for (i, case) in cases.into_iter().enumerate() {
        let plan = fx
            .plan_with(&case.rule, case.options)
            .unwrap_or_else(|e| panic!("row {i} {:?}: {e}", case.rule));
        let expected: Vec<&str> = case.deleted.iter().map(|i| names[*i].as_str()).collect();
        assert_eq!(plan.delete_backups, expected, "row {i} {:?}", case.rule);
        assert_eq!(
            deleted_segments(&plan),
            expand(case.segments),
            "row {i} {:?}",
            case.rule
        );
        if let Some(note) = case.note {
            assert!(
                plan.notes.iter().any(|n| n.contains(note)),
                "row {i}: no note '{note}' in {:?}",
                plan.notes
            );
        }
    }
}

/// Five full backups on timeline 1 starting in segments 0x10, 0x20 … 0x50 (hours 1 to 5); WAL
/// 0x08 to 0x58 with a WAL-delta file per group of 16, bulk WAL metadata, an old incomplete
/// backup at 0x05 and one in progress at 0x55.
fn linear() -> (Fx, Vec<String>) {
    let mut fx = Fx::new();
    let names: Vec<String> = (1..=5).map(|i| fx.full(1, 0x10 * i, i as i64)).collect();
    fx.wal(1, 0x08..=0x58);
    for group in (0..=0x50).step_by(16) {
        fx.object(&format!("wal_005/{}_delta.lz4", seg(1, group)));
    }
    fx.object("wal_005/00000001000000000000004.json")
        .object("basebackups_005/base_000000010000000000000005/tar_partitions/part_001.tar.lz4")
        .object("basebackups_005/base_000000010000000000000055/tar_partitions/part_001.tar.lz4");
    (fx, names)
}

/// `retain`, with and without `FULL` and `FIND_FULL`, on one timeline.
#[test]
fn retain_on_one_timeline() {
    let (fx, names) = linear();
    run(
        &fx,
        &names,
        vec![
            row(retain(2), &[0, 1, 2], &[(1, 0x08..=0x3F)]),
            row(retain(1), &[0, 1, 2, 3], &[(1, 0x08..=0x4F)]),
            row(retain(5), &[], &[(1, 0x08..=0x0F)]),
            row(retain(6), &[], &[]).note("fewer than 6 backups (5): nothing to delete"),
            row(retain(100), &[], &[]).note("nothing to delete"),
            row(
                retain_with(Modifier::Full, 2, None),
                &[0, 1, 2],
                &[(1, 0x08..=0x3F)],
            ),
            row(
                retain_with(Modifier::FindFull, 2, None),
                &[0, 1, 2],
                &[(1, 0x08..=0x3F)],
            ),
            row(retain_with(Modifier::Full, 6, None), &[], &[])
                .note("fewer than 6 full backups (5)"),
        ],
    );
}

/// `before` a name, a name prefix or a time, on one timeline.
#[test]
fn before_on_one_timeline() {
    let (fx, names) = linear();
    run(
        &fx,
        &names,
        vec![
            row(before(name(&names[2])), &[0, 1], &[(1, 0x08..=0x2F)]),
            // A prefix: the newest backup whose name starts with it.
            row(
                before(name("base_0000000100000000000000")),
                &[0, 1, 2, 3],
                &[(1, 0x08..=0x4F)],
            ),
            row(
                before(name("base_00000001000000000000002")),
                &[0],
                &[(1, 0x08..=0x1F)],
            ),
            row(
                before_full(name(&names[3])),
                &[0, 1, 2],
                &[(1, 0x08..=0x3F)],
            ),
            // Time: the first backup at or after it is the target.
            row(before(time(2, 30)), &[0, 1], &[(1, 0x08..=0x2F)]),
            row(before(time(3, 0)), &[0, 1], &[(1, 0x08..=0x2F)]),
            row(before(time(0, 0)), &[], &[(1, 0x08..=0x0F)]),
            row(before(time(100, 0)), &[], &[]).note("no backup found for deletion"),
        ],
    );
}

/// `retain --after` a name or a time, on one timeline.
#[test]
fn retain_after_on_one_timeline() {
    let (fx, names) = linear();
    run(
        &fx,
        &names,
        vec![
            // --after: the older of the N-th newest and the first from the anchor on.
            row(
                retain_with(Modifier::None, 2, Some(name(&names[1]))),
                &[0],
                &[(1, 0x08..=0x1F)],
            )
            .note("--after keeps every backup from"),
            row(
                retain_with(Modifier::None, 4, Some(name(&names[3]))),
                &[0],
                &[(1, 0x08..=0x1F)],
            ),
            row(
                retain_with(Modifier::None, 2, Some(time(2, 30))),
                &[0, 1],
                &[(1, 0x08..=0x2F)],
            ),
            row(
                retain_with(Modifier::None, 2, Some(time(3, 30))),
                &[0, 1, 2],
                &[(1, 0x08..=0x3F)],
            ),
            row(
                retain_with(Modifier::None, 2, Some(time(50, 0))),
                &[0, 1, 2],
                &[(1, 0x08..=0x3F)],
            ),
            // Fewer than N: nothing, even with a time that would select older backups.
            row(retain_with(Modifier::None, 9, Some(time(2, 30))), &[], &[])
                .note("fewer than 9 backups"),
        ],
    );
}

/// `garbage` in each scope and `target`, on one timeline.
#[test]
fn garbage_and_target_on_one_timeline() {
    let (fx, names) = linear();
    run(
        &fx,
        &names,
        vec![
            row(garbage(GarbageScope::All), &[], &[(1, 0x08..=0x0F)]),
            row(garbage(GarbageScope::Archives), &[], &[(1, 0x08..=0x0F)]),
            row(garbage(GarbageScope::Backups), &[], &[]),
            row(target(false, &names[2]), &[2], &[]),
            row(target(true, &names[2]), &[2], &[]),
            row(target(false, "LATEST"), &[4], &[]),
        ],
    );
}

#[test]
fn retain_deletes_exactly_the_old_objects() {
    let (fx, names) = linear();
    let plan = fx.plan(&retain(2)).unwrap();
    assert_eq!(plan.target.as_deref(), Some(names[3].as_str()));
    let objects: BTreeSet<&str> = plan.delete_objects.iter().map(String::as_str).collect();
    // 3 backups × 4 objects, 3 backup history files, 56 segments, 4 WAL-delta files, 1
    // incomplete backup.
    assert_eq!(objects.len(), 12 + 3 + 56 + 4 + 1, "{objects:#?}");
    for gone in [
        "basebackups_005/base_000000010000000000000010_backup_stop_sentinel.json",
        "basebackups_005/base_000000010000000000000030/tar_partitions/part_001.tar.lz4",
        "basebackups_005/base_000000010000000000000005/tar_partitions/part_001.tar.lz4",
        "wal_005/000000010000000000000030.00000028.backup.lz4",
        "wal_005/000000010000000000000030_delta.lz4",
        "wal_005/00000001000000000000003F.lz4",
    ] {
        assert!(objects.contains(gone), "{gone}");
    }
    for kept in [
        "basebackups_005/base_000000010000000000000040_backup_stop_sentinel.json",
        "wal_005/000000010000000000000040.00000028.backup.lz4",
        "wal_005/000000010000000000000040.lz4",
        // Covers 0x40 to 0x4F.
        "wal_005/000000010000000000000040_delta.lz4",
        "wal_005/00000001000000000000004.json",
        // A newer incomplete backup may be in progress.
        "basebackups_005/base_000000010000000000000055/tar_partitions/part_001.tar.lz4",
    ] {
        assert!(!objects.contains(kept), "{kept}");
    }
    assert!(plan.notes.iter().any(|n| n.contains(
        "incomplete backup base_000000010000000000000055 is not older than every kept backup"
    )));
    assert_eq!(plan.keep_backups, names[3..].to_vec());
    let sizes = 3 * (500 + 200 + 10_000 + 300) + 3 * 50 + 56 * 1000 + 4 * 100 + 100;
    assert_eq!(plan.bytes_freed, sizes);

    let garbage = fx.plan(&garbage(GarbageScope::Backups)).unwrap();
    assert_eq!(
        garbage.delete_objects,
        ["basebackups_005/base_000000010000000000000005/tar_partitions/part_001.tar.lz4"]
    );
    let archives = fx.plan(&super::super::Rule::Garbage {
        scope: GarbageScope::Archives,
        without_backup_check: false,
    });
    let archives = archives.unwrap();
    assert!(
        archives
            .delete_objects
            .iter()
            .all(|k| k.starts_with("wal_005/"))
    );
    assert!(
        archives
            .delete_objects
            .contains(&"wal_005/000000010000000000000000_delta.lz4".to_string())
    );
}

#[test]
fn everything_deletes_every_object() {
    let (mut fx, names) = linear();
    fx.object("wal_005/00000002.history.lz4")
        .object("catchup_005/x");
    let plan = fx.plan(&Rule::Everything { force: false }).unwrap();
    assert_eq!(plan.delete_objects.len(), fx.inv.objects.len());
    assert_eq!(plan.delete_backups, names);
    fx.permanent(&names[1]);
    assert_eq!(
        fx.plan(&Rule::Everything { force: false }),
        Err(PlanError::PermanentExist(vec![names[1].clone()]))
    );
    let plan = fx.plan(&Rule::Everything { force: true }).unwrap();
    assert_eq!(plan.delete_objects.len(), fx.inv.objects.len());
    assert!(plan.notes.iter().any(|n| n.contains("FORCE")));
}

#[test]
fn errors() {
    let (mut fx, names) = linear();
    assert_eq!(fx.plan(&retain(0)), Err(PlanError::RetainZero));
    assert_eq!(
        fx.plan(&before(name("base_nope"))),
        Err(PlanError::NotFound("base_nope".to_string()))
    );
    assert!(matches!(
        fx.plan(&before(time(20_000, 0))),
        Err(PlanError::FutureTime { what: "before", .. })
    ));
    assert!(matches!(
        fx.plan(&retain_with(Modifier::None, 2, Some(time(20_000, 0)))),
        Err(PlanError::FutureTime { .. })
    ));
    assert_eq!(
        fx.plan(&retain_with(Modifier::None, 2, Some(name("base_nope")))),
        Err(PlanError::NotFound("base_nope".to_string()))
    );
    assert_eq!(
        fx.plan(&target(false, "base_nope")),
        Err(PlanError::NotFound("base_nope".to_string()))
    );
    // User data: exactly one backup must match.
    let data = serde_json::json!({"x": [3]});
    let by_data = Rule::Target {
        find_full: false,
        selector: TargetSelector::UserData(data.clone()),
    };
    assert!(matches!(fx.plan(&by_data), Err(PlanError::NotFound(_))));
    fx.set(&names[1], |b| b.user_data = Some(data.clone()));
    assert_eq!(
        fx.plan(&by_data).unwrap().delete_backups,
        [names[1].clone()]
    );
    fx.set(&names[3], |b| b.user_data = Some(data.clone()));
    assert_eq!(
        fx.plan(&by_data),
        Err(PlanError::AmbiguousUserData(vec![
            names[1].clone(),
            names[3].clone()
        ]))
    );
    // The inventory must be consistent.
    let mut twice = fx.clone();
    twice.inv.backups.push(twice.inv.backups[0].clone());
    assert!(matches!(
        twice.plan(&retain(1)),
        Err(PlanError::Inventory(_))
    ));
    let mut odd = fx.clone();
    odd.set(&names[0], |b| b.segment_size = 0);
    assert!(matches!(odd.plan(&retain(1)), Err(PlanError::Inventory(_))));
    let mut again = fx.clone();
    again.inv.objects.push(again.inv.objects[0].clone());
    assert!(matches!(
        again.plan(&retain(1)),
        Err(PlanError::Inventory(_))
    ));
    // Messages.
    assert_eq!(
        PlanError::Incremental("base_2_D_1".into()).to_string(),
        "base_2_D_1 is incremental and it's predecessors cannot be deleted. Consider FIND_FULL \
         option."
    );
    assert_eq!(
        PlanError::RetainZero.to_string(),
        "cannot retain less than one backup: see `delete everything`"
    );
}

#[test]
fn no_backups_at_all() {
    let mut fx = Fx::new();
    fx.wal(1, 1..=4);
    for rule in [retain(1), before(time(1, 0)), garbage(GarbageScope::All)] {
        let plan = fx.plan(&rule).unwrap();
        assert!(plan.delete_objects.is_empty(), "{rule:?}");
        assert!(!plan.notes.is_empty(), "{rule:?}");
    }
    let forced = fx
        .plan(&Rule::Garbage {
            scope: GarbageScope::All,
            without_backup_check: true,
        })
        .unwrap();
    assert_eq!(forced.delete_objects.len(), 4);
    assert_eq!(
        fx.plan(&Rule::Everything { force: false })
            .unwrap()
            .delete_objects
            .len(),
        4
    );
}

/// Permanent backups at the oldest, a middle and the newest position, with retain 1, 2, 3.
#[test]
fn permanent_backups_anywhere() {
    type Row = (
        usize,
        u32,
        &'static [usize],
        &'static [(u32, RangeInclusive<u64>)],
    );
    let rows: Vec<Row> = vec![
        (0, 1, &[1, 2, 3], &[(1, 0x08..=0x0F), (1, 0x12..=0x4F)]),
        (0, 2, &[1, 2], &[(1, 0x08..=0x0F), (1, 0x12..=0x3F)]),
        (0, 3, &[1], &[(1, 0x08..=0x0F), (1, 0x12..=0x2F)]),
        (2, 1, &[0, 1, 3], &[(1, 0x08..=0x2F), (1, 0x32..=0x4F)]),
        (2, 2, &[0, 1], &[(1, 0x08..=0x2F), (1, 0x32..=0x3F)]),
        // The permanent backup is the target itself.
        (2, 3, &[0, 1], &[(1, 0x08..=0x2F)]),
        (4, 1, &[0, 1, 2, 3], &[(1, 0x08..=0x4F)]),
        (4, 2, &[0, 1, 2], &[(1, 0x08..=0x3F)]),
        (4, 3, &[0, 1], &[(1, 0x08..=0x2F)]),
    ];
    for (permanent, count, deleted, segments) in rows {
        let (mut fx, names) = linear();
        fx.permanent(&names[permanent]);
        let mut case = row(retain(count), deleted, segments);
        if permanent < 5 - count as usize {
            case = case.note("is permanent: kept");
        }
        run(&fx, &names, vec![case]);
        let plan = fx.plan(&retain(count)).unwrap();
        let key = format!(
            "wal_005/{}.00000028.backup.lz4",
            seg(1, 0x10 * (permanent as u64 + 1))
        );
        assert!(!plan.delete_objects.contains(&key), "{key}");
        // Its WAL-delta file shares a segment with its range: kept.
        let delta = format!(
            "wal_005/{}_delta.lz4",
            seg(1, 0x10 * (permanent as u64 + 1))
        );
        assert!(!plan.delete_objects.contains(&delta), "{delta}");
        assert!(matches!(
            fx.plan(&target(false, &names[permanent])),
            Err(PlanError::Permanent(_))
        ));
    }
}

/// `garbage` keeps WAL from the oldest non-permanent backup on, and the ranges of permanent
/// backups; with only permanent backups it does nothing unless told not to check.
#[test]
fn garbage_keeps_the_ranges_of_permanent_backups() {
    let (mut fx, names) = linear();
    fx.permanent(&names[0]);
    run(
        &fx,
        &names,
        vec![row(
            garbage(GarbageScope::All),
            &[],
            &[(1, 0x08..=0x0F), (1, 0x12..=0x1F)],
        )],
    );
    // Only permanent backups: garbage does nothing unless told not to check.
    for name in &names {
        fx.permanent(name);
    }
    run(
        &fx,
        &names,
        vec![
            row(garbage(GarbageScope::All), &[], &[]).note("no non-permanent backup"),
            row(
                Rule::Garbage {
                    scope: GarbageScope::Archives,
                    without_backup_check: true,
                },
                &[],
                &[
                    (1, 0x08..=0x0F),
                    (1, 0x12..=0x1F),
                    (1, 0x22..=0x2F),
                    (1, 0x32..=0x3F),
                    (1, 0x42..=0x4F),
                    (1, 0x52..=0x58),
                ],
            ),
            row(
                retain(2),
                &[],
                &[
                    (1, 0x08..=0x0F),
                    (1, 0x12..=0x1F),
                    (1, 0x22..=0x2F),
                    (1, 0x32..=0x3F),
                ],
            ),
        ],
    );
}

/// Timeline 1 with backups at 0x10 and 0x20, promoted to timeline 2 in segment 0x2A (a
/// `.partial` on timeline 1, `00000002.history`), backups on timeline 2 at 0x30 and 0x40. The old
/// primary kept archiving timeline 1 up to 0x32.
fn promoted() -> (Fx, Vec<String>) {
    let mut fx = Fx::new();
    let names = vec![
        fx.full(1, 0x10, 1),
        fx.full(1, 0x20, 2),
        fx.full(2, 0x30, 3),
        fx.full(2, 0x40, 4),
    ];
    fx.wal(1, 0x08..=0x29)
        .wal(1, 0x2B..=0x32)
        .wal(2, 0x2A..=0x48)
        .object("wal_005/00000001000000000000002A.partial.lz4")
        .object("wal_005/00000002.history.lz4");
    (fx, names)
}

#[test]
fn timelines() {
    let (fx, names) = promoted();
    run(
        &fx,
        &names,
        vec![
            // Timeline 1 past the timeline-2 backup's start stays: it may be another branch.
            row(
                retain(2),
                &[0, 1],
                &[(1, 0x08..=0x29), (1, 0x2B..=0x2F), (2, 0x2A..=0x2F)],
            ),
            // A timeline-1 backup kept: no timeline-2 WAL is older than it.
            row(retain(3), &[0], &[(1, 0x08..=0x1F)]),
            row(
                retain(1),
                &[0, 1, 2],
                &[(1, 0x08..=0x29), (1, 0x2B..=0x32), (2, 0x2A..=0x3F)],
            ),
            row(
                before(time(3, 0)),
                &[0, 1],
                &[(1, 0x08..=0x29), (1, 0x2B..=0x2F), (2, 0x2A..=0x2F)],
            ),
            row(garbage(GarbageScope::All), &[], &[(1, 0x08..=0x0F)]),
        ],
    );
    let plan = fx.plan(&retain(2)).unwrap();
    assert!(
        plan.delete_objects
            .contains(&"wal_005/00000001000000000000002A.partial.lz4".to_string())
    );
    assert!(
        !plan
            .delete_objects
            .contains(&"wal_005/00000002.history.lz4".to_string())
    );
    let all = fx.plan(&Rule::Everything { force: false }).unwrap();
    assert!(
        all.delete_objects
            .contains(&"wal_005/00000002.history.lz4".to_string())
    );

    // A permanent backup on timeline 1 keeps its range while everything around it goes.
    let (mut fx, names) = promoted();
    fx.permanent(&names[1]);
    run(
        &fx,
        &names,
        vec![row(
            retain(1),
            &[0, 2],
            &[
                (1, 0x08..=0x1F),
                (1, 0x22..=0x29),
                (1, 0x2B..=0x32),
                (2, 0x2A..=0x3F),
            ],
        )],
    );
}

const OLD_CLUSTER: u64 = 1111;

/// An old cluster with backups at 0x100 to 0x120 (hours 1 to 3) and, re-created under the same
/// prefix, the current one at 0x10 to 0x30 (hours 10 to 12): the old backups have higher LSNs.
fn two_clusters() -> (Fx, Vec<String>) {
    let mut fx = Fx::new();
    let mut names = Vec::new();
    for (i, n) in [0x100, 0x110, 0x120].into_iter().enumerate() {
        let name = fx.full(1, n, 1 + i as i64);
        fx.set(&name, |b| b.system_identifier = Some(OLD_CLUSTER));
        names.push(name);
    }
    for (i, n) in [0x10, 0x20, 0x30].into_iter().enumerate() {
        names.push(fx.full(1, n, 10 + i as i64));
    }
    fx.wal(1, 0xF8..=0x128).wal(1, 0x08..=0x38);
    (fx, names)
}

#[test]
fn clusters_under_one_prefix() {
    let (fx, names) = two_clusters();
    run(
        &fx,
        &names,
        vec![
            // By LSN alone the old cluster's backups would be the newest and the current
            // cluster's would all go.
            row(retain(2), &[3], &[(1, 0x08..=0x1F)])
                .note("of another cluster (system identifier 1111)"),
            row(retain(1), &[3, 4], &[(1, 0x08..=0x2F)]),
            row(retain(3), &[], &[(1, 0x08..=0x0F)]),
            row(retain(4), &[], &[]).note("fewer than 4 backups in the current cluster (3)"),
            row(before(name(&names[5])), &[3, 4], &[(1, 0x08..=0x2F)]),
            row(before(time(11, 0)), &[3], &[(1, 0x08..=0x1F)]),
            row(garbage(GarbageScope::All), &[], &[(1, 0x08..=0x0F)]),
            row(target(false, &names[0]), &[0], &[]),
        ],
    );
    let plan = fx.plan(&retain(1)).unwrap();
    assert_eq!(plan.keep_backups, [&names[..3], &names[5..]].concat());
    assert!(matches!(
        fx.plan(&before(name(&names[1]))),
        Err(PlanError::OtherCluster { .. })
    ));

    // A backup of unknown cluster is never counted with known ones.
    let (mut fx, mut names) = two_clusters();
    let unknown = fx.full(1, 0x200, 5);
    fx.set(&unknown, |b| b.system_identifier = None);
    names.push(unknown.clone());
    run(
        &fx,
        &names,
        vec![row(retain(1), &[3, 4], &[(1, 0x08..=0x2F)]).note("system identifier unknown")],
    );
    // … and when it is the newest, it is a cluster of its own.
    fx.set(&unknown, |b| {
        b.sentinel_modified = hour(20);
        b.start_time = Some(hour(20));
    });
    run(
        &fx,
        &names,
        vec![row(retain(2), &[], &[]).note("fewer than 2 backups in the current cluster (1)")],
    );
}

/// F1 ← D1a ← D1b, F2 ← D2a ← D2b at 0x10, 0x14, 0x18, 0x20, 0x24, 0x28.
fn chains() -> (Fx, Vec<String>) {
    let mut fx = Fx::new();
    let f1 = fx.full(1, 0x10, 1);
    let d1a = fx.delta(1, 0x14, 2, &f1);
    let d1b = fx.delta(1, 0x18, 3, &d1a);
    let f2 = fx.full(1, 0x20, 4);
    let d2a = fx.delta(1, 0x24, 5, &f2);
    let d2b = fx.delta(1, 0x28, 6, &d2a);
    fx.wal(1, 0x08..=0x2C);
    (fx, vec![f1, d1a, d1b, f2, d2a, d2b])
}

#[test]
fn delta_chains() {
    let (fx, names) = chains();
    assert_eq!(
        names[1],
        "base_000000010000000000000014_D_000000010000000000000010"
    );
    run(
        &fx,
        &names,
        vec![
            row(retain(3), &[0, 1, 2], &[(1, 0x08..=0x1F)]),
            row(
                retain_with(Modifier::FindFull, 1, None),
                &[0, 1, 2],
                &[(1, 0x08..=0x1F)],
            ),
            row(
                retain_with(Modifier::FindFull, 3, None),
                &[0, 1, 2],
                &[(1, 0x08..=0x1F)],
            ),
            row(
                retain_with(Modifier::FindFull, 4, None),
                &[],
                &[(1, 0x08..=0x0F)],
            ),
            row(retain_with(Modifier::FindFull, 7, None), &[], &[])
                .note("no full backup at position 7 or older"),
            row(
                retain_with(Modifier::Full, 1, None),
                &[0, 1, 2],
                &[(1, 0x08..=0x1F)],
            ),
            row(
                retain_with(Modifier::Full, 2, None),
                &[],
                &[(1, 0x08..=0x0F)],
            ),
            row(
                before_full(name(&names[4])),
                &[0, 1, 2],
                &[(1, 0x08..=0x1F)],
            ),
            row(before_full(time(5, 30)), &[0, 1, 2], &[(1, 0x08..=0x1F)]),
            // FIND_FULL with --after: the first full backup from the anchor on.
            row(
                retain_with(Modifier::FindFull, 1, Some(name(&names[1]))),
                &[0, 1, 2],
                &[(1, 0x08..=0x1F)],
            ),
            row(target(false, &names[1]), &[1, 2], &[]),
            row(target(false, &names[0]), &[0, 1, 2], &[]),
            row(target(true, &names[2]), &[0, 1, 2], &[]),
            row(target(true, &names[3]), &[3, 4, 5], &[]),
        ],
    );
    for (rule, incremental) in [
        (retain(1), 5),
        (retain(2), 4),
        (before(name(&names[4])), 4),
        (before(time(5, 30)), 5),
        (retain_with(Modifier::None, 1, Some(name(&names[2]))), 2),
    ] {
        assert_eq!(
            fx.plan(&rule),
            Err(PlanError::Incremental(names[incremental].clone())),
            "{rule:?}"
        );
    }
    let mut fx = fx.clone();
    fx.permanent(&names[5]);
    assert_eq!(
        fx.plan(&target(false, &names[4])),
        Err(PlanError::Permanent(vec![names[5].clone()]))
    );
    assert_eq!(
        fx.plan(&target(true, &names[5])),
        Err(PlanError::Permanent(vec![names[5].clone()]))
    );
}

#[test]
fn kept_deltas_keep_their_bases() {
    // A delta of the older chain taken after the newer full backup.
    let mut fx = Fx::new();
    let f1 = fx.full(1, 0x10, 1);
    let d1a = fx.delta(1, 0x14, 2, &f1);
    let f2 = fx.full(1, 0x20, 3);
    let d1c = fx.delta(1, 0x28, 4, &d1a);
    fx.wal(1, 0x08..=0x2C);
    let names = vec![f1, d1a, f2, d1c];
    run(
        &fx,
        &names,
        vec![row(retain(2), &[], &[(1, 0x08..=0x0F)]).note(
            "base_000000010000000000000014_D_000000010000000000000010 is kept: kept delta backup \
             base_000000010000000000000028_D_000000010000000000000014 depends on it",
        )],
    );

    // A permanent delta keeps its base, which bounds no WAL of its own.
    let mut fx = Fx::new();
    let f1 = fx.full(1, 0x10, 1);
    let d1a = fx.delta(1, 0x14, 2, &f1);
    let f2 = fx.full(1, 0x20, 3);
    let f3 = fx.full(1, 0x30, 4);
    fx.wal(1, 0x08..=0x34).permanent(&d1a);
    let names = vec![f1, d1a, f2, f3];
    run(
        &fx,
        &names,
        vec![row(
            retain(1),
            &[2],
            &[(1, 0x08..=0x0F), (1, 0x12..=0x13), (1, 0x16..=0x2F)],
        )],
    );
}

/// Backups at 0x10, 0x20, 0x30 whose sentinel times disagree with their start times: the first
/// one's sentinel was rewritten at hour 10.
fn copied() -> (Fx, Vec<String>) {
    let mut fx = Fx::new();
    let names = vec![
        fx.full(1, 0x10, 1),
        fx.full(1, 0x20, 2),
        fx.full(1, 0x30, 3),
    ];
    for (name, h) in names.iter().zip([1, 2, 3]) {
        fx.set(name, |b| b.start_time = Some(hour(h)));
    }
    fx.set(&names[0], |b| b.sentinel_modified = hour(10));
    fx.wal(1, 0x08..=0x34);
    (fx, names)
}

#[test]
fn sentinel_time() {
    let (fx, names) = copied();
    run(
        &fx,
        &names,
        vec![
            // By sentinel time the first backup is at hour 10: it is the target.
            row(before(time(2, 30)), &[], &[(1, 0x08..=0x0F)]),
            row(before(time(2, 30)), &[0, 1], &[(1, 0x08..=0x2F)]).sentinel_time(),
            row(
                retain_with(Modifier::None, 1, Some(time(1, 30))),
                &[0],
                &[(1, 0x08..=0x1F)],
            )
            .sentinel_time(),
        ],
    );

    // Start times out of LSN order: --use-sentinel-time follows them.
    let (mut fx, names) = copied();
    fx.set(&names[1], |b| b.start_time = Some(hour(5)));
    run(
        &fx,
        &names,
        vec![
            row(retain(1), &[0, 1], &[(1, 0x08..=0x2F)]),
            // Order 0x10, 0x30, 0x20: the target is 0x20; WAL of 0x30 is not older than it.
            row(retain(1), &[0, 2], &[(1, 0x08..=0x1F)]).sentinel_time(),
        ],
    );
    // One start time missing: LSN order, as WAL-G falls back.
    fx.set(&names[2], |b| b.start_time = None);
    run(
        &fx,
        &names,
        vec![
            row(retain(1), &[0, 1], &[(1, 0x08..=0x2F)])
                .sentinel_time()
                .note("--use-sentinel-time: no start time for base_000000010000000000000030"),
        ],
    );
}

#[test]
fn objects_nobody_lists_are_kept() {
    let (mut fx, names) = linear();
    // A backup whose sentinel exists but that the inventory lacks (unreadable metadata, say).
    fx.object("basebackups_005/base_000000010000000000000003_backup_stop_sentinel.json")
        .object("basebackups_005/base_000000010000000000000003/tar_partitions/part_001.tar.lz4")
        .object("catchup_005/base_000000010000000000000001/x")
        .object("basebackups_005/stray.json")
        .object("wal_005/sub/000000010000000000000001.lz4");
    for rule in [retain(1), garbage(GarbageScope::All)] {
        let plan = fx.plan(&rule).unwrap();
        for key in [
            "basebackups_005/base_000000010000000000000003_backup_stop_sentinel.json",
            "basebackups_005/base_000000010000000000000003/tar_partitions/part_001.tar.lz4",
            "catchup_005/base_000000010000000000000001/x",
            "basebackups_005/stray.json",
            "wal_005/sub/000000010000000000000001.lz4",
        ] {
            assert!(
                !plan.delete_objects.contains(&key.to_string()),
                "{rule:?} {key}"
            );
        }
        assert!(plan.notes.iter().any(|n| n.contains(
            "backup base_000000010000000000000003 has a sentinel but is not in the inventory"
        )));
    }
    assert_eq!(
        fx.plan(&retain(1)).unwrap().delete_backups,
        names[..4].to_vec()
    );
}

#[test]
fn different_segment_sizes_keep_all_wal() {
    let (mut fx, names) = linear();
    fx.set(&names[0], |b| {
        b.segment_size = 64 << 20;
        b.start_lsn = 0x10 * SEG + 0x28;
    });
    let plan = fx.plan(&retain(2)).unwrap();
    assert_eq!(plan.delete_backups, names[..3].to_vec());
    assert!(plan.delete_objects.iter().all(|k| {
        k.starts_with("basebackups_005/base_0000000100000000000000")
            && !k.contains("base_000000010000000000000005")
    }));
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("different WAL segment sizes"))
    );
}

#[test]
fn anchors_parse_like_walg() {
    assert_eq!(
        Anchor::parse("2019-12-12T12:12:12Z"),
        Anchor::Time("2019-12-12T12:12:12Z".parse().unwrap())
    );
    assert_eq!(
        Anchor::parse("2019-12-12T12:12:12.5+03:00"),
        Anchor::Time("2019-12-12T09:12:12.5Z".parse().unwrap())
    );
    // Go's RFC 3339 needs an offset: without one it is a name.
    assert_eq!(
        Anchor::parse("2019-12-12T12:12:12"),
        name("2019-12-12T12:12:12")
    );
    assert_eq!(Anchor::parse("base_0001"), name("base_0001"));
}

#[test]
fn plans_serialize_for_json_output() {
    let (fx, _) = linear();
    let plan = fx.plan(&retain(4)).unwrap();
    let value = serde_json::to_value(&plan).unwrap();
    assert_eq!(value["target"], "base_000000010000000000000020");
    assert_eq!(value["delete_backups"][0], "base_000000010000000000000010");
    assert_eq!(value["bytes_freed"], plan.bytes_freed);
    assert!(value["delete_objects"].is_array());
    assert!(value["keep_backups"].is_array());
    assert!(value["notes"].is_array());
}
