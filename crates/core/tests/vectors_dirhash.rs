//! The official `h1:` vectors: `dirhash.json` (Hash1, HashDir, HashZip, the newline error, the
//! empty hash, TestCreateFromDirSpecial) and the go.mod hashes of `gosum_examples.json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::Cursor;

use strata_core::dirhash::{HashError, hash_dir, hash_go_mod, hash_zip, hash1};
use strata_core::version::ModuleVersion;
use strata_core::zip::{ZipWriter, create_from_dir};

/// `(name, content)` pairs of a `files` object.
fn files(v: &serde_json::Value) -> Vec<(String, Vec<u8>)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), common::bytes(v)))
        .collect()
}

#[test]
fn hash1_vectors() {
    let Some(v) = common::load("dirhash.json") else {
        return;
    };
    for case in v["hash1"].as_array().unwrap() {
        let name = common::str_field(case, "name");
        let want = common::str_field(case, "want");
        let files = files(&case["files"]);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        let open = |n: &&str| Ok(files.iter().find(|(f, _)| f == n).unwrap().1.as_slice());
        assert_eq!(hash1(&names, open).unwrap(), want, "{name}: hash1");

        // The same files as a directory tree and as a zip (HashDir/HashZip). Names with a
        // directory part are `prefix/file`; the directory then holds the bare files.
        let dir = tempfile::tempdir().unwrap();
        let mut zip = ZipWriter::new(Vec::new());
        let mut prefix = String::new();
        for (n, data) in &files {
            let (p, base) = n.rsplit_once('/').map_or(("", n.as_str()), |(p, b)| (p, b));
            prefix = p.to_string();
            fs::write(dir.path().join(base), data).unwrap();
            zip.add_file(n.as_bytes(), &mut data.as_slice()).unwrap();
        }
        let zip = zip.finish().unwrap();
        assert_eq!(
            hash_dir(dir.path(), &prefix).unwrap(),
            want,
            "{name}: hash_dir"
        );
        assert_eq!(
            hash_zip(Cursor::new(&zip)).unwrap(),
            want,
            "{name}: hash_zip"
        );
    }
}

#[test]
fn newline_and_empty_vectors() {
    let Some(v) = common::load("dirhash.json") else {
        return;
    };
    let names: Vec<String> = v["newline_error"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let err = hash1(&names, |_| Ok(std::io::empty())).unwrap_err();
    assert!(matches!(err, HashError::NewlineInName));
    assert_eq!(
        err.to_string(),
        "dirhash: filenames with newlines are not supported"
    );

    let empty = common::str_field(&v, "empty_hash");
    let none: [&str; 0] = [];
    assert_eq!(hash1(&none, |_| Ok(std::io::empty())).unwrap(), empty);
    let zip = ZipWriter::new(Vec::new()).finish().unwrap();
    assert_eq!(hash_zip(Cursor::new(&zip)).unwrap(), empty);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(hash_dir(dir.path(), "example.com/m@v1.0.0").unwrap(), empty);
}

#[test]
fn create_from_dir_special_vectors() {
    let Some(v) = common::load("dirhash.json") else {
        return;
    };
    for case in v["create_from_dir_special"].as_array().unwrap() {
        let desc = common::str_field(case, "desc");
        let m = ModuleVersion::new(
            common::str_field(case, "module"),
            common::str_field(case, "version"),
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = match desc {
            "ignore_empty_dir" => {
                fs::create_dir(tmp.path().join("empty")).unwrap();
                tmp.path().to_path_buf()
            }
            "ignore_symlink" => {
                symlink(tmp.path(), &tmp.path().join("link"));
                tmp.path().to_path_buf()
            }
            "dir_is_vendor" => {
                let vendor = tmp.path().join("vendor");
                fs::create_dir(&vendor).unwrap();
                fs::write(vendor.join("go.mod"), "module example.com/m\n\ngo 1.13\n").unwrap();
                vendor
            }
            other => panic!("unknown create_from_dir_special case {other}"),
        };
        let mut zip = Vec::new();
        let created = create_from_dir(&mut zip, &m, &dir).unwrap();
        let want = common::str_field(case, "want");
        assert_eq!(hash_zip(Cursor::new(&zip)).unwrap(), want, "{desc}");
        assert_eq!(created.hash, want, "{desc}");
    }
}

#[cfg(unix)]
fn symlink(target: &std::path::Path, link: &std::path::Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[cfg(not(unix))]
fn symlink(_: &std::path::Path, _: &std::path::Path) {}

#[test]
fn go_mod_hash_vectors() {
    let Some(v) = common::load("gosum_examples.json") else {
        return;
    };
    for case in v["gomod_hashes"].as_array().unwrap() {
        let line = common::str_field(case, "go_sum_line");
        let want = line.rsplit(' ').next().unwrap();
        assert_eq!(hash_go_mod(&common::bytes(&case["go_mod"])), want, "{line}");
    }
    assert_eq!(hash_go_mod(b""), common::str_field(&v, "empty_gomod_hash"));
}
