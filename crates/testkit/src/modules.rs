//! Fixture modules built in memory: a module's files become the exact artifacts a GOPROXY serves
//! (`.info`, `.mod`, `.zip`) and the go.sum lines the go command would write for them, all
//! computed with `strata_core` (zip creation, `h1:` hashes, go.sum formatting).

use std::io::{self, Read};

use strata_core::dirhash::{hash_go_mod, hash_zip};
use strata_core::gomod::GoMod;
use strata_core::gosum::format_module_lines;
use strata_core::version::ModuleVersion;
use strata_core::zip::{FileKind, ModuleFile, create};

/// The commit time every fixture `.info` reports unless set otherwise.
pub const DEFAULT_TIME: &str = "2024-01-02T03:04:05Z";

/// A module version described by its files (paths relative to the module root).
///
/// A root `go.mod` among `files` is its `.mod`; without one the synthesized go.mod
/// (`module <path>\n`) is served, as for pre-module versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureModule {
    /// Module path, e.g. `example.com/Fixture/upper` (unescaped).
    pub path: String,
    /// Canonical version, e.g. `v1.0.0`.
    pub version: String,
    /// `(path, content)` pairs, zipped in this order.
    pub files: Vec<(String, Vec<u8>)>,
    /// The `Time` of the `.info` (RFC 3339).
    pub time: String,
}

impl FixtureModule {
    /// A module with a `go.mod` (`go 1.21`, requiring `requires`) and one Go file declaring a
    /// package named after the path's last element, so `go get <path>` finds a package.
    pub fn new(path: &str, version: &str, requires: &[(&str, &str)]) -> Self {
        let mut go_mod = format!("module {path}\n\ngo 1.21\n");
        if !requires.is_empty() {
            go_mod.push_str("\nrequire (\n");
            for (p, v) in requires {
                go_mod.push_str(&format!("\t{p} {v}\n"));
            }
            go_mod.push_str(")\n");
        }
        let package = package_name(path);
        let source = format!(
            "// Package {package} is a strata test fixture.\npackage {package}\n\n// Version is the fixture's version.\nconst Version = \"{version}\"\n"
        );
        FixtureModule {
            path: path.to_owned(),
            version: version.to_owned(),
            files: vec![
                ("go.mod".to_owned(), go_mod.into_bytes()),
                (format!("{package}.go"), source.into_bytes()),
            ],
            time: DEFAULT_TIME.to_owned(),
        }
    }

    /// Adds (or replaces) a file.
    pub fn with_file(mut self, name: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.retain(|(n, _)| n != name);
        self.files.push((name.to_owned(), content.into()));
        self
    }

    /// The `.mod` bytes: the root go.mod, or the synthesized one.
    pub fn go_mod(&self) -> Vec<u8> {
        self.files
            .iter()
            .find(|(n, _)| n == "go.mod")
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| GoMod::synthesized(&self.path))
    }

    /// The `.info` JSON, `{"Version":…,"Time":…}`.
    pub fn info(&self) -> Vec<u8> {
        serde_json::json!({ "Version": self.version, "Time": self.time })
            .to_string()
            .into_bytes()
    }

    /// The module zip (byte-identical for equal input), created by `strata_core::zip::create`.
    pub fn zip(&self) -> Vec<u8> {
        let files: Vec<MemFile<'_>> = self
            .files
            .iter()
            .map(|(path, data)| MemFile { path, data })
            .collect();
        let mut out = Vec::new();
        create(
            &mut out,
            &ModuleVersion::new(&self.path, &self.version),
            &files,
        )
        .unwrap_or_else(|e| panic!("fixture {}@{}: {e}", self.path, self.version));
        out
    }

    /// The zip with one byte of one file's content flipped, re-zipped: still a valid zip, but its
    /// `h1:` hash differs — what a compromised upstream would serve.
    pub fn tampered_zip(&self) -> Vec<u8> {
        let mut tampered = self.clone();
        let (_, data) = tampered
            .files
            .iter_mut()
            .find(|(n, d)| n != "go.mod" && !d.is_empty())
            .expect("fixture has a non-empty file besides go.mod");
        data[0] ^= 0x20;
        tampered.zip()
    }

    /// Builds every artifact and hash once.
    pub fn build(&self) -> BuiltModule {
        let zip = self.zip();
        let go_mod = self.go_mod();
        let zip_hash = hash_zip(io::Cursor::new(&zip)).expect("hash of a fixture zip");
        let go_mod_hash = hash_go_mod(&go_mod);
        BuiltModule {
            go_sum: format_module_lines(&self.path, &self.version, &zip_hash, &go_mod_hash),
            info: self.info(),
            tampered_zip: self.tampered_zip(),
            module: self.clone(),
            zip,
            go_mod,
            zip_hash,
            go_mod_hash,
        }
    }
}

