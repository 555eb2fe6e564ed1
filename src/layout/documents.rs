//! WAL-G's JSON documents of a base backup: the stop sentinel, `metadata.json`,
//! `files_metadata.json` and the tablespace spec. Pure serde, no I/O.
//!
//! Reading is as lenient as Go's `encoding/json`: keys match fields ignoring case, unknown keys
//! are ignored, `null` leaves a field at its zero value, missing fields are zero. Writing
//! reproduces WAL-G's bytes: the sentinel and `metadata.json` compact on one line with Go's v1
//! escaping, fields in Go's order and omitted exactly where WAL-G omits them;
//! `files_metadata.json` as WAL-G's json v2 writes it (no HTML escaping; map keys here come out
//! sorted, where Go's order is random). Use the `to_json`/`from_json` functions of each type.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::gojson::{self, CaseInsensitive, is_false, is_null, is_zero_i64, nullable};
pub use super::gotime::{GoTime, TimeParseError, ceil_to_micros};

/// The constant `DateFmt` / `date_fmt` WAL-G writes.
pub const DATE_FMT: &str = "%Y-%m-%dT%H:%M:%S.%fZ";

/// The version WAL-G writes in `Version`.
pub const SENTINEL_VERSION: u32 = 2;

/// Implements `Serialize`/`Deserialize` through the `#[serde(remote = "Self")]` derive, reading
/// keys case-insensitively.
macro_rules! go_document {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$ty>::serialize(self, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let mut value = <$ty>::deserialize(CaseInsensitive(deserializer))?;
                value.after_read();
                Ok(value)
            }
        }
    };
}

