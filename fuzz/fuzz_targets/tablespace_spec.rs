//! The tablespace spec (the sentinel's `Spec`, a `--restore-spec` file): any bytes give a spec
//! or a one-line error; a spec that parses survives a write and a read unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walg::layout::documents::TablespaceSpec;

fuzz_target!(|data: &[u8]| {
    let spec = match TablespaceSpec::from_json(data) {
        Ok(s) => s,
        Err(e) => {
            // Errors may quote the input, line breaks included; the command line prints every
            // error on one line with control characters escaped (cli::exit).
            let _ = e.to_string();
            return;
        }
    };
    for t in &spec.tablespaces {
        assert!(spec.find(&t.name).is_some());
    }
    let written = serde_json::to_vec(&spec).expect("a parsed spec serializes");
    let reread = TablespaceSpec::from_json(&written).expect("walg reads the spec it wrote");
    assert_eq!(reread, spec, "the tablespace spec changed on a round trip");
});
