//! Reading a zip's central directory with the semantics of Go's `archive/zip` reader.
//!
//! Hand-written rather than taken from the `zip` crate because module checksums depend on which
//! archives Go accepts and how it reads them: the end-record search windows, the zip64 rules
//! (including Go's quirks, such as reading directory headers until one fails and comparing the
//! entry count only modulo 2^16, or the prepended-data `baseOffset` heuristic), duplicate names
//! kept as separate entries, and entry names as raw bytes. It also keeps memory bounded: only
//! the directory metadata is held, and entry data is streamed by [`super::entry`].

use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use super::error::ZipError;
use super::format::{
    CENTRAL_HEADER_LEN, CENTRAL_HEADER_SIG, END_LEN, END_SIG, END64_LEN, END64_LOCATOR_LEN,
    END64_LOCATOR_SIG, END64_SIG, Fields, ZIP64_EXTRA_ID,
};

/// One central directory entry: what is needed to find, decode and verify its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The name exactly as stored.
    pub(crate) name: Vec<u8>,
    pub(crate) flags: u16,
    pub(crate) method: u16,
    pub(crate) crc32: u32,
    pub(crate) compressed_size: u64,
    pub(crate) uncompressed_size: u64,
    /// Offset of the local header in the file (prepended data included).
    pub(crate) header_offset: u64,
}

impl Entry {
    /// Whether the name ends in `/` (Go reads such entries as empty directories).
    pub(crate) fn is_dir(&self) -> bool {
        self.name.last() == Some(&b'/')
    }
}

/// The entries of an archive, in central directory order.
#[derive(Debug)]
pub(crate) struct Archive {
    /// Size of the whole zip file.
    pub(crate) size: u64,
    pub(crate) entries: Vec<Entry>,
}

struct End {
    records: u64,
    dir_size: u64,
    dir_offset: u64,
}

fn io_err(e: io::Error) -> ZipError {
    ZipError::io("reading zip", e)
}

/// Reads `len` bytes at `offset`; `None` if the file ends first.
fn read_at<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    len: usize,
) -> Result<Option<Vec<u8>>, ZipError> {
    r.seek(SeekFrom::Start(offset)).map_err(io_err)?;
    let mut buf = Vec::with_capacity(len);
    r.by_ref()
        .take(len as u64)
        .read_to_end(&mut buf)
        .map_err(io_err)?;
    Ok((buf.len() == len).then_some(buf))
}

/// Reads the central directory of the `size`-byte zip in `r` (Go's `zip.NewReader`).
pub(crate) fn read_archive<R: Read + Seek>(r: &mut R, size: u64) -> Result<Archive, ZipError> {
    let (end, base_offset, start) = read_directory_end(r, size)?;
    r.seek(SeekFrom::Start(start)).map_err(io_err)?;
    let mut dir = BufReader::with_capacity(64 << 10, r.by_ref().take(size.saturating_sub(start)));
    let mut entries = Vec::new();
    // The entry count may be truncated to 16 bits: read headers until one fails, and only then
    // compare the counts modulo 2^16.
    let last = loop {
        match read_directory_header(&mut dir)? {
            Ok(mut e) => {
                e.header_offset = e.header_offset.wrapping_add_signed(base_offset);
                entries.push(e);
            }
            Err(why) => break why,
        }
    };
    if entries.len() as u16 != end.records as u16 {
        return Err(ZipError::Format(last));
    }
    Ok(Archive { size, entries })
}

