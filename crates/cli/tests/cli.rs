//! The `strata` binary end to end: zip → verify → hash agree, invalid trees and zips are refused
//! with every reason and nothing written, and the real go command accepts what we build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata_core::zip::ZipWriter;

const MODULE: &str = "example.com/Team/Widget";

fn strata(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// A module tree with one of everything the zip rules leave out.
fn module_tree(root: &Path) {
    write(root, "go.mod", &format!("module {MODULE}\n\ngo 1.23\n"));
    write(
        root,
        "widget.go",
        "package widget\n\nfunc Answer() int { return 42 }\n",
    );
    write(root, "internal/ü/ß.go", "package ß\n");
    write(root, "vendor/example.org/dep/dep.go", "package dep\n");
    write(root, "vendor/modules.txt", "# example.org/dep v1.0.0\n");
    write(root, "nested/go.mod", "module example.com/nested\n");
    write(root, "nested/n.go", "package nested\n");
    write(root, ".git/HEAD", "ref: refs/heads/main\n");
    write(root, ".hg_archival.txt", "repo: x\n");
    std::os::unix::fs::symlink("widget.go", root.join("link.go")).unwrap();
}

fn go_sum_lines(out: &str) -> (String, String) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "two go.sum lines expected: {out}");
    let zip = lines[0]
        .strip_prefix(&format!("{MODULE} v1.2.0 "))
        .expect("zip line")
        .to_string();
    let go_mod = lines[1]
        .strip_prefix(&format!("{MODULE} v1.2.0/go.mod "))
        .expect("go.mod line")
        .to_string();
    (zip, go_mod)
}

