//! The registry's checksum-database service (protocol §6): [`ChecksumDb`] verifies module
//! hashes against a database such as sum.golang.org ([`ChecksumDb::lookup`]) and proxies the
//! database for go commands behind the registry ([`ChecksumDb::proxy`], the
//! `/sumdb/<name>/…` routes of §6.2).
//!
//! Verification is `strata_core::sumdb::Client`: every signed tree head must verify with the
//! configured key and be consistent with the latest one seen (a fork is a SECURITY ERROR), and
//! every record must be proven included. One client per database serves all lookups at once;
//! it runs on blocking threads because its I/O interface is synchronous (see `ops.rs`).
//!
//! Storage layout (built by `StoreOps::object_key` only; `<name>` is the key name, bytes outside
//! the key alphabet written `=XX`):
//!
//! ```text
//! sumdb/<name>/latest                        latest verified signed tree head (compare-and-swap)
//! sumdb/<name>/tile/<H>/<L>/<NNN>[.p/<W>]    authenticated hash tiles (immutable)
//! sumdb/<name>/tile/<H>/data/<NNN>[.p/<W>]   authenticated data tiles (immutable)
//! sumdb/<name>/lookup/<module>@<version>     verified lookup responses (escaped, immutable)
//! ```

mod cache;
mod config;
mod error;
mod ops;
mod proxy;
mod tiles;

pub use config::{SUM_GOLANG_ORG_KEY, SumDbConfig};
pub use error::SumDbError;
pub use proxy::SumDbReply;

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use bytes::Bytes;
use strata_core::gosum::GoSumLine;
use strata_core::path::ModulePath;
use strata_core::sumdb::{Client, ClientError};
use strata_core::version::Version;

use self::error::classify;
use self::ops::StoreOps;
use crate::storage::ObjectStore;
use crate::upstream::Upstream;

/// The verified go.sum hashes of one module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSums {
    /// The `h1:` hash of the module zip (the go.sum line without `/go.mod`).
    pub zip: String,
    /// The `h1:` hash of the version's go.mod (the `/go.mod` line).
    pub go_mod: String,
}

/// One checksum database: a verifying client with its persisted timeline and caches, and the
/// proxy of the database's endpoints. Share it (`Arc`) between all requests.
#[derive(Debug)]
pub struct ChecksumDb {
    ops: Arc<StoreOps>,
    client: Arc<Client<Arc<StoreOps>>>,
    latest_ttl: Duration,
    /// The last `/latest` served by the proxy and when it was verified. The lock is held while
    /// refreshing, so concurrent requests share one fetch.
    latest: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
}

impl ChecksumDb {
    /// The database of `config`, keeping its state in `store`. Cheap: no I/O happens before
    /// the first lookup or proxied request.
    pub fn new(config: &SumDbConfig, store: Arc<dyn ObjectStore>) -> Result<Self, String> {
        config.validate()?;
        let name = config.name()?;
        let upstream = Upstream::new(&config.upstream_config()?)?;
        let ops = Arc::new(StoreOps::new(&name, upstream, store)?);
        let client = Client::new(ops.clone(), config.key.trim())
            .map_err(|e| format!("sumdb key: {e}"))?
            .with_tile_height(config.tile_height);
        Ok(Self {
            ops,
            client: Arc::new(client),
            latest_ttl: config.latest_ttl(),
            latest: tokio::sync::Mutex::new(None),
        })
    }

    /// The database name (its key's name, e.g. `sum.golang.org`).
    pub fn name(&self) -> &str {
        self.ops.name()
    }

    /// The verified `h1:` hashes of `module@version`'s zip and go.mod.
    pub async fn lookup(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ModuleSums, SumDbError> {
        let span = strata_service::span!(
            "sumdb.verify",
            otel.name = "sumdb lookup",
            sumdb.name = self.name(),
            module = module.as_str(),
            version = version.as_str(),
        );
        let result = self
            .lookup_untraced(module, version)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            strata_service::trace::set_error(&span, e);
        }
        result
    }

    async fn lookup_untraced(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ModuleSums, SumDbError> {
        let (m, v) = (module.as_str().to_owned(), version.as_str().to_owned());
        let lines = self
            .with_client(move |client| -> Result<_, ClientError> {
                let zip = client.lookup(&m, &v)?;
                let go_mod = client.lookup(&m, &format!("{v}/go.mod"))?;
                Ok((zip, go_mod))
            })
            .await?;
        let lookup = Some((module.as_str(), version.as_str()));
        let (zip, go_mod) = lines.map_err(|e| classify(self.name(), &e, lookup))?;
        match (h1_hash(&zip), h1_hash(&go_mod)) {
            (Some(zip), Some(go_mod)) => Ok(ModuleSums { zip, go_mod }),
            _ => Err(SumDbError::Integrity {
                db: self.name().to_owned(),
                message: format!(
                    "{module}@{version}: the database record lacks the h1: hash of the zip or \
                     of the go.mod"
                ),
            }),
        }
    }

    /// Runs `f` with the client on a blocking thread (the client's I/O is synchronous).
    async fn with_client<T, F>(&self, f: F) -> Result<T, SumDbError>
    where
        T: Send + 'static,
        F: FnOnce(&Client<Arc<StoreOps>>) -> T + Send + 'static,
    {
        let client = self.client.clone();
        self.blocking(move || f(&client)).await
    }

    /// Runs `f` on a blocking thread.
    async fn blocking<T, F>(&self, f: F) -> Result<T, SumDbError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // The client's I/O (database fetches, store reads) runs inside the caller's span.
        let span = strata_service::trace::current();
        tokio::task::spawn_blocking(move || span.in_scope(f))
            .await
            .map_err(|e| SumDbError::Internal {
                db: self.name().to_owned(),
                message: format!("verifier thread failed: {e}"),
            })
    }
}

/// The `h1:` hash among go.sum `lines`.
fn h1_hash(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .filter_map(|line| GoSumLine::parse(line, 1).ok().flatten())
        .find(|line| line.algorithm() == "h1")
        .map(|line| line.hash)
}

#[cfg(test)]
mod tests;
