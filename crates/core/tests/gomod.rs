//! go.mod reading: directives, comments, errors with line numbers, lax mode, the synthesized
//! go.mod, retractions; and the real-world go.mod files in `../shared/realworld`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use strata_core::gomod::{GoMod, GoModError, Module, Replace, Require, Retract, lax_go_version};

fn err(text: &str) -> String {
    GoMod::parse(text.as_bytes()).expect_err(text).to_string()
}

#[test]
fn reads_every_directive() {
    let text = r#"// The module.
//
// Deprecated: use example.com/m/v2.
module "example.com/m" // trailing

go 1.23.0
toolchain go1.24.1

godebug (
	default=go1.21
	panicnil=1
)

require (
	golang.org/x/mod v0.20.0
	rsc.io/quote v1.5 // indirect
	github.com/x/y v2.0.0+incompatible // indirect; reason
	gopkg.in/yaml.v2 v2.4.0
)

require example.com/one v1.0.0

exclude example.com/bad v1.0.0-pre

replace (
	example.com/old => ../old
	example.com/old2 v1.2.3 => example.com/new v1.4.0
)

retract v1.0.0 // oops
retract [v1.1.0, v1.2.0]
retract (
	// Published too early.
	v0.9.0
	[v0.1.0, v0.2.0] // tests
	"v0.3.0"
)

tool example.com/m/cmd/gen
ignore ./testdata
"#;
    let m = GoMod::parse(text.as_bytes()).unwrap();
    assert_eq!(
        m.module,
        Some(Module {
            path: "example.com/m".into(),
            deprecated: Some("use example.com/m/v2.\ntrailing".into())
        })
    );
    assert_eq!(m.go.as_deref(), Some("1.23.0"));
    assert_eq!(m.toolchain.as_deref(), Some("go1.24.1"));
    assert_eq!(
        m.godebug,
        vec![
            ("default".into(), "go1.21".into()),
            ("panicnil".into(), "1".into())
        ]
    );
    let req = |p: &str, v: &str, i| Require {
        path: p.into(),
        version: v.into(),
        indirect: i,
    };
    assert_eq!(
        m.require,
        vec![
            req("golang.org/x/mod", "v0.20.0", false),
            req("rsc.io/quote", "v1.5.0", true),
            req("github.com/x/y", "v2.0.0+incompatible", true),
            req("gopkg.in/yaml.v2", "v2.4.0", false),
            req("example.com/one", "v1.0.0", false),
        ]
    );
    assert_eq!(m.exclude.len(), 1);
    assert_eq!(
        m.replace,
        vec![
            Replace {
                old_path: "example.com/old".into(),
                old_version: None,
                new_path: "../old".into(),
                new_version: None
            },
            Replace {
                old_path: "example.com/old2".into(),
                old_version: Some("v1.2.3".into()),
                new_path: "example.com/new".into(),
                new_version: Some("v1.4.0".into())
            },
        ]
    );
    let ret = |l: &str, h: &str, r: &str| Retract {
        low: l.into(),
        high: h.into(),
        rationale: r.into(),
    };
    assert_eq!(
        m.retract,
        vec![
            ret("v1.0.0", "v1.0.0", "oops"),
            ret("v1.1.0", "v1.2.0", ""),
            ret("v0.9.0", "v0.9.0", "Published too early."),
            ret("v0.1.0", "v0.2.0", "tests"),
            ret("v0.3.0", "v0.3.0", ""),
        ]
    );
    assert_eq!(m.tool, vec!["example.com/m/cmd/gen".to_string()]);
    assert_eq!(m.ignore, vec!["./testdata".to_string()]);
}

#[test]
fn deprecation_comes_from_module_comments_only() {
    let dep = |t: &str| {
        GoMod::parse(t.as_bytes())
            .unwrap()
            .deprecated()
            .map(str::to_owned)
    };
    assert_eq!(dep("module m // Deprecated: gone\n"), Some("gone".into()));
    assert_eq!(
        dep("// Deprecated: a\n// b\nmodule m\n"),
        Some("a\nb".into())
    );
    assert_eq!(dep("// Deprecated: detached\n\nmodule m\n"), None);
    assert_eq!(
        dep("// intro\n//\n// Deprecated: x\nmodule m\n"),
        Some("x".into())
    );
    assert_eq!(dep("// intro\n// Deprecated: x\nmodule m\n"), None);
    assert_eq!(dep("module ( // Deprecated: block\n\tm\n)\n"), None);
    assert_eq!(
        dep("// Deprecated: block\nmodule (\n\tm\n)\n"),
        Some("block".into())
    );
    assert_eq!(
        dep("module (\n\t// Deprecated: inner\n\tm\n)\n"),
        Some("inner".into())
    );
    assert_eq!(dep("module m\n"), None);
}

