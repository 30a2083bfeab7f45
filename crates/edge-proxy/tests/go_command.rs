//! The real go command as the client: `go mod download` of published modules through the edge,
//! cold (every zip fetched from the registry once) and warm (from the edge's tiers only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use strata_testkit::modules::FixtureModule;
use support::{EdgeOptions, TestEdge, TestRegistry};

/// Runs `go mod download -json targets…` with a fresh module cache under `home`.
fn go_mod_download(proxy: &str, home: &Path, targets: &[String]) -> (bool, String, String) {
    let modcache = home.join("modcache");
    let output = Command::new("go")
        .args(["mod", "download", "-json"])
        .args(targets)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GOPATH", home.join("gopath"))
        .env("GOCACHE", home.join("gocache"))
        .env("GOMODCACHE", &modcache)
        .env("GOPROXY", proxy)
        .env("GOFLAGS", "-mod=mod")
        .env("GONOSUMDB", "*")
        .env("GONOSUMCHECK", "1")
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "on")
        .output()
        .expect("the go command runs (Go is installed by scripts/ensure-deps.sh)");
    // The module cache is read-only by design; make it removable.
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&modcache)
        .status();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn go_mod_download_through_the_edge_cold_and_warm() {
    let registry = TestRegistry::start().await;
    let modules = [
        FixtureModule::new("example.com/gotest/base", "v1.0.0", &[]),
        FixtureModule::new(
            "example.com/gotest/app",
            "v1.0.0",
            &[("example.com/gotest/base", "v1.0.0")],
        ),
        FixtureModule::new("example.com/GoTest/Upper", "v1.0.0", &[]),
    ];
    for m in &modules {
        registry.publish("go", m).await;
    }
    let cache = tempfile::tempdir().unwrap();
    let edge = TestEdge::for_registry(&registry, cache.path(), &EdgeOptions::default()).await;
    let proxy = edge.url("");
    let targets: Vec<String> = modules
        .iter()
        .map(|m| format!("{}@{}", m.path, m.version))
        .collect();

    for (round, expected_fills) in [("cold", 3), ("warm", 3)] {
        let home = tempfile::tempdir().unwrap();
        let p = proxy.clone();
        let t = targets.clone();
        let dir = home.path().to_owned();
        let (ok, stdout, stderr) =
            tokio::task::spawn_blocking(move || go_mod_download(&p, &dir, &t))
                .await
                .unwrap();
        assert!(ok, "{round}: go mod download failed:\n{stderr}\n{stdout}");
        for m in &modules {
            let built = m.build();
            assert!(
                stdout.contains(&format!("\"Sum\": \"{}\"", built.zip_hash)),
                "{round}: {} h1 not in output:\n{stdout}",
                m.path
            );
            assert!(stdout.contains(&format!("\"GoModSum\": \"{}\"", built.go_mod_hash)));
        }
        assert_eq!(
            edge.fills(),
            expected_fills,
            "{round}: zips fetched from the registry"
        );
    }
    edge.stop().await;
}
