//! Unit tests of the compression module: round trips, exact headers, the extension table, and
//! the rule that a cut or damaged stream is an error.

use std::io::{self, Read, Write};

use proptest::prelude::*;

use super::*;

const ALL_METHODS: [Method; 5] = [
    Method::Lz4,
    Method::Lzma,
    Method::Zstd,
    Method::Brotli,
    Method::None,
];

fn settings(method: Method) -> CompressionSettings {
    CompressionSettings {
        method,
        zstd_level: ZstdLevel::Default,
    }
}

/// Deterministic test data of a given flavour: 0 random, 1 text-like, 2 zero runs, 3 mixed.
fn data(len: usize, seed: u64, flavour: u8) -> Vec<u8> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    const WORDS: [&[u8]; 8] = [
        b"tuple ",
        b"xmin ",
        b"relation ",
        b"0000 ",
        b"page ",
        b"\n",
        b"index ",
        b"walg ",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let r = next();
        let kind = if flavour == 3 {
            (r >> 60) as u8 % 3
        } else {
            flavour
        };
        match kind {
            0 => out.extend_from_slice(&r.to_le_bytes()),
            1 => out.extend_from_slice(WORDS[(r % 8) as usize]),
            _ => out.resize(out.len() + (r % 300) as usize, 0),
        }
    }
    out.truncate(len);
    out
}

fn encode_with(settings: CompressionSettings, input: &[u8], chunk: usize) -> Vec<u8> {
    let mut enc = encoder(settings, Vec::new()).expect("encoder starts");
    for part in input.chunks(chunk.max(1)) {
        enc.write_all(part).expect("write");
    }
    enc.finish().expect("finish")
}

fn encode(method: Method, input: &[u8]) -> Vec<u8> {
    encode_with(settings(method), input, 64 * 1024)
}

fn decode(dec: Decoder, stream: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decoder(dec, io::Cursor::new(stream.to_vec()))?.read_to_end(&mut out)?;
    Ok(out)
}

fn gzip(input: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(input).expect("gzip write");
    enc.finish().expect("gzip finish")
}

/// Sizes worth a look: tiny, around one and two LZ4 blocks, and anything up to three blocks.
fn sizes() -> impl Strategy<Value = usize> {
    let b = lz4::BLOCK_SIZE;
    prop_oneof![
        0usize..64,
        0usize..5000,
        (b - 3)..=(b + 3),
        (2 * b - 3)..=(2 * b + 3),
        0usize..(3 * b),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_method_round_trips(
        len in sizes(),
        seed in any::<u64>(),
        flavour in 0u8..4,
        chunk in prop_oneof![1usize..10, 1usize..70_000, Just(usize::MAX)],
        level in prop_oneof![Just(ZstdLevel::Fastest), Just(ZstdLevel::Default), Just(ZstdLevel::Better), Just(ZstdLevel::Best)],
    ) {
        let input = data(len, seed, flavour);
        // Byte-at-a-time writes through LZMA are slow in a debug build; keep those small.
        let chunk = if len > 100_000 { chunk.max(1000) } else { chunk };
        for method in ALL_METHODS {
            let s = CompressionSettings { method, zstd_level: level };
            let stream = encode_with(s, &input, chunk);
            let back = decode(method.decoder(), &stream).map_err(|e| TestCaseError::fail(format!("{}: {e}", method.name())))?;
            prop_assert!(back == input, "{} changed the data (len {})", method.name(), len);
        }
    }

    #[test]
    fn lz4_round_trips_with_tiny_blocks(len in 0usize..20_000, seed in any::<u64>(), flavour in 0u8..4, block in 1usize..3000) {
        let input = data(len, seed, flavour);
        let mut w = lz4::Lz4Writer::with_block_size(Vec::new(), block);
        w.write_all(&input).expect("write");
        let stream = w.finish().expect("finish");
        prop_assert_eq!(decode(Decoder::Lz4, &stream).expect("decodes"), input);
    }

    #[test]
    fn lz4_reads_other_writers_frames(
        len in 0usize..300_000,
        seed in any::<u64>(),
        flavour in 0u8..4,
        linked in any::<bool>(),
        block_checksums in any::<bool>(),
        content_checksum in any::<bool>(),
        content_size in any::<bool>(),
        big_blocks in any::<bool>(),
    ) {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        let input = data(len, seed, flavour);
        let mut info = FrameInfo::new()
            .block_size(if big_blocks { BlockSize::Max4MB } else { BlockSize::Max64KB })
            .block_mode(if linked { BlockMode::Linked } else { BlockMode::Independent })
            .block_checksums(block_checksums)
            .content_checksum(content_checksum);
        if content_size {
            info = info.content_size(Some(len as u64));
        }
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&input).expect("write");
        let stream = enc.finish().expect("finish");
        prop_assert_eq!(decode(Decoder::Lz4, &stream).expect("decodes"), input);
    }
}

