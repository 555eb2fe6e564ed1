//! Names that become part of a key, checked once where they enter (a command-line argument, a
//! storage listing, a sentinel's `delta_from`); every key built from them afterwards is valid
//! by construction (see [`super::backup`]).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use crate::storage::StorageError;

/// The name of a backup in storage, one key segment: `basebackups_005/<name>…`. Not empty,
/// not `.` or `..`, no `/` and no NUL. Any such name is a backup name (WAL-G lists whatever
/// sentinels exist); [`super::backup::StandardName`] is the form WAL-G itself creates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupName(String);

impl BackupName {
    /// Checks `text`; the error names it (`invalid storage key '<text>'`).
    pub fn parse(text: &str) -> Result<BackupName, StorageError> {
        if text.is_empty() || text == "." || text == ".." || text.contains(['/', '\0']) {
            return Err(StorageError::InvalidKey {
                key: text.to_string(),
            });
        }
        Ok(BackupName(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<super::backup::StandardName> for BackupName {
    /// A standard name is always a valid key segment (`base_` and hex digits).
    fn from(name: super::backup::StandardName) -> BackupName {
        BackupName(name.as_str().to_string())
    }
}

impl FromStr for BackupName {
    type Err = StorageError;

    fn from_str(text: &str) -> Result<BackupName, StorageError> {
        BackupName::parse(text)
    }
}

impl Deref for BackupName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for BackupName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for BackupName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for BackupName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for BackupName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for BackupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of one `backup-push` run, in the name of its in-progress marker
/// (`walg_backup_in_progress_<run>.json`): ASCII letters, digits and `-`, not empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    /// The id of a run numbered `number` (random, say): 16 lower-case hex digits.
    pub fn from_number(number: u64) -> RunId {
        RunId(format!("{number:016x}"))
    }

    /// Checks `text`; the error names the marker file it would give.
    pub fn parse(text: &str) -> Result<RunId, StorageError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(StorageError::InvalidKey {
                key: super::backup::in_progress_marker_file_name(text),
            });
        }
        Ok(RunId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Key;

    #[test]
    fn a_backup_name_is_one_valid_key_segment() {
        for good in [
            "base_000000010000000000000004",
            "base_111",
            "my backup",
            "...",
            ".hidden",
            "a\\b",
            "ünïcode",
        ] {
            let name = BackupName::parse(good).unwrap();
            assert_eq!(name.as_str(), good);
            assert_eq!(name.to_string(), good);
            assert_eq!(Key::new(good).unwrap().as_str(), good);
        }
        for bad in ["", ".", "..", "a/b", "/a", "a/", "../x", "a\0b"] {
            let err = BackupName::parse(bad).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid storage key '{bad}'"));
        }
    }

    #[test]
    fn a_run_id_is_letters_digits_and_dashes() {
        assert_eq!(RunId::from_number(0x3f2a).as_str(), "0000000000003f2a");
        assert_eq!(RunId::parse("3f2a-1").unwrap().as_str(), "3f2a-1");
        for bad in ["", "../x", "a/b", "a.b", "a b", "a\0"] {
            let err = RunId::parse(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid storage key 'walg_backup_in_progress_{bad}.json'")
            );
        }
    }
}
