//! `walg backup-fetch` of hostile or damaged backups in a local folder, built byte by byte
//! here: each is refused with a one-line error naming the member, part or tablespace, exit 1,
//! no `pg_control` in the target and nothing written outside it.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::tar::{end, raw};
use assert_cmd::Command;
use walg::compression::{self, CompressionSettings, Method, ZstdLevel};

/// `data` compressed with `method`; gzip (which walg reads but does not write) by flate2.
fn compress(method: &str, data: &[u8]) -> Vec<u8> {
    if method == "gzip" {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        return enc.finish().unwrap();
    }
    let settings = CompressionSettings {
        method: Method::parse(method).unwrap(),
        zstd_level: ZstdLevel::Default,
    };
    let mut enc = compression::encoder(settings, Vec::new()).unwrap();
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn extension(method: &str) -> &'static str {
    match method {
        "lz4" => ".lz4",
        "zstd" => ".zst",
        "brotli" => ".br",
        "lzma" => ".lzma",
        "gzip" => ".gz",
        _ => "",
    }
}

const NAME: &str = "base_000000010000000000000002";

/// A backup in a local folder: sentinel, optional files_metadata.json, parts.
struct Backup {
    root: tempfile::TempDir,
}

impl Backup {
    fn new() -> Backup {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("canary")).unwrap();
        Backup { root }
    }

    fn storage(&self) -> PathBuf {
        self.root.path().join("storage")
    }

    fn folder(&self) -> PathBuf {
        self.storage().join("basebackups_005")
    }

    fn target(&self) -> PathBuf {
        self.root.path().join("target")
    }

    fn sentinel(&self, extra: &str) {
        fs::create_dir_all(self.folder()).unwrap();
        let json = format!(
            r#"{{"LSN":33554472,"PgVersion":150004,"FinishLSN":33554808,"UncompressedSize":0{}{extra}}}"#,
            if extra.contains("CompressedSize") {
                ""
            } else {
                r#","CompressedSize":0"#
            }
        );
        fs::write(
            self.folder()
                .join(format!("{NAME}_backup_stop_sentinel.json")),
            json,
        )
        .unwrap();
    }

    fn files_metadata(&self, json: &str) {
        let dir = self.folder().join(NAME);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("files_metadata.json"), json).unwrap();
    }

    fn part(&self, file: &str, bytes: &[u8]) {
        let dir = self.folder().join(NAME).join("tar_partitions");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(file), bytes).unwrap();
    }

    /// `backup_label.tar` and `pg_control.tar`, uncompressed.
    fn label_and_control(&self) {
        let label = end(raw(
            "backup_label",
            b'0',
            "",
            b"START WAL LOCATION: 0/2000028\n",
        ));
        self.part("backup_label.tar", &label);
        let mut control = raw("/global", b'5', "", b"");
        control.extend(raw("/global/pg_control", b'0', "", &[1; 512]));
        self.part("pg_control.tar", &end(control));
    }

    fn fetch(&self, extra: &[&str]) -> Output {
        let target = self.target();
        let mut args = vec!["backup-fetch", target.to_str().unwrap(), NAME];
        args.extend_from_slice(extra);
        Command::cargo_bin("walg")
            .unwrap()
            .args(&args)
            .env_clear()
            .env("WALG_FILE_PREFIX", self.storage())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    }

    /// The fetch failed with one error line containing every `needle`, wrote no pg_control,
    /// and nothing appeared next to the target.
    fn refused(&self, out: &Output, needles: &[&str]) -> String {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        for needle in needles {
            assert!(errors[0].contains(needle), "{needle:?} not in {stderr}");
        }
        assert!(!self.target().join("global/pg_control").exists());
        assert_eq!(
            fs::read_dir(self.root.path().join("canary"))
                .unwrap()
                .count(),
            0
        );
        let mut names: Vec<String> = fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "spec.json")
            .collect();
        names.sort();
        assert!(
            names == ["canary", "storage"] || names == ["canary", "storage", "target"],
            "{names:?}"
        );
        stderr
    }
}

/// Two data parts with their files listed in files_metadata.json.
fn two_part_backup() -> Backup {
    let backup = Backup::new();
    backup.sentinel("");
    let mut one = raw("/", b'5', "", b"");
    one.extend(raw("/PG_VERSION", b'0', "", b"15\n"));
    one.extend(raw("/base", b'5', "", b""));
    let mut two = raw("/base/5", b'5', "", b"");
    two.extend(raw("/base/5/1259", b'0', "", &[9; 8192]));
    two.extend(raw("/base/5/1249", b'0', "", &[8; 8192]));
    backup.part("part_001.tar", &end(one));
    backup.part("part_002.tar", &end(two));
    backup.label_and_control();
    let d = r#"{"IsIncremented":false,"IsSkipped":false,"MTime":"2026-01-01T00:00:00Z","UpdatesCount":0}"#;
    backup.files_metadata(&format!(
        r#"{{"Files":{{"/":{d},"/PG_VERSION":{d},"/base":{d},"/base/5":{d},"/base/5/1259":{d},"/base/5/1249":{d}}},
            "TarFileSets":{{"part_001.tar":["/","/PG_VERSION","/base"],
                            "part_002.tar":["/base/5","/base/5/1259","/base/5/1249"],
                            "backup_label.tar":["backup_label","tablespace_map"]}}}}"#
    ));
    backup
}

