//! What a stored object is, by its key alone: the one reading of keys that `delete` and its
//! retention plan share. Works on any text (a key from a listing, or anything else): what it
//! does not recognise is [`ObjectKind::Unknown`].

use super::backup::{SENTINEL_SUFFIX, backup_name_of_sentinel, is_in_progress_marker};
use super::{BASEBACKUPS_FOLDER, WAL_FOLDER};

/// The kind of a stored object, with the parts of its key that tell whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind<'a> {
    /// `basebackups_005/<stem>_backup_stop_sentinel.json`: the sentinel of backup `name`, the
    /// stem cut at its first `_backup` as WAL-G cuts it (so `name` may be empty).
    Sentinel { name: &'a str, stem: &'a str },
    /// `basebackups_005/<folder>/metadata.json`.
    Metadata { folder: &'a str },
    /// `basebackups_005/<folder>/walg_backup_in_progress_<run>.json` (or the single marker
    /// name of earlier versions): a `backup-push` run writing into `folder`.
    InProgressMarker { folder: &'a str },
    /// Any other object under `basebackups_005/<folder>/`: tar parts, `files_metadata.json`,
    /// deeper keys.
    BackupPart { folder: &'a str },
    /// `wal_005/<file>` whose name starts with a segment name (24 upper-case hex digits): a
    /// segment, a `.partial` or `.backup` file, WAL metadata, a WAL-delta file.
    WalSegment { file: &'a str },
    /// `wal_005/<8 hex>.history[.<ext>]`: a timeline history file.
    History { file: &'a str },
    /// Any other direct child of `wal_005/`.
    WalOther { file: &'a str },
    /// Anything else: other folders, files directly in `basebackups_005/` that are not
    /// sentinels, keys nested below `wal_005/<file>`, empty segments.
    Unknown,
}

impl<'a> ObjectKind<'a> {
    /// The file name of an object directly in `wal_005/`.
    pub fn wal_file(&self) -> Option<&'a str> {
        match *self {
            ObjectKind::WalSegment { file }
            | ObjectKind::History { file }
            | ObjectKind::WalOther { file } => Some(file),
            _ => None,
        }
    }

    /// The backup folder (`basebackups_005/<folder>/…`) of an object inside one.
    pub fn backup_folder(&self) -> Option<&'a str> {
        match *self {
            ObjectKind::Metadata { folder }
            | ObjectKind::InProgressMarker { folder }
            | ObjectKind::BackupPart { folder } => Some(folder),
            _ => None,
        }
    }
}

/// What the object at `key` is.
pub fn classify(key: &str) -> ObjectKind<'_> {
    if let Some(file) = child_of(key, WAL_FOLDER) {
        return wal_kind(file);
    }
    let Some(rest) = child_of(key, BASEBACKUPS_FOLDER) else {
        return ObjectKind::Unknown;
    };
    match rest.split_once('/') {
        Some(("", _)) => ObjectKind::Unknown,
        Some((folder, file)) if file == super::backup::METADATA_FILE => {
            ObjectKind::Metadata { folder }
        }
        Some((folder, file)) if is_in_progress_marker(file) => {
            ObjectKind::InProgressMarker { folder }
        }
        Some((folder, _)) => ObjectKind::BackupPart { folder },
        None => match (
            backup_name_of_sentinel(rest),
            rest.strip_suffix(SENTINEL_SUFFIX),
        ) {
            (Some(name), Some(stem)) => ObjectKind::Sentinel { name, stem },
            _ => ObjectKind::Unknown,
        },
    }
}

/// What follows `<folder>/` in `key`.
fn child_of<'k>(key: &'k str, folder: &str) -> Option<&'k str> {
    key.strip_prefix(folder)?.strip_prefix('/')
}

fn wal_kind(file: &str) -> ObjectKind<'_> {
    if file.is_empty() || file.contains('/') {
        ObjectKind::Unknown
    } else if file.get(..24).is_some_and(|s| upper_hex(s.as_bytes())) {
        ObjectKind::WalSegment { file }
    } else if is_history(file) {
        ObjectKind::History { file }
    } else {
        ObjectKind::WalOther { file }
    }
}

/// `<8 hex>.history`, then nothing or `.<extension>`.
fn is_history(file: &str) -> bool {
    let Some(timeline) = file.get(..8) else {
        return false;
    };
    let rest = file.get(8..).and_then(|r| r.strip_prefix(".history"));
    upper_hex(timeline.as_bytes()) && rest.is_some_and(|r| r.is_empty() || r.starts_with('.'))
}

