//! Unit tests for what the official vectors do not reach: the zip codec against an independent
//! implementation (the `zip` crate), zip64, prepended data, directory entries, duplicate names;
//! `broken.rs` has every kind of damaged archive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod broken;

use std::io::{self, Cursor, Read, Write};

use super::*;
use crate::dirhash::{Hash1Builder, hash_zip};

pub(super) const PREFIX: &str = "example.com/m@v1.0.0/";

pub(super) fn module() -> ModuleVersion {
    ModuleVersion::new("example.com/m", "v1.0.0")
}

/// A zip written by our writer, with a go.mod and a file.
pub(super) fn sample(force_zip64: bool) -> Vec<u8> {
    let mut w = ZipWriter::new(Vec::new());
    if force_zip64 {
        w.force_zip64();
    }
    w.add_file(
        format!("{PREFIX}go.mod").as_bytes(),
        &mut &b"module example.com/m\n"[..],
    )
    .unwrap();
    w.add_file(format!("{PREFIX}a.go").as_bytes(), &mut &b"package a\n"[..])
        .unwrap();
    w.finish().unwrap()
}

pub(super) fn expected_hash(files: &[(&str, &[u8])]) -> String {
    let mut b = Hash1Builder::new();
    for (name, data) in files {
        b.add(name.as_bytes(), crate::dirhash::file_digest(*data).unwrap());
    }
    b.finish().unwrap()
}

pub(super) fn sample_hash() -> String {
    expected_hash(&[
        (&format!("{PREFIX}go.mod"), b"module example.com/m\n"),
        (&format!("{PREFIX}a.go"), b"package a\n"),
    ])
}

/// Replaces the only occurrence of `from` in `zip` by `to`, or every one when `all`.
pub(super) fn patch(zip: &mut [u8], from: &[u8], to: &[u8], all: bool) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= zip.len() {
        if &zip[i..i + from.len()] == from {
            zip[i..i + to.len()].copy_from_slice(to);
            n += 1;
            if !all {
                break;
            }
            i += from.len();
        } else {
            i += 1;
        }
    }
    n
}

/// Offsets of every central directory header.
pub(super) fn central_headers(zip: &[u8]) -> Vec<usize> {
    (0..zip.len().saturating_sub(4))
        .filter(|&i| zip[i..i + 4] == [b'P', b'K', 1, 2])
        .collect()
}

#[test]
fn round_trip_and_go_mod() {
    for zip64 in [false, true] {
        let zip = sample(zip64);
        let summary = check_zip(&module(), Cursor::new(&zip)).unwrap();
        assert_eq!(summary.hash, sample_hash(), "zip64={zip64}");
        assert_eq!(
            summary.go_mod.as_deref(),
            Some(&b"module example.com/m\n"[..])
        );
        assert_eq!(hash_zip(Cursor::new(&zip)).unwrap(), sample_hash());
    }
}

#[test]
fn deterministic_create() {
    struct F(&'static str, &'static [u8]);
    impl ModuleFile for F {
        fn path(&self) -> &[u8] {
            self.0.as_bytes()
        }
        fn kind(&self) -> io::Result<FileKind> {
            Ok(FileKind::Regular {
                size: self.1.len() as u64,
            })
        }
        fn open(&self) -> io::Result<Box<dyn Read + '_>> {
            Ok(Box::new(self.1))
        }
    }
    let files = [
        F("go.mod", b"module example.com/m\n"),
        F("a.go", b"package a\n"),
    ];
    let mut one = Vec::new();
    let created = create(&mut one, &module(), &files).unwrap();
    let mut two = Vec::new();
    create(&mut two, &module(), &files).unwrap();
    assert_eq!(one, two);
    assert_eq!(created.hash, sample_hash());
    assert_eq!(hash_zip(Cursor::new(&one)).unwrap(), sample_hash());

    let lie = [F("lie.go", b"package large")];
    struct Lie<'a>(&'a F);
    impl ModuleFile for Lie<'_> {
        fn path(&self) -> &[u8] {
            self.0.path()
        }
        fn kind(&self) -> io::Result<FileKind> {
            Ok(FileKind::Regular { size: 1 })
        }
        fn open(&self) -> io::Result<Box<dyn Read + '_>> {
            self.0.open()
        }
    }
    let err = create(io::sink(), &module(), &[Lie(&lie[0])]).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"file "lie.go" is larger than declared size"#
    );
}

