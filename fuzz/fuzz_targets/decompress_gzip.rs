//! The gzip decoder through `walg::compression::decoder` (with its uniform error rules), read
//! to the end or to 64 MiB of output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walg::compression::Decoder;

fuzz_target!(|data: &[u8]| {
    walg_fuzz::decode(Decoder::Gzip, data, 0);
});
