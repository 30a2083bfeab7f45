//! [`SumDbRequest`]: a checksum-database request path (spec §6.2), parsed. Proxies rebuild the
//! path they forward from the parsed form ([`SumDbRequest::path`]), so nothing but the four
//! protocol endpoints can reach a database or a registry through them: no `..`, no other
//! route, no query string.

use crate::path::{ModulePath, percent_decode_path, unescape_version};
use crate::sumdb::Tile;
use crate::version::Version;

/// Highest tile height proxied (sum.golang.org and the go command use 8): authenticating a
/// tile costs 2^H hashes.
pub const MAX_TILE_HEIGHT: u32 = 12;

/// A checksum-database request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SumDbRequest {
    /// `/supported`.
    Supported,
    /// `/latest`.
    Latest,
    /// `/lookup/<escaped module>@<escaped version>`.
    Lookup {
        /// The module.
        module: ModulePath,
        /// Its canonical version.
        version: Version,
    },
    /// `/tile/H/L/NNN[.p/W]` or `/tile/H/data/NNN[.p/W]`.
    Tile(Tile),
}

impl SumDbRequest {
    /// Parses `path` (below `/sumdb/<name>`, starting with `/`), percent-encoded as it came
    /// off the wire; the error says what is wrong with it.
    pub fn parse(path: &str) -> Result<Self, String> {
        let decoded;
        let path = if path.contains('%') {
            // The go command sends the case-encoding's `!` as `%21`; module paths and tile
            // paths have no `%` of their own, so decoding once is unambiguous.
            decoded = percent_decode_path(path)?;
            decoded.as_str()
        } else {
            path
        };
        match path {
            "/supported" => return Ok(SumDbRequest::Supported),
            "/latest" => return Ok(SumDbRequest::Latest),
            _ => {}
        }
        if let Some(key) = path.strip_prefix("/lookup/") {
            return parse_lookup(key).map_err(|e| format!("invalid module@version syntax: {e}"));
        }
        if let Some(tile_path) = path.strip_prefix('/').filter(|p| p.starts_with("tile/")) {
            let tile = Tile::parse_path(tile_path).map_err(|_| "invalid tile syntax".to_owned())?;
            if tile.h > MAX_TILE_HEIGHT {
                return Err(format!(
                    "invalid tile syntax: tiles of height {} are not served (at most \
                     {MAX_TILE_HEIGHT}; the go command uses 8)",
                    tile.h
                ));
            }
            return Ok(SumDbRequest::Tile(tile));
        }
        Err("not a checksum database path (want /supported, /latest, \
             /lookup/<module>@<version> or /tile/<H>/<L>/<N>)"
            .to_owned())
    }

    /// The canonical path of the request (starting with `/`), rebuilt from the parsed form.
    pub fn path(&self) -> String {
        match self {
            SumDbRequest::Supported => "/supported".to_owned(),
            SumDbRequest::Latest => "/latest".to_owned(),
            SumDbRequest::Lookup { module, version } => {
                format!("/lookup/{}@{}", module.escaped(), version.escaped())
            }
            SumDbRequest::Tile(tile) => format!("/{}", tile.path()),
        }
    }
}

/// `<escaped module>@<escaped version>` (the reference server's
/// `^[^@]+@v[0-9]+\.[0-9]+\.[0-9]+(-[^@]*)?(\+incompatible)?$`, with a valid module path and a
/// canonical version).
fn parse_lookup(key: &str) -> Result<SumDbRequest, String> {
    let (escaped_path, escaped_version) = key.split_once('@').ok_or("missing @version")?;
    if escaped_version.contains('@') {
        return Err("more than one @".to_owned());
    }
    crate::protocol::check_lengths(escaped_path, Some(escaped_version))?;
    let module = ModulePath::from_escaped(escaped_path).map_err(|e| e.to_string())?;
    let version = unescape_version(escaped_version).map_err(|e| e.to_string())?;
    let version = Version::new(&version).map_err(|e| e.to_string())?;
    Ok(SumDbRequest::Lookup { module, version })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_four_endpoints_and_rebuilds_them() {
        for path in [
            "/supported",
            "/latest",
            "/lookup/github.com/!azure/go@v1.2.3",
            "/tile/8/0/001",
            "/tile/8/data/x001/x234/067.p/5",
        ] {
            assert_eq!(SumDbRequest::parse(path).unwrap().path(), path, "{path}");
        }
        assert_eq!(
            SumDbRequest::parse("/lookup/github.com/%21azure/go@v1.2.3")
                .unwrap()
                .path(),
            "/lookup/github.com/!azure/go@v1.2.3"
        );
    }

    #[test]
    fn refuses_traversal_and_other_routes() {
        for path in [
            "/../../metrics",
            "/%2e%2e/%2e%2e/metrics",
            "/%2E%2E/x",
            "/lookup/../../go/private/x@v1.0.0",
            "/lookup/example.com%2f..%2fx@v1.0.0",
            "/lookup/example.com/x@v1.0.0/../../metrics",
            "/tile/8/0/../../../metrics",
            "/tile/13/0/000",
            "/latest/",
            "/latest?x=1",
            "/supported/..",
            "//latest",
            "/lookup/example.com/x@master",
            &format!("/lookup/example.com/{}@v1.0.0", "a".repeat(300)),
            "/%zz",
            "",
        ] {
            assert!(SumDbRequest::parse(path).is_err(), "{path:?} accepted");
        }
    }
}
