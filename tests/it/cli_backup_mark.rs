//! `walg backup-mark` on a storage folder built by hand: permanence in metadata.json, ancestors
//! of a delta marked too, impermanence refused while a permanent delta depends on a backup.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

const FULL: &str = "base_000000010000000000000002";
const DELTA: &str = "base_000000010000000000000004_D_000000010000000000000002";

fn write_backup(root: &Path, name: &str, lsn: u64, delta_from: Option<&str>) {
    let folder = root.join("basebackups_005");
    fs::create_dir_all(folder.join(name).join("tar_partitions")).unwrap();
    let delta = delta_from.map_or(String::new(), |parent| {
        format!(r#""DeltaLSN":33554472,"DeltaFrom":"{parent}","DeltaFullName":"{parent}","DeltaCount":1,"#)
    });
    fs::write(
        folder.join(format!("{name}_backup_stop_sentinel.json")),
        format!(r#"{{"LSN":{lsn},{delta}"PgVersion":150018,"FinishLSN":{},"ChkpNum":null,"Version":2,"IsPermanent":false}}"#, lsn + 1000),
    )
    .unwrap();
    fs::write(
        folder.join(name).join("metadata.json"),
        format!(
            r#"{{"start_time":"2026-11-24T01:00:00Z","finish_time":"2026-11-24T01:01:00Z","date_fmt":"%Y-%m-%dT%H:%M:%S.%fZ","hostname":"db1","data_dir":"/pg","pg_version":150018,"start_lsn":{lsn},"finish_lsn":{},"is_permanent":false,"system_identifier":7,"uncompressed_size":10,"compressed_size":5,"future_field":[1,2]}}"#,
            lsn + 1000
        ),
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

fn permanent(store: &Path, name: &str) -> bool {
    let text = fs::read_to_string(
        store
            .join("basebackups_005")
            .join(name)
            .join("metadata.json"),
    )
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value["future_field"],
        serde_json::json!([1, 2]),
        "unknown fields are kept"
    );
    value["is_permanent"].as_bool().unwrap()
}

#[test]
fn marks_permanence_along_delta_chains() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    write_backup(store, FULL, 33_554_472, None);
    write_backup(store, DELTA, 67_108_904, Some(FULL));

    // Marking the delta permanent marks the full backup it needs as well.
    walg(store).args(["backup-mark", DELTA]).assert().success();
    assert!(permanent(store, DELTA) && permanent(store, FULL));
    walg(store)
        .args(["backup-list", "--detail", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""is_permanent":true"#));

    // The full backup cannot become impermanent while the permanent delta needs it.
    walg(store)
        .args(["backup-mark", "-i", FULL])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(DELTA));
    assert!(permanent(store, FULL));

    // Delta first, then the full backup; a second request only warns.
    walg(store)
        .args(["backup-mark", "--impermanent", DELTA])
        .assert()
        .success();
    walg(store)
        .args(["backup-mark", "-i", FULL])
        .assert()
        .success();
    assert!(!permanent(store, DELTA) && !permanent(store, FULL));
    walg(store)
        .args(["backup-mark", "-i", FULL])
        .assert()
        .success()
        .stderr(predicate::str::contains("already impermanent"));

    walg(store)
        .args(["backup-mark", "base_000000010000000000000099"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not exist"));
}
