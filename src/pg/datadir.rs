//! Is a directory a PostgreSQL data directory that this process can read? Checked before a
//! backup starts, so that an unreadable directory says "permission denied", not that it is no
//! data directory.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Files every data directory has.
const REQUIRED: [&str; 2] = ["global/pg_control", "PG_VERSION"];

/// Why a data directory cannot be backed up. One line each.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot read '{}': permission denied", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("'{}' does not exist", dir.display())]
    Missing { dir: PathBuf },
    #[error("'{}' has no {file}: not a PostgreSQL data directory", dir.display())]
    NotADataDir { dir: PathBuf, file: &'static str },
    #[error("cannot read '{}': {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_error(path: &Path, source: std::io::Error) -> DataDirError {
    match source.kind() {
        ErrorKind::PermissionDenied => DataDirError::PermissionDenied {
            path: path.to_path_buf(),
        },
        _ => DataDirError::Io {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// The absolute, symlink-free path of `dir`.
pub fn canonical(dir: &Path) -> Result<PathBuf, DataDirError> {
    std::fs::canonicalize(dir).map_err(|e| match e.kind() {
        ErrorKind::NotFound => DataDirError::Missing {
            dir: dir.to_path_buf(),
        },
        _ => io_error(dir, e),
    })
}

/// Checks that `dir` can be listed and that its required files exist and can be opened.
pub fn check(dir: &Path) -> Result<(), DataDirError> {
    std::fs::read_dir(dir).map_err(|e| match e.kind() {
        ErrorKind::NotFound => DataDirError::Missing {
            dir: dir.to_path_buf(),
        },
        _ => io_error(dir, e),
    })?;
    for file in REQUIRED {
        let path = dir.join(file);
        match std::fs::File::open(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(DataDirError::NotADataDir {
                    dir: dir.to_path_buf(),
                    file,
                });
            }
            Err(e) => return Err(io_error(&path, e)),
        }
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(DataDirError::NotADataDir {
                dir: dir.to_path_buf(),
                file,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_pg_control_is_not_a_data_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let err = check(dir.path()).err().map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "'{}' has no global/pg_control: not a PostgreSQL data directory",
                dir.path().display()
            ))
        );
        let missing = dir.path().join("nope");
        assert!(matches!(
            canonical(&missing),
            Err(DataDirError::Missing { .. })
        ));
        std::fs::create_dir(dir.path().join("global")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("global/pg_control"), b"x")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("PG_VERSION"), b"15\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(check(dir.path()).is_ok());
    }
}
