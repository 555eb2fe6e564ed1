//! The target of each mode: the backup `retain` and `before` keep from on, and the backups
//! `target` deletes.
//!
//! WAL-G's choices, over the current cluster's backups (newest first for counting):
//! `retain N` → the N-th newest; `FULL N` → the N-th newest full backup; `FIND_FULL N` → the
//! first full backup at or past the N-th. `--after X` → the oldest backup from X on (a full one
//! with a modifier); the older of the two is the target. `before NAME` → the newest backup whose
//! name starts with NAME; `before TIME` → the oldest backup whose time is at or after TIME;
//! `FIND_FULL` → the first full backup at or before it. The target itself is kept.

use std::collections::{BTreeMap, BTreeSet};

use super::order::{Ordered, show_system_identifier};
use super::{Anchor, BackupInfo, Decision, Inventory, Modifier, PlanError, TargetSelector};

/// `retain`.
pub(super) fn retain(
    ordered: &Ordered<'_>,
    modifier: Modifier,
    count: u32,
    after: Option<&Anchor>,
    notes: &mut Vec<String>,
) -> Result<Decision, PlanError> {
    let Some(g) = ordered.current else {
        notes.push("no backups: nothing to delete".to_string());
        return Ok(Decision::default());
    };
    let members = &ordered.groups[g].members;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let full = |i: usize| ordered.backups[i].is_full();
    // Positions in `members` (oldest first); newest first is `.rev()`.
    let by_count = match modifier {
        Modifier::None => members.len().checked_sub(count),
        Modifier::Full => members
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, i)| full(**i))
            .nth(count.saturating_sub(1))
            .map(|(p, _)| p),
        Modifier::FindFull => members
            .iter()
            .enumerate()
            .rev()
            .skip(count.saturating_sub(1))
            .find(|(_, i)| full(**i))
            .map(|(p, _)| p),
    };
    let in_cluster = if ordered.groups.len() > 1 {
        " in the current cluster"
    } else {
        ""
    };
    let Some(by_count) = by_count else {
        let fulls = members.iter().filter(|i| full(**i)).count();
        notes.push(match modifier {
            Modifier::None => format!(
                "fewer than {count} backups{in_cluster} ({}): nothing to delete",
                members.len()
            ),
            Modifier::Full => {
                format!("fewer than {count} full backups{in_cluster} ({fulls}): nothing to delete")
            }
            Modifier::FindFull => format!(
                "no full backup at position {count} or older (newest first){in_cluster}: \
                 nothing to delete"
            ),
        });
        return Ok(Decision::default());
    };
    let target = match after {
        None => by_count,
        Some(anchor) => match after_position(ordered, g, modifier, anchor)? {
            Some(p) if p < by_count => {
                notes.push(format!(
                    "--after keeps every backup from {} on",
                    ordered.backups[members[p]].name
                ));
                p
            }
            _ => by_count,
        },
    };
    delete_before(ordered, g, target, notes)
}

