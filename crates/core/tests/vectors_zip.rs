//! The official module-zip vectors: x/mod's `zip/testdata` (create, create_from_dir, unzip,
//! check_files, check_dir, check_zip), `zip_size_limits.json` and
//! `zip_is_vendored_package.json`, run the way x/mod's own tests run them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::{self, Cursor, Read, Seek, Write};
use std::path::Path;

use common::txtar::{self, Archive, TestHeader};
use serde_json::Value;
use strata_core::dirhash::{hash_dir, hash_zip};
use strata_core::version::ModuleVersion;
use strata_core::zip::{
    FileErrorList, FileKind, MAX_ZIP_FILE, ModuleFile, ZipError, ZipWriter, check_dir, check_files,
    check_zip, check_zip_report, create, create_from_dir, is_vendored_package,
    module_version_from_bytes, unzip,
};

/// A file for `check_files`/`create`: given data, or `size` zero bytes (never allocated).
struct MemFile {
    name: Vec<u8>,
    size: u64,
    data: Option<Vec<u8>>,
}

impl ModuleFile for MemFile {
    fn path(&self) -> &[u8] {
        &self.name
    }
    fn kind(&self) -> io::Result<FileKind> {
        Ok(FileKind::Regular { size: self.size })
    }
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match &self.data {
            Some(data) => Box::new(data.as_slice()),
            None => Box::new(io::repeat(0).take(self.size)),
        })
    }
}

fn mem_files(files: &[(String, Vec<u8>)]) -> Vec<MemFile> {
    let file = |(n, d): &(String, Vec<u8>)| MemFile {
        name: n.clone().into_bytes(),
        size: d.len() as u64,
        data: Some(d.clone()),
    };
    files.iter().map(file).collect()
}

/// Every `<kind>/*.txt` test, sorted by name, or `None` to skip.
fn testdata(kind: &str) -> Option<Vec<(String, TestHeader, Archive)>> {
    let dir = common::vectors_dir(kind)?
        .join("x_mod_zip_testdata")
        .join(kind);
    let mut tests: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| {
            let archive = txtar::parse(&fs::read(&p).unwrap());
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, txtar::header(&archive.comment), archive)
        })
        .collect();
    tests.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!tests.is_empty(), "no tests in {}", dir.display());
    Some(tests)
}

/// Compares an outcome with `wantErr` (a substring, or "" for success); returns the value.
fn outcome<T>(
    failures: &mut Vec<String>,
    test: &str,
    result: Result<T, ZipError>,
    want_err: &str,
) -> Option<T> {
    match result {
        Ok(v) if want_err.is_empty() => return Some(v),
        Ok(_) => failures.push(format!(
            "{test}: unexpected success; want error containing {want_err:?}"
        )),
        Err(e) if want_err.is_empty() => failures.push(format!("{test}: unexpected error: {e}")),
        Err(e) if !e.to_string().contains(want_err) => failures.push(format!(
            "{test}: got error {:?}; want {want_err:?}",
            e.to_string()
        )),
        Err(_) => {}
    }
    None
}

fn module(h: &TestHeader) -> Result<ModuleVersion, ZipError> {
    module_version_from_bytes(&h.path, &h.version)
}

fn check_hash(failures: &mut Vec<String>, test: &str, got: &str, want: &str) {
    if got != want {
        failures.push(format!("{test}: got hash {got}; want {want}"));
    }
}

