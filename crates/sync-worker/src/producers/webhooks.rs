//! Tag-push webhooks from GitHub, GitLab and Gitea: a new tag that is a module version gets its
//! module's metadata refreshed and the version prefetched from the upstream.
//!
//! ```toml
//! [[webhooks]]
//! provider = "github"            # "github" | "gitlab" | "gitea"
//! secret_env = "GITHUB_HOOK_SECRET"   # or secret = "…"
//! repository = "gocache"         # the repository (with an upstream) to fetch into
//! # module_prefix = "go.corp.example.com"      # replaces the host of the repository's URL
//! # url_prefix = "https://git.corp.local/go/"  # … or only this part of it
//! ```
//!
//! `POST /api/webhooks/github`, `/gitlab`, `/gitea`. The request must be signed with the
//! secret of one of that provider's `[[webhooks]]` entries (compared in constant time):
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`;
//! - Gitea: `X-Gitea-Signature: <hex HMAC-SHA256(secret, body)>`;
//! - GitLab: `X-Gitlab-Token: <secret>`.
//!
//! A missing or wrong signature is answered 401 and nothing is enqueued; a body that is not
//! the provider's JSON, 400; a body over 1 MiB, 413. Only a *created tag* matters (GitHub and
//! Gitea `push` with `ref = refs/tags/<tag>`, Gitea `create` of a tag, GitLab `tag_push`);
//! everything else is answered 202 `ignored: …`. The tag must be a canonical semantic version,
//! optionally below a subdirectory (`sub/dir/v1.2.3` for the module in `sub/dir`); a `v2+`
//! tag names the module with the `/vN` suffix. The module path is the repository's web URL
//! without its scheme (`https://github.com/org/repo` → `github.com/org/repo`), or with
//! `url_prefix` (default: scheme and host) replaced by `module_prefix`. A valid tag gets a
//! `refresh_metadata` and a `prefetch` job; the answer is 202 with their ids.

mod event;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use strata_core::path::ModulePath;
use strata_registry_engine::keys::RepoName;
use strata_service::config::ConfigError;
use subtle::ConstantTimeEq;

pub use self::event::{Event, TagPush, module_version, parse_event};
use crate::api::reply::text;
use crate::runtime::job::Job;
use crate::runtime::queue::{JobQueue, NewJob, QueueError};

/// Largest webhook body accepted.
pub const BODY_LIMIT: usize = 1 << 20;

/// Who sends the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// GitHub (and GitHub Enterprise).
    Github,
    /// GitLab.
    Gitlab,
    /// Gitea (and Forgejo).
    Gitea,
}

impl Provider {
    /// The name in URLs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Gitea => "gitea",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Provider::Github, Provider::Gitlab, Provider::Gitea]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// One `[[webhooks]]` entry.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `github`, `gitlab` or `gitea`.
    pub provider: Provider,
    /// The shared secret (or give `secret_env`).
    #[serde(default)]
    pub secret: Option<String>,
    /// The environment variable holding the secret, read into `secret` when the worker starts
    /// (`WorkerConfig::resolve_secrets`).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The repository (with an upstream) new versions are fetched into.
    pub repository: RepoName,
    /// Module path prefix replacing `url_prefix` of the repository's web URL.
    #[serde(default)]
    pub module_prefix: Option<String>,
    /// The part of the web URL `module_prefix` replaces. Default: scheme and host.
    #[serde(default)]
    pub url_prefix: Option<String>,
}

/// The secret stays out of logs.
impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("provider", &self.provider)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("secret_env", &self.secret_env)
            .field("repository", &self.repository)
            .field("module_prefix", &self.module_prefix)
            .field("url_prefix", &self.url_prefix)
            .finish()
    }
}

/// Takes each `secret_env` secret from `env` (`(name, value)` pairs) into `secret`; a secret
/// taken no longer names its variable, so taking secrets again only takes those still missing.
pub(crate) fn resolve_secrets(
    hooks: &mut [WebhookConfig],
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    for (i, hook) in hooks.iter_mut().enumerate() {
        let Some(var) = &hook.secret_env else {
            continue;
        };
        if hook.secret.is_some() {
            return Err(invalid(i, hook, "give secret or secret_env, not both"));
        }
        match env.iter().find(|(name, _)| name == var) {
            Some((_, value)) if value.is_empty() => {
                return Err(invalid(
                    i,
                    hook,
                    "a non-empty secret (or secret_env) is required",
                ));
            }
            Some((_, value)) => {
                hook.secret = Some(value.clone());
                hook.secret_env = None;
            }
            None => {
                return Err(invalid(
                    i,
                    hook,
                    &format!("secret_env: the environment variable {var} is not set"),
                ));
            }
        }
    }
    Ok(())
}

fn invalid(i: usize, hook: &WebhookConfig, reason: &str) -> ConfigError {
    ConfigError::invalid(
        "webhooks",
        format!("webhooks[{i}] ({}): {reason}", hook.provider.as_str()),
    )
}

