//! Damaged archives: size lies, bad CRCs, unsupported methods, truncated or corrupt data,
//! structural damage — each must give its own error, never a panic or unbounded work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;

use super::super::*;
use super::{PREFIX, central_headers, module, patch, sample};
use crate::dirhash::hash_zip;

#[test]
fn size_lies() {
    // Declared 4 bytes, holds 10: the data descriptor and the directory both say 4.
    let mut zip = ZipWriter::new(Vec::new());
    zip.add_file(format!("{PREFIX}a.go").as_bytes(), &mut &b"package a\n"[..])
        .unwrap();
    let mut zip = zip.finish().unwrap();
    assert_eq!(
        patch(&mut zip, &10u32.to_le_bytes(), &4u32.to_le_bytes(), true),
        2
    );
    let err = check_zip(&module(), Cursor::new(&zip))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "uncompressed size of file example.com/m@v1.0.0/a.go is larger than declared size (4 bytes)"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = unzip(dir.path(), &module(), Cursor::new(&zip))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is larger than declared size"), "{err}");

    // Declared 20 bytes, holds 10.
    let mut zip = sample(false);
    assert_eq!(
        patch(&mut zip, &10u32.to_le_bytes(), &20u32.to_le_bytes(), true),
        2
    );
    let err = check_zip(&module(), Cursor::new(&zip)).unwrap_err();
    assert!(
        matches!(
            err,
            ZipError::Entry {
                error: EntryError::SmallerThanDeclared {
                    declared: 20,
                    actual: 10
                },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn broken_entries() {
    // CRC-32 of "package a\n" changed in the descriptor and the directory.
    let mut zip = sample(false);
    let crc = {
        let mut c = flate2::Crc::new();
        c.update(b"package a\n");
        c.sum()
    };
    assert_eq!(
        patch(&mut zip, &crc.to_le_bytes(), &(crc ^ 1).to_le_bytes(), true),
        2
    );
    let err = check_zip(&module(), Cursor::new(&zip)).unwrap_err();
    assert!(
        matches!(
            err,
            ZipError::Entry {
                error: EntryError::Checksum,
                ..
            }
        ),
        "{err}"
    );

    // An unsupported compression method (12 = bzip2) in the directory.
    let mut zip = sample(false);
    let at = central_headers(&zip)[1];
    zip[at + 10..at + 12].copy_from_slice(&12u16.to_le_bytes());
    let err = check_zip(&module(), Cursor::new(&zip)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.0.0/a.go: zip: unsupported compression algorithm (method 12)"
    );

    // A directory entry that declares content.
    let mut w = ZipWriter::new(Vec::new());
    w.add_directory(format!("{PREFIX}d/").as_bytes()).unwrap();
    let mut zip = w.finish().unwrap();
    let at = central_headers(&zip)[0];
    zip[at + 24..at + 28].copy_from_slice(&5u32.to_le_bytes());
    let err = hash_zip(Cursor::new(&zip)).unwrap_err();
    assert!(
        matches!(
            err,
            ZipError::Entry {
                error: EntryError::DirectoryWithContent { declared: 5 },
                ..
            }
        ),
        "{err}"
    );

    // Compressed size cut short: the deflate stream ends early.
    let mut zip = sample(false);
    let at = central_headers(&zip)[1];
    zip[at + 20..at + 24].copy_from_slice(&2u32.to_le_bytes());
    let err = check_zip(&module(), Cursor::new(&zip)).unwrap_err();
    assert!(
        matches!(
            err,
            ZipError::Entry {
                error: EntryError::Truncated,
                ..
            }
        ),
        "{err}"
    );

    // Garbage instead of deflate data.
    let mut zip = sample(false);
    let at = 30 + PREFIX.len() + "go.mod".len();
    zip[at] = 0xff;
    let err = check_zip(&module(), Cursor::new(&zip)).unwrap_err();
    assert!(
        matches!(
            err,
            ZipError::Entry {
                error: EntryError::CorruptDeflate(_),
                ..
            }
        ),
        "{err}"
    );

    // Not a zip at all.
    let err = check_zip(&module(), Cursor::new(vec![0u8; 4096])).unwrap_err();
    assert!(err.to_string().contains("not a valid zip file"), "{err}");
}

#[test]
fn report_lists_every_violation() {
    let mut w = ZipWriter::new(Vec::new());
    w.add_file(b"noprefix", &mut &b""[..]).unwrap();
    w.add_file(format!("{PREFIX}GO.MOD").as_bytes(), &mut &b"x"[..])
        .unwrap();
    w.add_file(format!("{PREFIX}a.go").as_bytes(), &mut &b"package a\n"[..])
        .unwrap();
    w.add_file(format!("{PREFIX}b.go").as_bytes(), &mut &b"package b\n"[..])
        .unwrap();
    let mut zip = w.finish().unwrap();
    let crc = |d: &[u8]| {
        let mut c = flate2::Crc::new();
        c.update(d);
        c.sum()
    };
    let (a, b) = (crc(b"package a\n"), crc(b"package b\n"));
    patch(&mut zip, &a.to_le_bytes(), &(a ^ 1).to_le_bytes(), true);
    patch(&mut zip, &b.to_le_bytes(), &(b ^ 1).to_le_bytes(), true);
    let report = check_zip_report(&module(), Cursor::new(&zip)).unwrap();
    assert_eq!(
        report.violations(),
        vec![
            r#"noprefix: path does not have prefix "example.com/m@v1.0.0/""#.to_string(),
            "example.com/m@v1.0.0/GO.MOD: go.mod files must have lowercase names".to_string(),
            "example.com/m@v1.0.0/a.go: zip: checksum error".to_string(),
            "example.com/m@v1.0.0/b.go: zip: checksum error".to_string(),
        ]
    );
    assert_eq!(report.hash, None);
    // The strict check stops at the names.
    assert!(matches!(
        check_zip(&module(), Cursor::new(&zip)),
        Err(ZipError::InvalidFiles(_))
    ));
}

#[test]
fn damaged_archives_never_panic() {
    let mut w = ZipWriter::new(Vec::new());
    w.add_directory(PREFIX.as_bytes()).unwrap();
    w.add_file(
        format!("{PREFIX}go.mod").as_bytes(),
        &mut &b"module example.com/m\n"[..],
    )
    .unwrap();
    w.add_file(format!("{PREFIX}a.go").as_bytes(), &mut &b"package a\n"[..])
        .unwrap();
    let zip = w.finish().unwrap();
    let mut zip64 = ZipWriter::new(Vec::new());
    zip64.force_zip64();
    zip64
        .add_file(format!("{PREFIX}a.go").as_bytes(), &mut &b"package a\n"[..])
        .unwrap();
    let zip64 = zip64.finish().unwrap();
    let exercise = |data: &[u8]| {
        let _ = hash_zip(Cursor::new(data));
        let _ = check_zip_report(&module(), Cursor::new(data));
        let _ = infer_module_version(Cursor::new(data));
    };
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for original in [&zip, &zip64] {
        for len in 0..original.len() {
            exercise(&original[..len]);
        }
        for _ in 0..3000 {
            let mut data = original.clone();
            for _ in 0..1 + next() % 3 {
                let i = next() as usize % data.len();
                data[i] = match next() % 4 {
                    0 => 0xff,
                    1 => 0,
                    _ => next() as u8,
                };
            }
            exercise(&data);
        }
    }
}

#[test]
fn oversized_declarations_are_not_inflated() {
    let mut w = ZipWriter::new(Vec::new());
    w.add_file(b"noprefix", &mut &b"bomb"[..]).unwrap();
    w.add_file(format!("{PREFIX}a.go").as_bytes(), &mut &b"package a\n"[..])
        .unwrap();
    let mut zip = w.finish().unwrap();
    // "noprefix" now declares 4 GiB - 1 (a zip32 size Go accepts without zip64 data).
    let at = central_headers(&zip)[0];
    zip[at + 24..at + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    let report = check_zip_report(&module(), Cursor::new(&zip)).unwrap();
    assert_eq!(report.files.invalid.len(), 1);
    assert!(report.content.is_empty(), "{:?}", report.content);
    assert_eq!(report.hash, None);
}
