//! Opt-in (`STRATA_LIVE_UPSTREAM=1`, `make live-test`; needs network): against the public
//! module mirror (proxy.golang.org) and the public checksum database with its real key.
//! Skipped (passing) without the variable: the default suite needs no network.
//!
//! - A remote repository serves every module of `../shared/realworld/viper/go.sum`, and the
//!   hashes of what it serves equal that go.sum.
//! - The public half of the registry's own checksum database (`[ledger]`, issue 16) matches
//!   sum.golang.org: for the four real projects in `../shared/realworld` (viper, lazygit,
//!   prometheus, golang-migrate) the registry fetches the go.mod of every module version their
//!   go.sum lists through the remote repository (which verifies it against sum.golang.org and
//!   records it in the ledger first), the ledger's signed tree then holds exactly one record
//!   per distinct version, and for every go.sum line the ledger's
//!   `/lookup/<module>@<version>` answers a record (signed by the ledger's key) containing
//!   exactly that line, and exactly the version's two lines. It prints the counts (module
//!   versions, lines compared, mismatches) and the time per project.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt as _};
use strata_central_registry::ledger::generate_key;
use strata_core::dirhash::{hash_go_mod, hash_zip};
use strata_core::path::{escape_path, escape_version};
use strata_core::sumdb::record::{parse_record, record_lines};
use strata_core::sumdb::{VerifierKey, VerifierList, note, parse_tree};
use support::config::{RegistryToml, Repo};
use support::registry::TestRegistry;

const GO_SUM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/realworld/viper/go.sum"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_modules_from_the_public_mirror_match_go_sum() {
    if std::env::var("STRATA_LIVE_UPSTREAM").as_deref() != Ok("1") {
        eprintln!("skipped: set STRATA_LIVE_UPSTREAM=1 to run against proxy.golang.org");
        return;
    }
    let go_sum = std::fs::read_to_string(GO_SUM).expect("the shared realworld go.sum");
    let gocache = Repo::remote("gocache")
        .anonymous_read()
        .set("upstream", r#"{ url = "https://proxy.golang.org" }"#)
        // The real key (the default); the database is reached through the mirror's sumdb
        // proxy, as the go command does, since sum.golang.org itself may be firewalled.
        .set(
            "checksum_db",
            r#"{ url = "https://proxy.golang.org/sumdb/sum.golang.org" }"#,
        );
    let reg = TestRegistry::start(RegistryToml::new().repo(gocache)).await;
    let base = reg.proxy_url("gocache");
    let http = reqwest::Client::new();
    let mut checked = 0;
    for line in go_sum.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [module, version, want] = fields[..] else {
            panic!("bad go.sum line {line:?}");
        };
        let (version, is_mod) = match version.strip_suffix("/go.mod") {
            Some(v) => (v, true),
            None => (version, false),
        };
        let ext = if is_mod { "mod" } else { "zip" };
        let url = format!(
            "{base}/{}/@v/{}.{ext}",
            escape_path(module).unwrap(),
            escape_version(version).unwrap()
        );
        let response = http.get(&url).send().await.unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
        let got = if is_mod {
            hash_go_mod(&body)
        } else {
            hash_zip(std::io::Cursor::new(body.to_vec())).unwrap()
        };
        assert_eq!(got, want, "{line}");
        checked += 1;
    }
    assert!(checked >= 40, "{checked} lines checked");
    assert!(
        reg.fs_root.as_ref().unwrap().join("objects/sumdb").exists(),
        "the database state is kept"
    );
}

/// The four real projects of `../shared/realworld`, by directory name.
const REALWORLD: [&str; 4] = ["viper", "lazygit", "prometheus", "golang-migrate"];
const LEDGER: &str = "sum.live.strata.test";
/// Requests in flight at once against the registry (each a fill from the mirror at first).
const PARALLEL: usize = 8;

/// A go.sum by module version (module, version): its lines (one or two: zip and `/go.mod`).
type GoSumVersions = BTreeMap<(String, String), BTreeSet<String>>;

/// Groups a go.sum's lines by module version.
fn go_sum_versions(text: &str) -> GoSumVersions {
    let mut versions = GoSumVersions::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [module, version, _] = fields[..] else {
            panic!("bad go.sum line {line:?}");
        };
        let version = version.strip_suffix("/go.mod").unwrap_or(version);
        versions
            .entry((module.to_owned(), version.to_owned()))
            .or_default()
            .insert(line.to_owned());
    }
    versions
}

