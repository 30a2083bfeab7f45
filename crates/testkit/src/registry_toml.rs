//! The one writer of test registry configurations: [`RegistryToml`] holds the repositories,
//! tokens and server settings a test wants and writes them as the TOML the central registry
//! reads — fs storage (or a storage table the test gives), both listeners on loopback, uploads
//! spooled to a directory of the test's. Every crate whose tests start a registry (in-process or
//! as a process) builds its configuration here instead of writing the TOML by hand.
//!
//! Invariants:
//!
//! * Every setting is written as one `key = value` line, in the order it was added, with bare
//!   keys where TOML allows them: tests that edit the text replace those lines verbatim.
//! * A token is written as `sha256 = "<hex(sha256(secret))>"`, the form the registry's
//!   `auth::hash_token` gives, so the secret is what the test sends as its bearer token.
//! * Only strings: no registry types, so this crate does not depend on the registry.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::sumdb::TestSumDb;

/// `127.0.0.1:0`: a listener on a kernel-chosen loopback port.
pub const ANY_LOOPBACK_PORT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

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

    /// A remote repository; its `upstream` and `checksum_db` are set with [`Repo::upstream`]
    /// and [`Repo::checksum_db`], or with [`Repo::set`].
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

    /// `upstream = { url = "<url>", read_timeout_ms = …, retry_initial_ms = 5, attempts = … }`:
    /// a GOPROXY upstream (a [`crate::FixtureUpstream`]'s URL) with fast retries.
    pub fn upstream(self, url: &str, read_timeout_ms: u64, attempts: u32) -> Self {
        self.set(
            "upstream",
            format!(
                "{{ url = \"{url}\", read_timeout_ms = {read_timeout_ms}, retry_initial_ms = 5, \
                 attempts = {attempts} }}"
            ),
        )
    }

    /// `checksum_db = { key = …, url = "<upstream>/sumdb/<name>", tile_height = …,
    /// read_timeout_ms = …, attempts = 2 }`: the test database `db`, reached where the fixture
    /// upstream at `upstream` serves it.
    pub fn checksum_db(self, upstream: &str, db: &TestSumDb, read_timeout_ms: u64) -> Self {
        self.set(
            "checksum_db",
            format!(
                "{{ key = \"{key}\", url = \"{upstream}/sumdb/{name}\", tile_height = {th}, \
                 read_timeout_ms = {read_timeout_ms}, attempts = 2 }}",
                key = db.verifier_key(),
                name = db.name(),
                th = db.tile_height(),
            ),
        )
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
    max_upload_bytes: Option<u64>,
    events: Option<String>,
    server: Vec<(String, String)>,
    repositories: Vec<Repo>,
    tokens: Vec<Token>,
}

impl RegistryToml {
    /// No repositories, no tokens, the registry's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `server.max_upload_bytes`.
    pub fn max_upload_bytes(mut self, bytes: u64) -> Self {
        self.max_upload_bytes = Some(bytes);
        self
    }

    /// Sets the `events` inline table (`{ kind = "redis", … }`); in-process events without it.
    pub fn events(mut self, table: impl Into<String>) -> Self {
        self.events = Some(table.into());
        self
    }

    /// Adds `key = value` to `[server]`, `value` written as given (TOML), after the listeners,
    /// `max_upload_bytes` and `spool_dir`.
    pub fn server(mut self, key: &str, value: impl Into<String>) -> Self {
        self.server.push((key.to_owned(), value.into()));
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
    /// kernel-chosen loopback port, uploads spooled to `spool`.
    pub fn text(&self, data: &Path, spool: &Path, http: SocketAddr) -> String {
        let storage = format!(
            "{{ kind = \"fs\", root = {:?} }}",
            data.display().to_string()
        );
        self.text_with_storage(&storage, spool, http)
    }

    /// [`RegistryToml::text`] with the `storage` inline table given (e.g. S3) instead of fs.
    pub fn text_with_storage(&self, storage: &str, spool: &Path, http: SocketAddr) -> String {
        let mut out = format!("storage = {storage}\n");
        if let Some(events) = &self.events {
            out += &format!("events = {events}\n");
        }
        out += &format!("\n[server]\nhttp = \"{http}\"\ngrpc = \"127.0.0.1:0\"\n");
        if let Some(max) = self.max_upload_bytes {
            out += &format!("max_upload_bytes = {max}\n");
        }
        out += &format!("spool_dir = {:?}\n", spool.display().to_string());
        for (key, value) in &self.server {
            out += &format!("{key} = {value}\n");
        }
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
                token_sha256(&token.secret),
                permissions.join(", ")
            );
        }
        out
    }
}

/// `hex(sha256(token))`: what a `[[tokens]]` entry stores, as the registry's
/// `auth::hash_token` computes it.
pub fn token_sha256(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// A TOML array of strings.
pub fn strings(items: &[&str]) -> String {
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
