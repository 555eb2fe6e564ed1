//! Interop of `walg::compression` with the reference implementations: what walg writes, the
//! `lz4`, `zstd` and `xz` tools and Google's brotli (through Python) read back byte for byte,
//! and what they write, walg reads back.
//!
//! Needs `lz4`, `zstd`, `xz` (`apt-get install -y lz4 zstd xz-utils`) and Python's `brotli`
//! module (`pip install brotli`). A missing tool fails the test, naming the install command.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use walg::compression::{self, CompressionSettings, Decoder, Method, ZstdLevel};

const APT: &str = "apt-get install -y lz4 zstd xz-utils";

/// The two inputs every check runs on: 8 MiB and an odd 8 000 123 bytes.
const SIZES: [usize; 2] = [8 << 20, 8_000_123];

/// Synthetic PostgreSQL heap pages, the same on every run: 8 KiB pages with a page header,
/// line pointers, free space of zeros and tuples (header, integers, words and numbers as
/// text) filled in from the end.
fn pages() -> &'static [u8] {
    static PAGES: OnceLock<Vec<u8>> = OnceLock::new();
    PAGES.get_or_init(|| {
        const WORDS: [&str; 12] = [
            "alpha", "beta", "gamma", "delta", "customer", "order", "pending", "shipped",
            "2024-01-", "Main St", "john", "smith",
        ];
        let mut state: u64 = 0x5EED_F00D_5EED;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let len = SIZES[0];
        let mut out = Vec::with_capacity(len);
        let mut lsn = 0x1_0000_0000u64;
        let mut xid = 1000u32;
        while out.len() < len {
            let mut page = vec![0u8; 8192];
            lsn += next() % 5000;
            page[0..8].copy_from_slice(&lsn.to_le_bytes());
            page[8..10].copy_from_slice(&(next() as u16).to_le_bytes());
            let mut upper = page.len();
            let mut lower = 24;
            let mut tuple = Vec::new();
            loop {
                tuple.clear();
                tuple.extend_from_slice(&xid.to_le_bytes());
                tuple.extend_from_slice(&[0u8; 19]);
                tuple.push(0x18);
                xid += (next() % 3) as u32;
                tuple.extend_from_slice(&next().to_le_bytes()[..6]);
                tuple.extend_from_slice(&((next() % 1_000_000) as u32).to_le_bytes());
                for _ in 0..2 + next() % 6 {
                    tuple.extend_from_slice(
                        WORDS[(next() % WORDS.len() as u64) as usize].as_bytes(),
                    );
                    tuple.extend_from_slice(format!(" {} ", next() % 10_000).as_bytes());
                }
                tuple.resize(tuple.len().next_multiple_of(8), 0);
                if upper < lower + 4 + tuple.len() + 100 || next() % 40 == 0 {
                    break;
                }
                upper -= tuple.len();
                page[upper..upper + tuple.len()].copy_from_slice(&tuple);
                let pointer = upper as u32 | (1 << 15) | ((tuple.len() as u32) << 17);
                page[lower..lower + 4].copy_from_slice(&pointer.to_le_bytes());
                lower += 4;
            }
            page[12..14].copy_from_slice(&(lower as u16).to_le_bytes());
            page[14..16].copy_from_slice(&(upper as u16).to_le_bytes());
            out.extend_from_slice(&page);
        }
        out.truncate(len);
        out
    })
}

fn inputs() -> impl Iterator<Item = &'static [u8]> {
    SIZES.into_iter().map(|n| &pages()[..n])
}

/// Fails unless `program args` runs and succeeds; `what` names the need, `hint` says how to
/// install it.
fn require(program: &str, args: &[&str], what: &str, hint: &str) {
    let ok = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{what} is needed for this test and is missing: install it with `{hint}`"
    );
}

fn require_tool(program: &str) {
    require(program, &["--version"], &format!("`{program}`"), APT);
}

fn require_python_brotli() {
    require(
        "python3",
        &["-c", "import brotli"],
        "Python 3 with the `brotli` module",
        "pip install brotli",
    );
}

/// Runs `program args`, feeding `input` on stdin; returns stdout, failing on a non-zero exit.
fn filter(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("child runs");
    feeder
        .join()
        .expect("feeder thread")
        .expect("writing the child's stdin");
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn walg_encode(method: Method, zstd_level: ZstdLevel, input: &[u8]) -> Vec<u8> {
    let settings = CompressionSettings { method, zstd_level };
    let mut enc = compression::encoder(settings, Vec::new()).expect("encoder starts");
    for chunk in input.chunks(100_000) {
        enc.write_all(chunk).expect("write");
    }
    enc.finish().expect("finish")
}

fn walg_decode(decoder: Decoder, stream: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    compression::decoder(decoder, std::io::Cursor::new(stream))
        .expect("decoder starts")
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("walg cannot decode {decoder:?}: {e}"));
    out
}

/// Asserts equality without printing megabytes.
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes back for {} in, first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

// ---------------------------------------------------------------------------------------- lz4

#[test]
fn lz4_walg_to_cli() {
    require_tool("lz4");
    for input in inputs() {
        let stream = walg_encode(Method::Lz4, ZstdLevel::Default, input);
        let back = filter("lz4", &["-d", "-c"], &stream);
        assert_same(
            &back,
            input,
            &format!("lz4 -d of walg's {} bytes", input.len()),
        );
    }
}

/// Our frame header is byte-identical to the one `lz4 -B7` (and WAL-G) writes.
#[test]
fn lz4_header_matches_cli() {
    require_tool("lz4");
    let input = inputs().next().expect("an input");
    let cli = filter("lz4", &["-B7", "-c"], input);
    let ours = walg_encode(Method::Lz4, ZstdLevel::Default, input);
    assert_eq!(ours[..7], cli[..7]);
    assert_eq!(ours[..7], [0x04, 0x22, 0x4D, 0x18, 0x64, 0x70, 0xB9]);
}

