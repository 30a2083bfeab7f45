//! What a verified webhook body says: a created tag (and the module version it publishes), or
//! why it is ignored. Each provider's payload shape is read here.

use axum::http::HeaderMap;
use serde_json::Value;
use strata_core::path::ModulePath;
use strata_core::version::Version;

use super::{Provider, WebhookConfig};

/// The all-zero commit id a push reports for a ref that did not exist, or no longer does.
pub(super) const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// A tag push, as every provider describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPush {
    /// The tag, without `refs/tags/`.
    pub tag: String,
    /// The repository's web URL.
    pub web_url: String,
}

/// What a verified body asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new tag.
    Tag(TagPush),
    /// Anything else, with why it is ignored.
    Ignored(String),
}

/// Reads a verified body: a created tag, or why it is ignored; `Err` when the body is not JSON
/// of the expected shape.
pub fn parse_event(provider: Provider, headers: &HeaderMap, body: &[u8]) -> Result<Event, String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let event_header = match provider {
        Provider::Github => header("x-github-event"),
        Provider::Gitea => header("x-gitea-event"),
        Provider::Gitlab => header("x-gitlab-event"),
    };
    if provider == Provider::Github && event_header == Some("ping") {
        return Ok(Event::Ignored("ping".into()));
    }
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    if !json.is_object() {
        return Err("the body is not a JSON object".into());
    }
    let str_at = |pointer: &str| json.pointer(pointer).and_then(Value::as_str);
    let web_url = |pointers: &[&str]| -> Result<String, String> {
        pointers
            .iter()
            .find_map(|p| str_at(p))
            .map(str::to_owned)
            .ok_or_else(|| format!("the body has no {}", pointers.join(" or ")))
    };
    match provider {
        Provider::Github | Provider::Gitea => {
            if let Some(event) = event_header
                && event != "push"
                && !(provider == Provider::Gitea && event == "create")
            {
                return Ok(Event::Ignored(format!("a {event} event")));
            }
            // Gitea's `create` event names the ref bare, with its type.
            if str_at("/ref_type").is_some() {
                if str_at("/ref_type") != Some("tag") {
                    return Ok(Event::Ignored("not a tag".into()));
                }
                let tag = str_at("/ref").ok_or("the body has no ref")?;
                return Ok(Event::Tag(TagPush {
                    tag: tag.to_owned(),
                    web_url: web_url(&["/repository/html_url"])?,
                }));
            }
            let reference = str_at("/ref").ok_or("the body has no ref")?;
            let Some(tag) = reference.strip_prefix("refs/tags/") else {
                return Ok(Event::Ignored("not a tag push".into()));
            };
            let deleted = json.pointer("/deleted").and_then(Value::as_bool) == Some(true)
                || str_at("/after") == Some(ZERO_SHA);
            if deleted {
                return Ok(Event::Ignored("a tag was deleted".into()));
            }
            let created = match json.pointer("/created").and_then(Value::as_bool) {
                Some(created) => created,
                None => str_at("/before").is_none_or(|b| b == ZERO_SHA),
            };
            if !created {
                return Ok(Event::Ignored("an existing tag was moved".into()));
            }
            Ok(Event::Tag(TagPush {
                tag: tag.to_owned(),
                web_url: web_url(&["/repository/html_url"])?,
            }))
        }
        Provider::Gitlab => {
            if str_at("/object_kind") != Some("tag_push") {
                return Ok(Event::Ignored("not a tag push".into()));
            }
            let reference = str_at("/ref").ok_or("the body has no ref")?;
            let Some(tag) = reference.strip_prefix("refs/tags/") else {
                return Ok(Event::Ignored("not a tag push".into()));
            };
            if str_at("/after").is_none_or(|a| a == ZERO_SHA) {
                return Ok(Event::Ignored("a tag was deleted".into()));
            }
            Ok(Event::Tag(TagPush {
                tag: tag.to_owned(),
                web_url: web_url(&["/project/web_url", "/repository/homepage"])?,
            }))
        }
    }
}

/// The module version a tag of `push`'s repository publishes, or why it publishes none.
pub fn module_version(
    hook: &WebhookConfig,
    push: &TagPush,
) -> Result<(ModulePath, Version), String> {
    let (dir, tag) = match push.tag.rsplit_once('/') {
        Some((dir, tag)) => (Some(dir), tag),
        None => (None, push.tag.as_str()),
    };
    let version = match Version::new(tag) {
        Ok(v) if !v.is_incompatible() => v,
        _ => return Err("not a module version".into()),
    };
    let mut path = repository_path(hook, &push.web_url)?;
    if let Some(dir) = dir {
        path = format!("{path}/{dir}");
    }
    let major = strata_core::semver::major(version.as_str());
    if major != "v0" && major != "v1" {
        path = format!("{path}/{major}");
    }
    strata_core::version::check(&path, version.as_str())
        .map_err(|e| format!("not a module version: {e}"))?;
    let module = ModulePath::new(&path).map_err(|e| format!("not a module version: {e}"))?;
    Ok((module, version))
}

/// The module path of a repository's web URL: its host and path, or with `url_prefix` (default:
/// scheme and host) replaced by `module_prefix`. A `.git` suffix is dropped.
fn repository_path(hook: &WebhookConfig, web_url: &str) -> Result<String, String> {
    let bare = |text: &str| -> Result<String, String> {
        let mut url =
            reqwest::Url::parse(text).map_err(|e| format!("repository URL {text:?}: {e}"))?;
        url.set_query(None);
        url.set_fragment(None);
        let full = url.as_str().trim_end_matches('/');
        Ok(full.strip_suffix(".git").unwrap_or(full).to_owned())
    };
    let url =
        reqwest::Url::parse(web_url).map_err(|e| format!("repository URL {web_url:?}: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("repository URL {web_url:?} has no host"))?;
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    match (&hook.url_prefix, &hook.module_prefix) {
        (Some(prefix), Some(module)) => {
            let full = bare(web_url)?;
            let prefix = bare(prefix)?;
            let rest = full
                .strip_prefix(&prefix)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .ok_or_else(|| {
                    format!("repository URL {web_url:?} is not under url_prefix {prefix:?}")
                })?;
            Ok(format!("{}{rest}", module.trim_end_matches('/')))
        }
        (None, Some(module)) => Ok(format!("{}{path}", module.trim_end_matches('/'))),
        (_, None) => Ok(format!("{host}{path}")),
    }
}