#[test]
fn zip_verify_hash_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("src");
    module_tree(&tree);
    let out = strata(
        &[
            "zip",
            "src",
            "--module",
            MODULE,
            "--version",
            "v1.2.0",
            "-o",
            "w.zip",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for (path, reason) in [
        (".git", "directory is a version control repository"),
        ("nested", "directory is in another module"),
        (
            "vendor/example.org/dep/dep.go",
            "file is in vendor directory",
        ),
        ("link.go", "not a regular file"),
        (
            ".hg_archival.txt",
            "file is inserted by 'hg archive' and is always omitted",
        ),
    ] {
        assert!(
            err.lines().any(|l| l.contains(path) && l.ends_with(reason)),
            "{path}: {reason} in\n{err}"
        );
    }
    let (zip_hash, mod_hash) = go_sum_lines(&stdout(&out));

    let verified = strata(&["verify", "w.zip"], tmp.path());
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert_eq!(
        go_sum_lines(&stdout(&verified)),
        (zip_hash.clone(), mod_hash.clone())
    );

    let hashed = strata(&["hash", "w.zip"], tmp.path());
    assert_eq!(stdout(&hashed).trim(), zip_hash);
    let hashed = strata(&["hash", "src/go.mod"], tmp.path());
    assert_eq!(stdout(&hashed).trim(), mod_hash);
    let forced = strata(&["hash", "--kind", "mod", "w.zip"], tmp.path());
    assert_ne!(stdout(&forced).trim(), zip_hash);

    // Deterministic: the same tree gives byte-identical zips.
    let again = strata(
        &[
            "zip",
            "src",
            "--module",
            MODULE,
            "--version",
            "v1.2.0",
            "-o",
            "w2.zip",
            "-q",
        ],
        tmp.path(),
    );
    assert!(again.status.success());
    assert_eq!(
        fs::read(tmp.path().join("w.zip")).unwrap(),
        fs::read(tmp.path().join("w2.zip")).unwrap()
    );

    go_accepts(
        tmp.path(),
        &tmp.path().join("w.zip"),
        &tree.join("go.mod"),
        &zip_hash,
        &mod_hash,
    );
}

/// Serves the zip as a `file://` GOPROXY and lets the real go command download it: it must
/// accept the zip and compute the same go.sum hashes.
fn go_accepts(tmp: &Path, zip: &Path, go_mod: &Path, zip_hash: &str, mod_hash: &str) {
    let Some((ok, json)) = go_download(tmp, zip, go_mod) else {
        return;
    };
    assert!(ok, "go mod download failed: {json}");
    assert!(json.contains(&format!("\"Sum\": \"{zip_hash}\"")), "{json}");
    assert!(
        json.contains(&format!("\"GoModSum\": \"{mod_hash}\"")),
        "{json}"
    );
}

/// `go mod download -json` of the zip and go.mod served as a `file://` GOPROXY: whether it
/// succeeded, and its output; `None` where go is not on PATH.
fn go_download(tmp: &Path, zip: &Path, go_mod: &Path) -> Option<(bool, String)> {
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("skipped the go command check: go is not on PATH (make test installs it)");
        return None;
    }
    let dir = tmp.join("proxy/example.com/!team/!widget/@v");
    fs::create_dir_all(&dir).unwrap();
    fs::copy(zip, dir.join("v1.2.0.zip")).unwrap();
    fs::copy(go_mod, dir.join("v1.2.0.mod")).unwrap();
    fs::write(dir.join("v1.2.0.info"), r#"{"Version":"v1.2.0"}"#).unwrap();
    fs::write(dir.join("list"), "v1.2.0\n").unwrap();
    let work = tmp.join("client");
    fs::create_dir_all(&work).unwrap();
    let out = Command::new("go")
        .args(["mod", "download", "-json", &format!("{MODULE}@v1.2.0")])
        .current_dir(&work)
        .env("GOPROXY", format!("file://{}", tmp.join("proxy").display()))
        .env("GOMODCACHE", tmp.join("gomodcache"))
        .env("GONOSUMDB", "example.com")
        .env("GOFLAGS", "-mod=mod")
        .output()
        .unwrap();
    // Make the read-only module cache removable by the tempdir cleanup.
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(tmp.join("gomodcache"))
        .status();
    Some((
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    ))
}

#[test]
fn go_mod_directory_is_zipped_as_a_directory() {
    // x/mod's go_mod_dir vector: a go.mod that is a directory is an ordinary directory of the
    // module, which then has no go.mod file and is served the synthesized one.
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("src");
    write(&tree, "go.mod/a.go", "package a\n");
    let out = strata(
        &[
            "zip",
            "src",
            "--module",
            MODULE,
            "--version",
            "v1.2.0",
            "-o",
            "w.zip",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: no go.mod file in src; the version's .mod is synthesized"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("warning: src/go.mod is a directory"),
        "{}",
        stderr(&out)
    );

    let synthesized = strata_core::gomod::GoMod::synthesized(MODULE);
    let (zip_hash, mod_hash) = go_sum_lines(&stdout(&out));
    assert_eq!(mod_hash, strata_core::dirhash::hash_go_mod(&synthesized));

    let zip = fs::File::open(tmp.path().join("w.zip")).unwrap();
    let module = strata_core::version::ModuleVersion::new(MODULE, "v1.2.0");
    let summary = strata_core::zip::check_zip(&module, zip).unwrap();
    assert_eq!(summary.files, vec![format!("{MODULE}@v1.2.0/go.mod/a.go")]);
    assert_eq!(summary.go_mod, None);
    assert_eq!(summary.hash, zip_hash);

    // The go command downloads the zip and agrees on both hashes, but then refuses the module:
    // it reads the extracted go.mod for its go version, and a directory is not "missing".
    let mod_file = tmp.path().join("synthesized.mod");
    fs::write(&mod_file, &synthesized).unwrap();
    if let Some((ok, json)) = go_download(tmp.path(), &tmp.path().join("w.zip"), &mod_file) {
        assert!(!ok, "{json}");
        assert!(json.contains(&format!("\"Sum\": \"{zip_hash}\"")), "{json}");
        assert!(
            json.contains(&format!("\"GoModSum\": \"{mod_hash}\"")),
            "{json}"
        );
        assert!(json.contains("go.mod: is a directory"), "{json}");
    }
}

#[test]
fn invalid_tree_is_refused_with_every_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("src");
    write(&tree, "go.mod", "module example.com/other\n");
    write(&tree, "bad'name.go", "package x\n");
    write(&tree, "Case.go", "package x\n");
    write(&tree, "case.go", "package x\n");
    write(&tree, "sub/GO.MOD", "module x\n");
    let out = strata(
        &[
            "zip",
            "src",
            "--module",
            MODULE,
            "--version",
            "v1.2.0",
            "-o",
            "bad.zip",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for want in [
        r#"go.mod has module path "example.com/other" but was expected to be "example.com/Team/Widget""#,
        r#"malformed file path "bad'name.go": invalid char '\''"#,
        "case-insensitive file name collision",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    assert!(!tmp.path().join("bad.zip").exists());
    let leftovers: Vec<PathBuf> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(leftovers, vec![tree], "no temporary files left behind");
}

#[test]
fn bad_module_or_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("src"), "go.mod", "module example.com/m\n");
    for (module, version, want) in [
        (
            "example.com/m",
            "v1.0",
            r#"version "v1.0" is not canonical (should be "v1.0.0")"#,
        ),
        (
            "example.com/m",
            "v2.0.0",
            "invalid version: should be v0 or v1, not v2",
        ),
        ("example/m", "v1.0.0", "missing dot in first path element"),
    ] {
        let out = strata(
            &["zip", "src", "--module", module, "--version", version],
            tmp.path(),
        );
        assert_eq!(out.status.code(), Some(1), "{module}@{version}");
        assert!(stderr(&out).contains(want), "{want:?} in {}", stderr(&out));
    }
}

fn zip_with(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        w.add_file(name.as_bytes(), &mut content.as_bytes())
            .unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn invalid_zip_reports_every_violation() {
    let tmp = tempfile::tempdir().unwrap();
    let p = "example.com/m@v1.0.0/";
    let data = zip_with(&[
        (&format!("{p}go.mod"), "module example.com/m\n"),
        (&format!("{p}sub/go.mod"), "module x\n"),
        (&format!("{p}a.go"), "package a\n"),
        (&format!("{p}A.GO"), "package a\n"),
        ("example.com/other@v1.0.0/x.go", "package x\n"),
    ]);
    fs::write(tmp.path().join("bad.zip"), data).unwrap();
    let out = strata(
        &[
            "verify",
            "bad.zip",
            "--module",
            "example.com/m",
            "--version",
            "v1.0.0",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for want in [
        "go.mod file not in module root directory",
        "case-insensitive file name collision",
        r#"path does not have prefix "example.com/m@v1.0.0/""#,
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    assert!(stdout(&out).is_empty());
}

#[test]
fn zip_whose_go_mod_names_another_module_fails_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let data = zip_with(&[("example.com/m@v1.0.0/go.mod", "module example.com/x\n")]);
    fs::write(tmp.path().join("m.zip"), data).unwrap();
    let out = strata(&["verify", "m.zip"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(r#"go.mod has module path "example.com/x""#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unreadable_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("notazip.zip"), "hello").unwrap();
    let out = strata(&["verify", "notazip.zip"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("notazip.zip"), "{}", stderr(&out));
    let out = strata(&["hash", "missing.zip"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.zip"));
    let out = strata(
        &["verify", "x.zip", "--module", "example.com/m"],
        tmp.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "--module without --version is a usage error"
    );
}

#[test]
fn every_subcommand_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    for sub in [
        vec!["--help"],
        vec!["zip", "--help"],
        vec!["verify", "--help"],
        vec!["hash", "--help"],
        vec!["sumdb", "keygen", "--help"],
    ] {
        let out = strata(&sub, tmp.path());
        assert!(out.status.success(), "{sub:?}");
        assert!(stdout(&out).contains("Usage"), "{sub:?}");
    }
}

/// `strata probe`: 0 on a 2xx answer, 1 with the status and body otherwise, 1 when nothing
/// listens, and a clear refusal of what it does not probe.
#[test]
fn probe_exits_0_only_on_a_2xx_answer() {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    let tmp = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A tiny HTTP server: /ok answers 200, anything else 503 with a reason.
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let (status, body) = if request.starts_with("GET /ok ") {
                ("200 OK", "ok")
            } else {
                ("503 Service Unavailable", "storage is not answering")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let ok = strata(&["probe", &format!("http://{addr}/ok")], tmp.path());
    assert!(ok.status.success(), "{}", stderr(&ok));
    let down = strata(&["probe", &format!("http://{addr}/readyz")], tmp.path());
    assert_eq!(down.status.code(), Some(1));
    assert!(stderr(&down).contains("503"), "{}", stderr(&down));
    assert!(
        stderr(&down).contains("storage is not answering"),
        "{}",
        stderr(&down)
    );
    // Nothing listening: a failure, not a hang.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let refused = strata(
        &[
            "probe",
            "--timeout-ms",
            "2000",
            &format!("http://{closed}/readyz"),
        ],
        tmp.path(),
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let https = strata(&["probe", "https://127.0.0.1:1/readyz"], tmp.path());
    assert_eq!(https.status.code(), Some(1));
    assert!(
        stderr(&https).contains("only http://"),
        "{}",
        stderr(&https)
    );
}

/// `strata sumdb keygen`: a signer key (0600 file, never overwritten, or stdout) whose verifier
/// key is printed, and which the registry's configuration accepts for that name.
#[test]
fn sumdb_keygen_writes_a_private_key_and_prints_the_verifier_key() {
    use strata_core::sumdb::key::Signer as _;
    use strata_core::sumdb::{SignerKey, VerifierKey};
    let tmp = tempfile::tempdir().unwrap();
    let out = strata(
        &["sumdb", "keygen", "sum.corp.example", "--out", "ledger.key"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let verifier = stdout(&out).trim().to_owned();
    let written = fs::read_to_string(tmp.path().join("ledger.key")).unwrap();
    let signer = SignerKey::parse(written.trim()).unwrap();
    assert_eq!(signer.name(), "sum.corp.example");
    assert_eq!(signer.verifier().encode(), verifier);
    VerifierKey::parse(&verifier).unwrap();
    assert!(
        !stdout(&out).contains("PRIVATE"),
        "the signer key stays in the file"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(tmp.path().join("ledger.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // An existing key is never replaced (a new key is a new log).
    let again = strata(
        &["sumdb", "keygen", "sum.corp.example", "--out", "ledger.key"],
        tmp.path(),
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("not replacing"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("ledger.key")).unwrap(),
        written
    );

    // Without --out: the signer key on stdout, the verifier key on stderr.
    let out = strata(&["sumdb", "keygen", "sum.corp.example"], tmp.path());
    assert!(out.status.success());
    let signer = SignerKey::parse(stdout(&out).trim()).unwrap();
    assert!(
        stderr(&out).contains(&signer.verifier().encode()),
        "{}",
        stderr(&out)
    );
    let bad = strata(&["sumdb", "keygen", "not a name"], tmp.path());
    assert!(!bad.status.success());
}