#[test]
fn a_complete_backup_restores() {
    let backup = two_part_backup();
    let out = backup.fetch(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read(backup.target().join("base/5/1249")).unwrap(),
        [8; 8192]
    );
    assert!(backup.target().join("global/pg_control").is_file());
}

#[test]
fn a_missing_part_named_in_tar_file_sets_fails_before_anything_is_written() {
    let backup = two_part_backup();
    fs::remove_file(
        backup
            .folder()
            .join(NAME)
            .join("tar_partitions/part_002.tar"),
    )
    .unwrap();
    let out = backup.fetch(&[]);
    backup.refused(&out, &["part_002.tar", "/base/5/1259"]);
    assert!(!backup.target().exists());
}

#[test]
fn a_missing_part_without_tar_file_sets_fails_before_pg_control() {
    let backup = two_part_backup();
    let d = r#"{"IsIncremented":false,"IsSkipped":false,"MTime":"2026-01-01T00:00:00Z","UpdatesCount":0}"#;
    backup.files_metadata(&format!(
        r#"{{"Files":{{"/":{d},"/PG_VERSION":{d},"/base":{d},"/base/5":{d},"/base/5/1259":{d},"/base/5/1249":{d}}}}}"#
    ));
    fs::remove_file(
        backup
            .folder()
            .join(NAME)
            .join("tar_partitions/part_002.tar"),
    )
    .unwrap();
    let out = backup.fetch(&[]);
    backup.refused(&out, &["incomplete", "base/5/1259"]);
}

#[test]
fn a_missing_part_without_files_metadata_is_caught_by_the_recorded_size() {
    let backup = two_part_backup();
    fs::remove_file(backup.folder().join(NAME).join("files_metadata.json")).unwrap();
    let parts = backup.folder().join(NAME).join("tar_partitions");
    let total: u64 = fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    backup.sentinel(&format!(
        r#","CompressedSize":{total},"FilesMetadataDisabled":true"#
    ));
    fs::remove_file(parts.join("part_002.tar")).unwrap();
    let out = backup.fetch(&[]);
    backup.refused(&out, &["incomplete", "sentinel"]);
    assert!(!backup.target().exists());
}

