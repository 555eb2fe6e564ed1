//! Helpers shared by the integration tests (`crate::common` in each test module).
// Test fixtures read the environment (tool locations, knobs) like the command line does.
#![allow(clippy::disallowed_methods)]

pub mod crash;
pub mod faultproxy;
pub mod pg;
pub mod pgversions;
pub mod s3server;
pub mod segments;
pub mod tar;
pub mod tlscerts;

/// Borrows owned `(name, value)` settings in the shape the walg helpers take.
pub fn env_of(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}
