//! Random inventories and rules: no plan ever deletes an object of a kept or permanent backup or
//! WAL in the range of one, and plans do not depend on the order of the input.

use proptest::prelude::*;

use super::*;

/// One random backup: timeline, start segment, extra segments to its stop, cluster, permanent,
/// a delta on the i-th backup made before it, hours, has a start time.
type RawBackup = (u32, u64, u64, u8, bool, Option<usize>, i64, bool);
/// One random WAL object: timeline, segment, kind.
type RawWal = (u32, u64, u8);

fn raw_backup() -> impl Strategy<Value = RawBackup> {
    (
        1u32..=3,
        1u64..0x60,
        0u64..3,
        0u8..6,
        prop::bool::weighted(0.25),
        prop::option::weighted(0.3, 0usize..8),
        0i64..100,
        prop::bool::weighted(0.9),
    )
}

fn build(backups: &[RawBackup], wal: &[RawWal], leftovers: &[(u32, u64)]) -> Fx {
    let mut fx = Fx::new();
    let mut names: Vec<String> = Vec::new();
    for &(tl, n, len, cluster, permanent, delta, h, has_start) in backups {
        let base = delta.and_then(|j| names.get(j).cloned());
        let token = seg(tl, n);
        let wanted = match &base {
            Some(base) => format!(
                "base_{token}_D_{}",
                crate::layout::backup::wal_file_name(base)
            ),
            None => format!("base_{token}"),
        };
        if names.contains(&wanted) {
            continue;
        }
        let name = match &base {
            Some(base) => fx.delta(tl, n, h, base),
            None => fx.full(tl, n, h),
        };
        fx.set(&name, |b| {
            b.finish_lsn = (n + len) * SEG + 0x100;
            b.is_permanent = permanent;
            // Mostly one cluster; sometimes another or an unknown one.
            b.system_identifier = match cluster {
                0 => None,
                1 => Some(2),
                _ => Some(1),
            };
            if !has_start {
                b.start_time = None;
            }
        });
        names.push(name);
    }
    for &(tl, n, kind) in wal {
        let key = match kind {
            0 => wal_key(tl, n),
            1 => format!("wal_005/{}.partial.lz4", seg(tl, n)),
            2 => format!("wal_005/{}_delta.lz4", seg(tl, n / 16 * 16)),
            _ => format!("wal_005/{tl:08X}.history.lz4"),
        };
        fx.object(&key);
    }
    for &(tl, n) in leftovers {
        fx.object(&format!(
            "basebackups_005/base_{}/tar_partitions/part_001.tar.lz4",
            seg(tl, n)
        ));
    }
    fx
}

/// A rule from random numbers; names come from the inventory.
fn rule(fx: &Fx, mode: u8, raw_modifier: u8, count: u32, pick: usize, h: i64) -> Rule {
    let modifier =
        [Modifier::None, Modifier::Full, Modifier::FindFull][usize::from(raw_modifier % 3)];
    let names: Vec<&str> = fx.inv.backups.iter().map(|b| b.name.as_str()).collect();
    let anchor = if pick.is_multiple_of(2) || names.is_empty() {
        Anchor::Time(hour(h))
    } else {
        Anchor::Name(names[pick % names.len()].to_string())
    };
    let named = names
        .get(pick % names.len().max(1))
        .map_or("LATEST".to_string(), |n| n.to_string());
    match mode % 8 {
        0 => Rule::Retain {
            modifier,
            count,
            after: None,
        },
        1 => Rule::Retain {
            modifier,
            count,
            after: Some(anchor),
        },
        2 => Rule::Before {
            find_full: modifier != Modifier::None,
            anchor,
        },
        3 => Rule::Everything {
            force: pick.is_multiple_of(2),
        },
        4 => Rule::Target {
            find_full: modifier != Modifier::None,
            selector: TargetSelector::Name(named),
        },
        5 => Rule::Garbage {
            scope: [
                GarbageScope::All,
                GarbageScope::Archives,
                GarbageScope::Backups,
            ][usize::from(raw_modifier % 3)],
            without_backup_check: pick.is_multiple_of(3),
        },
        _ => Rule::Retain {
            modifier: Modifier::None,
            count: count.max(1),
            after: None,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn plans_never_delete_what_is_kept(
        backups in prop::collection::vec(raw_backup(), 0..8),
        wal in prop::collection::vec((1u32..=3, 0u64..0x70, 0u8..4), 0..60),
        leftovers in prop::collection::vec((1u32..=3, 0u64..0x70), 0..3),
        (mode, modifier, count, pick, h) in (0u8..8, 0u8..3, 0u32..7, 0usize..16, 0i64..110),
        use_sentinel_time in any::<bool>(),
    ) {
        let fx = build(&backups, &wal, &leftovers);
        let rule = rule(&fx, mode, modifier, count, pick, h);
        let options = Options { use_sentinel_time };
        // `plan_with` checks every plan with `assert_safe`.
        let planned = fx.plan_with(&rule, options);
        let mut reversed = fx.clone();
        reversed.inv.backups.reverse();
        reversed.inv.objects.reverse();
        let again = reversed.plan_with(&rule, options);
        match (planned, again) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.delete_objects, b.delete_objects);
                prop_assert_eq!(a.delete_backups, b.delete_backups);
                prop_assert_eq!(a.keep_backups, b.keep_backups);
                prop_assert_eq!(a.target, b.target);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
        }
    }
}
