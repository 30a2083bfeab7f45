//! Module zips for the tests, built with the core zip writer (so they obey the module-zip rules
//! and hash as the go command would), zips with arbitrary entries for the refusal tests, and the
//! `h1:` hashes to compare with.

use std::io::{self, Read};
use std::path::Path;

use strata_core::version::ModuleVersion;
use strata_core::zip::{FileKind, ModuleFile, ZipWriter};

/// A module file held in memory.
#[derive(Debug, Clone)]
pub struct MemFile {
    /// Path relative to the module root.
    pub name: String,
    /// Content.
    pub data: Vec<u8>,
}

impl ModuleFile for MemFile {
    fn path(&self) -> &[u8] {
        self.name.as_bytes()
    }
    fn kind(&self) -> io::Result<FileKind> {
        Ok(FileKind::Regular {
            size: self.data.len() as u64,
        })
    }
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.data.as_slice()))
    }
}

/// A valid module zip of `path@version` with `files` (`(name, content)`, relative to the module
/// root), built by `strata_core::zip::create`; returns the bytes and the zip's `h1:`.
pub fn module_zip(path: &str, version: &str, files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let files: Vec<MemFile> = files
        .iter()
        .map(|(name, data)| MemFile {
            name: (*name).to_owned(),
            data: data.to_vec(),
        })
        .collect();
    let mut out = Vec::new();
    let created = strata_core::zip::create(&mut out, &ModuleVersion::new(path, version), &files)
        .unwrap_or_else(|e| panic!("creating {path}@{version}: {e}"));
    (out, created.hash)
}

/// A module zip of `path@version` with a go.mod naming the module and one Go file whose
/// content depends on `flavor` (different flavors, different h1).
pub fn simple_module(path: &str, version: &str, flavor: &str) -> (Vec<u8>, String) {
    let go_mod = format!("module {path}\n\ngo 1.21\n");
    let code = format!("package lib\n\n// Flavor is {flavor:?}.\nconst Flavor = {flavor:?}\n");
    module_zip(
        path,
        version,
        &[("go.mod", go_mod.as_bytes()), ("lib.go", code.as_bytes())],
    )
}

/// Writes the module zip of `module@version` from the tree in `dir` to `zip`, streaming;
/// returns its `h1:`.
pub fn module_zip_file(module: &str, version: &str, dir: &Path, zip: &Path) -> String {
    let out = io::BufWriter::new(std::fs::File::create(zip).expect("create the zip file"));
    strata_core::zip::create_from_dir(out, &ModuleVersion::new(module, version), dir)
        .unwrap_or_else(|e| panic!("creating {module}@{version}: {e}"))
        .hash
}

/// A zip with entries named exactly as given (duplicates, bad names and all), no checks.
pub fn raw_zip<N: AsRef<[u8]>, D: AsRef<[u8]>>(entries: &[(N, D)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Vec::new());
    for (name, data) in entries {
        w.add_file(name.as_ref(), &mut data.as_ref())
            .expect("zip entry");
    }
    w.finish().expect("finish zip")
}

/// The `h1:` hashes in a publish response's go.sum lines: (zip, go.mod).
pub fn go_sum_hashes(body: &str) -> (String, String) {
    let mut zip = None;
    let mut go_mod = None;
    for line in body.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, version, hash] = fields[..] {
            if version.ends_with("/go.mod") {
                go_mod = Some(hash.to_owned());
            } else {
                zip = Some(hash.to_owned());
            }
        }
    }
    (
        zip.unwrap_or_else(|| panic!("no zip line in {body:?}")),
        go_mod.unwrap_or_else(|| panic!("no go.mod line in {body:?}")),
    )
}

/// The `h1:` of zip bytes.
pub fn zip_h1(zip: &[u8]) -> String {
    strata_core::dirhash::hash_zip(io::Cursor::new(zip)).expect("hash zip")
}
