//! Crash harness: every writing command is killed with SIGKILL at seeded random points, and
//! after each kill the storage and the destinations are checked.
//!
//! * wal-push, as the `archive_command` of a real PostgreSQL 15 cluster, into a local folder
//!   and into S3 (s3s-fs on loopback): a wrapper script runs walg and kills it after a delay the
//!   test hands it. At the end every segment PostgreSQL counts as archived (`.done`) must be in
//!   storage and fetch back byte for byte.
//! * wal-fetch: `%p` either does not exist or holds the whole segment.
//! * backup-push: every backup with a sentinel is complete (documents parse, every part named
//!   in its file list is there, its WAL range is stored); periodically a real backup-fetch.
//! * backup-fetch: a target holding `global/pg_control` holds the whole backup.
//! * delete --confirm: every backup still listed is complete, and the same delete run again
//!   reaches the same end state.
//!
//! After every kill the same command runs again and must succeed; at the end
//! `delete garbage --confirm` runs and no walg temp file may remain in the storage folder or a
//! destination folder. The kill delay is uniform in `[0, typical run time]` (narrowed to any
//! run that finished before its kill, as load on the machine changes), the typical time
//! being measured on uncrashed runs first. `WALG_CRASH_SEED` and `WALG_CRASH_RUNS` are described
//! in `common/crash.rs`.
#![allow(
    clippy::print_stderr,
    reason = "each command's tally (runs, kills, violations, hangs, times) is the harness's report"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::crash::{
    Ended, Rng, Tally, copy_tree, files_under, incomplete_backups, run_and_kill, runs, seed,
    temp_files, tree_sizes,
};
use crate::common::env_of;
use crate::common::pg::{
    Cluster, ClusterOptions, hand_to_pg_user, pg_tempdir, walg_bin, walg_command,
};
use crate::common::s3server::S3Server;
use crate::common::segments::fake_segment;

/// A run still going after this long is a hang.
const HANG: Duration = Duration::from_secs(120);
/// Deadline for PostgreSQL to archive what the test waits for.
const ARCHIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long PostgreSQL's archiver may take to start the next archive_command: after failures
/// it may sleep a minute between rounds (and a restarted archiver waits as long), which is
/// PostgreSQL's pace, not a hang of walg.
const ARCHIVER_IDLE: Duration = Duration::from_secs(300);
/// While no attempt has started, new WAL is made this often to wake PostgreSQL's archiver.
const NUDGE_EVERY: Duration = Duration::from_secs(10);
/// Every this many runs, a complete backup is restored for real.
const FETCH_EVERY: usize = 5;

/// walg as the test's own user, with `settings` as its only settings, run from `cwd`.
fn walg_cmd(settings: &[(String, String)], args: &[&str], cwd: &Path) -> Command {
    let mut cmd = Command::new(walg_bin());
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(cwd)
        .args(args)
        .envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}

/// Runs walg to completion; `Err` with its stderr unless it exits 0.
fn walg_ok(settings: &[(String, String)], args: &[&str], cwd: &Path) -> Result<Duration, String> {
    let start = Instant::now();
    match run_and_kill(walg_cmd(settings, args, cwd), None, HANG) {
        Ended::Exited { status, .. } if status.success() => Ok(start.elapsed()),
        Ended::Exited { status, stderr } => Err(format!("walg {args:?}: {status}: {stderr}")),
        other => Err(format!("walg {args:?}: {other:?}")),
    }
}

/// One run killed after a delay drawn in `[0, typical]`; the tally counts it.
fn killed_run(
    tally: &mut Tally,
    rng: &mut Rng,
    settings: &[(String, String)],
    args: &[&str],
    cwd: &Path,
) -> Ended {
    let delay = rng.delay(tally.typical);
    let start = Instant::now();
    let ended = run_and_kill(walg_cmd(settings, args, cwd), Some(delay), HANG);
    let took = start.elapsed();
    tally.ran(took);
    match &ended {
        Ended::Killed => tally.kills += 1,
        Ended::Hung => {
            tally.hangs += 1;
            tally.violation(format!("walg {args:?} hung (killed after {HANG:?})"));
        }
        Ended::Exited { status, stderr } if !status.success() => {
            tally.violation(format!(
                "walg {args:?} failed on its own: {status}: {stderr}"
            ));
        }
        Ended::Exited { .. } => tally.outran(took),
    }
    ended
}