#[test]
fn empty_input_gives_a_complete_stream() {
    for method in ALL_METHODS {
        let stream = encode(method, b"");
        if method != Method::None {
            assert!(
                !stream.is_empty(),
                "{}: empty input must still give a stream",
                method.name()
            );
        }
        assert_eq!(
            decode(method.decoder(), &stream).expect("decodes"),
            b"",
            "{}",
            method.name()
        );
    }
    assert_eq!(decode(Decoder::Gzip, &gzip(b"")).expect("decodes"), b"");
}

#[test]
fn lz4_frame_header_is_walgs() {
    let stream = encode(Method::Lz4, b"hello hello hello hello");
    // magic, FLG 0x64 (v01, independent blocks, content checksum), BD 0x70 (4 MiB), HC.
    assert_eq!(stream[..7], [0x04, 0x22, 0x4D, 0x18, 0x64, 0x70, 0xB9]);
    assert_eq!(
        lz4::frame_header(),
        [0x04, 0x22, 0x4D, 0x18, 0x64, 0x70, 0xB9]
    );
    // The empty frame: header, end mark, xxh32 of nothing (0x02CC5D05).
    let empty = encode(Method::Lz4, b"");
    assert_eq!(empty[7..], [0, 0, 0, 0, 0x05, 0x5D, 0xCC, 0x02]);
}

#[test]
fn lz4_blocks_are_at_most_block_size_and_raw_when_incompressible() {
    let input = data(3 * lz4::BLOCK_SIZE + 10, 1, 0);
    let stream = encode(Method::Lz4, &input);
    let mut pos = 7;
    let mut blocks = 0;
    loop {
        let word = u32::from_le_bytes(stream[pos..pos + 4].try_into().expect("4 bytes"));
        pos += 4;
        if word == 0 {
            break;
        }
        // Random data does not shrink, so every block is stored with the high bit set.
        assert_ne!(word & 0x8000_0000, 0, "block {blocks} should be stored raw");
        let size = (word & 0x7FFF_FFFF) as usize;
        assert!(size <= lz4::BLOCK_SIZE);
        pos += size;
        blocks += 1;
    }
    assert_eq!(blocks, 4);
    assert_eq!(
        pos + 4,
        stream.len(),
        "only the content checksum follows the end mark"
    );
}

#[test]
fn lzma_header_is_walgs() {
    let stream = encode(Method::Lzma, &data(10_000, 2, 1));
    assert_eq!(
        stream[..13],
        [
            0x5D, 0x00, 0x00, 0x80, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
        ]
    );
}

/// The header of an LZMA object names the dictionary the decoder allocates, up to 4 GiB: a
/// hostile or corrupt object must not get that allocation. Up to 64 MiB (`xz -9`) decodes.
#[test]
fn an_lzma_header_naming_a_huge_dictionary_is_refused_before_allocating_it() {
    let plain = data(100_000, 5, 1);
    let stream = encode(Method::Lzma, &plain);
    let with_dict = |size: u32| {
        let mut s = stream.clone();
        s[1..5].copy_from_slice(&size.to_le_bytes());
        s
    };
    for size in [1 << 20, 64 << 20] {
        let mut out = Vec::new();
        decoder(Decoder::Lzma, io::Cursor::new(with_dict(size)))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, plain, "dictionary of {size} bytes");
    }
    for size in [128 << 20, u32::MAX] {
        let mut out = Vec::new();
        let err = decoder(Decoder::Lzma, io::Cursor::new(with_dict(size)))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(err.to_string(), "lzma: memory limit reached");
    }
}

