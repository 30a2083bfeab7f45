//! The on-disk format of one fs object: a fixed-size text header carrying the SHA-256 of the
//! content (the etag), then the content.
//!
//! Keeping the etag inside the object file, rather than in a sidecar, means the single rename
//! that publishes an object publishes its etag with it: no reader can pair new content with an
//! old etag, and no crash can leave the two out of step. The header is ASCII
//! (`strata-object-v1 sha256=<64 hex>\n`), so `head -c 89` shows it and `tail -c +90` the content.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use crate::storage::ETag;

const MAGIC: &[u8] = b"strata-object-v1 sha256=";

/// Length of the header that precedes the content of every object file.
pub(crate) const HEADER_LEN: u64 = (MAGIC.len() + 64 + 1) as u64;

/// The header of an object file whose etag (content SHA-256, hex) is `etag`.
pub(crate) fn encode_header(etag: &ETag) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(etag.as_str().as_bytes());
    header.push(b'\n');
    header
}

/// A placeholder header, written first and overwritten once the content's hash is known.
pub(crate) fn placeholder_header() -> Vec<u8> {
    vec![b' '; HEADER_LEN as usize]
}

/// The etag in a header, or `InvalidData` if the bytes are not a header.
pub(crate) fn decode_header(header: &[u8]) -> io::Result<ETag> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, "not a strata object file");
    let rest = header.strip_prefix(MAGIC).ok_or_else(invalid)?;
    let hex_digest = rest.strip_suffix(b"\n").ok_or_else(invalid)?;
    if hex_digest.len() != 64
        || !hex_digest
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(invalid());
    }
    let hex_digest = std::str::from_utf8(hex_digest).map_err(|_| invalid())?;
    Ok(ETag::new(hex_digest))
}

/// Reads and decodes the header at the start of `reader` (blocking).
pub(crate) fn read_header(reader: &mut impl Read) -> io::Result<ETag> {
    let mut header = [0u8; HEADER_LEN as usize];
    reader.read_exact(&mut header)?;
    decode_header(&header)
}

/// Hashes content as it streams past.
#[derive(Debug, Default)]
pub(crate) struct ContentHasher {
    hasher: Sha256,
    len: u64,
}

impl ContentHasher {
    pub(crate) fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// Bytes hashed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The etag of the hashed content: its SHA-256 in lowercase hex.
    pub(crate) fn finish(self) -> ETag {
        ETag::new(hex::encode(self.hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut hasher = ContentHasher::default();
        hasher.update(b"hello");
        let header = encode_header(&hasher.finish());
        assert_eq!(header.len() as u64, HEADER_LEN);
        let etag = decode_header(&header).map(|e| e.as_str().to_owned()).ok();
        assert_eq!(
            etag.as_deref(),
            Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert!(decode_header(&placeholder_header()).is_err());
        assert!(decode_header(b"strata-object-v1 sha256=xyz\n").is_err());
    }
}
