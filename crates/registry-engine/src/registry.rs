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

use crate::audit;
use crate::auth::{Auth, Permission, Principal};
use crate::config::{RegistryConfig, RepositoryConfig};
use crate::error::RegistryError;
use crate::index::VersionEntry;
use crate::keys::RepoName;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::repository::{
    Artifact, Freshness, InfoDoc, LocalRepository, Member, MemberRepo, Published, RemoteRepository,
    VirtualRepository,
};
use crate::storage::{ByteRange, ObjectStore};
use crate::sumdb::ChecksumDb;
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
    /// A verified caching proxy of an upstream.
    Remote(RemoteRepository),
    /// An ordered aggregation of local and remote members.
    Virtual(VirtualRepository),
}

/// The answer to a GOPROXY request.
#[derive(Debug)]
pub enum Answer {
    /// `@v/list`: versions in semver order.
    List(Vec<String>, Freshness),
    /// `.info`, `@latest` or a query.
    Info(InfoDoc, Freshness),
    /// `.mod` or `.zip`.
    Artifact(Artifact),
}

pub use crate::change::{Change, ChangeKind, ChangeListener, NoListener};

/// The registry.
#[derive(Debug)]
pub struct Registry {
    listener: Arc<dyn ChangeListener>,
    repos: Vec<RepoEntry>,
    auth: Auth,
    store: Arc<dyn ObjectStore>,
    spool_dir: PathBuf,
    max_upload: u64,
    sumdbs: Vec<Arc<ChecksumDb>>,
    ledger: Option<Arc<Ledger>>,
}

impl Registry {
    /// Builds the registry from a validated configuration and an opened store.
    pub fn new(
        config: &RegistryConfig,
        store: Arc<dyn ObjectStore>,
        listener: Arc<dyn ChangeListener>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RegistryError> {
        let names: Vec<RepoName> = config
            .repositories
            .iter()
            .map(|r| r.name().clone())
            .collect();
        let auth = Auth::new(&config.tokens, &names).map_err(RegistryError::Internal)?;
        let spool_dir = config
            .server
            .spool_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let ledger = match &config.ledger {
            None => None,
            Some(l) => {
                let key = l.signer_key().ok_or_else(|| {
                    RegistryError::Internal(format!(
                        "ledger {:?}: the signer key was not read with the configuration",
                        l.name
                    ))
                })?;
                Some(Arc::new(Ledger::new(store.clone(), key)?))
            }
        };
        // One checksum-database client per database (by key), shared by the remotes using it.
        let mut sumdbs: Vec<(String, Arc<ChecksumDb>)> = Vec::new();
        let mut built: Vec<(RepositoryConfig, Option<MemberRepo>)> = Vec::new();
        for c in &config.repositories {
            let member = match c {
                RepositoryConfig::Local(l) => Some(MemberRepo::Local(
                    LocalRepository::new(l.name.clone(), store.clone()).with_ledger(ledger.clone()),
                )),
                RepositoryConfig::Remote(r) => {
                    let key = r.checksum_db.key.trim().to_owned();
                    let db = match sumdbs.iter().find(|(k, _)| *k == key) {
                        Some((_, db)) => db.clone(),
                        None => {
                            let db = Arc::new(
                                ChecksumDb::new(&r.checksum_db, store.clone()).map_err(|e| {
                                    RegistryError::Internal(format!(
                                        "repository {:?}: checksum_db: {e}",
                                        r.name.as_str()
                                    ))
                                })?,
                            );
                            sumdbs.push((key, db.clone()));
                            db
                        }
                    };
                    Some(MemberRepo::Remote(RemoteRepository::new(
                        r,
                        store.clone(),
                        db,
                        ledger.clone(),
                        spool_dir.clone(),
                        listener.clone(),
                        metrics.clone(),
                    )?))
                }
                RepositoryConfig::Virtual(_) => None,
            };
            built.push((c.clone(), member));
        }
        let mut repos = Vec::with_capacity(built.len());
        for (c, member) in &built {
            let repo = match (c, member) {
                (_, Some(MemberRepo::Local(l))) => Repository::Local(l.clone()),
                (_, Some(MemberRepo::Remote(r))) => Repository::Remote(r.clone()),
                (RepositoryConfig::Virtual(v), None) => {
                    let mut members = Vec::with_capacity(v.members.len());
                    for m in &v.members {
                        let Some((config, Some(repo))) =
                            built.iter().find(|(c, _)| c.name() == &m.repository)
                        else {
                            return Err(RegistryError::Internal(format!(
                                "virtual repository {:?}: member {:?} is not a local or remote repository",
                                v.name.as_str(),
                                m.repository.as_str()
                            )));
                        };
                        members.push(Member {
                            member: m.clone(),
                            config: config.clone(),
                            repo: repo.clone(),
                        });
                    }
                    Repository::Virtual(VirtualRepository::new(v.name.clone(), members))
                }
                _ => {
                    return Err(RegistryError::Internal(format!(
                        "repository {:?} could not be built",
                        c.name().as_str()
                    )));
                }
            };
            repos.push(RepoEntry {
                config: c.clone(),
                repo,
            });
        }
        Ok(Self {
            listener,
            repos,
            auth,
            store,
            spool_dir,
            max_upload: config.server.max_upload_bytes,
            sumdbs: sumdbs.into_iter().map(|(_, db)| db).collect(),
            ledger,
        })
    }

    /// The registry's own checksum database, when `[ledger]` is configured.
    pub fn ledger(&self) -> Option<&Arc<Ledger>> {
        self.ledger.as_ref()
    }

    /// The checksum database called `name` that repository `repo` verifies with (for the
    /// sumdb proxy): its own for a remote repository, its remote members' for a virtual one.
    pub fn sumdb(
        &self,
        principal: &Principal,
        repo: &str,
        name: &str,
    ) -> Result<Arc<ChecksumDb>, RegistryError> {
        let entry = self.authorized(principal, repo, Permission::Read)?;
        let remotes: Vec<&RemoteRepository> = match &entry.repo {
            Repository::Local(_) => Vec::new(),
            Repository::Remote(r) => vec![r],
            Repository::Virtual(v) => v.remote_members(),
        };
        let configured: Vec<String> = remotes.iter().map(|r| r.sumdb_name().to_owned()).collect();
        self.sumdbs
            .iter()
            .find(|db| db.name() == name && configured.iter().any(|c| c == name))
            .cloned()
            .ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "repository {repo:?} does not proxy checksum database {name:?}"
                ))
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