/// The oldest backup at or after `anchor` (a full one with a modifier).
fn after_position(
    ordered: &Ordered<'_>,
    g: usize,
    modifier: Modifier,
    anchor: &Anchor,
) -> Result<Option<usize>, PlanError> {
    let members = &ordered.groups[g].members;
    let from = match anchor {
        Anchor::Name(prefix) => match members
            .iter()
            .position(|i| ordered.backups[*i].name.starts_with(prefix.as_str()))
        {
            Some(p) => p,
            None => return Err(not_in_cluster(ordered, g, prefix)),
        },
        Anchor::Time(time) => match members.iter().position(|i| ordered.time_of(*i) >= *time) {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    Ok(members.iter().enumerate().skip(from).find_map(|(p, i)| {
        (modifier == Modifier::None || ordered.backups[*i].is_full()).then_some(p)
    }))
}

/// `before`.
pub(super) fn before(
    ordered: &Ordered<'_>,
    find_full: bool,
    anchor: &Anchor,
    notes: &mut Vec<String>,
) -> Result<Decision, PlanError> {
    let Some(g) = ordered.current else {
        notes.push("no backups: nothing to delete".to_string());
        return Ok(Decision::default());
    };
    let members = &ordered.groups[g].members;
    let found = match anchor {
        Anchor::Name(prefix) => match members
            .iter()
            .rposition(|i| ordered.backups[*i].name.starts_with(prefix.as_str()))
        {
            Some(p) => p,
            None => return Err(not_in_cluster(ordered, g, prefix)),
        },
        Anchor::Time(time) => match members.iter().position(|i| ordered.time_of(*i) >= *time) {
            Some(p) => p,
            None => {
                notes.push(format!(
                    "no backup at or after {time}: no backup found for deletion"
                ));
                return Ok(Decision::default());
            }
        },
    };
    let target = if find_full {
        match members[..=found]
            .iter()
            .rposition(|i| ordered.backups[*i].is_full())
        {
            Some(p) => p,
            None => {
                return Err(PlanError::NotFound(format!(
                    "a full backup at or before {}",
                    ordered.backups[members[found]].name
                )));
            }
        }
    } else {
        found
    };
    delete_before(ordered, g, target, notes)
}

/// Deletes the backups of group `g` older than position `target`, with their WAL; backups of
/// other groups are kept.
fn delete_before(
    ordered: &Ordered<'_>,
    g: usize,
    target: usize,
    notes: &mut Vec<String>,
) -> Result<Decision, PlanError> {
    let group = &ordered.groups[g];
    let t = group.members[target];
    let name = &ordered.backups[t].name;
    if !ordered.backups[t].is_full() {
        return Err(PlanError::Incremental(name.clone()));
    }
    let mut other_cluster = BTreeSet::new();
    for (k, other) in ordered.groups.iter().enumerate() {
        if k == g {
            continue;
        }
        other_cluster.extend(other.members.iter().copied());
        let names: Vec<&str> = other
            .members
            .iter()
            .map(|i| ordered.backups[*i].name.as_str())
            .collect();
        notes.push(format!(
            "kept: {} backup(s) of another cluster (system identifier {}): {}; retain and before \
             act only on the cluster of the newest backup (system identifier {})",
            names.len(),
            show_system_identifier(other.system_identifier),
            names.join(", "),
            show_system_identifier(group.system_identifier)
        ));
    }
    Ok(Decision {
        target: Some(t),
        delete: group.members[..target].iter().copied().collect(),
        other_cluster,
        delete_wal: true,
        delete_leftovers: true,
        ..Decision::default()
    })
}

/// The error for a name prefix that no backup of the current cluster starts with.
fn not_in_cluster(ordered: &Ordered<'_>, g: usize, prefix: &str) -> PlanError {
    let elsewhere = ordered.groups.iter().enumerate().find_map(|(k, other)| {
        let hit = other
            .members
            .iter()
            .find(|i| ordered.backups[**i].name.starts_with(prefix))?;
        (k != g).then_some((other.system_identifier, *hit))
    });
    match elsewhere {
        Some((id, i)) => PlanError::OtherCluster {
            name: ordered.backups[i].name.clone(),
            other: show_system_identifier(id),
            current: show_system_identifier(ordered.groups[g].system_identifier),
        },
        None => PlanError::NotFound(prefix.to_string()),
    }
}

/// `target`: the selected backup and every delta depending on it; with `find_full`, the
/// chain's full backup and every delta depending on that. Fails on a permanent one.
pub(super) fn target(
    inventory: &Inventory,
    find_full: bool,
    selector: &TargetSelector,
    notes: &mut Vec<String>,
) -> Result<Decision, PlanError> {
    let backups = &inventory.backups;
    let by_name: BTreeMap<&str, usize> = backups
        .iter()
        .enumerate()
        .map(|(i, b)| (b.name.as_str(), i))
        .collect();
    let selected = selected_backup(backups, &by_name, selector)?;
    let root = if find_full {
        chain_root(backups, &by_name, selected, notes)
    } else {
        selected
    };
    let delete = with_dependents(backups, root);
    let mut permanent: Vec<String> = delete
        .iter()
        .filter(|i| backups[**i].is_permanent)
        .map(|i| backups[*i].name.clone())
        .collect();
    permanent.sort();
    if !permanent.is_empty() {
        return Err(PlanError::Permanent(permanent));
    }
    Ok(Decision {
        target: Some(selected),
        delete,
        ..Decision::default()
    })
}

/// The backup `selector` names: by name (`LATEST`: the newest sentinel) or by its user data,
/// which must match exactly one.
fn selected_backup(
    backups: &[BackupInfo],
    by_name: &BTreeMap<&str, usize>,
    selector: &TargetSelector,
) -> Result<usize, PlanError> {
    Ok(match selector {
        TargetSelector::Name(name) => match by_name.get(name.as_str()) {
            Some(&i) => i,
            None if name == "LATEST" => (0..backups.len())
                .max_by_key(|i| (backups[*i].sentinel_modified, &backups[*i].name))
                .ok_or_else(|| PlanError::NotFound(name.clone()))?,
            None => return Err(PlanError::NotFound(name.clone())),
        },
        TargetSelector::UserData(data) => {
            let matching: Vec<usize> = (0..backups.len())
                .filter(|i| backups[*i].user_data.as_ref() == Some(data))
                .collect();
            match matching.as_slice() {
                [] => return Err(PlanError::NotFound(format!("user data {data}"))),
                [one] => *one,
                more => {
                    let mut names: Vec<String> =
                        more.iter().map(|i| backups[*i].name.clone()).collect();
                    names.sort();
                    return Err(PlanError::AmbiguousUserData(names));
                }
            }
        }
    })
}

/// The full backup of the delta chain `selected` is in, or the oldest of its chain that
/// exists (noted).
fn chain_root(
    backups: &[BackupInfo],
    by_name: &BTreeMap<&str, usize>,
    selected: usize,
    notes: &mut Vec<String>,
) -> usize {
    let mut root = selected;
    let mut seen = BTreeSet::from([root]);
    while let Some(base) = backups[root].delta_from.as_deref() {
        match by_name.get(base) {
            Some(&b) if seen.insert(b) => root = b,
            Some(_) => break,
            None => {
                notes.push(format!(
                    "{} is a delta of {base}, which does not exist: the chain is deleted from {}",
                    backups[root].name, backups[root].name
                ));
                break;
            }
        }
    }
    root
}

/// `root` and every delta depending on it, directly or further down.
fn with_dependents(backups: &[BackupInfo], root: usize) -> BTreeSet<usize> {
    let mut children: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, b) in backups.iter().enumerate() {
        if let Some(base) = b.delta_from.as_deref() {
            children.entry(base).or_default().push(i);
        }
    }
    let mut delete = BTreeSet::from([root]);
    let mut queue = vec![root];
    while let Some(i) = queue.pop() {
        for &child in children.get(backups[i].name.as_str()).into_iter().flatten() {
            if delete.insert(child) {
                queue.push(child);
            }
        }
    }
    delete
}