/// GET with a few retries on transport errors and 5xx (the public mirror has bad moments);
/// (status, body).
async fn get_retrying(http: &reqwest::Client, url: &str) -> (u16, String) {
    let mut last = (0, String::new());
    for attempt in 0..4u64 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2 * attempt)).await;
        }
        match http.get(url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                if status < 500 {
                    return (status, body);
                }
                last = (status, body);
            }
            Err(e) => last = (0, e.to_string()),
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledgers_public_half_matches_sum_golang_org_for_real_graphs() {
    if std::env::var("STRATA_LIVE_UPSTREAM").as_deref() != Ok("1") {
        eprintln!("skipped: set STRATA_LIVE_UPSTREAM=1 to run against proxy.golang.org");
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (signer, verifier) = generate_key(LEDGER).unwrap();
    let key_path = dir.path().join("ledger.key");
    std::fs::write(&key_path, signer).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let ledger = format!(
        "\n[ledger]\nname = \"{LEDGER}\"\nkey_file = {:?}\n",
        key_path.display().to_string()
    );
    let gocache = Repo::remote("gocache")
        .anonymous_read()
        .set("upstream", r#"{ url = "https://proxy.golang.org" }"#)
        // sum.golang.org with its real key (the default), through the mirror's sumdb proxy as
        // the go command reaches it (sum.golang.org itself may be firewalled).
        .set(
            "checksum_db",
            r#"{ url = "https://proxy.golang.org/sumdb/sum.golang.org" }"#,
        );
    let reg = TestRegistry::builder(RegistryToml::new().repo(gocache))
        .edit(move |text| format!("{text}{ledger}"))
        .start()
        .await;
    let base = reg.proxy_url("gocache");
    let db = format!("{base}/sumdb/{LEDGER}");
    let verifiers = VerifierList::new([VerifierKey::parse(&verifier).unwrap()]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();

    let projects: Vec<(&str, GoSumVersions)> = REALWORLD
        .iter()
        .map(|name| {
            let path = format!(
                "{}/../../../shared/realworld/{name}/go.sum",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            (*name, go_sum_versions(&text))
        })
        .collect();

    // 1. Fetch every version's go.mod through the remote repository: each one is verified
    //    against sum.golang.org and recorded (both lines) before it is stored.
    let mut fetched: BTreeSet<(String, String)> = BTreeSet::new();
    let mut failures = Vec::new();
    for (name, versions) in &projects {
        let t = Instant::now();
        let todo: Vec<&(String, String)> = versions
            .keys()
            .filter(|mv| !fetched.contains(*mv))
            .collect();
        let results: Vec<_> = stream::iter(todo.iter().map(|(module, version)| {
            let url = format!(
                "{base}/{}/@v/{}.mod",
                escape_path(module).unwrap(),
                escape_version(version).unwrap()
            );
            let http = &http;
            async move { ((module, version), get_retrying(http, &url).await) }
        }))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
        for ((module, version), (status, body)) in results {
            if status == 200 {
                fetched.insert((module.clone(), version.clone()));
            } else {
                failures.push(format!("{module}@{version}.mod: {status} {body}"));
            }
        }
        println!(
            "live ledger: {name}: fetched the go.mod of {} new module versions (of {}) in {:.1?}",
            todo.len(),
            versions.len(),
            t.elapsed()
        );
    }
    assert!(
        failures.is_empty(),
        "{} fetches failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let tree_size = |body: &str| {
        let note = note::open(body.as_bytes(), &verifiers)
            .unwrap_or_else(|e| panic!("/latest does not verify with the ledger's key: {e:?}"));
        parse_tree(note.text.as_bytes()).unwrap().n
    };
    let (status, latest) = get_retrying(&http, &format!("{db}/latest")).await;
    assert_eq!(status, 200, "{latest}");
    let recorded = tree_size(&latest);
    assert_eq!(
        recorded,
        fetched.len() as u64,
        "one record per distinct module version fetched, recorded at the fill"
    );

    // 2. Every go.sum line against the ledger's lookup of its version.
    let mut totals = (0usize, 0usize, 0usize);
    let mut mismatches = Vec::new();
    for (name, versions) in &projects {
        let t = Instant::now();
        let answers: Vec<_> = stream::iter(versions.iter().map(|((module, version), lines)| {
            let url = format!(
                "{db}/lookup/{}@{}",
                escape_path(module).unwrap(),
                escape_version(version).unwrap()
            );
            let http = &http;
            async move { (module, version, lines, get_retrying(http, &url).await) }
        }))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
        let mut project_mismatches = 0;
        let mut compared = 0;
        for (module, version, lines, (status, body)) in answers {
            compared += lines.len();
            let what = format!("{module}@{version}");
            if status != 200 {
                project_mismatches += lines.len();
                mismatches.push(format!("{what}: lookup answered {status}: {body}"));
                continue;
            }
            let record = parse_record(body.as_bytes())
                .unwrap_or_else(|e| panic!("{what}: malformed lookup answer ({e}):\n{body}"));
            let note = note::open(record.rest, &verifiers)
                .unwrap_or_else(|e| panic!("{what}: the lookup's tree head: {e:?}"));
            let tree = parse_tree(note.text.as_bytes()).unwrap();
            assert!(
                record.id < tree.n,
                "{what}: record {} of {}",
                record.id,
                tree.n
            );
            let got: BTreeSet<String> = std::str::from_utf8(record.text)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            let ours = [
                record_lines(record.text, module, version),
                record_lines(record.text, module, &format!("{version}/go.mod")),
            ];
            let bad: Vec<&String> = lines.iter().filter(|l| !got.contains(*l)).collect();
            let shape_ok = got.len() == 2 && ours.iter().all(|l| l.len() == 1);
            if !bad.is_empty() || !shape_ok {
                project_mismatches += bad.len().max(1);
                mismatches.push(format!(
                    "{what}: go.sum has {lines:?}, the ledger's record is {got:?}"
                ));
            }
        }
        println!(
            "live ledger: {name}: {} module versions, {compared} go.sum lines compared, \
             {project_mismatches} mismatches, lookups in {:.1?}",
            versions.len(),
            t.elapsed()
        );
        totals.0 += versions.len();
        totals.1 += compared;
        totals.2 += project_mismatches;
    }
    let (status, latest) = get_retrying(&http, &format!("{db}/latest")).await;
    assert_eq!(status, 200, "{latest}");
    println!(
        "live ledger: all four: {} module versions ({} distinct), {} go.sum lines compared, {} \
         mismatches; tree size {}; {:.1?} in all",
        totals.0,
        fetched.len(),
        totals.1,
        totals.2,
        tree_size(&latest),
        started.elapsed()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(
        tree_size(&latest),
        recorded,
        "lookups of versions the fills recorded add nothing"
    );
}
