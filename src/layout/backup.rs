//! Base backups in storage: the keys of every object under `basebackups_005/`, built from a
//! checked [`BackupName`] without failing, and the standard backup names
//! (`base_<segment>[_D_<segment>]`, [`StandardName`]) and how WAL-G derives them. Pure: no I/O.
//!
//! WAL-G compat: utility/utility.go (`SentinelSuffix`, `StripWalFileName`,
//! `stripBackupSuffix`), internal/databases/postgres/backup.go (name pattern),
//! backup_push_handler.go (names of full and delta backups), tar part naming in
//! internal/tar_ball.go.

use std::fmt;

use super::BASEBACKUPS_FOLDER;
pub use super::name::{BackupName, RunId};
use crate::compression::Decoder;
use crate::pg::wal::Segment;
use crate::storage::Key;

/// Suffix of a stop sentinel: `<name>_backup_stop_sentinel.json`.
pub const SENTINEL_SUFFIX: &str = "_backup_stop_sentinel.json";
/// `<name>/metadata.json`.
pub const METADATA_FILE: &str = "metadata.json";
/// `<name>/files_metadata.json`.
pub const FILES_METADATA_FILE: &str = "files_metadata.json";
/// `<name>/tar_partitions/`.
pub const TAR_PARTITIONS_FOLDER: &str = "tar_partitions";
/// Shown as the WAL file name of a backup whose name holds no segment name.
pub const NO_WAL_FILE_NAME: &str = "ZZZZZZZZZZZZZZZZZZZZZZZZ";

/// `<file name>[.<ext>]`: no dot when `ext` is empty (current WAL-G).
fn with_ext(stem: &str, ext: &str) -> String {
    if ext.is_empty() {
        stem.to_string()
    } else {
        format!("{stem}.{ext}")
    }
}

/// `basebackups_005/<name>_backup_stop_sentinel.json`.
pub fn sentinel_key(name: &BackupName) -> Key {
    Key::from_valid(format!("{BASEBACKUPS_FOLDER}/{name}{SENTINEL_SUFFIX}"))
}

/// `basebackups_005/<name>`: the folder of the backup's other objects.
pub fn backup_folder(name: &BackupName) -> Key {
    Key::from_valid(format!("{BASEBACKUPS_FOLDER}/{name}"))
}

/// `basebackups_005/<name>/<file>` for one of the constant file names of this module.
fn in_folder(name: &BackupName, file: &str) -> Key {
    Key::from_valid(format!("{BASEBACKUPS_FOLDER}/{name}/{file}"))
}

/// `basebackups_005/<name>/metadata.json`.
pub fn metadata_key(name: &BackupName) -> Key {
    in_folder(name, METADATA_FILE)
}

/// `basebackups_005/<name>/files_metadata.json`.
pub fn files_metadata_key(name: &BackupName) -> Key {
    in_folder(name, FILES_METADATA_FILE)
}

/// `basebackups_005/<name>/walg_backup_in_progress_<run>.json`: the marker of one running
/// `backup-push` (`run` is its run id), written before any part and kept fresh until the
/// sentinel exists (walg's own object; WAL-G ignores it). `delete` uses it to tell an
/// incomplete backup that is still being written from garbage; `backup-push` uses it to see
/// another run that took the same name.
pub fn in_progress_marker_key(name: &BackupName, run: &RunId) -> Key {
    in_folder(name, &in_progress_marker_file_name(run.as_str()))
}

/// `walg_backup_in_progress_<run>.json`.
pub(super) fn in_progress_marker_file_name(run: &str) -> String {
    format!("{IN_PROGRESS_MARKER_PREFIX}{run}{IN_PROGRESS_MARKER_SUFFIX}")
}

/// True when `file_name` is an in-progress marker: `walg_backup_in_progress_<run>.json`, or
/// `walg_backup_in_progress.json` as earlier versions of walg wrote it.
pub fn is_in_progress_marker(file_name: &str) -> bool {
    file_name == LEGACY_IN_PROGRESS_MARKER
        || file_name
            .strip_prefix(IN_PROGRESS_MARKER_PREFIX)
            .and_then(|rest| rest.strip_suffix(IN_PROGRESS_MARKER_SUFFIX))
            .is_some_and(|run| !run.is_empty())
}

