//! From go.mod syntax to [`GoMod`]: the meaning and validation of each directive, as modfile's
//! `parseToFile`/`add` give them, with the same error texts.

use super::args::{
    deprecation, directive, directive_comment, invalid_version, is_directory_path, is_go_version,
    is_indirect, is_toolchain, lax_go_version, parse_string, parse_text, parse_version,
    parse_version_interval, path_major,
};
use super::lexer::go_lossy;
use super::quote::quote_bytes;
use super::syntax::{self, Line, LineBlock, Stmt};
use super::{GoMod, GoModError, LineError, Module, ModuleVersionRef, Replace, Require, Retract};
use crate::version::check_path_major;

/// Collects the errors of one parse.
struct Errors(Vec<LineError>);

impl Errors {
    fn at(&mut self, line: &Line, message: impl Into<String>) {
        self.0.push(LineError {
            line: line.start.line,
            column: line.start.line_rune,
            message: message.into(),
        });
    }
}

pub(super) fn parse(data: &[u8], strict: bool) -> Result<GoMod, GoModError> {
    let file = syntax::parse(data).map_err(|e| {
        GoModError::Invalid(vec![LineError {
            line: e.pos.line,
            column: e.pos.line_rune,
            message: e.message,
        }])
    })?;
    let mut gomod = GoMod::default();
    let mut errs = Errors(Vec::new());
    for stmt in &file.stmts {
        match stmt {
            Stmt::Comments(..) => {}
            Stmt::Line(line) => {
                let Some((verb, args)) = line.tokens.split_first() else {
                    continue;
                };
                add(
                    &mut gomod,
                    &mut errs,
                    None,
                    line,
                    &go_lossy(verb),
                    args,
                    strict,
                );
            }
            Stmt::Block(block) => {
                let verb = match block.tokens.as_slice() {
                    [verb] => go_lossy(verb),
                    tokens => {
                        if strict {
                            let words: Vec<String> = tokens.iter().map(|t| go_lossy(t)).collect();
                            errs.0.push(LineError {
                                line: block.start.line,
                                column: block.start.line_rune,
                                message: format!("unknown block type: {}", words.join(" ")),
                            });
                        }
                        continue;
                    }
                };
                match verb.as_str() {
                    "module" | "godebug" | "require" | "exclude" | "replace" | "retract"
                    | "tool" | "ignore" => {
                        for line in &block.lines {
                            add(
                                &mut gomod,
                                &mut errs,
                                Some(block),
                                line,
                                &verb,
                                &line.tokens,
                                strict,
                            );
                        }
                    }
                    _ => {
                        if strict {
                            errs.0.push(LineError {
                                line: block.start.line,
                                column: block.start.line_rune,
                                message: format!("unknown block type: {verb}"),
                            });
                        }
                    }
                }
            }
        }
    }
    if errs.0.is_empty() {
        Ok(gomod)
    } else {
        Err(GoModError::Invalid(errs.0))
    }
}

