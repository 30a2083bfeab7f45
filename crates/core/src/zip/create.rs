//! Creating a module zip from a file list (Go's `zip.Create`).

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::error::{CheckedFiles, ZipError};
use super::files::{ModuleFile, select};
use super::write::ZipWriter;
use super::{check_module, zip_prefix};
use crate::dirhash::Hash1Builder;
use crate::version::ModuleVersion;

/// What [`create`] put into a zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// Which files went in (`valid`, in zip order) and which were omitted, with reasons.
    /// `invalid` is always empty: any invalid file fails the creation.
    pub files: CheckedFiles,
    /// The `h1:` hash of the zip's content (what `hash_zip` of the output returns).
    pub hash: String,
}

/// Writes the module zip of `module` with `files` to `out` (Go's `zip.Create`).
///
/// The module is checked first (canonical version, `module.Check`), then the files with
/// [`super::check_files`]; any invalid file or size error fails before anything is written.
/// Valid files are written in input order as `<module>@<version>/<path>`, deflated, with fixed
/// timestamps and no directory entries, so equal input gives byte-identical zips. A file that
/// yields more bytes than its declared size fails the creation (`out` then holds a partial zip).
pub fn create<W: Write, F: ModuleFile>(
    out: W,
    module: &ModuleVersion,
    files: &[F],
) -> Result<Created, ZipError> {
    check_module(module)?;
    let selection = select(files);
    selection.report.err()?;
    let prefix = zip_prefix(module);
    let mut zip = ZipWriter::new(out);
    let mut hash = Hash1Builder::new();
    for (file, size) in &selection.valid {
        let path = String::from_utf8_lossy(file.path()).into_owned();
        let name = format!("{prefix}{path}");
        let reader = file
            .open()
            .map_err(|e| ZipError::io(format!("open {path}"), e))?;
        // One byte more than declared is enough to tell that the file grew.
        let mut limited = Hashing {
            inner: reader.take(size.saturating_add(1)),
            sha: Sha256::new(),
        };
        let written = zip
            .add_file(name.as_bytes(), &mut limited)
            .map_err(|e| ZipError::io(format!("writing {name}"), e))?;
        if written > *size {
            return Err(ZipError::FileLargerThanDeclared { path });
        }
        hash.add(name.into_bytes(), limited.sha.finalize().into());
    }
    zip.finish().map_err(|e| ZipError::io("writing zip", e))?;
    Ok(Created {
        files: selection.report,
        hash: hash.finish()?,
    })
}

/// Passes reads through while hashing them.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}
