//! A registry killed with SIGKILL in the middle of a publish never exposes a partial version.
//!
//! The real `strata-registry` binary runs on fs storage in a temp directory. For each kill point
//! a ~60 MiB incompressible module zip is streamed to it from a file, the process is killed when
//! the publish reaches that point (seen from outside: the spooled upload's size, temp files of
//! the store, the stored blob, or a delay after the last byte was sent), and a new process is
//! started on the same data directory. Then `list` either lacks the version, or has it with a
//! zip that downloads whole with the expected h1 — and a version whose publish was answered 201
//! before the kill must be there. A final publish of the same version must be 201 if `list`
//! lacked it and 409 if it had it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use strata_core::dirhash::Hash1Builder;
use strata_core::version::ModuleVersion;
use support::config::{self, CI_TOKEN, Options, READ_TOKEN};
use support::http::bearer;
use support::zip::{MemFile, go_sum_hashes, zip_h1};
use tokio::task::JoinHandle;

const MODULE: &str = "example.com/crash/big";
const BIG_FILE: usize = 60 << 20;
const READY_DEADLINE: Duration = Duration::from_secs(30);
const PHASE_DEADLINE: Duration = Duration::from_secs(60);

/// Where in a publish the process is killed.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// Half of the body has reached the registry's spool file.
    MidUpload,
    /// The whole body is spooled: the zip is being validated.
    Spooled,
    /// A temp file appeared in the store: the zip blob is being written.
    StoringBlob,
    /// The zip blob is in place (the go.mod blob or the index may follow).
    BlobStored,
    /// The version is in the module's index: committed, the answer may not have been sent.
    IndexWritten,
    /// A fraction of the time a complete publish takes between the client sending the last
    /// byte and the answer (measured on a first, uninterrupted publish) after the last byte.
    AfterBodySent(f64),
}

/// One version's zip on disk and what it must hash to.
struct VersionZip {
    version: String,
    path: PathBuf,
    h1: String,
}

/// A registry process; killed when dropped.
struct Registry {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the registry");
        self.child.wait().expect("reap the registry");
    }
}

/// The layout of one test run.
struct Setup {
    dir: tempfile::TempDir,
    client: reqwest::Client,
    starts: usize,
}

impl Setup {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spool(&self, start: usize) -> PathBuf {
        self.dir.path().join(format!("spool-{start}"))
    }

