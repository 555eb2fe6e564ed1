//! `files_metadata.json`: any bytes give the document or a one-line error. A document that
//! parses is written back and writing is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walg::layout::documents::FilesMetadata;

fuzz_target!(|data: &[u8]| {
    let files = match FilesMetadata::from_json(data) {
        Ok(f) => f,
        Err(e) => {
            // Errors may quote the input, line breaks included; the command line prints every
            // error on one line with control characters escaped (cli::exit).
            let _ = e.to_string();
            return;
        }
    };
    let first = files.to_json().expect("parsed files metadata serializes");
    let reread = FilesMetadata::from_json(&first).expect("walg reads what it wrote");
    assert_eq!(reread, files, "files_metadata.json changed on a round trip");
    let second = reread.to_json().expect("parsed files metadata serializes");
    assert_eq!(
        first, second,
        "writing files_metadata.json is not a fixed point"
    );
});
