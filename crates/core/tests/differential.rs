//! Differential tests against golang.org/x/mod itself: `tests/xmodref` (a small Go program built
//! with the real `go` command at test time) answers the same questions as strata_core, for
//! thousands of deterministic, nasty inputs and for generated module trees, and every answer must
//! agree: success or failure always, outputs and hashes always, error texts where strata aims for
//! Go's wording (path checks, `module.Check`, go.mod errors).
//!
//! Without `go` on PATH the tests print a notice and pass. `STRATA_DIFF_SMALL=1` skips the 50 MiB
//! file case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "differential/gomod_texts.rs"]
mod gomod_texts;
#[path = "differential/inputs.rs"]
mod inputs;
#[path = "differential/testdata.rs"]
mod testdata;
#[path = "differential/trees.rs"]
mod trees;
#[path = "differential/xmodref.rs"]
mod xmodref;
#[path = "differential/zips.rs"]
mod zips;

use serde_json::{Value, json};
use strata_core::{gomod, path, pattern, pseudo, semver, version};

use inputs::Rng;
use xmodref::{Call, Mismatches};

fn err_json<E: std::fmt::Display>(r: &Result<(), E>) -> Value {
    json!({"ok": r.is_ok(), "err": r.as_ref().err().map(ToString::to_string).unwrap_or_default()})
}

/// `{ok, out}` of a fallible string function, and its error text separately.
fn out_json<E: std::fmt::Display>(r: &Result<String, E>) -> (Value, String) {
    let out = json!({"ok": r.is_ok(), "out": r.as_ref().map(String::as_str).unwrap_or("")});
    (
        out,
        r.as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default(),
    )
}

fn go_out(go: &Value) -> Value {
    // x/mod returns "" with its errors, except UnescapePath/Version which may return partial text;
    // only the successful output is meaningful.
    let ok = go["ok"].as_bool().unwrap_or(false);
    json!({"ok": ok, "out": if ok { go["out"].clone() } else { json!("") }})
}

/// Error texts we do not try to word like Go: recorded and printed, not failed on.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    fn text(&mut self, what: String, go: &Value, ours: &str) {
        let go = go["err"].as_str().unwrap_or("");
        if go != ours {
            self.0
                .push(format!("{what}\n    go:   {go}\n    ours: {ours}"));
        }
    }

    fn print(&self, test: &str) {
        if !self.0.is_empty() {
            let mut per_op: std::collections::BTreeMap<&str, usize> =
                std::collections::BTreeMap::new();
            for n in &self.0 {
                *per_op.entry(n.split('(').next().unwrap_or("")).or_default() += 1;
            }
            eprintln!(
                "{test}: {} error texts worded differently (informational): {per_op:?}",
                self.0.len()
            );
            for n in self.0.iter().take(15) {
                eprintln!("{n}");
            }
        }
    }
}