    /// Starts the binary on the data directory, on a port picked here (bound on port 0, then
    /// released), with a spool directory of its own; ready once `/healthz` answers 200.
    async fn start(&mut self) -> Registry {
        for _attempt in 0..3 {
            self.starts += 1;
            let n = self.starts;
            let addr = free_port();
            let spool = self.spool(n);
            std::fs::create_dir_all(&spool).unwrap();
            let config = self.dir.path().join(format!("registry-{n}.toml"));
            std::fs::write(
                &config,
                config::local(&Options::default()).text(&self.data(), &spool, addr),
            )
            .unwrap();
            let log = self.dir.path().join(format!("registry-{n}.log"));
            let out = std::fs::File::create(&log).unwrap();
            let mut command = Command::new(env!("CARGO_BIN_EXE_strata-registry"));
            command.arg("--config").arg(&config);
            // Only the file configures it: no override from the test's environment, under
            // today's names or the deprecated ones.
            for (var, _) in std::env::vars() {
                let old = [
                    "STRATA_CONFIG",
                    "STRATA_HTTP_LISTEN",
                    "STRATA_GRPC_LISTEN",
                    "STRATA_REDIS_URL",
                    "STRATA_STORAGE_ROOT",
                ];
                if var.starts_with("STRATA_REGISTRY_") || old.contains(&var.as_str()) {
                    command.env_remove(var);
                }
            }
            let child = command
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("start strata-registry");
            let mut registry = Registry { child, addr, log };
            if wait_ready(&self.client, &mut registry).await {
                return registry;
            }
            // Lost the port to someone else between releasing and binding it: try another.
            eprintln!("registry did not start:\n{}", read(&registry.log));
        }
        panic!("strata-registry did not start in 3 attempts");
    }
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Polls `/healthz` until it answers 200 (true) or the process exits (false).
async fn wait_ready(client: &reqwest::Client, registry: &mut Registry) -> bool {
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        if let Ok(Some(status)) = registry.child.try_wait() {
            eprintln!("strata-registry exited with {status}");
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "strata-registry not ready after {READY_DEADLINE:?}:\n{}",
            read(&registry.log)
        );
        let probe = client
            .get(registry.url("/healthz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if probe.is_ok_and(|r| r.status() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Incompressible bytes from a fixed xorshift sequence.
fn noise(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes the zips of `versions` (all the same length, e.g. `v1.0.1`…`v1.0.9`) into `dir`.
///
/// Deflating 60 MiB once is the slow part, so the first version's zip is the template and the
/// others are copies with the `module@version/` prefix rewritten in the entry names (same
/// length, so no offset moves; names are not covered by any checksum).
fn write_zips(dir: &Path, versions: &[&str]) -> Vec<VersionZip> {
    let go_mod = format!("module {MODULE}\n\ngo 1.21\n").into_bytes();
    let big = noise(BIG_FILE);
    let digests = [
        ("big.bin", <[u8; 32]>::from(Sha256::digest(&big))),
        ("go.mod", <[u8; 32]>::from(Sha256::digest(&go_mod))),
    ];
    let files = vec![
        MemFile {
            name: "go.mod".into(),
            data: go_mod,
        },
        MemFile {
            name: "big.bin".into(),
            data: big,
        },
    ];
    let template_version = versions[0];
    let mut template = Vec::with_capacity(BIG_FILE + (1 << 20));
    let created = strata_core::zip::create(
        &mut template,
        &ModuleVersion::new(MODULE, template_version),
        &files,
    )
    .expect("create the template zip");
    assert!(template.len() > BIG_FILE, "the zip is incompressible");
    let from = format!("{MODULE}@{template_version}/");
    versions
        .iter()
        .map(|version| {
            let to = format!("{MODULE}@{version}/");
            assert_eq!(from.len(), to.len(), "versions must have the same length");
            let mut zip = template.clone();
            // Two entries: each name is in a local header near the start of its entry and in
            // the central directory at the end; go.mod is tiny, so all four are near the ends.
            let edge = 64 << 10;
            let len = zip.len();
            let mut replaced = 0;
            for region in [0..edge, len - edge..len] {
                let mut i = region.start;
                while i + from.len() <= region.end {
                    if zip[i..i + from.len()] == *from.as_bytes() {
                        zip[i..i + to.len()].copy_from_slice(to.as_bytes());
                        replaced += 1;
                        i += from.len();
                    } else {
                        i += 1;
                    }
                }
            }
            assert_eq!(replaced, 4, "entry names rewritten for {version}");
            let mut h1 = Hash1Builder::new();
            for (name, digest) in &digests {
                h1.add(format!("{to}{name}"), *digest);
            }
            let h1 = h1.finish().unwrap();
            if *version == template_version {
                assert_eq!(h1, created.hash);
            }
            let path = dir.join(format!("{version}.zip"));
            std::fs::write(&path, &zip).unwrap();
            VersionZip {
                version: (*version).to_owned(),
                path,
                h1,
            }
        })
        .collect()
}

/// Streams the zip file as the body of `PUT /api/repos/private/upload`, counting bytes handed
/// to the connection in `sent`. Yields the status and body, or the transport error.
fn start_publish(
    client: &reqwest::Client,
    registry: &Registry,
    zip: &Path,
    sent: Arc<AtomicU64>,
) -> JoinHandle<Result<(u16, String), String>> {
    let client = client.clone();
    let url = registry.url("/api/repos/private/upload");
    let zip = zip.to_owned();
    tokio::spawn(async move {
        let file = tokio::fs::File::open(&zip)
            .await
            .map_err(|e| e.to_string())?;
        let stream =
            tokio_util::io::ReaderStream::with_capacity(file, 256 << 10).inspect_ok(move |chunk| {
                sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            });
        let response = client
            .put(url)
            .header("authorization", bearer(CI_TOKEN))
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    })
}

/// Files (recursively) under `dir`, with sizes.
fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.metadata() {
            Ok(m) if m.is_dir() => out.extend(files_under(&path)),
            Ok(m) => out.push((path, m.len())),
            Err(_) => {}
        }
    }
    out
}

/// What is known about a publish in progress, to judge whether it reached a kill point.
struct Watch<'a> {
    setup: &'a Setup,
    zip: &'a VersionZip,
    zip_size: u64,
    /// The spool directory of the running process.
    spool: PathBuf,
    /// The store's temp files from before this publish (left by earlier kills).
    tmp_before: Vec<(PathBuf, u64)>,
    /// When the client handed over the last byte.
    body_sent_at: Option<Instant>,
    /// How long an uninterrupted publish takes from the last byte to the answer.
    processing: Duration,
}

impl Watch<'_> {
    /// Whether the publish has reached `point`, judged from the files the registry writes.
    fn reached(&self, point: KillPoint) -> bool {
        let data = self.setup.data();
        let spooled = files_under(&self.spool).iter().map(|(_, size)| *size).max();
        match point {
            KillPoint::MidUpload => spooled.is_some_and(|s| s >= self.zip_size / 2),
            KillPoint::Spooled => spooled.is_some_and(|s| s >= self.zip_size),
            KillPoint::StoringBlob => files_under(&data.join("tmp"))
                .iter()
                .any(|f| !self.tmp_before.iter().any(|b| b.0 == f.0)),
            KillPoint::BlobStored => {
                let blobs = data
                    .join("objects/repos/private/blobs")
                    .join(MODULE)
                    .join("@v")
                    .join(&self.zip.version);
                files_under(&blobs)
                    .iter()
                    .any(|(p, _)| p.extension().is_some_and(|e| e == "zip"))
            }
            KillPoint::IndexWritten => {
                let index = data
                    .join("objects/repos/private/index")
                    .join(MODULE)
                    .join("@index.json");
                let needle = format!("\"{}\"", self.zip.version);
                std::fs::read(index)
                    .is_ok_and(|d| d.windows(needle.len()).any(|w| w == needle.as_bytes()))
            }
            KillPoint::AfterBodySent(fraction) => self
                .body_sent_at
                .is_some_and(|t| t.elapsed() >= self.processing.mul_f64(fraction)),
        }
    }
}

/// What the restarted registry serves for `zip`'s version: `true` if listed (after checking
/// that the whole zip downloads with the expected bytes and h1), `false` if not (after checking
/// that none of its files is served).
async fn check_version(client: &reqwest::Client, registry: &Registry, zip: &VersionZip) -> bool {
    let auth = bearer(READ_TOKEN);
    let get = |path: String| {
        client
            .get(registry.url(&format!("/go/private/{MODULE}/@v/{path}")))
            .header("authorization", &auth)
            .send()
    };
    let list = get("list".into()).await.unwrap();
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    let listed = list.lines().any(|v| v == zip.version);
    let version = &zip.version;
    if listed {
        let r = get(format!("{version}.zip")).await.unwrap();
        assert_eq!(r.status(), 200, "{version}.zip of a listed version");
        let body = r.bytes().await.expect("the whole zip downloads");
        let want = std::fs::read(&zip.path).unwrap();
        assert_eq!(body.len(), want.len(), "{version}.zip size");
        assert!(body == want, "{version}.zip bytes");
        assert_eq!(zip_h1(&body), zip.h1, "{version}.zip h1");
        let r = get(format!("{version}.mod")).await.unwrap();
        assert_eq!(r.status(), 200, "{version}.mod of a listed version");
        assert_eq!(
            r.text().await.unwrap(),
            format!("module {MODULE}\n\ngo 1.21\n")
        );
        let r = get(format!("{version}.info")).await.unwrap();
        assert_eq!(r.status(), 200, "{version}.info of a listed version");
    } else {
        for file in ["info", "mod", "zip"] {
            let r = get(format!("{version}.{file}")).await.unwrap();
            assert_eq!(r.status(), 404, "{version}.{file} of an unlisted version");
        }
    }
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_publish_never_exposes_a_partial_version() {
    let started = Instant::now();
    let points = [
        KillPoint::MidUpload,
        KillPoint::Spooled,
        KillPoint::StoringBlob,
        KillPoint::BlobStored,
        KillPoint::IndexWritten,
        KillPoint::AfterBodySent(0.0),
        KillPoint::AfterBodySent(0.3),
        KillPoint::AfterBodySent(0.6),
        KillPoint::AfterBodySent(0.9),
    ];
    // v1.0.0 is published without interruption first, to measure how long processing takes.
    let versions: Vec<String> = (0..=points.len()).map(|i| format!("v1.0.{i}")).collect();
    let version_refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    let mut setup = Setup {
        dir: tempfile::tempdir().unwrap(),
        client: support::http::client(),
        starts: 0,
    };
    let zips_dir = setup.dir.path().join("zips");
    std::fs::create_dir_all(&zips_dir).unwrap();
    let zips = write_zips(&zips_dir, &version_refs);
    eprintln!("zips written in {:?}", started.elapsed());

    let mut registry = setup.start().await;
    let processing = {
        let zip = &zips[0];
        let zip_size = std::fs::metadata(&zip.path).unwrap().len();
        let sent = Arc::new(AtomicU64::new(0));
        let publish = start_publish(&setup.client, &registry, &zip.path, sent.clone());
        let deadline = Instant::now() + PHASE_DEADLINE;
        let mut body_sent_at = None;
        while !publish.is_finished() {
            if body_sent_at.is_none() && sent.load(Ordering::SeqCst) >= zip_size {
                body_sent_at = Some(Instant::now());
            }
            assert!(Instant::now() < deadline, "first publish took too long");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (status, body) = publish.await.unwrap().expect("first publish");
        assert_eq!(status, 201, "first publish: {body}");
        assert_eq!(go_sum_hashes(&body).0, zip.h1);
        body_sent_at.map_or(Duration::ZERO, |t| t.elapsed())
    };
    eprintln!("an uninterrupted publish takes {processing:?} after the last byte");

    for (point, zip) in points.iter().zip(&zips[1..]) {
        let sent = Arc::new(AtomicU64::new(0));
        let mut watch = Watch {
            setup: &setup,
            zip,
            zip_size: std::fs::metadata(&zip.path).unwrap().len(),
            spool: setup.spool(setup.starts),
            tmp_before: files_under(&setup.data().join("tmp")),
            body_sent_at: None,
            processing,
        };
        let publish = start_publish(&setup.client, &registry, &zip.path, sent.clone());

        // Wait for the kill point (polling the files; a deadline, no fixed sleeps).
        let deadline = Instant::now() + PHASE_DEADLINE;
        let mut finished_first = false;
        loop {
            if watch.body_sent_at.is_none() && sent.load(Ordering::SeqCst) >= watch.zip_size {
                watch.body_sent_at = Some(Instant::now());
            }
            if watch.reached(*point) {
                break;
            }
            if publish.is_finished() {
                finished_first = true;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{point:?} not reached in {PHASE_DEADLINE:?}; log:\n{}",
                read(&registry.log)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        registry.kill();
        let outcome = publish.await.expect("publish task");
        let acknowledged = matches!(outcome, Ok((201, _)));
        if let Ok((status, body)) = &outcome {
            assert!(
                *status == 201,
                "{point:?}: publish answered {status} before the kill: {body}"
            );
        }

        registry = setup.start().await;
        let listed = check_version(&setup.client, &registry, zip).await;
        eprintln!(
            "{point:?} ({}): {} bytes sent, client {}, after restart {}",
            zip.version,
            sent.load(Ordering::SeqCst),
            match (&outcome, finished_first) {
                (Ok((status, _)), true) => format!("got {status} before the kill point"),
                (Ok((status, _)), false) => format!("got {status}"),
                (Err(_), _) => "saw the connection die".to_owned(),
            },
            if listed { "listed" } else { "not listed" },
        );
        assert!(
            listed || !acknowledged,
            "{point:?}: {} was acknowledged with 201 before the kill but is gone after restart",
            zip.version
        );

        // A final publish agrees with what `list` showed.
        let final_publish = start_publish(
            &setup.client,
            &registry,
            &zip.path,
            Arc::new(AtomicU64::new(0)),
        );
        let (status, body) = final_publish
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("final publish of {}: {e}", zip.version));
        if listed {
            assert_eq!(
                status, 409,
                "{point:?}: re-publishing a listed version: {body}"
            );
        } else {
            assert_eq!(
                status, 201,
                "{point:?}: publishing an unlisted version: {body}"
            );
            assert_eq!(go_sum_hashes(&body).0, zip.h1);
            assert!(check_version(&setup.client, &registry, zip).await);
        }
    }

    // Crashes leave garbage behind (spooled bodies, store temp files), never visible versions.
    let spool_left: usize = (1..=setup.starts)
        .map(|n| files_under(&setup.spool(n)).len())
        .sum();
    let tmp_left = files_under(&setup.data().join("tmp")).len();
    eprintln!(
        "after {} kills: {spool_left} spooled upload(s) and {tmp_left} store temp file(s) left; \
         {:?} in all",
        points.len(),
        started.elapsed()
    );
    let r = setup
        .client
        .get(registry.url(&format!("/go/private/{MODULE}/@v/list")))
        .header("authorization", bearer(READ_TOKEN))
        .send()
        .await
        .unwrap();
    let listed: Vec<String> = r.text().await.unwrap().lines().map(str::to_owned).collect();
    assert_eq!(listed, versions, "every version is published in the end");
    registry.kill();
}