#[test]
fn lz4_cli_to_walg() {
    require_tool("lz4");
    let dir = tempfile::tempdir().expect("temp dir");
    // (flags, whether the frame must use linked blocks)
    let variants: [(&[&str], bool); 8] = [
        (&[], false),
        (&["-B7"], false),
        (&["-BD"], true),
        (&["-B7", "-BD"], true),
        (&["-B4", "-BD"], true),
        (&["-B5", "--no-frame-crc"], false),
        (&["-BX", "--content-size"], false),
        (&["-9", "-BD"], true),
    ];
    for input in inputs() {
        // From a file, so that --content-size can see the size.
        let path = dir.path().join("input");
        std::fs::write(&path, input).expect("write input");
        let path = path.to_str().expect("utf-8 path");
        for (flags, linked) in variants {
            let mut args = flags.to_vec();
            args.extend(["-c", path]);
            let stream = filter("lz4", &args, &[]);
            let flg = stream[4];
            assert_eq!(flg & 0x20 == 0, linked, "lz4 {flags:?}: FLG {flg:#04x}");
            let back = walg_decode(Decoder::Lz4, stream);
            assert_same(
                &back,
                input,
                &format!("walg decoding lz4 {flags:?} of {} bytes", input.len()),
            );
        }
    }
}

// --------------------------------------------------------------------------------------- zstd

#[test]
fn zstd_walg_to_cli() {
    require_tool("zstd");
    for input in inputs() {
        for level in [
            ZstdLevel::Fastest,
            ZstdLevel::Default,
            ZstdLevel::Better,
            ZstdLevel::Best,
        ] {
            let stream = walg_encode(Method::Zstd, level, input);
            let back = filter("zstd", &["-d", "-c", "-q"], &stream);
            assert_same(
                &back,
                input,
                &format!("zstd -d of walg's {level:?} {} bytes", input.len()),
            );
        }
    }
}

#[test]
fn zstd_cli_to_walg() {
    require_tool("zstd");
    let variants: [&[&str]; 4] = [
        &["-3"],
        &["-3", "--long=23"],
        &["-1", "--no-check"],
        &["-19", "-T2"],
    ];
    for input in inputs() {
        for flags in variants {
            let mut args = flags.to_vec();
            args.extend(["-c", "-q"]);
            let stream = filter("zstd", &args, input);
            let back = walg_decode(Decoder::Zstd, stream);
            assert_same(
                &back,
                input,
                &format!("walg decoding zstd {flags:?} of {} bytes", input.len()),
            );
        }
        // Two frames back to back read as one stream.
        let half = input.len() / 2;
        let mut stream = filter("zstd", &["-3", "-c", "-q"], &input[..half]);
        stream.extend(filter("zstd", &["-3", "-c", "-q"], &input[half..]));
        assert_same(
            &walg_decode(Decoder::Zstd, stream),
            input,
            "two zstd frames",
        );
    }
}

// --------------------------------------------------------------------------------------- lzma

#[test]
fn lzma_walg_to_cli() {
    require_tool("xz");
    for input in inputs() {
        let stream = walg_encode(Method::Lzma, ZstdLevel::Default, input);
        let back = filter("xz", &["--format=lzma", "-d", "-c"], &stream);
        assert_same(
            &back,
            input,
            &format!("xz --format=lzma -d of walg's {} bytes", input.len()),
        );
    }
}

#[test]
fn lzma_cli_to_walg() {
    require_tool("xz");
    for input in inputs() {
        for flags in [&["-6"][..], &["-1"][..]] {
            let mut args = vec!["--format=lzma", "-c"];
            args.extend(flags);
            let stream = filter("xz", &args, input);
            if flags == ["-6"] {
                // xz's default lzma header is WAL-G's: lc3 lp0 pb2, 8 MiB, unknown size.
                assert_eq!(
                    stream[..13],
                    [
                        0x5D, 0, 0, 0x80, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
                    ]
                );
            }
            let back = walg_decode(Decoder::Lzma, stream);
            assert_same(
                &back,
                input,
                &format!(
                    "walg decoding xz --format=lzma {flags:?} of {} bytes",
                    input.len()
                ),
            );
        }
    }
}

// ------------------------------------------------------------------------------------- brotli

const PY_DECOMPRESS: &str =
    "import brotli, sys; sys.stdout.buffer.write(brotli.decompress(sys.stdin.buffer.read()))";
const PY_COMPRESS: &str = "import brotli, sys; sys.stdout.buffer.write(brotli.compress(sys.stdin.buffer.read(), quality=int(sys.argv[1])))";

#[test]
fn brotli_walg_to_google() {
    require_python_brotli();
    for input in inputs() {
        let stream = walg_encode(Method::Brotli, ZstdLevel::Default, input);
        let back = filter("python3", &["-c", PY_DECOMPRESS], &stream);
        assert_same(
            &back,
            input,
            &format!("Google brotli decoding walg's {} bytes", input.len()),
        );
    }
}

#[test]
fn brotli_google_to_walg() {
    require_python_brotli();
    for input in inputs() {
        for quality in ["3", "11"] {
            let stream = filter("python3", &["-c", PY_COMPRESS, quality], input);
            let back = walg_decode(Decoder::Brotli, stream);
            assert_same(
                &back,
                input,
                &format!(
                    "walg decoding brotli quality {quality} of {} bytes",
                    input.len()
                ),
            );
        }
    }
}
