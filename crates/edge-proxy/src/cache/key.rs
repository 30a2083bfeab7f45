//! [`CacheKey`]: what a cache entry is, and the one function that turns it into a file path of
//! the disk tier ([`CacheKey::relative_path`]).

use strata_core::protocol::ProxyRequest;

/// A cacheable answer of one repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The registry repository (a validated name: lower-case letters, digits, `-_.`).
    pub repo: String,
    /// What in it.
    pub item: Item,
}

/// The cacheable things.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// A GOPROXY request.
    Proxy(ProxyRequest),
    /// A checksum-database tile: `<name>/tile/…` (validated by [`tile_path`]).
    Tile(String),
}

impl CacheKey {
    /// The key of a GOPROXY request.
    pub fn proxy(repo: &str, request: &ProxyRequest) -> Self {
        Self {
            repo: repo.to_owned(),
            item: Item::Proxy(request.clone()),
        }
    }

    /// The path below the disk tier's root. Module paths and versions are in their escaped
    /// form (lower-case, `!` before upper-case letters), which is safe on case-insensitive
    /// file systems; queries are hex-encoded.
    pub fn relative_path(&self) -> String {
        let repo = &self.repo;
        match &self.item {
            Item::Tile(path) => format!("{repo}/@sumdb/{path}"),
            Item::Proxy(ProxyRequest::Query(module, query)) => {
                format!(
                    "{repo}/{}/@q/{}.info",
                    module.escaped(),
                    hex::encode(query.as_bytes())
                )
            }
            Item::Proxy(request) => format!("{repo}/{}", request.path()),
        }
    }

    /// The kind, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match &self.item {
            Item::Tile(_) => "sumdb",
            Item::Proxy(request) => request.kind_name(),
        }
    }

    /// Whether the answer can change (`list`, `@latest`, queries).
    pub fn is_mutable(&self) -> bool {
        match &self.item {
            Item::Tile(_) => false,
            Item::Proxy(request) => matches!(
                request,
                ProxyRequest::List(_) | ProxyRequest::Latest(_) | ProxyRequest::Query(..)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_are_escaped_and_distinct() {
        let zip = ProxyRequest::parse("github.com/!azure/x/@v/v1.0.0.zip").unwrap();
        let key = CacheKey::proxy("go", &zip);
        assert_eq!(key.relative_path(), "go/github.com/!azure/x/@v/v1.0.0.zip");
        let q = ProxyRequest::parse("example.com/m/@v/master.info").unwrap();
        assert_eq!(
            CacheKey::proxy("go", &q).relative_path(),
            "go/example.com/m/@q/6d6173746572.info"
        );
        assert!(CacheKey::proxy("go", &q).is_mutable());
        assert!(!key.is_mutable());
    }
}
