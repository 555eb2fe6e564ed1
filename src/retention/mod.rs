//! The plan of `walg delete`: which backups and which objects a retention rule removes, as a
//! pure function of the backups, the stored objects, the rule and the current time. No I/O, no
//! clock: the command lists storage, reads the documents, calls [`plan`], then prints (dry run)
//! or deletes exactly [`Plan::delete_objects`].
//!
//! WAL-G compat (internal/delete_handler.go, internal/databases/postgres/delete.go): the modes,
//! modifiers, target choice and error texts are WAL-G's `delete retain|before|everything|
//! target|garbage`. Where WAL-G can destroy what a user keeps, this planner is stricter:
//!
//! * **Clusters.** Backups are grouped by system identifier. `retain` and `before` act only on
//!   the group of the newest backup (by start time): a cluster re-created or upgraded under the
//!   same prefix starts again at low LSNs, and ordering by name or LSN alone would delete its
//!   newest backups (wal-g/wal-g#636). Backups of other groups are kept, with a note. A backup
//!   without a known system identifier is in the group "unknown": it cannot be proven to be of
//!   the current cluster, so it is only ever counted with other unknown ones.
//! * **Order.** Within a group: by timeline, then start LSN (then start time, sentinel time,
//!   name). With `--use-sentinel-time`: by `start_time` of `metadata.json`, falling back to the
//!   LSN order when any backup lacks one, as WAL-G does.
//! * **Fewer than N** backups: an empty plan and a note, never an error. When `--after` finds
//!   backups but fewer than N exist, nothing is deleted either (WAL-G would delete).
//! * **Deltas.** A backup a kept delta needs (its `delta_from` chain) is kept, with a note; so
//!   no delta is ever left without its base. `target` deletes every delta depending on the
//!   target.
//! * **WAL.** `retain`, `before` and `garbage` delete a WAL object only when it is older than
//!   *every* kept backup that is not kept merely for being permanent (for `garbage`: every
//!   non-permanent backup), and outside the `[start, stop]` segment range of every kept or
//!   permanent backup. Older means on the same or an earlier timeline and below the backup's
//!   start segment number: WAL of a later timeline follows the backup, WAL of an earlier one past
//!   its start may be another branch. `.history` files and names without a 24-hex segment name
//!   are never deleted but by `everything`. Incomplete backup folders (no sentinel) are deleted
//!   only when older than every such backup, as in WAL-G: a newer one may be a backup in
//!   progress.
//! * Only `basebackups_005/` and `wal_005/` are touched, except by `everything`.

mod objects;
mod order;
mod select;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::Serialize;

use objects::{Owner, SegmentSpan};
use order::Ordered;

/// One complete backup (a sentinel exists), with what its sentinel and `metadata.json` say.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupInfo {
    /// The backup name: the sentinel's file name before `_backup`.
    pub name: String,
    /// The sentinel object's modification time in storage (WAL-G's backup time).
    pub sentinel_modified: Timestamp,
    /// `start_time` of `metadata.json`, when it was read.
    pub start_time: Option<Timestamp>,
    /// Start LSN (sentinel `LSN`).
    pub start_lsn: u64,
    /// Stop LSN (sentinel `FinishLSN`).
    pub finish_lsn: u64,
    /// The timeline the backup started on (its name's first 8 hex digits).
    pub timeline: u32,
    /// `system_identifier`, when known.
    pub system_identifier: Option<u64>,
    /// `is_permanent` of `metadata.json`.
    pub is_permanent: bool,
    /// The parent of a delta backup (sentinel `DeltaFrom`); `None` for a full backup.
    pub delta_from: Option<String>,
    /// `user_data` of `metadata.json` (or the sentinel), for `target --target-user-data`.
    pub user_data: Option<serde_json::Value>,
    /// WAL segment size in bytes (16 MiB by default).
    pub segment_size: u64,
}

impl BackupInfo {
    /// A full backup: no `delta_from`.
    pub fn is_full(&self) -> bool {
        self.delta_from.is_none()
    }
}

/// One object under the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The key relative to the prefix: `wal_005/000000010000000000000004.lz4`,
    /// `basebackups_005/base_…/tar_partitions/part_001.tar.lz4`,
    /// `basebackups_005/base_…_backup_stop_sentinel.json`.
    pub key: String,
    pub size: u64,
    pub modified: Timestamp,
}

