//! Streaming one entry's data: locate it through its local header, inflate it, and verify it the
//! way Go's `archive/zip` does (never more bytes than declared, exactly the declared count at the
//! end, CRC-32 from the header or data descriptor), handing each decoded chunk to a sink.
//!
//! Memory is fixed: one input and one output buffer and the inflate state, reused across
//! entries; nothing is proportional to an entry's size.

use std::io::{self, Read, Seek, SeekFrom};

use flate2::{Decompress, FlushDecompress, Status};

use super::error::EntryError;
use super::format::{
    DATA_DESCRIPTOR_SIG, Fields, LOCAL_HEADER_LEN, LOCAL_HEADER_SIG, METHOD_DEFLATE, METHOD_STORE,
};
use super::read::Entry;

/// Flag bit 3: a data descriptor follows the data.
const FLAG_DATA_DESCRIPTOR: u16 = 0x08;
const BUF_LEN: usize = 64 << 10;

/// Why streaming an entry stopped.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The entry's data is broken.
    Entry(EntryError),
    /// Reading the zip failed.
    Io(io::Error),
    /// The sink failed (e.g. writing the extracted file).
    Sink(io::Error),
}

impl From<EntryError> for ReadFailure {
    fn from(e: EntryError) -> Self {
        ReadFailure::Entry(e)
    }
}

/// Reusable buffers and inflate state for streaming entries one after another.
pub(crate) struct EntryReader {
    inflate: Decompress,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl std::fmt::Debug for EntryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryReader").finish_non_exhaustive()
    }
}

/// Counts delivered bytes against the declared size and keeps the CRC-32.
struct Tally<'a> {
    declared: u64,
    count: u64,
    crc: flate2::Crc,
    sink: &'a mut dyn FnMut(&[u8]) -> io::Result<()>,
}

impl Tally<'_> {
    fn deliver(&mut self, chunk: &[u8]) -> Result<(), ReadFailure> {
        self.count += chunk.len() as u64;
        if self.count > self.declared {
            return Err(EntryError::LargerThanDeclared {
                declared: self.declared,
            }
            .into());
        }
        self.crc.update(chunk);
        (self.sink)(chunk).map_err(ReadFailure::Sink)
    }
}

impl EntryReader {
    pub(crate) fn new() -> Self {
        EntryReader {
            inflate: Decompress::new(false),
            input: vec![0; BUF_LEN],
            output: vec![0; BUF_LEN],
        }
    }

    /// Streams the decoded data of `e` from the `archive_size`-byte zip `r` into `sink`;
    /// returns the number of bytes delivered.
    pub(crate) fn stream<R: Read + Seek>(
        &mut self,
        r: &mut R,
        archive_size: u64,
        e: &Entry,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<u64, ReadFailure> {
        let body = self.body_offset(r, e)?;
        if e.is_dir() {
            // Go opens directories as empty, and rejects those that claim content.
            if e.uncompressed_size != 0 {
                return Err(EntryError::DirectoryWithContent {
                    declared: e.uncompressed_size,
                }
                .into());
            }
            return Ok(0);
        }
        if e.method != METHOD_STORE && e.method != METHOD_DEFLATE {
            return Err(EntryError::UnsupportedMethod(e.method).into());
        }
        r.seek(SeekFrom::Start(body)).map_err(ReadFailure::Io)?;
        let available = e.compressed_size.min(archive_size.saturating_sub(body));
        let mut data = r.by_ref().take(available);
        let mut tally = Tally {
            declared: e.uncompressed_size,
            count: 0,
            crc: flate2::Crc::new(),
            sink,
        };
        if e.method == METHOD_STORE {
            loop {
                let n = read_some(&mut data, &mut self.output)?;
                if n == 0 {
                    break;
                }
                tally.deliver(&self.output[..n])?;
            }
        } else {
            self.inflate_into(&mut data, &mut tally)?;
        }
        if tally.count != e.uncompressed_size {
            return Err(EntryError::SmallerThanDeclared {
                declared: e.uncompressed_size,
                actual: tally.count,
            }
            .into());
        }
        let crc = tally.crc.sum();
        if e.flags & FLAG_DATA_DESCRIPTOR != 0 {
            let descriptor_crc = read_descriptor_crc(r, body.saturating_add(e.compressed_size))?;
            if descriptor_crc != e.crc32 || crc != e.crc32 {
                return Err(EntryError::Checksum.into());
            }
        } else if e.crc32 != 0 && crc != e.crc32 {
            return Err(EntryError::Checksum.into());
        }
        Ok(tally.count)
    }

    /// Go's `findBodyOffset`: the data starts after the local header's name and extra field.
    fn body_offset<R: Read + Seek>(&mut self, r: &mut R, e: &Entry) -> Result<u64, ReadFailure> {
        r.seek(SeekFrom::Start(e.header_offset))
            .map_err(ReadFailure::Io)?;
        let mut h = [0u8; LOCAL_HEADER_LEN];
        let n = read_up_to(r, &mut h)?;
        let mut b = Fields(&h);
        if n < LOCAL_HEADER_LEN || b.u32() != LOCAL_HEADER_SIG {
            return Err(EntryError::LocalHeader.into());
        }
        b.skip(22);
        let name_len = u64::from(b.u16());
        let extra_len = u64::from(b.u16());
        Ok(e.header_offset
            .saturating_add(LOCAL_HEADER_LEN as u64 + name_len + extra_len))
    }

    fn inflate_into<R: Read>(
        &mut self,
        data: &mut R,
        tally: &mut Tally<'_>,
    ) -> Result<(), ReadFailure> {
        self.inflate.reset(false);
        let (mut start, mut end, mut eof) = (0, 0, false);
        loop {
            if start == end && !eof {
                end = read_some(data, &mut self.input)?;
                start = 0;
                eof = end == 0;
            }
            let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(
                    &self.input[start..end],
                    &mut self.output,
                    FlushDecompress::None,
                )
                .map_err(|e| EntryError::CorruptDeflate(e.to_string()))?;
            let consumed = (self.inflate.total_in() - in_before) as usize;
            let produced = (self.inflate.total_out() - out_before) as usize;
            start += consumed;
            tally.deliver(&self.output[..produced])?;
            if status == Status::StreamEnd {
                // Like Go, bytes after the end of the deflate stream are ignored.
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                if eof {
                    return Err(EntryError::Truncated.into());
                }
                if start < end {
                    return Err(
                        EntryError::CorruptDeflate("inflate made no progress".into()).into(),
                    );
                }
            }
        }
    }
}

/// Reads the CRC-32 from the data descriptor at `offset`. As in Go, the descriptor may lack its
/// signature, and it must be complete (12 bytes after the optional signature).
fn read_descriptor_crc<R: Read + Seek>(r: &mut R, offset: u64) -> Result<u32, ReadFailure> {
    r.seek(SeekFrom::Start(offset)).map_err(ReadFailure::Io)?;
    let mut d = [0u8; 16];
    let n = read_up_to(r, &mut d)?;
    let mut b = Fields(&d);
    let first = b.u32();
    let (needed, crc) = if first == DATA_DESCRIPTOR_SIG {
        (16, b.u32())
    } else {
        (12, first)
    };
    if n < needed {
        return Err(EntryError::Truncated.into());
    }
    Ok(crc)
}

/// One `read`, retried on interruption.
fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, ReadFailure> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFailure::Io(e)),
        }
    }
}

/// Fills as much of `buf` as the reader has; returns how much.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, ReadFailure> {
    let mut n = 0;
    while n < buf.len() {
        let k = read_some(r, &mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}
