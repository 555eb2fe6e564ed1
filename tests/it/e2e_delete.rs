//! End to end: retention on a real archiving cluster (local folder). Five backups with writes
//! between them; `delete retain 3` is a dry run; `--confirm` keeps exactly the three newest and
//! the WAL they need; the oldest kept backup still restores and replays; a permanent backup
//! survives `retain 1` with its WAL; `delete garbage` removes an incomplete backup folder and
//! nothing else; `delete everything FORCE --confirm` empties the prefix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::env_of;
use crate::common::pg::{
    Cluster, ClusterOptions, describe_output, hand_to_pg_user, pg_tempdir, walg_as_pg, walg_command,
};
use crate::common::s3server::S3Server;

const TIMEOUT: Duration = Duration::from_secs(180);
const S3_PREFIX: &str = "pg/retention";

/// Where the objects are: a local folder, or an s3s-fs server (which keeps them as files) with
/// the folder of its credentials file, kept alive as long as the setup.
#[allow(dead_code)]
enum Store {
    Folder(tempfile::TempDir),
    S3(S3Server, tempfile::TempDir),
}

struct Setup {
    pg: Cluster,
    store: Store,
    settings: Vec<(String, String)>,
}

impl Setup {
    fn new() -> Setup {
        let storage = pg_tempdir("walgdel");
        let settings = vec![(
            "WALG_FILE_PREFIX".to_string(),
            storage.path().display().to_string(),
        )];
        Setup::with(Store::Folder(storage), settings)
    }

    fn new_s3() -> Setup {
        let server = S3Server::start();
        let secrets = pg_tempdir("walgdelsecret");
        let settings = server.walg_env_with_credentials_file(S3_PREFIX, secrets.path());
        Setup::with(Store::S3(server, secrets), settings)
    }

    fn with(store: Store, settings: Vec<(String, String)>) -> Setup {
        let mut pg = Cluster::init(ClusterOptions::archiving(walg_command(
            &env_of(&settings),
            "wal-push %p",
        )));
        pg.start();
        pg.psql("create table t(id bigserial primary key, note text)");
        Setup {
            pg,
            store,
            settings,
        }
    }

    /// The folder holding the objects under the prefix.
    fn root(&self) -> PathBuf {
        match &self.store {
            Store::Folder(dir) => dir.path().to_path_buf(),
            Store::S3(server, _) => server.data_dir().join(server.bucket()).join(S3_PREFIX),
        }
    }

    fn walg(&self, args: &[&str]) -> std::process::Output {
        let mut all = self.settings.clone();
        all.extend(self.pg.client_env());
        walg_as_pg(args, &env_of(&all), self.pg.root_dir())
    }

    fn ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.walg(args);
        assert!(
            out.status.success(),
            "walg {args:?}\n{}",
            describe_output(&out)
        );
        out
    }

    /// A backup after some writes and a WAL switch; returns its name.
    fn backup(&self, i: usize, extra: &[&str]) -> String {
        self.pg.psql(&format!(
            "insert into t(note) select 'round {i}' from generate_series(1, 2000)"
        ));
        self.pg.switch_wal();
        let data = self.pg.data_dir().to_str().expect("utf-8").to_string();
        let mut args = vec!["backup-push", data.as_str()];
        args.extend_from_slice(extra);
        self.ok(&args);
        self.backups().pop().expect("a backup")
    }

    fn backups(&self) -> Vec<String> {
        let out = self.ok(&["backup-list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        list.as_array()
            .expect("array")
            .iter()
            .map(|b| b["backup_name"].as_str().expect("name").to_string())
            .collect()
    }

    fn wal_segments(&self) -> BTreeSet<String> {
        files(&self.root().join("wal_005"))
            .into_iter()
            .filter(|n| n.len() == 28 && n.ends_with(".lz4"))
            .map(|n| n[..24].to_string())
            .collect()
    }

    fn all_objects(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        walk(&self.root(), &mut out);
        out
    }
}

fn files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.insert(path);
        }
    }
}

/// The 24-hex start segment of a backup name.
fn start_segment(name: &str) -> &str {
    &name[5..29]
}

#[test]
fn retain_three_of_five_then_restore_the_oldest_kept() {
    retain_three_of_five(Setup::new());
}

#[test]
fn retain_three_of_five_on_s3() {
    retain_three_of_five(Setup::new_s3());
}

