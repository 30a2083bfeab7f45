//! Module zips and `h1:` hashes against golang.org/x/mod/zip and sumdb/dirhash: generated module
//! trees, random go.mod bytes and a 50 MiB file.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use strata_core::version::ModuleVersion;
use strata_core::zip::{CheckedFiles, ZipError};
use strata_core::{dirhash, zip};

use crate::inputs::Rng;
use crate::trees::{self, Tree};
use crate::xmodref::{self, Call, Mismatches, XmodRef, arg};

/// A report as JSON, paths made relative to `root` when given (Go's side does the same).
pub fn checked_json(cf: &CheckedFiles, err: Result<(), String>, root: Option<&Path>) -> Value {
    let rel = |p: &str| -> String {
        match root {
            Some(root) => {
                let root = arg(root);
                match p.strip_prefix(&root) {
                    Some("") => ".".into(),
                    Some(rest) => rest.strip_prefix('/').unwrap_or(rest).to_owned(),
                    None => p.to_owned(),
                }
            }
            None => p.to_owned(),
        }
    };
    let fes = |list: &[zip::FileError]| {
        list.iter()
            .map(|e| json!({"path": rel(&e.path), "err": e.reason.to_string()}))
            .collect::<Vec<_>>()
    };
    json!({
        "ok": err.is_ok(),
        "err": err.err().unwrap_or_default(),
        "valid": cf.valid.iter().map(|p| rel(p)).collect::<Vec<_>>(),
        "omitted": fes(&cf.omitted),
        "invalid": fes(&cf.invalid),
        "size_err": cf.size_error.map(|e| e.to_string()).unwrap_or_default(),
    })
}

pub fn err_only(e: &ZipError) -> Value {
    json!({"ok": false, "err": e.to_string()})
}

pub fn go_err_only(g: &Value) -> Value {
    json!({"ok": g["ok"], "err": g["err"]})
}

/// x/mod wraps the errors of `Create`/`CreateFromDir`/`Unzip` as `create zip[ <dir>]: …` /
/// `unzip <file>: …`; strata_core returns the inner error and leaves such context to callers.
/// Removes the wrapper from Go's answer (counting how often, for the report).
pub fn unwrap_go_error(g: &Value, wrappers: &[String], stripped: &mut usize) -> Value {
    let mut g = g.clone();
    let err = g["err"].as_str().unwrap_or("");
    if let Some(inner) = wrappers.iter().find_map(|w| err.strip_prefix(w.as_str())) {
        *stripped += 1;
        g["err"] = json!(inner);
    }
    g
}

/// `{ok, out}` of an `h1:` computation.
fn h1_json(r: &Result<String, impl std::fmt::Display>) -> Value {
    json!({"ok": r.is_ok(), "out": r.as_ref().map(String::as_str).unwrap_or("")})
}

/// Go's `{ok, out}`, with `out` only when it succeeded.
fn go_h1(g: &Value) -> Value {
    let ok = g["ok"].as_bool().unwrap_or(false);
    json!({"ok": ok, "out": if ok { g["out"].clone() } else { json!("") }})
}

/// Ours: `check_zip_report` of a zip file, as a Go-shaped report.
pub fn our_check_zip(file: &Path, m: &ModuleVersion) -> Value {
    let f = fs::File::open(file).unwrap();
    match zip::check_zip_report(m, f) {
        Ok(report) => checked_json(
            &report.files,
            report.files.err().map_err(|e| e.to_string()),
            None,
        ),
        Err(e) => err_only(&e),
    }
}

fn our_hash_zip(file: &Path) -> Value {
    h1_json(&dirhash::hash_zip(fs::File::open(file).unwrap()))
}

