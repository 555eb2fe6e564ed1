//! `walg delete` on storage folders built by hand: refused while a backup-push is writing
//! (a fresh in-progress marker), allowed once the marker is stale; fewer backups than asked
//! to retain is a no-op with a message; the plan as JSON.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use predicates::prelude::*;

fn write_backup(root: &Path, name: &str, lsn: u64) {
    let folder = root.join("basebackups_005");
    fs::create_dir_all(folder.join(name).join("tar_partitions")).unwrap();
    fs::write(
        folder.join(name).join("tar_partitions/part_001.tar.lz4"),
        b"part",
    )
    .unwrap();
    fs::write(
        folder.join(format!("{name}_backup_stop_sentinel.json")),
        format!(r#"{{"LSN":{lsn},"PgVersion":150018,"FinishLSN":{},"SystemIdentifier":7,"ChkpNum":null,"Version":2}}"#, lsn + 100),
    )
    .unwrap();
    fs::write(
        folder.join(name).join("metadata.json"),
        format!(r#"{{"start_time":"2026-11-24T01:00:00Z","finish_time":"2026-11-24T01:01:00Z","start_lsn":{lsn},"finish_lsn":{},"is_permanent":false,"system_identifier":7}}"#, lsn + 100),
    )
    .unwrap();
}

fn walg(store: &Path) -> Command {
    let mut cmd = Command::cargo_bin("walg").unwrap();
    cmd.env_clear()
        .env("HOME", "/nonexistent")
        .env("WALG_FILE_PREFIX", store);
    cmd
}

#[test]
fn refused_while_a_backup_push_is_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    write_backup(store, "base_000000010000000000000002", 0x0200_0028);
    write_backup(store, "base_000000010000000000000004", 0x0400_0028);
    // A backup being written: a folder without a sentinel, with a fresh marker.
    let running = store.join("basebackups_005/base_000000010000000000000006");
    fs::create_dir_all(&running).unwrap();
    let marker = running.join("walg_backup_in_progress.json");
    fs::write(
        &marker,
        r#"{"backup_name":"base_000000010000000000000006"}"#,
    )
    .unwrap();

    walg(store)
        .args(["delete", "retain", "1", "--confirm"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is being written"));
    assert!(
        store
            .join("basebackups_005/base_000000010000000000000002_backup_stop_sentinel.json")
            .exists()
    );

    // A marker not refreshed for ten minutes belongs to a backup-push that died: go ahead.
    let old = SystemTime::now() - Duration::from_secs(600);
    fs::File::options()
        .write(true)
        .open(&marker)
        .unwrap()
        .set_modified(old)
        .unwrap();
    walg(store)
        .args(["delete", "retain", "1", "--confirm"])
        .assert()
        .success();
    assert!(
        !store
            .join("basebackups_005/base_000000010000000000000002_backup_stop_sentinel.json")
            .exists()
    );
    assert!(
        store
            .join("basebackups_005/base_000000010000000000000004_backup_stop_sentinel.json")
            .exists()
    );
}

#[test]
fn fewer_backups_than_retained_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    write_backup(store, "base_000000010000000000000002", 0x0200_0028);
    write_backup(store, "base_000000010000000000000004", 0x0400_0028);
    let out = walg(store)
        .args(["delete", "retain", "3", "--confirm", "--json"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["deleted"], serde_json::json!(0), "{report}");
    assert_eq!(
        report["plan"]["delete_objects"],
        serde_json::json!([]),
        "{report}"
    );
    assert!(
        !report["plan"]["notes"].as_array().unwrap().is_empty(),
        "a note says why: {report}"
    );
    assert!(
        store
            .join("basebackups_005/base_000000010000000000000002_backup_stop_sentinel.json")
            .exists()
    );
}

#[test]
fn dry_run_lists_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    write_backup(store, "base_000000010000000000000002", 0x0200_0028);
    write_backup(store, "base_000000010000000000000004", 0x0400_0028);
    walg(store)
        .args(["delete", "retain", "1"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("base_000000010000000000000002")
                .and(predicate::str::contains("Dry run")),
        );
    assert!(
        store
            .join("basebackups_005/base_000000010000000000000002/tar_partitions/part_001.tar.lz4")
            .exists()
    );
    walg(store).args(["delete", "retain", "0"]).assert().code(1);
    walg(store)
        .args(["delete", "retain", "FUL", "2"])
        .assert()
        .code(1);
}