fn upper_hex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "base_000000010000000000000004";

    fn assert_kinds(table: &[(&str, ObjectKind<'_>)]) {
        for (key, kind) in table {
            assert_eq!(classify(key), *kind, "{key:?}");
        }
    }

    #[test]
    fn backup_keys_are_classified_by_folder_and_file_name() {
        assert_kinds(&[
            (
                "basebackups_005/base_000000010000000000000004_backup_stop_sentinel.json",
                ObjectKind::Sentinel { name: B, stem: B },
            ),
            (
                "basebackups_005/my_backup_1_backup_stop_sentinel.json",
                ObjectKind::Sentinel {
                    name: "my",
                    stem: "my_backup_1",
                },
            ),
            (
                "basebackups_005/_backup_stop_sentinel.json",
                ObjectKind::Sentinel { name: "", stem: "" },
            ),
            (
                "basebackups_005/base_000000010000000000000004/metadata.json",
                ObjectKind::Metadata { folder: B },
            ),
            (
                "basebackups_005/base_000000010000000000000004/walg_backup_in_progress_3f2a.json",
                ObjectKind::InProgressMarker { folder: B },
            ),
            (
                "basebackups_005/base_000000010000000000000004/walg_backup_in_progress.json",
                ObjectKind::InProgressMarker { folder: B },
            ),
            (
                "basebackups_005/base_000000010000000000000004/walg_backup_in_progress_.json",
                ObjectKind::BackupPart { folder: B },
            ),
            (
                "basebackups_005/base_000000010000000000000004/files_metadata.json",
                ObjectKind::BackupPart { folder: B },
            ),
            (
                "basebackups_005/base_000000010000000000000004/tar_partitions/part_001.tar.lz4",
                ObjectKind::BackupPart { folder: B },
            ),
            // Nested folders: a marker or metadata deeper down is just a part.
            (
                "basebackups_005/x/tar_partitions/walg_backup_in_progress_1.json",
                ObjectKind::BackupPart { folder: "x" },
            ),
            (
                "basebackups_005/x/y/metadata.json",
                ObjectKind::BackupPart { folder: "x" },
            ),
            (
                "basebackups_005/x/base_1_backup_stop_sentinel.json",
                ObjectKind::BackupPart { folder: "x" },
            ),
            ("basebackups_005/x/", ObjectKind::BackupPart { folder: "x" }),
            (
                "basebackups_005/../metadata.json",
                ObjectKind::Metadata { folder: ".." },
            ),
        ]);
    }

    #[test]
    fn wal_keys_are_classified_by_file_name() {
        assert_kinds(&[
            (
                "wal_005/000000010000000000000004.lz4",
                ObjectKind::WalSegment {
                    file: "000000010000000000000004.lz4",
                },
            ),
            (
                "wal_005/000000010000000000000004",
                ObjectKind::WalSegment {
                    file: "000000010000000000000004",
                },
            ),
            (
                "wal_005/000000010000000000000030.00000028.backup.lz4",
                ObjectKind::WalSegment {
                    file: "000000010000000000000030.00000028.backup.lz4",
                },
            ),
            (
                "wal_005/000000010000000000000030_delta.lz4",
                ObjectKind::WalSegment {
                    file: "000000010000000000000030_delta.lz4",
                },
            ),
            (
                "wal_005/00000002.history.lz4",
                ObjectKind::History {
                    file: "00000002.history.lz4",
                },
            ),
            (
                "wal_005/00000002.history",
                ObjectKind::History {
                    file: "00000002.history",
                },
            ),
            (
                "wal_005/00000002.historyx",
                ObjectKind::WalOther {
                    file: "00000002.historyx",
                },
            ),
            (
                "wal_005/0000000a.history",
                ObjectKind::WalOther {
                    file: "0000000a.history",
                },
            ),
            (
                "wal_005/00000001000000000000004.json",
                ObjectKind::WalOther {
                    file: "00000001000000000000004.json",
                },
            ),
            (
                "wal_005/0000000100000000000000gg.lz4",
                ObjectKind::WalOther {
                    file: "0000000100000000000000gg.lz4",
                },
            ),
            ("wal_005/..", ObjectKind::WalOther { file: ".." }),
            ("wal_005/ü", ObjectKind::WalOther { file: "ü" }),
        ]);
    }

    #[test]
    fn hostile_and_stray_keys_are_unknown() {
        assert_kinds(&[
            ("", ObjectKind::Unknown),
            ("wal_005", ObjectKind::Unknown),
            ("wal_005/", ObjectKind::Unknown),
            ("wal_005//x", ObjectKind::Unknown),
            (
                "wal_005/sub/000000010000000000000001.lz4",
                ObjectKind::Unknown,
            ),
            ("wal_0055/000000010000000000000001.lz4", ObjectKind::Unknown),
            ("/wal_005/000000010000000000000001.lz4", ObjectKind::Unknown),
            ("basebackups_005", ObjectKind::Unknown),
            ("basebackups_005/", ObjectKind::Unknown),
            ("basebackups_005//metadata.json", ObjectKind::Unknown),
            ("basebackups_005/stray.json", ObjectKind::Unknown),
            ("basebackups_0055/x/metadata.json", ObjectKind::Unknown),
            ("other/basebackups_005/x/metadata.json", ObjectKind::Unknown),
            (
                "basebackups_005_backup_stop_sentinel.json",
                ObjectKind::Unknown,
            ),
        ]);
    }

    #[test]
    fn kinds_tell_their_wal_file_or_backup_folder() {
        let segment = classify("wal_005/000000010000000000000004.lz4");
        assert_eq!(segment.wal_file(), Some("000000010000000000000004.lz4"));
        assert_eq!(segment.backup_folder(), None);
        assert_eq!(
            classify("wal_005/00000002.history").wal_file(),
            Some("00000002.history")
        );
        assert_eq!(classify("wal_005/x").wal_file(), Some("x"));
        for key in [
            "basebackups_005/b/metadata.json",
            "basebackups_005/b/walg_backup_in_progress_1.json",
            "basebackups_005/b/tar_partitions/part_001.tar",
        ] {
            assert_eq!(classify(key).backup_folder(), Some("b"), "{key}");
            assert_eq!(classify(key).wal_file(), None, "{key}");
        }
        let sentinel = classify("basebackups_005/b_backup_stop_sentinel.json");
        assert_eq!(sentinel.backup_folder(), None);
        assert_eq!(sentinel.wal_file(), None);
        assert_eq!(ObjectKind::Unknown.backup_folder(), None);
    }
}