/// Compares everything about one tree: CheckDir, HashDir, CreateFromDir (both ways), CheckZip and
/// HashZip of both zips.
fn compare_tree(
    go: &XmodRef,
    m: &mut Mismatches,
    notes: &mut Vec<String>,
    root: &Path,
    trees: &[Tree],
) -> usize {
    let mut stripped = 0;
    let out = root.join("zips");
    fs::create_dir_all(&out).unwrap();
    let mut calls = Vec::new();
    for t in trees {
        let dir = arg(&root.join(&t.name));
        let go_zip = arg(&out.join(format!("{}.go.zip", t.name)));
        let prefix = format!("{}@{}", t.module_path, t.version);
        calls.push(Call::new("check_dir", &[dir.as_str()]));
        if t.readable {
            calls.push(Call::new("hash_dir", &[dir.as_str(), prefix.as_str()]));
        }
        calls.push(Call::new(
            "create_from_dir",
            &[dir.as_str(), &t.module_path, &t.version, go_zip.as_str()],
        ));
    }
    let results = go.run(&calls);
    let mut results = results.iter();

    // Our zips, then a second Go round over both sets of zips.
    let mut second = Vec::new();
    let mut made = Vec::new();
    for t in trees {
        let dir = root.join(&t.name);
        let module = ModuleVersion::new(&t.module_path, &t.version);
        let what = |op: &str| format!("{op} of tree {} ({}@{})", t.name, t.module_path, t.version);

        let g = results.next().unwrap();
        let ours = match zip::check_dir(&dir) {
            Ok(cf) => checked_json(&cf, cf.err().map_err(|e| e.to_string()), Some(&dir)),
            Err(e) => err_only(&e),
        };
        m.check(|| what("CheckDir"), g, &ours);

        if t.readable {
            let g = results.next().unwrap();
            let ours = dirhash::hash_dir(&dir, &format!("{}@{}", t.module_path, t.version));
            m.check(|| what("HashDir"), &go_h1(g), &h1_json(&ours));
            if let (Some(ge), Err(oe)) = (g["err"].as_str(), &ours)
                && ge != oe.to_string()
            {
                notes.push(format!(
                    "{}: go {ge:?}, ours {:?}",
                    what("HashDir error"),
                    oe.to_string()
                ));
            }
        }

        let g = results.next().unwrap();
        let our_zip = out.join(format!("{}.ours.zip", t.name));
        let created = zip::create_from_dir(fs::File::create(&our_zip).unwrap(), &module, &dir);
        let ours = match &created {
            Ok(c) => json!({"ok": true, "err": "", "h1": c.hash}),
            Err(e) => err_only(e),
        };
        let mut g_cmp = go_err_only(g);
        if g["ok"] == json!(true) {
            g_cmp["h1"] = g["h1"].clone();
        }
        let g_cmp = unwrap_go_error(
            &g_cmp,
            &[format!("create zip {}: ", arg(&dir))],
            &mut stripped,
        );
        m.check(|| what("CreateFromDir"), &g_cmp, &ours);
        if created.is_ok() && g["ok"] == json!(true) {
            let go_zip = out.join(format!("{}.go.zip", t.name));
            let (gz, oz) = (arg(&go_zip), arg(&our_zip));
            for (label, file) in [("go zip", &gz), ("our zip", &oz)] {
                second.push(Call::new(
                    "check_zip",
                    &[file.as_str(), &t.module_path, &t.version],
                ));
                second.push(Call::new("hash_zip", &[file.as_str()]));
                made.push((what(label), file.clone(), module.clone()));
            }
        }
    }
    eprintln!("trees zipped by both x/mod and us: {}", made.len() / 2);
    let results = go.run(&second);
    let mut results = results.iter();
    for (what, file, module) in &made {
        let file = Path::new(file);
        let g = results.next().unwrap();
        m.check(
            || format!("CheckZip of {what}"),
            g,
            &our_check_zip(file, module),
        );
        let g = results.next().unwrap();
        m.check(
            || format!("HashZip of {what}"),
            &go_h1(g),
            &our_hash_zip(file),
        );
    }
    stripped
}

#[test]
fn module_trees_match_x_mod() {
    let Some(go) = xmodref::get() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut trees = trees::fixed(tmp.path());
    let fixed = trees.len();
    let mut rng = Rng::new(5);
    for i in 0..80 {
        trees.push(trees::random(tmp.path(), &mut rng, i));
    }
    let mut m = Mismatches::default();
    let mut notes = Vec::new();
    let stripped = compare_tree(go, &mut m, &mut notes, tmp.path(), &trees);
    eprintln!("module trees: {} ({} hand-made)", trees.len(), fixed);
    eprintln!(
        "note: {stripped} Go errors had x/mod's `create zip <dir>: ` wrapper removed before comparing"
    );
    for n in notes.iter().take(10) {
        eprintln!("note: {n}");
    }
    m.finish("module_trees_match_x_mod");
}

#[test]
fn large_file_matches_x_mod() {
    if std::env::var_os("STRATA_DIFF_SMALL").is_some_and(|v| v == "1") {
        eprintln!("skipped large_file_matches_x_mod: STRATA_DIFF_SMALL=1");
        return;
    }
    let Some(go) = xmodref::get() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("big");
    trees::write(&dir, b"go.mod", b"module example.com/big\n\ngo 1.24\n");
    // 50 MiB: sparse, with some real bytes in the middle so the content is not all zeros.
    trees::sparse(&dir, "data/blob.bin", 50 << 20);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(dir.join("data/blob.bin"))
            .unwrap();
        f.seek(SeekFrom::Start(25 << 20)).unwrap();
        f.write_all(b"strata differential test").unwrap();
    }
    let tree = Tree {
        name: "big".into(),
        module_path: "example.com/big".into(),
        version: "v1.0.0".into(),
        readable: true,
    };
    let mut m = Mismatches::default();
    let mut notes = Vec::new();
    compare_tree(go, &mut m, &mut notes, tmp.path(), &[tree]);
    m.finish("large_file_matches_x_mod");
}

#[test]
fn go_mod_hashes_match_x_mod() {
    let Some(go) = xmodref::get() else { return };
    let mut rng = Rng::new(6);
    let mut inputs: Vec<Vec<u8>> = vec![b"".to_vec(), b"module golang.org/x/text\n".to_vec()];
    for _ in 0..500 {
        let mut t = crate::gomod_texts::go_mod(&mut rng).into_bytes();
        if rng.chance(20) {
            t.push(0xff);
        }
        inputs.push(t);
    }
    let calls: Vec<Call> = inputs
        .iter()
        .map(|t| Call::new("hash_go_mod", &[t.as_slice()]))
        .collect();
    let results = go.run(&calls);
    let mut m = Mismatches::default();
    for (t, g) in inputs.iter().zip(&results) {
        let ours = json!({"ok": true, "out": dirhash::hash_go_mod(t)});
        m.check(
            || format!("hash_go_mod({:?})", String::from_utf8_lossy(t)),
            &go_h1(g),
            &ours,
        );
    }
    m.finish("go_mod_hashes_match_x_mod");
}