const IN_PROGRESS_MARKER_PREFIX: &str = "walg_backup_in_progress_";
const IN_PROGRESS_MARKER_SUFFIX: &str = ".json";
/// The single marker name of earlier versions (one per backup name, not per run).
const LEGACY_IN_PROGRESS_MARKER: &str = "walg_backup_in_progress.json";

/// `basebackups_005/<name>/tar_partitions`.
pub fn tar_partitions_folder(name: &BackupName) -> Key {
    in_folder(name, TAR_PARTITIONS_FOLDER)
}

/// `basebackups_005/<name>/tar_partitions/<file>` for a file name of this module.
fn in_tar_partitions(name: &BackupName, file: &str) -> Key {
    in_folder(name, &format!("{TAR_PARTITIONS_FOLDER}/{file}"))
}

/// `part_NNN.tar[.<ext>]`: the file name of data tar `number`, zero-padded to at least three
/// digits (`part_001.tar.lz4`, `part_1000.tar.lz4`). Also the key of `TarFileSets`.
pub fn tar_part_file_name(number: u32, ext: &str) -> String {
    with_ext(&format!("part_{number:03}.tar"), ext)
}

/// `pg_control.tar[.<ext>]`.
pub fn pg_control_tar_file_name(ext: &str) -> String {
    with_ext("pg_control.tar", ext)
}

/// `backup_label.tar[.<ext>]`.
pub fn backup_label_tar_file_name(ext: &str) -> String {
    with_ext("backup_label.tar", ext)
}

/// `basebackups_005/<name>/tar_partitions/part_NNN.tar[.<ext>]`, `<ext>` the extension of
/// `decoder`'s format (none for uncompressed parts).
pub fn tar_part_key(name: &BackupName, number: u32, decoder: Decoder) -> Key {
    in_tar_partitions(name, &tar_part_file_name(number, decoder.extension()))
}

/// `basebackups_005/<name>/tar_partitions/pg_control.tar[.<ext>]`.
pub fn pg_control_tar_key(name: &BackupName, decoder: Decoder) -> Key {
    in_tar_partitions(name, &pg_control_tar_file_name(decoder.extension()))
}

/// `basebackups_005/<name>/tar_partitions/backup_label.tar[.<ext>]`.
pub fn backup_label_tar_key(name: &BackupName, decoder: Decoder) -> Key {
    in_tar_partitions(name, &backup_label_tar_file_name(decoder.extension()))
}

/// The name of a full backup starting at `start_lsn` on `timeline` (see [`StandardName::full`]):
/// `base_` + the segment holding byte `start_lsn - 1`.
pub fn backup_name(timeline: u32, start_lsn: u64, segment_size: u64) -> Option<StandardName> {
    StandardName::full(timeline, start_lsn, segment_size)
}

/// The backup name of a sentinel file name (`<name>_backup_stop_sentinel.json`): the text
/// before the first `_backup`, as WAL-G cuts it. `None` if it is not a sentinel file name.
pub fn backup_name_of_sentinel(file_name: &str) -> Option<&str> {
    if !file_name.ends_with(SENTINEL_SUFFIX) || file_name.contains('/') {
        return None;
    }
    file_name.split("_backup").next()
}

/// The backup name of a sentinel key: `Some` only for a direct child of `basebackups_005/`
/// whose name ends in `_backup_stop_sentinel.json`.
pub fn backup_name_of_sentinel_key(key: &Key) -> Option<&str> {
    let rest = key
        .as_str()
        .strip_prefix(BASEBACKUPS_FOLDER)?
        .strip_prefix('/')?;
    backup_name_of_sentinel(rest)
}

/// The first run of 24 upper-case hex digits in `text` (a backup or sentinel name): the WAL
/// file name `backup-list` shows. [`NO_WAL_FILE_NAME`] when there is none.
pub fn wal_file_name(text: &str) -> &str {
    find_hex24(text.as_bytes(), 0)
        .and_then(|at| text.get(at..at + 24))
        .unwrap_or(NO_WAL_FILE_NAME)
}

