//! The registry as its APIs see it: configured repositories behind authentication and the
//! repositories' module patterns. The HTTP and gRPC front ends both call this, so a rule is
//! enforced in one place whichever way a request comes in.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use strata_core::path::ModulePath;
use strata_core::protocol::ProxyRequest;
use strata_core::version::{ModuleVersion, Version};

use crate::auth::{Auth, Permission, Principal};
use crate::config::{RegistryConfig, RepositoryConfig};
use crate::error::RegistryError;
use crate::index::VersionEntry;
use crate::keys::RepoName;
use crate::repository::{Artifact, InfoDoc, LocalRepository, Published};
use crate::storage::{ByteRange, ObjectStore};
use crate::upload;

/// A configured repository.
#[derive(Debug)]
pub struct RepoEntry {
    /// Its configuration.
    pub config: RepositoryConfig,
    /// The repository.
    pub repo: Repository,
}

/// The kinds of repository.
#[derive(Debug)]
pub enum Repository {
    /// Hosted modules.
    Local(LocalRepository),
}

/// The answer to a GOPROXY request.
#[derive(Debug)]
pub enum Answer {
    /// `@v/list`: versions in semver order.
    List(Vec<String>),
    /// `.info` or `@latest`.
    Info(InfoDoc),
    /// `.mod` or `.zip`.
    Artifact(Artifact),
}

/// What happened in a write, for the caller to report (events, metrics).
#[derive(Debug, Clone)]
pub struct Change {
    /// The repository.
    pub repo: RepoName,
    /// The module.
    pub module: ModulePath,
    /// The version's index entry after the change.
    pub entry: VersionEntry,
}

/// What kind of change happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new version became available.
    Published,
    /// A version was deleted.
    Deleted,
}

/// Told about every change after it is stored, before the client gets its answer (so a change
/// event is durable by the time a publisher sees 201).
#[async_trait::async_trait]
pub trait ChangeListener: Send + Sync + std::fmt::Debug {
    /// Reports one change.
    async fn changed(&self, change: &Change, kind: ChangeKind);
}

/// A listener that does nothing (for tools and tests that need no events).
#[derive(Debug, Default)]
pub struct NoListener;

#[async_trait::async_trait]
impl ChangeListener for NoListener {
    async fn changed(&self, _: &Change, _: ChangeKind) {}
}

/// The registry.
#[derive(Debug)]
pub struct Registry {
    listener: Arc<dyn ChangeListener>,
    repos: Vec<RepoEntry>,
    auth: Auth,
    store: Arc<dyn ObjectStore>,
    spool_dir: PathBuf,
    max_upload: u64,
}

impl Registry {
    /// Builds the registry from a validated configuration and an opened store.
    pub fn new(
        config: &RegistryConfig,
        store: Arc<dyn ObjectStore>,
        listener: Arc<dyn ChangeListener>,
    ) -> Result<Self, RegistryError> {
        let names: Vec<RepoName> = config
            .repositories
            .iter()
            .map(|r| r.name().clone())
            .collect();
        let auth = Auth::new(&config.tokens, &names).map_err(RegistryError::Internal)?;
        let repos = config
            .repositories
            .iter()
            .map(|c| {
                let repo = match c {
                    RepositoryConfig::Local { name, .. } => {
                        Repository::Local(LocalRepository::new(name.clone(), store.clone()))
                    }
                };
                RepoEntry {
                    config: c.clone(),
                    repo,
                }
            })
            .collect();
        let spool_dir = config
            .server
            .spool_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        Ok(Self {
            listener,
            repos,
            auth,
            store,
            spool_dir,
            max_upload: config.server.max_upload_bytes,
        })
    }

    /// The object store (for readiness checks).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The largest accepted publish body, in bytes.
    pub fn max_upload(&self) -> u64 {
        self.max_upload
    }

    /// Every configured repository, in configuration order.
    pub fn repositories(&self) -> &[RepoEntry] {
        &self.repos
    }

