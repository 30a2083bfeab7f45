#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::Mutex;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use strata_registry_engine::storage::fs::FsStore;

use std::time::SystemTime;

use strata_registry_engine::keys::RepoName;

use super::entry::FeedTime;
use super::*;
use crate::runtime::handler::JobContext;
use crate::runtime::queue::Broker;
use crate::runtime::queue::memory::{MemoryQueue, MemoryQueueSettings};

/// A feed that serves `lines` (entries in order, raw text) honouring `since` (inclusive) and
/// `limit`, and records each request's `since`.
#[derive(Default)]
struct Fixture {
    lines: Mutex<Vec<(String, String)>>,
    asked: Mutex<Vec<Option<String>>>,
}

impl Fixture {
    fn push(&self, path: &str, version: &str, at: &str) {
        let line = format!(r#"{{"Path":"{path}","Version":"{version}","Timestamp":"{at}"}}"#);
        self.lines.lock().unwrap().push((at.to_owned(), line));
    }

    fn push_raw(&self, at: &str, line: &str) {
        self.lines
            .lock()
            .unwrap()
            .push((at.to_owned(), line.to_owned()));
    }
}

#[derive(serde::Deserialize)]
struct Params {
    since: Option<String>,
    limit: usize,
}

async fn index(State(fixture): State<Arc<Fixture>>, Query(p): Query<Params>) -> String {
    fixture.asked.lock().unwrap().push(p.since.clone());
    let since = p.since.map(|s| FeedTime::parse(&s).unwrap());
    let lines = fixture.lines.lock().unwrap();
    let mut out = String::new();
    for (at, line) in lines
        .iter()
        .filter(|(at, _)| since.is_none_or(|s| FeedTime::parse(at).unwrap() >= s))
        .take(p.limit)
    {
        let _ = at;
        out.push_str(line);
        out.push('\n');
    }
    out
}

struct Setup {
    fixture: Arc<Fixture>,
    follower: IndexFollower,
    queue: Arc<MemoryQueue>,
    store: Arc<dyn ObjectStore>,
    _dir: tempfile::TempDir,
}

async fn setup(limit: usize, include: &[&str], exclude: &[&str]) -> Setup {
    let fixture = Arc::new(Fixture::default());
    let app = Router::new()
        .route("/feed/index", get(index))
        .with_state(fixture.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.path()).unwrap());
    let queue = Arc::new(MemoryQueue::new(MemoryQueueSettings::default()));
    let config = FeedConfig {
        name: "test".into(),
        url: format!("http://{addr}/feed/"),
        repository: RepoName::new("gocache").unwrap(),
        include: include.iter().map(|s| (*s).to_owned()).collect(),
        exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
        limit,
        poll_interval_ms: 60_000,
        start: None,
        timeout_ms: 10_000,
    };
    let follower =
        IndexFollower::with_store(&[config], store.clone(), queue.clone(), |_| Ok(())).unwrap();
    Setup {
        fixture,
        follower,
        queue,
        store,
        _dir: dir,
    }
}

fn context() -> JobContext {
    JobContext {
        id: crate::runtime::envelope::JobId::generate(),
        key: "k".into(),
        delivery: 1,
        max_deliveries: 3,
        enqueued_at: SystemTime::now(),
        last_error: None,
        shutdown: CancellationToken::new(),
    }
}

impl Setup {
    async fn poll(&self) -> Result<Outcome, JobError> {
        let job = Job::IndexPoll {
            feed: "test".into(),
        };
        self.follower.run(&job, &context()).await
    }

    /// Takes every waiting job: `(key, job)`.
    async fn drain(&self) -> Vec<(String, Job)> {
        let token = CancellationToken::new();
        let mut out = Vec::new();
        loop {
            if self.queue.stats().await.unwrap().waiting == 0 {
                return out;
            }
            for delivery in self.queue.receive(100, &token).await.unwrap() {
                let envelope = delivery.envelope.clone().unwrap();
                out.push((envelope.key.clone(), envelope.job.clone()));
                self.queue
                    .settle(&delivery, crate::runtime::queue::Settlement::Skip)
                    .await
                    .unwrap();
            }
        }
    }

    async fn cursor(&self) -> Cursor {
        CursorStore::new(self.store.clone(), "test")
            .unwrap()
            .load()
            .await
            .unwrap()
            .0
    }

    fn asked(&self) -> Vec<Option<String>> {
        self.fixture.asked.lock().unwrap().clone()
    }