/// `<name>_backup_stop_sentinel.json`: written last; its existence makes a backup complete.
///
/// WAL-G's `BackupSentinelDtoV2` (the V1 fields, then the V2 ones), plus the legacy fields
/// pre-October-2021 sentinels carry (read only; see [`Sentinel::legacy_files_metadata`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Sentinel {
    /// Backup start LSN. Always written (`null` when unknown); WAL-G requires it.
    #[serde(rename = "LSN")]
    pub lsn: Option<u64>,
    /// Start LSN of the parent backup (deltas). Legacy spelling `DeltaFromLSN` is read too.
    #[serde(rename = "DeltaLSN", skip_serializing_if = "Option::is_none")]
    pub delta_lsn: Option<u64>,
    /// Name of the parent backup; present means the backup is a delta.
    #[serde(rename = "DeltaFrom", skip_serializing_if = "Option::is_none")]
    pub delta_from: Option<String>,
    /// Name of the full backup at the root of the delta chain.
    #[serde(rename = "DeltaFullName", skip_serializing_if = "Option::is_none")]
    pub delta_full_name: Option<String>,
    /// Position in the delta chain (1 = first delta after the full backup).
    #[serde(rename = "DeltaCount", skip_serializing_if = "Option::is_none")]
    pub delta_count: Option<u32>,
    /// `server_version_num`.
    #[serde(rename = "PgVersion", deserialize_with = "nullable")]
    pub pg_version: u32,
    /// LSN returned by `pg_backup_stop`. Always written (`null` when unknown).
    #[serde(rename = "FinishLSN")]
    pub finish_lsn: Option<u64>,
    #[serde(rename = "SystemIdentifier", skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<u64>,
    #[serde(rename = "UncompressedSize", deserialize_with = "nullable")]
    pub uncompressed_size: i64,
    #[serde(rename = "CompressedSize", deserialize_with = "nullable")]
    pub compressed_size: i64,
    #[serde(
        rename = "DataCatalogSize",
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "nullable"
    )]
    pub data_catalog_size: i64,
    /// Tablespaces; `None` (omitted) when there are none. WAL-E's lower-case `spec` is read too.
    #[serde(rename = "Spec", skip_serializing_if = "Option::is_none")]
    pub spec: Option<TablespaceSpec>,
    #[serde(rename = "UserData", skip_serializing_if = "is_null")]
    pub user_data: Option<Value>,
    /// Taken with `--without-files-metadata`: there is no `files_metadata.json`.
    #[serde(
        rename = "FilesMetadataDisabled",
        skip_serializing_if = "is_false",
        deserialize_with = "nullable"
    )]
    pub files_metadata_disabled: bool,
    /// OrioleDB checkpoint number; always written, `null` without OrioleDB.
    #[serde(rename = "ChkpNum")]
    pub chkp_num: Option<u32>,
    #[serde(rename = "DeltaChkpNum", skip_serializing_if = "Option::is_none")]
    pub delta_chkp_num: Option<u32>,
    /// 2 for sentinels WAL-G writes today; 0 when read from an older one.
    #[serde(rename = "Version", deserialize_with = "nullable")]
    pub version: u32,
    #[serde(rename = "StartTime", deserialize_with = "nullable")]
    pub start_time: GoTime,
    #[serde(rename = "FinishTime", deserialize_with = "nullable")]
    pub finish_time: GoTime,
    #[serde(rename = "DateFmt", deserialize_with = "nullable")]
    pub date_fmt: String,
    #[serde(rename = "Hostname", deserialize_with = "nullable")]
    pub hostname: String,
    #[serde(rename = "DataDir", deserialize_with = "nullable")]
    pub data_dir: String,
    /// Permanence at creation time. WAL-G neither updates nor reads it: `metadata.json` is
    /// authoritative.
    #[serde(rename = "IsPermanent", deserialize_with = "nullable")]
    pub is_permanent: bool,

    /// Legacy (read only): `DeltaFromLSN`; moved into `delta_lsn` on read, so always `None`
    /// after parsing.
    #[serde(rename = "DeltaFromLSN", skip_serializing)]
    pub legacy_delta_from_lsn: Option<u64>,
    /// Legacy (read only): file list of sentinels written before `files_metadata.json`.
    #[serde(rename = "Files", skip_serializing, deserialize_with = "nullable")]
    pub legacy_files: BTreeMap<String, BackupFileDescription>,
    /// Legacy (read only): tar contents of sentinels written before `files_metadata.json`.
    #[serde(
        rename = "TarFileSets",
        skip_serializing,
        deserialize_with = "nullable"
    )]
    pub legacy_tar_file_sets: BTreeMap<String, Vec<String>>,
    /// Legacy (read only): database names of sentinels written before `files_metadata.json`.
    #[serde(
        rename = "DatabasesByNames",
        skip_serializing,
        deserialize_with = "nullable"
    )]
    pub legacy_databases_by_names: BTreeMap<String, DatabaseObjectsInfo>,
}

go_document!(Sentinel);

impl Sentinel {
    fn after_read(&mut self) {
        if let Some(lsn) = self.legacy_delta_from_lsn.take() {
            self.delta_lsn.get_or_insert(lsn);
        }
    }

    /// Parses a sentinel.
    pub fn from_json(bytes: &[u8]) -> Result<Sentinel, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The sentinel as WAL-G writes it: compact, one line, no trailing newline.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        gojson::to_vec_v1(self)
    }

    /// The backup is a delta: `DeltaFrom` is set.
    pub fn is_delta(&self) -> bool {
        self.delta_from.is_some()
    }

    /// A delta sentinel must carry `DeltaLSN`, `DeltaFullName` and `DeltaCount` with
    /// `DeltaFrom` (WAL-G panics otherwise). Returns what is missing.
    pub fn check_delta_fields(&self) -> Result<(), String> {
        if self.delta_from.is_none() {
            return Ok(());
        }
        let missing: Vec<&str> = [
            ("DeltaLSN", self.delta_lsn.is_none()),
            ("DeltaFullName", self.delta_full_name.is_none()),
            ("DeltaCount", self.delta_count.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("delta sentinel without {}", missing.join(", ")))
        }
    }

    /// The file list an old sentinel carries in itself, if it does (backups written before
    /// `files_metadata.json` existed).
    pub fn legacy_files_metadata(&self) -> Option<FilesMetadata> {
        if self.legacy_files.is_empty()
            && self.legacy_tar_file_sets.is_empty()
            && self.legacy_databases_by_names.is_empty()
        {
            return None;
        }
        Some(FilesMetadata {
            files: self.legacy_files.clone(),
            tar_file_sets: self.legacy_tar_file_sets.clone(),
            databases_by_names: self.legacy_databases_by_names.clone(),
        })
    }
}

