//! The version matrix: every supported PostgreSQL major (13 to 18) through the whole cycle on a
//! real server of that major. Archiving through `wal-push`; a quiet `backup-push` and one under
//! pgbench write load; more writes; `delete retain 1 --confirm`; `backup-fetch -R` with a
//! point-in-time target and promotion; then the restored cluster must hold exactly the data of
//! the target (an ordered hash of every table: Debian's `pg_dump` 15 refuses newer servers) and
//! pass amcheck over every btree index, with no checksum failure (18's clusters have data
//! checksums). On 13 and 18 the promoted cluster goes on writing and archiving on its new
//! timeline, and the backup taken on timeline 1 is restored again, replaying through the timeline
//! switch to the end of the archive. A PostgreSQL 12 server gets one clear line from every
//! command that connects.
//!
//! Servers other than 15 come from `scripts/install-deps.sh` (see `tests/it/common/pgversions.rs`);
//! `WALG_TEST_PG_VERSIONS="13 18"` limits a run to some majors.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::common::env_of;
use crate::common::pg::{Cluster, Pgbench, describe_output, pg_tempdir, walg_as_pg, walg_command};
use crate::common::pgversions;
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(180);

/// A storage folder and the walg settings pointing at it.
struct Store {
    dir: TempDir,
    settings: Vec<(String, String)>,
}

impl Store {
    /// A new storage folder; `WALG_PG_WAL_SIZE` too when the segments are not 16 MiB.
    fn new(wal_segsize_mb: Option<u32>) -> Store {
        let dir = pg_tempdir("walgmx");
        let mut settings = vec![(
            "WALG_FILE_PREFIX".to_string(),
            dir.path().display().to_string(),
        )];
        if let Some(mb) = wal_segsize_mb {
            settings.push(("WALG_PG_WAL_SIZE".to_string(), mb.to_string()));
        }
        Store { dir, settings }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn archive_command(&self) -> String {
        walg_command(&env_of(&self.settings), "wal-push %p")
    }

    /// walg as the PostgreSQL user, with this store and `pg`'s connection.
    fn walg(&self, pg: &Cluster, args: &[&str]) -> Output {
        let mut all = self.settings.clone();
        all.extend(pg.client_env());
        walg_as_pg(args, &env_of(&all), pg.root_dir())
    }

    fn ok(&self, pg: &Cluster, args: &[&str]) -> Output {
        let out = self.walg(pg, args);
        assert!(
            out.status.success(),
            "walg {args:?}\n{}\n{}",
            describe_output(&out),
            pg.log_tail()
        );
        out
    }

    /// The names of the WAL segments in storage (extensions cut off), in order; none when
    /// `wal_005` is gone.
    fn wal_segments(&self) -> Vec<String> {
        let entries = match std::fs::read_dir(self.root().join("wal_005")) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read wal_005: {e}"),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stem = name.get(..24)?;
                let dot = name.len() == 24 || name.as_bytes()[24] == b'.';
                (dot && stem.bytes().all(|b| b.is_ascii_hexdigit())).then(|| stem.to_string())
            })
            .collect();
        names.sort();
        names
    }

    fn backup_names(&self, pg: &Cluster) -> Vec<String> {
        let out = self.ok(pg, &["backup-list", "--json"]);
        let list: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("backup-list json");
        list.as_array()
            .expect("backup-list array")
            .iter()
            .map(|b| b["backup_name"].as_str().expect("backup_name").to_string())
            .collect()
    }

    /// `backup-fetch <name> -R [extra]` into a new directory; the cluster it holds (not started).
    fn restore(&self, from: &Cluster, major: u32, name: &str, extra: &[&str]) -> Cluster {
        let root = pg_tempdir("walgmxrs");
        let dest = root.path().join("data");
        let mut args = vec!["backup-fetch", dest.to_str().expect("utf-8"), name, "-R"];
        args.extend_from_slice(extra);
        self.ok(from, &args);
        assert!(
            dest.join("recovery.signal").is_file(),
            "-R wrote no recovery.signal"
        );
        Cluster::from_restored(
            root,
            pgversions::options(major, Some(self.archive_command())),
        )
    }
}

