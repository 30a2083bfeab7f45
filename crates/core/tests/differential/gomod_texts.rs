//! Deterministic go.mod texts: every directive, blocks, comments (deprecations, rationales,
//! `// indirect`), quoting, and broken lines of every kind.

use crate::inputs::{Rng, mutate, path, version};

/// A go.mod text assembled from plausible and broken lines.
pub fn go_mod(rng: &mut Rng) -> String {
    let mut out = String::new();
    let n = rng.below(8);
    for _ in 0..n {
        go_mod_stmt(rng, &mut out);
        out.push_str(rng.pick(&[
            "\n",
            "\n",
            "\n",
            "\n",
            "\r\n",
            "\n\n",
            " // trailing\n",
            "//x\n",
            "",
        ]));
    }
    if rng.chance(10) {
        mutate(rng, &mut out);
    }
    out
}

fn quoted(rng: &mut Rng, s: String) -> String {
    match rng.below(12) {
        0 => format!("\"{s}\""),
        1 => format!("`{s}`"),
        2 => format!("'{s}'"),
        3 => format!("\"{s}\\t\""),
        4 => format!("\"{s}\\q\""),
        _ => s,
    }
}

fn go_mod_arg(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=3 => {
            let p = path(rng);
            quoted(rng, p)
        }
        4..=7 => {
            let v = version(rng);
            quoted(rng, v)
        }
        _ => rng
            .pick(&[
                "=>", "[", "]", ",", "(", ")", "../dir", "./x", "C:\\x", "/abs", "1.21", "go1.22",
                "//", "x=y", "@",
            ])
            .to_string(),
    }
}

fn comment(rng: &mut Rng) -> String {
    rng.pick(&[
        "// Deprecated: use v2",
        "// Deprecated:",
        "//Deprecated: x",
        "// deprecated: x",
        "// indirect",
        "// indirect; because",
        "//indirect",
        "// rationale here",
        "//",
        "// Deprecated: a\n//\n// more",
        "// first\n//\n// Deprecated: second",
        "/* no */",
    ])
    .to_string()
}

/// A directive's line; inside a block (`in_block`) the verb is not written.
fn directive_line(rng: &mut Rng, verb: &str, in_block: bool) -> String {
    let mut line = String::new();
    if !in_block {
        line.push_str(verb);
    }
    let argc = match verb {
        "module" | "go" | "toolchain" | "tool" | "ignore" | "godebug" => {
            rng.pick(&[1, 1, 1, 1, 0, 2])
        }
        "require" | "exclude" => rng.pick(&[2, 2, 2, 2, 1, 3]),
        _ => rng.below(6),
    };
    for i in 0..argc {
        if !line.is_empty() {
            line.push(' ');
        }
        let a = match verb {
            "go" => rng
                .pick(&[
                    "1.21", "1.21.0", "1.21rc1", "1", "v1.21", "1.21-x", "1.021", "1.22.x", "2.0",
                    "1.21.0.0",
                ])
                .to_string(),
            "toolchain" => rng
                .pick(&[
                    "go1.21", "go1.21.3", "default", "go1", "go1x", "1.21", "go2",
                ])
                .to_string(),
            "godebug" => rng
                .pick(&["a=b", "x", "k=", "=v", "a=\"b\"", "a=b,c"])
                .to_string(),
            "retract" => rng
                .pick(&[
                    "v1.0.0",
                    "[v1.0.0, v1.2.0]",
                    "[v1.0.0,v1.2.0]",
                    "[v1.0.0 v1.2.0]",
                    "[",
                    "v1.0.0 v1.1.0",
                    "\"v1.0.0\"",
                    "junk",
                    "[v1.0.0, ]",
                    "(v1.0.0)",
                ])
                .to_string(),
            "replace" => rng
                .pick(&[
                    "a.b/c",
                    "=>",
                    "a.b/c v1.0.0",
                    "../x",
                    "x.y/z v1.2.3",
                    "a.b/c@v1.0.0",
                    "./d v1.0.0",
                ])
                .to_string(),
            "require" | "exclude" | "module" if rng.chance(60) => {
                if i == 0 {
                    rng.pick(&[
                        "example.com/m",
                        "golang.org/x/mod",
                        "example.com/m/v2",
                        "gopkg.in/yaml.v2",
                        "\"example.com/q\"",
                        "Example.com/M",
                    ])
                    .to_string()
                } else {
                    rng.pick(&[
                        "v1.0.0",
                        "v2.0.0",
                        "v2.0.0+incompatible",
                        "v1.2",
                        "v0.0.0-20200101000000-abcdefabcdef",
                        "v1.0.0-rc.1",
                        "\"v1.0.0\"",
                    ])
                    .to_string()
                }
            }
            _ => go_mod_arg(rng),
        };
        line.push_str(&a);
    }
    if rng.chance(20) {
        line.push(' ');
        line.push_str(&comment(rng));
    }
    line
}

const VERBS: &[&str] = &[
    "module",
    "module",
    "go",
    "go",
    "toolchain",
    "require",
    "require",
    "exclude",
    "replace",
    "retract",
    "retract",
    "tool",
    "ignore",
    "godebug",
    "foo",
    "\"module\"",
    "Module",
];

fn go_mod_stmt(rng: &mut Rng, out: &mut String) {
    if rng.chance(20) {
        out.push_str(&comment(rng));
        out.push('\n');
    }
    let verb = rng.pick(VERBS);
    match rng.below(10) {
        0..=5 => out.push_str(&directive_line(rng, verb, false)),
        6..=8 => {
            out.push_str(verb);
            out.push_str(rng.pick(&[" (", " (", "(", " ( // c", " ( x"]));
            out.push('\n');
            for _ in 0..rng.below(4) {
                if rng.chance(20) {
                    out.push_str(&comment(rng));
                    out.push('\n');
                }
                if rng.chance(10) {
                    out.push('\n');
                }
                out.push('\t');
                out.push_str(&directive_line(rng, verb, true));
                out.push('\n');
            }
            if !rng.chance(5) {
                out.push_str(rng.pick(&[")", ")", ") // end", ") x", " )"]));
            }
        }
        _ => out.push_str(rng.pick(&[
            "()",
            "( )",
            "x ( y",
            "[",
            "\"unterminated",
            "`raw`",
            "module ( )",
            "require ()",
            "\u{feff}",
            "\u{200b}",
        ])),
    }
}