#[test]
fn a_backup_without_backup_label_is_refused_before_pg_control() {
    let backup = two_part_backup();
    let d = r#"{"IsIncremented":false,"IsSkipped":false,"MTime":"2026-01-01T00:00:00Z","UpdatesCount":0}"#;
    backup.files_metadata(&format!(r#"{{"Files":{{"/":{d},"/PG_VERSION":{d}}}}}"#));
    fs::remove_file(
        backup
            .folder()
            .join(NAME)
            .join("tar_partitions/backup_label.tar"),
    )
    .unwrap();
    let out = backup.fetch(&[]);
    backup.refused(&out, &["backup_label"]);
}

/// A backup whose first part is `part`, plus what a restore needs.
fn backup_with_part(part: Vec<u8>) -> Backup {
    let backup = Backup::new();
    backup.sentinel("");
    backup.part("part_001.tar", &end(part));
    backup.label_and_control();
    backup
}

#[test]
fn hostile_members_are_refused_by_name() {
    let corpus: Vec<(&str, Vec<u8>)> = vec![
        ("/../../canary/x", raw("/../../canary/x", b'0', "", b"x")),
        ("../canary/y", raw("../canary/y", b'0', "", b"x")),
        (
            "/ok/../../canary/z",
            raw("/ok/../../canary/z", b'0', "", b"x"),
        ),
        ("/abs_link", raw("/abs_link", b'2', "/tmp", b"")),
        ("/up_link", raw("/up_link", b'2', "../canary", b"")),
        ("/deep/up", {
            let mut t = raw("/deep", b'5', "", b"");
            t.extend(raw("/deep/up", b'2', "../../canary", b""));
            t
        }),
        ("/hard", raw("/hard", b'1', "../canary/f", b"")),
        ("/hard_abs", raw("/hard_abs", b'1', "/etc/passwd", b"")),
        ("/fifo", raw("/fifo", b'6', "", b"")),
        ("/chr", raw("/chr", b'3', "", b"")),
        ("/blk", raw("/blk", b'4', "", b"")),
        ("/cut", {
            let mut t = raw("/cut", b'0', "", &[5; 4096]);
            t.truncate(512 + 1000);
            t
        }),
    ];
    for (member, part) in corpus {
        let backup = backup_with_part(part);
        let out = backup.fetch(&[]);
        let stderr = backup.refused(&out, &[member, "part_001.tar"]);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_symlink_that_stays_inside_is_restored() {
    let mut part = raw("/PG_VERSION", b'0', "", b"15\n");
    part.extend(raw("/link", b'2', "PG_VERSION", b""));
    let backup = backup_with_part(part);
    let out = backup.fetch(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_link(backup.target().join("link")).unwrap(),
        Path::new("PG_VERSION")
    );
}

#[test]
fn a_huge_extended_header_fails_fast_naming_the_part() {
    for typeflag in [b'L', b'x'] {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..9].copy_from_slice(b"LongLink!");
        header.set_size(2 << 30);
        header.as_old_mut().linkflag = [typeflag];
        header.set_cksum();
        // 2 GiB of declared content, a few KiB compressed.
        let mut stream = header.as_bytes().to_vec();
        stream.extend(std::iter::repeat_n(b'a', 4 << 20));
        let backup = Backup::new();
        backup.sentinel("");
        backup.part("part_001.tar.lz4", &compress("lz4", &stream));
        backup.label_and_control();
        let started = std::time::Instant::now();
        let out = backup.fetch(&[]);
        backup.refused(&out, &["part_001.tar.lz4", "1048576-byte limit"]);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}

#[test]
fn hostile_tablespace_specs_are_refused_before_anything_is_written() {
    let cases = [
        ("16400", "LOC/ts", "../../x"),
        ("16400", "LOC/ts", "/abs/x"),
        ("../16400", "LOC/ts", "pg_tblspc/../16400"),
        ("16400", "relative/ts", "pg_tblspc/16400"),
        ("16400", "LOC/target/ts", "pg_tblspc/16400"),
        ("16400", "LOC/a/../ts", "pg_tblspc/16400"),
    ];
    for (oid, loc, link) in cases {
        for via_restore_spec in [false, true] {
            let backup = backup_with_part(raw("/PG_VERSION", b'0', "", b"15\n"));
            let loc = loc.replace("LOC", &backup.root.path().display().to_string());
            let spec = format!(
                r#"{{"base_prefix":"/old","tablespaces":["{oid}"],"{oid}":{{"loc":"{loc}","link":"{link}"}}}}"#
            );
            let out = if via_restore_spec {
                let path = backup.root.path().join("spec.json");
                fs::write(&path, &spec).unwrap();
                backup.fetch(&["--restore-spec", path.to_str().unwrap()])
            } else {
                backup.sentinel(&format!(r#","Spec":{spec}"#));
                backup.fetch(&[])
            };
            backup.refused(&out, &["tablespace"]);
            assert!(!backup.target().exists(), "{spec}");
        }
    }
}

/// A part holding enough content that a truncation or flip lands in file data.
fn content_part() -> Vec<u8> {
    let mut part = raw("/PG_VERSION", b'0', "", b"15\n");
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    part.extend(raw("/base", b'5', "", b""));
    part.extend(raw("/base/1", b'0', "", &noise));
    end(part)
}

#[test]
fn a_truncated_part_fails_the_restore_before_pg_control_in_every_compression() {
    for method in ["lz4", "zstd", "brotli", "lzma", "gzip", "none"] {
        let whole = compress(method, &content_part());
        for cut in [whole.len() / 3, whole.len() / 2, whole.len() * 9 / 10] {
            let backup = Backup::new();
            backup.sentinel("");
            backup.part(&format!("part_001.tar{}", extension(method)), &whole[..cut]);
            backup.label_and_control();
            let out = backup.fetch(&[]);
            backup.refused(&out, &["part_001.tar"]);
        }
    }
}

#[test]
fn a_bit_flip_fails_where_the_format_has_a_checksum() {
    for method in ["lz4", "zstd", "gzip"] {
        let whole = compress(method, &content_part());
        // Inside the compressed file content, away from the format's headers.
        for at in [whole.len() / 2, whole.len() * 3 / 4] {
            let mut flipped = whole.clone();
            flipped[at] ^= 0x10;
            let backup = Backup::new();
            backup.sentinel("");
            backup.part(&format!("part_001.tar{}", extension(method)), &flipped);
            backup.label_and_control();
            let out = backup.fetch(&[]);
            backup.refused(&out, &["part_001.tar"]);
        }
    }
}

#[test]
fn directories_named_with_a_trailing_slash_match_their_listed_entries() {
    let backup = Backup::new();
    backup.sentinel("");
    let mut part = raw("/", b'5', "", b"");
    part.extend(raw("/base/", b'5', "", b""));
    part.extend(raw("/base/1/", b'5', "", b""));
    part.extend(raw("/base/1/112", b'0', "", b"x"));
    backup.part("part_001.tar", &end(part));
    backup.label_and_control();
    let d = r#"{"IsIncremented":false,"IsSkipped":false,"MTime":"2026-01-01T00:00:00Z","UpdatesCount":0}"#;
    backup.files_metadata(&format!(
        r#"{{"Files":{{"/":{d},"/base":{d},"/base/1":{d},"/base/1/112":{d}}}}}"#
    ));
    let out = backup.fetch(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(backup.target().join("global/pg_control").is_file());
}