/// The median of uncrashed run times.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// True while more kills are wanted (bounded: a command too fast to kill ends the loop).
fn want_more(tally: &Tally, want: usize) -> bool {
    tally.kills < want && tally.runs < want * 5
}

fn enough_kills(tally: &mut Tally, want: usize) {
    if tally.kills < want {
        let msg = format!(
            "only {} of {want} runs were killed in {} runs",
            tally.kills, tally.runs
        );
        tally.violation(msg);
    }
}

/// Temp files left in `dirs`, as violations.
fn no_temps_left(tally: &mut Tally, dirs: &[&Path]) {
    for dir in dirs {
        let left = temp_files(dir);
        if !left.is_empty() {
            tally.violation(format!(
                "temp files left in {} after the next run and delete garbage: {left:?}",
                dir.display()
            ));
        }
    }
}

/// `delete garbage --confirm`, as a violation when it fails.
fn delete_garbage(tally: &mut Tally, settings: &[(String, String)], cwd: &Path) {
    if let Err(e) = walg_ok(settings, &["delete", "garbage", "--confirm"], cwd) {
        tally.violation(format!("delete garbage --confirm failed: {e}"));
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn local_settings(dir: &Path) -> Vec<(String, String)> {
    vec![("WALG_FILE_PREFIX".to_string(), dir.display().to_string())]
}

// ---------------------------------------------------------------------------------------------
// wal-push as PostgreSQL's archive_command
// ---------------------------------------------------------------------------------------------

/// The wrapper `archive_command`: runs walg wal-push; when the test left a delay file
/// (`<seconds> <id>`) it takes it and kills walg with SIGKILL after that many seconds. Each
/// attempt appends `<path> <exit status> <start ns> <end ns> <id or ->` to `log`. A killed
/// walg (137) is reported to PostgreSQL as a plain failure (1): PostgreSQL 15 takes a status
/// above 125 as fatal for the archiver, which is then restarted only up to a minute later;
/// with 1 it retries the same file after a second, which is what matters here.
fn archive_wrapper(ctl: &Path, walg_line: &str) -> PathBuf {
    let script = ctl.join("archive.sh");
    let ctl = ctl.display();
    let text = format!(
        "#!/bin/sh\n\
         ctl={ctl}\n\
         d=\n\
         id=-\n\
         if [ -f \"$ctl/delay\" ]; then read d id < \"$ctl/delay\"; rm -f \"$ctl/delay\"; fi\n\
         start=$(date +%s%N)\n\
         echo \"$1 $id\" >> \"$ctl/started\"\n\
         {walg_line} &\n\
         pid=$!\n\
         killer=\n\
         if [ -n \"$d\" ]; then (sleep \"$d\"; kill -KILL \"$pid\" 2>/dev/null) & killer=$!; fi\n\
         wait \"$pid\"\n\
         rc=$?\n\
         end=$(date +%s%N)\n\
         if [ -n \"$killer\" ]; then kill \"$killer\" 2>/dev/null; fi\n\
         echo \"$1 $rc $start $end $id\" >> \"$ctl/log\"\n\
         if [ \"$rc\" -gt 125 ]; then exit 1; fi\n\
         exit $rc\n"
    );
    fs::write(&script, text).expect("write the archive wrapper");
    let out = Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .expect("chmod");
    assert!(out.success());
    hand_to_pg_user(&script);
    script
}

/// True once the wrapper started the attempt that took the delay `id`.
fn started(ctl: &Path, id: &str) -> bool {
    fs::read_to_string(ctl.join("started"))
        .map(|text| text.lines().any(|line| line.rsplit(' ').next() == Some(id)))
        .unwrap_or(false)
}

/// One line of the wrapper's log.
#[derive(Debug)]
struct Attempt {
    path: String,
    rc: i32,
    took: Duration,
    id: String,
}

fn attempts(ctl: &Path) -> Vec<Attempt> {
    let text = fs::read_to_string(ctl.join("log")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [path, rc, start, end, id] = f.as_slice() else {
                return None;
            };
            let ns = |s: &str| s.parse::<u64>().unwrap_or(0);
            Some(Attempt {
                path: path.to_string(),
                rc: rc.parse().unwrap_or(-1),
                took: Duration::from_nanos(ns(end).saturating_sub(ns(start))),
                id: id.to_string(),
            })
        })
        .collect()
}

/// Writes WAL and finishes `n` segments.
fn make_segments(pg: &Cluster, n: usize) -> String {
    let mut last = String::new();
    for _ in 0..n {
        pg.psql("insert into t select g, md5(g::text) from generate_series(1, 3000) g");
        last = pg.switch_wal();
    }
    last
}

fn wal_push_under_archiver(command: &str, settings: Vec<(String, String)>, storage_root: &Path) {
    let seed = seed();
    let want = runs();
    let mut rng = Rng::new(seed, command);
    let mut tally = Tally::new(command, seed);

    let ctl = pg_tempdir("walgcrashctl");
    let script = archive_wrapper(
        ctl.path(),
        &walg_command(&env_of(&settings), "wal-push \"$1\""),
    );
    let mut opts = ClusterOptions::archiving(format!("{} %p", script.display()));
    // Archived segments stay in pg_wal, to compare with what storage holds.
    opts.wal_keep_size_mb = 4096;
    let mut pg = Cluster::init(opts);
    pg.start();
    pg.psql("create table t(id int, note text)");

    // step: uncrashed runs give the typical run time.
    let last = make_segments(&pg, 3);
    pg.wait_archived_through(&last, ARCHIVE_TIMEOUT);
    let clean: Vec<Duration> = attempts(ctl.path())
        .iter()
        .filter(|a| a.rc == 0)
        .map(|a| a.took)
        .collect();
    assert!(
        !clean.is_empty(),
        "no uncrashed wal-push\n{}",
        pg.log_tail()
    );
    tally.typical = median(clean);

    // step: each round hands the wrapper a delay, finishes one or two segments and waits for
    // the attempt that took the delay.
    let mut round = 0;
    let mut temps_seen = temp_files(storage_root).len();
    while want_more(&tally, want) {
        round += 1;
        let delay = rng.delay(tally.typical);
        let id = format!("r{round}");
        let file = ctl.path().join("delay");
        // Written whole, then renamed: the wrapper may read the file at any moment, and a
        // half-written one would lose the round's id.
        let partial = ctl.path().join("delay.partial");
        fs::write(&partial, format!("{:.6} {id}\n", delay.as_secs_f64())).expect("write delay");
        fs::rename(&partial, &file).expect("place delay");
        make_segments(&pg, 1 + rng.below(2));
        let waited = Instant::now();
        let mut started_at: Option<Instant> = None;
        let mut nudged = Duration::ZERO;
        let attempt = loop {
            if let Some(a) = attempts(ctl.path()).into_iter().find(|a| a.id == id) {
                break Ok(a);
            }
            if started_at.is_none() && started(ctl.path(), &id) {
                started_at = Some(Instant::now());
            }
            match started_at {
                // walg runs and does not end: a hang.
                Some(at) if at.elapsed() > HANG => {
                    break Err(format!("a wal-push ran for over {HANG:?}"));
                }
                // PostgreSQL ran no archive_command at all for this long.
                None if waited.elapsed() > ARCHIVER_IDLE => {
                    break Err(format!(
                        "PostgreSQL started no archive_command within {ARCHIVER_IDLE:?}\n{}",
                        pg.log_tail()
                    ));
                }
                _ => {
                    // An archiver that gave up after failures waits for new WAL: give it some
                    // every 10 s (walg's own hangs are caught above, once an attempt started).
                    if started_at.is_none() && waited.elapsed() > nudged + NUDGE_EVERY {
                        nudged = waited.elapsed();
                        make_segments(&pg, 1);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        let attempt = match attempt {
            Ok(attempt) => attempt,
            Err(why) => {
                tally.hangs += 1;
                tally.violation(format!("round {round}: {why}"));
                let _ = fs::remove_file(&file);
                break;
            }
        };
        tally.ran(attempt.took);
        match attempt.rc {
            0 => tally.outran(attempt.took),
            137 => {
                tally.kills += 1;
                let temps = temp_files(storage_root).len();
                if temps > temps_seen {
                    tally.midway += 1;
                }
                temps_seen = temps;
                // The next delay waits for a successful attempt: a segment whose three
                // attempts in a row are killed makes PostgreSQL's archiver pause.
                let ok_before = attempts(ctl.path()).iter().filter(|a| a.rc == 0).count();
                let since = Instant::now();
                let mut nudged = Duration::ZERO;
                while attempts(ctl.path()).iter().filter(|a| a.rc == 0).count() == ok_before
                    && since.elapsed() < ARCHIVER_IDLE
                {
                    if since.elapsed() > nudged + NUDGE_EVERY {
                        nudged = since.elapsed();
                        make_segments(&pg, 1);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            rc => tally.violation(format!(
                "wal-push {} exited {rc} on its own (round {round})",
                attempt.path
            )),
        }
    }
    enough_kills(&mut tally, want);

    // step: no more kills; everything must get archived, and every attempt after a kill is the
    // next run of the same command.
    let last = make_segments(&pg, 1);
    pg.wait_archived_through(&last, ARCHIVE_TIMEOUT);
    for a in attempts(ctl.path()) {
        tally.max_run = tally.max_run.max(a.took);
        if a.rc != 0 && a.rc != 137 {
            tally.violation(format!("wal-push {} exited {}", a.path, a.rc));
        }
    }

    // step: every segment PostgreSQL counts as archived fetches back byte for byte.
    let pg_wal = pg.data_dir().join("pg_wal");
    let fetched = pg_tempdir("walgcrashfetched");
    let mut done: Vec<String> = fs::read_dir(pg_wal.join("archive_status"))
        .expect("list archive_status")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".done").map(str::to_string))
        .filter(|n| common::pg::is_segment_name(n))
        .collect();
    done.sort();
    let stats = pg.archiver_stats();
    assert!(
        done.len() as u64 >= tally.runs as u64 / 2 && !done.is_empty(),
        "{} segments marked done for {stats:?}",
        done.len()
    );
    for name in &done {
        let dest = fetched.path().join(name);
        let dest_str = dest.display().to_string();
        if let Err(e) = walg_ok(&settings, &["wal-fetch", name, &dest_str], fetched.path()) {
            tally.violation(format!(
                "{name} is archived for PostgreSQL but cannot be fetched: {e}"
            ));
            continue;
        }
        let original = fs::read(pg_wal.join(name)).expect("read the segment in pg_wal");
        if fs::read(&dest).ok().as_deref() != Some(original.as_slice()) {
            tally.violation(format!(
                "{name} fetched back differs from what PostgreSQL archived"
            ));
        }
        let _ = fs::remove_file(&dest);
    }
    eprintln!(
        "{command}: {} segments archived ({stats:?}), all compared",
        done.len()
    );

    // step: delete garbage, then no temp files in storage nor in pg_wal.
    delete_garbage(&mut tally, &settings, fetched.path());
    no_temps_left(&mut tally, &[storage_root, &pg_wal]);
    pg.stop();
    tally.finish();
}

#[test]
fn wal_push_to_a_local_folder_killed_by_the_archiver_loses_no_archived_segment() {
    let storage = pg_tempdir("walgcrashwal");
    let settings = local_settings(storage.path());
    wal_push_under_archiver("wal-push (local folder)", settings, storage.path());
}

#[test]
fn wal_push_to_s3_killed_by_the_archiver_loses_no_archived_segment() {
    let server = S3Server::start();
    let prefix = "pg/crash";
    let mut settings = server.walg_env(prefix);
    settings.push(("S3_REQUEST_TIMEOUT".into(), "10s".into()));
    let root = server.data_dir().join(server.bucket()).join(prefix);
    wal_push_under_archiver("wal-push (S3)", settings, &root);
}

// ---------------------------------------------------------------------------------------------
// wal-fetch
// ---------------------------------------------------------------------------------------------

#[test]
fn wal_fetch_killed_never_leaves_a_partial_file_at_its_destination() {
    let seed = seed();
    let want = runs();
    let mut rng = Rng::new(seed, "wal-fetch");
    let mut tally = Tally::new("wal-fetch", seed);
    let storage = pg_tempdir("walgcrashwf");
    let mut settings = local_settings(storage.path());
    // No detached prefetch process: it outlives the killed wal-fetch and writes on its own.
    settings.push(("WALG_DOWNLOAD_CONCURRENCY".into(), "1".into()));

    let source = pg_tempdir("walgcrashwfsrc");
    let names = [
        "000000010000000000000003",
        "000000010000000000000004",
        "000000010000000000000005",
    ];
    let mut segments = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let bytes = fake_segment(name, 7 + i as u64);
        let path = source.path().join(name);
        fs::write(&path, &bytes).expect("write segment");
        let path = path.display().to_string();
        walg_ok(&settings, &["wal-push", &path], source.path()).expect("wal-push a segment");
        segments.push(bytes);
    }

    // The destination folder is the same for every run, as pg_wal is for restore_command.
    let dest_dir = pg_tempdir("walgcrashwfdst");
    let dest = dest_dir.path().join("RECOVERYXLOG");
    let dest_str = dest.display().to_string();
    let fetch =
        |i: usize| -> Vec<String> { vec!["wal-fetch".into(), names[i].into(), dest_str.clone()] };

    // step: typical time.
    let mut times = Vec::new();
    for _ in 0..3 {
        let _ = fs::remove_file(&dest);
        let args = fetch(0);
        times.push(walg_ok(&settings, &strs(&args), dest_dir.path()).expect("wal-fetch"));
    }
    tally.typical = median(times);

    while want_more(&tally, want) {
        let _ = fs::remove_file(&dest);
        let i = rng.below(names.len());
        let args = fetch(i);
        let temps_before = temp_files(dest_dir.path()).len();
        let ended = killed_run(
            &mut tally,
            &mut rng,
            &settings,
            &strs(&args),
            dest_dir.path(),
        );
        if matches!(ended, Ended::Killed) && temp_files(dest_dir.path()).len() > temps_before {
            tally.midway += 1;
        }
        // After the kill: nothing at %p, or the whole segment.
        if let Ok(got) = fs::read(&dest)
            && got != segments[i]
        {
            tally.violation(format!(
                "a killed wal-fetch of {} left {} bytes at %p that are not the segment",
                names[i],
                got.len()
            ));
        }
        // The next run (after PostgreSQL removed what was there) succeeds.
        let _ = fs::remove_file(&dest);
        match walg_ok(&settings, &strs(&args), dest_dir.path()) {
            Ok(took) => tally.max_run = tally.max_run.max(took),
            Err(e) => tally.violation(format!("the run after a kill failed: {e}")),
        }
        if fs::read(&dest).ok().as_ref() != Some(&segments[i]) {
            tally.violation(format!("the run after a kill did not restore {}", names[i]));
        }
    }
    enough_kills(&mut tally, want);
    let _ = fs::remove_file(&dest);
    delete_garbage(&mut tally, &settings, dest_dir.path());
    no_temps_left(&mut tally, &[dest_dir.path(), storage.path()]);
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// backup-push and backup-fetch
// ---------------------------------------------------------------------------------------------

/// Sets the modification time of in-progress markers of killed backups 10 minutes back:
/// delete refuses to run while a marker is fresh (5 minutes), which is how long a
/// killed backup-push holds off `delete garbage`.
fn age_in_progress_markers(storage: &Path) {
    for rel in files_under(&storage.join("basebackups_005")) {
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("walg_backup_in_progress") && name.ends_with(".json") {
            let path = storage.join("basebackups_005").join(rel);
            let ok = Command::new("touch")
                .args(["-m", "-d", "10 minutes ago"])
                .arg(&path)
                .status()
                .expect("touch");
            assert!(ok.success());
        }
    }
}

/// Backup folders without a sentinel (left by killed or running backup-pushes).
fn unfinished_backups(storage: &Path) -> usize {
    let base = storage.join("basebackups_005");
    fs::read_dir(&base)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    !base
                        .join(format!("{name}_backup_stop_sentinel.json"))
                        .exists()
                })
                .count()
        })
        .unwrap_or(0)
}

/// A real restore of `name` into a new folder under `root`; what it wrote, or the failure.
fn restore(
    settings: &[(String, String)],
    root: &Path,
    name: &str,
) -> Result<std::collections::BTreeMap<PathBuf, u64>, String> {
    let dest = root.join(format!("restore-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dest);
    let dest_str = dest.display().to_string();
    let result = walg_ok(settings, &["backup-fetch", &dest_str, name], root).and_then(|_| {
        if dest.join("global/pg_control").is_file() {
            Ok(tree_sizes(&dest))
        } else {
            Err(format!("no global/pg_control after restoring {name}"))
        }
    });
    let _ = fs::remove_dir_all(&dest);
    result
}

fn backup_names(settings: &[(String, String)], cwd: &Path) -> Vec<String> {
    let out = walg_cmd(settings, &["backup-list", "--json"], cwd)
        .output()
        .expect("backup-list");
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| b["backup_name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A cluster archiving into a local folder, with pgbench data; walg settings reaching both,
/// with small tar parts so that a backup has several.
fn backup_setup() -> (tempfile::TempDir, Cluster, Vec<(String, String)>) {
    let storage = pg_tempdir("walgcrashbk");
    let mut settings = local_settings(storage.path());
    let mut pg = Cluster::init(ClusterOptions::archiving(walg_command(
        &env_of(&settings),
        "wal-push %p",
    )));
    pg.start();
    pg.pgbench_init(1);
    pg.psql("create table t(id int, note text)");
    settings.extend(pg.client_env());
    settings.push(("WALG_TAR_SIZE_THRESHOLD".into(), "4194304".into()));
    (storage, pg, settings)
}

#[test]
fn backup_push_killed_leaves_only_complete_backups() {
    let seed = seed();
    let want = runs();
    let (storage, mut pg, settings) = backup_setup();
    let work = pg_tempdir("walgcrashbkwork");
    let cwd = work.path();
    let data = pg.data_dir().display().to_string();
    let push = ["backup-push", data.as_str()];

    // step: backup-push, typical time from one uncrashed run.
    let mut rng = Rng::new(seed, "backup-push");
    let mut tally = Tally::new("backup-push", seed);
    tally.typical = walg_ok(&settings, &push, cwd).expect("first backup-push");
    while want_more(&tally, want) {
        pg.psql("insert into t select g, md5(g::text) from generate_series(1, 2000) g");
        let unfinished = unfinished_backups(storage.path());
        let ended = killed_run(&mut tally, &mut rng, &settings, &push, cwd);
        if matches!(ended, Ended::Killed) && unfinished_backups(storage.path()) > unfinished {
            tally.midway += 1;
        }
        for problem in incomplete_backups(storage.path(), true) {
            tally.violation(format!("after a kill: {problem}"));
        }
        match walg_ok(&settings, &push, cwd) {
            Ok(took) => tally.max_run = tally.max_run.max(took),
            Err(e) => tally.violation(format!("the run after a kill failed: {e}")),
        }
        if tally.runs.is_multiple_of(FETCH_EVERY)
            && let Err(e) = restore(&settings, cwd, "LATEST")
        {
            tally.violation(format!("restore of the latest backup: {e}"));
        }
    }
    enough_kills(&mut tally, want);
    age_in_progress_markers(storage.path());
    delete_garbage(&mut tally, &settings, cwd);
    for problem in incomplete_backups(storage.path(), true) {
        tally.violation(format!("after delete garbage: {problem}"));
    }
    no_temps_left(&mut tally, &[storage.path(), &pg.data_dir().join("pg_wal")]);
    pg.stop();
    tally.finish();
}

#[test]
fn backup_fetch_killed_never_leaves_pg_control_in_an_incomplete_restore() {
    let seed = seed();
    let want = runs();
    let (_storage, mut pg, settings) = backup_setup();
    let work = pg_tempdir("walgcrashbfwork");
    let cwd = work.path();
    let data = pg.data_dir().display().to_string();
    walg_ok(&settings, &["backup-push", &data], cwd).expect("backup-push");
    pg.stop();

    // step: a reference restore gives the complete tree, uncrashed runs the typical time.
    let mut rng = Rng::new(seed, "backup-fetch");
    let mut tally = Tally::new("backup-fetch", seed);
    let name = backup_names(&settings, cwd)
        .pop()
        .expect("a backup to restore");
    let dest = cwd.join("target");
    let dest_str = dest.display().to_string();
    let fetch = ["backup-fetch", dest_str.as_str(), name.as_str()];
    let reference = restore(&settings, cwd, &name).expect("reference restore");
    let mut times = Vec::new();
    for _ in 0..2 {
        let _ = fs::remove_dir_all(&dest);
        times.push(walg_ok(&settings, &fetch, cwd).expect("backup-fetch"));
    }
    tally.typical = median(times);
    while want_more(&tally, want) {
        let _ = fs::remove_dir_all(&dest);
        let ended = killed_run(&mut tally, &mut rng, &settings, &fetch, cwd);
        if matches!(ended, Ended::Killed) && !files_under(&dest).is_empty() {
            tally.midway += 1;
        }
        if dest.join("global/pg_control").exists() && tree_sizes(&dest) != reference {
            tally
                .violation("a killed backup-fetch left global/pg_control in an incomplete restore");
        }
        // The next run: backup-fetch refuses a non-empty target, so the partial one goes first.
        let _ = fs::remove_dir_all(&dest);
        match walg_ok(&settings, &fetch, cwd) {
            Ok(took) => tally.max_run = tally.max_run.max(took),
            Err(e) => tally.violation(format!("the run after a kill failed: {e}")),
        }
        if tree_sizes(&dest) != reference {
            tally.violation("the run after a kill restored something else than the backup");
        }
        for left in temp_files(&dest) {
            tally.violation(format!(
                "temp file in the restored target: {}",
                left.display()
            ));
        }
    }
    enough_kills(&mut tally, want);
    let _ = fs::remove_dir_all(&dest);
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// delete --confirm
// ---------------------------------------------------------------------------------------------

/// The files of a storage folder that are not temp files (those are checked at the end).
fn objects(storage: &Path) -> Vec<PathBuf> {
    let temps = temp_files(storage);
    files_under(storage)
        .into_iter()
        .filter(|p| !temps.contains(p))
        .collect()
}

#[test]
fn delete_confirm_killed_never_leaves_a_listed_backup_incomplete() {
    let seed = seed();
    let want = runs();
    let mut rng = Rng::new(seed, "delete");
    let mut tally = Tally::new("delete retain 2 --confirm", seed);
    let root = pg_tempdir("walgcrashdel");
    let storage = root.path().join("store");
    fs::create_dir(&storage).expect("mkdir store");
    hand_to_pg_user(&storage);
    let mut settings = local_settings(&storage);
    let mut pg = Cluster::init(ClusterOptions::archiving(walg_command(
        &env_of(&settings),
        "wal-push %p",
    )));
    pg.start();
    pg.psql("create table t(id int, note text)");
    settings.extend(pg.client_env());
    let cwd = root.path();
    let data = pg.data_dir().display().to_string();

    // step: four backups with WAL between them; the storage is kept as a snapshot.
    for _ in 0..4 {
        make_segments(&pg, 2);
        walg_ok(&settings, &["backup-push", &data], cwd).expect("backup-push");
    }
    let last = make_segments(&pg, 1);
    pg.wait_archived_through(&last, ARCHIVE_TIMEOUT);
    pg.stop();
    let snapshot = root.path().join("snapshot");
    copy_tree(&storage, &snapshot);
    let reset = || {
        fs::remove_dir_all(&storage).expect("remove the store");
        copy_tree(&snapshot, &storage);
    };
    let delete = ["delete", "retain", "2", "--confirm"];
    let original = objects(&storage);

    // step: typical time and the end state of an uncrashed delete.
    let mut times = Vec::new();
    for _ in 0..3 {
        reset();
        times.push(walg_ok(&settings, &delete, cwd).expect("delete"));
    }
    tally.typical = median(times);
    let expected = objects(&storage);
    let kept = backup_names(&settings, cwd);
    assert_eq!(kept.len(), 2, "{kept:?}");

    while want_more(&tally, want) {
        reset();
        let ended = killed_run(&mut tally, &mut rng, &settings, &delete, cwd);
        let state = objects(&storage);
        if matches!(ended, Ended::Killed) && state != expected && state != original {
            tally.midway += 1;
        }
        for problem in incomplete_backups(&storage, true) {
            tally.violation(format!("after a kill: {problem}"));
        }
        if tally.runs.is_multiple_of(FETCH_EVERY)
            && let Some(oldest) = backup_names(&settings, cwd).first()
            && let Err(e) = restore(&settings, cwd, oldest)
        {
            tally.violation(format!("restore of {oldest} after a kill: {e}"));
        }
        match walg_ok(&settings, &delete, cwd) {
            Ok(took) => tally.max_run = tally.max_run.max(took),
            Err(e) => tally.violation(format!("the run after a kill failed: {e}")),
        }
        let now = objects(&storage);
        if now != expected {
            let extra: Vec<_> = now.iter().filter(|p| !expected.contains(p)).collect();
            let missing: Vec<_> = expected.iter().filter(|p| !now.contains(p)).collect();
            tally.violation(format!(
                "the run after a kill ended elsewhere: extra {extra:?}, missing {missing:?}"
            ));
        }
    }
    enough_kills(&mut tally, want);
    delete_garbage(&mut tally, &settings, cwd);
    no_temps_left(&mut tally, &[&storage]);
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// The checks themselves
// ---------------------------------------------------------------------------------------------

#[test]
fn the_backup_check_flags_a_sentinel_whose_part_or_wal_is_missing() {
    let root = tempfile::tempdir().expect("temp dir");
    let name = "base_000000010000000000000002";
    let base = root.path().join("basebackups_005");
    let parts = base.join(name).join("tar_partitions");
    fs::create_dir_all(&parts).expect("mkdir");
    fs::create_dir_all(root.path().join("wal_005")).expect("mkdir");
    let segment = 16u64 * 1024 * 1024;
    fs::write(
        base.join(format!("{name}_backup_stop_sentinel.json")),
        format!(
            r#"{{"LSN":{},"FinishLSN":{}}}"#,
            2 * segment + 40,
            3 * segment + 100
        ),
    )
    .expect("sentinel");
    fs::write(base.join(name).join("metadata.json"), "{}").expect("metadata");
    fs::write(
        base.join(name).join("files_metadata.json"),
        r#"{"TarFileSets":{"part_001.tar.lz4":["/PG_VERSION"]}}"#,
    )
    .expect("files metadata");
    for part in ["pg_control.tar.lz4", "backup_label.tar.lz4"] {
        fs::write(parts.join(part), "x").expect("part");
    }
    let problems = incomplete_backups(root.path(), false);
    assert!(
        problems.len() == 1 && problems[0].contains("part_001.tar.lz4 is missing"),
        "{problems:?}"
    );

    fs::write(parts.join("part_001.tar.lz4"), "x").expect("part");
    assert!(incomplete_backups(root.path(), false).is_empty());
    let problems = incomplete_backups(root.path(), true);
    assert!(
        problems.len() == 1 && problems[0].contains("000000010000000000000002 "),
        "{problems:?}"
    );

    fs::write(
        root.path().join("wal_005/000000010000000000000002.lz4"),
        "x",
    )
    .expect("wal");
    let problems = incomplete_backups(root.path(), true);
    assert!(
        problems.len() == 1 && problems[0].contains("000000010000000000000003 "),
        "{problems:?}"
    );
    fs::write(
        root.path().join("wal_005/000000010000000000000003.lz4"),
        "x",
    )
    .expect("wal");
    assert!(incomplete_backups(root.path(), true).is_empty());
}
