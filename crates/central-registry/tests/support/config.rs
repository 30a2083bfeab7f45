//! The registry configurations the registry's tests share, written with the workspace's one
//! configuration writer, [`strata_testkit::registry_toml`] ([`RegistryToml`], [`Repo`],
//! [`Token`], re-exported here). The layouts are functions:
//!
//! * [`local`]: `private`, `team` (claims `example.com/team`) and `public` (anonymous read), all
//!   local; tokens `ci` (read, deploy), `reader` (read), `admin`.
//! * [`claimed`]: `private` (claims `example.com`) and `open` (anonymous read); tokens `ci` and
//!   `reader`.
//! * [`remote`]: `private` (local, `allow_shadowing`), `corp` (local, claims
//!   `corp.example.com`), `gocache` (remote of a fixture upstream, verified against a test
//!   checksum database) and `go` (virtual over the three, anonymous read); token `ci`.
//!
//! Every setting is written as a `key = value` line in the order it was added, one line each,
//! with bare keys where TOML allows them: tests that edit the text (`shadowing.rs`,
//! `hygiene.rs`) replace those lines verbatim.

use strata_testkit::registry_toml::strings;
pub use strata_testkit::registry_toml::{RegistryToml, Repo, Token};
use strata_testkit::{FixtureUpstream, TestSumDb};

/// May read and deploy (in the remote layout: deploy to the local and remote repositories).
pub const CI_TOKEN: &str = "strata-test-ci";
/// May only read.
pub const READ_TOKEN: &str = "strata-test-reader";
/// May do everything, including delete.
pub const ADMIN_TOKEN: &str = "strata-test-admin";

/// Every module, token required to read (local and claimed layouts: in the claimed one it
/// takes `example.com/…` only).
pub const PRIVATE: &str = "private";
/// Local layout: only `example.com/team/…` (include pattern), token required to read.
pub const TEAM: &str = "team";
/// Local layout: every module, anonymous read allowed.
pub const PUBLIC: &str = "public";
/// Claimed layout: every module, anonymous read allowed.
pub const OPEN: &str = "open";

/// The test checksum database's name in the remote layout.
pub const DB_NAME: &str = "sum.strata.test";

/// Server knobs of the local layout.
#[derive(Debug, Clone)]
pub struct Options {
    /// `server.max_upload_bytes`.
    pub max_upload_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_upload_bytes: 512 << 20,
        }
    }
}

/// Knobs of the remote layout's `gocache` repository.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// `metadata_ttl_secs`.
    pub metadata_ttl_secs: u64,
    /// `negative_ttl_secs`.
    pub negative_ttl_secs: u64,
    /// `offline`.
    pub offline: bool,
    /// `fall_through`.
    pub fall_through: bool,
    /// `no_sum` patterns.
    pub no_sum: Vec<String>,
    /// The upstream's and the checksum database's `read_timeout_ms`.
    pub read_timeout_ms: u64,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            metadata_ttl_secs: 600,
            negative_ttl_secs: 60,
            offline: false,
            fall_through: false,
            no_sum: Vec::new(),
            read_timeout_ms: 2_000,
        }
    }
}

/// The remote layout's `gocache`: a remote repository of the fixture `upstream`, verified
/// against `db` (which the upstream serves under `/sumdb/<name>/`), with `options`; anonymous
/// read. Fast retries: two attempts, 5 ms apart.
fn gocache(upstream: &FixtureUpstream, db: &TestSumDb, options: &RemoteOptions) -> Repo {
    let no_sum: Vec<&str> = options.no_sum.iter().map(String::as_str).collect();
    let (url, rt) = (upstream.url(), options.read_timeout_ms);
    Repo::remote("gocache")
        .anonymous_read()
        .set("no_sum", strings(&no_sum))
        .set("metadata_ttl_secs", options.metadata_ttl_secs.to_string())
        .set("negative_ttl_secs", options.negative_ttl_secs.to_string())
        .set("offline", options.offline.to_string())
        .set("fall_through", options.fall_through.to_string())
        .upstream(&url, rt, 2)
        .checksum_db(&url, db, rt)
}

/// The local layout (see the module header), with `options`.
pub fn local(options: &Options) -> RegistryToml {
    RegistryToml::new()
        .max_upload_bytes(options.max_upload_bytes)
        .repo(Repo::local(PRIVATE))
        .repo(Repo::local(TEAM).include(&["example.com/team"]))
        .repo(Repo::local(PUBLIC).anonymous_read())
        .token(Token::new("ci", CI_TOKEN).grant("*", &["read", "deploy"]))
        .token(Token::new("reader", READ_TOKEN).grant("*", &["read"]))
        .token(Token::new("admin", ADMIN_TOKEN).grant("*", &["admin"]))
}

/// The claimed layout (see the module header).
pub fn claimed() -> RegistryToml {
    RegistryToml::new()
        .repo(Repo::local(PRIVATE).include(&["example.com"]))
        .repo(Repo::local(OPEN).anonymous_read())
        .token(Token::new("ci", CI_TOKEN).grant("*", &["read", "deploy"]))
        .token(Token::new("reader", READ_TOKEN).grant("*", &["read"]))
}

/// The remote layout (see the module header) over the fixture `upstream` and `db`.
pub fn remote(upstream: &FixtureUpstream, db: &TestSumDb, options: &RemoteOptions) -> RegistryToml {
    // `private` takes public paths on purpose (dependency-confusion cases); `shadowing.rs`
    // removes its `allow_shadowing = true` line to test the default policy.
    let deploy: &[&str] = &["read", "deploy"];
    RegistryToml::new()
        .repo(Repo::local("private").allow_shadowing())
        .repo(Repo::local("corp").include(&["corp.example.com"]))
        .repo(gocache(upstream, db, options))
        .repo(Repo::virtual_of("go", &["private", "corp", "gocache"]).anonymous_read())
        .token(
            Token::new("ci", CI_TOKEN)
                .grant("private", deploy)
                .grant("corp", deploy)
                .grant("gocache", deploy)
                .grant("go", &["read"]),
        )
}
