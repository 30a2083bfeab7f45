#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Change events against a real `redis-server` (started per test on a free port): order and
//! JSON of delivered events, the MAXLEN bound, Redis going down during publishes, an outbox
//! left by a crashed process, unreadable entries, shutdown, and the in-memory fan-out.
//!
//! Without `redis-server` on PATH these tests fail and say to run `make deps`, unless
//! `STRATA_SKIP_REDIS=1`.

use std::{
    collections::HashSet,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use strata_central_registry::{
    events::{Event, EventBus, EventKind, RedisEventsConfig, StartFrom, Subscription},
    storage::{KeyPrefix, ObjectStore, fs::FsStore},
};
use strata_testkit::redis_server::{self, RedisServer};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(30);

/// The server, or `None` when the Redis tests are switched off; panics with the install hint
/// when `redis-server` is missing.
fn redis() -> Option<RedisServer> {
    if redis_server::skipped() {
        eprintln!("STRATA_SKIP_REDIS=1: skipping a Redis events test");
        return None;
    }
    Some(RedisServer::start().unwrap_or_else(|e| panic!("{e}")))
}

/// Fast retries so the tests observe recovery quickly.
fn config(url: String) -> RedisEventsConfig {
    RedisEventsConfig {
        stream: "test:events".into(),
        retry_initial_ms: 20,
        retry_max_ms: 300,
        command_timeout_ms: 1_000,
        block_ms: 500,
        shutdown_flush_ms: 1_000,
        ..RedisEventsConfig::with_url(url)
    }
}

fn fs_store(dir: &tempfile::TempDir) -> Arc<dyn ObjectStore> {
    Arc::new(FsStore::open(dir.path()).unwrap())
}

async fn redis_bus(config: RedisEventsConfig, store: Arc<dyn ObjectStore>) -> EventBus {
    EventBus::redis(config, store, CancellationToken::new())
        .await
        .unwrap()
}

fn event(n: usize) -> Event {
    let kinds = [
        EventKind::VersionPublished,
        EventKind::VersionDeleted,
        EventKind::ListChanged,
    ];
    Event::new(kinds[n % kinds.len()], "private", "example.com/Mod")
        .with_version(format!("v1.0.{n}"))
        .with_hashes(format!("h1:zip{n}="), format!("h1:mod{n}="))
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn take(subscription: &mut Subscription, n: usize) -> Vec<(String, Event)> {
    within("events", subscription.by_ref().take(n).collect::<Vec<_>>()).await
}

async fn connection(server: &RedisServer) -> MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn outbox_len(store: &Arc<dyn ObjectStore>) -> usize {
    let listing = store.list(&KeyPrefix::new("outbox/").unwrap());
    listing.collect::<Vec<_>>().await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_events_are_read_back_in_order_with_their_json() {
    let Some(server) = redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bus = redis_bus(config(server.url()), fs_store(&dir)).await;
    let mut subscription = bus.subscribe(StartFrom::New).await;

    let sent: Vec<Event> = (0..50).map(event).collect();
    for event in &sent {
        bus.emit(event.clone()).await;
    }
    let received = take(&mut subscription, sent.len()).await;
    let events: Vec<Event> = received.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(events, sent);
    wait_until("the backlog is empty", || bus.backlog() == 0).await;
    assert_eq!(bus.delivered(), 50);

    // The stream holds exactly the documents `to_json` writes, under the `event` field.
    let mut redis = connection(&server).await;
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("test:events")
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(entries.ids.len(), 50);
    for ((entry, (id, _)), event) in entries.ids.iter().zip(&received).zip(&sent) {
        assert_eq!(&entry.id, id);
        let json: String = entry.get("event").unwrap();
        assert_eq!(json, event.to_json().unwrap());
        assert!(json.starts_with(r#"{"schema":1,"#), "{json}");
    }

    // A second reader from the beginning sees the same entries.
    let mut replay = bus.subscribe(StartFrom::Beginning).await;
    assert_eq!(take(&mut replay, 50).await, received);
    let mut rest = bus
        .subscribe(StartFrom::After(received[47].0.clone()))
        .await;
    assert_eq!(take(&mut rest, 2).await, received[48..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxlen_bounds_the_stream() {
    let Some(server) = redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bus = redis_bus(
        RedisEventsConfig {
            maxlen: 20,
            ..config(server.url())
        },
        fs_store(&dir),
    )
    .await;
    for n in 0..400 {
        bus.emit(event(n)).await;
    }
    wait_until("the backlog is empty", || bus.backlog() == 0).await;
    assert_eq!(bus.delivered(), 400);

    // `MAXLEN ~` trims whole radix-tree nodes: the length stays within one node of the bound.
    let mut redis = connection(&server).await;
    let len: u64 = redis::cmd("XLEN")
        .arg("test:events")
        .query_async(&mut redis)
        .await
        .unwrap();
    let node: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("stream-node-max-entries")
        .query_async(&mut redis)
        .await
        .unwrap();
    let node: u64 = node[1].parse().unwrap();
    assert!(
        (20..=20 + node).contains(&len),
        "XLEN {len} outside 20..={}",
        20 + node
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_emitted_while_redis_is_down_are_delivered_once_it_is_back() {
    let Some(mut server) = redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = fs_store(&dir);
    let bus = redis_bus(config(server.url()), Arc::clone(&store)).await;
    let mut subscription = bus.subscribe(StartFrom::New).await;

    let before: Vec<Event> = (0..5).map(event).collect();
    for event in &before {
        bus.emit(event.clone()).await;
    }
    let mut seen: Vec<String> = take(&mut subscription, 5)
        .await
        .into_iter()
        .map(|(_, e)| e.id)
        .collect();
    wait_until("the backlog is empty", || bus.backlog() == 0).await;

    server.stop();
    let during: Vec<Event> = (5..25).map(event).collect();
    for event in &during {
        let start = Instant::now();
        bus.emit(event.clone()).await;
        // Generous for loaded CI machines; a Redis-bound emit would wait on connect timeouts.
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "emit waited {:?}",
            start.elapsed()
        );
    }
    assert_eq!(bus.backlog(), 20);
    assert_eq!(outbox_len(&store).await, 20);
    wait_until("a delivery attempt failed", || bus.failed() > 0).await;
    assert_eq!(
        bus.backlog(),
        20,
        "nothing can be delivered while Redis is down"
    );

    tokio::task::block_in_place(|| server.restart()).unwrap();
    wait_until("the backlog drains", || bus.backlog() == 0).await;
    assert_eq!(outbox_len(&store).await, 0);

    // A marker emitted last bounds the read: everything before it arrives exactly once.
    let marker = Event::new(EventKind::ListChanged, "private", "example.com/Marker");
    bus.emit(marker.clone()).await;
    loop {
        let (_, event) = within("the marker", subscription.next()).await.unwrap();
        if event.id == marker.id {
            break;
        }
        seen.push(event.id);
    }
    let expected: Vec<String> = before.iter().chain(&during).map(|e| e.id.clone()).collect();
    assert_eq!(seen, expected, "every event exactly once, in order");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    assert_eq!(bus.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_left_by_a_crashed_bus_is_delivered_on_start() {
    let Some(server) = redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = fs_store(&dir);

    // A bus whose Redis is unreachable keeps everything in the outbox; dropping it without a
    // successful flush is what a crash leaves behind.
    let nowhere = format!("redis://127.0.0.1:{}", redis_server::free_port().unwrap());
    let crashed = redis_bus(config(nowhere), Arc::clone(&store)).await;
    let sent: Vec<Event> = (0..10).map(event).collect();
    for event in &sent {
        crashed.emit(event.clone()).await;
    }
    assert_eq!(crashed.backlog(), 10);
    drop(crashed);
    assert_eq!(outbox_len(&store).await, 10);

    let bus = redis_bus(config(server.url()), Arc::clone(&store)).await;
    wait_until("the inherited backlog drains", || bus.backlog() == 0).await;
    assert_eq!(bus.delivered(), 10);
    let mut replay = bus.subscribe(StartFrom::Beginning).await;
    let received: Vec<Event> = take(&mut replay, 10)
        .await
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(received, sent);
    assert_eq!(outbox_len(&store).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_entries_are_skipped_and_counted() {
    let Some(server) = redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bus = redis_bus(config(server.url()), fs_store(&dir)).await;
    let mut redis = connection(&server).await;
    for (field, value) in [
        (
            "event",
            r#"{"schema":2,"id":"from-the-future","shape":"new"}"#,
        ),
        ("event", "not json"),
        ("other", "no event field"),
    ] {
        let _: String = redis::cmd("XADD")
            .arg("test:events")
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let good = event(1);
    bus.emit(good.clone()).await;
    let mut subscription = bus.subscribe(StartFrom::Beginning).await;
    let (_, received) = within("the good event", subscription.next()).await.unwrap();
    assert_eq!(received, good);
    assert_eq!(subscription.skipped(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_within_its_deadline_and_keeps_the_rest() {
    let Some(mut server) = redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = fs_store(&dir);
    let shutdown = CancellationToken::new();
    let bus = EventBus::redis(config(server.url()), Arc::clone(&store), shutdown.clone())
        .await
        .unwrap();
    bus.emit(event(0)).await;
    wait_until("the first event is delivered", || bus.delivered() == 1).await;

    server.stop();
    bus.emit(event(1)).await;
    shutdown.cancel();
    let start = Instant::now();
    within("the deliverer to stop", bus.stopped()).await;
    // The last flush is cut off at its 1 s deadline; the rest is scheduling slack.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "stopped after {:?}",
        start.elapsed()
    );
    assert_eq!(
        outbox_len(&store).await,
        1,
        "the undelivered event stays in the outbox"
    );
}

#[tokio::test]
async fn memory_bus_fans_out_to_every_subscriber() {
    let bus = EventBus::memory(64);
    bus.emit(event(99)).await; // before anyone subscribed: seen by nobody
    let mut first = bus.subscribe(StartFrom::New).await;
    let mut second = bus.subscribe(StartFrom::New).await;
    let sent: Vec<Event> = (0..10).map(event).collect();
    for event in &sent {
        bus.emit(event.clone()).await;
    }
    for subscription in [&mut first, &mut second] {
        let received = take(subscription, 10).await;
        let events: Vec<Event> = received.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(events, sent);
        assert_eq!(received[0].0, "2-0");
    }
    assert_eq!((bus.delivered(), bus.backlog()), (11, 0));
    drop(bus);
    assert!(
        first.next().await.is_none(),
        "a memory subscription ends with its bus"
    );
}
