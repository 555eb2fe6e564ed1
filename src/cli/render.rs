//! What commands print on standard output, byte for byte as WAL-G prints it, formatted from
//! the data `ops` returned (`cli::stdout` writes it). Nothing here reads storage.
//!
//! WAL-G compat (internal/printlist/entities.go, internal/backup_time.go,
//! internal/databases/postgres/backup_detail.go, backup_list_time_format.go): lists are a Go
//! `tabwriter` table (padding 1, no minimum width), a go-pretty table with `--pretty` (default
//! style, upper-case headers, a `#` column), or JSON from Go's encoder with `--json` (one line,
//! or indented by 4 spaces with `--pretty`, and a final newline). Times are RFC 3339 in plain
//! tables, RFC 850 in pretty ones, and `-` for a zero time. Storage modification times are
//! shown in UTC for S3 and in the local zone for a local folder, as Go has them.

use std::io::{self, Write};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::layout::documents::{ExtendedMetadata, GoTime};
use crate::layout::to_vec_v1_indented;
use crate::ops::backup_list::{BackupDetail, BackupSummary, Listing};
use crate::pg::Lsn;
use crate::storage::StorageSettings;

/// The one storage WAL-G lists without failover storages configured.
pub(crate) const STORAGE_NAME: &str = "default";

/// The output flags of a list command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFormat {
    pub json: bool,
    pub pretty: bool,
    pub detail: bool,
}

/// The zones times are shown in.
#[derive(Debug, Clone)]
pub struct TimeZones {
    /// Where storage modification times are shown: UTC for S3, local for a local folder.
    pub storage: TimeZone,
    /// The local zone: names the offset of document times that match it.
    pub local: TimeZone,
}

impl TimeZones {
    /// UTC for both: what tests and S3 on a UTC host see.
    pub fn utc() -> TimeZones {
        TimeZones {
            storage: TimeZone::UTC,
            local: TimeZone::UTC,
        }
    }

    /// `local` for both with a local folder, else UTC for storage times.
    pub fn for_storage(storage: Option<&StorageSettings>, local: TimeZone) -> TimeZones {
        let storage = match storage {
            Some(StorageSettings::Fs(_)) => local.clone(),
            _ => TimeZone::UTC,
        };
        TimeZones { storage, local }
    }
}

/// Renders `backup-list`: the backups, or their details with `--detail`.
pub fn backup_list(
    out: &mut impl Write,
    listing: &Listing,
    format: ListFormat,
    zones: &TimeZones,
) -> io::Result<()> {
    match listing {
        Listing::Backups(backups) => write_backup_list(out, backups, format, zones),
        Listing::Details(details) => write_backup_details(out, details, format, zones),
    }
}

/// Renders `backup-list` without `--detail`.
pub fn write_backup_list(
    out: &mut impl Write,
    backups: &[BackupSummary],
    format: ListFormat,
    zones: &TimeZones,
) -> io::Result<()> {
    if format.json {
        let rows: Vec<BackupTimeJson<'_>> = backups
            .iter()
            .map(|b| BackupTimeJson::new(b, zones))
            .collect();
        return write_json(out, &rows, format.pretty);
    }
    let rows: Vec<Vec<Field>> = backups.iter().map(|b| summary_fields(b, zones)).collect();
    write_table(out, &rows, format.pretty)
}

/// Renders `backup-list --detail`. A backup without metadata shows Go's zero values.
pub fn write_backup_details(
    out: &mut impl Write,
    details: &[BackupDetail],
    format: ListFormat,
    zones: &TimeZones,
) -> io::Result<()> {
    let empty = ExtendedMetadata::default();
    let meta = |d: &'_ BackupDetail| -> ExtendedMetadata {
        d.metadata.clone().unwrap_or_else(|| empty.clone())
    };
    if format.json {
        let metas: Vec<ExtendedMetadata> = details.iter().map(meta).collect();
        let rows: Vec<BackupDetailJson<'_>> = details
            .iter()
            .zip(&metas)
            .map(|(d, m)| BackupDetailJson {
                backup: BackupTimeJson::new(&d.backup, zones),
                metadata: m,
            })
            .collect();
        return write_json(out, &rows, format.pretty);
    }
    let rows: Vec<Vec<Field>> = details
        .iter()
        .map(|d| detail_fields(&d.backup, &meta(d), zones))
        .collect();
    write_table(out, &rows, format.pretty)
}

