//! Module trees on disk for the zip and dirhash comparisons: hand-made trees for each rule
//! (vendor directories under go 1.23 and 1.24, nested modules, VCS directories, symbolic links,
//! `.hg_archival.txt`, odd names) and seeded random mixtures of them.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::inputs::Rng;

/// A module tree and the module version to zip it as.
pub struct Tree {
    pub name: String,
    pub module_path: String,
    pub version: String,
    /// Whether every file can be read (a FIFO blocks `HashDir`, Go's and ours, forever).
    pub readable: bool,
}

/// Writes `data` at `rel` (raw bytes, `/`-separated) under `root`, creating parents.
pub fn write(root: &Path, rel: &[u8], data: &[u8]) {
    let path = root.join(OsStr::from_bytes(rel));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, data).unwrap();
}

fn symlink(root: &Path, target: &str, rel: &str) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// A file of `size` bytes written sparse (`set_len`), so huge files cost no disk.
pub fn sparse(root: &Path, rel: &str, size: u64) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let f = fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
}

fn go_mod(path: &str, go: Option<&str>) -> Vec<u8> {
    let mut s = format!("module {path}\n");
    if let Some(go) = go {
        s.push_str(&format!("\ngo {go}\n"));
    }
    s.into_bytes()
}

const VENDOR_FILES: &[&str] = &[
    "vendor/modules.txt",
    "vendor/example.com/dep/dep.go",
    "vendor/example.com/dep/LICENSE",
    "vendor/LICENSE",
    "vendor/x.go",
    "vendor/a/vendor/b.go",
    "pkg/vendor/v.go",
    "pkg/vendor/sub/v.go",
    "vendor.go",
    "vendorx/y.go",
];

