//! A minimal streaming zip writer: deflated file entries (and stored directory entries) written
//! in call order, with fixed timestamps, so the same input always yields the same bytes.
//!
//! Entries are streamed: each local header is followed by the deflated data and a data
//! descriptor with the CRC-32 and sizes, exactly as Go's `archive/zip` writer does, so the output
//! needs only [`Write`] (a file, a socket, an upload) and memory stays constant. Zip64 records are
//! emitted only when a size, offset or count needs them — never for a module zip within
//! [`super::MAX_ZIP_FILE`].
//!
//! This writer does no module validation; [`super::create`] is the entry point for module zips.

use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::format::{
    CENTRAL_HEADER_SIG, DATA_DESCRIPTOR_SIG, END_SIG, END64_LOCATOR_SIG, END64_SIG,
    LOCAL_HEADER_SIG, METHOD_DEFLATE, METHOD_STORE, ZIP64_EXTRA_ID,
};

/// MS-DOS date of every entry: 1980-01-01 (time 00:00:00), the earliest the format can express.
const DOS_DATE: u16 = (1 << 5) | 1;
/// Flag bit 3: sizes and CRC follow the data in a data descriptor.
const FLAG_DATA_DESCRIPTOR: u16 = 0x08;
/// Flag bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 0x800;
const U32_MAX: u64 = u32::MAX as u64;

/// Writes a zip archive entry by entry; call [`ZipWriter::finish`] to write the central
/// directory.
#[derive(Debug)]
pub struct ZipWriter<W: Write> {
    out: Counting<W>,
    entries: Vec<Record>,
    buf: Vec<u8>,
    force_zip64: bool,
}

#[derive(Debug)]
struct Record {
    name: Vec<u8>,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
    is_dir: bool,
}

impl<W: Write> ZipWriter<W> {
    /// Starts an archive at the current position of `out`.
    pub fn new(out: W) -> Self {
        ZipWriter {
            out: Counting {
                inner: out,
                count: 0,
            },
            entries: Vec::new(),
            buf: vec![0; 64 << 10],
            force_zip64: false,
        }
    }

    /// Writes all size fields in zip64 form even when they fit in 32 bits (for tests of readers).
    #[cfg(test)]
    pub(crate) fn force_zip64(&mut self) {
        self.force_zip64 = true;
    }

