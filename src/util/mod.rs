//! Leaf helpers shared by every layer.

pub mod pipe;
pub mod secret;
