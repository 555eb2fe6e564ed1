//! WAL-G's storage layout: the one place where object keys are built and parsed, and the
//! JSON documents stored there. No I/O.
//!
//! WAL objects are here; base backups in [`backup`] (names in [`name`]), their JSON documents
//! in [`documents`]; what a stored key is, in [`classify()`].

pub mod backup;
pub mod classify;
pub mod documents;
pub mod gojson;
pub mod gotime;
pub mod name;

pub use classify::{ObjectKind, classify};
pub use gojson::{to_vec_v1, to_vec_v1_indented};
pub use name::{BackupName, RunId};

use crate::compression::Decoder;
use crate::storage::{Key, StorageError};

/// Archived WAL, history, partial and backup-history files.
pub const WAL_FOLDER: &str = "wal_005";
/// Base backups.
pub const BASEBACKUPS_FOLDER: &str = "basebackups_005";

/// The folder of archived WAL, `wal_005`.
pub fn wal_folder() -> Key {
    Key::from_valid(WAL_FOLDER.to_string())
}

/// The folder of base backups, `basebackups_005`.
pub fn basebackups_folder() -> Key {
    Key::from_valid(BASEBACKUPS_FOLDER.to_string())
}

/// `wal_005/<file name>[.<ext>]`: where `wal-push` stores a file compressed with `decoder`'s
/// format. No dot for uncompressed files (current WAL-G).
pub fn wal_key(file_name: &str, decoder: Decoder) -> Result<Key, StorageError> {
    let ext = decoder.extension();
    if ext.is_empty() {
        Key::new(&format!("{WAL_FOLDER}/{file_name}"))
    } else {
        Key::new(&format!("{WAL_FOLDER}/{file_name}.{ext}"))
    }
}

/// The objects that may hold an archived WAL file, in the order to try them, each with the
/// decoder of its format: the `preferred` format first (what this configuration writes), then
/// WAL-G's probe order, where uncompressed is tried as `name.` (older WAL-G), and last the bare
/// name.
pub fn wal_candidates(
    file_name: &str,
    preferred: Decoder,
) -> Result<Vec<(Key, Decoder)>, StorageError> {
    let mut out = Vec::with_capacity(8);
    let push = |key: Key, decoder: Decoder, out: &mut Vec<(Key, Decoder)>| {
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key, decoder));
        }
    };
    let dotted = |decoder: Decoder| -> Result<Key, StorageError> {
        match decoder {
            Decoder::None => Key::new(&format!("{WAL_FOLDER}/{file_name}.")),
            other => wal_key(file_name, other),
        }
    };
    push(wal_key(file_name, preferred)?, preferred, &mut out);
    for decoder in crate::compression::WAL_PROBE_ORDER {
        push(dotted(decoder)?, decoder, &mut out);
    }
    push(wal_key(file_name, Decoder::None)?, Decoder::None, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_folders() {
        assert_eq!(wal_folder().as_str(), "wal_005");
        assert_eq!(basebackups_folder().as_str(), "basebackups_005");
    }

    #[test]
    fn wal_keys() {
        assert_eq!(
            wal_key("000000010000000000000004", Decoder::Lz4)
                .unwrap()
                .as_str(),
            "wal_005/000000010000000000000004.lz4"
        );
        assert_eq!(
            wal_key("00000002.history", Decoder::Zstd).unwrap().as_str(),
            "wal_005/00000002.history.zst"
        );
        assert_eq!(
            wal_key("000000010000000000000004", Decoder::None)
                .unwrap()
                .as_str(),
            "wal_005/000000010000000000000004"
        );
        assert!(wal_key("../x", Decoder::Lz4).is_err());
    }

    #[test]
    fn candidates_follow_walg_order_with_preferred_first() {
        let names: Vec<String> = wal_candidates("A", Decoder::Zstd)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k.as_str().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "wal_005/A.zst",
                "wal_005/A.lz4",
                "wal_005/A.lzma",
                "wal_005/A.gz",
                "wal_005/A.",
                "wal_005/A.br",
                "wal_005/A"
            ]
        );
        let names: Vec<String> = wal_candidates("A", Decoder::None)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k.as_str().to_string())
            .collect();
        assert_eq!(names[0], "wal_005/A");
        assert_eq!(names[1], "wal_005/A.lz4");
        assert_eq!(names.len(), 7);
    }
}
