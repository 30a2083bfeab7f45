//! What a warm-up body lists: a go.sum, a go.mod or lines `module@version`, read into the
//! versions to prefetch, deduplicated, each with the line it came from. Everything is checked
//! before anything is enqueued: a bad line is a [`BodyError`] naming it.
//!
//! - a **go.sum**: every line's version; `/go.mod` lines fetch only the go.mod, unless the same
//!   version also has a zip line;
//! - a **go.mod** (it has a `module` directive): every `require`d version, whole; a requirement
//!   replaced by a directory is skipped, one replaced by another module version fetches the
//!   replacement;
//! - **lines `module@version`** (blank lines and `#` or `//` comments ignored).

use std::collections::HashMap;

use strata_core::gomod::GoMod;
use strata_core::gosum::GoSumLine;
use strata_core::path::ModulePath;
use strata_core::version::Version;

/// One version to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmItem {
    /// The module.
    pub module: ModulePath,
    /// The version.
    pub version: Version,
    /// Only the go.mod (and `.info`).
    pub mod_only: bool,
}

/// What a warm-up body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A go.sum file.
    GoSum,
    /// A go.mod file.
    GoMod,
    /// Lines `module@version`.
    List,
}

impl Format {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::GoSum => "go.sum",
            Format::GoMod => "go.mod",
            Format::List => "module@version list",
        }
    }
}

