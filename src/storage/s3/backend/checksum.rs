//! Full-object CRC32C checksums, as S3 stores and returns them (`x-amz-checksum-crc32c`: the
//! base64 of the big-endian CRC32C of the whole object).
//!
//! walg computes them itself and sends them as plain headers: the SDK's own checksums need
//! aws-chunked trailer uploads, which some S3-compatible stores reject.

use aws_sdk_s3::types::ChecksumType;
use crc_fast::{CrcAlgorithm, Digest};

/// A running CRC32C.
#[derive(Clone)]
pub(super) struct Crc32c(Digest);

impl Crc32c {
    pub fn new() -> Self {
        Crc32c(Digest::new(CrcAlgorithm::Crc32Iscsi))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The header value of everything seen so far.
    pub fn header(&self) -> String {
        let crc = u32::try_from(self.0.finalize()).unwrap_or(0);
        aws_smithy_types::base64::encode(crc.to_be_bytes())
    }
}

/// The CRC32C header value of `bytes`.
pub(super) fn crc32c_of(bytes: &[u8]) -> String {
    let mut crc = Crc32c::new();
    crc.update(bytes);
    crc.header()
}

/// The whole-object CRC32C an answer carries, if it is one: composite checksums of multipart
/// uploads (`<value>-<parts>`, or typed `COMPOSITE`) describe the parts, not the object.
pub(super) fn full_object(value: Option<&str>, kind: Option<&ChecksumType>) -> Option<String> {
    let value = value?.trim();
    if value.is_empty() || value.contains('-') || kind == Some(&ChecksumType::Composite) {
        return None;
    }
    Some(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value of "123456789" is 0xE3069283.
        assert_eq!(
            crc32c_of(b"123456789"),
            aws_smithy_types::base64::encode(0xE306_9283u32.to_be_bytes())
        );
        let mut split = Crc32c::new();
        split.update(b"1234");
        split.update(b"56789");
        assert_eq!(split.header(), crc32c_of(b"123456789"));
    }

    #[test]
    fn only_whole_object_checksums_are_used() {
        assert_eq!(
            full_object(Some("4waSgw=="), None).as_deref(),
            Some("4waSgw==")
        );
        assert_eq!(full_object(Some("4waSgw==-3"), None), None);
        assert_eq!(
            full_object(Some("4waSgw=="), Some(&ChecksumType::Composite)),
            None
        );
        assert_eq!(
            full_object(Some("4waSgw=="), Some(&ChecksumType::FullObject)).as_deref(),
            Some("4waSgw==")
        );
        assert_eq!(full_object(None, None), None);
    }
}