/// A few tables beside pgbench's: text, jsonb, uuids, a btree and a gin index, a toasted value.
fn more_tables(pg: &Cluster) {
    pg.psql(
        "create table docs(id bigserial primary key, uid uuid not null default gen_random_uuid(), \
         body text, meta jsonb); \
         insert into docs(body, meta) select repeat(md5(g::text), 1 + g % 5), \
           jsonb_build_object('n', g, 'tag', md5(g::text)) from generate_series(1, 2000) g; \
         insert into docs(body) select string_agg(md5(g::text), '') from generate_series(1, 400) g; \
         create index on docs(uid); create index on docs using gin(meta); \
         create table notes(id serial primary key, note text not null);",
    );
}

/// One line per user table, in name order: `schema.table|md5 of its rows in text order|count`.
fn table_hashes(pg: &Cluster) -> Vec<String> {
    let tables = pg.psql(
        "select format('%I.%I', schemaname, tablename) from pg_tables \
         where schemaname not in ('pg_catalog', 'information_schema') order by 1",
    );
    let parts: Vec<String> = tables
        .lines()
        .map(|t| {
            format!(
                "select '{t}' as name, coalesce(md5(string_agg(r::text, E'\\n' order by r::text)), \
                 '-') as hash, count(*) as n from {t} r"
            )
        })
        .collect();
    assert!(parts.len() >= 5, "too few tables: {tables}");
    let sql = format!(
        "select * from ({}) s order by name",
        parts.join(" union all ")
    );
    pg.psql(&sql).lines().map(str::to_string).collect()
}

/// amcheck's `bt_index_check(index, heapallindexed)` over every valid btree index of the
/// database; returns how many were checked (a corrupt index fails the query).
fn amcheck_btrees(pg: &Cluster) -> u64 {
    pg.psql("create extension if not exists amcheck");
    let checked = pg.psql(
        "select count(bt_index_check(c.oid, true)) from pg_index i \
         join pg_class c on c.oid = i.indexrelid join pg_am a on a.oid = c.relam \
         where a.amname = 'btree' and i.indisvalid and i.indisready and c.relpersistence <> 't'",
    );
    checked.parse().expect("count of checked indexes")
}

/// After every table and index was read (the table hashes, amcheck): no page failed its
/// checksum. PostgreSQL 18's `initdb` turns data checksums on by default.
fn no_checksum_failures(pg: &Cluster, major: u32) {
    let on = pg.psql("show data_checksums");
    if major >= 18 {
        assert_eq!(on, "on", "postgresql {major} clusters have data checksums");
    }
    assert_eq!(
        pg.psql("select coalesce(sum(checksum_failures), 0) from pg_stat_database"),
        "0",
        "postgresql {major} (data_checksums = {on}): checksum failures reading the restored cluster"
    );
}

fn assert_same_tables(expected: &[String], actual: &[String], what: &str) {
    assert_eq!(
        expected, actual,
        "{what}: the restored tables differ from the original (name|md5|rows)"
    );
}

/// What a run of [`cycle`] covers.
#[derive(Clone, Copy)]
struct Case {
    major: u32,
    /// Also write and archive on the promoted cluster's new timeline, and replay the timeline 1
    /// backup through the switch.
    promote_and_replay: bool,
    /// `initdb --wal-segsize` (MiB); `None` is the default 16.
    wal_segsize_mb: Option<u32>,
}