/// Hand-made trees, one per rule (name, go version of the root go.mod).
pub fn fixed(root: &Path) -> Vec<Tree> {
    let mut trees = Vec::new();
    let mut add = |name: &str, module_path: &str, version: &str, build: &dyn Fn(&Path)| {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        build(&dir);
        let readable = name != "fifo";
        trees.push(Tree {
            name: name.into(),
            module_path: module_path.into(),
            version: version.into(),
            readable,
        });
    };
    for go in ["1.23", "1.24", "1.24.0", "1.21rc1", "1.24-x", "junk"] {
        let name = format!("vendor_go{go}");
        add(&name, "example.com/vendored", "v1.0.0", &|d| {
            write(d, b"go.mod", &go_mod("example.com/vendored", Some(go)));
            for f in VENDOR_FILES {
                write(d, f.as_bytes(), f.as_bytes());
            }
        });
    }
    add("vendor_no_go_mod", "example.com/vendored", "v1.0.0", &|d| {
        for f in VENDOR_FILES {
            write(d, f.as_bytes(), b"x");
        }
    });
    add("nested_modules", "example.com/nest", "v1.2.3", &|d| {
        write(d, b"go.mod", &go_mod("example.com/nest", Some("1.22")));
        write(d, b"a.go", b"package a\n");
        write(d, b"sub/go.mod", b"module example.com/nest/sub\n");
        write(d, b"sub/s.go", b"package sub\n");
        write(d, b"sub/deeper/d.go", b"package deeper\n");
        write(d, b"caps/GO.MOD", b"module example.com/nest/caps\n");
        write(d, b"caps/c.go", b"package caps\n");
        write(d, b"Go.Mod/x.go", b"package x\n");
        write(d, b"dir/go.mod/inner.go", b"go.mod is a directory here\n");
        write(d, b"other/Go.mod", b"module x\n");
    });
    add("root_gomod_case", "example.com/m", "v1.0.0", &|d| {
        write(d, b"GO.MOD", b"module example.com/m\n");
        write(d, b"m.go", b"package m\n");
    });
    add("vcs_dirs", "example.com/vcs", "v0.1.0", &|d| {
        for vcs in [".git", ".hg", ".svn", ".bzr"] {
            write(d, format!("{vcs}/config").as_bytes(), b"x");
            write(d, format!("sub/{vcs}/config").as_bytes(), b"x");
        }
        write(d, b".gitignore", b"*.o\n");
        write(d, b".hg_archival.txt", b"repo: x\n");
        write(d, b"sub/.hg_archival.txt", b"repo: y\n");
        write(d, b".github/workflows/ci.yml", b"on: push\n");
        write(d, b"pkg/.git", b"gitdir: ../.git/modules/pkg\n");
    });
    add(
        "symlinks",
        "example.com/links",
        "v2.0.0+incompatible",
        &|d| {
            write(d, b"real.go", b"package links\n");
            write(d, b"dir/inner.go", b"package dir\n");
            symlink(d, "real.go", "link.go");
            symlink(d, "dir", "dirlink");
            symlink(d, "nowhere", "dangling");
            symlink(d, "../..", "up");
            symlink(d, "real.go", "go.mod");
        },
    );
    add(
        "uppercase_module",
        "github.com/Azure/Go-Autorest/v14",
        "v14.2.0",
        &|d| {
            write(
                d,
                b"go.mod",
                &go_mod("github.com/Azure/Go-Autorest/v14", Some("1.15")),
            );
            write(d, b"Autorest.go", b"package autorest\n");
            write(d, b"README.MD", b"# x\n");
        },
    );
    add("odd_names", "example.com/odd", "v1.0.0", &|d| {
        for name in [
            "é.go",
            "日本語/x.go",
            "a b.go",
            "a~1.go",
            "con.go",
            "aux",
            "COM1.txt",
            "x.",
            "-dash.go",
            "semi;colon",
            "a'b",
            "a:b",
            "a\\b",
            "a*b",
            "a\"b",
            "a<b",
            "a|b",
            "tab\tname",
            "+plus",
            "@at",
            "dots..go",
            "trail ",
            "\u{200b}zw",
            "Ǆ.go",
            "kelvin\u{212a}.go",
        ] {
            write(d, name.as_bytes(), name.as_bytes());
        }
        write(d, b"bad\xffutf8.go", b"x");
        write(d, b"sub/\xc3(/y.go", b"x");
    });
    add("case_collisions", "example.com/fold", "v1.0.0", &|d| {
        write(d, b"A.go", b"a");
        write(d, b"a.go", b"a");
        write(d, b"Dir/x.go", b"x");
        write(d, b"dir/y.go", b"y");
        write(d, b"\xc3\x84.go", b"A-umlaut");
        write(d, b"\xc3\xa4.go", b"a-umlaut");
        write(d, b"\xe2\x84\xaa", b"kelvin");
        write(d, b"k", b"k");
    });
    add("sizes", "example.com/sizes", "v1.0.0", &|d| {
        write(d, b"go.mod", &go_mod("example.com/sizes", Some("1.24")));
        sparse(d, "LICENSE", (16 << 20) + 1);
        sparse(d, "sub/LICENSE", (16 << 20) + 1);
        sparse(d, "empty", 0);
    });
    add("big_go_mod", "example.com/bigmod", "v1.0.0", &|d| {
        sparse(d, "go.mod", (16 << 20) + 1);
        write(d, b"x.go", b"package x\n");
    });
    add("empty", "example.com/empty", "v1.0.0", &|d| {
        fs::create_dir_all(d.join("only/dirs")).unwrap();
    });
    add("bad_module_path", "Example.com/m", "v1.0.0", &|d| {
        write(d, b"x.go", b"x")
    });
    add("bad_version", "example.com/m", "v1.0", &|d| {
        write(d, b"x.go", b"x")
    });
    add("major_mismatch", "example.com/m/v2", "v1.0.0", &|d| {
        write(d, b"x.go", b"x")
    });
    add("gopkg_in", "gopkg.in/yaml.v2", "v2.4.0", &|d| {
        write(d, b"go.mod", b"module \"gopkg.in/yaml.v2\"\n");
        write(d, b"yaml.go", b"package yaml\n");
    });
    add("fifo", "example.com/fifo", "v1.0.0", &|d| {
        write(d, b"x.go", b"x");
        let _ = std::process::Command::new("mkfifo")
            .arg(d.join("pipe"))
            .status();
    });
    trees
}

