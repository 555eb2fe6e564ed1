//! Shared pieces of the fuzz targets: bounded draining of a decoder, a fresh directory per
//! input, and the checks that an extraction stayed inside its target.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use walg::compression::{self, Decoder};

/// Decompressed output read per input, at most. A decompression bomb stops here and is not a
/// finding; memory that grows with the declared (not the produced) size is.
pub const OUTPUT_CAP: u64 = 64 * 1024 * 1024;

/// The result of draining a decoder.
pub struct Drained {
    /// Output bytes read (at most [`OUTPUT_CAP`]).
    pub len: u64,
    /// The output itself while it is at most `keep` bytes.
    pub kept: Option<Vec<u8>>,
    /// The error that ended the stream, if any (`None`: a clean end or the cap).
    pub error: Option<io::Error>,
}

/// Reads `reader` to its end or to [`OUTPUT_CAP`], keeping the output when it is at most
/// `keep` bytes.
pub fn drain(mut reader: impl Read, keep: usize) -> Drained {
    let mut buf = vec![0u8; 64 * 1024];
    let mut kept = Some(Vec::new());
    let mut len = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => {
                return Drained {
                    len,
                    kept,
                    error: None,
                };
            }
            Ok(n) => {
                assert!(
                    n <= buf.len(),
                    "read returned {n} for a buffer of {}",
                    buf.len()
                );
                len += n as u64;
                if let Some(out) = kept.as_mut() {
                    if out.len() + n <= keep {
                        out.extend_from_slice(&buf[..n]);
                    } else {
                        kept = None;
                    }
                }
                if len >= OUTPUT_CAP {
                    return Drained {
                        len,
                        kept: None,
                        error: None,
                    };
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // The fused decoder repeats its first error instead of a clean end.
                let again = reader.read(&mut buf);
                assert!(again.is_err(), "a decoder error was followed by {again:?}");
                return Drained {
                    len,
                    kept: None,
                    error: Some(e),
                };
            }
        }
    }
}

/// Decodes `data` with `decoder` to the end (bounded); checks the error rules of
/// `walg::compression::decoder`: a codec error is `InvalidData` or `UnexpectedEof`, one line.
pub fn decode(decoder: Decoder, data: &[u8], keep: usize) -> Drained {
    let reader = match compression::decoder(decoder, io::Cursor::new(data.to_vec())) {
        Ok(r) => r,
        Err(e) => {
            return Drained {
                len: 0,
                kept: None,
                error: Some(e),
            };
        }
    };
    let drained = drain(reader, keep);
    if let Some(e) = &drained.error {
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ),
            "decoder error of kind {:?}: {e}",
            e.kind()
        );
        assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
    }
    drained
}

/// A directory of its own for one input, removed when dropped. Under `$TMPDIR` (the fuzz
/// script points it at a RAM disk when there is one).
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new() -> ScratchDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join(format!("walg-fuzz-{}", std::process::id()))
            .join(n.to_string());
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a scratch directory");
        ScratchDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for ScratchDir {
    fn default() -> Self {
        ScratchDir::new()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Extracted directories may have lost their write bit (a member's mode): give it back
        // so that the removal cannot fail on them.
        make_removable(&self.path);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn make_removable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_removable(&entry.path());
            }
        }
    }
}

/// The names directly inside `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every symlink under `root` (not following links): each must be relative and, resolved
/// lexically from its own directory, stay inside one of `roots`.
pub fn check_symlinks_inside(root: &Path, roots: &[&Path]) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).expect("reading a symlink");
            assert!(
                target.is_relative(),
                "absolute symlink {path:?} -> {target:?}"
            );
            let resolved = lexical_join(path.parent().unwrap_or(root), &target);
            assert!(
                roots.iter().any(|r| resolved.starts_with(r)),
                "symlink {path:?} -> {target:?} leaves the target"
            );
        } else if meta.is_dir() {
            check_symlinks_inside(&path, roots);
        }
    }
}

/// `base` joined with `rel`, `..` and `.` resolved without touching the file system.
fn lexical_join(base: &Path, rel: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in rel.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::Prefix(_) => out = PathBuf::from("/"),
        }
    }
    out
}
