//! The one writer of test registry configurations: [`RegistryToml`] holds the repositories,
//! tokens and server knobs a test wants and writes them as the TOML the registry reads, with fs
//! storage and both listeners on loopback. The layouts the tests share are constructors:
//!
//! * [`RegistryToml::local`]: `private`, `team` (claims `example.com/team`) and `public`
//!   (anonymous read), all local; tokens `ci` (read, deploy), `reader` (read), `admin`.
//! * [`RegistryToml::claimed`]: `private` (claims `example.com`) and `open` (anonymous read);
//!   tokens `ci` and `reader`.
//! * [`RegistryToml::remote`]: `private` (local, `allow_shadowing`), `corp` (local, claims
//!   `corp.example.com`), `gocache` (remote of a fixture upstream, verified against a test
//!   checksum database) and `go` (virtual over the three, anonymous read); token `ci`.
//!
//! Every setting is written as a `key = value` line in the order it was added, one line each,
//! with bare keys where TOML allows them: tests that edit the text (`shadowing.rs`,
//! `hygiene.rs`) replace those lines verbatim.

use std::net::SocketAddr;
use std::path::Path;

use strata_central_registry::auth::hash_token;
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

/// One `[[repositories]]` entry: name, kind, then its settings in the order given.
#[derive(Debug, Clone)]
pub struct Repo {
    name: String,
    kind: &'static str,
    settings: Vec<(String, String)>,
}

impl Repo {
    /// A local repository.
    pub fn local(name: &str) -> Self {
        Self::new(name, "local")
    }

    /// A remote repository; its `upstream` (and `checksum_db`) are set with [`Repo::set`], or
    /// use [`Repo::fixture_remote`].
    pub fn remote(name: &str) -> Self {
        Self::new(name, "remote")
    }

    /// A virtual repository over `members`, in that order.
    pub fn virtual_of(name: &str, members: &[&str]) -> Self {
        let members: Vec<String> = members
            .iter()
            .map(|m| format!("{{ repository = {m:?} }}"))
            .collect();
        Self::new(name, "virtual").set("members", format!("[{}]", members.join(", ")))
    }

    /// A remote repository of the fixture `upstream`, verified against `db` (which the
    /// upstream serves under `/sumdb/<name>/`), with `options`; anonymous read. Fast retries:
    /// two attempts, 5 ms apart.
    pub fn fixture_remote(
        name: &str,
        upstream: &FixtureUpstream,
        db: &TestSumDb,
        options: &RemoteOptions,
    ) -> Self {
        let no_sum: Vec<&str> = options.no_sum.iter().map(String::as_str).collect();
        let (url, rt) = (upstream.url(), options.read_timeout_ms);
        Self::remote(name)
            .anonymous_read()
            .set("no_sum", strings(&no_sum))
            .set("metadata_ttl_secs", options.metadata_ttl_secs.to_string())
            .set("negative_ttl_secs", options.negative_ttl_secs.to_string())
            .set("offline", options.offline.to_string())
            .set("fall_through", options.fall_through.to_string())
            .set(
                "upstream",
                format!(
                    "{{ url = \"{url}\", read_timeout_ms = {rt}, retry_initial_ms = 5, attempts = 2 }}"
                ),
            )
            .set(
                "checksum_db",
                format!(
                    "{{ key = \"{key}\", url = \"{url}/sumdb/{name}\", tile_height = {th}, \
                     read_timeout_ms = {rt}, attempts = 2 }}",
                    key = db.verifier_key(),
                    name = db.name(),
                    th = db.tile_height(),
                ),
            )
    }

    fn new(name: &str, kind: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            settings: Vec::new(),
        }
    }

    /// `key = value`, `value` written as given (TOML).
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.settings.push((key.to_owned(), value.into()));
        self
    }

    /// `include = [patterns]`.
    pub fn include(self, patterns: &[&str]) -> Self {
        self.set("include", strings(patterns))
    }

    /// `anonymous_read = true`.
    pub fn anonymous_read(self) -> Self {
        self.set("anonymous_read", "true")
    }

    /// `allow_shadowing = true`.
    pub fn allow_shadowing(self) -> Self {
        self.set("allow_shadowing", "true")
    }
}

/// One `[[tokens]]` entry: its name, its secret (written as its SHA-256) and its permissions
/// per repository name or pattern.
#[derive(Debug, Clone)]
pub struct Token {
    name: String,
    secret: String,
    permissions: Vec<(String, Vec<&'static str>)>,
}

impl Token {
    /// A token with no permissions yet.
    pub fn new(name: &str, secret: &str) -> Self {
        Self {
            name: name.to_owned(),
            secret: secret.to_owned(),
            permissions: Vec::new(),
        }
    }