fn retain_three_of_five(s: Setup) {
    let names: Vec<String> = (0..5).map(|i| s.backup(i, &[])).collect();
    s.pg.psql("insert into t(note) values ('marker')");
    let last = s.pg.switch_wal();
    s.pg.wait_archived_through(&last, TIMEOUT);

    // step: without --confirm nothing is deleted, and the plan names what would be.
    let before = s.all_objects();
    let dry = s.ok(&["delete", "retain", "3"]);
    assert_eq!(s.all_objects(), before, "a dry run deleted something");
    let text =
        String::from_utf8_lossy(&dry.stderr).to_string() + &String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains(&names[0]) && text.contains(&names[1]),
        "the plan should name the two oldest backups:\n{text}"
    );

    // step: --json prints the plan.
    let json = s.ok(&["delete", "retain", "3", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan json");
    assert!(plan.to_string().contains(&names[0]), "{plan}");

    // step: --confirm keeps exactly the three newest and the WAL from the oldest kept start on.
    s.ok(&["delete", "retain", "3", "--confirm"]);
    assert_eq!(s.backups(), names[2..].to_vec());
    let oldest_kept = start_segment(&names[2]);
    let wal = s.wal_segments();
    assert!(
        wal.iter().all(|seg| seg.as_str() >= oldest_kept),
        "WAL older than {oldest_kept} survived: {wal:?}"
    );
    assert!(
        wal.contains(oldest_kept),
        "the oldest kept backup's start segment was deleted"
    );
    let deleted_folders: Vec<_> = names[..2]
        .iter()
        .filter(|n| {
            let folder = s.root().join("basebackups_005").join(n);
            s.all_objects().iter().any(|o| o.starts_with(&folder))
        })
        .collect();
    assert!(deleted_folders.is_empty(), "{deleted_folders:?}");

    // step: the oldest kept backup restores and replays to the end of the archive.
    let expected = s.pg.psql("select count(*) from t");
    let mut pg = s.pg;
    pg.stop();
    let root = pg_tempdir("walgdelrs");
    let dest = root.path().join("data");
    let mut all = s.settings.clone();
    all.extend(pg.client_env());
    let out = walg_as_pg(
        &[
            "backup-fetch",
            dest.to_str().expect("utf-8"),
            &names[2],
            "-R",
        ],
        &env_of(&all),
        pg.root_dir(),
    );
    assert!(out.status.success(), "{}", describe_output(&out));
    let mut restored = Cluster::from_restored(root, ClusterOptions::default());
    restored.start();
    restored.wait_for_recovery_end(TIMEOUT);
    assert_eq!(restored.psql("select count(*) from t"), expected);
}

#[test]
fn permanent_backup_and_its_wal_survive_retain_one() {
    let s = Setup::new();
    let first = s.backup(0, &[]);
    let permanent = s.backup(1, &["--permanent"]);
    let _third = s.backup(2, &[]);
    let newest = s.backup(3, &[]);
    s.pg.psql("insert into t(note) values ('after the last backup')");
    let last = s.pg.switch_wal();
    s.pg.wait_archived_through(&last, TIMEOUT);
    let wal_before = s.wal_segments();

    s.ok(&["delete", "retain", "1", "--confirm"]);
    let left = s.backups();
    assert!(
        left.contains(&permanent) && left.contains(&newest),
        "{left:?}"
    );
    assert!(!left.contains(&first), "{left:?}");
    // The permanent backup's WAL (its start segment at least) is still there.
    let wal = s.wal_segments();
    assert!(
        wal.contains(start_segment(&permanent)),
        "the permanent backup lost its WAL"
    );
    assert!(wal.len() < wal_before.len(), "nothing was deleted");

    // Everything, even permanent backups, only with FORCE.
    let out = s.walg(&["delete", "everything", "--confirm"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    s.ok(&["delete", "everything", "FORCE", "--confirm"]);
    assert!(s.all_objects().is_empty(), "{:?}", s.all_objects());
}

#[test]
fn garbage_removes_only_an_incomplete_backup() {
    let s = Setup::new();
    let _a = s.backup(0, &[]);
    let _b = s.backup(1, &[]);
    // An incomplete backup: a folder without a sentinel, as a crashed backup-push leaves it.
    let junk = s
        .root()
        .join("basebackups_005/base_000000010000000000000001/tar_partitions");
    std::fs::create_dir_all(&junk).expect("mkdir");
    std::fs::write(junk.join("part_001.tar.lz4"), b"leftover").expect("write");
    for path in [
        junk.parent().expect("folder"),
        junk.as_path(),
        junk.join("part_001.tar.lz4").as_path(),
    ] {
        hand_to_pg_user(path);
    }
    let before = s.all_objects();

    s.ok(&["delete", "garbage", "BACKUPS", "--confirm"]);
    let after = s.all_objects();
    let removed: Vec<_> = before.difference(&after).collect();
    assert_eq!(
        removed,
        vec![&junk.join("part_001.tar.lz4")],
        "garbage must remove the leftover and nothing else"
    );
}