fn is_upper_hex(c: u8) -> bool {
    c.is_ascii_digit() || (b'A'..=b'F').contains(&c)
}

fn is_hex_run(bytes: &[u8], at: usize, len: usize) -> bool {
    bytes
        .get(at..at + len)
        .is_some_and(|run| run.iter().all(|c| is_upper_hex(*c)))
}

/// Position of the first 24 consecutive upper-case hex digits at or after `from`.
fn find_hex24(bytes: &[u8], from: usize) -> Option<usize> {
    let mut run = 0;
    for (i, c) in bytes.iter().enumerate().skip(from) {
        if is_upper_hex(*c) {
            run += 1;
            if run == 24 {
                return Some(i + 1 - 24);
            }
        } else {
            run = 0;
        }
    }
    None
}

/// Length of a backup name starting at `at` (`base_` + 24 hex, then greedily `_D_` + 24 hex and
/// `_` + 8 hex), as WAL-G's pattern
/// `base_[0-9A-F]{24}(_D_[0-9A-F]{24})?(_[0-9A-F]{8})?` matches there.
fn match_at(bytes: &[u8], at: usize) -> Option<usize> {
    if !bytes[at..].starts_with(b"base_") || !is_hex_run(bytes, at + 5, 24) {
        return None;
    }
    let mut end = at + 5 + 24;
    if bytes[end..].starts_with(b"_D_") && is_hex_run(bytes, end + 3, 24) {
        end += 3 + 24;
    }
    if bytes[end..].starts_with(b"_") && is_hex_run(bytes, end + 1, 8) {
        end += 1 + 8;
    }
    Some(end - at)
}

/// A backup name of WAL-G's PostgreSQL form: `base_<24 hex>`, optionally `_D_<24 hex>` (a
/// delta, with its parent's start segment) and `_<8 hex>` (WAL-E's offset suffix).
///
/// Backups in storage may have any [`BackupName`] (`backup-list` shows whatever sentinels
/// exist); this type is for names WAL-G itself would create or recognise.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StandardName(String);

impl StandardName {
    /// `Some` when all of `text` is a backup name.
    pub fn parse(text: &str) -> Option<StandardName> {
        (match_at(text.as_bytes(), 0)? == text.len()).then(|| StandardName(text.to_string()))
    }

    /// The leftmost backup name inside `text` (an object key, say), as Go's `FindString`
    /// finds it.
    pub fn find_in(text: &str) -> Option<StandardName> {
        let bytes = text.as_bytes();
        (0..bytes.len()).find_map(|at| {
            match_at(bytes, at).and_then(|len| text.get(at..at + len).and_then(StandardName::parse))
        })
    }

    /// The name of a full backup starting at `start_lsn` on `timeline`: `base_` + the segment
    /// holding byte `start_lsn - 1` (`pg_walfile_name_offset(start_lsn)` on a primary, and
    /// the formula WAL-G uses on a standby). `None` for a segment size that is not a power of
    /// two up to 4 GiB.
    pub fn full(timeline: u32, start_lsn: u64, segment_size: u64) -> Option<StandardName> {
        Self::of_segment(timeline, start_lsn.saturating_sub(1), segment_size)
    }

    /// The name of a backup taken over the replication protocol (`BASE_BACKUP`): the segment
    /// holding byte `start_lsn` itself (no `- 1`).
    pub fn remote(timeline: u32, start_lsn: u64, segment_size: u64) -> Option<StandardName> {
        Self::of_segment(timeline, start_lsn, segment_size)
    }

    fn of_segment(timeline: u32, byte: u64, segment_size: u64) -> Option<StandardName> {
        if segment_size == 0 || !segment_size.is_power_of_two() || segment_size > 1 << 32 {
            return None;
        }
        let segment = Segment {
            timeline,
            number: byte / segment_size,
            size: segment_size,
        };
        Some(StandardName(format!("base_{}", segment.name())))
    }