/// Checks every `[[webhooks]]` entry; a `secret_env` is only checked by [`resolve_secrets`].
pub(crate) fn validate(hooks: &[WebhookConfig]) -> Result<(), ConfigError> {
    for (i, hook) in hooks.iter().enumerate() {
        if hook.secret_env.is_some() {
            if hook.secret.is_some() {
                return Err(invalid(i, hook, "give secret or secret_env, not both"));
            }
        } else if hook.secret.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                i,
                hook,
                "a non-empty secret (or secret_env) is required",
            ));
        }
        if let Some(prefix) = &hook.module_prefix {
            ModulePath::new(prefix.trim_end_matches('/'))
                .map_err(|e| invalid(i, hook, &format!("module_prefix: {e}")))?;
        }
        if let Some(url) = &hook.url_prefix {
            if hook.module_prefix.is_none() {
                return Err(invalid(i, hook, "url_prefix needs module_prefix"));
            }
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| invalid(i, hook, &format!("url_prefix {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(i, hook, "url_prefix: must be an http(s) URL"));
            }
        }
    }
    Ok(())
}

/// The webhook routes, enqueuing into `queue`.
pub fn routes(hooks: &[WebhookConfig], queue: Arc<dyn JobQueue>) -> Router {
    Router::new()
        .route("/api/webhooks/{provider}", post(receive))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(Arc::new(Webhooks {
            hooks: hooks.to_vec(),
            queue,
        }))
}

struct Webhooks {
    hooks: Vec<WebhookConfig>,
    queue: Arc<dyn JobQueue>,
}

async fn receive(
    State(state): State<Arc<Webhooks>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(provider) = Provider::from_name(&provider) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no webhook provider {provider:?}"),
        );
    };
    let candidates: Vec<&WebhookConfig> = state
        .hooks
        .iter()
        .filter(|h| h.provider == provider)
        .collect();
    if candidates.is_empty() {
        return text(
            StatusCode::NOT_FOUND,
            format!("no {} webhook is configured", provider.as_str()),
        );
    }
    let Some(hook) = candidates
        .into_iter()
        // A hook whose secret was never taken (see `resolve_secrets`) matches nothing.
        .find(|h| {
            h.secret.as_deref().is_some_and(|secret| {
                !secret.is_empty() && verify(provider, secret, &headers, &body)
            })
        })
    else {
        tracing::warn!(
            provider = provider.as_str(),
            "webhook refused: invalid or missing signature"
        );
        return text(StatusCode::UNAUTHORIZED, "invalid or missing signature");
    };
    let event = match parse_event(provider, &headers, &body) {
        Ok(event) => event,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let push = match event {
        Event::Tag(push) => push,
        Event::Ignored(why) => return text(StatusCode::ACCEPTED, format!("ignored: {why}")),
    };
    let (module, version) = match module_version(hook, &push) {
        Ok(mv) => mv,
        Err(why) => {
            tracing::info!(provider = provider.as_str(), tag = %push.tag, url = %push.web_url,
                %why, "webhook tag ignored");
            return text(StatusCode::ACCEPTED, format!("ignored: {why}"));
        }
    };
    let jobs = vec![
        NewJob::new(Job::RefreshMetadata {
            repository: hook.repository.clone(),
            module: module.clone(),
        }),
        NewJob::new(Job::Prefetch {
            repository: hook.repository.clone(),
            module: module.clone(),
            version: version.clone(),
            mod_only: false,
        }),
    ];
    match state.queue.enqueue_batch(jobs).await {
        Ok(enqueued) => {
            tracing::info!(provider = provider.as_str(), %module, %version,
                repository = hook.repository.as_str(), "webhook: new version enqueued");
            let body = serde_json::json!({
                "repository": hook.repository.as_str(),
                "module": module.as_str(),
                "version": version.as_str(),
                "jobs": enqueued.iter().zip(["refresh_metadata", "prefetch"]).map(|(e, kind)| {
                    serde_json::json!({"kind": kind, "id": e.id.to_string(), "key": e.key})
                }).collect::<Vec<_>>(),
            });
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        Err(e @ (QueueError::Full { .. } | QueueError::Unavailable(_))) => {
            text(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e @ QueueError::InvalidJob(_)) => text(StatusCode::ACCEPTED, format!("ignored: {e}")),
    }
}

/// Whether the request carries `secret`'s signature (constant-time comparisons).
pub fn verify(provider: Provider, secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match provider {
        Provider::Gitlab => header("x-gitlab-token")
            .is_some_and(|token| bool::from(token.as_bytes().ct_eq(secret.as_bytes()))),
        Provider::Github => header("x-hub-signature-256")
            .and_then(|v| v.strip_prefix("sha256="))
            .is_some_and(|hex| hmac_matches(secret, body, hex)),
        Provider::Gitea => {
            header("x-gitea-signature").is_some_and(|hex| hmac_matches(secret, body, hex))
        }
    }
}

fn hmac_matches(secret: &str, body: &[u8], hex_signature: &str) -> bool {
    let Ok(signature) = hex::decode(hex_signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

#[cfg(test)]
mod tests;