fn finish(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Writes archive files into a fresh directory (parents created).
fn extract_to_dir(files: &[(String, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
    dir
}

/// Zips archive files under their names as given (duplicates and all).
fn extract_to_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Vec::new());
    for (name, data) in files {
        w.add_file(name.as_bytes(), &mut data.as_slice()).unwrap();
    }
    w.finish().unwrap()
}

/// Splits off the first file named `want` (the expected report).
fn take_want(archive: &Archive) -> (String, Vec<(String, Vec<u8>)>) {
    let mut files = archive.files.clone();
    let i = files
        .iter()
        .position(|(n, _)| n == "want")
        .expect("want file");
    let (_, want) = files.remove(i);
    (String::from_utf8(want).unwrap(), files)
}

#[test]
fn txtar_parser() {
    let a = txtar::parse(b"comment\n-- a --\nA\n-- b --\nB\nno marker-- c --\n-- d --\nlast");
    assert_eq!(a.comment, b"comment\n");
    let files: Vec<_> = a
        .files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    assert_eq!(
        files,
        vec![
            ("a", &b"A\n"[..]),
            ("b", &b"B\nno marker-- c --\n"[..]),
            ("d", &b"last\n"[..])
        ]
    );
    let h = txtar::header(b"path=\xff  # comment\nversion = v1.0.0\n");
    assert_eq!(
        (h.path.as_slice(), h.version.as_slice()),
        (&b"\xff"[..], &b"v1.0.0"[..])
    );
}

#[test]
fn create_vectors() {
    let Some(tests) = testdata("create") else {
        return;
    };
    let mut failures = Vec::new();
    for (name, h, archive) in &tests {
        let mut zip = Vec::new();
        let created = module(h).and_then(|m| create(&mut zip, &m, &mem_files(&archive.files)));
        if let Some(created) = outcome(&mut failures, name, created, &h.want_err) {
            check_hash(
                &mut failures,
                name,
                &hash_zip(Cursor::new(&zip)).unwrap(),
                &h.hash,
            );
            check_hash(&mut failures, name, &created.hash, &h.hash);
        }
    }
    finish(failures);
}

#[test]
fn create_from_dir_vectors() {
    let Some(tests) = testdata("create_from_dir") else {
        return;
    };
    let mut failures = Vec::new();
    for (name, h, archive) in &tests {
        let dir = extract_to_dir(&archive.files);
        let mut zip = Vec::new();
        let created = module(h).and_then(|m| create_from_dir(&mut zip, &m, dir.path()));
        if let Some(created) = outcome(&mut failures, name, created, &h.want_err) {
            check_hash(
                &mut failures,
                name,
                &hash_zip(Cursor::new(&zip)).unwrap(),
                &h.hash,
            );
            check_hash(&mut failures, name, &created.hash, &h.hash);
        }
    }
    finish(failures);
}

#[test]
fn unzip_vectors() {
    let Some(tests) = testdata("unzip") else {
        return;
    };
    let mut failures = Vec::new();
    for (name, h, archive) in &tests {
        let zip = extract_to_zip(&archive.files);
        let dir = tempfile::tempdir().unwrap();
        let summary = module(h).and_then(|m| unzip(dir.path(), &m, Cursor::new(&zip)));
        if let Some(summary) = outcome(&mut failures, name, summary, &h.want_err) {
            let prefix = format!("{}@{}/", summary.module.path, summary.module.version);
            check_hash(
                &mut failures,
                name,
                &hash_dir(dir.path(), &prefix).unwrap(),
                &h.hash,
            );
            check_hash(&mut failures, name, &summary.hash, &h.hash);
        }
    }
    finish(failures);
}

/// The report must match `want`, and the error must be exactly the invalid list.
fn check_report(
    failures: &mut Vec<String>,
    test: &str,
    got: &str,
    want: &str,
    err: Result<(), ZipError>,
    invalid: FileErrorList,
) {
    if got != want {
        failures.push(format!("{test}: got report:\n{got}\nwant:\n{want}"));
    }
    let want_err = if invalid.0.is_empty() {
        String::new()
    } else {
        invalid.to_string()
    };
    let got_err = err.err().map(|e| e.to_string()).unwrap_or_default();
    if got_err != want_err {
        failures.push(format!(
            "{test}: got error:\n{got_err}\nwant error:\n{want_err}"
        ));
    }
}

#[test]
fn check_files_vectors() {
    let Some(tests) = testdata("check_files") else {
        return;
    };
    let mut failures = Vec::new();
    for (name, _, archive) in &tests {
        let (want, files) = take_want(archive);
        let report = check_files(&mem_files(&files));
        let invalid = FileErrorList(report.invalid.clone());
        check_report(
            &mut failures,
            name,
            &report.to_string(),
            &want,
            report.err(),
            invalid,
        );
    }
    finish(failures);
}

#[test]
fn check_dir_vectors() {
    let Some(tests) = testdata("check_dir") else {
        return;
    };
    let mut failures = Vec::new();
    for (name, _, archive) in &tests {
        let (want, files) = take_want(archive);
        let dir = extract_to_dir(&files);
        let report = check_dir(dir.path()).unwrap();
        let got = report
            .to_string()
            .replace(&dir.path().display().to_string(), "$work");
        let invalid = FileErrorList(report.invalid.clone());
        check_report(&mut failures, name, &got, &want, report.err(), invalid);
    }
    finish(failures);
}

#[test]
fn check_zip_vectors() {
    let Some(tests) = testdata("check_zip") else {
        return;
    };
    let mut failures = Vec::new();
    for (name, h, archive) in &tests {
        let (want, files) = take_want(archive);
        let zip = extract_to_zip(&files);
        let m = module(h).unwrap();
        let report = check_zip_report(&m, Cursor::new(&zip)).unwrap();
        let invalid = FileErrorList(report.files.invalid.clone());
        check_report(
            &mut failures,
            name,
            &report.files.to_string(),
            &want,
            report.files.err(),
            invalid,
        );
        // The strict check agrees, and for a valid zip yields the official empty hash.
        match check_zip(&m, Cursor::new(&zip)) {
            Ok(summary) if report.files.invalid.is_empty() => {
                check_hash(
                    &mut failures,
                    name,
                    &summary.hash,
                    &hash_zip(Cursor::new(&zip)).unwrap(),
                );
            }
            Err(ZipError::InvalidFiles(_)) if !report.files.invalid.is_empty() => {}
            other => failures.push(format!("{name}: check_zip gave {other:?}")),
        }
    }
    finish(failures);
}

#[test]
fn is_vendored_package_vectors() {
    let Some(v) = common::load("zip_is_vendored_package.json") else {
        return;
    };
    let mut n = 0;
    for case in v["cases"].as_array().unwrap() {
        let path = common::str_field(case, "path");
        for go in case["go_versions"].as_array().unwrap() {
            let go = go.as_str().unwrap();
            let want = case["want"].as_bool().unwrap();
            assert_eq!(
                is_vendored_package(path.as_bytes(), go),
                want,
                "{path} {go}"
            );
            n += 1;
        }
    }
    assert!(n > 100);
}

/// The expected error of a size-limit case for one function: its own field, else `wantErr`.
fn want(case: &Value, field: &str) -> String {
    let own = case[field].as_str().unwrap_or("");
    if own.is_empty() {
        case["wantErr"].as_str().unwrap_or("").to_string()
    } else {
        own.to_string()
    }
}

#[test]
fn size_limit_vectors() {
    let Some(v) = common::load("zip_size_limits.json") else {
        return;
    };
    let m = ModuleVersion::new(
        common::str_field(&v["module"], "path"),
        common::str_field(&v["module"], "version"),
    );
    let prefix = format!("{}@{}/", m.path, m.version);
    let mut failures = Vec::new();
    let cases = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["create_only"].as_array().unwrap());
    for case in cases {
        let desc = common::str_field(case, "desc");
        let create_only = case.get("wantCheckZipErr").is_none();
        let files: Vec<MemFile> = case["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| MemFile {
                name: common::str_field(f, "name").as_bytes().to_vec(),
                size: f
                    .get("size")
                    .or(f.get("declared_size"))
                    .and_then(Value::as_u64)
                    .unwrap(),
                data: f
                    .get("data")
                    .map(|d| d.as_str().unwrap().as_bytes().to_vec()),
            })
            .collect();
        let checked = check_files(&files).err();
        outcome(
            &mut failures,
            &format!("{desc}/check_files"),
            checked,
            &want(case, "wantCheckFilesErr"),
        );
        if create_only {
            outcome(
                &mut failures,
                &format!("{desc}/create"),
                create(io::sink(), &m, &files),
                &want(case, "wantCreateErr"),
            );
            continue;
        }
        // Create into the file that CheckZip and Unzip then read; where Create must fail, write
        // the same entries without any checks.
        let mut zip = tempfile::tempfile().unwrap();
        let created = create(&mut zip, &m, &files);
        if outcome(
            &mut failures,
            &format!("{desc}/create"),
            created,
            &want(case, "wantCreateErr"),
        )
        .is_none()
        {
            zip = tempfile::tempfile().unwrap();
            let mut w = ZipWriter::new(&mut zip);
            for f in &files {
                w.add_file(
                    format!("{prefix}{}", String::from_utf8_lossy(&f.name)).as_bytes(),
                    &mut f.open().unwrap(),
                )
                .unwrap();
            }
            w.finish().unwrap().flush().unwrap();
        }
        zip.rewind().unwrap();
        outcome(
            &mut failures,
            &format!("{desc}/check_zip"),
            check_zip(&m, &mut zip),
            &want(case, "wantCheckZipErr"),
        );
        let dir = tempfile::tempdir().unwrap();
        outcome(
            &mut failures,
            &format!("{desc}/unzip"),
            unzip(dir.path(), &m, &mut zip),
            &want(case, "wantUnzipErr"),
        );
    }
    finish(failures);
    // Every file above was streamed, never buffered: the whole process stays far below the
    // 500 MiB the files hold (Linux reports the peak resident size).
    if let Some(peak) = peak_rss_kib() {
        eprintln!("peak RSS after the size-limit cases: {} MiB", peak >> 10);
        assert!(
            peak < 128 << 10,
            "peak RSS {peak} KiB: something buffered a whole file"
        );
    }
}