#[test]
fn paths_match_x_mod() {
    let Some(go) = xmodref::get() else { return };
    let mut rng = Rng::new(1);
    let mut paths: Vec<String> = (0..3000).map(|_| inputs::path(&mut rng)).collect();
    paths.extend(
        [
            "",
            "/",
            "a",
            "example.com",
            "example.com/A",
            "gopkg.in/yaml.v2",
            "x.y/z/v1",
        ]
        .map(String::from),
    );
    let escaped: Vec<String> = (0..1500).map(|_| inputs::escaped(&mut rng)).collect();

    let mut calls = Vec::new();
    for p in &paths {
        for op in [
            "check_path",
            "check_import_path",
            "check_file_path",
            "escape_path",
            "split_path_version",
            "escape_version",
            "auto_quote",
        ] {
            calls.push(Call::new(op, &[p]));
        }
    }
    for e in &escaped {
        calls.push(Call::new("unescape_path", &[e]));
        calls.push(Call::new("unescape_version", &[e]));
    }
    let results = go.run(&calls);
    let mut results = results.iter();
    let mut m = Mismatches::default();
    let mut notes = Notes::default();
    for p in &paths {
        let mut next = || results.next().unwrap();
        m.check(
            || format!("check_path({p:?})"),
            next(),
            &err_json(&path::check_path(p)),
        );
        m.check(
            || format!("check_import_path({p:?})"),
            next(),
            &err_json(&path::check_import_path(p)),
        );
        m.check(
            || format!("check_file_path({p:?})"),
            next(),
            &err_json(&path::check_file_path(p)),
        );
        let g = next();
        let (ours, err) = out_json(&path::escape_path(p));
        m.check(|| format!("escape_path({p:?})"), &go_out(g), &ours);
        m.check(
            || format!("escape_path({p:?}) error"),
            &json!(g["err"]),
            &json!(err),
        );
        let g = next();
        let ours = match path::split_path_version(p) {
            Some((prefix, major)) => json!({"prefix": prefix, "major": major, "ok": true}),
            None => json!({"ok": false}),
        };
        // On failure x/mod's prefix is unspecified (it returns the path or "").
        let g = if g["ok"] == json!(true) {
            g.clone()
        } else {
            json!({"ok": false})
        };
        m.check(|| format!("split_path_version({p:?})"), &g, &ours);
        let g = next();
        let (ours, err) = out_json(&path::escape_version(p));
        m.check(|| format!("escape_version({p:?})"), &go_out(g), &ours);
        notes.text(format!("escape_version({p:?})"), g, &err);
        m.check(
            || format!("auto_quote({p:?})"),
            next(),
            &json!({"out": gomod::auto_quote(p)}),
        );
    }
    for e in &escaped {
        let g = results.next().unwrap();
        let (ours, err) = out_json(&path::unescape_path(e));
        m.check(|| format!("unescape_path({e:?})"), &go_out(g), &ours);
        notes.text(format!("unescape_path({e:?})"), g, &err);
        let g = results.next().unwrap();
        let (ours, err) = out_json(&path::unescape_version(e));
        m.check(|| format!("unescape_version({e:?})"), &go_out(g), &ours);
        notes.text(format!("unescape_version({e:?})"), g, &err);
    }
    notes.print("paths_match_x_mod");
    m.finish("paths_match_x_mod");
}

fn timestamp_json(r: Result<pseudo::Timestamp, pseudo::PseudoError>) -> (bool, String) {
    match r {
        Ok(t) => (true, t.compact()),
        Err(_) => (false, String::new()),
    }
}