#[test]
fn errors_name_the_line_like_modfile() {
    assert_eq!(
        err("module m\n\nfoo bar\n"),
        "go.mod:3: unknown directive: foo"
    );
    assert_eq!(
        err("module m\n  foo\n"),
        "go.mod:2:3: unknown directive: foo"
    );
    assert_eq!(
        err("module m\nmodule n\n"),
        "go.mod:2: repeated module statement"
    );
    assert_eq!(err("module a b\n"), "go.mod:1: usage: module module/path");
    assert_eq!(
        err("module 'm'\n"),
        "go.mod:1: invalid quoted string: unquoted string cannot contain quote"
    );
    assert_eq!(
        err("module `m`\n"),
        "go.mod:1: invalid quoted string: unquoted string cannot contain quote"
    );
    assert_eq!(
        err("module \"a\\qb\"\n"),
        "go.mod:1: invalid quoted string: invalid syntax"
    );
    assert_eq!(
        err("go 1.21-foo\n"),
        "go.mod:1: invalid go version '1.21-foo': must match format 1.23.0"
    );
    assert_eq!(err("go 1.21\ngo 1.22\n"), "go.mod:2: repeated go statement");
    assert_eq!(
        err("toolchain 1.21\n"),
        "go.mod:1: invalid toolchain version '1.21': must match format go1.23.0 or default"
    );
    assert_eq!(
        err("require x.y/z v1\nrequire (\n\tx.y/z/v2 v1.0.0\n)\n"),
        "go.mod:3:2: require x.y/z/v2: version \"v1.0.0\" invalid: should be v2, not v1"
    );
    assert_eq!(
        err("require a.b/c 1.2.3\n"),
        "go.mod:1: require a.b/c: version \"1.2.3\" invalid: must be of the form v1.2.3"
    );
    assert_eq!(
        err("require a.b/c/v1 v1.2.3\n"),
        "go.mod:1: invalid module path"
    );
    assert_eq!(
        err("require a.b/c\n"),
        "go.mod:1: usage: require module/path v1.2.3"
    );
    assert_eq!(
        err("replace a => b\n"),
        "go.mod:1: replacement module without version must be directory path (rooted or starting with . or ..)"
    );
    assert_eq!(
        err("replace a => b@v1.0.0\n"),
        "go.mod:1: replacement module must match format 'path version', not 'path@version'"
    );
    assert_eq!(
        err("replace a => ./b v1.0.0\n"),
        "go.mod:1: replacement module directory path \"./b\" cannot have version"
    );
    assert_eq!(
        err("retract [v1.0.0 v1.1.0]\n"),
        "go.mod:1: expected ',' after version"
    );
    assert_eq!(
        err("retract v1.0.0 v1.1.0\n"),
        "go.mod:1: unexpected token after version: \"v1.1.0\""
    );
    assert_eq!(err("retract\n"), "go.mod:1: expected '[' or version");
    assert_eq!(
        err("foo (\n)\nbar baz (\n)\n"),
        "go.mod:1: unknown block type: foo\ngo.mod:3: unknown block type: bar baz"
    );
    // Syntax errors stop at the first one; the column is printed when not 1.
    assert_eq!(
        err("module m /* x */\n"),
        "go.mod:1:10: mod files must use // comments (not /* */ comments)"
    );
    assert_eq!(
        err("module \"m\n"),
        "go.mod:1:10: unexpected newline in string"
    );
    assert_eq!(err("module \"m"), "go.mod:1:8: unexpected EOF in string");
    assert_eq!(
        err("require (\n\ta.b/c v1.0.0\n"),
        "go.mod:3: syntax error (unterminated block started at go.mod:1:1)"
    );
    assert_eq!(
        err("require (\n) x\n"),
        "go.mod:2:4: syntax error (expected newline after closing paren)"
    );
    assert_eq!(
        err("module m\u{200b}\n"),
        "go.mod:1:9: unexpected input character '\\u200b'"
    );
    assert_eq!(
        err("module m\u{0}\n"),
        "go.mod:1:9: unexpected input character '\\x00'"
    );
    assert_eq!(
        GoMod::parse(b"module m\nfoo\n").unwrap_err().line(),
        Some(2)
    );
}