/// The whole cycle on one server: archive, back up (once under load), retain 1, restore to a
/// point in time, compare, amcheck; then, as `case` asks, the timeline switch.
fn cycle(case: Case) {
    let major = case.major;
    if !pgversions::selected(major) {
        return;
    }
    let store = Store::new(case.wal_segsize_mb);
    let mut opts = pgversions::options(major, Some(store.archive_command()));
    if let Some(mb) = case.wal_segsize_mb {
        opts.initdb_args.push(format!("--wal-segsize={mb}"));
    }
    let mut pg = Cluster::init(opts);
    pg.start();
    let segment_bytes: u64 = pg
        .psql("select setting from pg_settings where name = 'wal_segment_size'")
        .parse()
        .expect("wal_segment_size");
    assert_eq!(
        segment_bytes,
        u64::from(case.wal_segsize_mb.unwrap_or(16)) << 20,
        "initdb --wal-segsize was not applied"
    );
    let num: u32 = pg
        .psql("select current_setting('server_version_num')")
        .parse()
        .expect("server_version_num");
    assert_eq!(num / 10_000, major, "the cluster runs the wrong server");
    pg.pgbench_init(1);
    more_tables(&pg);
    let data_dir = pg.data_dir().to_str().expect("utf-8").to_string();
    if let Some(mb) = case.wal_segsize_mb {
        // walg set for 16 MiB refuses the server's other size, and says what to set.
        let mut sixteen = store.settings.clone();
        sixteen.retain(|(k, _)| k != "WALG_PG_WAL_SIZE");
        sixteen.extend(pg.client_env());
        let out = walg_as_pg(
            &["backup-push", &data_dir],
            &env_of(&sixteen),
            pg.root_dir(),
        );
        assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("set WALG_PG_WAL_SIZE={mb}")),
            "{stderr}"
        );
    }

    // step: a quiet backup, more writes, then a backup while pgbench writes.
    store.ok(&pg, &["backup-push", &data_dir]);
    pg.pgbench_run(Pgbench::Transactions(50));
    let out = std::thread::scope(|s| {
        let load = s.spawn(|| pg.pgbench_run(Pgbench::Seconds(3)));
        let out = store.walg(&pg, &["backup-push", &data_dir]);
        load.join().expect("pgbench thread");
        out
    });
    assert!(
        out.status.success(),
        "backup-push under load\n{}\n{}",
        describe_output(&out),
        pg.log_tail()
    );
    let names = store.backup_names(&pg);
    assert_eq!(names.len(), 2, "{names:?}");
    // The backup's name is the server's own name of its start segment.
    let out = store.ok(&pg, &["backup-list", "--detail", "--json"]);
    let detail: serde_json::Value = serde_json::from_slice(&out.stdout).expect("detail json");
    for backup in detail.as_array().expect("backup-list array") {
        let lsn = backup["start_lsn"].as_u64().expect("start_lsn");
        let segment = pg.psql(&format!(
            "select pg_walfile_name('{:X}/{:X}')",
            lsn >> 32,
            lsn & 0xffff_ffff
        ));
        let name = backup["backup_name"].as_str().expect("backup_name");
        assert_eq!(name, format!("base_{segment}"), "{backup}");
    }

    // step: writes after the backup, the point in time, then writes that must not come back.
    pg.pgbench_run(Pgbench::Transactions(100));
    pg.psql("insert into notes(note) values ('before the target')");
    let expected = table_hashes(&pg);
    std::thread::sleep(Duration::from_millis(1100));
    let target = pg.psql("select now()::text");
    std::thread::sleep(Duration::from_millis(1100));
    pg.psql("create table marker as select 'too late'::text as note");
    pg.pgbench_run(Pgbench::Transactions(50));
    let last = pg.switch_wal();
    pg.wait_archived_through(&last, TIMEOUT);

    // step: retention keeps the newest backup only.
    store.ok(&pg, &["delete", "retain", "1", "--confirm"]);
    let kept = store.backup_names(&pg);
    assert_eq!(
        kept,
        names[1..].to_vec(),
        "delete retain 1 kept the wrong backups"
    );
    let oldest_kept = &kept[0]["base_".len()..];
    let wal = store.wal_segments();
    assert_eq!(
        wal.first().map(String::as_str),
        Some(oldest_kept),
        "retention must keep the WAL from the kept backup's start segment on, and nothing older"
    );
    pg.stop();

    // step: restore to the point in time, promote, compare, amcheck.
    let mut restored = store.restore(
        &pg,
        major,
        "LATEST",
        &["--target-time", &target, "--target-action", "promote"],
    );
    restored.start();
    restored.wait_for_recovery_end(TIMEOUT);
    assert_eq!(
        restored.psql("select count(*) from pg_class where relname = 'marker'"),
        "0",
        "recovery went past the target"
    );
    assert_same_tables(&expected, &table_hashes(&restored), "point in time");
    let checked = amcheck_btrees(&restored);
    assert!(checked > 50, "only {checked} btree indexes checked");
    no_checksum_failures(&restored, major);
    if !case.promote_and_replay {
        return;
    }

    // step: the promoted cluster writes and archives on timeline 2 into the same storage.
    let first_new = restored.psql("select pg_walfile_name(pg_current_wal_lsn())");
    assert!(
        first_new.starts_with("00000002"),
        "not on timeline 2: {first_new}"
    );
    restored.pgbench_run(Pgbench::Transactions(100));
    restored.psql("insert into notes(note) values ('on timeline 2')");
    let expected2 = table_hashes(&restored);
    let last = restored.switch_wal();
    restored.wait_archived_through(&last, TIMEOUT);
    restored.stop();
    let history = std::fs::read_dir(store.root().join("wal_005"))
        .expect("wal_005")
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("00000002.history")
        });
    assert!(history, "the timeline 2 history file was not archived");

    // step: the timeline 1 backup replays through the switch to the end of timeline 2.
    let mut replayed = store.restore(&restored, major, &kept[0], &[]);
    replayed.start();
    replayed.wait_for_recovery_end(TIMEOUT);
    assert_same_tables(
        &expected2,
        &table_hashes(&replayed),
        "through the timeline switch",
    );
    assert_eq!(
        replayed.psql("select note from notes order by id desc limit 1"),
        "on timeline 2"
    );
    let checked = amcheck_btrees(&replayed);
    assert!(checked > 50, "only {checked} btree indexes checked");
    no_checksum_failures(&replayed, major);
}

