//! A `virtual` repository: an ordered list of local and remote members behind one GOPROXY URL.
//!
//! - The members that may serve a module are those whose member patterns and own
//!   include/exclude patterns accept it, in configuration order.
//! - **Dependency-confusion protection**: when any *local* member claims the module path —
//!   its own `include` patterns or its member `include` patterns are non-empty and match the
//!   path, or it holds any version of the module (even a deleted one) — remote members are
//!   never asked for that module. A public module published under a private name can then
//!   never shadow or be mixed into the private one.
//! - **Shadowing policy** (see [`VirtualRepository::shadowed_remotes`]): because holding a
//!   version claims a path, publishing a public module's path to a local member would hide
//!   every public version of it. The registry refuses such a publish unless the local
//!   repository claims the path by an `include` pattern or sets `allow_shadowing`.
//! - `list` is the deduplicated, semver-sorted merge of the eligible members' lists.
//! - `@latest` follows the go command over the merged list (release over pre-release,
//!   `+incompatible` rule, retractions from the chosen version's go.mod); with no tagged
//!   version, the first member's own `@latest` answer.
//! - `.info`/`.mod`/`.zip` and queries come from the first member that has them.

use strata_core::gomod::GoMod;
use strata_core::latest::{self, VersionFacts};
use strata_core::path::ModulePath;
use strata_core::protocol::ErrorKind;
use strata_core::version::Version;

use super::{Artifact, Freshness, InfoDoc, LocalRepository, RemoteRepository};
use crate::config::{MemberConfig, RepositoryConfig};
use crate::error::RegistryError;
use crate::keys::RepoName;
use crate::storage::{ByteRange, read_body};

/// Largest go.mod read for retractions.
const MAX_GO_MOD: usize = 16 << 20;

/// A member's repository.
#[derive(Debug, Clone)]
pub enum MemberRepo {
    /// A local member.
    Local(LocalRepository),
    /// A remote member.
    Remote(RemoteRepository),
}

/// One member: its virtual-level patterns, its own configuration and the repository.
#[derive(Debug, Clone)]
pub struct Member {
    /// The member entry of the virtual repository.
    pub member: MemberConfig,
    /// The member repository's configuration.
    pub config: RepositoryConfig,
    /// The repository.
    pub repo: MemberRepo,
}

/// A virtual repository.
#[derive(Debug, Clone)]
pub struct VirtualRepository {
    name: RepoName,
    members: Vec<Member>,
}

impl VirtualRepository {
    /// The virtual repository `name` over `members` (in order).
    pub fn new(name: RepoName, members: Vec<Member>) -> Self {
        Self { name, members }
    }

    /// The repository's name.
    pub fn name(&self) -> &RepoName {
        &self.name
    }

    /// The remote members (for the checksum-database proxy).
    pub fn remote_members(&self) -> Vec<&RemoteRepository> {
        self.members
            .iter()
            .filter_map(|m| match &m.repo {
                MemberRepo::Remote(r) => Some(r),
                MemberRepo::Local(_) => None,
            })
            .collect()
    }

