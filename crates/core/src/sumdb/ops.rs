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