/// The zstd frame header: magic, a content checksum, no content size, a window of at most
/// 8 MiB.
#[test]
fn zstd_frame_header_has_checksum_and_small_window() {
    let input = data(3 << 20, 3, 3);
    for level in [
        ZstdLevel::Fastest,
        ZstdLevel::Default,
        ZstdLevel::Better,
        ZstdLevel::Best,
    ] {
        let s = CompressionSettings {
            method: Method::Zstd,
            zstd_level: level,
        };
        let stream = encode_with(s, &input, 1 << 20);
        assert_eq!(stream[..4], [0x28, 0xB5, 0x2F, 0xFD]);
        let fhd = stream[4];
        assert_eq!(fhd & 0x04, 0x04, "{level:?}: content checksum flag");
        assert_eq!(fhd & 0xC0, 0, "{level:?}: no content size");
        assert_eq!(
            fhd & 0x20,
            0,
            "{level:?}: not single-segment, so a window descriptor follows"
        );
        let wd = stream[5];
        let window_log = 10 + u32::from(wd >> 3);
        let base = 1u64 << window_log;
        let window = base + (base / 8) * u64::from(wd & 7);
        assert!(window <= 8 << 20, "{level:?}: window {window}");
    }
}

#[test]
fn zstd_levels_mirror_walgs_names() {
    assert_eq!(zstd::level(ZstdLevel::Fastest), 1);
    assert_eq!(zstd::level(ZstdLevel::Default), 3);
    assert_eq!(zstd::level(ZstdLevel::Better), 7);
    assert_eq!(zstd::level(ZstdLevel::Best), 11);
}

#[test]
fn extensions_map_to_decoders() {
    let table = [
        ("lz4", Some(Decoder::Lz4)),
        ("lzma", Some(Decoder::Lzma)),
        ("zst", Some(Decoder::Zstd)),
        ("br", Some(Decoder::Brotli)),
        ("gz", Some(Decoder::Gzip)),
        ("", Some(Decoder::None)),
        ("tar", Some(Decoder::None)),
        ("lzo", None),
        ("zip", None),
        ("LZ4", None),
    ];
    for (ext, want) in table {
        assert_eq!(Decoder::from_extension(ext), want, "extension {ext:?}");
    }
    for method in ALL_METHODS {
        assert_eq!(
            Decoder::from_extension(method.extension()),
            Some(method.decoder())
        );
        assert_eq!(Method::parse(method.name()), Some(method));
    }
    assert_eq!(Method::Zstd.extension(), "zst");
    assert_eq!(Method::None.extension(), "");
    assert_eq!(Method::parse("gzip"), None);
}

/// Every codec that can tell, with its stream of ~1 MiB of data.
fn checked_streams() -> Vec<(Decoder, Vec<u8>, Vec<u8>)> {
    let input = data(1 << 20, 7, 3);
    let mut out: Vec<_> = [Method::Lz4, Method::Zstd, Method::Lzma, Method::Brotli]
        .into_iter()
        .map(|m| (m.decoder(), encode(m, &input), input.clone()))
        .collect();
    out.push((Decoder::Gzip, gzip(&input), input));
    out
}

fn assert_stream_error(dec: Decoder, stream: &[u8], what: &str) {
    match decode(dec, stream) {
        Ok(out) => panic!(
            "{dec:?} {what}: decoded {} bytes without an error",
            out.len()
        ),
        Err(e) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ),
            "{dec:?} {what}: error of kind {:?}: {e}",
            e.kind()
        ),
    }
}

#[test]
fn a_cut_stream_is_an_error() {
    for (dec, stream, _) in checked_streams() {
        let len = stream.len();
        // Cuts in the header, the middle, and each of the last 12 bytes (trailer, checksum).
        let mut cuts = vec![0, 1, 3, 4, 5, 6, 7, 12, len / 3, len / 2];
        cuts.extend((1..=12).map(|back| len - back));
        for cut in cuts {
            assert_stream_error(dec, &stream[..cut], &format!("cut at {cut} of {len}"));
        }
    }
}

#[test]
fn an_empty_stream_is_an_error() {
    for dec in [
        Decoder::Lz4,
        Decoder::Lzma,
        Decoder::Zstd,
        Decoder::Brotli,
        Decoder::Gzip,
    ] {
        assert_stream_error(dec, b"", "empty");
    }
}

/// What decoding a damaged stream gave, for the damage tests.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Error,
    Original,
    Different,
}

fn outcome(dec: Decoder, stream: &[u8], input: &[u8]) -> Outcome {
    match decode(dec, stream) {
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ),
                "{dec:?}: error of kind {:?}: {e}",
                e.kind()
            );
            Outcome::Error
        }
        Ok(out) if out == input => Outcome::Original,
        Ok(_) => Outcome::Different,
    }
}

