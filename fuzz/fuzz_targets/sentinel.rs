//! The stop sentinel (`<name>_backup_stop_sentinel.json`): any bytes give a sentinel or a
//! one-line error. A sentinel that parses is written back as WAL-G writes it, and writing is a
//! fixed point: what walg writes, it reads back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walg::layout::documents::Sentinel;

fuzz_target!(|data: &[u8]| {
    let sentinel = match Sentinel::from_json(data) {
        Ok(s) => s,
        Err(e) => {
            // Errors may quote the input, line breaks included; the command line prints every
            // error on one line with control characters escaped (cli::exit).
            let _ = e.to_string();
            return;
        }
    };
    let _ = sentinel.check_delta_fields();
    let _ = sentinel.legacy_files_metadata();
    let first = sentinel.to_json().expect("a parsed sentinel serializes");
    let reread = Sentinel::from_json(&first).expect("walg reads the sentinel it wrote");
    let second = reread.to_json().expect("a parsed sentinel serializes");
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second),
        "writing the sentinel is not a fixed point"
    );
});