/// One directive (modfile's `File.add`).
fn add(
    gomod: &mut GoMod,
    errs: &mut Errors,
    block: Option<&LineBlock>,
    line: &Line,
    verb: &str,
    args: &[Vec<u8>],
    strict: bool,
) {
    if !strict && !matches!(verb, "go" | "module" | "retract" | "require" | "ignore") {
        return;
    }
    match verb {
        "go" => {
            if gomod.go.is_some() {
                return errs.at(line, "repeated go statement");
            }
            let [v] = args else {
                return errs.at(line, "go directive expects exactly one argument");
            };
            let v = go_lossy(v);
            let version = if is_go_version(&v) {
                v.as_str()
            } else if let Some(fixed) = lax_go_version(&v).filter(|_| !strict) {
                fixed
            } else {
                return errs.at(
                    line,
                    format!("invalid go version '{v}': must match format 1.23.0"),
                );
            };
            gomod.go = Some(version.to_owned());
        }
        "toolchain" => {
            if gomod.toolchain.is_some() {
                return errs.at(line, "repeated toolchain statement");
            }
            let [name] = args else {
                return errs.at(line, "toolchain directive expects exactly one argument");
            };
            let name = go_lossy(name);
            if !is_toolchain(&name) {
                return errs.at(
                    line,
                    format!(
                        "invalid toolchain version '{name}': must match format go1.23.0 or default"
                    ),
                );
            }
            gomod.toolchain = Some(name);
        }
        "module" => {
            if gomod.module.is_some() {
                return errs.at(line, "repeated module statement");
            }
            let deprecated = deprecation(&directive_comment(block, line));
            // modfile records the directive before checking it, so a malformed one still counts
            // as present (a second one is "repeated").
            gomod.module = Some(Module {
                path: String::new(),
                deprecated,
            });
            let [path] = args else {
                return errs.at(line, "usage: module module/path");
            };
            match parse_text(path) {
                Ok(p) => {
                    if let Some(m) = gomod.module.as_mut() {
                        m.path = p;
                    }
                }
                Err(e) => errs.at(line, format!("invalid quoted string: {e}")),
            }
        }
        "godebug" => {
            let kv = match args {
                [kv] if !kv.iter().any(|b| matches!(b, b'"' | b'`' | b'\'' | b',')) => go_lossy(kv),
                _ => String::new(),
            };
            let parsed = kv.split_once('=');
            let Some((key, value)) = parsed else {
                return errs.at(line, "usage: godebug key=value");
            };
            gomod.godebug.push((key.to_owned(), value.to_owned()));
        }
        "require" | "exclude" => {
            let [path, version] = args else {
                return errs.at(line, format!("usage: {verb} module/path v1.2.3"));
            };
            let path = match parse_text(path) {
                Ok(p) => p,
                Err(e) => return errs.at(line, format!("invalid quoted string: {e}")),
            };
            let version = match parse_version(verb, &path, version) {
                Ok(v) => v,
                Err(e) => return errs.at(line, e),
            };
            let major = match path_major(&path) {
                Ok(m) => m,
                Err(e) => return errs.at(line, e),
            };
            if let Err(reason) = check_path_major(&version, major) {
                return errs.at(
                    line,
                    format!(
                        "{}{}",
                        directive(verb, &path),
                        invalid_version(version.as_bytes(), &reason)
                    ),
                );
            }
            if verb == "require" {
                let indirect = is_indirect(line);
                gomod.require.push(Require {
                    path,
                    version,
                    indirect,
                });
            } else {
                gomod.exclude.push(ModuleVersionRef { path, version });
            }
        }
        "replace" => match parse_replace(args) {
            Ok(r) => gomod.replace.push(r),
            Err(e) => errs.at(line, e),
        },
        "retract" => {
            let rationale = directive_comment(block, line);
            let mut rest = args;
            let (low, high) = match parse_version_interval(&mut rest) {
                Ok(vi) => vi,
                // Lax mode skips what it cannot read: future syntax must not break dependencies.
                Err(e) if strict => return errs.at(line, e),
                Err(_) => return,
            };
            if let Some(extra) = rest.first().filter(|_| strict) {
                return errs.at(
                    line,
                    format!("unexpected token after version: {}", quote_bytes(extra)),
                );
            }
            gomod.retract.push(Retract {
                low,
                high,
                rationale,
            });
        }
        "tool" | "ignore" => {
            let [path] = args else {
                return errs.at(
                    line,
                    format!("{verb} directive expects exactly one argument"),
                );
            };
            match parse_text(path) {
                Ok(p) if verb == "tool" => gomod.tool.push(p),
                Ok(p) => gomod.ignore.push(p),
                Err(e) => errs.at(line, format!("invalid quoted string: {e}")),
            }
        }
        _ => errs.at(line, format!("unknown directive: {verb}")),
    }
}

/// modfile's `parseReplace`; the error is the full message after the position.
fn parse_replace(args: &[Vec<u8>]) -> Result<Replace, String> {
    const VERB: &str = "replace";
    let is_arrow = |i: usize| args.get(i).map(Vec::as_slice) == Some(&b"=>"[..]);
    let arrow = if is_arrow(1) { 1 } else { 2 };
    if args.len() < arrow + 2 || args.len() > arrow + 3 || !is_arrow(arrow) {
        return Err(format!(
            "usage: {VERB} module/path [v1.2.3] => other/module v1.4\n\t or {VERB} module/path [v1.2.3] => ../local/directory"
        ));
    }
    let old_path = parse_text(&args[0]).map_err(|e| format!("invalid quoted string: {e}"))?;
    let major = path_major(&old_path).map_err(|e| format!("{}{e}", directive(VERB, &old_path)))?;
    let mut old_version = None;
    if arrow == 2 {
        let v = parse_version(VERB, &old_path, &args[1])?;
        if let Err(reason) = check_path_major(&v, major) {
            return Err(format!(
                "{}{}",
                directive(VERB, &old_path),
                invalid_version(v.as_bytes(), &reason)
            ));
        }
        old_version = Some(v);
    }
    let new_raw =
        parse_string(&args[arrow + 1]).map_err(|e| format!("invalid quoted string: {e}"))?;
    let new_path = go_lossy(&new_raw);
    let mut new_version = None;
    if args.len() == arrow + 2 {
        if !is_directory_path(&new_path) {
            if new_path.contains('@') {
                return Err(
                    "replacement module must match format 'path version', not 'path@version'"
                        .into(),
                );
            }
            return Err("replacement module without version must be directory path (rooted or starting with . or ..)".into());
        }
        if new_path.contains('\\') {
            return Err(
                "replacement directory appears to be Windows path (on a non-windows system)".into(),
            );
        }
    } else {
        let v = parse_version(VERB, &new_path, &args[arrow + 2])?;
        if is_directory_path(&new_path) {
            return Err(format!(
                "replacement module directory path {} cannot have version",
                quote_bytes(&new_raw)
            ));
        }
        new_version = Some(v);
    }
    Ok(Replace {
        old_path,
        old_version,
        new_path,
        new_version,
    })
}
