//! The kill -9 harness of the `crash` tests: a seeded random source, running a command and
//! killing it (its whole process group) with SIGKILL after a delay, tallies per command, and the
//! checks made after a kill (temp files left behind, complete backups behind every sentinel).
//!
//! Settings (environment of the test process):
//! * `WALG_CRASH_SEED`: the seed (decimal u64). Unset: one is drawn from the clock. Every
//!   failure message names it, so a failing run reproduces with the same kill delays.
//! * `WALG_CRASH_RUNS`: kills per command (default 20); raise it for a soak.

// The harness reads its knobs from the environment, as the test fixtures do.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::print_stderr,
    reason = "each command's tally (runs, kills, violations, hangs, times) is the harness's report"
)]

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use walg::storage::fs::is_temp_name;

/// Kills per command when `WALG_CRASH_RUNS` is unset.
pub const DEFAULT_RUNS: usize = 20;

/// The seed for this test process (`WALG_CRASH_SEED`, or from the clock).
pub fn seed() -> u64 {
    match std::env::var("WALG_CRASH_SEED") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WALG_CRASH_SEED={v:?} is not a decimal u64")),
        _ => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// Kills wanted per command (`WALG_CRASH_RUNS`, default 20).
pub fn runs() -> usize {
    match std::env::var("WALG_CRASH_RUNS") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WALG_CRASH_RUNS={v:?} is not a number")),
        _ => DEFAULT_RUNS,
    }
}

/// splitmix64: small, seeded, good enough to spread kill points.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A stream for one command group: the same seed and `stream` give the same numbers.
    pub fn new(seed: u64, stream: &str) -> Rng {
        let mut state = seed;
        for b in stream.bytes() {
            state = (state ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max]`.
    pub fn delay(&mut self, max: Duration) -> Duration {
        let micros = max.as_micros() as u64;
        Duration::from_micros(self.next_u64() % (micros + 1))
    }

    /// Uniform in `[0, n)`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// How a run under the harness ended.
#[derive(Debug)]
pub enum Ended {
    /// Killed with SIGKILL before it exited.
    Killed,
    /// Exited on its own before the kill.
    Exited { status: ExitStatus, stderr: String },
    /// Still running at the deadline (then killed).
    Hung,
}

/// Runs `cmd` in a process group of its own and kills the group with SIGKILL after `delay`
/// unless it exited first. A run still going at `deadline` (without a delay) is a hang.
pub fn run_and_kill(mut cmd: Command, delay: Option<Duration>, deadline: Duration) -> Ended {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let description = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {description}: {e}"));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut buf);
        buf
    });
    let start = Instant::now();
    let kill_at = delay.map(|d| start + d);
    let hang_at = start + deadline;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            let stderr = reader.join().unwrap_or_default();
            return Ended::Exited { status, stderr };
        }
        let now = Instant::now();
        let due = kill_at.is_some_and(|t| now >= t);
        if due || now >= hang_at {
            kill_group(child.id());
            let _ = child.wait();
            // The group's other members (e.g. runuser's child) hold the pipe: wait them out.
            let _ = reader.join();
            return if due { Ended::Killed } else { Ended::Hung };
        }
        let left = kill_at.unwrap_or(hang_at).min(hang_at) - now;
        std::thread::sleep(left.min(Duration::from_micros(500)));
    }
}

/// SIGKILL to every process of group `pgid`.
pub fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The tally for one command, printed at the end of its test and quoted on failure.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub command: String,
    pub seed: u64,
    pub typical: Duration,
    pub runs: usize,
    pub kills: usize,
    /// Kills that left visible work behind (a temp file, a folder without a sentinel, a
    /// half-done delete): evidence that kills land in the middle of the writing.
    pub midway: usize,
    pub hangs: usize,
    pub max_run: Duration,
    pub violations: Vec<String>,
}

impl Tally {
    pub fn new(command: &str, seed: u64) -> Tally {
        Tally {
            command: command.to_string(),
            seed,
            ..Tally::default()
        }
    }

    /// Records a run that took `took`.
    pub fn ran(&mut self, took: Duration) {
        self.runs += 1;
        self.max_run = self.max_run.max(took);
    }

    /// Records that a run meant to be killed finished first, after `took`: the machine got
    /// faster than when the typical time was measured, so the kill window narrows to it.
    pub fn outran(&mut self, took: Duration) {
        self.typical = self.typical.min(took);
    }

    pub fn violation(&mut self, what: impl Into<String>) {
        self.violations.push(what.into());
    }

    /// Prints the tally and fails the test on any violation or hang.
    pub fn finish(&self) {
        Tally::finish_all(&[self]);
    }

    /// Prints every tally, then fails the test on any violation or hang in any of them.
    pub fn finish_all(tallies: &[&Tally]) {
        let mut failures = String::new();
        for tally in tallies {
            eprintln!("{tally}");
            if !tally.violations.is_empty() || tally.hangs > 0 {
                failures.push_str(&format!(
                    "{tally}\nviolations:\n  {}\nreproduce with WALG_CRASH_SEED={}\n",
                    tally.violations.join("\n  "),
                    tally.seed
                ));
            }
        }
        assert!(failures.is_empty(), "{failures}");
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash {}: seed {}, typical run {:?}, runs {}, kills {} ({} mid-write), violations {}, \
             hangs {}, max time per run {:?}",
            self.command,
            self.seed,
            self.typical,
            self.runs,
            self.kills,
            self.midway,
            self.violations.len(),
            self.hangs,
            self.max_run
        )
    }
}

/// Every file under `dir` (recursively), as paths relative to `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Files under `dir` named like a walg/WAL-G temp file (`<name>.tmp.<UTC stamp>-<16 hex>`).
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_temp_name)
        })
        .collect()
}