/// `<name>/metadata.json`: what `backup-list --detail`, `backup-mark`, `delete` and user-data
/// selection read. `is_permanent` here is the permanence flag that counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct ExtendedMetadata {
    /// UTC, rounded up to whole microseconds ([`ceil_to_micros`]).
    #[serde(deserialize_with = "nullable")]
    pub start_time: GoTime,
    /// UTC, rounded up to whole microseconds.
    #[serde(deserialize_with = "nullable")]
    pub finish_time: GoTime,
    /// [`DATE_FMT`].
    #[serde(deserialize_with = "nullable")]
    pub date_fmt: String,
    #[serde(deserialize_with = "nullable")]
    pub hostname: String,
    #[serde(deserialize_with = "nullable")]
    pub data_dir: String,
    #[serde(deserialize_with = "nullable")]
    pub pg_version: u32,
    #[serde(deserialize_with = "nullable")]
    pub start_lsn: u64,
    #[serde(deserialize_with = "nullable")]
    pub finish_lsn: u64,
    #[serde(deserialize_with = "nullable")]
    pub is_permanent: bool,
    /// Always written, `null` when unknown.
    pub system_identifier: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub uncompressed_size: i64,
    #[serde(deserialize_with = "nullable")]
    pub compressed_size: i64,
    #[serde(skip_serializing_if = "is_null")]
    pub user_data: Option<Value>,
}

go_document!(ExtendedMetadata);

impl ExtendedMetadata {
    fn after_read(&mut self) {}

    /// Parses `metadata.json`.
    pub fn from_json(bytes: &[u8]) -> Result<ExtendedMetadata, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// `metadata.json` as WAL-G writes it: compact, one line, no trailing newline.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        gojson::to_vec_v1(self)
    }
}

/// `<name>/files_metadata.json`: which files the backup holds and where.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct FilesMetadata {
    /// Tar member name (`/PG_VERSION`, `/base/5/1259`, …) → description.
    #[serde(
        rename = "Files",
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub files: BTreeMap<String, BackupFileDescription>,
    /// Tar object file name (`part_001.tar.lz4`) → member names.
    #[serde(
        rename = "TarFileSets",
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub tar_file_sets: BTreeMap<String, Vec<String>>,
    /// Database name → OIDs, for partial restore.
    #[serde(
        rename = "DatabasesByNames",
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub databases_by_names: BTreeMap<String, DatabaseObjectsInfo>,
}

go_document!(FilesMetadata);

impl FilesMetadata {
    fn after_read(&mut self) {}

    /// Parses `files_metadata.json`.
    pub fn from_json(bytes: &[u8]) -> Result<FilesMetadata, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// `files_metadata.json` as WAL-G's json v2 writes it: compact, no HTML escaping.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// One entry of [`FilesMetadata::files`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct BackupFileDescription {
    /// The tar member holds an increment, not the whole file.
    #[serde(rename = "IsIncremented", deserialize_with = "nullable")]
    pub is_incremented: bool,
    /// Unchanged since the parent backup; not in this backup's tars.
    #[serde(rename = "IsSkipped", deserialize_with = "nullable")]
    pub is_skipped: bool,
    /// File mtime at walk time, full nanoseconds, local offset ([`GoTime::in_zone`]).
    #[serde(rename = "MTime", deserialize_with = "nullable")]
    pub mtime: GoTime,
    #[serde(rename = "CorruptBlocks", skip_serializing_if = "Option::is_none")]
    pub corrupt_blocks: Option<CorruptBlocksInfo>,
    #[serde(rename = "UpdatesCount", deserialize_with = "nullable")]
    pub updates_count: u64,
}

