//! A fixture index feed in the index.golang.org format: `GET /index?since=<RFC 3339>&limit=N`
//! answers the entries whose timestamp is at or after `since` (all without it), oldest first,
//! at most `limit`, as newline-delimited JSON; every request's `since` and `limit` are logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub version: String,
    /// RFC 3339 UTC with a fraction, e.g. `2025-01-01T00:00:01.000002Z`; entries are kept in
    /// this order (the fixture compares the text, which orders same-format UTC times).
    pub timestamp: String,
}

/// A request the feed received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub since: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Default)]
struct Inner {
    entries: Mutex<Vec<Entry>>,
    log: Mutex<Vec<Asked>>,
}

/// The running feed.
#[derive(Debug)]
pub struct FeedServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

async fn index(
    State(inner): State<Arc<Inner>>,
    Query(p): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    let Ok(limit) = p.get("limit").map_or(Ok(2000), |l| l.parse::<usize>()) else {
        return (StatusCode::BAD_REQUEST, "bad limit\n".into());
    };
    let since = p.get("since").cloned();
    inner.log.lock().unwrap().push(Asked {
        since: since.clone(),
        limit,
    });
    let entries = inner.entries.lock().unwrap();
    let mut body = String::new();
    for e in entries
        .iter()
        .filter(|e| since.as_deref().is_none_or(|s| e.timestamp.as_str() >= s))
        .take(limit)
    {
        body.push_str(
            &serde_json::json!({"Path": e.path, "Version": e.version, "Timestamp": e.timestamp})
                .to_string(),
        );
        body.push('\n');
    }
    (StatusCode::OK, body)
}

impl FeedServer {
    /// Serves on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/index", get(index))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, inner }
    }

    /// The feed's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Appends an entry (timestamps must not go backwards).
    pub fn push(&self, path: &str, version: &str, timestamp: &str) {
        let mut entries = self.inner.entries.lock().unwrap();
        assert!(
            entries
                .last()
                .is_none_or(|e| e.timestamp.as_str() <= timestamp),
            "feed entries must be in timestamp order"
        );
        entries.push(Entry {
            path: path.into(),
            version: version.into(),
            timestamp: timestamp.into(),
        });
    }

    /// Every request so far.
    pub fn asked(&self) -> Vec<Asked> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        self.inner.log.lock().unwrap().clear();
    }
}
