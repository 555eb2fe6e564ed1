//! `walg backup-list` against a local-folder storage laid out by hand as WAL-G leaves it:
//! sentinels and `metadata.json` objects with known modification times.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use predicates::prelude::*;

fn walg(prefix: &Path) -> Command {
    let mut cmd = Command::cargo_bin("walg").expect("walg binary");
    cmd.env_clear()
        .env("HOME", "/nonexistent")
        .env("TZ", "UTC")
        .env("WALG_FILE_PREFIX", prefix);
    cmd
}

/// Writes `body` at `key` below `prefix` with modification time `unix_millis`.
fn object(prefix: &Path, key: &str, body: &str, unix_millis: u64) {
    let path = prefix.join(key);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(&path, body).expect("write");
    let file = fs::File::options().write(true).open(&path).expect("open");
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_millis(unix_millis))
        .expect("set mtime");
}

const FULL: &str = "base_000000430000030600000060";
const DELTA: &str = "base_0000004300000388000000AC_D_000000430000038500000003";

const FULL_SENTINEL: &str = r#"{"LSN":3325915299880,"PgVersion":150015,"FinishLSN":3325916080832,"SystemIdentifier":7507672962298572862,"UncompressedSize":2604967632,"CompressedSize":858502390,"ChkpNum":null,"Version":2,"StartTime":"2025-12-20T02:00:01.793015Z","FinishTime":"2025-12-20T02:00:18.538578Z","DateFmt":"%Y-%m-%dT%H:%M:%S.%fZ","Hostname":"superpg","DataDir":"/pgroot/data","IsPermanent":false}"#;
const FULL_METADATA: &str = r#"{"start_time":"2025-12-20T02:00:01.793015Z","finish_time":"2025-12-20T02:00:18.538578Z","date_fmt":"%Y-%m-%dT%H:%M:%S.%fZ","hostname":"superpg","data_dir":"/pgroot/data","pg_version":150015,"start_lsn":3325915299880,"finish_lsn":3325916080832,"is_permanent":false,"system_identifier":7507672962298572862,"uncompressed_size":2604967632,"compressed_size":858502390}"#;
const DELTA_SENTINEL: &str = r#"{"LSN":3885536116952,"DeltaLSN":3869815875000,"DeltaFrom":"base_000000430000038500000003","DeltaFullName":"base_000000430000038500000003","DeltaCount":1,"PgVersion":150015,"FinishLSN":3885536563600,"ChkpNum":null}"#;
const DELTA_METADATA: &str = r#"{"start_time":"2025-12-30T10:06:51.293562Z","finish_time":"2025-12-30T10:07:00.682024Z","date_fmt":"%Y-%m-%dT%H:%M:%S.%fZ","hostname":"superpg","data_dir":"/pgroot/data","pg_version":150015,"start_lsn":3885536116952,"finish_lsn":3885536563600,"is_permanent":true,"system_identifier":7507672962298572862,"uncompressed_size":928772120,"compressed_size":386034756}"#;

/// 2025-12-20T02:00:19.896Z and 2025-12-30T10:07:00.807Z.
const FULL_MTIME: u64 = 1_766_196_019_896;
const DELTA_MTIME: u64 = 1_767_089_220_807;

fn storage() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    // The delta's sentinel sorts first by name but was written last.
    object(
        p,
        &format!("basebackups_005/{DELTA}_backup_stop_sentinel.json"),
        DELTA_SENTINEL,
        DELTA_MTIME,
    );
    object(
        p,
        &format!("basebackups_005/{DELTA}/metadata.json"),
        DELTA_METADATA,
        DELTA_MTIME - 1000,
    );
    object(
        p,
        &format!("basebackups_005/{FULL}_backup_stop_sentinel.json"),
        FULL_SENTINEL,
        FULL_MTIME,
    );
    object(
        p,
        &format!("basebackups_005/{FULL}/metadata.json"),
        FULL_METADATA,
        FULL_MTIME - 1000,
    );
    object(
        p,
        &format!("basebackups_005/{FULL}/tar_partitions/part_001.tar.lz4"),
        "",
        FULL_MTIME - 2000,
    );
    // An unfinished backup (no sentinel) and WAL are not backups.
    object(
        p,
        "basebackups_005/base_000000430000039000000001/tar_partitions/part_001.tar.lz4",
        "",
        DELTA_MTIME + 1000,
    );
    object(p, "wal_005/000000430000030600000060.lz4", "", FULL_MTIME);
    dir
}

#[test]
fn plain_list() {
    let dir = storage();
    walg(dir.path())
        .arg("backup-list")
        .assert()
        .success()
        .stdout(concat!(
            "backup_name                                              modified             wal_file_name            storage_name\n",
            "base_000000430000030600000060                            2025-12-20T02:00:19Z 000000430000030600000060 default\n",
            "base_0000004300000388000000AC_D_000000430000038500000003 2025-12-30T10:07:00Z 0000004300000388000000AC default\n",
        ));
}

