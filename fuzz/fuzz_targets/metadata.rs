//! `metadata.json`: any bytes give the document or a one-line error. A document that parses is
//! written back (as `backup-mark` does) and writing is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walg::layout::documents::ExtendedMetadata;

fuzz_target!(|data: &[u8]| {
    let mut meta = match ExtendedMetadata::from_json(data) {
        Ok(m) => m,
        Err(e) => {
            // Errors may quote the input, line breaks included; the command line prints every
            // error on one line with control characters escaped (cli::exit).
            let _ = e.to_string();
            return;
        }
    };
    meta.is_permanent = !meta.is_permanent;
    let first = meta.to_json().expect("parsed metadata serializes");
    let reread = ExtendedMetadata::from_json(&first).expect("walg reads the metadata it wrote");
    assert_eq!(
        reread.is_permanent, meta.is_permanent,
        "permanence lost on rewrite"
    );
    let second = reread.to_json().expect("parsed metadata serializes");
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second),
        "writing metadata.json is not a fixed point"
    );
});
