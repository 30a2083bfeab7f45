//! Property tests: case-encoding round-trips, canonical versions are fixed points, and semver
//! ordering is a total order consistent with canonical forms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;

use proptest::prelude::*;
use strata_core::path::{self, ModulePath};
use strata_core::{semver, version};

/// Module paths from an alphabet rich in the characters case-encoding cares about.
fn module_path() -> impl Strategy<Value = String> {
    let first = "[a-z0-9][a-z0-9-]{0,8}\\.[a-z]{2,4}";
    let elem = "[A-Za-z0-9_~][A-Za-z0-9._~-]{0,10}[A-Za-z0-9_~]";
    (
        first,
        prop::collection::vec(elem, 0..4),
        prop::option::of(2u32..20),
    )
        .prop_map(|(first, elems, major)| {
            let mut p = first;
            for e in elems {
                p.push('/');
                p.push_str(&e);
            }
            if let Some(m) = major {
                p.push_str(&format!("/v{m}"));
            }
            p
        })
}

fn version_string() -> impl Strategy<Value = String> {
    (
        0u32..30,
        0u32..30,
        0u32..30,
        prop::option::of("[0-9A-Za-z-]{1,6}(\\.[0-9A-Za-z-]{1,6}){0,2}"),
    )
        .prop_map(|(a, b, c, pre)| match pre {
            Some(p) => format!("v{a}.{b}.{c}-{p}"),
            None => format!("v{a}.{b}.{c}"),
        })
}

proptest! {
    #[test]
    fn escape_round_trips(p in module_path()) {
        if path::check_path(&p).is_ok() {
            let escaped = path::escape_path(&p).unwrap();
            prop_assert!(!escaped.chars().any(|c| c.is_ascii_uppercase()));
            prop_assert_eq!(path::unescape_path(&escaped).unwrap(), p.clone());
            let m = ModulePath::new(&p).unwrap();
            prop_assert_eq!(ModulePath::from_escaped(&m.escaped()).unwrap(), m);
        }
    }

    #[test]
    fn escaped_versions_round_trip(v in "[A-Za-z0-9.+-]{1,20}") {
        if let Ok(e) = path::escape_version(&v) {
            prop_assert_eq!(path::unescape_version(&e).unwrap(), v);
        }
    }

    #[test]
    fn canonical_is_a_fixed_point(v in version_string(), build in prop::option::of("[0-9a-z]{1,5}")) {
        let v = match build { Some(b) => format!("{v}+{b}"), None => v };
        let c = version::canonical_version(&v);
        if semver::is_valid(&v) {
            prop_assert_eq!(version::canonical_version(&c), c.clone());
            prop_assert_eq!(semver::compare(&v, &c), Ordering::Equal);
            prop_assert!(version::Version::new(&c).is_ok());
        }
    }

    #[test]
    fn compare_is_antisymmetric_and_transitive(a in version_string(), b in version_string(), c in version_string()) {
        prop_assert_eq!(semver::compare(&a, &b), semver::compare(&b, &a).reverse());
        if semver::compare(&a, &b) != Ordering::Greater && semver::compare(&b, &c) != Ordering::Greater {
            prop_assert_ne!(semver::compare(&a, &c), Ordering::Greater);
        }
    }
}

mod zip_round_trip {
    use std::io::{self, Cursor, Read};

    use proptest::prelude::*;
    use strata_core::dirhash;
    use strata_core::version::ModuleVersion;
    use strata_core::zip::{self, FileKind, ModuleFile};

    /// An in-memory file offered to `zip::create`.
    #[derive(Debug, Clone)]
    struct MemFile {
        path: String,
        data: Vec<u8>,
    }

    impl ModuleFile for MemFile {
        fn path(&self) -> &[u8] {
            self.path.as_bytes()
        }
        fn kind(&self) -> io::Result<FileKind> {
            Ok(FileKind::Regular {
                size: self.data.len() as u64,
            })
        }
        fn open(&self) -> io::Result<Box<dyn Read + '_>> {
            Ok(Box::new(&self.data[..]))
        }
    }

    /// Module trees with nested directories, upper-case and non-ASCII names, empty and
    /// compressible files. Duplicate and colliding names are dropped (they are invalid).
    fn tree() -> impl Strategy<Value = Vec<MemFile>> {
        let name = "[A-Za-z0-9_é-]{1,8}(\\.go|\\.txt|\\.md)?";
        let path = prop::collection::vec(name, 1..4).prop_map(|els| els.join("/"));
        let data = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2000),
            ("[a-z ]{0,20}", 0usize..200).prop_map(|(s, n)| s.repeat(n).into_bytes()),
        ];
        prop::collection::vec((path, data), 0..12).prop_map(|files| {
            let mut seen: Vec<String> = Vec::new();
            let mut out = Vec::new();
            for (path, data) in files {
                let lower = path.to_lowercase();
                // Keep names that neither collide nor clash file-vs-directory with earlier ones.
                let clash = seen.iter().any(|s| {
                    *s == lower
                        || s.starts_with(&format!("{lower}/"))
                        || lower.starts_with(&format!("{s}/"))
                });
                if clash || lower == "go.mod" || lower.ends_with("/go.mod") {
                    continue;
                }
                seen.push(lower);
                out.push(MemFile { path, data });
            }
            out.push(MemFile {
                path: "go.mod".into(),
                data: b"module example.com/Prop/m\n\ngo 1.22\n".to_vec(),
            });
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn create_check_hash_are_stable(files in tree()) {
            let module = ModuleVersion::new("example.com/Prop/m", "v1.2.3");
            let mut first = Vec::new();
            let created = zip::create(&mut first, &module, &files).unwrap();
            let mut second = Vec::new();
            zip::create(&mut second, &module, &files).unwrap();
            prop_assert_eq!(&first, &second, "creation is deterministic");

            let summary = zip::check_zip(&module, Cursor::new(&first)).unwrap();
            prop_assert_eq!(&summary.hash, &created.hash);
            prop_assert_eq!(dirhash::hash_zip(Cursor::new(&first)).unwrap(), created.hash.clone());
            prop_assert_eq!(summary.go_mod.as_deref(), Some(&b"module example.com/Prop/m\n\ngo 1.22\n"[..]));
            prop_assert_eq!(zip::infer_module_version(Cursor::new(&first)).unwrap(), module.clone());

            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("m");
            let unzipped = zip::unzip(&out, &module, Cursor::new(&first)).unwrap();
            prop_assert_eq!(&unzipped.hash, &created.hash);
            prop_assert_eq!(dirhash::hash_dir(&out, "example.com/Prop/m@v1.2.3").unwrap(), created.hash);
        }
    }
}
