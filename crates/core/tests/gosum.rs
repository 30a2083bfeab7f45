//! go.sum lines: parsing with line numbers, formatting, `module.Sort` order; the x/mod vector
//! and the real-world go.sum files in `../shared/realworld`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use strata_core::gosum::{
    EMPTY_GO_MOD_HASH, GoSumError, GoSumLine, format_go_sum, format_module_lines, parse_go_sum,
    sort_go_sum,
};

#[test]
fn parses_lines_and_skips_blank_ones() {
    let text = "\nrsc.io/quote v1.5.2 h1:w5fcysjrx7yqtD/aO+QwRjYZOKnaM9Uh2b40tElTs3Y=\n  \t \r\nrsc.io/quote\tv1.5.2/go.mod  h1:LzX7hefJvL54yjefDEDHNONDjII0t9xZLPXsUe+TKr0=\r\nx v1.0.0 h2:future";
    let lines = parse_go_sum(text).unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        GoSumLine::zip(
            "rsc.io/quote",
            "v1.5.2",
            "h1:w5fcysjrx7yqtD/aO+QwRjYZOKnaM9Uh2b40tElTs3Y="
        )
    );
    assert!(lines[1].go_mod_only);
    assert_eq!(lines[1].version, "v1.5.2");
    assert_eq!(lines[1].version_field(), "v1.5.2/go.mod");
    assert_eq!(lines[2].algorithm(), "h2");
    assert_eq!(lines[0].algorithm(), "h1");
}

#[test]
fn wrong_field_counts_name_the_line() {
    let e = parse_go_sum("a v1.0.0 h1:x\n\na v1.0.0\n").unwrap_err();
    assert_eq!(e, GoSumError::WrongFieldCount { line: 3, fields: 2 });
    assert_eq!(
        e.to_string(),
        "malformed go.sum:\ngo.sum:3: wrong number of fields 2"
    );
    assert!(parse_go_sum("a v1 h1:x extra").is_err());
    assert!(parse_go_sum("").unwrap().is_empty());
    assert!(parse_go_sum("\n\n \n").unwrap().is_empty());
}

#[test]
fn formats_and_sorts_like_module_sort() {
    assert_eq!(
        format_module_lines("golang.org/x/text", "v0.3.0", "h1:zip=", "h1:mod="),
        "golang.org/x/text v0.3.0 h1:zip=\ngolang.org/x/text v0.3.0/go.mod h1:mod=\n"
    );
    let mut lines = vec![
        GoSumLine::go_mod("b", "v1.10.0", "h1:c"),
        GoSumLine::zip("b", "v1.10.0", "h1:c"),
        GoSumLine::go_mod("b", "v1.9.0", "h1:b"),
        GoSumLine::zip("b", "v1.0.0-pre", "h1:z"),
        GoSumLine::zip("a", "v2.0.0+incompatible", "h1:y"),
        GoSumLine::zip("a", "v0.0.0-20200101000000-abcdefabcdef", "h1:x"),
        GoSumLine::zip("B", "v1.0.0", "h1:w"),
        GoSumLine::zip("b", "v1.0.0", "h1:v2"),
        GoSumLine::zip("b", "v1.0.0", "h1:v1"),
    ];
    sort_go_sum(&mut lines);
    let got: Vec<String> = lines.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "B v1.0.0 h1:w",
            "a v0.0.0-20200101000000-abcdefabcdef h1:x",
            "a v2.0.0+incompatible h1:y",
            "b v1.0.0-pre h1:z",
            "b v1.0.0 h1:v1",
            "b v1.0.0 h1:v2",
            "b v1.9.0/go.mod h1:b",
            "b v1.10.0 h1:c",
            "b v1.10.0/go.mod h1:c",
        ]
    );
    // Duplicates collapse when formatting.
    let dup = [
        GoSumLine::zip("a", "v1.0.0", "h1:x"),
        GoSumLine::zip("a", "v1.0.0", "h1:x"),
    ];
    assert_eq!(format_go_sum(&dup), "a v1.0.0 h1:x\n");
    assert!(GoSumLine::go_mod("a", "v1.0.0", EMPTY_GO_MOD_HASH).is_empty_go_mod_bug());
}

#[test]
fn x_mod_gosumcheck_vector() {
    let Some(v) = common::load("gosum_examples.json") else {
        return;
    };
    let text = common::str_field(&v, "go_sum_text");
    let lines = parse_go_sum(text).unwrap();
    assert_eq!(
        lines.len(),
        text.lines().filter(|l| !l.trim().is_empty()).count()
    );
    assert!(lines.iter().all(|l| l.algorithm() == "h1"));
    // The file is hand-edited (its deliberately wrong rsc.io/text line is appended, out of
    // order): each line re-formats to itself, and sorting only moves that line.
    let relined: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(relined, text);
    let sorted = format_go_sum(&lines);
    let mut want: Vec<&str> = text.lines().collect();
    want.sort_by_key(|l| l.starts_with("rsc.io/text"));
    let mut got: Vec<&str> = sorted.lines().collect();
    got.sort_by_key(|l| l.starts_with("rsc.io/text"));
    assert_eq!(got, want);
    assert!(
        sorted.ends_with("rsc.io/text v1.5.2 h1:w5fcysjrx7yqtD/aO+QwRjYZOKnaM9Uh2b40tElTs3Y=\n")
    );
}

#[test]
fn realworld_go_sum_files_round_trip() {
    let Some(shared) = common::shared_dir() else {
        eprintln!("skipped realworld_go_sum_files_round_trip: ../shared not found");
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(shared.join("realworld")).unwrap() {
        let path = entry.unwrap().path().join("go.sum");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let lines = parse_go_sum(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(lines.len() > 10);
        for line in &lines {
            assert_eq!(line.algorithm(), "h1", "{line}");
            assert!(strata_core::semver::is_valid(&line.version), "{line}");
        }
        // The go command wrote these files: re-formatting (which sorts) reproduces them.
        assert_eq!(format_go_sum(&lines), text, "{}", path.display());
        let mut shuffled = lines.clone();
        shuffled.reverse();
        shuffled.rotate_left(lines.len() / 3);
        assert_eq!(format_go_sum(&shuffled), text);
        seen += 1;
    }
    assert_eq!(seen, 4);
}
