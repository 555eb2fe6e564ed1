//! Helpers shared by the integration tests (`mod common;` in each test crate).
//!
//! Each test crate uses a different subset, so unused helpers are not warnings here.
#![allow(dead_code)]

pub mod pg;
pub mod s3server;
pub mod segments;