    /// Adds a deflated file entry named `name` with everything `data` yields; returns the
    /// number of uncompressed bytes written.
    pub fn add_file(&mut self, name: &[u8], data: &mut dyn Read) -> io::Result<u64> {
        let offset = self.out.count;
        let flags = FLAG_DATA_DESCRIPTOR | utf8_flag(name);
        self.write_local_header(name, flags, METHOD_DEFLATE)?;
        let start = self.out.count;
        let mut crc = flate2::Crc::new();
        let mut uncompressed = 0u64;
        let mut encoder = DeflateEncoder::new(&mut self.out, Compression::default());
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            crc.update(&self.buf[..n]);
            uncompressed += n as u64;
            encoder.write_all(&self.buf[..n])?;
        }
        encoder.finish()?;
        let compressed = self.out.count - start;
        let zip64 = self.force_zip64 || compressed >= U32_MAX || uncompressed >= U32_MAX;
        let mut d = Vec::with_capacity(24);
        put32(&mut d, DATA_DESCRIPTOR_SIG);
        put32(&mut d, crc.sum());
        if zip64 {
            put64(&mut d, compressed);
            put64(&mut d, uncompressed);
        } else {
            put32(&mut d, compressed as u32);
            put32(&mut d, uncompressed as u32);
        }
        self.out.write_all(&d)?;
        self.entries.push(Record {
            name: name.to_vec(),
            flags,
            method: METHOD_DEFLATE,
            crc: crc.sum(),
            compressed,
            uncompressed,
            offset,
            is_dir: false,
        });
        Ok(uncompressed)
    }

    /// Adds an empty stored directory entry; `name` should end in `/`.
    pub fn add_directory(&mut self, name: &[u8]) -> io::Result<()> {
        let offset = self.out.count;
        let flags = utf8_flag(name);
        self.write_local_header(name, flags, METHOD_STORE)?;
        self.entries.push(Record {
            name: name.to_vec(),
            flags,
            method: METHOD_STORE,
            crc: 0,
            compressed: 0,
            uncompressed: 0,
            offset,
            is_dir: true,
        });
        Ok(())
    }

    fn write_local_header(&mut self, name: &[u8], flags: u16, method: u16) -> io::Result<()> {
        let name_len = u16::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "zip entry name too long"))?;
        let mut h = Vec::with_capacity(30 + name.len());
        put32(&mut h, LOCAL_HEADER_SIG);
        put16(&mut h, 20); // version needed: 2.0 (deflate)
        put16(&mut h, flags);
        put16(&mut h, method);
        put16(&mut h, 0); // time
        put16(&mut h, DOS_DATE);
        put32(&mut h, 0); // CRC-32, sizes: in the data descriptor (or zero for directories)
        put32(&mut h, 0);
        put32(&mut h, 0);
        put16(&mut h, name_len);
        put16(&mut h, 0); // extra length
        h.extend_from_slice(name);
        self.out.write_all(&h)
    }

    /// Writes the central directory and end records; returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        let dir_start = self.out.count;
        for e in &self.entries {
            let mut extra = Vec::new();
            let big = |v: u64| self.force_zip64 || v >= U32_MAX;
            if big(e.uncompressed) || big(e.compressed) || big(e.offset) {
                let mut field = Vec::new();
                if big(e.uncompressed) {
                    put64(&mut field, e.uncompressed);
                }
                if big(e.compressed) {
                    put64(&mut field, e.compressed);
                }
                if big(e.offset) {
                    put64(&mut field, e.offset);
                }
                put16(&mut extra, ZIP64_EXTRA_ID);
                put16(&mut extra, field.len() as u16);
                extra.extend_from_slice(&field);
            }
            let clamp = |v: u64| if big(v) { u32::MAX } else { v as u32 };
            let version = if extra.is_empty() { 20 } else { 45 };
            let mode: u32 = if e.is_dir { 0o40755 } else { 0o100644 };
            let mut h = Vec::with_capacity(46 + e.name.len() + extra.len());
            put32(&mut h, CENTRAL_HEADER_SIG);
            put16(&mut h, 0x0300 | version); // made by: Unix
            put16(&mut h, version);
            put16(&mut h, e.flags);
            put16(&mut h, e.method);
            put16(&mut h, 0);
            put16(&mut h, DOS_DATE);
            put32(&mut h, e.crc);
            put32(&mut h, clamp(e.compressed));
            put32(&mut h, clamp(e.uncompressed));
            put16(&mut h, e.name.len() as u16);
            put16(&mut h, extra.len() as u16);
            put16(&mut h, 0); // comment length
            put16(&mut h, 0); // disk number
            put16(&mut h, 0); // internal attributes
            put32(&mut h, (mode << 16) | (u32::from(e.is_dir) * 0x10));
            put32(&mut h, clamp(e.offset));
            h.extend_from_slice(&e.name);
            h.extend_from_slice(&extra);
            self.out.write_all(&h)?;
        }
        let dir_end = self.out.count;
        let (count, size) = (self.entries.len() as u64, dir_end - dir_start);
        let mut t = Vec::with_capacity(98);
        let zip64 = self.force_zip64 || count >= 0xffff || size >= U32_MAX || dir_start >= U32_MAX;
        if zip64 {
            put32(&mut t, END64_SIG);
            put64(&mut t, 44); // size of the rest of this record
            put16(&mut t, 0x032d);
            put16(&mut t, 45);
            put32(&mut t, 0);
            put32(&mut t, 0);
            put64(&mut t, count);
            put64(&mut t, count);
            put64(&mut t, size);
            put64(&mut t, dir_start);
            put32(&mut t, END64_LOCATOR_SIG);
            put32(&mut t, 0);
            put64(&mut t, dir_end);
            put32(&mut t, 1);
        }
        put32(&mut t, END_SIG);
        put16(&mut t, 0);
        put16(&mut t, 0);
        let count16 = if zip64 { 0xffff } else { count as u16 };
        put16(&mut t, count16);
        put16(&mut t, count16);
        put32(&mut t, if zip64 { u32::MAX } else { size as u32 });
        put32(&mut t, if zip64 { u32::MAX } else { dir_start as u32 });
        put16(&mut t, 0); // comment length
        self.out.write_all(&t)?;
        self.out.flush()?;
        Ok(self.out.inner)
    }
}

fn utf8_flag(name: &[u8]) -> u16 {
    if !name.is_ascii() && std::str::from_utf8(name).is_ok() {
        FLAG_UTF8
    } else {
        0
    }
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// A writer that counts the bytes written through it (the archive offset).
#[derive(Debug)]
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
