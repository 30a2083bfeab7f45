//! x/mod's own `zip/testdata` (the txtar archives of its zip tests, read from the x/mod module
//! the reference program was built with) through both implementations: CheckDir, CheckFiles,
//! Create, CreateFromDir, CheckZip and Unzip.

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};
use strata_core::version::ModuleVersion;
use strata_core::zip::{FileKind, ModuleFile, ZipError};
use strata_core::{dirhash, zip};

use crate::common::txtar;
use crate::trees;
use crate::xmodref::{self, Call, Mismatches, arg};
use crate::zips::{checked_json, err_only, go_err_only, our_check_zip, unwrap_go_error};

/// An in-memory file for `check_files`/`create`.
struct MemFile {
    name: Vec<u8>,
    data: Vec<u8>,
}

impl ModuleFile for MemFile {
    fn path(&self) -> &[u8] {
        &self.name
    }

    fn kind(&self) -> std::io::Result<FileKind> {
        Ok(FileKind::Regular {
            size: self.data.len() as u64,
        })
    }

    fn open(&self) -> std::io::Result<Box<dyn std::io::Read + '_>> {
        Ok(Box::new(self.data.as_slice()))
    }
}

/// The module of a testdata archive as ours sees it: raw `path=`/`version=` bytes (one archive
/// has a path that is not UTF-8) through `module_version_from_bytes`.
type Module = Result<ModuleVersion, String>;

fn with_module<T>(
    module: &Module,
    f: impl FnOnce(&ModuleVersion) -> Result<T, ZipError>,
) -> Result<T, String> {
    match module {
        Ok(m) => f(m).map_err(|e| e.to_string()),
        Err(e) => Err(e.clone()),
    }
}

/// What to compare one Go answer with.
enum Case {
    CreateFromDir {
        dir: PathBuf,
        module: Module,
        hash: Option<String>,
    },
    CheckDir {
        dir: PathBuf,
    },
    CheckFiles {
        files: Vec<MemFile>,
    },
    Create {
        files: Vec<MemFile>,
        module: Module,
        hash: Option<String>,
    },
    CheckZip {
        zip: PathBuf,
        module: Module,
    },
    Unzip {
        zip: PathBuf,
        module: Module,
        dest: PathBuf,
    },
}