/// Finds and decodes the end records; returns them, the offset of prepended data (negative when
/// the records overstate the directory, which Go tolerates) and where the directory starts.
fn read_directory_end<R: Read + Seek>(r: &mut R, size: u64) -> Result<(End, i64, u64), ZipError> {
    let mut found = None;
    for (i, window) in [1024u64, 65 * 1024].into_iter().enumerate() {
        let window = window.min(size);
        let Some(buf) = read_at(r, size - window, window as usize)? else {
            return Err(ZipError::Format("file shorter than its size"));
        };
        if let Some(p) = find_end_signature(&buf) {
            found = Some((buf[p..].to_vec(), size - window + p as u64));
            break;
        }
        if i == 1 || window == size {
            return Err(ZipError::Format(
                "end of central directory record not found",
            ));
        }
    }
    let Some((buf, mut end_offset)) = found else {
        return Err(ZipError::Format(
            "end of central directory record not found",
        ));
    };
    let mut b = Fields(&buf[4..]);
    b.skip(6); // disk numbers, records on this disk
    let mut end = End {
        records: u64::from(b.u16()),
        dir_size: u64::from(b.u32()),
        dir_offset: u64::from(b.u32()),
    };
    let comment_len = usize::from(b.u16());
    if comment_len > b.len() {
        return Err(ZipError::CommentLength);
    }
    // Go compares the 32-bit directory size with 0xffff here; kept for identical behaviour.
    if (end.records == 0xffff || end.dir_size == 0xffff || end.dir_offset == 0xffff_ffff)
        && let Some(p) = find_directory64_end(r, end_offset)?
    {
        end_offset = p;
        read_directory64_end(r, p, &mut end)?;
    }
    if end.dir_size > i64::MAX as u64 || end.dir_offset > i64::MAX as u64 {
        return Err(ZipError::Format("directory size or offset out of range"));
    }
    // Go's int64 arithmetic, wrapping included.
    let mut base = (end_offset as i64)
        .wrapping_sub(end.dir_size as i64)
        .wrapping_sub(end.dir_offset as i64);
    let dir_at = base.wrapping_add(end.dir_offset as i64);
    if dir_at < 0 || dir_at as u64 >= size {
        return Err(ZipError::Format("central directory offset out of range"));
    }
    // Prepended data (a self-extracting stub, a script): but if a directory header is found
    // where the record says without the prefix, the record is right after all.
    if base > 0 {
        r.seek(SeekFrom::Start(end.dir_offset)).map_err(io_err)?;
        let mut probe = BufReader::new(r.by_ref().take(size.saturating_sub(end.dir_offset)));
        if matches!(read_directory_header(&mut probe), Ok(Ok(_))) {
            base = 0;
        }
    }
    let start = if base == 0 {
        end.dir_offset
    } else {
        dir_at as u64
    };
    Ok((end, base, start))
}

/// The last `PK\x05\x06` in `b` with room for the record; like Go, a record whose comment runs
/// past the end of the window stops the search.
fn find_end_signature(b: &[u8]) -> Option<usize> {
    let last = b.len().checked_sub(END_LEN)?;
    for i in (0..=last).rev() {
        if b[i..i + 4] == END_SIG.to_le_bytes() {
            let n = usize::from(u16::from_le_bytes([b[i + END_LEN - 2], b[i + END_LEN - 1]]));
            return (n + END_LEN + i <= b.len()).then_some(i);
        }
    }
    None
}

/// The offset of the zip64 end record, if a valid zip64 locator precedes the end record.
fn find_directory64_end<R: Read + Seek>(
    r: &mut R,
    end_offset: u64,
) -> Result<Option<u64>, ZipError> {
    let Some(loc) = end_offset.checked_sub(END64_LOCATOR_LEN as u64) else {
        return Ok(None);
    };
    let Some(buf) = read_at(r, loc, END64_LOCATOR_LEN)? else {
        return Err(ZipError::Format("truncated zip64 locator"));
    };
    let mut b = Fields(&buf);
    if b.u32() != END64_LOCATOR_SIG || b.u32() != 0 {
        return Ok(None);
    }
    let p = b.u64();
    if b.u32() != 1 || p > i64::MAX as u64 {
        return Ok(None);
    }
    Ok(Some(p))
}

