//! Building and calling `tests/xmodref`, the Go program that answers with golang.org/x/mod.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{Value, json};

/// The built reference program and the directory of the x/mod module it was built with.
pub struct XmodRef {
    binary: PathBuf,
    /// Root of the downloaded golang.org/x/mod module (holds `zip/testdata`).
    pub xmod_dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// One call: an op and its string arguments.
pub struct Call {
    op: &'static str,
    args: Vec<Vec<u8>>,
}

impl Call {
    pub fn new<S: AsRef<[u8]>>(op: &'static str, args: &[S]) -> Self {
        Call {
            op,
            args: args.iter().map(|a| a.as_ref().to_vec()).collect(),
        }
    }
}

fn program_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/xmodref")
}

/// The reference program, built once per test process; `None` (after a notice) without `go`.
pub fn get() -> Option<&'static XmodRef> {
    static REF: OnceLock<Option<XmodRef>> = OnceLock::new();
    REF.get_or_init(build).as_ref()
}

fn go_available() -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn build() -> Option<XmodRef> {
    if !go_available() {
        eprintln!("NOTICE: skipping differential tests: the `go` command is not on PATH");
        return None;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let binary = tmp.path().join("xmodref");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(program_dir())
        .output()
        .expect("running go build");
    assert!(
        out.status.success(),
        "go build of tests/xmodref failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("go")
        .args(["list", "-m", "-json", "golang.org/x/mod"])
        .current_dir(program_dir())
        .output()
        .expect("running go list");
    assert!(
        out.status.success(),
        "go list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).expect("go list -json output");
    let xmod_dir = PathBuf::from(info["Dir"].as_str().expect("x/mod Dir"));
    Some(XmodRef {
        binary,
        xmod_dir,
        _tmp: tmp,
    })
}

impl XmodRef {
    /// Runs all calls in one process and returns one result object per call.
    pub fn run(&self, calls: &[Call]) -> Vec<Value> {
        let engine = base64::engine::general_purpose::STANDARD;
        let request = json!({
            "calls": calls.iter().map(|c| {
                match c.args.iter().map(|a| String::from_utf8(a.clone())).collect::<Result<Vec<_>, _>>() {
                    Ok(args) => json!({"op": c.op, "args": args}),
                    Err(_) => json!({
                        "op": c.op,
                        "args": c.args.iter().map(|a| engine.encode(a)).collect::<Vec<_>>(),
                        "b64": true,
                    }),
                }
            }).collect::<Vec<_>>()
        });
        let mut child = Command::new(&self.binary)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting xmodref");
        let body = serde_json::to_vec(&request).expect("request json");
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || stdin.write_all(&body));
        let out = child.wait_with_output().expect("xmodref output");
        writer
            .join()
            .expect("writer thread")
            .expect("writing request");
        assert!(
            out.status.success(),
            "xmodref failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reply: Value = serde_json::from_slice(&out.stdout).expect("xmodref reply json");
        let results = reply["results"].as_array().expect("results").clone();
        assert_eq!(results.len(), calls.len());
        for (r, c) in results.iter().zip(calls) {
            assert!(
                r.get("unknown_op").is_none(),
                "xmodref does not know op {}",
                c.op
            );
        }
        results
    }
}

/// Collects disagreements between Go and us; a test fails at the end if there are any.
#[derive(Default)]
pub struct Mismatches {
    list: Vec<String>,
    checked: usize,
}

impl Mismatches {
    /// Records one comparison.
    pub fn check(&mut self, what: impl FnOnce() -> String, go: &Value, ours: &Value) {
        self.checked += 1;
        if go != ours {
            self.list
                .push(format!("{}\n    go:   {go}\n    ours: {ours}", what()));
        }
    }

    /// Fails with every mismatch (at most 60 printed) if there were any.
    pub fn finish(self, test: &str) {
        eprintln!(
            "{test}: {} comparisons, {} mismatches",
            self.checked,
            self.list.len()
        );
        if self.list.is_empty() {
            return;
        }
        // A count per operation first, then the cases.
        let mut per_op: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for s in &self.list {
            let op = s.split(['(', ' ']).next().unwrap_or("");
            *per_op.entry(op).or_default() += 1;
        }
        eprintln!("{test}: mismatches per operation: {per_op:?}");
        let all = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{test}.mismatches.txt"));
        let _ = std::fs::write(&all, self.list.join("\n"));
        eprintln!("{test}: all mismatches written to {}", all.display());
        let shown: Vec<&String> = self.list.iter().take(60).collect();
        panic!(
            "{test}: {} of {} comparisons differ from golang.org/x/mod:\n{}",
            self.list.len(),
            self.checked,
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Path helper for tests: a path as a UTF-8 string argument.
pub fn arg(p: &Path) -> String {
    p.to_str().expect("temp paths are UTF-8").to_owned()
}