/// The process's peak resident set size in KiB (`VmHWM`), where the OS reports it.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn unzip_size_limit_special_vectors() {
    let Some(v) = common::load("zip_size_limits.json") else {
        return;
    };
    let m = ModuleVersion::new("example.com/m", "v1.0.0");
    let mut failures = Vec::new();
    for case in v["unzip_special"].as_array().unwrap() {
        let desc = common::str_field(case, "desc");
        let mut zip = tempfile::tempfile().unwrap();
        match desc {
            "large_zip" => zip.set_len(MAX_ZIP_FILE).unwrap(),
            "too_large_zip" => zip.set_len(MAX_ZIP_FILE + 1).unwrap(),
            "size_is_a_lie" => {
                let mut w = ZipWriter::new(Vec::new());
                w.add_file(
                    b"example.com/m@v1.0.0/go.mod",
                    &mut io::repeat(0).take(0x0BAD),
                )
                .unwrap();
                let mut data = w.finish().unwrap();
                let mut n = 0;
                for i in 0..data.len() - 1 {
                    if data[i..i + 2] == [0xAD, 0x0B] {
                        data[i..i + 2].copy_from_slice(&[0xAC, 0x00]);
                        n += 1;
                    }
                }
                assert_eq!(n, 2, "size patched in descriptor and directory");
                zip.write_all(&data).unwrap();
            }
            other => panic!("unknown unzip_special case {other}"),
        }
        zip.rewind().unwrap();
        let wants: Vec<String> = match case.get("wantErr_any_of") {
            Some(any) => any
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
            None => vec![common::str_field(case, "wantErr").to_string()],
        };
        let dir = tempfile::tempdir().unwrap();
        match unzip(dir.path(), &m, &mut zip) {
            Err(e) if wants.iter().any(|w| e.to_string().contains(w.as_str())) => {}
            other => failures.push(format!(
                "{desc}: got {other:?}; want error containing one of {wants:?}"
            )),
        }
    }
    finish(failures);
}