#[test]
fn lax_mode_reads_only_what_dependencies_need() {
    let text = b"module m\ngo 1.21-custom\nfoo bar\nreplace a => b\nexclude a v1\nretract [v1, \ntoolchain junk\nrequire a.b/c v1.0.0\n";
    assert!(GoMod::parse(text).is_err());
    let m = GoMod::parse_lax(text).unwrap();
    assert_eq!(m.go.as_deref(), Some("1.21"));
    assert!(m.replace.is_empty() && m.exclude.is_empty() && m.retract.is_empty());
    assert_eq!(m.toolchain, None);
    assert_eq!(m.require.len(), 1);
    // Syntax and require errors still fail a lax parse.
    assert!(GoMod::parse_lax(b"module m\nrequire a.b/c junk\n").is_err());
    assert!(GoMod::parse_lax(b"module m\n/* */\n").is_err());
}

#[test]
fn lax_go_version_is_modfile_parse_lax_go() {
    assert_eq!(
        lax_go_version(b"module m\n\ngo 1.24\n"),
        Some("1.24".into())
    );
    assert_eq!(
        lax_go_version(b"go 1.22.0 // comment\nmodule m\n"),
        Some("1.22.0".into())
    );
    assert_eq!(
        lax_go_version(b"module m\ngo 1.21rc2\n"),
        Some("1.21rc2".into())
    );
    assert_eq!(
        lax_go_version(b"module m\ngo v1.21.x\n"),
        Some("1.21".into())
    );
    assert_eq!(
        lax_go_version(b"module m\ngo 1.21\ngodebug x\nfrob\n"),
        Some("1.21".into())
    );
    assert_eq!(lax_go_version(b"module m\n"), None);
    assert_eq!(lax_go_version(b"module m\ngo 1\n"), None);
    assert_eq!(lax_go_version(b"module m\ngo 1.21\nrequire bad\n"), None);
    assert_eq!(lax_go_version(b""), None);
    assert_eq!(lax_go_version(b"\xff\xfe garbage\n"), None);
}

#[test]
fn lexer_corner_cases() {
    // Comments right after a token, CRLF line ends, tabs, a block opened after a comment.
    let m = GoMod::parse(
        b"module m//c\r\ngo 1.21\t\r\nrequire ( // c\r\n\ta.b/c v1.0.0//indirect\r\n)\r\n",
    )
    .unwrap();
    assert_eq!(m.module_path(), Some("m"));
    assert!(m.require[0].indirect);
    // An empty block on one line, a block whose ")" line carries a comment.
    let m = GoMod::parse(b"module m\nrequire ()\nretract (\n\tv1.0.0\n) // end\n").unwrap();
    assert_eq!(m.retract.len(), 1);
    // '(' in the middle of a line is just a token.
    assert_eq!(
        err("module m\nrequire ( a.b/c v1.0.0 )\n"),
        "go.mod:2: usage: require module/path v1.2.3"
    );
    // A quoted verb is not a verb.
    assert_eq!(
        err("\"module\" m\n"),
        "go.mod:1: unknown directive: \"module\""
    );
    // Non-UTF-8 bytes in comments are fine.
    assert!(GoMod::parse(b"// caf\xe9\nmodule m\n").is_ok());
    // No trailing newline.
    assert_eq!(GoMod::parse(b"module m").unwrap().module_path(), Some("m"));
    assert_eq!(GoMod::parse(b"").unwrap(), GoMod::default());
}

