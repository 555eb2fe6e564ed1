//! The LZ4 frame reader (walg's own) through `walg::compression::decoder`, read to the end or
//! to 64 MiB of output. A stream that decodes is written again with walg's encoder and must
//! decode to the same bytes.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use walg::compression::{self, CompressionSettings, Decoder, Method, ZstdLevel};

fuzz_target!(|data: &[u8]| {
    let drained = walg_fuzz::decode(Decoder::Lz4, data, 1 << 20);
    let (None, Some(plain)) = (&drained.error, drained.kept) else {
        return;
    };
    let settings = CompressionSettings {
        method: Method::Lz4,
        zstd_level: ZstdLevel::Default,
    };
    let mut encoder = compression::encoder(settings, Vec::new()).expect("lz4 encoder");
    encoder.write_all(&plain).expect("lz4 encoding into memory");
    let encoded = encoder.finish().expect("lz4 frame end");
    let again = walg_fuzz::decode(Decoder::Lz4, &encoded, 1 << 20);
    assert!(
        again.error.is_none(),
        "walg's own frame does not decode: {:?}",
        again.error
    );
    assert_eq!(
        again.kept.as_deref(),
        Some(&plain[..]),
        "lz4 round trip changed the data"
    );
});
