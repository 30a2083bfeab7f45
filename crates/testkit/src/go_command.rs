//! The real go command as tests run it: [`run`] runs `go args…` in a module directory with a
//! private GOPATH, GOMODCACHE and GOCACHE under a home of the test's, so runs never share or
//! touch the developer's caches.
//!
//! The environment it sets: `GOENV=off` (no user go.env), `GOTOOLCHAIN=local` (never download a
//! toolchain), `GOFLAGS=-mod=mod`, `GOPROXY` and `GOSUMDB` as given — a bare verifier key, so the
//! checksum database is reached through the proxy — and `GONOSUMDB` as given with empty
//! `GOPRIVATE`/`GONOPROXY`. `GOINSECURE`, `GONOSUMCHECK` and `GOVCS` from the caller's
//! environment are removed. The go binary comes from `PATH` (scripts/ensure-deps.sh installs it).

use std::path::Path;
use std::process::{Command, Output};

/// Runs `go args…` in `dir` with a private GOPATH/GOMODCACHE/GOCACHE under `home`, through
/// `proxy` (GOPROXY), verifying against the database with verifier key `sumdb_key` (GOSUMDB)
/// except for `nosumdb` (GONOSUMDB patterns; "" for none). Panics if the command cannot start.
pub fn run(
    dir: &Path,
    home: &Path,
    proxy: &str,
    sumdb_key: &str,
    nosumdb: &str,
    args: &[&str],
) -> Output {
    Command::new("go")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GOPATH", home.join("gopath"))
        .env("GOMODCACHE", home.join("modcache"))
        .env("GOCACHE", home.join("gocache"))
        .env("GOENV", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", proxy)
        .env("GOSUMDB", sumdb_key)
        .env("GOFLAGS", "-mod=mod")
        .env("GONOSUMDB", nosumdb)
        .env("GOPRIVATE", "")
        .env("GONOPROXY", "")
        .env_remove("GOINSECURE")
        .env_remove("GONOSUMCHECK")
        .env_remove("GOVCS")
        .output()
        .expect("run the go command")
}
