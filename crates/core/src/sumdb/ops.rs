//! The I/O boundary of the checksum-database [`super::client::Client`]: [`ClientOps`] fetches
//! from the database and persists the latest tree head and caches. It is synchronous on
//! purpose (see the client's module docs); `&O` and `Arc<O>` forward to `O` so a caller can
//! keep a handle on its own ops.

/// An error from a [`ClientOps`] implementation.
pub type OpsError = Box<dyn std::error::Error + Send + Sync>;

/// Why [`ClientOps::write_config`] did not write.
#[derive(Debug)]
pub enum WriteConfigError {
    /// The stored value is not `old` any more: the client re-reads and merges.
    Conflict,
    /// Any other failure.
    Failed(OpsError),
}

/// The external operations of a [`Client`](super::client::Client). Paths and file names need no parsing.
pub trait ClientOps {
    /// The body served at `path` (`/lookup/…` or `/tile/…`) by the database; an error for any
    /// non-200 response.
    fn read_remote(&self, path: &str) -> Result<Vec<u8>, OpsError>;
    /// The persisted configuration file `file` (only `<name>/latest`, the latest signed tree
    /// note); empty when there is none yet.
    fn read_config(&self, file: &str) -> Result<Vec<u8>, OpsError>;
    /// Atomically replaces `file`'s content `old` by `new` (compare-and-swap).
    fn write_config(&self, file: &str, old: &[u8], new: &[u8]) -> Result<(), WriteConfigError>;
    /// A cached file (`<name>/lookup/…`, `<name>/tile/…`), or `None`.
    fn read_cache(&self, file: &str) -> Option<Vec<u8>>;
    /// Caches a verified lookup response or an authenticated tile.
    fn write_cache(&self, file: &str, data: &[u8]);
    /// Reports proof that the server forked its log (also returned in [`ClientError::Security`](super::client::ClientError::Security)).
    fn security_error(&self, report: &str);
}

macro_rules! forward_ops {
    ($($ty:ty),*) => {$(
        impl<O: ClientOps + ?Sized> ClientOps for $ty {
            fn read_remote(&self, path: &str) -> Result<Vec<u8>, OpsError> {
                (**self).read_remote(path)
            }
            fn read_config(&self, file: &str) -> Result<Vec<u8>, OpsError> {
                (**self).read_config(file)
            }
            fn write_config(&self, file: &str, old: &[u8], new: &[u8]) -> Result<(), WriteConfigError> {
                (**self).write_config(file, old, new)
            }
            fn read_cache(&self, file: &str) -> Option<Vec<u8>> {
                (**self).read_cache(file)
            }
            fn write_cache(&self, file: &str, data: &[u8]) {
                (**self).write_cache(file, data)
            }
            fn security_error(&self, report: &str) {
                (**self).security_error(report)
            }
        }
    )*};
}

// Shared ops (the caller keeps a handle to its caches and HTTP client).
forward_ops!(&O, std::sync::Arc<O>);

/// Client state kept in memory: the persisted configuration (with the compare-and-swap
/// [`ClientOps::write_config`] needs) and the cache. [`ClientOps`] implementations delegate
/// their state methods to it when nothing must outlive the process (tests, short-lived tools);
/// a long-running service persists the latest tree head instead, so forks are detected across
/// restarts.
#[derive(Debug, Default)]
pub struct MemoryState {
    config: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    cache: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
}

impl MemoryState {
    /// [`ClientOps::read_config`]: the stored content, or empty.
    pub fn read_config(&self, file: &str) -> Vec<u8> {
        lock(&self.config).get(file).cloned().unwrap_or_default()
    }

    /// [`ClientOps::write_config`]: replaces `old` by `new`, or reports a conflict.
    pub fn write_config(&self, file: &str, old: &[u8], new: &[u8]) -> Result<(), WriteConfigError> {
        let mut config = lock(&self.config);
        if config.get(file).map(Vec::as_slice).unwrap_or_default() != old {
            return Err(WriteConfigError::Conflict);
        }
        config.insert(file.to_owned(), new.to_vec());
        Ok(())
    }

    /// [`ClientOps::read_cache`].
    pub fn read_cache(&self, file: &str) -> Option<Vec<u8>> {
        lock(&self.cache).get(file).cloned()
    }

    /// [`ClientOps::write_cache`].
    pub fn write_cache(&self, file: &str, data: &[u8]) {
        lock(&self.cache).insert(file.to_owned(), data.to_vec());
    }
}

/// A poisoned map is still consistent here (every update is a single insert), so keep using it.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