#[test]
fn check_dir_reports_paths_under_the_directory() {
    // Not a vector: the walk's omissions keep their walk order after the file-list ones.
    let dir = extract_to_dir(&[
        ("a.go".into(), b"package a\n".to_vec()),
        (".git/HEAD".into(), Vec::new()),
    ]);
    let report = check_dir(dir.path()).unwrap();
    let root = dir.path().display().to_string();
    assert_eq!(report.valid, vec![format!("{root}/a.go")]);
    assert_eq!(
        report.omitted[0].to_string(),
        format!("{root}/.git: directory is a version control repository")
    );
    assert!(Path::new(&report.valid[0]).is_file());
}

#[test]
fn go_mod_directory_is_just_a_directory() {
    // x/mod's go_mod_dir vectors: a `go.mod` that is a directory is neither the module's go.mod
    // nor a nested module's root; its files are ordinary module files. The loops above run these
    // vectors with the others; this test makes sure they are present and also checks the tree
    // with `check_dir`, for which x/mod has no such vector.
    let mut ran = 0;
    for kind in ["create", "create_from_dir", "unzip"] {
        let Some(tests) = testdata(kind) else {
            return;
        };
        let (_, h, archive) = tests
            .iter()
            .find(|(name, _, _)| name == "go_mod_dir")
            .unwrap_or_else(|| panic!("{kind}/go_mod_dir.txt is missing"));
        assert_eq!(h.want_err, "", "{kind}/go_mod_dir");
        assert_eq!(h.hash, "h1:Mun5l9cBlDnnV6JasTpio2aZJSbFj++h+814mnKC/OM=");
        if kind != "create_from_dir" {
            continue;
        }
        let dir = extract_to_dir(&archive.files);
        assert!(dir.path().join("go.mod").is_dir());
        let m = module(h).unwrap();
        let mut zip = Vec::new();
        let created = create_from_dir(&mut zip, &m, dir.path()).unwrap();
        assert_eq!(created.hash, h.hash);
        assert_eq!(created.files.valid, vec!["go.mod/a.go"]);
        assert!(created.files.omitted.is_empty(), "{:?}", created.files);
        let summary = check_zip(&m, Cursor::new(&zip)).unwrap();
        assert_eq!(summary.hash, h.hash);
        assert_eq!(summary.go_mod, None, "the zip has no go.mod file");

        let report = check_dir(dir.path()).unwrap();
        report.err().unwrap();
        let root = dir.path().display().to_string();
        assert_eq!(report.valid, vec![format!("{root}/go.mod/a.go")]);
        assert!(report.omitted.is_empty(), "{report:?}");
        ran += 1;
    }
    assert_eq!(ran, 1);
}