fn read_directory64_end<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    end: &mut End,
) -> Result<(), ZipError> {
    let Some(buf) = read_at(r, offset, END64_LEN)? else {
        return Err(ZipError::Format(
            "truncated zip64 end of central directory record",
        ));
    };
    let mut b = Fields(&buf);
    if b.u32() != END64_SIG {
        return Err(ZipError::Format(
            "bad zip64 end of central directory signature",
        ));
    }
    b.skip(12 + 8 + 8); // record size, versions, disk numbers, records on this disk
    end.records = b.u64();
    end.dir_size = b.u64();
    end.dir_offset = b.u64();
    Ok(())
}

/// Reads one central directory header. The outer error is fatal; the inner one (a bad
/// signature, a header cut short, unusable zip64 data) ends the directory, as in Go.
fn read_directory_header<B: BufRead>(r: &mut B) -> Result<Result<Entry, &'static str>, ZipError> {
    let mut fixed = [0u8; CENTRAL_HEADER_LEN];
    match read_full(r, &mut fixed)? {
        Fill::Full => {}
        Fill::Empty => return Err(ZipError::Format("central directory ends early")),
        Fill::Partial => return Ok(Err("truncated central directory header")),
    }
    let mut b = Fields(&fixed);
    if b.u32() != CENTRAL_HEADER_SIG {
        return Ok(Err("bad central directory header signature"));
    }
    b.skip(4); // versions
    let flags = b.u16();
    let method = b.u16();
    b.skip(4); // time, date
    let crc32 = b.u32();
    let compressed = b.u32();
    let uncompressed = b.u32();
    let name_len = usize::from(b.u16());
    let extra_len = usize::from(b.u16());
    let comment_len = usize::from(b.u16());
    b.skip(8); // disk number, internal and external attributes
    let offset = b.u32();
    let mut var = vec![0u8; name_len + extra_len + comment_len];
    match read_full(r, &mut var)? {
        Fill::Full => {}
        Fill::Empty => return Err(ZipError::Format("central directory ends early")),
        Fill::Partial => return Ok(Err("truncated central directory header")),
    }
    let extra = &var[name_len..name_len + extra_len];
    let mut e = Entry {
        name: var[..name_len].to_vec(),
        flags,
        method,
        crc32,
        compressed_size: u64::from(compressed),
        uncompressed_size: u64::from(uncompressed),
        header_offset: u64::from(offset),
    };
    let (mut need_u, mut need_c, mut need_off) = (
        uncompressed == u32::MAX,
        compressed == u32::MAX,
        offset == u32::MAX,
    );
    let mut x = Fields(extra);
    while x.len() >= 4 {
        let tag = x.u16();
        let size = usize::from(x.u16());
        if x.len() < size {
            break;
        }
        let mut field = Fields(x.take(size));
        if tag != ZIP64_EXTRA_ID {
            continue;
        }
        // Only the fields whose 32-bit value is saturated are present, in this order.
        for (need, value) in [
            (&mut need_u, &mut e.uncompressed_size),
            (&mut need_c, &mut e.compressed_size),
            (&mut need_off, &mut e.header_offset),
        ] {
            if *need {
                *need = false;
                if field.len() < 8 {
                    return Ok(Err("short zip64 extra field"));
                }
                *value = field.u64();
            }
        }
    }
    // An uncompressed size of exactly 2^32-1 without zip64 data is accepted (old zip32 files);
    // a saturated compressed size or offset is not.
    let _ = need_u;
    if need_c || need_off {
        return Ok(Err("missing zip64 sizes"));
    }
    Ok(Ok(e))
}

enum Fill {
    Full,
    Empty,
    Partial,
}

/// `io.ReadFull` with its three outcomes.
fn read_full<B: BufRead>(r: &mut B, buf: &mut [u8]) -> Result<Fill, ZipError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(if n == buf.len() {
        Fill::Full
    } else if n == 0 {
        Fill::Empty
    } else {
        Fill::Partial
    })
}