#[test]
fn json_list() {
    let dir = storage();
    walg(dir.path())
        .args(["backup-list", "--json"])
        .assert()
        .success()
        .stdout(concat!(
            r#"[{"backup_name":"base_000000430000030600000060","time":"2025-12-20T02:00:19.896Z","wal_file_name":"000000430000030600000060","storage_name":"default"},"#,
            r#"{"backup_name":"base_0000004300000388000000AC_D_000000430000038500000003","time":"2025-12-30T10:07:00.807Z","wal_file_name":"0000004300000388000000AC","storage_name":"default"}]"#,
            "\n"
        ));
}

#[test]
fn detail_json_list() {
    let dir = storage();
    walg(dir.path())
        .args(["backup-list", "--detail", "--json"])
        .assert()
        .success()
        .stdout(concat!(
            r#"[{"backup_name":"base_000000430000030600000060","time":"2025-12-20T02:00:19.896Z","wal_file_name":"000000430000030600000060","storage_name":"default","#,
            r#""start_time":"2025-12-20T02:00:01.793015Z","finish_time":"2025-12-20T02:00:18.538578Z","date_fmt":"%Y-%m-%dT%H:%M:%S.%fZ","hostname":"superpg","data_dir":"/pgroot/data","#,
            r#""pg_version":150015,"start_lsn":3325915299880,"finish_lsn":3325916080832,"is_permanent":false,"system_identifier":7507672962298572862,"uncompressed_size":2604967632,"compressed_size":858502390},"#,
            r#"{"backup_name":"base_0000004300000388000000AC_D_000000430000038500000003","time":"2025-12-30T10:07:00.807Z","wal_file_name":"0000004300000388000000AC","storage_name":"default","#,
            r#""start_time":"2025-12-30T10:06:51.293562Z","finish_time":"2025-12-30T10:07:00.682024Z","date_fmt":"%Y-%m-%dT%H:%M:%S.%fZ","hostname":"superpg","data_dir":"/pgroot/data","#,
            r#""pg_version":150015,"start_lsn":3885536116952,"finish_lsn":3885536563600,"is_permanent":true,"system_identifier":7507672962298572862,"uncompressed_size":928772120,"compressed_size":386034756}]"#,
            "\n"
        ));
}

#[test]
fn detail_plain_and_pretty_tables() {
    let dir = storage();
    walg(dir.path())
        .args(["backup-list", "--detail"])
        .assert()
        .success()
        .stdout(concat!(
            "backup_name                                              modified             wal_file_name            storage_name start_time           finish_time          hostname data_dir     pg_version start_lsn    finish_lsn   is_permanent\n",
            "base_000000430000030600000060                            2025-12-20T02:00:19Z 000000430000030600000060 default      2025-12-20T02:00:01Z 2025-12-20T02:00:18Z superpg  /pgroot/data 150015     306/60000028 306/600BEAC0 false\n",
            "base_0000004300000388000000AC_D_000000430000038500000003 2025-12-30T10:07:00Z 0000004300000388000000AC default      2025-12-30T10:06:51Z 2025-12-30T10:07:00Z superpg  /pgroot/data 150015     388/AC0000D8 388/AC06D190 true\n",
        ));
    walg(dir.path())
        .args(["backup-list", "--pretty"])
        .assert()
        .success()
        .stdout(concat!(
            "+---+----------------------------------------------------------+----------------------------------+--------------------------+--------------+\n",
            "| # | BACKUP NAME                                              | MODIFIED                         | WAL FILE NAME            | STORAGE NAME |\n",
            "+---+----------------------------------------------------------+----------------------------------+--------------------------+--------------+\n",
            "| 0 | base_000000430000030600000060                            | Saturday, 20-Dec-25 02:00:19 UTC | 000000430000030600000060 | default      |\n",
            "| 1 | base_0000004300000388000000AC_D_000000430000038500000003 | Tuesday, 30-Dec-25 10:07:00 UTC  | 0000004300000388000000AC | default      |\n",
            "+---+----------------------------------------------------------+----------------------------------+--------------------------+--------------+\n",
        ));
}

#[test]
fn local_folder_times_are_shown_in_the_local_zone() {
    let dir = storage();
    walg(dir.path())
        .env("TZ", "Asia/Yekaterinburg")
        .args(["backup-list", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            r#""time":"2025-12-20T07:00:19.896+05:00""#,
        ));
}

#[test]
fn unparsable_metadata_fails_naming_the_object() {
    let dir = storage();
    object(
        dir.path(),
        &format!("basebackups_005/{FULL}/metadata.json"),
        "{broken",
        FULL_MTIME,
    );
    walg(dir.path())
        .args(["backup-list", "--detail"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "basebackups_005/{FULL}/metadata.json"
        )));
    // Without --detail metadata is not read.
    walg(dir.path()).arg("backup-list").assert().success();
}

#[test]
fn no_backups() {
    let dir = tempfile::tempdir().expect("tempdir");
    walg(dir.path())
        .arg("backup-list")
        .assert()
        .success()
        .stdout("")
        .stderr(
            predicate::str::contains("INFO: ").and(predicate::str::contains("No backups found")),
        );
    walg(dir.path())
        .args(["backup-list", "--json"])
        .assert()
        .success()
        .stdout("[]\n")
        .stderr(predicate::str::contains("No backups found").not());
    walg(dir.path())
        .args(["backup-list", "--pretty", "--json", "--detail"])
        .assert()
        .success()
        .stdout("[]\n");
}