    /// Where change events go (maintenance reports through it too).
    pub(crate) fn listener(&self) -> &Arc<dyn ChangeListener> {
        &self.listener
    }

    /// Where uploads and scrubs spool.
    pub(crate) fn spool_dir(&self) -> &std::path::Path {
        &self.spool_dir
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
        match &entry.repo {
            Repository::Local(repo) => read_local(repo, request, range).await,
            Repository::Remote(repo) => read_remote(repo, request, range).await,
            Repository::Virtual(repo) => read_virtual(repo, request, range).await,
        }
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
        match &entry.repo {
            Repository::Local(repo) => repo.stat(module, version).await,
            Repository::Remote(repo) => repo.stat(module, version).await,
            Repository::Virtual(repo) => {
                for m in repo.eligible(module).await? {
                    let found = match &m.repo {
                        MemberRepo::Local(r) => r.stat(module, version).await,
                        MemberRepo::Remote(r) => r.stat(module, version).await,
                    };
                    match found {
                        Err(e) if e.kind() == strata_core::protocol::ErrorKind::NotFound => {}
                        other => return other,
                    }
                }
                Err(RegistryError::NotFound(format!("{module}@{version}")))
            }
        }
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
        let expected_text = expected
            .as_ref()
            .map(|e| (e.path.clone(), e.version.clone()));
        let result = async {
            let entry = self.authorized(principal, name, Permission::Deploy)?;
            let repo = local_only(entry, "publish to")?;
            let spooled = upload::spool(body, &self.spool_dir, self.max_upload).await?;
            let validated = upload::validate(spooled, expected).await?;
            if !entry.config.accepts(validated.module.as_str()) {
                return Err(RegistryError::Forbidden(format!(
                    "repository {name:?} does not accept module {} (see its include/exclude patterns)",
                    validated.module
                )));
            }
            self.check_shadowing(entry, &validated.module).await?;
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
        .await;
        let (module, version) = match &result {
            Ok((published, change)) => (
                Some(change.module.to_string()),
                Some(published.entry.version.clone()),
            ),
            Err(_) => expected_text.map_or((None, None), |(m, v)| (Some(m), Some(v))),
        };
        audit::write(
            "publish",
            principal,
            audit::Subject {
                repository: name,
                module: module.as_deref(),
                version: version.as_deref(),
            },
            &result,
        );
        result
    }

    /// Deletes a version from repository `name`.
    pub async fn delete(
        &self,
        principal: &Principal,
        name: &str,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Change, RegistryError> {
        let result = async {
            let entry = self.authorized(principal, name, Permission::Delete)?;
            let repo = local_only(entry, "delete from")?;
            let deleted = repo.delete(module, version).await?;
            let change = Change {
                repo: repo.name().clone(),
                module: module.clone(),
                entry: deleted,
            };
            self.listener.changed(&change, ChangeKind::Deleted).await;
            Ok(change)
        }
        .await;
        audit::write(
            "delete",
            principal,
            audit::Subject {
                repository: name,
                module: Some(module.as_str()),
                version: Some(version.as_str()),
            },
            &result,
        );
        result
    }
}

impl Registry {
    /// The shadowing policy: refuses to publish `module` to the local repository of `entry`
    /// when a virtual repository with it as a member would then hide the public versions its
    /// remote members serve, unless the local repository sets `allow_shadowing` (a path its
    /// `include` patterns name is claimed on purpose and passes, see
    /// [`VirtualRepository::shadowed_remotes`]). When a remote member cannot be asked, the
    /// publish is refused too: whether the path is public is then unknown.
    async fn check_shadowing(
        &self,
        entry: &RepoEntry,
        module: &ModulePath,
    ) -> Result<(), RegistryError> {
        let RepositoryConfig::Local(local) = &entry.config else {
            return Ok(());
        };
        if local.allow_shadowing {
            return Ok(());
        }
        let name = local.name.as_str();
        let remedy = format!(
            "to publish it anyway, set allow_shadowing = true on repository {name:?} or name \
             the path in its include patterns"
        );
        for other in &self.repos {
            let Repository::Virtual(virtual_repo) = &other.repo else {
                continue;
            };
            if !other.config.accepts(module.as_str()) {
                continue;
            }
            let vname = virtual_repo.name().as_str();
            let remotes = virtual_repo
                .shadowed_remotes(&local.name, module)
                .await
                .map_err(|e| {
                    RegistryError::Forbidden(format!(
                        "cannot publish {module} to repository {name:?}: could not check whether \
                         the remote members of virtual repository {vname:?} serve it ({e}); a \
                         publish that may hide a public module is refused (retry when the \
                         upstream answers; {remedy})"
                    ))
                })?;
            if !remotes.is_empty() {
                let remotes: Vec<String> = remotes
                    .iter()
                    .map(|r| format!("{:?}", r.as_str()))
                    .collect();
                let remotes = remotes.join(", ");
                tracing::warn!(
                    module = %module,
                    repository = name,
                    virtual_repository = vname,
                    remotes = %remotes,
                    "refused a publish that would shadow a public module"
                );
                return Err(RegistryError::Forbidden(format!(
                    "publishing {module} to repository {name:?} would shadow a public module: \
                     virtual repository {vname:?} serves it from remote member {remotes} and \
                     would hide every public version once {name:?} holds one ({remedy})"
                )));
            }
        }
        Ok(())
    }
}

/// The local repository of `entry`, or a clear refusal for other kinds.
fn local_only<'a>(
    entry: &'a RepoEntry,
    action: &str,
) -> Result<&'a LocalRepository, RegistryError> {
    match &entry.repo {
        Repository::Local(repo) => Ok(repo),
        _ => Err(RegistryError::Unsupported(format!(
            "cannot {action} {} repository {:?}: only local repositories are written through the API",
            entry.config.kind(),
            entry.config.name().as_str()
        ))),
    }
}