/// Go's `BackupTime` as JSON.
#[derive(Serialize)]
struct BackupTimeJson<'a> {
    backup_name: &'a str,
    time: GoTime,
    wal_file_name: &'a str,
    storage_name: &'a str,
}

impl<'a> BackupTimeJson<'a> {
    fn new(backup: &'a BackupSummary, zones: &TimeZones) -> Self {
        BackupTimeJson {
            backup_name: &backup.name,
            time: GoTime::in_zone(backup.modified, &zones.storage),
            wal_file_name: &backup.wal_file_name,
            storage_name: STORAGE_NAME,
        }
    }
}

/// Go's `BackupDetail`: `BackupTime` and `ExtendedMetadataDto` embedded, so one flat object.
#[derive(Serialize)]
struct BackupDetailJson<'a> {
    #[serde(flatten)]
    backup: BackupTimeJson<'a>,
    #[serde(flatten)]
    metadata: &'a ExtendedMetadata,
}

/// JSON as Go's `json.Encoder` writes it: HTML characters escaped, a final newline.
fn write_json<T: Serialize>(out: &mut impl Write, rows: &[T], pretty: bool) -> io::Result<()> {
    let bytes = if pretty {
        to_vec_v1_indented(rows, "    ")
    } else {
        crate::layout::to_vec_v1(rows)
    }
    .map_err(io::Error::other)?;
    out.write_all(&bytes)?;
    out.write_all(b"\n")
}

/// One column of a row: its plain and pretty header and values.
struct Field {
    name: &'static str,
    pretty_name: &'static str,
    value: String,
    pretty_value: Option<String>,
}

fn field(name: &'static str, pretty_name: &'static str, value: String) -> Field {
    Field {
        name,
        pretty_name,
        value,
        pretty_value: None,
    }
}

fn time_field(
    name: &'static str,
    pretty_name: &'static str,
    time: GoTime,
    zones: &TimeZones,
    storage_time: bool,
) -> Field {
    Field {
        name,
        pretty_name,
        value: rfc3339(time),
        pretty_value: Some(rfc850(time, zones, storage_time)),
    }
}

fn summary_fields(backup: &BackupSummary, zones: &TimeZones) -> Vec<Field> {
    vec![
        field("backup_name", "Backup name", backup.name.to_string()),
        time_field(
            "modified",
            "Modified",
            GoTime::in_zone(backup.modified, &zones.storage),
            zones,
            true,
        ),
        field(
            "wal_file_name",
            "WAL file name",
            backup.wal_file_name.clone(),
        ),
        field("storage_name", "Storage name", STORAGE_NAME.to_string()),
    ]
}

fn detail_fields(backup: &BackupSummary, meta: &ExtendedMetadata, zones: &TimeZones) -> Vec<Field> {
    let mut fields = summary_fields(backup, zones);
    fields.extend([
        time_field("start_time", "Start time", meta.start_time, zones, false),
        time_field("finish_time", "Finish time", meta.finish_time, zones, false),
        field("hostname", "Hostname", meta.hostname.clone()),
        field("data_dir", "Datadir", meta.data_dir.clone()),
        field("pg_version", "PG version", meta.pg_version.to_string()),
        field("start_lsn", "Start LSN", Lsn(meta.start_lsn).to_string()),
        field("finish_lsn", "Finish LSN", Lsn(meta.finish_lsn).to_string()),
        field("is_permanent", "Permanent", meta.is_permanent.to_string()),
    ]);
    fields
}

