//! Recording a remote repository's versions in the registry's checksum database (the
//! [`Ledger`](crate::ledger::Ledger)), and recording on demand what a `/lookup/` asks for.

use strata_core::path::ModulePath;
use strata_core::version::Version;

use super::{Inner, RemoteRepository};
use crate::error::RegistryError;
use crate::ledger::LedgerError;

impl RemoteRepository {
    /// Makes sure the registry's checksum database has a record of `module@version` (for a
    /// `/lookup/` it cannot answer yet): the hashes the upstream checksum database verifies,
    /// or, for a `no_sum` module, those of its zip, fetched (and cached) for the purpose.
    /// Nothing to do without a ledger.
    pub async fn record_in_ledger(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<(), RegistryError> {
        if self.inner.ledger.is_none() {
            return Ok(());
        }
        if !self.inner.no_sum(module) {
            if let Some(sums) = self.inner.expected_sums(module, version).await? {
                self.inner
                    .record(module, version, &sums.zip, &sums.go_mod)
                    .await?;
            }
            return Ok(());
        }
        // The zip's fill records it; read the answer to the end so that the fill is done.
        let artifact = self.zip(module, version, None).await?;
        let mut body = artifact.object.body;
        while let Some(chunk) = futures::StreamExt::next(&mut body).await {
            chunk.map_err(|e| RegistryError::io(format!("fetching {module}@{version}"), e))?;
        }
        Ok(())
    }
}

impl Inner {
    /// Records `module@version` with its hashes in the ledger, if the registry has one. A
    /// conflicting record means the upstream (or its database) now disagrees with what was
    /// recorded before: an integrity violation, nothing is stored or served. Any other
    /// failure fails the request: nothing unrecorded is served while the ledger is on.
    pub(super) async fn record(
        &self,
        module: &ModulePath,
        version: &Version,
        zip_h1: &str,
        mod_h1: &str,
    ) -> Result<(), RegistryError> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        match ledger.append(module, version, zip_h1, mod_h1).await {
            Ok(_) => Ok(()),
            Err(e @ LedgerError::Conflict { .. }) => {
                let detail = format!(
                    "{e}\n\nSECURITY ERROR: remote repository {:?} was served hashes for \
                     {module}@{version} that differ from the registry's checksum database; \
                     nothing was stored",
                    self.name.as_str()
                );
                Err(self.integrity_violation(module, version, detail).await)
            }
            Err(e) => {
                tracing::warn!(
                    repository = %self.name, %module, %version, error = %e,
                    "could not record a version in the registry's checksum database; not served"
                );
                Err(RegistryError::Ledger(e))
            }
        }
    }
}