    /// Grants `permissions` on `repos` (a name, or `*`).
    pub fn grant(mut self, repos: &str, permissions: &[&'static str]) -> Self {
        self.permissions
            .push((repos.to_owned(), permissions.to_vec()));
        self
    }
}

/// A registry configuration; [`RegistryToml::text`] writes it.
#[derive(Debug, Clone, Default)]
pub struct RegistryToml {
    /// `server.max_upload_bytes`; the registry's default when `None`.
    pub max_upload_bytes: Option<u64>,
    /// The `events` inline table (`{ kind = "redis", … }`); in-process events when `None`.
    pub events: Option<String>,
    /// The repositories, in order.
    pub repositories: Vec<Repo>,
    /// The tokens, in order.
    pub tokens: Vec<Token>,
}

impl RegistryToml {
    /// No repositories, no tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// The local layout (see the module header), with `options`.
    pub fn local(options: &Options) -> Self {
        Self::new()
            .max_upload_bytes(options.max_upload_bytes)
            .repo(Repo::local(PRIVATE))
            .repo(Repo::local(TEAM).include(&["example.com/team"]))
            .repo(Repo::local(PUBLIC).anonymous_read())
            .token(Token::new("ci", CI_TOKEN).grant("*", &["read", "deploy"]))
            .token(Token::new("reader", READ_TOKEN).grant("*", &["read"]))
            .token(Token::new("admin", ADMIN_TOKEN).grant("*", &["admin"]))
    }

    /// The claimed layout (see the module header).
    pub fn claimed() -> Self {
        Self::new()
            .repo(Repo::local(PRIVATE).include(&["example.com"]))
            .repo(Repo::local(OPEN).anonymous_read())
            .token(Token::new("ci", CI_TOKEN).grant("*", &["read", "deploy"]))
            .token(Token::new("reader", READ_TOKEN).grant("*", &["read"]))
    }

    /// The remote layout (see the module header) over the fixture `upstream` and `db`.
    pub fn remote(upstream: &FixtureUpstream, db: &TestSumDb, options: &RemoteOptions) -> Self {
        // `private` takes public paths on purpose (dependency-confusion cases); `shadowing.rs`
        // removes its `allow_shadowing = true` line to test the default policy.
        let deploy: &[&str] = &["read", "deploy"];
        Self::new()
            .repo(Repo::local("private").allow_shadowing())
            .repo(Repo::local("corp").include(&["corp.example.com"]))
            .repo(Repo::fixture_remote("gocache", upstream, db, options))
            .repo(Repo::virtual_of("go", &["private", "corp", "gocache"]).anonymous_read())
            .token(
                Token::new("ci", CI_TOKEN)
                    .grant("private", deploy)
                    .grant("corp", deploy)
                    .grant("gocache", deploy)
                    .grant("go", &["read"]),
            )
    }

    /// Sets `server.max_upload_bytes`.
    pub fn max_upload_bytes(mut self, bytes: u64) -> Self {
        self.max_upload_bytes = Some(bytes);
        self
    }

    /// Sets the `events` inline table.
    pub fn events(mut self, table: impl Into<String>) -> Self {
        self.events = Some(table.into());
        self
    }

    /// Adds a repository.
    pub fn repo(mut self, repo: Repo) -> Self {
        self.repositories.push(repo);
        self
    }

    /// Adds a token.
    pub fn token(mut self, token: Token) -> Self {
        self.tokens.push(token);
        self
    }

    /// The configuration as TOML: fs storage under `data`, HTTP on `http`, gRPC on a
    /// kernel-chosen port, uploads spooled to `spool`.
    pub fn text(&self, data: &Path, spool: &Path, http: SocketAddr) -> String {
        let mut out = format!(
            "storage = {{ kind = \"fs\", root = {:?} }}\n",
            data.display().to_string()
        );
        if let Some(events) = &self.events {
            out += &format!("events = {events}\n");
        }
        out += &format!("\n[server]\nhttp = \"{http}\"\ngrpc = \"127.0.0.1:0\"\n");
        if let Some(max) = self.max_upload_bytes {
            out += &format!("max_upload_bytes = {max}\n");
        }
        out += &format!("spool_dir = {:?}\n", spool.display().to_string());
        for repo in &self.repositories {
            out += &format!(
                "\n[[repositories]]\nname = {:?}\nkind = {:?}\n",
                repo.name, repo.kind
            );
            for (key, value) in &repo.settings {
                out += &format!("{key} = {value}\n");
            }
        }
        for token in &self.tokens {
            let permissions: Vec<String> = token
                .permissions
                .iter()
                .map(|(repos, granted)| format!("{} = {}", bare_key(repos), strings(granted)))
                .collect();
            out += &format!(
                "\n[[tokens]]\nname = {:?}\nsha256 = \"{}\"\npermissions = {{ {} }}\n",
                token.name,
                hash_token(&token.secret),
                permissions.join(", ")
            );
        }
        out
    }
}

/// A TOML array of strings.
fn strings(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// `key` bare where TOML allows it (`go`), quoted otherwise (`"*"`).
fn bare_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}