#[test]
fn x_mod_zip_testdata_matches() {
    let Some(go) = xmodref::get() else { return };
    let testdata = go.xmod_dir.join("zip/testdata");
    let tmp = tempfile::tempdir().unwrap();
    let mut m = Mismatches::default();
    let mut calls = Vec::new();
    let mut cases: Vec<(String, Case)> = Vec::new();
    let mut writes = Vec::new();
    for kind in [
        "create_from_dir",
        "check_dir",
        "check_files",
        "create",
        "check_zip",
        "unzip",
    ] {
        let mut entries: Vec<_> = fs::read_dir(testdata.join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for (i, file) in entries.iter().enumerate() {
            let ar = txtar::parse(&fs::read(file).unwrap());
            let header = txtar::header(&ar.comment);
            let name = format!("{kind}/{}", file.file_name().unwrap().to_string_lossy());
            let (path, version) = (header.path, header.version);
            let module: Module =
                zip::module_version_from_bytes(&path, &version).map_err(|e| e.to_string());
            let hash = Some(header.hash).filter(|h| !h.is_empty());
            let work = tmp.path().join(format!("{kind}{i}"));
            fs::create_dir_all(&work).unwrap();
            let files: Vec<(Vec<u8>, Vec<u8>)> = ar
                .files
                .iter()
                .filter(|(n, _)| n != "want")
                .map(|(n, d)| (n.clone().into_bytes(), d.clone()))
                .collect();
            let mem = || {
                files
                    .iter()
                    .map(|(n, d)| MemFile {
                        name: n.clone(),
                        data: d.clone(),
                    })
                    .collect()
            };
            let pairs: Vec<Vec<u8>> = files
                .iter()
                .flat_map(|(n, d)| [n.clone(), d.clone()])
                .collect();
            let args = |head: &[&[u8]]| -> Vec<Vec<u8>> {
                head.iter()
                    .map(|h| h.to_vec())
                    .chain(pairs.iter().cloned())
                    .collect()
            };
            match kind {
                "create_from_dir" | "check_dir" => {
                    let dir = work.join("m");
                    fs::create_dir_all(&dir).unwrap();
                    for (n, d) in &files {
                        trees::write(&dir, n, d);
                    }
                    let d = arg(&dir);
                    if kind == "check_dir" {
                        calls.push(Call::new("check_dir", &[d]));
                        cases.push((name, Case::CheckDir { dir }));
                    } else {
                        let out = arg(&work.join("go.zip"));
                        calls.push(Call::new(
                            "create_from_dir",
                            &[d.as_bytes(), &path, &version, out.as_bytes()],
                        ));
                        cases.push((name, Case::CreateFromDir { dir, module, hash }));
                    }
                }
                "check_files" => {
                    calls.push(Call::new("check_files", &pairs));
                    cases.push((name, Case::CheckFiles { files: mem() }));
                }
                "create" => {
                    let out = arg(&work.join("go.zip"));
                    calls.push(Call::new(
                        "create_files",
                        &args(&[out.as_bytes(), &path, &version]),
                    ));
                    cases.push((
                        name,
                        Case::Create {
                            files: mem(),
                            module,
                            hash,
                        },
                    ));
                }
                _ => {
                    // The archive's files are zip entries, written by Go's archive/zip first.
                    let zip = work.join("in.zip");
                    let z = arg(&zip);
                    writes.push(Call::new("write_zip", &args(&[z.as_bytes()])));
                    if kind == "check_zip" {
                        calls.push(Call::new("check_zip", &[z.as_bytes(), &path, &version]));
                        cases.push((name, Case::CheckZip { zip, module }));
                    } else {
                        let dest = work.join("go_out");
                        calls.push(Call::new(
                            "unzip",
                            &[z.as_bytes(), &path, &version, arg(&dest).as_bytes()],
                        ));
                        cases.push((name, Case::Unzip { zip, module, dest }));
                    }
                }
            }
        }
    }
    for r in go.run(&writes) {
        assert_eq!(r["ok"], json!(true), "write_zip: {r}");
    }
    let results = go.run(&calls);
    let mut stripped = 0;
    for ((name, case), g) in cases.iter().zip(&results) {
        match case {
            Case::CheckDir { dir } => {
                let ours = match zip::check_dir(dir) {
                    Ok(cf) => checked_json(&cf, cf.err().map_err(|e| e.to_string()), Some(dir)),
                    Err(e) => err_only(&e),
                };
                m.check(|| format!("CheckDir {name}"), g, &ours);
            }
            Case::CheckFiles { files } => {
                let cf = zip::check_files(files);
                let ours = checked_json(&cf, cf.err().map_err(|e| e.to_string()), None);
                m.check(|| format!("CheckFiles {name}"), g, &ours);
            }
            Case::CreateFromDir { dir, module, hash } => {
                let out = tmp.path().join("ours.zip");
                let r = with_module(module, |mv| {
                    zip::create_from_dir(fs::File::create(&out).unwrap(), mv, dir)
                });
                let g = unwrap_go_error(g, &[format!("create zip {}: ", arg(dir))], &mut stripped);
                compare_created(&mut m, name, &g, r.map(|c| c.hash), hash.as_deref());
            }
            Case::Create {
                files,
                module,
                hash,
            } => {
                let r = with_module(module, |mv| zip::create(Vec::new(), mv, files));
                let g = unwrap_go_error(g, &["create zip: ".to_string()], &mut stripped);
                compare_created(&mut m, name, &g, r.map(|c| c.hash), hash.as_deref());
            }
            Case::CheckZip { zip, module } => {
                let ours = match module {
                    Ok(mv) => our_check_zip(zip, mv),
                    Err(e) => json!({"ok": false, "err": e}),
                };
                // x/mod reports empty lists when it fails before reading the zip.
                let g = if g.get("valid").is_some() && ours.get("valid").is_none() {
                    go_err_only(g)
                } else {
                    g.clone()
                };
                m.check(|| format!("CheckZip {name}"), &g, &ours);
            }
            Case::Unzip { zip, module, dest } => {
                let ours_dest = dest.with_file_name("ours_out");
                let r = with_module(module, |mv| {
                    zip::unzip(&ours_dest, mv, fs::File::open(zip).unwrap())
                });
                let ours =
                    json!({"ok": r.is_ok(), "err": r.as_ref().err().cloned().unwrap_or_default()});
                let g = unwrap_go_error(g, &[format!("unzip {}: ", arg(zip))], &mut stripped);
                m.check(|| format!("Unzip {name}"), &g, &ours);
                if r.is_ok() && g["ok"] == json!(true) {
                    let a = dirhash::hash_dir(dest, "x").map_err(|e| e.to_string());
                    let b = dirhash::hash_dir(&ours_dest, "x").map_err(|e| e.to_string());
                    m.check(
                        || format!("Unzip {name}: extracted trees"),
                        &json!(a),
                        &json!(b),
                    );
                }
            }
        }
    }
    eprintln!("x/mod zip/testdata archives: {}", cases.len());
    eprintln!(
        "note: {stripped} Go errors had x/mod's `create zip`/`unzip` wrapper removed before comparing"
    );
    m.finish("x_mod_zip_testdata_matches");
}

fn compare_created(
    m: &mut Mismatches,
    name: &str,
    g: &Value,
    ours: Result<String, String>,
    want: Option<&str>,
) {
    let mut g_cmp = go_err_only(g);
    if g["ok"] == json!(true) {
        g_cmp["h1"] = g["h1"].clone();
    }
    let ours_json = match &ours {
        Ok(h) => json!({"ok": true, "err": "", "h1": h}),
        Err(e) => json!({"ok": false, "err": e}),
    };
    m.check(|| format!("Create {name}"), &g_cmp, &ours_json);
    if let (Some(want), Ok(h)) = (want, &ours) {
        m.check(
            || format!("Create {name}: hash= in the archive"),
            &json!(want),
            &json!(h),
        );
    }
}
