//! The `[ledger]` table: the registry's own checksum database, its name and where its private
//! key comes from. Off when the table is absent.
//!
//! ```toml
//! [ledger]
//! name = "sum.corp.example"          # the database name: the key's name, what GOSUMDB starts with
//! key_env = "STRATA_LEDGER_KEY"      # a variable holding PRIVATE+KEY+sum.corp.example+…
//! # key_file = "/run/secrets/ledger.key"   # or a file (mode 0600 or stricter) holding it
//! ```
//!
//! The key is read when the configuration is loaded (a missing variable or file, a key that is
//! not a signer key or one for another name stops the service with exit status 64, and
//! `--check-config` says so), and it never appears in a message or `Debug` output.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use strata_core::sumdb::SignerKey;
use strata_core::sumdb::key::Signer as _;

/// `[ledger]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// The database name (`sum.corp.example`): letters, digits, `.` and `-`, as a host name.
    /// It is the signer key's name; clients see it in `GOSUMDB` and in URLs
    /// (`…/sumdb/<name>/…`).
    pub name: String,
    /// The environment variable holding the signer key (`PRIVATE+KEY+<name>+…`).
    #[serde(default)]
    pub key_env: Option<String>,
    /// A file holding the signer key; refused when group or others may read it.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The signer key, once read from `key_env` or `key_file`.
    #[serde(skip)]
    signer_key: Option<SignerSecret>,
}

/// A signer key that `Debug` does not print.
#[derive(Clone)]
struct SignerSecret(String);

impl std::fmt::Debug for SignerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignerSecret(..)")
    }
}

impl LedgerConfig {
    /// A configuration with the signer key given directly (`strata up`, tests).
    pub fn with_key(name: &str, signer_key: &str) -> Result<Self, String> {
        let mut config = Self {
            name: name.to_owned(),
            key_env: None,
            key_file: None,
            signer_key: None,
        };
        config.accept_key(signer_key.to_owned(), "the given key")?;
        Ok(config)
    }

    /// The signer key, once the configuration is loaded (`None` before).
    pub fn signer_key(&self) -> Option<&str> {
        self.signer_key.as_ref().map(|k| k.0.as_str())
    }

    /// Checks what needs no secret: the name and exactly one key source.
    pub fn validate(&self) -> Result<(), String> {
        if !is_host_name(&self.name) {
            return Err(format!(
                "name {:?}: a checksum database name here is a host name (letters, digits, `.` \
                 and `-`, e.g. sum.corp.example)",
                self.name
            ));
        }
        match (&self.key_env, &self.key_file) {
            (Some(_), Some(_)) => Err("set key_env or key_file, not both".into()),
            (None, None) if self.signer_key.is_none() => Err(
                "the signer key is missing: set key_env (a variable holding it) or key_file \
                 (`strata sumdb keygen NAME --out FILE` makes one)"
                    .into(),
            ),
            (Some(var), None) if var.trim().is_empty() => Err("key_env is empty".into()),
            (None, Some(path)) if path.as_os_str().is_empty() => {
                Err("key_file is an empty path".into())
            }
            _ => Ok(()),
        }
    }

    /// Reads the signer key from `key_env` (looked up in `env`) or `key_file`, and checks it
    /// is a signer key named [`name`](Self::name). The reasons never contain the key.
    pub fn read_key(&mut self, env: &[(String, String)]) -> Result<(), String> {
        if let Some(var) = &self.key_env {
            let Some((_, value)) = env.iter().find(|(n, _)| n == var) else {
                return Err(format!("key_env: the variable {var} is not set"));
            };
            let value = value.clone();
            return self.accept_key(value, &format!("the variable {var}"));
        }
        if let Some(path) = self.key_file.clone() {
            let text = read_private_file(&path)?;
            return self.accept_key(text, &format!("key_file {}", path.display()));
        }
        Ok(())
    }

    fn accept_key(&mut self, text: String, source: &str) -> Result<(), String> {
        let key = text.trim();
        let signer = SignerKey::parse(key)
            .map_err(|e| format!("{source} does not hold a checksum database signer key: {e}"))?;
        if signer.name() != self.name {
            return Err(format!(
                "{source} holds the key of checksum database {:?}, not of {:?} (name)",
                signer.name(),
                self.name
            ));
        }
        self.signer_key = Some(SignerSecret(key.to_owned()));
        Ok(())
    }
}

/// A host name: labels of letters, digits and `-`, separated by single dots (what the edge's
/// `sumdb/<name>/` route accepts).
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The text of a key file, refused when group or others may read or write it.
fn read_private_file(path: &Path) -> Result<String, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta =
            std::fs::metadata(path).map_err(|e| format!("key_file {}: {e}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "key_file {}: mode {mode:04o} lets group or others read it; chmod 600 it",
                path.display()
            ));
        }
    }
    std::fs::read_to_string(path).map_err(|e| format!("key_file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> LedgerConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn the_key_comes_from_a_variable_and_must_match_the_name() {
        let (signer, _) = super::super::generate_key("sum.corp.example").unwrap();
        let mut c = config("name = \"sum.corp.example\"\nkey_env = \"K\"");
        c.validate().unwrap();
        let e = c.read_key(&[]).unwrap_err();
        assert!(e.contains("K is not set"), "{e}");
        c.read_key(&[("K".into(), format!("{signer}\n"))]).unwrap();
        assert_eq!(c.signer_key(), Some(signer.as_str()));
        assert!(!format!("{c:?}").contains(&signer), "Debug shows no key");

        let (other, _) = super::super::generate_key("sum.other.example").unwrap();
        let e = c.read_key(&[("K".into(), other.clone())]).unwrap_err();
        assert!(
            e.contains("sum.other.example") && !e.contains(&other),
            "{e}"
        );
        let e = c.read_key(&[("K".into(), "nonsense".into())]).unwrap_err();
        assert!(e.contains("does not hold"), "{e}");
    }

    #[test]
    fn names_and_sources_are_checked() {
        for (text, want) in [
            ("name = \"sum example\"\nkey_env = \"K\"", "host name"),
            ("name = \"a/b\"\nkey_env = \"K\"", "host name"),
            ("name = \"s.x\"", "signer key is missing"),
            (
                "name = \"s.x\"\nkey_env = \"K\"\nkey_file = \"f\"",
                "not both",
            ),
        ] {
            let e = config(text).validate().unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert!(toml::from_str::<LedgerConfig>("name = \"s.x\"\nkey = \"k\"").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let (signer, _) = super::super::generate_key("sum.corp.example").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.key");
        std::fs::write(&path, &signer).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut c = config(&format!(
            "name = \"sum.corp.example\"\nkey_file = {:?}",
            path.display().to_string()
        ));
        let e = c.read_key(&[]).unwrap_err();
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        c.read_key(&[]).unwrap();
        assert_eq!(c.signer_key(), Some(signer.as_str()));
    }
}