/// lz4, zstd and gzip carry a checksum of the content: a flipped byte is an error, unless it
/// only changed an encoding choice (say a match offset inside a run of zeros) and the content
/// came out intact. Never different content without an error. A flip in the checksum itself
/// is always an error.
#[test]
fn a_damaged_checksummed_stream_is_an_error() {
    for (dec, stream, input) in checked_streams() {
        if matches!(dec, Decoder::Lzma | Decoder::Brotli) {
            continue;
        }
        let len = stream.len();
        let mut errors = 0;
        let spots: Vec<usize> = (1..200)
            .map(|i| i * len / 200)
            .chain(len - 4..len)
            .collect();
        for &spot in &spots {
            let mut damaged = stream.clone();
            damaged[spot] ^= 0x10;
            match outcome(dec, &damaged, &input) {
                Outcome::Error => errors += 1,
                Outcome::Original => assert!(
                    spot < len - 4,
                    "{dec:?}: flip in the checksum at {spot} unnoticed"
                ),
                Outcome::Different => {
                    panic!("{dec:?}: byte {spot} of {len} flipped, wrong content without an error")
                }
            }
        }
        assert!(
            errors * 10 >= spots.len() * 9,
            "{dec:?}: only {errors} of {} flips noticed",
            spots.len()
        );
    }
}

/// LZMA-alone and brotli carry no checksum, so damage detection is not guaranteed:
/// - LZMA: the decoder must land exactly on the end-of-stream marker, which damage upsets;
///   every one of these 203 flips is an error.
/// - brotli: meta-blocks carry their lengths, so a flip inside coded data mostly decodes to
///   content of the right length but wrong bytes, *without an error*: only about a quarter
///   of these flips (48 of 203) are errors. Google's C decoder behaves the same. None of the
///   flips goes unseen in the sense of giving back the original.
///
/// Callers that need integrity for brotli objects must check it another way.
#[test]
fn a_damaged_unchecked_stream_fails_or_differs() {
    for (dec, stream, input) in checked_streams() {
        if !matches!(dec, Decoder::Lzma | Decoder::Brotli) {
            continue;
        }
        let len = stream.len();
        let spots: Vec<usize> = (1..200)
            .map(|i| i * len / 200)
            .chain(len - 4..len)
            .collect();
        let mut seen = Vec::new();
        for &spot in &spots {
            let mut damaged = stream.clone();
            damaged[spot] ^= 0x10;
            seen.push(outcome(dec, &damaged, &input));
        }
        let errors = seen.iter().filter(|o| **o == Outcome::Error).count();
        assert!(!seen.contains(&Outcome::Original), "{dec:?}: {seen:?}");
        if dec == Decoder::Lzma {
            assert_eq!(errors, spots.len(), "{dec:?}: {seen:?}");
        } else {
            assert!(
                errors * 5 >= spots.len(),
                "{dec:?}: only {errors} of {} flips noticed",
                spots.len()
            );
        }
    }
}

#[test]
fn the_error_repeats_on_later_reads() {
    for (dec, stream, _) in checked_streams() {
        let mut r =
            decoder(dec, io::Cursor::new(stream[..stream.len() / 2].to_vec())).expect("decoder");
        let mut sink = Vec::new();
        let first = r.read_to_end(&mut sink).expect_err("cut stream");
        let mut buf = [0u8; 100];
        let again = r.read(&mut buf).expect_err("still an error");
        assert_eq!(first.kind(), again.kind(), "{dec:?}");
    }
}

/// Hands out `data`, then fails with `ConnectionReset` instead of reporting the end.
struct BrokenSource {
    data: io::Cursor<Vec<u8>>,
}

impl Read for BrokenSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "network gone",
            )),
            n => Ok(n),
        }
    }
}

#[test]
fn errors_of_the_source_pass_through() {
    for (dec, stream, _) in checked_streams() {
        let source = BrokenSource {
            data: io::Cursor::new(stream[..stream.len() / 2].to_vec()),
        };
        let mut out = Vec::new();
        let err = decoder(dec, source)
            .expect("decoder")
            .read_to_end(&mut out)
            .expect_err("source fails");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{dec:?}: {err}");
    }
}