    /// Identifies the caller from an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, RegistryError> {
        self.auth.authenticate(authorization)
    }

    /// The repository called `name`.
    pub fn repo(&self, name: &str) -> Result<&RepoEntry, RegistryError> {
        self.repos
            .iter()
            .find(|r| r.config.name().as_str() == name)
            .ok_or_else(|| RegistryError::NoSuchRepository(name.to_string()))
    }

    /// The repository `name` after checking that `principal` may do `permission` in it.
    pub fn authorized(
        &self,
        principal: &Principal,
        name: &str,
        permission: Permission,
    ) -> Result<&RepoEntry, RegistryError> {
        let entry = self.repo(name)?;
        self.auth.authorize(
            principal,
            entry.config.name(),
            permission,
            entry.config.anonymous_read(),
        )?;
        Ok(entry)
    }

    /// Answers a GOPROXY request for repository `name`. `range` applies to zips only.
    pub async fn read(
        &self,
        principal: &Principal,
        name: &str,
        request: &ProxyRequest,
        range: Option<ByteRange>,
    ) -> Result<Answer, RegistryError> {
        let entry = self.authorized(principal, name, Permission::Read)?;
        let module = request.module();
        if !entry.config.accepts(module.as_str()) {
            return Err(RegistryError::NotFound(format!(
                "{module}: not served by repository {name:?}"
            )));
        }
        let Repository::Local(repo) = &entry.repo;
        Ok(match request {
            ProxyRequest::List(m) => Answer::List(repo.list(m).await?),
            ProxyRequest::Latest(m) => Answer::Info(repo.latest(m).await?),
            ProxyRequest::Info(m, v) => Answer::Info(repo.info(m, v).await?),
            ProxyRequest::Mod(m, v) => Answer::Artifact(repo.go_mod(m, v).await?),
            ProxyRequest::Zip(m, v) => Answer::Artifact(repo.zip(m, v, range).await?),
            ProxyRequest::Query(m, q) => {
                return Err(RegistryError::NotFound(format!(
                    "{m}@{q}: a local repository resolves only canonical versions"
                )));
            }
        })
    }

    /// The index entry of an available version (gRPC `Stat`).
    pub async fn stat(
        &self,
        principal: &Principal,
        name: &str,
        module: &ModulePath,
        version: &Version,
    ) -> Result<VersionEntry, RegistryError> {
        let entry = self.authorized(principal, name, Permission::Read)?;
        if !entry.config.accepts(module.as_str()) {
            return Err(RegistryError::NotFound(format!(
                "{module}: not served by repository {name:?}"
            )));
        }
        let Repository::Local(repo) = &entry.repo;
        repo.stat(module, version).await
    }

    /// Publishes a module zip streamed in `body` to repository `name`. The module and version
    /// come from `expected` or from the zip's root prefix.
    pub async fn publish<S, E>(
        &self,
        principal: &Principal,
        name: &str,
        body: S,
        expected: Option<ModuleVersion>,
    ) -> Result<(Published, Change), RegistryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let entry = self.authorized(principal, name, Permission::Deploy)?;
        let Repository::Local(repo) = &entry.repo;
        let spooled = upload::spool(body, &self.spool_dir, self.max_upload).await?;
        let validated = upload::validate(spooled, expected).await?;
        if !entry.config.accepts(validated.module.as_str()) {
            return Err(RegistryError::Forbidden(format!(
                "repository {name:?} does not accept module {} (see its include/exclude patterns)",
                validated.module
            )));
        }
        let module = validated.module.clone();
        let published = repo.publish(validated).await?;
        let change = Change {
            repo: repo.name().clone(),
            module,
            entry: published.entry.clone(),
        };
        self.listener.changed(&change, ChangeKind::Published).await;
        Ok((published, change))
    }

    /// Deletes a version from repository `name`.
    pub async fn delete(
        &self,
        principal: &Principal,
        name: &str,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Change, RegistryError> {
        let entry = self.authorized(principal, name, Permission::Delete)?;
        let Repository::Local(repo) = &entry.repo;
        let deleted = repo.delete(module, version).await?;
        let change = Change {
            repo: repo.name().clone(),
            module: module.clone(),
            entry: deleted,
        };
        self.listener.changed(&change, ChangeKind::Deleted).await;
        Ok(change)
    }
}
