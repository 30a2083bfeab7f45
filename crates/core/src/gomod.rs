//! Reading go.mod files (`golang.org/x/mod/modfile`), and the synthesized go.mod a proxy serves
//! for a module version that has none (protocol spec §2.4).
//!
//! [`GoMod::parse`] follows `modfile.Parse` (with no version fixer) and [`GoMod::parse_lax`]
//! follows `modfile.ParseLax`, the mode the go command uses for dependencies' go.mod files:
//! unknown directives and main-module-only ones (`replace`, `exclude`, `toolchain`, …) are
//! ignored, malformed retractions are skipped. Both use Go's lexer exactly (comments, quoted and
//! raw strings, blocks), so a file modfile rejects is rejected here with the same `go.mod:LINE:`
//! message, and comments are attached the same way, which is what `// Deprecated:` on the module
//! line and retraction rationales depend on.

mod args;
mod directives;
mod lexer;
mod quote;
mod syntax;
mod unicode;

use std::cmp::Ordering;
use std::fmt;

use thiserror::Error;

use crate::semver;

/// The parsed, meaningful content of a go.mod file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoMod {
    /// The `module` directive; a go.mod may lack one (modfile accepts that, the go command does
    /// not for a dependency, see [`GoMod::parse_for`]).
    pub module: Option<Module>,
    /// The `go` directive's version, e.g. `1.24` or `1.21rc1`.
    pub go: Option<String>,
    /// The `toolchain` directive's name, e.g. `go1.24.1` or `default` (strict parse only).
    pub toolchain: Option<String>,
    /// `godebug key=value` settings, in file order (strict parse only).
    pub godebug: Vec<(String, String)>,
    /// Requirements, in file order.
    pub require: Vec<Require>,
    /// Excluded module versions (strict parse only).
    pub exclude: Vec<ModuleVersionRef>,
    /// Replacements (strict parse only).
    pub replace: Vec<Replace>,
    /// Retracted versions and intervals of this module.
    pub retract: Vec<Retract>,
    /// `tool` package paths (strict parse only).
    pub tool: Vec<String>,
    /// `ignore` directory paths.
    pub ignore: Vec<String>,
}

/// The `module` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Module {
    /// The module path, unquoted.
    pub path: String,
    /// The deprecation message from a `// Deprecated:` paragraph in the comments on or directly
    /// above the module line; `None` when the module is not deprecated.
    pub deprecated: Option<String>,
}

/// A module path and version, as in `exclude` (versions are canonical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleVersionRef {
    /// Module path.
    pub path: String,
    /// Canonical version (`+incompatible` kept).
    pub version: String,
}

/// A `require` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Require {
    /// Module path.
    pub path: String,
    /// Canonical version (`+incompatible` kept).
    pub version: String,
    /// Marked `// indirect`.
    pub indirect: bool,
}

/// A `replace` line. A replacement without a version is a local directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    /// The replaced module path.
    pub old_path: String,
    /// The replaced version, or `None` for every version.
    pub old_version: Option<String>,
    /// The replacement module path or directory.
    pub new_path: String,
    /// The replacement version; `None` for a directory.
    pub new_version: Option<String>,
}

/// A `retract` line: the closed interval `[low, high]` (equal for a single version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retract {
    /// Lowest retracted version, as written (unquoted).
    pub low: String,
    /// Highest retracted version, as written (unquoted).
    pub high: String,
    /// The comment on or above the directive (without `//`, lines joined by `\n`); may be empty.
    pub rationale: String,
}

/// One problem in a go.mod file, located like modfile does (`go.mod:LINE:` or `go.mod:LINE:COL:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based rune column; printed only when past the start of the line.
    pub column: usize,
    /// The message, already prefixed with `verb path: ` where modfile does that.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column > 1 {
            write!(f, "go.mod:{}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(f, "go.mod:{}: {}", self.line, self.message)
        }
    }
}

/// Why a go.mod file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GoModError {
    /// Syntax or directive errors, each with its line (modfile's `ErrorList`, one per line).
    #[error("{}", join_lines(.0))]
    Invalid(Vec<LineError>),
    /// The file has no `module` directive.
    #[error("go.mod has no module path, but was expected to be {}", quote::quote(.expected))]
    NoModulePath {
        /// The path the caller asked for.
        expected: String,
    },
    /// The `module` directive names another module (cmd/go's check for a dependency's go.mod).
    #[error(
        "go.mod has module path {} but was expected to be {}",
        quote::quote(.found),
        quote::quote(.expected)
    )]
    ModulePathMismatch {
        /// The path in the file.
        found: String,
        /// The path the caller asked for.
        expected: String,
    },
}