go_document!(BackupFileDescription);

impl BackupFileDescription {
    fn after_read(&mut self) {}
}

/// Corrupt pages found by `backup-push --verify`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct CorruptBlocksInfo {
    #[serde(rename = "CorruptBlocksCount", deserialize_with = "nullable")]
    pub corrupt_blocks_count: i64,
    /// The first 10 block numbers, sorted (all with `--store-all-corrupt`).
    #[serde(rename = "SomeCorruptBlocks", deserialize_with = "nullable")]
    pub some_corrupt_blocks: Vec<u32>,
}

go_document!(CorruptBlocksInfo);

impl CorruptBlocksInfo {
    fn after_read(&mut self) {}
}

/// One database of [`FilesMetadata::databases_by_names`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct DatabaseObjectsInfo {
    #[serde(deserialize_with = "nullable")]
    pub oid: u32,
    /// `"<schema>.<table>"` → table.
    #[serde(
        rename = "tables_new",
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub tables: BTreeMap<String, TableInfo>,
}

go_document!(DatabaseObjectsInfo);

impl DatabaseObjectsInfo {
    fn after_read(&mut self) {}
}

/// A table (or a sub-table: TOAST, index, …) of a database.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct TableInfo {
    #[serde(deserialize_with = "nullable")]
    pub oid: u32,
    #[serde(deserialize_with = "nullable")]
    pub relfilenode: u32,
    #[serde(
        rename = "subtables",
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub subtables: BTreeMap<String, TableInfo>,
}

go_document!(TableInfo);

impl TableInfo {
    fn after_read(&mut self) {}
}

/// The tablespace spec: `Spec` of the sentinel, and the `--restore-spec` file.
///
/// JSON: `{"<oid>": {"loc": …, "link": "pg_tblspc/<oid>"}, …, "base_prefix": …,
/// "tablespaces": [oids]}`. WAL-G builds it as a Go map, so its keys are written sorted; read,
/// `base_prefix` is required and every listed OID must have its entry (keys match exactly
/// here, as WAL-G reads this object as a plain map).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TablespaceSpec {
    /// PGDATA at backup time (restore target in a restore spec), trailing `/` trimmed.
    pub base_prefix: String,
    /// In the order of the `tablespaces` list.
    pub tablespaces: Vec<Tablespace>,
}

/// One tablespace of a [`TablespaceSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablespace {
    /// The symlink name under `pg_tblspc` (the tablespace OID).
    pub name: String,
    /// The real directory, trailing `/` trimmed.
    pub location: String,
    /// `pg_tblspc/<name>`.
    pub link: String,
}

impl TablespaceSpec {
    /// A spec for `base_prefix` with no tablespaces yet.
    pub fn new(base_prefix: &str) -> TablespaceSpec {
        TablespaceSpec {
            base_prefix: base_prefix.trim_end_matches('/').to_string(),
            tablespaces: Vec::new(),
        }
    }

    /// Adds tablespace `name` (its OID) found at `location`.
    pub fn add(&mut self, name: &str, location: &str) {
        self.tablespaces.push(Tablespace {
            name: name.to_string(),
            location: location.trim_end_matches('/').to_string(),
            link: format!("pg_tblspc/{name}"),
        });
    }

