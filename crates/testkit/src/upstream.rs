//! A fixture GOPROXY server: serves a set of fixture modules in proxy layout
//! (`/<escaped path>/@v/list`, `…/@v/<v>.info|.mod|.zip`, `…/@latest`), optionally the test
//! checksum database under `/sumdb/<name>/` (the go command's proxied-database convention, spec
//! §6.2), with fault switches flipped at runtime and a log of every request path.
//!
//! Faults apply to every request (module and sumdb alike) in this order: delay, hang, 5xx; the
//! tampered-zip switch only changes the `.zip` body of the named module, and the rate limit
//! ([`FixtureUpstream::set_rate`]) only paces `.zip` bodies (sent with their Content-Length, in
//! timed chunks), with [`FixtureUpstream::zip_bytes_sent`] telling how far they got.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use strata_core::path::{unescape_path, unescape_version};
use strata_core::semver;
use tokio::sync::{Notify, oneshot};

use crate::modules::{BuiltModule, FixtureModule};
use crate::sumdb::TestSumDb;

/// How a tampered zip differs from the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// A valid zip with one content byte flipped: only the `h1:` check can catch it.
    Content,
    /// The real zip with one raw byte flipped (a corrupt archive).
    RawByte,
    /// The real zip with its first entry declaring 600 MiB of uncompressed data (local and
    /// central headers): a zip bomb's shape, which a checker must refuse before inflating.
    Bomb,
}

/// Runtime fault switches.
#[derive(Debug, Default, Clone)]
struct Faults {
    delay: Option<Duration>,
    status: Option<StatusCode>,
    hang: bool,
    tampered: BTreeMap<String, Tamper>,
    /// Bytes per second of `.zip` bodies.
    rate: Option<u64>,
}

/// How often a rate-limited body sends its next chunk.
const RATE_TICK: Duration = Duration::from_millis(50);

/// Shared state of the server.
#[derive(Debug)]
struct Inner {
    modules: BTreeMap<String, BTreeMap<String, BuiltModule>>,
    sumdb: Option<Arc<TestSumDb>>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<String>>,
    /// Wakes hung requests when the hang switch is turned off or the server stops.
    unhang: Notify,
    /// Bytes of `.zip` bodies handed to the connection so far.
    zip_bytes_sent: Arc<AtomicU64>,
}

/// A running fixture upstream; stops when dropped.
#[derive(Debug)]
pub struct FixtureUpstream {
    addr: SocketAddr,
    inner: Arc<Inner>,
    stop: Option<oneshot::Sender<()>>,
}

impl FixtureUpstream {
    /// Builds `modules`, and starts serving them on `127.0.0.1:0`. With `sumdb`, every module
    /// version is added to the database (unless already there) and the database is served under
    /// `/sumdb/<name>/`. Must be called within a Tokio runtime.
    pub async fn start(modules: &[FixtureModule], sumdb: Option<Arc<TestSumDb>>) -> Self {
        let built: Vec<BuiltModule> = modules.iter().map(FixtureModule::build).collect();
        Self::start_built(built, sumdb).await
    }