/// Go's `time.RFC3339`, `-` for the zero time.
fn rfc3339(time: GoTime) -> String {
    if time.is_zero() {
        "-".to_string()
    } else {
        time.to_rfc3339()
    }
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Go's `time.RFC850` (`Saturday, 20-Dec-25 02:00:19 UTC`), `-` for the zero time.
///
/// The zone name is what Go's location has: the zone of a storage time; for a time read from
/// a document, `UTC` for `Z`, the local zone's name when the offset is the local one, else
/// `+hhmm`.
fn rfc850(time: GoTime, zones: &TimeZones, storage_time: bool) -> String {
    if time.is_zero() {
        return "-".to_string();
    }
    let dt = time.civil();
    let weekday = WEEKDAYS[usize::from(dt.weekday().to_monday_zero_offset().unsigned_abs())];
    let month = MONTHS[usize::from(dt.month().unsigned_abs()).saturating_sub(1) % 12];
    let zone_name = if storage_time {
        zone_abbreviation(&zones.storage, time.timestamp())
    } else if time.offset().seconds() == 0 {
        "UTC".to_string()
    } else if zones.local.to_offset(time.timestamp()) == time.offset() {
        zone_abbreviation(&zones.local, time.timestamp())
    } else {
        let minutes = time.offset().seconds() / 60;
        let sign = if minutes < 0 { '-' } else { '+' };
        format!("{sign}{:02}{:02}", minutes.abs() / 60, minutes.abs() % 60)
    };
    format!(
        "{weekday}, {:02}-{month}-{:02} {:02}:{:02}:{:02} {zone_name}",
        dt.day(),
        dt.year().rem_euclid(100),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn zone_abbreviation(zone: &TimeZone, at: Timestamp) -> String {
    zone.to_offset_info(at).abbreviation().to_string()
}

/// A plain (`tabwriter`) or pretty (go-pretty) table; nothing at all for no rows.
fn write_table(out: &mut impl Write, rows: &[Vec<Field>], pretty: bool) -> io::Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    if pretty {
        let mut lines = vec![
            std::iter::once("#".to_string())
                .chain(first.iter().map(|f| f.pretty_name.to_uppercase()))
                .collect::<Vec<_>>(),
        ];
        for (i, row) in rows.iter().enumerate() {
            lines.push(
                std::iter::once(i.to_string())
                    .chain(
                        row.iter()
                            .map(|f| f.pretty_value.clone().unwrap_or_else(|| f.value.clone())),
                    )
                    .collect(),
            );
        }
        write_ascii_table(out, &lines)
    } else {
        let mut lines = vec![first.iter().map(|f| f.name.to_string()).collect::<Vec<_>>()];
        lines.extend(
            rows.iter()
                .map(|row| row.iter().map(|f| f.value.clone()).collect()),
        );
        write_tabbed(out, &lines)
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Go's `tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)`: every cell but the last of a line padded
/// with spaces to its column's widest cell plus one.
fn write_tabbed(out: &mut impl Write, lines: &[Vec<String>]) -> io::Result<()> {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for line in lines {
        for (i, cell) in line.iter().enumerate().take(line.len().saturating_sub(1)) {
            widths[i] = widths[i].max(width(cell) + 1);
        }
    }
    for line in lines {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < line.len() {
                text.push_str(&" ".repeat(widths[i].saturating_sub(width(cell))));
            }
        }
        text.push('\n');
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// go-pretty's default style: `+---+` borders, a separator under the header, the first
/// (numeric) column right-aligned, the others left-aligned.
fn write_ascii_table(out: &mut impl Write, lines: &[Vec<String>]) -> io::Result<()> {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for line in lines {
        for (i, cell) in line.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let separator: String = std::iter::once("+".to_string())
        .chain(widths.iter().map(|w| format!("{}+", "-".repeat(w + 2))))
        .collect();
    let row = |line: &[String]| -> String {
        let mut text = String::from("|");
        for (i, w) in widths.iter().enumerate() {
            let cell = line.get(i).map(String::as_str).unwrap_or("");
            let pad = " ".repeat(w.saturating_sub(width(cell)));
            if i == 0 {
                text.push_str(&format!(" {pad}{cell} |"));
            } else {
                text.push_str(&format!(" {cell}{pad} |"));
            }
        }
        text
    };
    let mut text = String::new();
    text.push_str(&separator);
    text.push('\n');
    for (i, line) in lines.iter().enumerate() {
        text.push_str(&row(line));
        text.push('\n');
        if i == 0 {
            text.push_str(&separator);
            text.push('\n');
        }
    }
    text.push_str(&separator);
    text.push('\n');
    out.write_all(text.as_bytes())
}

/// `value` as one line of JSON and a newline (`delete --json`).
pub fn json_line(value: &impl serde::Serialize) -> anyhow::Result<String> {
    let mut text = serde_json::to_string(value)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests;
