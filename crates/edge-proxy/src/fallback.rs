//! [`Fallbacks`]: public GOPROXYs (e.g. `https://proxy.golang.org`) asked only when no registry
//! answers and nothing is cached, and only for module paths matching their `modules` globs.
//!
//! Their answers are passed through, not cached: the edge caches only what a registry vouched
//! for (its `h1:`), and the go command checks fallback bytes against the checksum database
//! itself. Private repositories should not list fallbacks whose globs cover their modules.

use std::time::Duration;

use strata_core::pattern::match_prefix_patterns;
use strata_core::protocol::ProxyRequest;

use crate::answer::{Answer, Body, Source};
use crate::cache::{EntryKind, Meta};
use crate::config::FallbackConfig;
use crate::error::EdgeError;

/// The configured fallbacks and an HTTP client for them.
#[derive(Debug, Clone)]
pub struct Fallbacks {
    entries: Vec<(String, String)>,
    client: reqwest::Client,
}

impl Fallbacks {
    /// Fallbacks from configuration; `timeout` bounds the wait for a response head.
    pub fn new(config: &[FallbackConfig], timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("fallback HTTP client: {e}"))?;
        Ok(Self {
            entries: config
                .iter()
                .map(|f| (f.url.trim_end_matches('/').to_owned(), f.modules.join(",")))
                .collect(),
            client,
        })
    }

    /// The HTTP client (shared with the checksum-database forward).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The first matching fallback's answer; `None` if none is configured for the module.
    pub async fn get(&self, request: &ProxyRequest) -> Option<Result<Answer, EdgeError>> {
        let module = request.module().as_str();
        let (url, _) = self
            .entries
            .iter()
            .find(|(_, globs)| match_prefix_patterns(globs, module))?;
        Some(self.fetch(url, request).await)
    }

    async fn fetch(&self, base: &str, request: &ProxyRequest) -> Result<Answer, EdgeError> {
        let url = format!("{base}/{}", request.path());
        let failed = |message: String, not_found: bool| EdgeError::Fallback {
            url: base.to_owned(),
            message,
            not_found,
        };
        let mut headers = reqwest::header::HeaderMap::new();
        strata_service::trace::inject_headers(&mut headers);
        let response = self
            .client
            .get(&url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| failed(e.to_string(), false))?;
        let status = response.status();
        if !status.is_success() {
            let not_found = status.as_u16() == 404 || status.as_u16() == 410;
            let text = response.text().await.unwrap_or_default();
            return Err(failed(format!("{status}: {}", text.trim()), not_found));
        }
        let kind = match request {
            ProxyRequest::List(_) => EntryKind::List,
            ProxyRequest::Mod(..) => EntryKind::Mod,
            ProxyRequest::Zip(..) => EntryKind::Zip,
            _ => EntryKind::Info,
        };
        if kind == EntryKind::Zip {
            let size = response.content_length().unwrap_or(0);
            let mut meta = Meta::of(kind, b"", None, Some(base.to_owned()));
            meta.size = size;
            meta.etag = String::new();
            return Ok(Answer {
                meta,
                body: Body::Stream(response),
                source: Source::Fallback,
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| failed(e.to_string(), false))?;
        Ok(Answer {
            meta: Meta::of(kind, &body, None, Some(base.to_owned())),
            body: Body::Bytes(body),
            source: Source::Fallback,
        })
    }
}
