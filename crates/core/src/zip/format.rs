//! Zip format constants (PKWARE APPNOTE) shared by the reader and the writer.

/// Local file header signature (`PK\x03\x04`).
pub(crate) const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
/// Central directory file header signature (`PK\x01\x02`).
pub(crate) const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
/// End of central directory record signature (`PK\x05\x06`).
pub(crate) const END_SIG: u32 = 0x0605_4b50;
/// Zip64 end of central directory locator signature (`PK\x06\x07`).
pub(crate) const END64_LOCATOR_SIG: u32 = 0x0706_4b50;
/// Zip64 end of central directory record signature (`PK\x06\x06`).
pub(crate) const END64_SIG: u32 = 0x0606_4b50;
/// The optional data descriptor signature (`PK\x07\x08`).
pub(crate) const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
/// Extra field id of the zip64 extended information.
pub(crate) const ZIP64_EXTRA_ID: u16 = 0x0001;

/// Fixed part of a local file header.
pub(crate) const LOCAL_HEADER_LEN: usize = 30;
/// Fixed part of a central directory header.
pub(crate) const CENTRAL_HEADER_LEN: usize = 46;
/// Fixed part of the end of central directory record.
pub(crate) const END_LEN: usize = 22;
/// The zip64 end locator.
pub(crate) const END64_LOCATOR_LEN: usize = 20;
/// Fixed part of the zip64 end record.
pub(crate) const END64_LEN: usize = 56;

/// Compression method 0: stored.
pub(crate) const METHOD_STORE: u16 = 0;
/// Compression method 8: deflate.
pub(crate) const METHOD_DEFLATE: u16 = 8;

/// Little-endian field reader over a byte slice; reads past the end yield zeros (callers check
/// lengths first, as Go's `readBuf` users do).
#[derive(Debug)]
pub(crate) struct Fields<'a>(pub(crate) &'a [u8]);

impl<'a> Fields<'a> {
    pub(crate) fn skip(&mut self, n: usize) {
        self.0 = self.0.get(n..).unwrap_or(&[]);
    }

    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        let head = self.take(N);
        a[..head.len()].copy_from_slice(head);
        a
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}