#[test]
fn zip_crate_interop() {
    use ::zip::write::SimpleFileOptions;
    use ::zip::{CompressionMethod, ZipArchive};

    // Archives from an independent writer: stored, deflated, and zip64 records.
    for (method, large) in [
        (CompressionMethod::Stored, false),
        (CompressionMethod::Deflated, false),
        (CompressionMethod::Deflated, true),
    ] {
        let mut w = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default()
            .compression_method(method)
            .large_file(large);
        w.start_file(format!("{PREFIX}go.mod"), opts).unwrap();
        w.write_all(b"module example.com/m\n").unwrap();
        w.start_file(format!("{PREFIX}a.go"), opts).unwrap();
        w.write_all(b"package a\n").unwrap();
        let zip = w.finish().unwrap().into_inner();
        let summary = check_zip(&module(), Cursor::new(&zip)).unwrap();
        assert_eq!(summary.hash, sample_hash(), "{method:?} large={large}");
    }

    // Our archives read by the independent reader, including forced zip64 records.
    for zip64 in [false, true] {
        let zip = sample(zip64);
        let mut archive = ZipArchive::new(Cursor::new(&zip)).unwrap();
        let mut content = String::new();
        archive
            .by_name(&format!("{PREFIX}a.go"))
            .unwrap()
            .read_to_string(&mut content)
            .unwrap();
        assert_eq!(content, "package a\n");
    }
}

#[test]
fn directory_entries_are_hashed_as_empty_files() {
    let mut w = ZipWriter::new(Vec::new());
    w.add_directory(PREFIX.as_bytes()).unwrap();
    w.add_directory(format!("{PREFIX}sub/").as_bytes()).unwrap();
    w.add_file(
        format!("{PREFIX}sub/x.go").as_bytes(),
        &mut &b"package sub\n"[..],
    )
    .unwrap();
    let zip = w.finish().unwrap();
    let want = expected_hash(&[
        (PREFIX, b""),
        (&format!("{PREFIX}sub/"), b""),
        (&format!("{PREFIX}sub/x.go"), b"package sub\n"),
    ]);
    assert_eq!(hash_zip(Cursor::new(&zip)).unwrap(), want);
    let summary = check_zip(&module(), Cursor::new(&zip)).unwrap();
    assert_eq!(summary.hash, want);
    assert_eq!(summary.files, vec![format!("{PREFIX}sub/x.go")]);
}

#[test]
fn duplicate_names_hash_the_last_entry() {
    let mut w = ZipWriter::new(Vec::new());
    w.add_file(b"x", &mut &b"one"[..]).unwrap();
    w.add_file(b"x", &mut &b"two"[..]).unwrap();
    let zip = w.finish().unwrap();
    assert_eq!(
        hash_zip(Cursor::new(&zip)).unwrap(),
        expected_hash(&[("x", b"two"), ("x", b"two")])
    );
}

#[test]
fn prepended_data_is_skipped() {
    let mut zip = b"#!/bin/sh\nexit 0\n".to_vec();
    zip.extend_from_slice(&sample(false));
    assert_eq!(hash_zip(Cursor::new(&zip)).unwrap(), sample_hash());
}

#[test]
fn infer() {
    let zip = sample(false);
    assert_eq!(infer_module_version(Cursor::new(&zip)).unwrap(), module());
    let mut w = ZipWriter::new(Vec::new());
    w.add_file(b"example.com/m@v1.0.0/a.go", &mut &b""[..])
        .unwrap();
    w.add_file(b"example.com/m@v1.0.1/b.go", &mut &b""[..])
        .unwrap();
    let zip = w.finish().unwrap();
    assert!(matches!(
        infer_module_version(Cursor::new(&zip)),
        Err(ZipError::Infer(_))
    ));
    let empty = ZipWriter::new(Vec::new()).finish().unwrap();
    assert!(matches!(
        infer_module_version(Cursor::new(&empty)),
        Err(ZipError::Infer(_))
    ));
}