#[test]
fn versions_match_x_mod() {
    let Some(go) = xmodref::get() else { return };
    let mut rng = Rng::new(2);
    let versions: Vec<String> = (0..3000).map(|_| inputs::version(&mut rng)).collect();
    let pairs: Vec<(String, String)> = (0..3000)
        .map(|_| {
            (
                rng.pick_ref(&versions).clone(),
                rng.pick_ref(&versions).clone(),
            )
        })
        .collect();
    let module_paths = [
        "example.com/m",
        "example.com/m/v2",
        "example.com/m/v3",
        "gopkg.in/yaml.v2",
        "gopkg.in/check.v1",
        "gopkg.in/x.v1-unstable",
        "gopkg.in/y.v0",
        "Example.com/m",
        "example.com/m/v1",
        "golang.org/x/mod",
    ];
    let checks: Vec<(String, String)> = (0..2500)
        .map(|_| {
            let p = if rng.chance(70) {
                rng.pick(&module_paths).to_string()
            } else {
                inputs::path(&mut rng)
            };
            (p, rng.pick_ref(&versions).clone())
        })
        .collect();
    let majors = [
        "",
        "/v2",
        "/v3",
        ".v1",
        ".v2",
        ".v0",
        ".v1-unstable",
        "/v0",
        "/v1",
        "v2",
        ".v2-unstable",
    ];
    let path_majors: Vec<(String, &str)> = (0..1500)
        .map(|_| (rng.pick_ref(&versions).clone(), rng.pick(&majors)))
        .collect();

    let mut calls = Vec::new();
    for v in &versions {
        calls.push(Call::new("semver", &[v]));
        calls.push(Call::new("canonical_version", &[v]));
        calls.push(Call::new("pseudo", &[v]));
    }
    for (a, b) in &pairs {
        calls.push(Call::new("compare", &[a, b]));
    }
    for (p, v) in &checks {
        calls.push(Call::new("check", &[p, v]));
    }
    for (v, major) in &path_majors {
        calls.push(Call::new("check_path_major", &[v.as_str(), major]));
    }
    let results = go.run(&calls);
    let mut results = results.iter();
    let mut m = Mismatches::default();
    for v in &versions {
        let ours = json!({
            "valid": semver::is_valid(v),
            "canonical": semver::canonical(v),
            "major": semver::major(v),
            "major_minor": semver::major_minor(v),
            "prerelease": semver::prerelease(v),
            "build": semver::build(v),
        });
        m.check(|| format!("semver({v:?})"), results.next().unwrap(), &ours);
        let ours = json!({"out": version::canonical_version(v)});
        m.check(
            || format!("canonical_version({v:?})"),
            results.next().unwrap(),
            &ours,
        );
        let g = results.next().unwrap();
        let base = pseudo::pseudo_version_base(v);
        let (time_ok, time) = timestamp_json(pseudo::pseudo_version_time(v));
        let rev = pseudo::pseudo_version_rev(v);
        let ours = json!({
            "is_pseudo": pseudo::is_pseudo_version(v),
            "base_ok": base.is_ok(),
            "base": base.unwrap_or_default(),
            "time_ok": time_ok,
            "time": time,
            "rev_ok": rev.is_ok(),
            "rev": rev.unwrap_or_default(),
        });
        let mut g = g.clone();
        g.as_object_mut().unwrap().remove("is_zero");
        m.check(|| format!("pseudo({v:?})"), &g, &ours);
    }
    for (a, b) in &pairs {
        let ours = json!({"cmp": semver::compare(a, b) as i8});
        m.check(
            || format!("compare({a:?}, {b:?})"),
            results.next().unwrap(),
            &ours,
        );
    }
    for (p, v) in &checks {
        let ours = err_json(&version::check(p, v));
        m.check(
            || format!("check({p:?}, {v:?})"),
            results.next().unwrap(),
            &ours,
        );
    }
    for (v, major) in &path_majors {
        let g = results.next().unwrap();
        let ours = version::check_path_major(v, major);
        // Ours returns the reason; Go wraps it in `version "…" invalid: <reason>`.
        let go_reason = g["err"]
            .as_str()
            .unwrap_or("")
            .rsplit_once(" invalid: ")
            .map_or("", |(_, r)| r);
        m.check(
            || format!("check_path_major({v:?}, {major:?})"),
            &json!({"ok": g["ok"], "reason": go_reason}),
            &json!({"ok": ours.is_ok(), "reason": ours.err().unwrap_or_default()}),
        );
    }
    m.finish("versions_match_x_mod");
}

#[test]
fn prefix_patterns_match_x_mod() {
    let Some(go) = xmodref::get() else { return };
    let mut rng = Rng::new(3);
    let cases: Vec<(String, String)> = (0..3000)
        .map(|_| {
            let target = match rng.below(3) {
                0 => inputs::path(&mut rng),
                _ => rng
                    .pick(&[
                        "example.com/x",
                        "golang.org/x/text",
                        "rsc.io/text",
                        "github.com/Azure/x/y",
                        "x",
                        "a/b/c/d",
                        "é/x",
                        "*/text",
                        "[/x",
                        "example.com",
                    ])
                    .to_string(),
            };
            (inputs::globs(&mut rng), target)
        })
        .collect();
    let calls: Vec<Call> = cases
        .iter()
        .map(|(g, t)| Call::new("match_prefix_patterns", &[g, t]))
        .collect();
    let results = go.run(&calls);
    let mut m = Mismatches::default();
    for ((g, t), r) in cases.iter().zip(&results) {
        let ours = json!({"ok": pattern::match_prefix_patterns(g, t)});
        m.check(|| format!("match_prefix_patterns({g:?}, {t:?})"), r, &ours);
    }
    m.finish("prefix_patterns_match_x_mod");
}

