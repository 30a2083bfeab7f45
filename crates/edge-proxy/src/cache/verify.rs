//! Checking a disk-tier entry's bytes against its meta line: size, SHA-256, and the `h1:` of
//! `.mod` (hash of the go.mod) and `.zip` (`dirhash::hash_zip` over the entry's byte range).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use strata_core::dirhash::{file_digest, hash_go_mod, hash_zip};

use super::{EntryKind, Meta};

/// Checks the bytes at `offset..offset+meta.size` of `file`.
pub(super) fn verify_entry(file: &mut File, meta: &Meta, offset: u64) -> Result<(), String> {
    let io = |e: io::Error| format!("read: {e}");
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let digest = file_digest((&mut *file).take(meta.size)).map_err(io)?;
    if hex::encode(digest) != meta.etag {
        return Err("SHA-256 does not match the recorded ETag".into());
    }
    let h1 = match meta.kind {
        EntryKind::Zip => {
            let section = Section::new(file.try_clone().map_err(io)?, offset, meta.size);
            Some(hash_zip(section).map_err(|e| format!("zip: {e}"))?)
        }
        EntryKind::Mod => {
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
            let mut body = Vec::new();
            (&mut *file)
                .take(meta.size)
                .read_to_end(&mut body)
                .map_err(io)?;
            Some(hash_go_mod(&body))
        }
        _ => None,
    };
    if h1.is_some() && h1 != meta.h1 {
        return Err(format!(
            "h1 {h1:?} does not match the recorded {:?}",
            meta.h1
        ));
    }
    Ok(())
}

/// A window `[start, start+len)` of a file, as its own seekable reader (for `hash_zip`).
pub fn section(file: File, start: u64, len: u64) -> impl Read + Seek {
    Section::new(file, start, len)
}

struct Section {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Section {
    fn new(file: File, start: u64, len: u64) -> Self {
        Self {
            file,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Section {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Section {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => i128::from(n),
            SeekFrom::End(d) => i128::from(self.len) + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start",
            ));
        }
        self.pos = u64::try_from(target).unwrap_or(u64::MAX);
        Ok(self.pos)
    }
}
