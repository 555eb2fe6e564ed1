//! The JSON config file (`--config`, `WALG_CONFIG_PATH`, `~/.walg.json`) and the settings it
//! resolves to: any file content gives settings or a one-line error.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use walg::config::Settings;
use walg::config::sources::RawConfig;
use walg_fuzz::ScratchDir;

fuzz_target!(|data: &[u8]| {
    let scratch = ScratchDir::new();
    let path = scratch.path().join("walg.json");
    std::fs::write(&path, data).expect("writing the config file");
    let raw = match RawConfig::load(BTreeMap::new(), BTreeMap::new(), Some(path)) {
        Ok(raw) => raw,
        Err(e) => {
            // Errors may quote the input, line breaks included; the command line prints every
            // error on one line with control characters escaped (cli::exit).
            let _ = e.to_string();
            return;
        }
    };
    let _ = Settings::ignored_but_set(&raw);
    let _ = walg::config::log_settings(&raw);
    if let Err(e) = Settings::resolve(&raw) {
        // Errors may quote the input, line breaks included; the command line prints every
        // error on one line with control characters escaped (cli::exit).
        let _ = e.to_string();
    }
});