/// Everything the planner looks at: the complete backups and every object under the prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub backups: Vec<BackupInfo>,
    pub objects: Vec<StoredObject>,
}

/// `FULL` / `FIND_FULL` of `retain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Modifier {
    /// Count every backup.
    #[default]
    None,
    /// `FULL`: count full backups only (their deltas are kept with them).
    Full,
    /// `FIND_FULL`: the first full backup at or past the N-th.
    FindFull,
}

/// A backup name prefix or a time, as `before` and `--after` take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// The backups whose name starts with this text.
    Name(String),
    /// The backups whose time is at or after this one.
    Time(Timestamp),
}

impl Anchor {
    /// An RFC 3339 time when `text` parses as one (with an offset), else a name: WAL-G tries
    /// the time first.
    pub fn parse(text: &str) -> Anchor {
        match text.parse::<Timestamp>() {
            Ok(time) => Anchor::Time(time),
            Err(_) => Anchor::Name(text.to_string()),
        }
    }
}

/// Which backup `delete target` removes.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSelector {
    /// A backup name; `LATEST` is the backup whose sentinel was modified last.
    Name(String),
    /// `--target-user-data`: the one backup whose `user_data` equals this JSON.
    UserData(serde_json::Value),
}

/// What `delete garbage` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GarbageScope {
    /// Old WAL and incomplete backup folders.
    #[default]
    All,
    /// `ARCHIVES`: old WAL only.
    Archives,
    /// `BACKUPS`: incomplete backup folders only.
    Backups,
}

/// A `walg delete` mode with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `retain [FULL|FIND_FULL] N [--after NAME|TIME]`: keep the N newest backups (and, with
    /// `after`, every backup from that one on); delete older backups and their WAL.
    Retain {
        modifier: Modifier,
        count: u32,
        after: Option<Anchor>,
    },
    /// `before [FIND_FULL] NAME|TIME`: delete the backups older than the one named (or the
    /// first one at or after the time), and their WAL.
    Before { find_full: bool, anchor: Anchor },
    /// `everything [FORCE]`: every object under the prefix; permanent backups need `FORCE`.
    Everything { force: bool },
    /// `target [FIND_FULL] NAME | --target-user-data JSON`: one backup and every delta that
    /// depends on it (with `FIND_FULL`: its whole chain from the full backup). Never WAL.
    Target {
        find_full: bool,
        selector: TargetSelector,
    },
    /// `garbage [ARCHIVES|BACKUPS] [--without-backup-check]`: WAL older than every
    /// non-permanent backup and incomplete backup folders older than them; never a backup.
    Garbage {
        scope: GarbageScope,
        without_backup_check: bool,
    },
}

/// Flags shared by every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// `--use-sentinel-time`: order backups by `metadata.json` `start_time`, and use it as the
    /// backup time of time arguments (instead of the sentinel's modification time).
    pub use_sentinel_time: bool,
}

/// What a delete would do. `Serialize` for `--json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The backup the rule resolved to (`retain`, `before`, `target`), if any.
    pub target: Option<String>,
    /// Backups deleted, in planning order (oldest first; other clusters before the current one).
    pub delete_backups: Vec<String>,
    /// Backups kept, in the same order.
    pub keep_backups: Vec<String>,
    /// Keys of the objects to delete, sorted.
    pub delete_objects: Vec<String>,
    /// Sum of the sizes of `delete_objects`.
    pub bytes_freed: u64,
    /// One line each: why something is kept or why nothing is deleted.
    pub notes: Vec<String>,
}