    /// The members allowed to serve `module`, after dependency-confusion protection.
    pub async fn eligible(&self, module: &ModulePath) -> Result<Vec<&Member>, RegistryError> {
        let path = module.as_str();
        let accepting: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| m.member.accepts(path) && m.config.accepts(path))
            .collect();
        let mut claimed = false;
        for m in &accepting {
            let MemberRepo::Local(local) = &m.repo else {
                continue;
            };
            let (include, _) = m.config.patterns();
            if !include.is_empty() || !m.member.include.is_empty() {
                claimed = true;
                break;
            }
            if !local.load_index(module).await?.versions.is_empty() {
                claimed = true;
                break;
            }
        }
        Ok(accepting
            .into_iter()
            .filter(|m| !claimed || matches!(m.repo, MemberRepo::Local(_)))
            .collect())
    }

    /// The remote members that serve `module` now and would be hidden from this virtual
    /// repository if local member `local` held a version of it (the shadowing policy).
    ///
    /// Empty when `local` is not a member asked for `module`, or when a local member's
    /// `include` patterns already claim the path (the remote members are then never asked,
    /// whatever is published). Otherwise each remote member whose patterns accept the path is
    /// asked for its `list` and, if that is empty, its `@latest` (stored answers within their
    /// TTL, else its upstream); one that knows any version serves the module. An upstream
    /// failure is returned as an error: whether the path is public is then unknown.
    pub async fn shadowed_remotes(
        &self,
        local: &RepoName,
        module: &ModulePath,
    ) -> Result<Vec<RepoName>, RegistryError> {
        let path = module.as_str();
        let accepting: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| m.member.accepts(path) && m.config.accepts(path))
            .collect();
        let is_target = |m: &&Member| matches!(&m.repo, MemberRepo::Local(l) if l.name() == local);
        if !accepting.iter().any(is_target) {
            return Ok(Vec::new());
        }
        let claimed_by_pattern = accepting.iter().any(|m| {
            matches!(m.repo, MemberRepo::Local(_))
                && (!m.config.patterns().0.is_empty() || !m.member.include.is_empty())
        });
        if claimed_by_pattern {
            return Ok(Vec::new());
        }
        let mut serving = Vec::new();
        for m in accepting {
            let MemberRepo::Remote(remote) = &m.repo else {
                continue;
            };
            if serves(remote, module).await? {
                serving.push(remote.name().clone());
            }
        }
        Ok(serving)
    }

    /// The merged `@v/list`.
    pub async fn list(
        &self,
        module: &ModulePath,
    ) -> Result<(Vec<String>, Freshness), RegistryError> {
        let members = self.eligible(module).await?;
        let mut versions = Vec::new();
        let mut freshness = Freshness::Fresh;
        let mut found = false;
        let mut failure: Option<RegistryError> = None;
        for m in &members {
            match m.repo.list(module).await {
                Ok((list, f)) => {
                    found = true;
                    versions.extend(list);
                    if f == Freshness::Stale {
                        freshness = Freshness::Stale;
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    // Others may still answer; the merged answer is then incomplete.
                    freshness = Freshness::Stale;
                    failure.get_or_insert(e);
                }
            }
        }
        if !found {
            return Err(failure.unwrap_or_else(|| self.not_found(module, None)));
        }
        versions.sort_by(|a, b| strata_core::semver::compare(a, b));
        versions.dedup();
        Ok((versions, freshness))
    }

    /// `@latest` across members.
    pub async fn latest(&self, module: &ModulePath) -> Result<(InfoDoc, Freshness), RegistryError> {
        let (versions, freshness) = match self.list(module).await {
            Ok(list) => list,
            Err(e) if e.kind() == ErrorKind::NotFound => (Vec::new(), Freshness::Fresh),
            Err(e) => return Err(e),
        };
        let no_incompatible_info = Facts {
            retractions: None,
            without_go_mod: None,
        };
        if let Some(newest) = latest::latest_ignoring_retractions(&versions, &no_incompatible_info)
        {
            let newest_v =
                Version::new(&newest).map_err(|e| RegistryError::Internal(e.to_string()))?;
            let retractions = match self.go_mod_bytes(module, &newest_v).await {
                Ok(bytes) => GoMod::parse_lax(&bytes).ok(),
                Err(_) => None,
            };
            // The +incompatible rule needs to know whether the highest compatible version
            // has a go.mod of its own.
            let without_go_mod = match highest_compatible(&versions) {
                Some(v) => match self.go_mod_bytes(module, &v).await {
                    Ok(bytes) if GoMod::is_synthesized(module.as_str(), &bytes) => {
                        Some(v.to_string())
                    }
                    _ => None,
                },
                None => None,
            };
            let facts = Facts {
                retractions: retractions.as_ref(),
                without_go_mod,
            };
            if let Some(chosen) = latest::select_latest(&versions, &facts) {
                let v =
                    Version::new(&chosen).map_err(|e| RegistryError::Internal(e.to_string()))?;
                let info = self.info(module, &v).await?;
                return Ok((info, freshness));
            }
        }
        // No tagged version: the first member that answers `@latest` itself.
        let mut failure = None;
        for m in self.eligible(module).await? {
            match m.repo.latest(module).await {
                Ok(answer) => return Ok(answer),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| self.not_found(module, None)))
    }

    /// `.info` from the first member that has the version.
    pub async fn info(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<InfoDoc, RegistryError> {
        let mut failure = None;
        for m in self.eligible(module).await? {
            match m.repo.info(module, version).await {
                Ok(info) => return Ok(info),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| self.not_found(module, Some(version.as_str()))))
    }

    /// `.mod` or `.zip` (`zip` set) from the first member that has the version.
    pub async fn artifact(
        &self,
        module: &ModulePath,
        version: &Version,
        zip: bool,
        range: Option<ByteRange>,
    ) -> Result<Artifact, RegistryError> {
        let mut failure = None;
        for m in self.eligible(module).await? {
            let answer = if zip {
                m.repo.zip(module, version, range).await
            } else {
                m.repo.go_mod(module, version).await
            };
            match answer {
                Ok(artifact) => return Ok(artifact),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| self.not_found(module, Some(version.as_str()))))
    }

    /// A non-canonical query, answered by the first remote member that resolves it.
    pub async fn query(
        &self,
        module: &ModulePath,
        query: &str,
    ) -> Result<(InfoDoc, Freshness), RegistryError> {
        let mut failure = None;
        for m in self.eligible(module).await? {
            let MemberRepo::Remote(remote) = &m.repo else {
                continue;
            };
            match remote.query(module, query).await {
                Ok(answer) => return Ok(answer),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| self.not_found(module, Some(query))))
    }

    async fn go_mod_bytes(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<bytes::Bytes, RegistryError> {
        let artifact = self.artifact(module, version, false, None).await?;
        read_body(artifact.object.body, MAX_GO_MOD)
            .await
            .map_err(|e| RegistryError::io("reading a go.mod", e))
    }

    fn not_found(&self, module: &ModulePath, version: Option<&str>) -> RegistryError {
        let what = match version {
            Some(v) => format!("{module}@{v}"),
            None => module.to_string(),
        };
        RegistryError::NotFound(format!(
            "{what} (in no member of virtual repository {:?} that may serve it)",
            self.name.as_str()
        ))
    }
}

impl MemberRepo {
    async fn list(&self, module: &ModulePath) -> Result<(Vec<String>, Freshness), RegistryError> {
        match self {
            MemberRepo::Local(r) => Ok((r.list(module).await?, Freshness::Fresh)),
            MemberRepo::Remote(r) => r.list(module).await,
        }
    }

    async fn latest(&self, module: &ModulePath) -> Result<(InfoDoc, Freshness), RegistryError> {
        match self {
            MemberRepo::Local(r) => Ok((r.latest(module).await?, Freshness::Fresh)),
            MemberRepo::Remote(r) => r.latest(module).await,
        }
    }

    async fn info(&self, module: &ModulePath, version: &Version) -> Result<InfoDoc, RegistryError> {
        match self {
            MemberRepo::Local(r) => r.info(module, version).await,
            MemberRepo::Remote(r) => r.info(module, version).await,
        }
    }

    async fn go_mod(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Artifact, RegistryError> {
        match self {
            MemberRepo::Local(r) => r.go_mod(module, version).await,
            MemberRepo::Remote(r) => r.go_mod(module, version).await,
        }
    }

    async fn zip(
        &self,
        module: &ModulePath,
        version: &Version,
        range: Option<ByteRange>,
    ) -> Result<Artifact, RegistryError> {
        match self {
            MemberRepo::Local(r) => r.zip(module, version, range).await,
            MemberRepo::Remote(r) => r.zip(module, version, range).await,
        }
    }
}

/// Whether `remote` knows any version of `module`: a non-empty list, or an `@latest` (a
/// module with pseudo-versions only).
async fn serves(remote: &RemoteRepository, module: &ModulePath) -> Result<bool, RegistryError> {
    match remote.list(module).await {
        Ok((versions, _)) if !versions.is_empty() => return Ok(true),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    match remote.latest(module).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The highest tagged version that is not `+incompatible`.
fn highest_compatible(versions: &[String]) -> Option<Version> {
    versions
        .iter()
        .filter(|v| !v.ends_with("+incompatible"))
        .filter(|v| !strata_core::pseudo::is_pseudo_version(v))
        .max_by(|a, b| strata_core::semver::compare(a, b))
        .and_then(|v| Version::new(v).ok())
}

struct Facts<'a> {
    retractions: Option<&'a GoMod>,
    /// The one version known to have only a synthesized go.mod.
    without_go_mod: Option<String>,
}

impl VersionFacts for Facts<'_> {
    fn is_retracted(&self, version: &str) -> bool {
        self.retractions.is_some_and(|m| m.retracts(version))
    }

    fn has_go_mod(&self, version: &str) -> bool {
        self.without_go_mod.as_deref() != Some(version)
    }
}