    fn count(&self, result: &'static str) -> u64 {
        self.follower
            .metrics
            .entries
            .get_or_create(&EntryLabels {
                feed: "test".into(),
                result,
            })
            .get()
    }
}

fn prefetched(jobs: &[(String, Job)]) -> Vec<String> {
    jobs.iter()
        .filter_map(|(key, job)| match job {
            Job::Prefetch { .. } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn new_versions_are_prefetched_and_the_cursor_resumes_after_them() {
    let s = setup(100, &[], &[]).await;
    s.fixture
        .push("example.com/a", "v1.0.0", "2025-01-01T00:00:01.000001Z");
    s.fixture
        .push("example.com/b", "v0.1.0", "2025-01-01T00:00:02.5Z");
    s.fixture
        .push("example.com/c", "v1.1.0", "2025-01-01T00:00:02.5Z");
    let outcome = s.poll().await.unwrap();
    assert!(
        outcome.detail.unwrap().starts_with("3 lines: 3 enqueued"),
        "first page"
    );
    assert_eq!(
        prefetched(&s.drain().await),
        [
            "prefetch/gocache/example.com/a@v1.0.0",
            "prefetch/gocache/example.com/b@v0.1.0",
            "prefetch/gocache/example.com/c@v1.1.0"
        ]
    );
    let cursor = s.cursor().await;
    assert_eq!(cursor.since.as_deref(), Some("2025-01-01T00:00:02.5Z"));
    assert_eq!(
        cursor.seen.iter().collect::<Vec<_>>(),
        ["example.com/b@v0.1.0", "example.com/c@v1.1.0"],
        "both entries at the last timestamp"
    );
    assert_eq!(cursor.entries, 3);

    // The feed repeats the entries at `since`; only the new one is enqueued.
    s.fixture
        .push("example.com/d", "v1.0.0", "2025-01-01T00:00:02.5Z");
    s.fixture
        .push("example.com/e", "v1.0.0", "2025-01-01T00:00:03Z");
    let outcome = s.poll().await.unwrap();
    assert!(
        outcome
            .detail
            .unwrap()
            .starts_with("4 lines: 2 enqueued, 0 filtered, 2 duplicate"),
    );
    assert_eq!(
        prefetched(&s.drain().await),
        [
            "prefetch/gocache/example.com/d@v1.0.0",
            "prefetch/gocache/example.com/e@v1.0.0"
        ]
    );
    assert_eq!(
        s.asked(),
        [None, Some("2025-01-01T00:00:02.5Z".to_owned())],
        "the second request started at the saved cursor, as the feed wrote it"
    );
    assert_eq!(s.cursor().await.entries, 5);
    assert_eq!(s.count("enqueued"), 5);
    assert_eq!(s.count("duplicate"), 2);
    let lag = s
        .follower
        .metrics
        .lag
        .get_or_create(&FeedLabels {
            feed: "test".into(),
        })
        .get();
    assert!(lag > 1e7, "2025-01-01 is long ago: {lag}");

    // Nothing new: nothing enqueued, the cursor stays.
    let before = s.cursor().await;
    s.poll().await.unwrap();
    assert!(s.drain().await.is_empty());
    assert_eq!(s.cursor().await, before);
}

#[tokio::test]
async fn bad_lines_are_skipped_and_patterns_filter() {
    let s = setup(
        100,
        &["example.com/keep/*,example.com/also"],
        &["example.com/keep/not"],
    )
    .await;
    s.fixture
        .push("example.com/keep/x", "v1.0.0", "2025-02-01T00:00:01Z");
    s.fixture.push_raw("2025-02-01T00:00:02Z", "{not json");
    s.fixture.push_raw(
        "2025-02-01T00:00:03Z",
        r#"{"Path":"example.com/m","Version":"v2.0.0","Timestamp":"2025-02-01T00:00:03Z"}"#,
    );
    s.fixture
        .push("example.com/keep/not", "v1.0.0", "2025-02-01T00:00:04Z");
    s.fixture
        .push("example.com/other", "v1.0.0", "2025-02-01T00:00:05Z");
    s.fixture
        .push("example.com/also", "v1.2.0", "2025-02-01T00:00:06Z");
    let detail = s.poll().await.unwrap().detail.unwrap();
    assert!(
        detail.starts_with("6 lines: 2 enqueued, 2 filtered, 0 duplicate, 2 invalid"),
        "{detail}"
    );
    assert_eq!(
        prefetched(&s.drain().await),
        [
            "prefetch/gocache/example.com/keep/x@v1.0.0",
            "prefetch/gocache/example.com/also@v1.2.0"
        ]
    );
    let cursor = s.cursor().await;
    assert_eq!(
        cursor.since.as_deref(),
        Some("2025-02-01T00:00:06Z"),
        "filtered entries move the cursor too"
    );
    assert_eq!(cursor.entries, 4, "invalid lines are not entries");
    assert_eq!(s.count("invalid"), 2);
    assert_eq!(s.count("filtered"), 2);
}

#[tokio::test]
async fn a_full_page_enqueues_the_next_page_at_once() {
    let s = setup(2, &[], &[]).await;
    for (i, at) in ["01", "02", "03"].iter().enumerate() {
        s.fixture.push(
            &format!("example.com/m{i}"),
            "v1.0.0",
            &format!("2025-03-01T00:00:{at}Z"),
        );
    }
    let detail = s.poll().await.unwrap().detail.unwrap();
    assert!(detail.ends_with("next page enqueued"), "{detail}");
    let jobs = s.drain().await;
    assert_eq!(prefetched(&jobs).len(), 2);
    let next: Vec<&String> = jobs
        .iter()
        .filter(|(_, job)| matches!(job, Job::IndexPoll { .. }))
        .map(|(key, _)| key)
        .collect();
    assert_eq!(next, ["index_poll/test/after/2025-03-01T00:00:02Z/2"]);
    // The next page: the entry at `since` again and the third one. Full again, so one more
    // page is asked for; that one brings only the repeat and ends the chain.
    let detail = s.poll().await.unwrap().detail.unwrap();
    assert!(
        detail.starts_with("2 lines: 1 enqueued, 0 filtered, 1 duplicate"),
        "{detail}"
    );
    let jobs = s.drain().await;
    assert_eq!(
        prefetched(&jobs),
        ["prefetch/gocache/example.com/m2@v1.0.0"]
    );
    assert_eq!(jobs.len(), 2, "the prefetch and the next poll: {jobs:?}");
    let detail = s.poll().await.unwrap().detail.unwrap();
    assert!(detail.starts_with("1 lines: 0 enqueued"), "{detail}");
    assert!(!detail.contains("next page"), "{detail}");
    assert!(s.drain().await.is_empty());
    assert_eq!(
        s.asked(),
        [
            None,
            Some("2025-03-01T00:00:02Z".to_owned()),
            Some("2025-03-01T00:00:03Z".to_owned())
        ]
    );
}

#[tokio::test]
async fn more_entries_at_one_timestamp_than_a_page_holds_do_not_stall_the_feed() {
    let s = setup(2, &[], &[]).await;
    for m in ["a", "b", "c"] {
        s.fixture.push(
            &format!("example.com/{m}"),
            "v1.0.0",
            "2025-05-01T00:00:01Z",
        );
    }
    s.fixture
        .push("example.com/d", "v1.0.0", "2025-05-01T00:00:02Z");
    // Page 1 (limit 2): a, b. Page 2 from the same timestamp: a, b again, nothing new, so the
    // page is asked for again with limit 4: c and d come.
    s.poll().await.unwrap();
    s.drain().await;
    let detail = s.poll().await.unwrap().detail.unwrap();
    assert!(
        detail.starts_with("4 lines: 2 enqueued, 0 filtered, 2 duplicate"),
        "{detail}"
    );
    assert_eq!(
        prefetched(&s.drain().await),
        [
            "prefetch/gocache/example.com/c@v1.0.0",
            "prefetch/gocache/example.com/d@v1.0.0"
        ]
    );
    let asked = s.asked();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert_eq!(
        s.cursor().await.since.as_deref(),
        Some("2025-05-01T00:00:02Z")
    );
}

#[tokio::test]
async fn a_failing_feed_is_retried_and_moves_nothing() {
    let s = setup(10, &[], &[]).await;
    // Point the follower at a path the fixture does not serve: 404 is permanent.
    let mut config = s.follower.feeds["test"].config.clone();
    config.url = config.url.replace("/feed/", "/missing/");
    let broken =
        IndexFollower::with_store(&[config.clone()], s.store.clone(), s.queue.clone(), |_| {
            Ok(())
        })
        .unwrap();
    let job = Job::IndexPoll {
        feed: "test".into(),
    };
    let error = broken.run(&job, &context()).await.unwrap_err();
    assert!(
        matches!(error, JobError::Permanent(ref m) if m.contains("404")),
        "{error:?}"
    );
    // A feed that does not answer at all: retryable.
    config.url = "http://127.0.0.1:9/".into();
    let down =
        IndexFollower::with_store(&[config], s.store.clone(), s.queue.clone(), |_| Ok(())).unwrap();
    let error = down.run(&job, &context()).await.unwrap_err();
    assert!(matches!(error, JobError::Retryable { .. }), "{error:?}");
    assert_eq!(s.cursor().await, Cursor::default(), "no cursor was written");
    let unknown = Job::IndexPoll {
        feed: "nope".into(),
    };
    let error = s.follower.run(&unknown, &context()).await.unwrap_err();
    assert!(matches!(error, JobError::Permanent(ref m) if m.contains("nope")));
}

#[tokio::test]
async fn a_cursor_moved_by_another_worker_meanwhile_is_respected() {
    let s = setup(10, &[], &[]).await;
    s.fixture
        .push("example.com/a", "v1.0.0", "2025-04-01T00:00:01Z");
    let feed = &s.follower.feeds["test"];
    // Another worker saves a cursor further on between our load and our save.
    let ahead = Cursor {
        since: Some("2025-04-01T00:00:09Z".into()),
        entries: 9,
        ..Cursor::default()
    };
    feed.cursor.save(&ahead, None).await.unwrap();
    let ours = Cursor {
        since: Some("2025-04-01T00:00:01Z".into()),
        entries: 1,
        ..Cursor::default()
    };
    s.follower.save(feed, &ours, None).await.unwrap();
    assert_eq!(s.cursor().await, ahead, "the further cursor stands");
    // One that is behind ours is not: the poll is retried.
    let behind = Cursor {
        since: Some("2025-04-01T00:00:00Z".into()),
        entries: 0,
        ..Cursor::default()
    };
    let (_, etag) = feed.cursor.load().await.unwrap();
    feed.cursor.save(&behind, etag).await.unwrap();
    let error = s.follower.save(feed, &ours, None).await.unwrap_err();
    assert!(matches!(error, JobError::Retryable { .. }), "{error:?}");
}

#[tokio::test]
async fn the_scheduler_enqueues_one_poll_per_period() {
    let s = setup(10, &[], &[]).await;
    let ticker = PollTicker {
        feed: "test".into(),
        every_ms: 60_000,
        queue: s.queue.clone(),
    };
    assert_eq!(ticker.due(125_000), Some(2));
    assert_eq!(ticker.next_check(125_000), 180_000);
    assert_eq!(ticker.claim_key(2), "index_poll/test/2");
    ticker.fire(2).await.unwrap();
    let jobs = s.drain().await;
    assert_eq!(
        jobs,
        [(
            "index_poll/test/2".to_owned(),
            Job::IndexPoll {
                feed: "test".into()
            }
        )]
    );
}

#[test]
fn feed_configs_are_validated() {
    let good = FeedConfig {
        name: "golang".into(),
        url: "https://index.golang.org".into(),
        repository: RepoName::new("gocache").unwrap(),
        include: vec!["github.com/org/*".into()],
        exclude: Vec::new(),
        limit: 2000,
        poll_interval_ms: 60_000,
        start: Some("2025-01-01T00:00:00Z".into()),
        timeout_ms: 30_000,
    };
    assert!(validate(std::slice::from_ref(&good)).is_ok());
    for (bad, want) in [
        (
            FeedConfig {
                name: "a b".into(),
                ..good.clone()
            },
            "name",
        ),
        (
            FeedConfig {
                url: "index.golang.org".into(),
                ..good.clone()
            },
            "url",
        ),
        (
            FeedConfig {
                url: "ftp://index.golang.org".into(),
                ..good.clone()
            },
            "http(s)",
        ),
        (
            FeedConfig {
                url: "https://index.golang.org/?x=1".into(),
                ..good.clone()
            },
            "without a query",
        ),
        (
            FeedConfig {
                include: vec!["github.com/[".into()],
                ..good.clone()
            },
            "include",
        ),
        (
            FeedConfig {
                limit: 0,
                ..good.clone()
            },
            "limit",
        ),
        (
            FeedConfig {
                poll_interval_ms: 5,
                ..good.clone()
            },
            "poll_interval_ms",
        ),
        (
            FeedConfig {
                start: Some("yesterday".into()),
                ..good.clone()
            },
            "start",
        ),
    ] {
        let error = validate(&[bad]).unwrap_err().to_string();
        assert!(
            error.contains("feeds[0]") && error.contains(want),
            "{want}: {error}"
        );
    }
    let twice = [good.clone(), good];
    assert!(validate(&twice).unwrap_err().to_string().contains("twice"));
}
