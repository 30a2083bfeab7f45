//! Authentication and authorization: tokens (stored as SHA-256 hashes in the config) with
//! per-repository permissions, presented as HTTP Bearer or Basic credentials (the password of
//! Basic is the token, so `.netrc` and `GOAUTH` work; the user name is ignored).
//!
//! Anonymous read is a per-repository switch; anonymous write never exists. Bad credentials are
//! an error (401), never silently treated as anonymous.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::error::RegistryError;
use crate::keys::RepoName;

/// What a token may do in a repository. `Admin` implies every other permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Download modules.
    Read,
    /// Publish new versions.
    Deploy,
    /// Delete versions.
    Delete,
    /// Everything.
    Admin,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Permission::Read => "read",
            Permission::Deploy => "deploy",
            Permission::Delete => "delete",
            Permission::Admin => "admin",
        })
    }
}

/// One `[[tokens]]` entry of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs and audit (never the secret).
    pub name: String,
    /// Lower-case hex SHA-256 of the token (`strata token new` prints both).
    pub sha256: String,
    /// Permissions per repository name; the key `"*"` applies to every repository.
    pub permissions: HashMap<String, Vec<Permission>>,
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// A known token.
    Token {
        /// The token's configured name.
        name: String,
    },
}

impl Principal {
    /// A short form for logs.
    pub fn label(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::Token { name } => name,
        }
    }
}

/// The token table.
#[derive(Debug, Default)]
pub struct Auth {
    by_hash: HashMap<[u8; 32], TokenConfig>,
}

impl Auth {
    /// Builds the table, rejecting malformed hashes, duplicate names and unknown repositories.
    pub fn new(tokens: &[TokenConfig], repos: &[RepoName]) -> Result<Self, String> {
        let mut by_hash = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for t in tokens {
            if !names.insert(t.name.clone()) {
                return Err(format!("token {:?} is defined twice", t.name));
            }
            let raw = hex::decode(&t.sha256)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| format!("token {:?}: sha256 must be 64 hex digits", t.name))?;
            for repo in t.permissions.keys() {
                if repo != "*" && !repos.iter().any(|r| r.as_str() == repo) {
                    return Err(format!("token {:?}: no repository named {repo:?}", t.name));
                }
            }
            by_hash.insert(raw, t.clone());
        }
        Ok(Self { by_hash })
    }

    /// Identifies the caller from an `Authorization` header value (or its absence).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, RegistryError> {
        let Some(value) = authorization else {
            return Ok(Principal::Anonymous);
        };
        let token = parse_authorization(value).ok_or_else(|| {
            RegistryError::Unauthenticated(
                "malformed Authorization header (use Bearer or Basic)".into(),
            )
        })?;
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        match self.by_hash.get(&hash) {
            Some(t) => Ok(Principal::Token {
                name: t.name.clone(),
            }),
            None => Err(RegistryError::Unauthenticated("invalid token".into())),
        }
    }

    /// Whether `principal` may do `permission` in `repo`; `anonymous_read` is the repository's
    /// switch.
    pub fn authorize(
        &self,
        principal: &Principal,
        repo: &RepoName,
        permission: Permission,
        anonymous_read: bool,
    ) -> Result<(), RegistryError> {
        match principal {
            Principal::Anonymous if permission == Permission::Read && anonymous_read => Ok(()),
            Principal::Anonymous => Err(RegistryError::Unauthenticated(format!(
                "repository \"{repo}\" requires a token with {permission} permission"
            ))),
            Principal::Token { name } => {
                if permission == Permission::Read && anonymous_read {
                    return Ok(());
                }
                let granted = self
                    .by_hash
                    .values()
                    .find(|t| &t.name == name)
                    .map(|t| {
                        [t.permissions.get(repo.as_str()), t.permissions.get("*")]
                            .into_iter()
                            .flatten()
                            .flatten()
                            .any(|p| *p == permission || *p == Permission::Admin)
                    })
                    .unwrap_or(false);
                if granted {
                    Ok(())
                } else {
                    Err(RegistryError::Forbidden(format!(
                        "token {name:?} lacks {permission} permission on repository \"{repo}\""
                    )))
                }
            }
        }
    }
}

/// The token in `Bearer <token>` or `Basic base64(user:token)`.
fn parse_authorization(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (_, password) = decoded.split_once(':')?;
        return (!password.is_empty()).then(|| password.to_string());
    }
    None
}

/// The hex SHA-256 of a token, as the configuration stores it.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> (Auth, RepoName) {
        let repo = RepoName::new("private").unwrap();
        let tokens = vec![
            TokenConfig {
                name: "ci".into(),
                sha256: hash_token("secret-ci"),
                permissions: HashMap::from([(
                    "private".into(),
                    vec![Permission::Read, Permission::Deploy],
                )]),
            },
            TokenConfig {
                name: "reader".into(),
                sha256: hash_token("secret-reader"),
                permissions: HashMap::from([("*".into(), vec![Permission::Read])]),
            },
        ];
        (
            Auth::new(&tokens, std::slice::from_ref(&repo)).unwrap(),
            repo,
        )
    }

    #[test]
    fn bearer_and_basic() {
        let (auth, _) = auth();
        assert_eq!(auth.authenticate(None).unwrap(), Principal::Anonymous);
        assert_eq!(
            auth.authenticate(Some("Bearer secret-ci")).unwrap(),
            Principal::Token { name: "ci".into() }
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:secret-reader");
        assert_eq!(
            auth.authenticate(Some(&format!("Basic {basic}"))).unwrap(),
            Principal::Token {
                name: "reader".into()
            }
        );
        assert!(matches!(
            auth.authenticate(Some("Bearer nope")),
            Err(RegistryError::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.authenticate(Some("Digest x")),
            Err(RegistryError::Unauthenticated(_))
        ));
    }

    #[test]
    fn permissions() {
        let (auth, repo) = auth();
        let ci = Principal::Token { name: "ci".into() };
        let reader = Principal::Token {
            name: "reader".into(),
        };
        assert!(
            auth.authorize(&ci, &repo, Permission::Deploy, false)
                .is_ok()
        );
        assert!(matches!(
            auth.authorize(&ci, &repo, Permission::Delete, false),
            Err(RegistryError::Forbidden(_))
        ));
        assert!(matches!(
            auth.authorize(&reader, &repo, Permission::Deploy, false),
            Err(RegistryError::Forbidden(_))
        ));
        assert!(
            auth.authorize(&reader, &repo, Permission::Read, false)
                .is_ok()
        );
        assert!(
            auth.authorize(&Principal::Anonymous, &repo, Permission::Read, true)
                .is_ok()
        );
        assert!(matches!(
            auth.authorize(&Principal::Anonymous, &repo, Permission::Deploy, true),
            Err(RegistryError::Unauthenticated(_))
        ));
    }

    #[test]
    fn config_errors() {
        let bad = TokenConfig {
            name: "x".into(),
            sha256: "zz".into(),
            permissions: HashMap::new(),
        };
        assert!(
            Auth::new(&[bad], &[])
                .unwrap_err()
                .contains("64 hex digits")
        );
        let unknown = TokenConfig {
            name: "x".into(),
            sha256: hash_token("t"),
            permissions: HashMap::from([("nope".into(), vec![Permission::Read])]),
        };
        assert!(
            Auth::new(&[unknown], &[])
                .unwrap_err()
                .contains("no repository named")
        );
    }
}