#[test]
fn postgres_13_archives_backs_up_and_restores_to_a_point_in_time_and_across_a_promotion() {
    cycle(Case {
        major: 13,
        promote_and_replay: true,
        wal_segsize_mb: None,
    });
}

#[test]
fn postgres_14_archives_backs_up_and_restores_to_a_point_in_time() {
    cycle(Case {
        major: 14,
        promote_and_replay: false,
        wal_segsize_mb: None,
    });
}

#[test]
fn postgres_15_archives_backs_up_and_restores_to_a_point_in_time() {
    cycle(Case {
        major: 15,
        promote_and_replay: false,
        wal_segsize_mb: None,
    });
}

#[test]
fn postgres_16_archives_backs_up_and_restores_to_a_point_in_time() {
    cycle(Case {
        major: 16,
        promote_and_replay: false,
        wal_segsize_mb: None,
    });
}

#[test]
fn postgres_17_archives_backs_up_and_restores_to_a_point_in_time() {
    cycle(Case {
        major: 17,
        promote_and_replay: false,
        wal_segsize_mb: None,
    });
}

#[test]
fn postgres_18_archives_backs_up_and_restores_to_a_point_in_time_and_across_a_promotion() {
    cycle(Case {
        major: 18,
        promote_and_replay: true,
        wal_segsize_mb: None,
    });
}

#[test]
fn wal_segments_of_64_mib_archive_back_up_and_restore_to_a_point_in_time() {
    cycle(Case {
        major: 15,
        promote_and_replay: false,
        wal_segsize_mb: Some(64),
    });
}

#[test]
fn wal_segments_of_1_mib_archive_back_up_and_restore_across_a_promotion() {
    cycle(Case {
        major: 15,
        promote_and_replay: true,
        wal_segsize_mb: Some(1),
    });
}

/// The lines of a command's stderr that are not empty.
fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn postgres_12_is_refused_with_one_line_naming_the_version_by_every_command_that_connects() {
    if !pgversions::selected(12) {
        return;
    }
    let store = Store::new(None);
    let mut opts = pgversions::options(12, Some(store.archive_command()));
    opts.wal_keep_size_mb = 0; // 12 has no wal_keep_size
    let mut pg = Cluster::init(opts);
    pg.start();
    let version = pg.psql("select current_setting('server_version')");
    let version = version
        .split_whitespace()
        .next()
        .expect("server_version")
        .to_string();
    assert!(version.starts_with("12."), "{version}");
    let refusal =
        format!("postgresql {version} is not supported: walg supports postgresql 13 to 18");
    let data_dir = pg.data_dir().to_str().expect("utf-8").to_string();

    let out = store.walg(&pg, &["backup-push", &data_dir]);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "backup-push: {lines:#?}");
    assert!(lines[0].contains(&refusal), "backup-push: {lines:#?}");

    let out = store.walg(&pg, &["schedule", &data_dir, "--retain", "1", "--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let lines = stderr_lines(&out);
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("ERROR")).collect();
    assert_eq!(errors.len(), 1, "schedule --once: {lines:#?}");
    assert!(errors[0].contains(&refusal), "schedule --once: {lines:#?}");
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("postgresql"))
            .all(|l| l.contains(&refusal)),
        "schedule --once: {lines:#?}"
    );
    assert!(
        store.backup_names(&pg).is_empty(),
        "a backup of PostgreSQL 12 was stored"
    );
}
