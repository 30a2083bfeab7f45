//! Opt-in (`STRATA_LIVE_UPSTREAM=1`): a remote repository of the public module mirror
//! (proxy.golang.org), verified against the public checksum database with its real key, serves
//! every module of `../shared/realworld/viper/go.sum`, and the hashes of what it serves equal
//! that go.sum. Skipped (passing) without the variable: the default suite needs no network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use strata_core::dirhash::{hash_go_mod, hash_zip};
use strata_core::path::{escape_path, escape_version};
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