/// Why no plan can be made. One line each, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `retain 0`.
    #[error("cannot retain less than one backup: see `delete everything`")]
    RetainZero,
    /// A time argument later than now.
    #[error("cannot delete {what} a future time ({time})")]
    FutureTime { what: &'static str, time: Timestamp },
    /// A named backup (or one matching the user data) does not exist.
    #[error("backup not found: {0}")]
    NotFound(String),
    /// `retain`/`before` resolved to a delta backup (WAL-G's text).
    #[error(
        "{0} is incremental and it's predecessors cannot be deleted. Consider FIND_FULL option."
    )]
    Incremental(String),
    /// `target` would delete a permanent backup.
    #[error("unable to delete permanent backup {}", .0.join(", "))]
    Permanent(Vec<String>),
    /// `everything` without `FORCE` while permanent backups exist.
    #[error("found permanent backups {}: use FORCE to delete them too", .0.join(", "))]
    PermanentExist(Vec<String>),
    /// `--target-user-data` matches more than one backup.
    #[error("more than one backup has this user data: {}", .0.join(", "))]
    AmbiguousUserData(Vec<String>),
    /// `retain`/`before` named a backup of a cluster other than the current one.
    #[error(
        "backup {name} belongs to another cluster (system identifier {other}) than the newest backup \
         ({current}): retain and before act only on the current cluster; use `delete target`"
    )]
    OtherCluster {
        name: String,
        other: String,
        current: String,
    },
    /// The inventory contradicts itself.
    #[error("invalid backup inventory: {0}")]
    Inventory(String),
}

/// Why a backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// The rule keeps it (or the mode deletes no backup).
    Rule,
    /// A backup kept by the rule is a delta on it (directly or further down).
    Chain,
    /// Permanent, where the rule would delete it.
    Permanent,
    /// A permanent (or permanent-chain) delta depends on it.
    PermanentChain,
    /// Of another cluster than the one `retain`/`before` act on.
    OtherCluster,
}

impl Keep {
    /// Whether the backup bounds the WAL that may be deleted (it is kept for restores from it
    /// and points in time after it). Permanent backups keep only their own range, as in WAL-G.
    fn bounds_wal(self) -> bool {
        matches!(self, Keep::Rule | Keep::Chain | Keep::OtherCluster)
    }
}

/// Computes what `rule` deletes from `inventory` at time `now`.
pub fn plan(
    inventory: &Inventory,
    rule: &Rule,
    options: Options,
    now: Timestamp,
) -> Result<Plan, PlanError> {
    // The plan must not depend on the order storage listed things in: every later step
    // iterates these in a fixed order, so ties resolve the same way every time.
    let mut sorted = inventory.clone();
    sorted.backups.sort_by(|a, b| a.name.cmp(&b.name));
    sorted.objects.sort_by(|a, b| a.key.cmp(&b.key));
    let inventory = &sorted;
    let ordered = Ordered::new(inventory, options)?;
    let mut notes = ordered.notes.clone();
    let decision = match rule {
        Rule::Everything { force } => return everything(&ordered, inventory, *force, notes),
        Rule::Target {
            find_full,
            selector,
        } => select::target(inventory, *find_full, selector, &mut notes)?,
        Rule::Retain {
            modifier,
            count,
            after,
        } => {
            if *count == 0 {
                return Err(PlanError::RetainZero);
            }
            if let Some(Anchor::Time(time)) = after
                && *time > now
            {
                return Err(PlanError::FutureTime {
                    what: "retain after",
                    time: *time,
                });
            }
            select::retain(&ordered, *modifier, *count, after.as_ref(), &mut notes)?
        }
        Rule::Before { find_full, anchor } => {
            if let Anchor::Time(time) = anchor
                && *time > now
            {
                return Err(PlanError::FutureTime {
                    what: "before",
                    time: *time,
                });
            }
            select::before(&ordered, *find_full, anchor, &mut notes)?
        }
        Rule::Garbage {
            scope,
            without_backup_check,
        } => garbage(inventory, *scope, *without_backup_check, &mut notes),
    };
    Ok(finish(inventory, &ordered, decision, notes))
}

/// What a mode decided before objects are looked at.
#[derive(Debug, Default)]
struct Decision {
    target: Option<usize>,
    /// Indices into `inventory.backups` the rule would delete, before permanence and chains.
    delete: BTreeSet<usize>,
    /// Indices kept because of another cluster.
    other_cluster: BTreeSet<usize>,
    /// Whether old WAL goes too, and incomplete backup folders.
    delete_wal: bool,
    delete_leftovers: bool,
    /// Delete old WAL/leftovers even when no backup bounds them (`--without-backup-check`).
    unbounded: bool,
    /// Kept backups that do not bound the WAL to delete (permanent ones, for `garbage`).
    unbounding: BTreeSet<usize>,
}