    /// The name of a delta of `parent` whose own full-style name is `self`:
    /// `<self>_D_<first 24-hex run of parent>`. `None` when `self` is already a delta or the
    /// parent's name has no segment name (WAL-G would write `_D_ZZZ…`, which no longer
    /// matches its own pattern).
    pub fn delta_of(&self, parent: &str) -> Option<StandardName> {
        if self.is_delta() || self.wal_e_offset().is_some() {
            return None;
        }
        let base = wal_file_name(parent);
        if base == NO_WAL_FILE_NAME {
            return None;
        }
        StandardName::parse(&format!("{}_D_{base}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The start segment: the first 24-hex run, as `backup-list` shows it.
    pub fn wal_file_name(&self) -> &str {
        wal_file_name(&self.0)
    }

    /// The start segment parsed, with `segment_size`.
    pub fn start_segment(&self, segment_size: u64) -> Option<Segment> {
        Segment::parse(self.wal_file_name(), segment_size)
    }

    /// A delta backup (`_D_` in the name).
    pub fn is_delta(&self) -> bool {
        self.delta_base().is_some()
    }

    /// The parent's start segment of a delta (`_D_<this>`).
    pub fn delta_base(&self) -> Option<&str> {
        let rest = self.0.get(5 + 24..)?;
        rest.strip_prefix("_D_").and_then(|r| r.get(..24))
    }

    /// WAL-E's offset suffix (`_<8 hex>`), if present.
    pub fn wal_e_offset(&self) -> Option<&str> {
        let len = self.0.len();
        let has_offset = len == 5 + 24 + 9 || len == 5 + 24 + 3 + 24 + 9;
        if has_offset {
            self.0.get(len - 8..)
        } else {
            None
        }
    }
}

impl fmt::Display for StandardName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StandardName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "base_000000010000000000000004";

    fn name() -> BackupName {
        BackupName::parse(NAME).unwrap()
    }

    #[test]
    fn each_run_has_its_own_in_progress_marker() {
        let key = in_progress_marker_key(&name(), &RunId::parse("3f2a-1").unwrap());
        assert_eq!(
            key.as_str(),
            "basebackups_005/base_000000010000000000000004/walg_backup_in_progress_3f2a-1.json"
        );
        assert!(is_in_progress_marker(key.file_name()));
        assert!(is_in_progress_marker("walg_backup_in_progress.json"));
        assert!(!is_in_progress_marker("walg_backup_in_progress_.json"));
        assert!(!is_in_progress_marker("metadata.json"));
        let numbered = in_progress_marker_key(&name(), &RunId::from_number(u64::MAX));
        assert_eq!(
            numbered.file_name(),
            "walg_backup_in_progress_ffffffffffffffff.json"
        );
    }

    #[test]
    fn keys_of_a_backup() {
        let name = name();
        assert_eq!(
            sentinel_key(&name).as_str(),
            "basebackups_005/base_000000010000000000000004_backup_stop_sentinel.json"
        );
        assert_eq!(
            backup_folder(&name).as_str(),
            "basebackups_005/base_000000010000000000000004"
        );
        assert_eq!(
            metadata_key(&name).as_str(),
            "basebackups_005/base_000000010000000000000004/metadata.json"
        );
        assert_eq!(
            files_metadata_key(&name).as_str(),
            "basebackups_005/base_000000010000000000000004/files_metadata.json"
        );
        assert_eq!(
            tar_partitions_folder(&name).as_str(),
            "basebackups_005/base_000000010000000000000004/tar_partitions"
        );
        assert_eq!(
            tar_part_key(&name, 1, Decoder::Lz4).as_str(),
            "basebackups_005/base_000000010000000000000004/tar_partitions/part_001.tar.lz4"
        );
        assert_eq!(
            tar_part_key(&name, 2, Decoder::None).as_str(),
            "basebackups_005/base_000000010000000000000004/tar_partitions/part_002.tar"
        );
        assert_eq!(tar_part_file_name(999, "zst"), "part_999.tar.zst");
        assert_eq!(tar_part_file_name(1000, "zst"), "part_1000.tar.zst");
        assert_eq!(tar_part_file_name(12345, "br"), "part_12345.tar.br");
        assert_eq!(
            pg_control_tar_key(&name, Decoder::Lz4).as_str(),
            "basebackups_005/base_000000010000000000000004/tar_partitions/pg_control.tar.lz4"
        );
        assert_eq!(
            pg_control_tar_key(&name, Decoder::None).as_str(),
            "basebackups_005/base_000000010000000000000004/tar_partitions/pg_control.tar"
        );
        assert_eq!(
            backup_label_tar_key(&name, Decoder::Zstd).as_str(),
            "basebackups_005/base_000000010000000000000004/tar_partitions/backup_label.tar.zst"
        );
    }

    #[test]
    fn every_key_of_an_odd_but_valid_name_is_a_valid_key() {
        for text in ["...", ".x", "my backup", "a\\b", "_backup", "ünï"] {
            let name = BackupName::parse(text).unwrap();
            let run = RunId::from_number(7);
            for key in [
                sentinel_key(&name),
                backup_folder(&name),
                metadata_key(&name),
                files_metadata_key(&name),
                in_progress_marker_key(&name, &run),
                tar_partitions_folder(&name),
                tar_part_key(&name, 3, Decoder::Brotli),
                pg_control_tar_key(&name, Decoder::None),
                backup_label_tar_key(&name, Decoder::Lzma),
            ] {
                assert_eq!(Key::new(key.as_str()).unwrap(), key, "{text:?}");
                assert!(key.as_str().starts_with("basebackups_005/"));
            }
        }
    }

    #[test]
    fn sentinel_names_back_to_backup_names() {
        let key = sentinel_key(&name());
        assert_eq!(backup_name_of_sentinel_key(&key), Some(NAME));
        assert_eq!(
            backup_name_of_sentinel("base_111_backup_stop_sentinel.json"),
            Some("base_111")
        );
        // Cut at the first "_backup", as WAL-G does.
        assert_eq!(
            backup_name_of_sentinel("my_backup_1_backup_stop_sentinel.json"),
            Some("my")
        );
        for other in [
            "basebackups_005/base_1/metadata.json",
            "basebackups_005/x/base_1_backup_stop_sentinel.json",
            "wal_005/base_1_backup_stop_sentinel.json",
            "basebackups_005",
        ] {
            assert_eq!(
                backup_name_of_sentinel_key(&Key::new(other).unwrap()),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn full_backup_names_follow_the_start_lsn() {
        // The spec's example: 306/60000028 on timeline 0x43.
        let lsn = (0x306u64 << 32) | 0x6000_0028;
        assert_eq!(lsn, 3_325_915_299_880);
        let name = backup_name(0x43, lsn, 16 << 20).unwrap();
        assert_eq!(name.as_str(), "base_000000430000030600000060");
        // The real backup list of WAL-G's exporter test data: start_lsn ↔ name.
        for (start_lsn, expected) in [
            (3_682_431_139_880u64, "base_000000430000035900000062"),
            (3_786_735_091_752, "base_0000004300000371000000AB"),
            (3_829_013_676_072, "base_000000430000037B00000083"),
            (3_869_815_875_000, "base_000000430000038500000003"),
            (3_885_821_329_448, "base_0000004300000388000000BD"),
        ] {
            assert_eq!(
                StandardName::full(0x43, start_lsn, 16 << 20)
                    .unwrap()
                    .as_str(),
                expected
            );
        }
        // Exactly on a segment boundary: the previous segment, unlike a remote backup.
        assert_eq!(
            StandardName::full(1, 0x0400_0000, 16 << 20)
                .unwrap()
                .as_str(),
            "base_000000010000000000000003"
        );
        assert_eq!(
            StandardName::remote(1, 0x0400_0000, 16 << 20)
                .unwrap()
                .as_str(),
            "base_000000010000000000000004"
        );
        assert_eq!(
            StandardName::full(1, 0x0400_0028, 16 << 20)
                .unwrap()
                .as_str(),
            "base_000000010000000000000004"
        );
        // 64 MiB segments: 64 per log id.
        assert_eq!(
            StandardName::full(2, (5u64 << 32) + 3 * (64 << 20) + 40, 64 << 20)
                .unwrap()
                .as_str(),
            "base_000000020000000500000003"
        );
        assert!(StandardName::full(1, 40, 0).is_none());
        assert!(StandardName::full(1, 40, 3 << 20).is_none());
    }

    #[test]
    fn names_match_walg_pattern() {
        for good in [
            "base_000000010000000100000046",
            "base_000000010000000100000046_D_000000010000000100000040",
            "base_000000010000000000000024_00000040",
            "base_000000010000000100000046_D_000000010000000100000040_00000040",
        ] {
            let name = StandardName::parse(good).unwrap();
            assert_eq!(name.as_str(), good);
            assert_eq!(name.to_string(), good);
        }
        for bad in [
            "base_111",
            "base_00000001000000010000004",
            "base_000000010000000100000046_",
            "base_000000010000000100000046x",
            "base_00000001000000010000004a",
            "xbase_000000010000000100000046",
            "base_000000010000000100000046_D_0000000100000001",
        ] {
            assert!(StandardName::parse(bad).is_none(), "{bad}");
        }
        let delta = StandardName::parse("base_0000004300000388000000AC_D_000000430000038500000003")
            .unwrap();
        assert!(delta.is_delta());
        assert_eq!(delta.wal_file_name(), "0000004300000388000000AC");
        assert_eq!(delta.delta_base(), Some("000000430000038500000003"));
        assert_eq!(delta.wal_e_offset(), None);
        let wale = StandardName::parse("base_000000010000000000000024_00000040").unwrap();
        assert!(!wale.is_delta());
        assert_eq!(wale.wal_e_offset(), Some("00000040"));
        assert_eq!(
            wale.start_segment(16 << 20).unwrap().name(),
            "000000010000000000000024"
        );
        let full = StandardName::parse("base_000000010000000100000046").unwrap();
        assert_eq!(full.delta_base(), None);
        assert_eq!(full.wal_e_offset(), None);
    }

    #[test]
    fn find_in_keys() {
        assert_eq!(
            StandardName::find_in(
                "basebackups_005/base_000000010000000100000046_D_000000010000000100000040/tar_partitions/part_001.tar.lz4"
            )
            .unwrap()
            .as_str(),
            "base_000000010000000100000046_D_000000010000000100000040"
        );
        assert_eq!(
            StandardName::find_in(
                "basebackups_005/base_000000010000000100000046_backup_stop_sentinel.json"
            )
            .unwrap()
            .as_str(),
            "base_000000010000000100000046"
        );
        assert!(StandardName::find_in("basebackups_005/base_111/metadata.json").is_none());
    }

    #[test]
    fn wal_file_names() {
        assert_eq!(wal_file_name("base_111"), NO_WAL_FILE_NAME);
        assert_eq!(
            wal_file_name("base_000000430000030600000060_backup_stop_sentinel.json"),
            "000000430000030600000060"
        );
        assert_eq!(
            wal_file_name("base_0000004300000388000000BB_D_0000004300000388000000AC"),
            "0000004300000388000000BB"
        );
        // Lower case is not a segment name.
        assert_eq!(
            wal_file_name("base_0000004300000388000000bb"),
            NO_WAL_FILE_NAME
        );
        // The first 24 of a longer run.
        assert_eq!(
            wal_file_name("x0000004300000388000000BB1"),
            "0000004300000388000000BB"
        );
    }

    #[test]
    fn delta_names() {
        let own = StandardName::parse("base_0000004300000388000000BB").unwrap();
        let delta = own
            .delta_of("base_0000004300000388000000AC_D_000000430000038500000003")
            .unwrap();
        assert_eq!(
            delta.as_str(),
            "base_0000004300000388000000BB_D_0000004300000388000000AC"
        );
        assert!(own.delta_of("base_111").is_none());
        assert!(delta.delta_of("base_0000004300000388000000BB").is_none());
    }
}
