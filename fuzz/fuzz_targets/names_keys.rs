//! Backup names and object keys: parsing and building names (`walg::layout::backup`),
//! `Key::new`, the keys built from a name, and the classification of stored keys by
//! `walg delete` (`walg::retention::plan`). Input: one candidate name or key per line.
#![no_main]

use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use walg::compression::Decoder;
use walg::layout::backup::{
    self, StandardName, backup_name_of_sentinel, backup_name_of_sentinel_key, wal_file_name,
};
use walg::layout::{BackupName, ObjectKind, RunId, classify, wal_candidates, wal_key};
use walg::pg::wal::Segment;
use walg::retention::{
    self, BackupInfo, GarbageScope, Inventory, Modifier, Options, Rule, StoredObject,
};
use walg::storage::Key;

const MIB16: u64 = 16 << 20;

fn check_key(key: &Key) {
    let s = key.as_str();
    assert!(!s.starts_with('/') && !s.ends_with('/'), "key {s:?}");
    if !key.is_root() {
        for segment in s.split('/') {
            assert!(
                !segment.is_empty() && segment != "." && segment != ".." && !segment.contains('\0'),
                "key {s:?} has segment {segment:?}"
            );
        }
    }
    assert_eq!(
        Key::new(s).ok().as_ref(),
        Some(key),
        "Key::new is not idempotent"
    );
}

fn check_name(line: &str) {
    if let Ok(key) = Key::new(line) {
        check_key(&key);
        // (Joining an empty or all-`/` name gives the folder itself.)
        let joined = Key::new("basebackups_005").and_then(|k| k.join(line));
        if let (Ok(joined), false) = (joined, line.trim_matches('/').is_empty()) {
            check_key(&joined);
            assert!(joined.is_under(&Key::new("basebackups_005").expect("folder key")));
        }
    }
    if let Some(name) = StandardName::parse(line) {
        assert_eq!(name.as_str(), line);
        assert_eq!(name.wal_file_name(), &line[5..29]);
        if let Some(segment) = name.start_segment(MIB16) {
            assert_eq!(segment.name(), &line[5..29]);
        }
        if let Some(delta) = name.delta_of(line) {
            assert!(delta.is_delta());
            assert_eq!(delta.delta_base(), Some(&line[5..29]));
        }
    }
    if let Some(found) = StandardName::find_in(line) {
        assert!(line.contains(found.as_str()));
        assert!(StandardName::parse(found.as_str()).is_some());
        assert!(BackupName::parse(found.as_str()).is_ok());
    }
    let wal = wal_file_name(line);
    assert_eq!(wal.len(), 24);
    // A backup name is exactly what a key segment may be; every key built from one is valid
    // and classified back to that backup.
    let segment_ok =
        !line.is_empty() && !line.contains('/') && Key::new(line).is_ok_and(|k| k.as_str() == line);
    match BackupName::parse(line) {
        Ok(name) => {
            assert!(
                segment_ok,
                "{line:?} is a backup name but not one key segment"
            );
            let run = RunId::from_number(0x0123_4567_89ab_cdef);
            for key in [
                backup::sentinel_key(&name),
                backup::backup_folder(&name),
                backup::metadata_key(&name),
                backup::files_metadata_key(&name),
                backup::in_progress_marker_key(&name, &run),
                backup::tar_partitions_folder(&name),
                backup::tar_part_key(&name, 7, Decoder::Lz4),
                backup::pg_control_tar_key(&name, Decoder::None),
                backup::backup_label_tar_key(&name, Decoder::Zstd),
            ] {
                check_key(&key);
                assert!(key.as_str().starts_with("basebackups_005/"));
            }
            let sentinel = backup::sentinel_key(&name);
            assert!(
                backup_name_of_sentinel_key(&sentinel).is_some(),
                "sentinel key {sentinel} is not a sentinel key"
            );
            assert!(
                matches!(classify(sentinel.as_str()), ObjectKind::Sentinel { stem, .. } if stem == line),
                "sentinel key {sentinel} is not classified as one"
            );
            let metadata = backup::metadata_key(&name);
            assert_eq!(
                classify(metadata.as_str()),
                ObjectKind::Metadata { folder: line }
            );
            let marker = backup::in_progress_marker_key(&name, &run);
            assert_eq!(
                classify(marker.as_str()),
                ObjectKind::InProgressMarker { folder: line }
            );
            let part = backup::tar_part_key(&name, 7, Decoder::Lz4);
            assert_eq!(classify(part.as_str()).backup_folder(), Some(line));
        }
        Err(_) => assert!(
            !segment_ok,
            "{line:?} is one key segment but no backup name"
        ),
    }
    let kind = classify(line);
    if let Some(file) = kind.wal_file() {
        assert_eq!(line.strip_prefix("wal_005/"), Some(file));
        assert!(!file.is_empty() && !file.contains('/'));
    }
    if let Some(folder) = kind.backup_folder() {
        assert!(line.starts_with(&format!("basebackups_005/{folder}/")));
        assert!(!folder.is_empty());
    }
    for decoder in [Decoder::Lz4, Decoder::None, Decoder::Zstd] {
        if let Ok(key) = wal_key(line, decoder) {
            check_key(&key);
            // (An empty or all-`/` name gives the folder `wal_005` itself.)
            assert!(line.trim_matches('/').is_empty() || key.as_str().starts_with("wal_005/"));
        }
        if let Ok(candidates) = wal_candidates(line, decoder) {
            assert!(!candidates.is_empty());
            for (key, _) in &candidates {
                check_key(key);
            }
        }
    }
    let _ = backup_name_of_sentinel(line);
}