/// Accepts `room` bytes, then fails.
struct FullDisk {
    room: usize,
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_fails_the_encoder() {
    let input = data(300_000, 9, 3);
    for method in ALL_METHODS {
        for room in [0, 10, 1000] {
            let result = encoder(settings(method), FullDisk { room })
                .and_then(|mut enc| enc.write_all(&input).and_then(|()| enc.finish()));
            assert!(result.is_err(), "{} with room {room}", method.name());
        }
        // Even when all data fits in the encoder, finishing must report the failure.
        let result = encoder(settings(method), FullDisk { room: 2 })
            .and_then(|mut enc| enc.write_all(b"tiny").and_then(|()| enc.finish()));
        assert!(
            result.is_err(),
            "{} finishing into a full disk",
            method.name()
        );
    }
}

#[test]
fn flush_keeps_the_stream_valid() {
    let input = data(200_000, 11, 3);
    for method in ALL_METHODS {
        let mut enc = encoder(settings(method), Vec::new()).expect("encoder");
        for part in input.chunks(30_000) {
            enc.write_all(part).expect("write");
            enc.flush().expect("flush");
        }
        let stream = enc.finish().expect("finish");
        assert_eq!(
            decode(method.decoder(), &stream).expect("decodes"),
            input,
            "{}",
            method.name()
        );
    }
}

#[test]
fn gzip_reads_several_members() {
    let mut stream = gzip(b"first ");
    stream.extend(gzip(b"second"));
    assert_eq!(
        decode(Decoder::Gzip, &stream).expect("decodes"),
        b"first second"
    );
}

#[test]
fn zstd_reads_concatenated_frames() {
    let mut stream = encode(Method::Zstd, b"first ");
    stream.extend(encode(Method::Zstd, b"second"));
    assert_eq!(
        decode(Decoder::Zstd, &stream).expect("decodes"),
        b"first second"
    );
}

#[test]
fn lz4_stops_after_the_first_frame_and_skips_skippable_frames() {
    let mut stream = vec![0x5A, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3];
    stream.extend(encode(Method::Lz4, b"first"));
    stream.extend(encode(Method::Lz4, b"second"));
    assert_eq!(decode(Decoder::Lz4, &stream).expect("decodes"), b"first");
}

#[test]
fn none_passes_bytes_through() {
    let input = data(5000, 4, 0);
    assert_eq!(encode(Method::None, &input), input);
    assert_eq!(decode(Decoder::None, &input).expect("reads"), input);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Damaged input of any kind gives data or an error of the promised kinds, never a panic.
    #[test]
    fn damaged_input_never_panics(
        method in prop_oneof![Just(Method::Lz4), Just(Method::Lzma), Just(Method::Zstd), Just(Method::Brotli)],
        len in 0usize..40_000,
        seed in any::<u64>(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..8),
        cut in any::<usize>(),
    ) {
        let mut stream = encode(method, &data(len, seed, 3));
        for (at, mask) in flips {
            let at = at % stream.len();
            stream[at] ^= mask;
        }
        stream.truncate(stream.len() - cut % 3);
        if let Err(e) = decode(method.decoder(), &stream) {
            prop_assert!(matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof), "{e}");
        }
    }
}

#[test]
fn lz4_output_does_not_depend_on_thread_count() {
    // Several blocks of each flavour, and a short last block.
    let input: Vec<u8> = (0..4u8)
        .flat_map(|f| data(3 * lz4::BLOCK_SIZE + 1234, 7, f))
        .collect();
    let encode_threads = |threads: usize, chunk: usize| {
        let mut w = lz4::Lz4Writer::with_options(Vec::new(), lz4::BLOCK_SIZE, threads);
        for piece in input.chunks(chunk) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    };
    let serial = encode_threads(1, 100_000);
    for (threads, chunk) in [(2, 100_000), (4, 4096), (3, 1 << 20)] {
        assert!(
            encode_threads(threads, chunk) == serial,
            "{threads} threads differ"
        );
    }
    assert!(decode(Decoder::Lz4, &serial).unwrap() == input);
}

#[test]
fn lz4_parallel_writer_reports_a_failing_sink() {
    struct Failing(usize);
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 < buf.len() {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let input = data(8 * lz4::BLOCK_SIZE, 3, 0);
    let mut w = lz4::Lz4Writer::with_options(Failing(lz4::BLOCK_SIZE), lz4::BLOCK_SIZE, 2);
    let wrote = input.chunks(65536).try_for_each(|piece| w.write_all(piece));
    let finished = wrote.and_then(|()| w.finish().map(drop));
    assert!(finished.is_err(), "a sink that fails must fail the stream");
}