/// A fixture module with its artifacts and hashes computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltModule {
    /// The source description.
    pub module: FixtureModule,
    /// `.zip` bytes.
    pub zip: Vec<u8>,
    /// A valid zip with different content (see [`FixtureModule::tampered_zip`]).
    pub tampered_zip: Vec<u8>,
    /// `.mod` bytes.
    pub go_mod: Vec<u8>,
    /// `.info` bytes.
    pub info: Vec<u8>,
    /// `h1:` of the zip.
    pub zip_hash: String,
    /// `h1:` of the go.mod.
    pub go_mod_hash: String,
    /// The two go.sum lines (zip, then `/go.mod`), each ending in `\n` — also the checksum
    /// database's record text for this version.
    pub go_sum: String,
}

impl BuiltModule {
    /// Module path.
    pub fn path(&self) -> &str {
        &self.module.path
    }

    /// Version.
    pub fn version(&self) -> &str {
        &self.module.version
    }
}

/// A generated dependency graph of `n` modules at `v1.0.0`: module `i` requires module `i-1`
/// (one long chain) and module `i/2` (fan-in), every third path has upper-case letters (to
/// exercise `!`-escaping), and no `+incompatible` versions. Modules come in dependency order.
pub fn dependency_graph(n: usize) -> Vec<FixtureModule> {
    let paths: Vec<String> = (0..n).map(graph_path).collect();
    (0..n)
        .map(|i| {
            let mut deps: Vec<usize> = Vec::new();
            if i >= 1 {
                deps.push(i - 1);
            }
            if i >= 2 && i / 2 != i - 1 {
                deps.push(i / 2);
            }
            let requires: Vec<(&str, &str)> = deps
                .iter()
                .map(|&d| (paths[d].as_str(), "v1.0.0"))
                .collect();
            FixtureModule::new(&paths[i], "v1.0.0", &requires)
        })
        .collect()
}

/// The path of graph module `i`.
fn graph_path(i: usize) -> String {
    if i % 3 == 1 {
        format!("example.com/Graph/Mod{i}")
    } else {
        format!("example.com/graph/mod{i}")
    }
}

/// A Go package name for a module: its last path element, lower-cased, letters and digits only.
fn package_name(path: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or(path);
    let name: String = last
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    match name.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => name,
        _ => format!("p{name}"),
    }
}

/// A file held in memory, for `strata_core::zip::create`.
struct MemFile<'a> {
    path: &'a str,
    data: &'a [u8],
}

impl ModuleFile for MemFile<'_> {
    fn path(&self) -> &[u8] {
        self.path.as_bytes()
    }

    fn kind(&self) -> io::Result<FileKind> {
        Ok(FileKind::Regular {
            size: self.data.len() as u64,
        })
    }

    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_and_hashes_agree() {
        let m = FixtureModule::new("example.com/Fixture/upper", "v1.2.3", &[]).build();
        assert_eq!(
            hash_zip(io::Cursor::new(&m.zip)).unwrap(),
            m.zip_hash,
            "zip hash"
        );
        assert_ne!(
            hash_zip(io::Cursor::new(&m.tampered_zip)).unwrap(),
            m.zip_hash
        );
        assert!(m.go_sum.starts_with("example.com/Fixture/upper v1.2.3 h1:"));
        assert!(
            m.go_sum
                .contains("\nexample.com/Fixture/upper v1.2.3/go.mod h1:")
        );
        let info: serde_json::Value = serde_json::from_slice(&m.info).unwrap();
        assert_eq!(info["Version"], "v1.2.3");
    }

    #[test]
    fn synthesized_go_mod_without_root_go_mod() {
        let mut m = FixtureModule::new("example.com/old", "v1.0.0", &[]);
        m.files.retain(|(n, _)| n != "go.mod");
        assert_eq!(m.go_mod(), b"module example.com/old\n");
    }

    #[test]
    fn graph_requires_only_earlier_modules() {
        let graph = dependency_graph(10);
        assert_eq!(graph.len(), 10);
        assert!(
            graph
                .iter()
                .any(|m| m.path.chars().any(|c| c.is_ascii_uppercase()))
        );
        for (i, m) in graph.iter().enumerate() {
            let go_mod = String::from_utf8(m.go_mod()).unwrap();
            for later in &graph[i..] {
                assert!(!go_mod.contains(&format!("\t{} ", later.path)));
            }
            if i > 0 {
                assert!(go_mod.contains(&format!("\t{} v1.0.0", graph[i - 1].path)));
            }
        }
    }
}