async fn read_local(
    repo: &LocalRepository,
    request: &ProxyRequest,
    range: Option<ByteRange>,
) -> Result<Answer, RegistryError> {
    let fresh = Freshness::Fresh;
    Ok(match request {
        ProxyRequest::List(m) => Answer::List(repo.list(m).await?, fresh),
        ProxyRequest::Latest(m) => Answer::Info(repo.latest(m).await?, fresh),
        ProxyRequest::Info(m, v) => Answer::Info(repo.info(m, v).await?, fresh),
        ProxyRequest::Mod(m, v) => Answer::Artifact(repo.go_mod(m, v).await?),
        ProxyRequest::Zip(m, v) => Answer::Artifact(repo.zip(m, v, range).await?),
        ProxyRequest::Query(m, q) => {
            return Err(RegistryError::NotFound(format!(
                "{m}@{q}: a local repository resolves only canonical versions"
            )));
        }
    })
}

async fn read_remote(
    repo: &RemoteRepository,
    request: &ProxyRequest,
    range: Option<ByteRange>,
) -> Result<Answer, RegistryError> {
    Ok(match request {
        ProxyRequest::List(m) => {
            let (list, f) = repo.list(m).await?;
            Answer::List(list, f)
        }
        ProxyRequest::Latest(m) => {
            let (info, f) = repo.latest(m).await?;
            Answer::Info(info, f)
        }
        ProxyRequest::Query(m, q) => {
            let (info, f) = repo.query(m, q).await?;
            Answer::Info(info, f)
        }
        ProxyRequest::Info(m, v) => Answer::Info(repo.info(m, v).await?, Freshness::Fresh),
        ProxyRequest::Mod(m, v) => Answer::Artifact(repo.go_mod(m, v).await?),
        ProxyRequest::Zip(m, v) => Answer::Artifact(repo.zip(m, v, range).await?),
    })
}

async fn read_virtual(
    repo: &VirtualRepository,
    request: &ProxyRequest,
    range: Option<ByteRange>,
) -> Result<Answer, RegistryError> {
    Ok(match request {
        ProxyRequest::List(m) => {
            let (list, f) = repo.list(m).await?;
            Answer::List(list, f)
        }
        ProxyRequest::Latest(m) => {
            let (info, f) = repo.latest(m).await?;
            Answer::Info(info, f)
        }
        ProxyRequest::Query(m, q) => {
            let (info, f) = repo.query(m, q).await?;
            Answer::Info(info, f)
        }
        ProxyRequest::Info(m, v) => Answer::Info(repo.info(m, v).await?, Freshness::Fresh),
        ProxyRequest::Mod(m, v) => Answer::Artifact(repo.artifact(m, v, false, None).await?),
        ProxyRequest::Zip(m, v) => Answer::Artifact(repo.artifact(m, v, true, range).await?),
    })
}