    /// Like [`FixtureUpstream::start`] with modules already built.
    pub async fn start_built(modules: Vec<BuiltModule>, sumdb: Option<Arc<TestSumDb>>) -> Self {
        let mut by_path: BTreeMap<String, BTreeMap<String, BuiltModule>> = BTreeMap::new();
        for m in modules {
            if let Some(db) = &sumdb {
                db.add_module(&m);
            }
            by_path
                .entry(m.path().to_owned())
                .or_default()
                .insert(m.version().to_owned(), m);
        }
        let inner = Arc::new(Inner {
            modules: by_path,
            sumdb,
            faults: Mutex::default(),
            log: Mutex::default(),
            unhang: Notify::new(),
            zip_bytes_sent: Arc::default(),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FixtureUpstream {
            addr,
            inner,
            stop: Some(stop),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The GOPROXY URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The mounted checksum database, if any.
    pub fn sumdb(&self) -> Option<&Arc<TestSumDb>> {
        self.inner.sumdb.as_ref()
    }

    /// The built module `path@version`, if served.
    pub fn module(&self, path: &str, version: &str) -> Option<&BuiltModule> {
        self.inner.modules.get(path)?.get(version)
    }

    /// Delays every response by `delay` (`None`: no delay).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.faults().delay = delay;
    }

    /// Answers every request with `status` (e.g. 503), or serves normally with `None`.
    pub fn set_fail_status(&self, status: Option<u16>) {
        self.faults().status =
            status.map(|s| StatusCode::from_u16(s).expect("valid HTTP status code"));
    }

    /// Makes every request hang without answering (the client must time out), or not. Turning
    /// it off lets requests still hanging proceed normally.
    pub fn set_hang(&self, hang: bool) {
        self.faults().hang = hang;
        if !hang {
            self.inner.unhang.notify_waiters();
        }
    }

    /// Serves a tampered zip for every version of module `path` (`None`: the real zip again).
    pub fn set_tampered(&self, path: &str, tamper: Option<Tamper>) {
        let mut f = self.faults();
        match tamper {
            Some(t) => f.tampered.insert(path.to_owned(), t),
            None => f.tampered.remove(path),
        };
    }

    /// Sends `.zip` bodies at about `bytes_per_second` (in chunks every 50 ms, after a
    /// Content-Length header), or at once with `None`. Applies to requests that arrive after
    /// the call.
    pub fn set_rate(&self, bytes_per_second: Option<u64>) {
        self.faults().rate = bytes_per_second.map(|r| r.max(1));
    }

    /// Bytes of `.zip` bodies sent so far: a rate-limited body counts as its chunks go out, any
    /// other as a whole when its response is made.
    pub fn zip_bytes_sent(&self) -> u64 {
        self.inner.zip_bytes_sent.load(Ordering::SeqCst)
    }

    /// Turns every fault off.
    pub fn clear_faults(&self) {
        *self.faults() = Faults::default();
        self.inner.unhang.notify_waiters();
    }

    /// Every request path received so far (percent-decoded, so `!`-escapes read as in
    /// `escape_path`), in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.inner.log.lock().unwrap().clone()
    }

    /// How many requests had exactly this path (e.g. `/example.com/a/@v/v1.0.0.zip`).
    pub fn request_count(&self, path: &str) -> usize {
        self.inner
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.inner.log.lock().unwrap().clear();
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.inner.faults.lock().unwrap()
    }
}

impl Drop for FixtureUpstream {
    fn drop(&mut self) {
        // Release hung requests so the graceful shutdown can finish.
        self.clear_faults();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The single handler: log, apply faults, then route by path.
async fn handle(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    // The go command URL-escapes the case-encoding's `!` as `%21`; route and log decoded paths.
    let Some(path) = strata_core::path::percent_decode_path(uri.path()).ok() else {
        return (StatusCode::BAD_REQUEST, "bad percent-encoding\n").into_response();
    };
    inner.log.lock().unwrap().push(path.clone());
    let faults = inner.faults.lock().unwrap().clone();
    if let Some(delay) = faults.delay {
        tokio::time::sleep(delay).await;
    }
    if faults.hang {
        loop {
            // Registered before the check, so a concurrent `set_hang(false)` is not missed.
            let unhung = inner.unhang.notified();
            if !inner.faults.lock().unwrap().hang {
                break;
            }
            unhung.await;
        }
    }
    if let Some(status) = faults.status {
        return (status, "fixture upstream: injected failure\n").into_response();
    }
    if let Some(rest) = path.strip_prefix("/sumdb/") {
        return match (&inner.sumdb, rest.split_once('/')) {
            (Some(db), Some((name, db_path))) if name == db.name() => db.respond(db_path),
            _ => not_found(),
        };
    }
    serve_module(&inner, &faults, &path)
}

/// `/<module>/@v/list`, `/<module>/@v/<v>.(info|mod|zip)`, `/<module>/@latest`.
fn serve_module(inner: &Inner, faults: &Faults, path: &str) -> Response {
    let path = path.trim_start_matches('/');
    if let Some(escaped) = path.strip_suffix("/@latest") {
        let Some(versions) = module_versions(inner, escaped) else {
            return not_found();
        };
        return match versions.keys().max_by(|a, b| semver::compare(a, b)) {
            Some(v) => json(versions[v].info.clone()),
            None => not_found(),
        };
    }
    let Some((escaped, file)) = path.split_once("/@v/") else {
        return not_found();
    };
    let Some(versions) = module_versions(inner, escaped) else {
        return not_found();
    };
    if file == "list" {
        let mut list: Vec<&String> = versions.keys().collect();
        list.sort_by(|a, b| semver::compare(a, b));
        let body: String = list.iter().map(|v| format!("{v}\n")).collect();
        return ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], body).into_response();
    }
    let Some((escaped_version, ext)) = file.rsplit_once('.') else {
        return not_found();
    };
    let Some(m) = unescape_version(escaped_version)
        .ok()
        .and_then(|v| versions.get(&v))
    else {
        return not_found();
    };
    match ext {
        "info" => json(m.info.clone()),
        "mod" => (
            [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
            m.go_mod.clone(),
        )
            .into_response(),
        "zip" => {
            let body = match faults.tampered.get(m.path()) {
                None => m.zip.clone(),
                Some(Tamper::Content) => m.tampered_zip.clone(),
                Some(Tamper::RawByte) => {
                    let mut zip = m.zip.clone();
                    let i = zip.len() / 2;
                    zip[i] ^= 0xff;
                    zip
                }
                Some(Tamper::Bomb) => declare_huge_first_entry(&m.zip),
            };
            let sent = inner.zip_bytes_sent.clone();
            match faults.rate {
                None => {
                    sent.fetch_add(body.len() as u64, Ordering::SeqCst);
                    ([(header::CONTENT_TYPE, "application/zip")], body).into_response()
                }
                Some(rate) => (
                    [
                        (header::CONTENT_TYPE, "application/zip".to_owned()),
                        (header::CONTENT_LENGTH, body.len().to_string()),
                    ],
                    throttled(body, rate, sent),
                )
                    .into_response(),
            }
        }
        _ => not_found(),
    }
}

/// `bytes` at about `rate` bytes per second: one chunk every [`RATE_TICK`], the first at once.
fn throttled(bytes: Vec<u8>, rate: u64, sent: Arc<AtomicU64>) -> Body {
    let per_tick = usize::try_from(rate / (1000 / RATE_TICK.as_millis() as u64))
        .unwrap_or(usize::MAX)
        .max(1);
    let chunks = futures::stream::unfold((bytes, 0usize), move |(bytes, pos)| {
        let sent = sent.clone();
        async move {
            if pos >= bytes.len() {
                return None;
            }
            if pos > 0 {
                tokio::time::sleep(RATE_TICK).await;
            }
            let end = (pos + per_tick).min(bytes.len());
            let chunk = bytes[pos..end].to_vec();
            sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            Some((Ok::<_, std::convert::Infallible>(chunk), (bytes, end)))
        }
    });
    Body::from_stream(chunks)
}

fn module_versions<'a>(
    inner: &'a Inner,
    escaped: &str,
) -> Option<&'a BTreeMap<String, BuiltModule>> {
    inner.modules.get(&unescape_path(escaped).ok()?)
}

fn json(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// `zip` with the first entry's uncompressed size set to 600 MiB in its local header
/// (`PK\x03\x04`, size at +22) and its central directory header (`PK\x01\x02`, size at +24).
fn declare_huge_first_entry(zip: &[u8]) -> Vec<u8> {
    const HUGE: u32 = 600 << 20;
    let mut out = zip.to_vec();
    let mut patch = |signature: &[u8; 4], offset: usize| {
        if let Some(at) = out.windows(4).position(|w| w == signature)
            && let Some(field) = out.get_mut(at + offset..at + offset + 4)
        {
            field.copy_from_slice(&HUGE.to_le_bytes());
        }
    };
    patch(b"PK\x03\x04", 22);
    patch(b"PK\x01\x02", 24);
    out
}
