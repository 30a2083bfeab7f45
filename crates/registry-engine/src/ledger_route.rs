//! `/go/{repo}/sumdb/<ledger name>/…`: the registry's own checksum database ([`Ledger`]) as
//! every repository serves it, behind the repository's read permission.
//!
//! A `/lookup/` of a version the log lacks is recorded on demand from the repository's members
//! (in order, after dependency-confusion protection), then answered: a remote member verifies
//! it against its upstream checksum database (a `no_sum` module's zip is fetched and recorded
//! on first use), a local member records a version it holds (published before the ledger was
//! turned on). So `go get` works for modules the go command needs only the go.mod of, and for
//! versions cached before the ledger existed.

use bytes::Bytes;
use strata_core::path::ModulePath;
use strata_core::protocol::ErrorKind;
use strata_core::sumdb::SumDbRequest;
use strata_core::version::Version;

use crate::auth::{Permission, Principal};
use crate::error::RegistryError;
use crate::ledger::{Ledger, LedgerError};
use crate::registry::{Registry, Repository};
use crate::repository::MemberRepo;
use crate::sumdb::SumDbReply;

/// `Content-Type` of notes, lookups and `/supported` (as golang.org/x/mod's server sends).
const TEXT: &str = "text/plain; charset=UTF-8";
/// `Content-Type` of tiles.
const BINARY: &str = "application/octet-stream";
/// Tiles and lookups never change: a record is forever, and the tree head in a lookup stays a
/// valid (older) head of the same log.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `/latest` changes with every append.
const LATEST: &str = "public, max-age=5";
/// `/supported`.
const SUPPORTED: &str = "public, max-age=300";

impl Registry {
    /// Whether `name` is the registry's own checksum database.
    pub fn is_ledger(&self, name: &str) -> bool {
        self.ledger().is_some_and(|l| l.name() == name)
    }

    /// Answers `path` (after `/sumdb/<ledger name>`: `/supported`, `/latest`, `/lookup/…`,
    /// `/tile/…`) of the registry's checksum database for a reader of repository `repo`.
    pub async fn ledger_request(
        &self,
        principal: &Principal,
        repo: &str,
        path: &str,
    ) -> Result<SumDbReply, RegistryError> {
        let entry = self.authorized(principal, repo, Permission::Read)?;
        let ledger = self
            .ledger()
            .ok_or_else(|| RegistryError::NotFound("this registry has no ledger".into()))?;
        let request = SumDbRequest::parse(path).map_err(|reason| {
            RegistryError::Ledger(LedgerError::InvalidInput(format!(
                "{}{path}: {reason}",
                ledger.name()
            )))
        })?;
        let reply = |body: Bytes, content_type, cache_control: &str| SumDbReply {
            body,
            content_type,
            cache_control: cache_control.to_owned(),
        };
        match &request {
            SumDbRequest::Supported => Ok(reply(Bytes::new(), TEXT, SUPPORTED)),
            SumDbRequest::Latest => Ok(reply(ledger.latest().await?, TEXT, LATEST)),
            SumDbRequest::Tile(tile) => {
                let content_type = if tile.l == -1 { TEXT } else { BINARY };
                match ledger.tile(&tile.path()).await? {
                    Some(body) => Ok(reply(body, content_type, IMMUTABLE)),
                    None => Err(RegistryError::NotFound(format!(
                        "{}/{}: beyond the signed tree",
                        ledger.name(),
                        tile.path()
                    ))),
                }
            }
            SumDbRequest::Lookup { module, version } => {
                let key = format!("{}@{}", module.escaped(), version.escaped());
                if let Some(body) = ledger.lookup(&key).await? {
                    return Ok(reply(body, TEXT, IMMUTABLE));
                }
                if entry.config.accepts(module.as_str()) {
                    self.record_from_members(&entry.repo, ledger, module, version)
                        .await?;
                }
                match ledger.lookup(&key).await? {
                    Some(body) => Ok(reply(body, TEXT, IMMUTABLE)),
                    None => Err(RegistryError::NotFound(format!(
                        "{module}@{version}: not recorded in checksum database {} (repository \
                         {repo:?} does not have it)",
                        ledger.name()
                    ))),
                }
            }
        }
    }

    /// Records `module@version` from the first member of `repo` that has it (see the module
    /// comment). Not-found answers of members are passed over; other failures are returned
    /// when no member recorded it.
    async fn record_from_members(
        &self,
        repo: &Repository,
        ledger: &Ledger,
        module: &ModulePath,
        version: &Version,
    ) -> Result<(), RegistryError> {
        let members: Vec<MemberRepo> = match repo {
            Repository::Local(l) => vec![MemberRepo::Local(l.clone())],
            Repository::Remote(r) => vec![MemberRepo::Remote(r.clone())],
            Repository::Virtual(v) => v
                .eligible(module)
                .await?
                .into_iter()
                .map(|m| m.repo.clone())
                .collect(),
        };
        let mut failure = None;
        for member in members {
            let recorded = match member {
                MemberRepo::Local(local) => match local.stat(module, version).await {
                    Ok(entry) => match (entry.zip.and_then(|z| z.h1), entry.go_mod.h1) {
                        (Some(zip_h1), Some(mod_h1)) => ledger
                            .append(module, version, &zip_h1, &mod_h1)
                            .await
                            .map(|_| ())
                            .map_err(RegistryError::from),
                        _ => Err(RegistryError::NotFound(format!("{module}@{version}"))),
                    },
                    Err(e) => Err(e),
                },
                MemberRepo::Remote(remote) => remote.record_in_ledger(module, version).await,
            };
            match recorded {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => failure = Some(e),
            }
        }
        failure.map_or(Ok(()), Err)
    }
}
