//! End to end, `walg backup-fetch` against backups walg did not write, and against hostile or
//! broken storage.
//!
//! Reading compatibility: a PostgreSQL 15 cluster archives its WAL with `walg wal-push` into a
//! local folder; `pg_basebackup -Ft -X none` takes a base backup; the test repacks its
//! `base.tar` into WAL-G's layout with independent tools (Python's `tarfile` or GNU `tar`, the
//! `lz4` or `zstd` command-line tools) and writes `metadata.json` and the sentinel by hand.
//! walg restores it with a recovery configuration, PostgreSQL replays the archived WAL, and the
//! rows written after the backup are there.
//!
//! Hostile input: storage folders built by hand (tar headers written byte by byte, compressed
//! with the `lz4` tool) with members escaping the target, a truncated part of a real walg
//! backup, a non-empty target, a missing backup and a sentinel that is not JSON: each fails with
//! exit code 1 and one `ERROR:` line saying what is wrong, and writes nothing it should not.
//!
//! Needs the PostgreSQL 15 binaries (`apt-get install -y postgresql-15`), `lz4`, `zstd`,
//! `python3` and GNU `tar` (`apt-get install -y lz4 zstd python3 tar`). A missing tool fails the
//! test, naming the install command.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::pg::{
    Cluster, ClusterOptions, describe_output, hand_to_pg_user, pg_tempdir, walg_as_pg, walg_command,
};

const TIMEOUT: Duration = Duration::from_secs(180);

const INSTALL: &str = "apt-get install -y lz4 zstd python3 tar";

const DATE_FMT: &str = "%Y-%m-%dT%H:%M:%S.%fZ";

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

/// Fails the test, naming the install command, unless every tool runs.
fn require_tools(tools: &[&str]) {
    for tool in tools {
        let ok = Command::new(tool)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "`{tool}` is needed for this test and is missing: install it with `{INSTALL}`"
        );
    }
}

/// Runs a tool to completion; fails the test if it cannot start or exits non-zero.
fn run_tool(program: &str, args: &[&str], cwd: &Path) -> Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}); install it: {INSTALL}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed\n{}",
        describe_output(&out)
    );
    out
}

/// Compresses `dir/file` with the `lz4` or `zstd` tool into `dir/file.<ext>` and removes `file`.
fn compress(dir: &Path, file: &str, tool: &str) {
    let ext = match tool {
        "lz4" => "lz4",
        "zstd" => "zst",
        other => panic!("no compressor {other}"),
    };
    let out = format!("{file}.{ext}");
    match tool {
        "lz4" => run_tool("lz4", &["-q", "-f", file, &out], dir),
        _ => run_tool("zstd", &["-q", "-f", file, "-o", &out], dir),
    };
    assert!(dir.join(&out).is_file(), "{tool} wrote no {out}");
    fs::remove_file(dir.join(file)).expect("remove the uncompressed tar");
}

