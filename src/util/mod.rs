//! Leaf helpers shared by every layer.

pub mod secret;
