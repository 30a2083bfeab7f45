//! The text of a ledger record — the two go.sum lines of one module version, exactly what
//! sum.golang.org stores — and the syntax of the `/lookup/<module>@<version>` key.

use base64::Engine as _;
use strata_core::gosum::format_module_lines;
use strata_core::path::{ModulePath, unescape_path, unescape_version};
use strata_core::version::Version;

use super::LedgerError;

/// A record text with the module version it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) module: ModulePath,
    pub(super) version: Version,
    /// `M V h1:…\nM V/go.mod h1:…\n`.
    pub(super) text: String,
}

impl Entry {
    /// The record of `module@version` with the zip hash `zip_h1` and go.mod hash `mod_h1`.
    pub(super) fn new(
        module: &ModulePath,
        version: &Version,
        zip_h1: &str,
        mod_h1: &str,
    ) -> Result<Entry, LedgerError> {
        for (what, hash) in [("zip", zip_h1), ("go.mod", mod_h1)] {
            if !is_h1(hash) {
                return Err(LedgerError::InvalidInput(format!(
                    "{module}@{version}: {what} hash {hash:?} is not h1: and the standard \
                     base64 of 32 bytes"
                )));
            }
        }
        Ok(Entry {
            module: module.clone(),
            version: version.clone(),
            text: format_module_lines(module.as_str(), version.as_str(), zip_h1, mod_h1),
        })
    }

    /// Parses a stored record text; it must be exactly what [`Entry::new`] writes.
    pub(super) fn parse(text: &[u8]) -> Result<Entry, String> {
        let bad = |why: &str| format!("{why}: {:?}", String::from_utf8_lossy(text));
        let text = std::str::from_utf8(text).map_err(|_| bad("record is not UTF-8"))?;
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("record does not end in a newline"))?
            .split('\n')
            .collect();
        let [zip_line, mod_line] = lines.as_slice() else {
            return Err(bad("record is not two go.sum lines"));
        };
        let fields: Vec<&str> = zip_line.split(' ').collect();
        let [module, version, zip_h1] = fields.as_slice() else {
            return Err(bad("record's first line is not `module version hash`"));
        };
        let mod_h1 = mod_line
            .strip_prefix(&format!("{module} {version}/go.mod "))
            .ok_or_else(|| bad("record's second line is not the go.mod line"))?;
        let module = ModulePath::new(module).map_err(|e| bad(&e.to_string()))?;
        let version = Version::new(version).map_err(|e| bad(&e.to_string()))?;
        let entry =
            Entry::new(&module, &version, zip_h1, mod_h1).map_err(|e| bad(&e.to_string()))?;
        if entry.text != text {
            return Err(bad("record is not in canonical form"));
        }
        Ok(entry)
    }

    /// The go.sum lines.
    pub(super) fn lines(&self) -> Vec<String> {
        self.text.lines().map(str::to_owned).collect()
    }
}

/// Whether `hash` is `h1:` followed by the canonical standard base64 of 32 bytes.
fn is_h1(hash: &str) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    hash.strip_prefix("h1:")
        .and_then(|b64| engine.decode(b64).ok().map(|raw| (b64, raw)))
        .is_some_and(|(b64, raw)| raw.len() == 32 && engine.encode(&raw) == b64)
}

/// Parses the key of a `/lookup/` request, `<escaped module>@<escaped version>`, as
/// x/mod's server does: the syntax `^[^@]+@v[0-9]+\.[0-9]+\.[0-9]+(-[^@]*)?(\+incompatible)?$`,
/// then both parts unescaped. `Ok(None)` for a well-formed key that names no module version
/// that can be recorded (a non-canonical version): there is no record for it.
pub(super) fn parse_lookup_key(key: &str) -> Result<Option<(ModulePath, Version)>, LedgerError> {
    let bad = |why: String| LedgerError::InvalidInput(format!("lookup {key:?}: {why}"));
    let syntax = || bad("invalid module@version syntax".to_owned());
    let (escaped_path, escaped_version) = key.split_once('@').ok_or_else(syntax)?;
    if escaped_path.is_empty() || !is_lookup_version(escaped_version) {
        return Err(syntax());
    }
    let path = unescape_path(escaped_path).map_err(|e| bad(e.to_string()))?;
    let version = unescape_version(escaped_version).map_err(|e| bad(e.to_string()))?;
    let module = ModulePath::new(&path).map_err(|e| bad(e.to_string()))?;
    Ok(Version::new(&version).ok().map(|version| (module, version)))
}

/// `v[0-9]+\.[0-9]+\.[0-9]+(-[^@]*)?(\+incompatible)?` without `@`.
fn is_lookup_version(v: &str) -> bool {
    if v.contains('@') {
        return false;
    }
    let Some(mut rest) = v.strip_prefix('v') else {
        return false;
    };
    for i in 0..3 {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        if i < 2 {
            match rest.strip_prefix('.') {
                Some(r) => rest = r,
                None => return false,
            }
        }
    }
    rest.is_empty() || rest.starts_with('-') || rest == "+incompatible"
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    #[test]
    fn records_round_trip() {
        let m = ModulePath::new("example.com/Team/m").unwrap();
        let v = Version::new("v1.2.3-rc.1").unwrap();
        let e = Entry::new(&m, &v, H1, H1).unwrap();
        assert_eq!(
            e.text,
            format!(
                "example.com/Team/m v1.2.3-rc.1 {H1}\nexample.com/Team/m v1.2.3-rc.1/go.mod {H1}\n"
            )
        );
        assert_eq!(Entry::parse(e.text.as_bytes()).unwrap(), e);
        assert_eq!(e.lines().len(), 2);
        for bad in [
            "",
            "example.com/m v1.0.0 h1:x=\n",
            &e.text[..e.text.len() - 1],
            &e.text.replace("/go.mod", ""),
            &e.text.replace("v1.2.3-rc.1", "v1.2"),
            &format!("{}\n", e.text),
        ] {
            assert!(Entry::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn h1_hashes_are_checked() {
        assert!(is_h1(H1));
        for bad in [
            "",
            "h1:",
            "h2:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=",
            "h1:AAAA",
        ] {
            assert!(!is_h1(bad), "{bad}");
        }
    }

    #[test]
    fn lookup_keys_follow_the_reference_server() {
        let (m, v) = parse_lookup_key("github.com/!azure/x@v1.0.0-!r!c1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.as_str(), v.as_str()),
            ("github.com/Azure/x", "v1.0.0-RC1")
        );
        assert!(
            parse_lookup_key("example.com/m@v2.0.0+incompatible")
                .unwrap()
                .is_some()
        );
        assert!(
            parse_lookup_key("example.com/m@v1.0.0-01")
                .unwrap()
                .is_none()
        );
        for bad in [
            "example.com/m",
            "@v1.0.0",
            "example.com/m@v1.0",
            "example.com/m@1.0.0",
            "example.com/m@v1.0.0+meta",
            "example.com/m@v1.0.0@v1.0.0",
            "example.com/M@v1.0.0",
        ] {
            assert!(parse_lookup_key(bad).is_err(), "{bad}");
        }
    }
}