fn join_lines(errors: &[LineError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl GoModError {
    /// The line of the first problem, if the error is about a particular line.
    pub fn line(&self) -> Option<usize> {
        match self {
            GoModError::Invalid(errors) => errors.first().map(|e| e.line),
            _ => None,
        }
    }
}

impl GoMod {
    /// Parses a go.mod file strictly, like `modfile.Parse(file, data, nil)`: every directive must
    /// be known and well-formed; versions in `require`, `exclude` and `replace` must be valid
    /// semver and are stored canonical; retraction versions are kept as written.
    pub fn parse(data: &[u8]) -> Result<GoMod, GoModError> {
        directives::parse(data, true)
    }

    /// Parses a dependency's go.mod leniently, like `modfile.ParseLax(file, data, nil)`: only
    /// `module`, `go`, `require`, `retract` and `ignore` are read; other directives are ignored,
    /// unparseable retractions are skipped, and a `go` version like `1.21-foo` is cut to `1.21`.
    /// Syntax errors and malformed `module`/`go`/`require` lines are still errors.
    pub fn parse_lax(data: &[u8]) -> Result<GoMod, GoModError> {
        directives::parse(data, false)
    }

    /// Parses a go.mod served for `expected_module_path` (lax, as the go command reads
    /// dependencies) and checks that its `module` directive names that path.
    pub fn parse_for(data: &[u8], expected_module_path: &str) -> Result<GoMod, GoModError> {
        let gomod = GoMod::parse_lax(data)?;
        match &gomod.module {
            None => Err(GoModError::NoModulePath {
                expected: expected_module_path.to_owned(),
            }),
            Some(m) if m.path != expected_module_path => Err(GoModError::ModulePathMismatch {
                found: m.path.clone(),
                expected: expected_module_path.to_owned(),
            }),
            Some(_) => Ok(gomod),
        }
    }

    /// The module path, if there is a `module` directive.
    pub fn module_path(&self) -> Option<&str> {
        self.module.as_ref().map(|m| m.path.as_str())
    }

    /// The deprecation message of the module, if it is deprecated.
    pub fn deprecated(&self) -> Option<&str> {
        self.module.as_ref().and_then(|m| m.deprecated.as_deref())
    }

    /// The go.mod a proxy serves for a version without one: `module <path>\n`, the path quoted
    /// only if the go.mod lexer needs it (`modfile.AutoQuote`).
    pub fn synthesized(path: &str) -> Vec<u8> {
        format!("module {}\n", quote::auto_quote(path)).into_bytes()
    }

    /// Whether `go_mod` is exactly the synthesized go.mod for `path` — how cmd/go tells a version
    /// without a real go.mod (spec §2.4).
    pub fn is_synthesized(path: &str, go_mod: &[u8]) -> bool {
        go_mod == GoMod::synthesized(path).as_slice()
    }

    /// Whether this go.mod's `retract` directives cover `version` (closed semver intervals, as
    /// cmd/go's `isRetracted` compares them).
    pub fn retracts(&self, version: &str) -> bool {
        self.retract_for(version).is_some()
    }

    /// The first retraction covering `version`, with its rationale.
    pub fn retract_for(&self, version: &str) -> Option<&Retract> {
        self.retract.iter().find(|r| {
            semver::compare(&r.low, version) != Ordering::Greater
                && semver::compare(version, &r.high) != Ordering::Greater
        })
    }
}

/// The `go` directive of a go.mod as `modfile.ParseLax(…).Go.Version` gives it: `None` when the
/// file does not parse leniently or has no `go` line. Used by the zip vendor rule (spec §4.4).
pub fn lax_go_version(go_mod: &[u8]) -> Option<String> {
    GoMod::parse_lax(go_mod).ok()?.go
}

/// `modfile.AutoQuote`: `s` as a go.mod token, double-quoted Go-style only when the lexer would
/// not read it back as one token.
pub fn auto_quote(s: &str) -> String {
    quote::auto_quote(s)
}
