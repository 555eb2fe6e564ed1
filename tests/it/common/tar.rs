//! Hand-made tar streams, for the tests that feed walg's extraction hostile or odd archives.

/// One raw USTAR member; `name` and `link` are stored as given, however hostile. Directories
/// get mode 0700, everything else 0600.
pub fn raw(name: &str, typeflag: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_mode(if typeflag == b'5' { 0o700 } else { 0o600 });
    header.set_size(data.len() as u64);
    header.as_old_mut().linkflag = [typeflag];
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// `tar` with the two zero blocks that end an archive.
pub fn end(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend_from_slice(&[0; 1024]);
    tar
}