/// Hands everything under `root` to the PostgreSQL user (walg runs as that user).
fn give_tree_to_pg(root: &Path) {
    hand_to_pg_user(root);
    if root.is_dir() {
        for entry in fs::read_dir(root).expect("read dir") {
            give_tree_to_pg(&entry.expect("dir entry").path());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WAL-G documents, by hand (walg-format.md §3.1, §3.2, §3.3)
// ---------------------------------------------------------------------------------------------

/// What the sentinel and `metadata.json` say about a backup.
struct BackupFacts {
    start_lsn: u64,
    finish_lsn: u64,
    pg_version: u32,
    system_identifier: Option<u64>,
    data_dir: String,
    uncompressed_size: u64,
    compressed_size: u64,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// `<name>/metadata.json`, then `<name>_backup_stop_sentinel.json` last, as WAL-G writes them.
fn write_documents(storage: &Path, name: &str, f: &BackupFacts) {
    let backups = storage.join("basebackups_005");
    let (start, finish) = (now(), now());
    let sysid = f
        .system_identifier
        .map_or_else(|| "null".to_string(), |v| v.to_string());
    let metadata = format!(
        r#"{{"start_time":"{start}","finish_time":"{finish}","date_fmt":"{DATE_FMT}","hostname":"compat-test","data_dir":"{dir}","pg_version":{pgv},"start_lsn":{lsn},"finish_lsn":{flsn},"is_permanent":false,"system_identifier":{sysid},"uncompressed_size":{us},"compressed_size":{cs}}}"#,
        dir = f.data_dir,
        pgv = f.pg_version,
        lsn = f.start_lsn,
        flsn = f.finish_lsn,
        us = f.uncompressed_size,
        cs = f.compressed_size,
    );
    fs::create_dir_all(backups.join(name)).expect("mkdir backup");
    fs::write(backups.join(name).join("metadata.json"), metadata).expect("write metadata.json");
    let sysid_field = f
        .system_identifier
        .map(|v| format!(r#""SystemIdentifier":{v},"#))
        .unwrap_or_default();
    let sentinel = format!(
        r#"{{"LSN":{lsn},"PgVersion":{pgv},"FinishLSN":{flsn},{sysid_field}"UncompressedSize":{us},"CompressedSize":{cs},"ChkpNum":null,"Version":2,"StartTime":"{start}","FinishTime":"{finish}","DateFmt":"{DATE_FMT}","Hostname":"compat-test","DataDir":"{dir}","IsPermanent":false}}"#,
        lsn = f.start_lsn,
        pgv = f.pg_version,
        flsn = f.finish_lsn,
        us = f.uncompressed_size,
        cs = f.compressed_size,
        dir = f.data_dir,
    );
    fs::write(
        backups.join(format!("{name}_backup_stop_sentinel.json")),
        sentinel,
    )
    .expect("write sentinel");
    // Not the whole storage: the archiver may be writing WAL there meanwhile.
    give_tree_to_pg(&backups);
}

/// Sum of the sizes of the files in `dir` (the compressed parts).
fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .expect("read tar_partitions")
        .map(|e| e.expect("entry").metadata().expect("stat").len())
        .sum()
}

/// `X/Y` (hex) as a u64 LSN.
fn parse_lsn(text: &str) -> u64 {
    let (hi, lo) = text.split_once('/').expect("LSN X/Y");
    (u64::from_str_radix(hi, 16).expect("LSN high") << 32)
        | u64::from_str_radix(lo, 16).expect("LSN low")
}

/// Start LSN and backup name from a `backup_label`:
/// `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)`.
fn label_start(label: &str) -> (u64, String) {
    let line = label
        .lines()
        .find_map(|l| l.strip_prefix("START WAL LOCATION: "))
        .unwrap_or_else(|| panic!("no START WAL LOCATION in backup_label:\n{label}"));
    let (lsn, rest) = line
        .split_once(" (file ")
        .expect("START WAL LOCATION format");
    let segment = rest.trim_end_matches(')');
    assert!(
        common::pg::is_segment_name(segment),
        "bad segment {segment:?}"
    );
    (parse_lsn(lsn), format!("base_{segment}"))
}

/// The end of the backup's WAL range in pg_basebackup's `backup_manifest`.
fn manifest_end_lsn(manifest: &Path) -> u64 {
    let text = fs::read(manifest).expect("read backup_manifest");
    let json: serde_json::Value = serde_json::from_slice(&text).expect("backup_manifest json");
    let end = json["WAL-Ranges"][0]["End-LSN"]
        .as_str()
        .unwrap_or_else(|| panic!("no WAL-Ranges[0].End-LSN in backup_manifest: {json}"));
    parse_lsn(end)
}

// ---------------------------------------------------------------------------------------------
// Reading compatibility
// ---------------------------------------------------------------------------------------------

fn storage_env(storage: &Path) -> Vec<(&'static str, String)> {
    vec![("WALG_FILE_PREFIX", storage.display().to_string())]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `walg backup-fetch <dest> <backup> [extra]` as the PostgreSQL user against `storage`.
fn fetch(storage: &Path, dest: &Path, backup: &str, extra: &[&str], cwd: &Path) -> Output {
    let env = storage_env(storage);
    let mut args = vec!["backup-fetch", dest.to_str().expect("utf-8"), backup];
    args.extend_from_slice(extra);
    walg_as_pg(&args, &env_refs(&env), cwd)
}

/// A running cluster archiving with `walg wal-push` into `storage`, with 10000 rows in `t`.
fn archiving_cluster(storage: &Path) -> Cluster {
    let env = storage_env(storage);
    let mut pg = Cluster::init(ClusterOptions::archiving(walg_command(
        &env_refs(&env),
        "wal-push %p",
    )));
    pg.start();
    pg.psql(
        "create table t as select g as id, md5(g::text) as body from generate_series(1, 10000) g",
    );
    pg
}

/// `pg_basebackup -Ft -X none` into `work/bb`: the path of `base.tar` and `backup_manifest`.
fn tar_basebackup(pg: &Cluster, work: &Path) -> (PathBuf, PathBuf) {
    let dest = work.join("bb");
    pg.basebackup_with(&dest, &["-Ft"]);
    let (base, manifest) = (dest.join("base.tar"), dest.join("backup_manifest"));
    assert!(base.is_file(), "pg_basebackup -Ft wrote no base.tar");
    assert!(
        manifest.is_file(),
        "pg_basebackup -Ft wrote no backup_manifest"
    );
    (base, manifest)
}

/// What the restored cluster must show, and what the primary knows about the backup.
fn server_facts(pg: &Cluster) -> (u32, u64, String) {
    let version = pg.psql("show server_version_num").parse().expect("version");
    let sysid = pg
        .psql("select system_identifier from pg_control_system()")
        .parse()
        .expect("system identifier");
    (version, sysid, pg.data_dir().display().to_string())
}

/// After the backup: 15000 more rows and a marker, WAL switched and archived, server stopped.
fn write_after_backup_and_stop(pg: &mut Cluster) {
    pg.psql("insert into t select g, md5(g::text) from generate_series(10001, 25000) g");
    pg.psql("create table marker as select 'after the backup'::text as note");
    let last = pg.switch_wal();
    pg.wait_archived_through(&last, TIMEOUT);
    pg.stop();
}

/// `backup-fetch LATEST --write-recovery-conf` into a new directory, checks applied before the
/// start by `check`, then start, recovery and the rows written after the backup.
fn restore_and_check(storage: &Path, check: impl FnOnce(&Path)) {
    let root = pg_tempdir("walgcompatrs");
    let dest = root.path().join("data");
    let out = fetch(
        storage,
        &dest,
        "LATEST",
        &["--write-recovery-conf"],
        root.path(),
    );
    assert!(
        out.status.success(),
        "backup-fetch of a backup repacked from pg_basebackup\n{}",
        describe_output(&out)
    );
    assert!(dest.join("global/pg_control").is_file());
    assert!(dest.join("recovery.signal").is_file());
    check(&dest);
    let mut restored = Cluster::from_restored(root, ClusterOptions::default());
    restored.start();
    restored.wait_for_recovery_end(TIMEOUT);
    assert_eq!(restored.psql("select note from marker"), "after the backup");
    assert_eq!(
        restored.psql("select count(*), count(distinct id), max(id) from t"),
        "25000|25000|25000"
    );
    assert_eq!(
        restored.psql("select count(*) from t where body <> md5(id::text)"),
        "0"
    );
}

/// Repacks `base.tar` with Python's `tarfile` (USTAR): every member but `global/pg_control`
/// into `part_001.tar` under its own relative name (`backup_label` included), and
/// `global/pg_control` alone into `pg_control.tar`. Prints `{"label": …, "members": […]}`.
const REPACK_RELATIVE: &str = r#"
import json, sys, tarfile
src, out = sys.argv[1], sys.argv[2]
label, members = None, []
with tarfile.open(src) as base, \
     tarfile.open(out + "/part_001.tar", "w", format=tarfile.USTAR_FORMAT) as part, \
     tarfile.open(out + "/pg_control.tar", "w", format=tarfile.USTAR_FORMAT) as control:
    for m in base:
        body = base.extractfile(m) if m.isreg() else None
        if m.name == "global/pg_control":
            control.addfile(m, body)
            continue
        part.addfile(m, body)
        members.append(m.name)
        if m.name == "backup_label":
            label = base.extractfile(m).read().decode()
json.dump({"label": label, "members": members}, sys.stdout)
"#;

/// Variant 1: relative member names, `backup_label` inside `part_001`, lz4, no
/// `files_metadata.json` (everything is extracted).
#[test]
fn restores_pg_basebackup_repacked_relative_names_lz4() {
    require_tools(&["python3", "lz4"]);
    let storage = pg_tempdir("walgcompat");
    let mut pg = archiving_cluster(storage.path());
    let work = pg_tempdir("walgcompatwk");
    let (base, manifest) = tar_basebackup(&pg, work.path());
    let (pg_version, sysid, data_dir) = server_facts(&pg);

    // step: repack into basebackups_005/<name>/tar_partitions/.
    let staging = work.path().join("staging");
    fs::create_dir(&staging).expect("mkdir staging");
    let out = run_tool(
        "python3",
        &[
            "-c",
            REPACK_RELATIVE,
            base.to_str().expect("utf-8"),
            staging.to_str().expect("utf-8"),
        ],
        work.path(),
    );
    let repacked: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("repack script output");
    let label = repacked["label"]
        .as_str()
        .expect("base.tar holds backup_label")
        .to_string();
    let members: Vec<&str> = repacked["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m.as_str().expect("member name"))
        .collect();
    assert!(members.contains(&"backup_label") && members.contains(&"PG_VERSION"));
    assert!(
        members.iter().all(|m| !m.starts_with('/')),
        "pg_basebackup writes relative names: {members:?}"
    );
    let uncompressed = fs::metadata(staging.join("part_001.tar"))
        .expect("part")
        .len()
        + fs::metadata(staging.join("pg_control.tar"))
            .expect("pg_control")
            .len();
    compress(&staging, "part_001.tar", "lz4");
    compress(&staging, "pg_control.tar", "lz4");

    let (start_lsn, name) = label_start(&label);
    let parts = storage
        .path()
        .join("basebackups_005")
        .join(&name)
        .join("tar_partitions");
    fs::create_dir_all(parts.parent().expect("parent")).expect("mkdir backup");
    fs::rename(&staging, &parts).expect("move the parts into storage");
    let facts = BackupFacts {
        start_lsn,
        finish_lsn: manifest_end_lsn(&manifest),
        pg_version,
        system_identifier: Some(sysid),
        data_dir,
        uncompressed_size: uncompressed,
        compressed_size: dir_size(&parts),
    };
    assert!(facts.finish_lsn >= facts.start_lsn);
    write_documents(storage.path(), &name, &facts);

    // step: more rows after the backup, then restore LATEST and recover.
    write_after_backup_and_stop(&mut pg);
    restore_and_check(storage.path(), |dest| {
        let restored = fs::read_to_string(dest.join("backup_label")).expect("restored label");
        assert_eq!(restored, label, "backup_label from part_001 restored as is");
    });
}

/// Member names of a tar (raw, as stored) with whether each is a regular file.
fn tar_members(path: &Path) -> Vec<(String, bool)> {
    let mut archive = tar::Archive::new(fs::File::open(path).expect("open tar"));
    archive
        .entries()
        .expect("tar entries")
        .map(|e| {
            let e = e.expect("tar entry");
            let name = String::from_utf8(e.path_bytes().into_owned()).expect("utf-8 name");
            (name, e.header().entry_type() == tar::EntryType::Regular)
        })
        .collect()
}

/// Variant 2: GNU `tar` (GNU format) with leading-`/` names made by `--transform` and kept by
/// `-P`, `backup_label` in its own `backup_label.tar`, zstd, and a `files_metadata.json` that
/// lists every member but one planted file (which the restore must skip), with `TarFileSets`
/// keys without the compression extension.
#[test]
fn restores_pg_basebackup_repacked_by_gnu_tar_zstd_with_files_metadata() {
    require_tools(&["tar", "zstd"]);
    let storage = pg_tempdir("walgcompat");
    let mut pg = archiving_cluster(storage.path());
    let work = pg_tempdir("walgcompatwk");
    let (base, manifest) = tar_basebackup(&pg, work.path());
    let (pg_version, sysid, data_dir) = server_facts(&pg);

    // step: unpack base.tar, plant a file files_metadata.json will not list, repack.
    let tree = work.path().join("tree");
    fs::create_dir(&tree).expect("mkdir tree");
    run_tool(
        "tar",
        &[
            "-xf",
            base.to_str().expect("utf-8"),
            "-C",
            tree.to_str().expect("utf-8"),
        ],
        work.path(),
    );
    let label = fs::read_to_string(tree.join("backup_label")).expect("base.tar backup_label");
    fs::write(
        tree.join("walg_compat_unlisted"),
        "not in files_metadata.json\n",
    )
    .expect("plant unlisted file");
    // The member `/` carries the data directory's mode, which PostgreSQL insists on.
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o700)).expect("chmod tree");
    let staging = work.path().join("staging");
    fs::create_dir(&staging).expect("mkdir staging");
    let tree_s = tree.to_str().expect("utf-8");
    let slash = ["-P", "--transform=s,^\\.$,/,;s,^\\./,/,", "--format=gnu"];
    let mut args = vec!["-C", tree_s];
    args.extend(slash);
    args.extend([
        "--exclude=./backup_label",
        "--exclude=./global/pg_control",
        "-cf",
        "part_001.tar",
        ".",
    ]);
    run_tool("tar", &args, &staging);
    let mut args = vec!["-C", tree_s];
    args.extend(slash);
    args.extend(["-cf", "pg_control.tar", "./global/pg_control"]);
    run_tool("tar", &args, &staging);
    run_tool(
        "tar",
        &["-C", tree_s, "-cf", "backup_label.tar", "backup_label"],
        &staging,
    );

    // step: files_metadata.json from what GNU tar wrote.
    let members = tar_members(&staging.join("part_001.tar"));
    assert!(
        members.iter().all(|(m, _)| m.starts_with('/')),
        "GNU tar kept the leading '/': {members:?}"
    );
    assert!(members.iter().any(|(m, _)| m == "/PG_VERSION"));
    assert!(
        !members.iter().any(|(m, _)| m.contains("backup_label")),
        "{members:?}"
    );
    assert_eq!(
        tar_members(&staging.join("pg_control.tar")),
        vec![("/global/pg_control".to_string(), true)]
    );
    let mtime = now();
    let mut files = BTreeMap::new();
    let mut set = Vec::new();
    for (member, _) in &members {
        let key = match member.trim_end_matches('/') {
            "" => "/",
            k => k,
        };
        if key == "/walg_compat_unlisted" {
            continue;
        }
        files.insert(
            key.to_string(),
            serde_json::json!({"IsIncremented": false, "IsSkipped": false, "MTime": mtime, "UpdatesCount": 0}),
        );
        set.push(key.to_string());
    }
    assert!(files.len() > 500, "only {} members", files.len());
    let files_metadata = serde_json::json!({
        "Files": files,
        "TarFileSets": {"part_001.tar": set, "backup_label.tar": ["backup_label"]},
    });
    let uncompressed = dir_size(&staging);
    for tar in ["part_001.tar", "pg_control.tar", "backup_label.tar"] {
        compress(&staging, tar, "zstd");
    }

    let (start_lsn, name) = label_start(&label);
    let backup = storage.path().join("basebackups_005").join(&name);
    fs::create_dir_all(&backup).expect("mkdir backup");
    let parts = backup.join("tar_partitions");
    fs::rename(&staging, &parts).expect("move the parts into storage");
    fs::write(
        backup.join("files_metadata.json"),
        serde_json::to_vec(&files_metadata).expect("json"),
    )
    .expect("write files_metadata.json");
    let facts = BackupFacts {
        start_lsn,
        finish_lsn: manifest_end_lsn(&manifest),
        pg_version,
        system_identifier: Some(sysid),
        data_dir,
        uncompressed_size: uncompressed,
        compressed_size: dir_size(&parts),
    };
    write_documents(storage.path(), &name, &facts);

    write_after_backup_and_stop(&mut pg);
    restore_and_check(storage.path(), |dest| {
        assert!(
            !dest.join("walg_compat_unlisted").exists(),
            "a member files_metadata.json does not list must be skipped"
        );
        let restored = fs::read_to_string(dest.join("backup_label")).expect("restored label");
        assert_eq!(restored, label, "backup_label from backup_label.tar");
        assert!(
            dest.join("pg_wal").is_dir(),
            "directory entries are restored"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Hostile and broken input
// ---------------------------------------------------------------------------------------------

/// One tar member: a name stored byte for byte (no checks), a typeflag, content.
struct Member {
    name: String,
    typeflag: u8,
    body: Vec<u8>,
}

fn dir(name: &str) -> Member {
    Member {
        name: name.to_string(),
        typeflag: b'5',
        body: Vec::new(),
    }
}

fn file(name: &str, body: &[u8]) -> Member {
    Member {
        name: name.to_string(),
        typeflag: b'0',
        body: body.to_vec(),
    }
}

/// A USTAR stream with the names exactly as given (the `tar` crate's builder would refuse
/// `..` and absolute names), terminated by two zero blocks.
fn ustar(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        assert!(m.name.len() <= 100, "name too long for this writer");
        let mut h = [0u8; 512];
        h[..m.name.len()].copy_from_slice(m.name.as_bytes());
        let mode: &[u8] = if m.typeflag == b'5' {
            b"0000700\0"
        } else {
            b"0000600\0"
        };
        h[100..108].copy_from_slice(mode);
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", m.body.len()).as_bytes());
        h[136..148].copy_from_slice(b"14000000000\0");
        h[148..156].copy_from_slice(b"        ");
        h[156] = m.typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&m.body);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

const HAND_NAME: &str = "base_000000010000000000000002";

fn hand_label() -> String {
    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
     CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
     START TIME: 2024-05-01 10:00:00 UTC\nLABEL: compat\nSTART TIMELINE: 1\n"
        .to_string()
}

/// A small, harmless data directory as WAL-G members.
fn benign_members() -> Vec<Member> {
    vec![
        dir("/"),
        file("/PG_VERSION", b"15\n"),
        dir("/base"),
        dir("/base/1"),
        file("/base/1/1259", &[7u8; 8192]),
        dir("/global"),
        file("/global/1262", &[3u8; 8192]),
    ]
}

/// A backup `name` built by hand in `storage`: `part_001.tar.lz4` from `data`, then
/// `pg_control.tar.lz4` and `backup_label.tar.lz4`, `metadata.json` and the sentinel.
fn hand_backup(storage: &Path, name: &str, data: &[Member]) {
    let parts = storage
        .join("basebackups_005")
        .join(name)
        .join("tar_partitions");
    fs::create_dir_all(&parts).expect("mkdir tar_partitions");
    let tars = [
        ("part_001.tar", ustar(data)),
        (
            "pg_control.tar",
            ustar(&[file("/global/pg_control", &[1u8; 8192])]),
        ),
        (
            "backup_label.tar",
            ustar(&[
                file("backup_label", hand_label().as_bytes()),
                file("tablespace_map", b""),
            ]),
        ),
    ];
    let mut uncompressed = 0;
    for (tar, bytes) in &tars {
        uncompressed += bytes.len() as u64;
        fs::write(parts.join(tar), bytes).expect("write tar");
        compress(&parts, tar, "lz4");
    }
    let facts = BackupFacts {
        start_lsn: 0x200_0028,
        finish_lsn: 0x200_0100,
        pg_version: 150_004,
        system_identifier: Some(7_312_345_678_901_234_567),
        data_dir: "/var/lib/postgresql/15/main".to_string(),
        uncompressed_size: uncompressed,
        compressed_size: dir_size(&parts),
    };
    write_documents(storage, name, &facts);
}

/// The `ERROR:` lines walg printed.
fn error_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("ERROR:"))
        .map(str::to_string)
        .collect()
}

/// Exit code 1 and exactly one `ERROR:` line (no cause printed twice), which is returned.
fn failed_once(out: &Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: exit code 1 expected\n{}",
        describe_output(out)
    );
    let errors = error_lines(out);
    assert_eq!(
        errors.len(),
        1,
        "{what}: one ERROR line expected\n{}",
        describe_output(out)
    );
    let error = errors.into_iter().next().expect("one line");
    // A cause printed twice shows as a run of `: `-separated pieces repeated right after itself.
    let pieces: Vec<&str> = error.split(": ").collect();
    for len in 1..=pieces.len() / 2 {
        for start in 0..=pieces.len() - 2 * len {
            assert!(
                pieces[start..start + len] != pieces[start + len..start + 2 * len],
                "{what}: the error repeats itself: {error}"
            );
        }
    }
    error
}

/// Names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn members_escaping_the_target_are_refused() {
    require_tools(&["lz4"]);
    let storage = pg_tempdir("walghostile");
    let unique = format!(
        "walg-escape-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    );
    let absolute = PathBuf::from("/tmp").join(&unique);
    let escapes = [
        (
            "base_000000010000000000000002",
            "../escape_canary".to_string(),
        ),
        (
            "base_000000010000000000000003",
            format!("/../../tmp/{unique}"),
        ),
    ];
    for (name, evil) in &escapes {
        let mut members = benign_members();
        members.insert(3, file(evil, b"escaped\n"));
        members.push(file("/base/1/1260", b"after the hostile member"));
        hand_backup(storage.path(), name, &members);
    }

    for (name, evil) in &escapes {
        let root = pg_tempdir("walghostilers");
        let dest = root.path().join("data");
        let out = fetch(storage.path(), &dest, name, &[], root.path());
        let error = failed_once(&out, &format!("backup-fetch of {name} with member {evil}"));
        assert!(
            error.contains(evil.as_str()),
            "the error must name the member {evil}: {error}"
        );
        assert_eq!(
            entries(root.path()),
            vec!["data".to_string()],
            "nothing may appear next to the target"
        );
        assert!(
            !absolute.exists(),
            "{} was written outside the target",
            absolute.display()
        );
        assert!(!root.path().join("escape_canary").exists());
        assert!(!dest.join("global/pg_control").exists());
        assert!(!dest.join("base/1/1260").exists());
    }
}

#[test]
fn truncated_part_fails_and_restores_no_pg_control() {
    require_tools(&["lz4"]);
    let storage = pg_tempdir("walgtrunc");
    let env = storage_env(storage.path());
    let pg = archiving_cluster(storage.path());
    let mut all: Vec<(&str, &str)> = env_refs(&env);
    let client = pg.client_env();
    all.extend(client.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let data_dir = pg.data_dir().to_str().expect("utf-8").to_string();
    let out = walg_as_pg(&["backup-push", &data_dir], &all, pg.root_dir());
    assert!(
        out.status.success(),
        "backup-push\n{}\n{}",
        describe_output(&out),
        pg.log_tail()
    );

    // step: cut part_001.tar.lz4 to half its size.
    let backups = storage.path().join("basebackups_005");
    let name = entries(&backups)
        .into_iter()
        .find_map(|e| {
            e.strip_suffix("_backup_stop_sentinel.json")
                .map(str::to_string)
        })
        .expect("a sentinel");
    let part = backups.join(&name).join("tar_partitions/part_001.tar.lz4");
    let size = fs::metadata(&part).expect("part_001.tar.lz4").len();
    assert!(size > 100_000, "part_001.tar.lz4 is only {size} bytes");
    fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .and_then(|f| f.set_len(size / 2))
        .expect("truncate part_001.tar.lz4");

    let root = pg_tempdir("walgtruncrs");
    let dest = root.path().join("data");
    let out = fetch(storage.path(), &dest, "LATEST", &[], root.path());
    let error = failed_once(&out, "backup-fetch of a truncated part");
    assert!(
        error.contains(&format!("{name}/tar_partitions/part_001.tar.lz4")),
        "the error must name the object: {error}"
    );
    assert!(
        !dest.join("global/pg_control").exists(),
        "pg_control restored although a data part failed"
    );
    assert!(!dest.join("backup_label").exists());
}

#[test]
fn non_empty_target_is_refused_and_left_untouched() {
    require_tools(&["lz4"]);
    let storage = pg_tempdir("walgnonempty");
    hand_backup(storage.path(), HAND_NAME, &benign_members());
    let root = pg_tempdir("walgnonemptyrs");
    let dest = root.path().join("data");
    fs::create_dir_all(dest.join("sub")).expect("mkdir");
    fs::write(dest.join("keep.txt"), "precious\n").expect("write");
    fs::write(dest.join("sub/inner"), "also precious\n").expect("write");
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).expect("chmod");
    give_tree_to_pg(&dest);

    let out = fetch(storage.path(), &dest, HAND_NAME, &[], root.path());
    let error = failed_once(&out, "backup-fetch into a non-empty directory");
    assert!(error.contains("not empty"), "{error}");
    assert_eq!(entries(&dest), vec!["keep.txt", "sub"]);
    assert_eq!(entries(&dest.join("sub")), vec!["inner"]);
    assert_eq!(
        fs::read_to_string(dest.join("keep.txt")).expect("read"),
        "precious\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("sub/inner")).expect("read"),
        "also precious\n"
    );
    assert_eq!(
        fs::metadata(&dest).expect("stat").permissions().mode() & 0o7777,
        0o755,
        "the target's mode must not change"
    );

    // The same backup restores into an empty directory: the refusal was about the target.
    let empty = root.path().join("empty");
    let out = fetch(storage.path(), &empty, HAND_NAME, &[], root.path());
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(
        fs::read(empty.join("base/1/1259")).expect("restored"),
        vec![7u8; 8192]
    );
    assert!(empty.join("global/pg_control").is_file());
    assert_eq!(
        fs::read_to_string(empty.join("backup_label")).expect("label"),
        hand_label()
    );
}

#[test]
fn missing_backup_is_reported() {
    require_tools(&["lz4"]);
    let storage = pg_tempdir("walgmissing");
    hand_backup(storage.path(), HAND_NAME, &benign_members());
    let root = pg_tempdir("walgmissingrs");
    let dest = root.path().join("data");
    let out = fetch(
        storage.path(),
        &dest,
        "base_000000010000000000000099",
        &[],
        root.path(),
    );
    let error = failed_once(&out, "backup-fetch of a missing backup");
    assert!(
        error.contains("base_000000010000000000000099") && error.contains("does not exist"),
        "{error}"
    );
    assert!(!dest.exists(), "no target is created for a missing backup");
}

#[test]
fn sentinel_that_is_not_json_is_reported() {
    require_tools(&["lz4"]);
    let storage = pg_tempdir("walgbadsentinel");
    hand_backup(storage.path(), HAND_NAME, &benign_members());
    fs::write(
        storage
            .path()
            .join("basebackups_005")
            .join(format!("{HAND_NAME}_backup_stop_sentinel.json")),
        "<html>this is not a sentinel</html>\n",
    )
    .expect("overwrite the sentinel");
    give_tree_to_pg(&storage.path().join("basebackups_005"));

    for backup in [HAND_NAME, "LATEST"] {
        let root = pg_tempdir("walgbadsentinelrs");
        let dest = root.path().join("data");
        let out = fetch(storage.path(), &dest, backup, &[], root.path());
        let error = failed_once(
            &out,
            &format!("backup-fetch {backup} with a broken sentinel"),
        );
        assert!(
            error.contains("sentinel") && error.contains(HAND_NAME),
            "the error must say which document is broken: {error}"
        );
        assert!(
            !dest.join("global/pg_control").exists() && !dest.join("PG_VERSION").exists(),
            "nothing restored from a backup with a broken sentinel"
        );
    }
}