/// `everything`: every object; permanent backups only with `force`.
fn everything(
    ordered: &Ordered<'_>,
    inventory: &Inventory,
    force: bool,
    mut notes: Vec<String>,
) -> Result<Plan, PlanError> {
    let permanent: Vec<String> = ordered
        .all()
        .filter(|i| inventory.backups[*i].is_permanent)
        .map(|i| inventory.backups[i].name.clone())
        .collect();
    if !permanent.is_empty() {
        if !force {
            return Err(PlanError::PermanentExist(permanent));
        }
        notes.push(format!(
            "FORCE: permanent backups are deleted too: {}",
            permanent.join(", ")
        ));
    }
    let mut objects: BTreeMap<&str, u64> = BTreeMap::new();
    for object in &inventory.objects {
        objects.insert(&object.key, object.size);
    }
    Ok(Plan {
        target: None,
        delete_backups: ordered
            .all()
            .map(|i| inventory.backups[i].name.clone())
            .collect(),
        keep_backups: Vec::new(),
        bytes_freed: objects.values().sum(),
        delete_objects: objects.keys().map(|k| (*k).to_string()).collect(),
        notes,
    })
}

/// `garbage`: no backup goes; WAL and leftovers older than every non-permanent backup.
fn garbage(
    inventory: &Inventory,
    scope: GarbageScope,
    without_backup_check: bool,
    notes: &mut Vec<String>,
) -> Decision {
    let any_bound = inventory.backups.iter().any(|b| !b.is_permanent);
    if !any_bound && !without_backup_check {
        notes.push(
            "no non-permanent backup: nothing to delete (--without-backup-check deletes \
             unneeded objects anyway)"
                .to_string(),
        );
        return Decision::default();
    }
    Decision {
        delete_wal: scope != GarbageScope::Backups,
        delete_leftovers: scope != GarbageScope::Archives,
        unbounded: without_backup_check,
        unbounding: (0..inventory.backups.len())
            .filter(|i| inventory.backups[*i].is_permanent)
            .collect(),
        ..Decision::default()
    }
}

/// Applies permanence and delta chains to a decision, then picks the objects.
fn finish(
    inventory: &Inventory,
    ordered: &Ordered<'_>,
    decision: Decision,
    mut notes: Vec<String>,
) -> Plan {
    let backups = &inventory.backups;
    let (mut delete, mut keep) = keep_reasons(backups, &decision, &mut notes);
    keep_delta_bases(backups, &mut delete, &mut keep, &mut notes);

    let size = ordered.segment_size;
    let spans: Vec<SegmentSpan> = backups.iter().map(objects::backup_span).collect();
    let bounds: Vec<SegmentSpan> = keep
        .iter()
        .filter(|(_, k)| k.bounds_wal())
        .map(|(i, _)| spans[*i])
        .collect();
    let ranges: Vec<SegmentSpan> = keep.keys().map(|i| spans[*i]).collect();
    let may_delete_by_age = !bounds.is_empty() || decision.unbounded;
    if (decision.delete_wal || decision.delete_leftovers) && may_delete_by_age && size.is_none() {
        notes.push(
            "backups have different WAL segment sizes: no WAL or incomplete backup is deleted"
                .to_string(),
        );
    }
    let age = AgeLimit {
        size,
        bounds,
        ranges,
        may_delete_by_age,
    };
    let delete_objects = doomed_objects(inventory, &decision, &delete, &age, &mut notes);

    let names = |set: &dyn Fn(usize) -> bool| -> Vec<String> {
        ordered
            .all()
            .filter(|i| set(*i))
            .map(|i| backups[i].name.clone())
            .collect()
    };
    Plan {
        target: decision.target.map(|i| backups[i].name.clone()),
        delete_backups: names(&|i| delete.contains(&i)),
        keep_backups: names(&|i| !delete.contains(&i)),
        bytes_freed: delete_objects.values().sum(),
        delete_objects: delete_objects.keys().map(|k| (*k).to_string()).collect(),
        notes,
    }
}