/// A body that cannot be warmed, naming the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format} line {line}: {text:?}: {reason}")]
pub struct BodyError {
    /// The format the body was read as.
    pub format: &'static str,
    /// 1-based line number.
    pub line: usize,
    /// The line.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

fn meaningful(line: &str) -> Option<&str> {
    let line = line.trim();
    (!line.is_empty() && !line.starts_with('#') && !line.starts_with("//")).then_some(line)
}

/// Which format `text` is: a go.mod has a `module` directive, a go.sum's lines have three
/// fields ending in an `h1:` hash, anything else is a list.
pub fn detect(text: &str) -> Format {
    let is_module_directive = |line: &str| {
        line.strip_prefix("module")
            .is_some_and(|rest| rest.starts_with([' ', '\t', '"', '(']))
    };
    if text.lines().filter_map(meaningful).any(is_module_directive) {
        return Format::GoMod;
    }
    match text.lines().find_map(meaningful) {
        Some(first) => {
            let fields: Vec<&str> = first.split_whitespace().collect();
            if fields.len() == 3 && fields[2].starts_with("h1:") {
                Format::GoSum
            } else {
                Format::List
            }
        }
        None => Format::List,
    }
}

/// Checks a module path and version as a pair.
fn module_version(path: &str, version: &str) -> Result<(ModulePath, Version), String> {
    let module = ModulePath::new(path).map_err(|e| format!("module path: {e}"))?;
    let version = Version::new(version).map_err(|e| format!("version: {e}"))?;
    strata_core::version::check(module.as_str(), version.as_str()).map_err(|e| e.to_string())?;
    Ok((module, version))
}

/// The versions a body lists, deduplicated in order of appearance (a version listed with
/// its zip anywhere is fetched whole), with the line each came from.
pub fn parse(text: &str) -> Result<(Format, Vec<(WarmItem, usize)>), BodyError> {
    let format = detect(text);
    let mut items: Vec<(WarmItem, usize)> = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut add = |module: ModulePath, version: Version, mod_only: bool, line: usize| {
        let key = (module.as_str().to_owned(), version.as_str().to_owned());
        match seen.get(&key) {
            Some(&i) => items[i].0.mod_only &= mod_only,
            None => {
                seen.insert(key, items.len());
                items.push((
                    WarmItem {
                        module,
                        version,
                        mod_only,
                    },
                    line,
                ));
            }
        }
    };
    let error = |line: usize, text: &str, reason: String| BodyError {
        format: format.name(),
        line,
        text: text.to_owned(),
        reason,
    };
    match format {
        Format::GoSum => {
            for (i, raw) in text.split('\n').enumerate() {
                let line_no = i + 1;
                let parsed = GoSumLine::parse(raw, line_no)
                    .map_err(|e| error(line_no, raw.trim(), e.to_string()))?;
                let Some(line) = parsed else { continue };
                let (module, version) = module_version(&line.path, &line.version)
                    .map_err(|reason| error(line_no, raw.trim(), reason))?;
                add(module, version, line.go_mod_only, line_no);
            }
        }
        Format::GoMod => {
            let gomod = GoMod::parse(text.as_bytes()).map_err(|e| BodyError {
                format: format.name(),
                line: e.line().unwrap_or(0),
                text: e
                    .line()
                    .and_then(|n| text.lines().nth(n - 1))
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
                reason: e.to_string(),
            })?;
            for require in &gomod.require {
                let replaced = gomod.replace.iter().find(|r| {
                    r.old_path == require.path
                        && r.old_version
                            .as_deref()
                            .is_none_or(|v| v == require.version)
                });
                let (path, version) = match replaced {
                    // A local directory: nothing to fetch.
                    Some(r) if r.new_version.is_none() => continue,
                    Some(r) => (r.new_path.as_str(), r.new_version.as_deref().unwrap_or("")),
                    None => (require.path.as_str(), require.version.as_str()),
                };
                let line_no = line_of(text, &require.path, &require.version);
                let (module, version) = module_version(path, version).map_err(|reason| {
                    error(
                        line_no,
                        &format!("{} {}", require.path, require.version),
                        reason,
                    )
                })?;
                add(module, version, false, line_no);
            }
        }
        Format::List => {
            for (i, raw) in text.lines().enumerate() {
                let line_no = i + 1;
                let Some(line) = meaningful(raw) else {
                    continue;
                };
                let Some((path, version)) = line.rsplit_once('@') else {
                    return Err(error(
                        line_no,
                        line,
                        "expected module@version (or a go.sum or go.mod)".into(),
                    ));
                };
                if line.split_whitespace().nth(1).is_some() {
                    return Err(error(
                        line_no,
                        line,
                        "expected one module@version per line".into(),
                    ));
                }
                let (module, version) =
                    module_version(path, version).map_err(|reason| error(line_no, line, reason))?;
                add(module, version, false, line_no);
            }
        }
    }
    Ok((format, items))
}

/// The line of a go.mod requirement (1-based; 0 if not found literally).
fn line_of(text: &str, path: &str, version: &str) -> usize {
    text.lines()
        .position(|l| l.contains(path) && l.contains(version))
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn listed(items: &[(WarmItem, usize)]) -> Vec<String> {
        items
            .iter()
            .map(|(i, _)| {
                format!(
                    "{}@{}{}",
                    i.module,
                    i.version,
                    if i.mod_only { "/mod" } else { "" }
                )
            })
            .collect()
    }

    #[test]
    fn go_sum_lines_fetch_go_mod_only_unless_the_zip_is_listed() {
        let body = "\
example.com/a v1.0.0 h1:AAAA=
example.com/a v1.0.0/go.mod h1:BBBB=
example.com/b v1.1.0/go.mod h1:CCCC=

example.com/C/v2 v2.0.0/go.mod h1:DDDD=
example.com/C/v2 v2.0.0 h1:EEEE=
";
        let (format, items) = parse(body).unwrap();
        assert_eq!(format, Format::GoSum);
        assert_eq!(
            listed(&items),
            [
                "example.com/a@v1.0.0",
                "example.com/b@v1.1.0/mod",
                "example.com/C/v2@v2.0.0"
            ]
        );
        assert_eq!(items[1].1, 3, "the line it came from");
    }

    #[test]
    fn go_mod_requirements_are_fetched_whole() {
        let body = "\
// a comment first
module example.com/app

go 1.22

require (
\texample.com/a v1.0.0
\texample.com/b v1.2.0 // indirect
\texample.com/local v0.1.0
\texample.com/old v1.0.0
)

replace example.com/local => ../local
replace example.com/old v1.0.0 => example.com/new v1.3.0
";
        let (format, items) = parse(body).unwrap();
        assert_eq!(format, Format::GoMod);
        assert_eq!(
            listed(&items),
            [
                "example.com/a@v1.0.0",
                "example.com/b@v1.2.0",
                "example.com/new@v1.3.0"
            ]
        );
    }

    #[test]
    fn lists_take_module_at_version_lines() {
        let body = "# warm these\nexample.com/a@v1.0.0\n\n// and this\nexample.com/b@v0.0.0-20240101000000-abcdefabcdef\nexample.com/a@v1.0.0\n";
        let (format, items) = parse(body).unwrap();
        assert_eq!(format, Format::List);
        assert_eq!(
            listed(&items),
            [
                "example.com/a@v1.0.0",
                "example.com/b@v0.0.0-20240101000000-abcdefabcdef"
            ]
        );
    }

    #[test]
    fn bad_lines_are_named() {
        for (body, line, want) in [
            (
                "example.com/a v1.0.0 h1:AAAA=\nexample.com/b v1.0.0\n",
                2,
                "wrong number of fields",
            ),
            (
                "example.com/a v1.0.0 h1:AAAA=\nexample.com/b 1.0.0 h1:BBBB=\n",
                2,
                "version",
            ),
            ("example.com/a@v1.0.0\nnot a line\n", 2, "module@version"),
            ("example.com/a@v1.0.0\nexample.com/b/v2@v1.0.0\n", 2, "v2"),
            ("example.com/a@v1.0.0\nnodot@v1.0.0\n", 2, "module path"),
            ("example.com/a@v1.0\n", 1, "not canonical"),
            (
                "module example.com/app\n\nrequire example.com/a v1.0.0\nrequire example.com/b/v3 v1.0.0\n",
                4,
                "v3",
            ),
        ] {
            let error = parse(body).unwrap_err();
            assert_eq!(error.line, line, "{body:?}: {error}");
            assert!(error.to_string().contains(want), "{body:?}: {error}");
        }
        let error = parse("module example.com/app\nrequire (\n").unwrap_err();
        assert!(error.to_string().contains("go.mod"), "{error}");
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(detect("example.com/a v1.0.0 h1:x=\n"), Format::GoSum);
        assert_eq!(detect("module example.com/x\n"), Format::GoMod);
        assert_eq!(detect("go 1.22\nmodule \"example.com/x\"\n"), Format::GoMod);
        assert_eq!(detect("modulex@v1.0.0\n"), Format::List);
        assert_eq!(detect(""), Format::List);
    }
}
