//! The tar reader on an untrusted stream: `walg::archive::extract` into `<scratch>/target`,
//! with a tablespace redirect (OID 16384, as in the seeds) to `<scratch>/ts`. Whatever the
//! stream holds, nothing may appear in the scratch directory but those two, every written
//! path is inside them and every symlink stays inside. The first byte picks the options and
//! the read size.
#![no_main]

use std::io::{self, Read};
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use walg::archive::{ExtractOptions, Redirect, extract};
use walg_fuzz::{ScratchDir, check_symlinks_inside, names_in};

/// Hands the stream out in pieces of at most `step` bytes, as a network stream would.
struct Chunked<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let scratch = ScratchDir::new();
    let target = scratch.path().join("target");
    let ts = scratch.path().join("ts");
    let opts = ExtractOptions {
        allow_symlinks: flags & 1 != 0,
        skip_symlinks: flags & 2 != 0,
        redirects: if flags & 4 != 0 {
            vec![Redirect {
                member_prefix: "pg_tblspc/16384".to_string(),
                dir: ts.clone(),
            }]
        } else {
            Vec::new()
        },
    };
    let step = match flags >> 4 {
        0 => usize::MAX,
        n => 1 << (n - 1),
    };
    let filter = |member: &str| !member.ends_with("skip");
    let result = extract(Chunked { data: stream, step }, &target, &filter, &opts);

    let names = names_in(scratch.path());
    assert!(
        names.iter().all(|n| n == "target" || n == "ts"),
        "extraction created {names:?} next to the target"
    );
    let roots: Vec<PathBuf> = [&target, &ts]
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let root_refs: Vec<&std::path::Path> = roots.iter().map(PathBuf::as_path).collect();
    if let Ok(report) = &result {
        for path in report.files.iter().chain(report.dirs.iter()) {
            assert!(
                root_refs.iter().any(|r| path.starts_with(r)),
                "reported path {path:?} is outside the target"
            );
        }
        assert!(
            report.bytes <= stream.len() as u64,
            "more bytes written than read"
        );
    }
    // Known: the tar crate's message for a bad numeric header field quotes the raw field
    // bytes, newlines included ("numeric field was not a number: ... when getting cksum for
    // ..."), so a read error may span lines; the command's error report joins them.
    if let Err(e @ walg::archive::ExtractError::Unsafe { .. }) = &result {
        assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
    }
    for root in &root_refs {
        check_symlinks_inside(root, &root_refs);
    }
});