const RANDOM_NAMES: &[&str] = &[
    "a.go",
    "b.go",
    "README.md",
    "LICENSE",
    "doc/x.md",
    "internal/i.go",
    "cmd/tool/main.go",
    "vendor/modules.txt",
    "vendor/example.com/d/d.go",
    "x/vendor/y.go",
    "sub/go.mod",
    "sub/s.go",
    "sub/GO.MOD",
    ".git/HEAD",
    ".hg/store",
    ".hg_archival.txt",
    "sub/.hg_archival.txt",
    "é.go",
    "A.go",
    "Ä/b.go",
    "a:b",
    "con",
    "x.",
    "testdata/t.txt",
    "go.mod/x",
    ".dot",
    "sub/sub/go.mod",
    "vendor",
    "pkg/vendor/v.go",
    "Vendor/v.go",
];

const GOOD_NAMES: &[&str] = &[
    "a.go",
    "b.go",
    "README.md",
    "LICENSE",
    "doc/x.md",
    "internal/i.go",
    "cmd/tool/main.go",
    "vendor/modules.txt",
    "vendor/example.com/d/d.go",
    "x/vendor/y.go",
    "sub/go.mod",
    "sub/s.go",
    ".git/HEAD",
    ".hg_archival.txt",
    "é.go",
    "testdata/t.txt",
    "go.sum",
    "x_test.go",
    "a/b/c/d.go",
    "Ä/b.go",
    ".dot",
    "pkg/vendor/v.go",
];

/// A random mixture: a root go.mod (any go version or none) and files drawn from every rule.
pub fn random(root: &Path, rng: &mut Rng, i: usize) -> Tree {
    let name = format!("random{i}");
    let dir = root.join(&name);
    fs::create_dir_all(&dir).unwrap();
    // Mostly module versions that fit together, sometimes ones that do not.
    let (module_path, version) = rng.pick(&[
        ("example.com/r", "v1.0.0"),
        ("github.com/User/Repo", "v0.0.0-20200101000000-abcdefabcdef"),
        ("example.com/r/v2", "v2.1.0"),
        ("gopkg.in/r.v1", "v1.0.0-rc.1"),
        ("example.com/R", "v3.0.0+incompatible"),
        ("example.com/r", "v1.2.3-0.20200101000000-abcdefabcdef"),
        ("example.com/r", "v2.1.0"),
        ("example.com/r/v2", "v1.0.0"),
    ]);
    let (module_path, version) = (module_path.to_string(), version.to_string());
    if rng.chance(80) {
        let go = rng.pick(&[
            None,
            Some("1.13"),
            Some("1.23"),
            Some("1.24"),
            Some("1.25.1"),
            Some("bad"),
        ]);
        write(&dir, b"go.mod", &go_mod(&module_path, go));
    }
    for _ in 0..rng.below(12) {
        let n = if rng.chance(75) {
            rng.pick(GOOD_NAMES)
        } else {
            rng.pick(RANDOM_NAMES)
        };
        // A name can be a file in one place and a directory in another: skip conflicts.
        let path = dir.join(n);
        if path.parent().is_some_and(|p| p.is_file()) || path.is_dir() {
            continue;
        }
        let _ = fs::create_dir_all(path.parent().unwrap());
        let len = rng.below(300);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = fs::write(&path, data);
    }
    if rng.chance(15) {
        // A symbolic link to a file that exists (dangling ones are in the hand-made trees).
        let _ = fs::write(dir.join("target.txt"), b"target\n");
        let _ = std::os::unix::fs::symlink("target.txt", dir.join("link"));
    }
    Tree {
        name,
        module_path,
        version,
        readable: true,
    }
}