/// The backups the decision deletes, less the permanent ones, and why each other backup is
/// kept.
fn keep_reasons(
    backups: &[BackupInfo],
    decision: &Decision,
    notes: &mut Vec<String>,
) -> (BTreeSet<usize>, BTreeMap<usize, Keep>) {
    let mut delete = decision.delete.clone();
    let mut keep: BTreeMap<usize, Keep> = BTreeMap::new();
    for (i, backup) in backups.iter().enumerate() {
        if delete.contains(&i) {
            if backup.is_permanent {
                delete.remove(&i);
                keep.insert(i, Keep::Permanent);
                notes.push(format!("{} is permanent: kept", backup.name));
            }
        } else if decision.other_cluster.contains(&i) {
            keep.insert(i, Keep::OtherCluster);
        } else if decision.unbounding.contains(&i) {
            keep.insert(i, Keep::Permanent);
        } else {
            keep.insert(i, Keep::Rule);
        }
    }
    (delete, keep)
}

/// Keeps every ancestor of a kept delta, until nothing changes.
fn keep_delta_bases(
    backups: &[BackupInfo],
    delete: &mut BTreeSet<usize>,
    keep: &mut BTreeMap<usize, Keep>,
    notes: &mut Vec<String>,
) {
    let by_name: BTreeMap<&str, usize> = backups
        .iter()
        .enumerate()
        .map(|(i, b)| (b.name.as_str(), i))
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        let kept: Vec<(usize, Keep)> = keep.iter().map(|(i, k)| (*i, *k)).collect();
        for (i, reason) in kept {
            let Some(base) = backups[i].delta_from.as_deref() else {
                continue;
            };
            let Some(&b) = by_name.get(base) else {
                continue;
            };
            if delete.remove(&b) {
                let why = if reason.bounds_wal() {
                    Keep::Chain
                } else {
                    Keep::PermanentChain
                };
                keep.insert(b, why);
                notes.push(format!(
                    "{} is kept: kept delta backup {} depends on it",
                    backups[b].name, backups[i].name
                ));
                changed = true;
            }
        }
    }
}

/// What decides whether WAL and incomplete backups are old enough to go.
struct AgeLimit {
    /// The WAL segment size, `None` when backups disagree (then nothing goes by age).
    size: Option<u64>,
    /// The spans of the kept backups that bound the WAL: what goes is older than all.
    bounds: Vec<SegmentSpan>,
    /// The spans of every kept backup: WAL inside one stays.
    ranges: Vec<SegmentSpan>,
    may_delete_by_age: bool,
}

/// The objects to delete, with their sizes: those of the deleted backups, and old WAL and
/// incomplete backups as the decision allows. Notes what it keeps that looks deletable.
fn doomed_objects<'i>(
    inventory: &'i Inventory,
    decision: &Decision,
    delete: &BTreeSet<usize>,
    age: &AgeLimit,
    notes: &mut Vec<String>,
) -> BTreeMap<&'i str, u64> {
    let mut delete_objects: BTreeMap<&str, u64> = BTreeMap::new();
    let mut kept_leftovers: BTreeSet<&str> = BTreeSet::new();
    let mut unknown_sentinels: BTreeSet<&str> = BTreeSet::new();
    let owners = objects::Owners::new(inventory);
    for object in &inventory.objects {
        let remove = match owners.owner(&object.key) {
            Owner::Backup(i) => delete.contains(&i),
            Owner::UnlistedSentinel(name) => {
                unknown_sentinels.insert(name);
                false
            }
            Owner::Leftover(folder) => {
                let old = decision.delete_leftovers
                    && age.may_delete_by_age
                    && age.size.is_some_and(|size| {
                        objects::leftover_span(folder, size)
                            .is_some_and(|span| span.older_than_all(&age.bounds))
                    });
                if decision.delete_leftovers && !old {
                    kept_leftovers.insert(folder);
                }
                old
            }
            Owner::Wal(name) => {
                decision.delete_wal
                    && age.may_delete_by_age
                    && age.size.is_some_and(|size| {
                        objects::wal_span(name, size).is_some_and(|span| {
                            span.older_than_all(&age.bounds) && !span.overlaps_any(&age.ranges)
                        })
                    })
            }
            Owner::Other => false,
        };
        if remove {
            delete_objects.insert(&object.key, object.size);
        }
    }
    for folder in kept_leftovers {
        notes.push(format!(
            "incomplete backup {folder} is not older than every kept backup: kept (it may be a \
             backup in progress)"
        ));
    }
    for name in unknown_sentinels {
        notes.push(format!(
            "backup {name} has a sentinel but is not in the inventory: its objects are kept"
        ));
    }
    delete_objects
}