/// Our parse in the JSON shape xmodref reports.
fn go_mod_json(r: &Result<gomod::GoMod, gomod::GoModError>) -> Value {
    let f = match r {
        Err(e) => return json!({"ok": false, "err": e.to_string()}),
        Ok(f) => f,
    };
    json!({
        "ok": true,
        "err": "",
        "module": f.module.as_ref().map(|m| m.path.clone()),
        "deprecated": f.module.as_ref().map(|m| m.deprecated.clone().unwrap_or_default()),
        "go": f.go,
        "toolchain": f.toolchain,
        "require": f.require.iter().map(|r| json!({"path": r.path, "version": r.version, "indirect": r.indirect})).collect::<Vec<_>>(),
        "exclude": f.exclude.iter().map(|r| json!({"path": r.path, "version": r.version})).collect::<Vec<_>>(),
        "replace": f.replace.iter().map(|r| json!({
            "old_path": r.old_path, "old_version": r.old_version.clone().unwrap_or_default(),
            "new_path": r.new_path, "new_version": r.new_version.clone().unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "retract": f.retract.iter().map(|r| json!({"low": r.low, "high": r.high, "rationale": r.rationale})).collect::<Vec<_>>(),
        "tool": f.tool,
        "ignore": f.ignore,
        "godebug": f.godebug.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
    })
}

#[test]
fn go_mod_parsing_matches_modfile() {
    let Some(go) = xmodref::get() else { return };
    let mut rng = Rng::new(4);
    let mut texts: Vec<Vec<u8>> = (0..4000)
        .map(|_| gomod_texts::go_mod(&mut rng).into_bytes())
        .collect();
    // Raw bytes too: invalid UTF-8 in comments and tokens.
    for _ in 0..300 {
        let mut t = gomod_texts::go_mod(&mut rng).into_bytes();
        let at = rng.below(t.len() + 1);
        let junk: &[u8] = rng.pick(&[
            &b"\xff"[..],
            b"\xc3",
            b"\xe2\x80",
            b"\xed\xa0\x80",
            b"\x00",
            b"\xef\xbb\xbf",
        ]);
        t.splice(at..at, junk.iter().copied());
        texts.push(t);
    }
    if let Some(shared) = common::shared_dir() {
        for name in ["viper", "lazygit", "prometheus", "golang-migrate"] {
            if let Ok(t) = std::fs::read(shared.join("realworld").join(name).join("go.mod")) {
                texts.push(t);
            }
        }
    }
    let mut calls = Vec::new();
    for t in &texts {
        calls.push(Call::new("gomod", &[t.as_slice(), b"strict"]));
        calls.push(Call::new("gomod", &[t.as_slice(), b"lax"]));
    }
    let results = go.run(&calls);
    let mut results = results.iter();
    let mut m = Mismatches::default();
    let (mut ok_strict, mut ok_lax) = (0, 0);
    for t in &texts {
        let shown = String::from_utf8_lossy(t);
        let strict = gomod::GoMod::parse(t);
        let lax = gomod::GoMod::parse_lax(t);
        ok_strict += usize::from(strict.is_ok());
        ok_lax += usize::from(lax.is_ok());
        m.check(
            || format!("modfile.Parse({shown:?})"),
            results.next().unwrap(),
            &go_mod_json(&strict),
        );
        let g = results.next().unwrap();
        m.check(
            || format!("modfile.ParseLax({shown:?})"),
            g,
            &go_mod_json(&lax),
        );
        let go_version = if g["ok"] == json!(true) {
            g["go"].as_str().map(str::to_owned)
        } else {
            None
        };
        m.check(
            || format!("lax_go_version({shown:?})"),
            &json!(go_version),
            &json!(gomod::lax_go_version(t)),
        );
    }
    eprintln!(
        "go.mod texts: {} ({} parse strictly, {} leniently)",
        texts.len(),
        ok_strict,
        ok_lax
    );
    m.finish("go_mod_parsing_matches_modfile");
}