/// A backup for each sentinel among the keys, its LSN and timeline from its name.
fn backups(keys: &[String]) -> Vec<BackupInfo> {
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(name) = key
            .strip_prefix("basebackups_005/")
            .and_then(backup_name_of_sentinel)
        else {
            continue;
        };
        let segment = Segment::parse(wal_file_name(name), MIB16);
        let start_lsn = segment.map(|s| s.start_lsn() + 1).unwrap_or(i as u64);
        let delta_from =
            StandardName::parse(name).and_then(|n| n.delta_base().map(|b| format!("base_{b}")));
        out.push(BackupInfo {
            name: name.to_string(),
            sentinel_modified: Timestamp::from_second(1_700_000_000 + i as i64).expect("time"),
            start_time: None,
            start_lsn,
            finish_lsn: start_lsn.saturating_add(MIB16),
            timeline: segment.map(|s| s.timeline).unwrap_or(1),
            system_identifier: Some(7),
            is_permanent: i % 5 == 4,
            delta_from,
            user_data: None,
            segment_size: MIB16,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

fn check_plans(keys: Vec<String>) {
    let inventory = Inventory {
        backups: backups(&keys),
        objects: keys
            .iter()
            .enumerate()
            .map(|(i, key)| StoredObject {
                key: key.clone(),
                size: i as u64,
                modified: Timestamp::from_second(1_700_000_000).expect("time"),
            })
            .collect(),
    };
    let now = Timestamp::from_second(1_800_000_000).expect("time");
    let rules = [
        Rule::Garbage {
            scope: GarbageScope::All,
            without_backup_check: false,
        },
        Rule::Retain {
            modifier: Modifier::None,
            count: 1,
            after: None,
        },
        Rule::Retain {
            modifier: Modifier::Full,
            count: 2,
            after: None,
        },
    ];
    for rule in &rules {
        let Ok(plan) = retention::plan(&inventory, rule, Options::default(), now) else {
            continue;
        };
        for key in &plan.delete_objects {
            assert!(
                keys.contains(key),
                "the plan deletes {key:?}, which is not stored"
            );
            assert!(
                key.starts_with("basebackups_005/") || key.starts_with("wal_005/"),
                "{rule:?} deletes {key:?} outside the two folders"
            );
        }
        for kept in &plan.keep_backups {
            let sentinel = format!("basebackups_005/{kept}_backup_stop_sentinel.json");
            assert!(
                !plan.delete_objects.contains(&sentinel),
                "{rule:?} keeps {kept} but deletes its sentinel"
            );
        }
        if matches!(rule, Rule::Garbage { .. }) {
            assert!(plan.delete_backups.is_empty(), "garbage deleted a backup");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.lines().take(64).collect();
    for line in &lines {
        check_name(line);
    }
    check_plans(lines.iter().map(|l| l.to_string()).collect());
});
