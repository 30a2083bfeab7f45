//! The fs backend across processes: compare-and-swap writers in several processes sharing one
//! root lose no update, and a writer killed with SIGKILL mid-write leaves no object behind.
//!
//! The other processes are this test binary re-run with a filter and an environment variable
//! naming the role; without the variable, the role tests return at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{self, BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use bytes::Bytes;
use futures::{StreamExt, future::join_all, stream};
use strata_central_registry::storage::{
    ObjectKey, ObjectStore, body_from_bytes, fs::FsStore, read_body,
};

const ROLE_ROOT: &str = "STRATA_TEST_FS_ROOT";
const CHILDREN: usize = 4;
const TASKS_PER_PROCESS: usize = 4;
const INCREMENTS_PER_TASK: usize = 20;

fn counter_key() -> ObjectKey {
    ObjectKey::new("shared/counter").unwrap()
}

fn spawn_role(role: &str, root: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", role, "--nocapture", "--test-threads", "1"])
        .env(ROLE_ROOT, root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Increments the shared counter `TASKS_PER_PROCESS × INCREMENTS_PER_TASK` times.
async fn increment_counter(store: FsStore) {
    let tasks = (0..TASKS_PER_PROCESS).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..INCREMENTS_PER_TASK {
                loop {
                    let current = store.get(&counter_key()).await.unwrap();
                    let etag = current.meta.etag.clone();
                    let body = read_body(current.body, 64).await.unwrap();
                    let value: u64 = std::str::from_utf8(&body).unwrap().parse().unwrap();
                    let next = body_from_bytes((value + 1).to_string());
                    match store.put_if_match(&counter_key(), &etag, next).await {
                        Ok(_) => break,
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => panic!("cas failed: {e}"),
                    }
                }
            }
        })
    });
    for task in join_all(tasks).await {
        task.unwrap();
    }
}

/// Role: a child process incrementing the counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_cas_child() {
    let Some(root) = std::env::var_os(ROLE_ROOT) else {
        return;
    };
    increment_counter(FsStore::open(root).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_across_processes_loses_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    store
        .put(&counter_key(), body_from_bytes("0"))
        .await
        .unwrap();
    let children: Vec<Child> = (0..CHILDREN)
        .map(|_| spawn_role("role_cas_child", dir.path()))
        .collect();
    increment_counter(store.clone()).await;
    for mut child in children {
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "child failed: {status}");
    }
    let got = store.get(&counter_key()).await.unwrap();
    let value = read_body(got.body, 64).await.unwrap();
    let expected = (CHILDREN + 1) * TASKS_PER_PROCESS * INCREMENTS_PER_TASK;
    assert_eq!(value, expected.to_string(), "lost updates across processes");
}

/// Role: a writer that streams 3 MiB, says `STALLED` on stdout, and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_stalled_writer() {
    let Some(root) = std::env::var_os(ROLE_ROOT) else {
        return;
    };
    let store = FsStore::open(root).unwrap();
    let content = stream::iter((0..48).map(|_| Ok::<_, io::Error>(Bytes::from(vec![7u8; 65536]))));
    let stall = stream::once(async {
        let mut stdout = io::stdout();
        writeln!(stdout, "STALLED").unwrap();
        stdout.flush().unwrap();
        futures::future::pending::<io::Result<Bytes>>().await
    });
    let key = ObjectKey::new("crash/object").unwrap();
    let _ = store
        .put_if_absent(&key, content.chain(stall).boxed())
        .await;
    unreachable!("the stalled write never finishes");
}

/// Kills the child when dropped, so a failing test leaves no process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_killed_mid_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).unwrap();
    let mut child = KillOnDrop(spawn_role("role_stalled_writer", dir.path()));
    // A plain thread, not the blocking pool: the runtime must not wait for it on shutdown.
    // libtest prints `test role_stalled_writer ... ` before the role's own output, hence
    // `ends_with`.
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let stalled = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.ends_with("STALLED"));
        let _ = tx.send(stalled);
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(60)),
        Ok(true),
        "writer never stalled"
    );
    // SIGKILL: no destructor runs in the child, its temp file stays behind.
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let key = ObjectKey::new("crash/object").unwrap();
    assert!(
        store.head(&key).await.unwrap_err().is_not_found(),
        "partial object visible"
    );
    assert_eq!(
        store.remove_stale_temp_files(Duration::ZERO).await.unwrap(),
        1
    );
    store
        .put_if_absent(&key, body_from_bytes("whole"))
        .await
        .unwrap();
    assert_eq!(store.head(&key).await.unwrap().size, 5);
}