#[test]
fn parse_for_checks_the_module_path() {
    let m = GoMod::parse_for(b"module example.com/m\n", "example.com/m").unwrap();
    assert_eq!(m.module_path(), Some("example.com/m"));
    let e = GoMod::parse_for(b"module example.com/other\n", "example.com/m").unwrap_err();
    assert!(matches!(e, GoModError::ModulePathMismatch { .. }));
    assert_eq!(
        e.to_string(),
        "go.mod has module path \"example.com/other\" but was expected to be \"example.com/m\""
    );
    let e = GoMod::parse_for(b"go 1.21\n", "example.com/m").unwrap_err();
    assert!(e.to_string().contains("no module path"), "{e}");
    assert!(GoMod::parse_for(b"module \"example.com/m\" // x\nfoo\n", "example.com/m").is_ok());
}

#[test]
fn synthesized_go_mod() {
    assert_eq!(
        GoMod::synthesized("golang.org/x/text"),
        b"module golang.org/x/text\n"
    );
    assert_eq!(
        GoMod::synthesized("example.com/a b"),
        b"module \"example.com/a b\"\n"
    );
    assert_eq!(
        GoMod::synthesized("example.com/a//b"),
        b"module \"example.com/a//b\"\n"
    );
    assert!(GoMod::is_synthesized(
        "golang.org/x/text",
        b"module golang.org/x/text\n"
    ));
    assert!(!GoMod::is_synthesized(
        "golang.org/x/text",
        b"module golang.org/x/text\n\ngo 1.21\n"
    ));
    assert!(!GoMod::is_synthesized(
        "golang.org/x/text",
        b"module golang.org/x/text"
    ));
    for path in [
        "golang.org/x/text",
        "a b",
        "x\"y",
        "a(b",
        "é/ü",
        "tab\there",
    ] {
        let m = GoMod::parse(&GoMod::synthesized(path)).unwrap();
        assert_eq!(m.module_path(), Some(path));
    }
}

#[test]
fn retracts_uses_semver_intervals() {
    let m = GoMod::parse(b"module m\nretract v1.0.0\nretract [v1.2.0, v1.3.0] // bad\nretract [v2.0.0-pre, v2.0.0+incompatible]\n").unwrap();
    assert!(m.retracts("v1.0.0"));
    assert!(!m.retracts("v1.0.1"));
    assert!(m.retracts("v1.2.0") && m.retracts("v1.2.9") && m.retracts("v1.3.0"));
    assert!(m.retracts("v1.3.0-rc.1"));
    assert!(!m.retracts("v1.3.1") && !m.retracts("v1.1.9"));
    assert!(m.retracts("v2.0.0-pre.1") && m.retracts("v2.0.0+incompatible"));
    assert_eq!(
        m.retract_for("v1.2.5").map(|r| r.rationale.as_str()),
        Some("bad")
    );
    assert!(!m.retracts("junk"));
}

#[test]
fn realworld_go_mod_files_parse() {
    let Some(shared) = common::shared_dir() else {
        eprintln!("skipped realworld_go_mod_files_parse: ../shared not found");
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(shared.join("realworld")).unwrap() {
        let path = entry.unwrap().path().join("go.mod");
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let m = GoMod::parse(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let lax = GoMod::parse_lax(&data).unwrap();
        let module = m.module_path().unwrap();
        assert!(strata_core::path::check_path(module).is_ok(), "{module}");
        assert!(
            m.go.is_some() && !m.require.is_empty(),
            "{}",
            path.display()
        );
        assert_eq!(lax.require, m.require);
        assert_eq!(lax_go_version(&data), m.go);
        GoMod::parse_for(&data, module).unwrap();
        seen += 1;
    }
    assert_eq!(seen, 4);
}

proptest! {
    #[test]
    fn never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = GoMod::parse(&data);
        let _ = GoMod::parse_lax(&data);
    }

    #[test]
    fn never_panics_on_go_mod_like_text(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("module"), Just("require"), Just("retract"), Just("replace"), Just("go"),
                Just("("), Just(")"), Just("["), Just("]"), Just(","), Just("=>"), Just("\n"),
                Just("//"), Just("\""), Just("`"), Just("v1.0.0"), Just("a.b/c"), Just(" "),
                Just("\\"), Just("é"), Just("\r\n"), Just("Deprecated:"), Just("1.21"),
            ],
            0..40,
        )
    ) {
        let text = parts.concat();
        let _ = GoMod::parse(text.as_bytes());
        let _ = GoMod::parse_lax(text.as_bytes());
    }
}