    /// The tablespace whose symlink name is `name`.
    pub fn find(&self, name: &str) -> Option<&Tablespace> {
        self.tablespaces.iter().find(|t| t.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.tablespaces.is_empty()
    }

    /// Checks that restoring this spec into the data directory `data_dir` (an absolute path)
    /// stays where it should: every link is `pg_tblspc/<oid>` with a numeric OID equal to the
    /// tablespace's name, and every location is an absolute, normalised path (no `.`, `..`,
    /// empty components or line breaks) that lies outside `data_dir` and overlaps no other
    /// location. The error names the offending tablespace. Judged on the text: a location
    /// reached through a symlink is not resolved.
    pub fn check_restorable(&self, data_dir: &str) -> Result<(), String> {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for t in &self.tablespaces {
            let oid_ok = !t.name.is_empty() && t.name.bytes().all(|b| b.is_ascii_digit());
            if !oid_ok {
                return Err(format!(
                    "tablespace {:?}: its name is not a numeric OID",
                    t.name
                ));
            }
            if t.link != format!("pg_tblspc/{}", t.name) {
                return Err(format!(
                    "tablespace {}: its link {:?} is not pg_tblspc/{}",
                    t.name, t.link, t.name
                ));
            }
            if !is_normal_absolute(&t.location) {
                return Err(format!(
                    "tablespace {}: its location {:?} is not an absolute, normalised path",
                    t.name, t.location
                ));
            }
            if overlaps(&t.location, data_dir) {
                return Err(format!(
                    "tablespace {}: its location {:?} overlaps the data directory {data_dir:?}",
                    t.name, t.location
                ));
            }
            if let Some((other, _)) = seen
                .iter()
                .find(|(name, loc)| *name == t.name || overlaps(loc, &t.location))
            {
                return Err(format!(
                    "tablespace {}: its location {:?} overlaps that of tablespace {other}",
                    t.name, t.location
                ));
            }
            seen.push((&t.name, &t.location));
        }
        Ok(())
    }

    /// Parses a spec (for a `--restore-spec` file).
    pub fn from_json(bytes: &[u8]) -> Result<TablespaceSpec, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// `/a/b`: absolute, no empty, `.` or `..` components, no trailing `/`, no line breaks, not `/`.
fn is_normal_absolute(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    !path.contains(['\n', '\r', '\0'])
        && rest
            .split('/')
            .all(|comp| !comp.is_empty() && comp != "." && comp != "..")
}

/// Whether one of two normalised absolute paths is the other or lies below it.
fn overlaps(a: &str, b: &str) -> bool {
    let below = |inner: &str, outer: &str| {
        inner == outer
            || outer == "/"
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    below(a, b) || below(b, a)
}

#[derive(Serialize)]
struct LocationOut<'a> {
    loc: &'a str,
    link: &'a str,
}

enum SpecEntry<'a> {
    Location(LocationOut<'a>),
    Text(&'a str),
    Names(Vec<&'a str>),
}

impl Serialize for SpecEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SpecEntry::Location(l) => l.serialize(serializer),
            SpecEntry::Text(t) => t.serialize(serializer),
            SpecEntry::Names(n) => n.serialize(serializer),
        }
    }
}

impl Serialize for TablespaceSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries: BTreeMap<&str, SpecEntry<'_>> = BTreeMap::new();
        for t in &self.tablespaces {
            entries.insert(
                &t.name,
                SpecEntry::Location(LocationOut {
                    loc: &t.location,
                    link: &t.link,
                }),
            );
        }
        entries.insert("base_prefix", SpecEntry::Text(&self.base_prefix));
        entries.insert(
            "tablespaces",
            SpecEntry::Names(self.tablespaces.iter().map(|t| t.name.as_str()).collect()),
        );
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (key, value) in &entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TablespaceSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        let Some(Value::String(base_prefix)) = map.get("base_prefix") else {
            return Err(D::Error::custom(
                "tablespace spec: base_prefix is missing or not a string",
            ));
        };
        let mut spec = TablespaceSpec::new(base_prefix);
        let names = match map.get("tablespaces") {
            Some(Value::Array(items)) => items.as_slice(),
            _ => &[],
        };
        for item in names {
            let Value::String(name) = item else {
                return Err(D::Error::custom(
                    "tablespace spec: tablespaces holds a non-string",
                ));
            };
            let entry = map.get(name).and_then(Value::as_object);
            let field = |key: &str| {
                entry
                    .and_then(|e| e.get(key))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let (Some(location), Some(link)) = (field("loc"), field("link")) else {
                return Err(D::Error::custom(format!(
                    "tablespace spec: no loc/link entry for tablespace {name}"
                )));
            };
            spec.tablespaces.push(Tablespace {
                name: name.clone(),
                location,
                link,
            });
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests;