/// What is wrong with the backups of a storage folder (the local folder, or the folder s3s-fs
/// keeps a prefix in): for every sentinel, its documents must parse and every part its file
/// list names must be there, with `pg_control` and `backup_label`; the WAL from its start to
/// its stop segment must be stored when `wal_needed` is set.
pub fn incomplete_backups(root: &Path, wal_needed: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let base = root.join("basebackups_005");
    let Ok(entries) = fs::read_dir(&base) else {
        return problems;
    };
    let mut sentinels: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with("_backup_stop_sentinel.json"))
        .collect();
    sentinels.sort();
    for sentinel in sentinels {
        let name = sentinel.trim_end_matches("_backup_stop_sentinel.json");
        if let Err(e) = check_backup(root, name, wal_needed) {
            problems.push(format!("backup {name} has a sentinel but {e}"));
        }
    }
    problems
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let bytes = fs::read(path).map_err(|e| format!("{} is unreadable: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

fn check_backup(root: &Path, name: &str, wal_needed: bool) -> Result<(), String> {
    let base = root.join("basebackups_005");
    let sentinel = read_json(&base.join(format!("{name}_backup_stop_sentinel.json")))?;
    let folder = base.join(name);
    read_json(&folder.join("metadata.json"))?;
    let files = read_json(&folder.join("files_metadata.json"))?;
    let parts = folder.join("tar_partitions");
    let stored: Vec<String> = fs::read_dir(&parts)
        .map_err(|e| format!("its parts cannot be listed: {e}"))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let mut wanted: Vec<String> = files["TarFileSets"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    wanted.push("pg_control.tar.lz4".to_string());
    wanted.push("backup_label.tar.lz4".to_string());
    for part in &wanted {
        let Some(len) = stored
            .iter()
            .find(|s| *s == part)
            .and_then(|s| fs::metadata(parts.join(s)).ok())
            .map(|m| m.len())
        else {
            return Err(format!("its part {part} is missing (stored: {stored:?})"));
        };
        if len == 0 {
            return Err(format!("its part {part} is empty"));
        }
    }
    if wal_needed {
        let segment_of = |lsn: u64| -> String {
            let timeline = name.get(5..13).unwrap_or("00000001");
            let seg = lsn.saturating_sub(1) / (16 * 1024 * 1024);
            format!("{timeline}{:08X}{:08X}", seg >> 8, seg & 0xff)
        };
        let start = sentinel["LSN"].as_u64().ok_or("its LSN is missing")?;
        let finish = sentinel["FinishLSN"]
            .as_u64()
            .ok_or("its FinishLSN is missing")?;
        let (first, last) = (segment_of(start + 1), segment_of(finish));
        let wal = root.join("wal_005");
        let mut seg = first.clone();
        loop {
            if !wal.join(format!("{seg}.lz4")).is_file() {
                return Err(format!(
                    "WAL segment {seg} of its range {first}..{last} is missing"
                ));
            }
            if seg >= last {
                break;
            }
            seg = next_segment(&seg);
        }
    }
    Ok(())
}

/// The segment after `name` (16 MiB segments).
pub fn next_segment(name: &str) -> String {
    let log = u64::from_str_radix(&name[8..16], 16).unwrap_or(0);
    let seg = u64::from_str_radix(&name[16..24], 16).unwrap_or(0);
    let n = log * 256 + seg + 1;
    format!("{}{:08X}{:08X}", &name[..8], n >> 8, n & 0xff)
}

/// Relative path → size of every file under `dir`: what a restore wrote.
pub fn tree_sizes(dir: &Path) -> BTreeMap<PathBuf, u64> {
    files_under(dir)
        .into_iter()
        .filter_map(|rel| {
            let len = fs::symlink_metadata(dir.join(&rel)).ok()?.len();
            Some((rel, len))
        })
        .collect()
}

/// A copy of `from` at `to` (which must not exist), with owners and modes: `cp -a`.
pub fn copy_tree(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .expect("run cp -a");
    assert!(
        out.status.success(),
        "cp -a {} {}: {}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
