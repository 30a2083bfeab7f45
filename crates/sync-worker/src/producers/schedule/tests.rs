#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

/// `day` days after the epoch at `hh:mm:ss` UTC, in ms.
fn at(day: u64, hh: u64, mm: u64, ss: u64) -> u64 {
    day * DAY_MS + ((hh * 60 + mm) * 60 + ss) * 1000
}

fn schedule(every_ms: u64, window: Option<&str>, modules: &[&str]) -> Schedule {
    Schedule::new(&ScheduleConfig {
        name: "nightly".into(),
        modules: modules.iter().map(|m| (*m).to_owned()).collect(),
        repository: RepoName::new("gocache").unwrap(),
        every_ms,
        window: window.map(str::to_owned),
    })
    .unwrap()
}

#[test]
fn windows_parse_and_reject_nonsense() {
    let w = Window::parse("02:00-04:30").unwrap();
    assert_eq!((w.start, w.end), (120, 270));
    assert_eq!(w.to_string(), "02:00-04:30");
    assert_eq!(Window::parse("22:00-24:00").unwrap().end, 1440);
    for bad in [
        "02:00",
        "2:00-04:00",
        "02:00-04:60",
        "25:00-01:00",
        "24:00-01:00",
        "02:00-02:00",
        "00:00-24:00",
        "ab:cd-01:00",
        "02:00-04:00:00",
    ] {
        assert!(Window::parse(bad).is_err(), "{bad} was accepted");
    }
}

#[test]
fn a_window_within_a_day() {
    let w = Window::parse("02:00-04:00").unwrap();
    assert!(!w.contains(at(3, 1, 59, 59)));
    assert!(w.contains(at(3, 2, 0, 0)), "the start is inside");
    assert!(w.contains(at(3, 3, 59, 59)));
    assert!(!w.contains(at(3, 4, 0, 0)), "the end is outside");
    assert_eq!(w.next_open(at(3, 1, 0, 0)), at(3, 2, 0, 0));
    assert_eq!(w.next_open(at(3, 2, 30, 0)), at(3, 2, 30, 0), "open now");
    assert_eq!(w.next_open(at(3, 5, 0, 0)), at(4, 2, 0, 0), "tomorrow");
}

#[test]
fn a_window_crossing_midnight() {
    let w = Window::parse("22:30-01:15").unwrap();
    assert!(!w.contains(at(9, 22, 29, 59)));
    assert!(w.contains(at(9, 22, 30, 0)));
    assert!(w.contains(at(9, 23, 59, 59)));
    assert!(w.contains(at(10, 0, 0, 0)), "midnight is inside");
    assert!(w.contains(at(10, 1, 14, 59)));
    assert!(!w.contains(at(10, 1, 15, 0)));
    assert!(!w.contains(at(10, 12, 0, 0)));
    assert_eq!(w.next_open(at(10, 12, 0, 0)), at(10, 22, 30, 0));
    assert_eq!(w.next_open(at(10, 0, 30, 0)), at(10, 0, 30, 0));
    assert_eq!(w.next_open(at(10, 1, 15, 0)), at(10, 22, 30, 0));
}

#[test]
fn a_daily_schedule_fires_once_at_the_window_start() {
    let s = schedule(DAY_MS, Some("02:00-04:00"), &["example.com/a"]);
    // Before the window nothing is due; the next look is when it opens.
    assert_eq!(s.due_period(at(5, 1, 0, 0)), None);
    // Handled at 02:00 of day 5: period 5; look again when day 6's window opens.
    assert_eq!(s.due_period(at(5, 2, 0, 0)), Some(5));
    assert_eq!(s.next_check(at(5, 2, 0, 0)), at(6, 2, 0, 0));
    assert_eq!(
        s.due_period(at(5, 3, 59, 0)),
        Some(5),
        "same period: no new run"
    );
    assert_eq!(s.due_period(at(5, 4, 0, 0)), None);
}

#[test]
fn an_hourly_schedule_inside_a_window_crossing_midnight() {
    let hour = 3_600_000;
    let s = schedule(hour, Some("23:00-01:00"), &["example.com/a"]);
    let day = 100;
    assert_eq!(s.due_period(at(day, 22, 59, 0)), None);
    assert_eq!(s.next_check(at(day, 12, 0, 0)), at(day, 23, 0, 0));
    let first = s.due_period(at(day, 23, 0, 0)).unwrap();
    assert_eq!(first, day * 24 + 23);
    assert_eq!(s.next_check(at(day, 23, 0, 0)), at(day + 1, 0, 0, 0));
    assert_eq!(s.due_period(at(day + 1, 0, 0, 0)), Some(first + 1));
    // After the second run the next period starts at 01:00, outside: wait for 23:00.
    assert_eq!(s.next_check(at(day + 1, 0, 10, 0)), at(day + 1, 23, 0, 0));
    assert_eq!(s.due_period(at(day + 1, 1, 0, 0)), None);
}

#[test]
fn without_a_window_every_period_is_due() {
    let s = schedule(60_000, None, &["example.com/a"]);
    assert_eq!(s.due_period(at(0, 0, 1, 30)), Some(1));
    assert_eq!(s.next_check(at(0, 0, 1, 30)), at(0, 0, 2, 0));
}

#[test]
fn jobs_carry_the_period_in_their_keys() {
    let s = schedule(60_000, None, &["example.com/a", "example.com/b/v2@v2.1.0"]);
    let jobs = s.jobs(42);
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        jobs[0].key.as_deref(),
        Some("schedule/nightly/42/example.com/a")
    );
    assert!(matches!(&jobs[0].job, Job::RefreshMetadata { module, .. }
        if module.as_str() == "example.com/a"));
    assert_eq!(
        jobs[1].key.as_deref(),
        Some("schedule/nightly/42/example.com/b/v2@v2.1.0")
    );
    assert!(
        matches!(&jobs[1].job, Job::Prefetch { version, mod_only: false, .. }
        if version.as_str() == "v2.1.0")
    );
    assert_eq!(s.claim_key(42), "schedule/nightly/42");
    assert_eq!(
        s.jobs(43)[0].key.as_deref(),
        Some("schedule/nightly/43/example.com/a")
    );
}

#[tokio::test(start_paused = true)]
async fn the_loop_enqueues_each_period_inside_the_window_only() {
    use crate::producers::ticks::{Clock, TickClaims, run};
    use crate::runtime::queue::Broker;
    use crate::runtime::queue::memory::MemoryQueue;
    use tokio_util::sync::CancellationToken;

    let queue = Arc::new(MemoryQueue::new(Default::default()));
    let hourly = schedule(
        3_600_000,
        Some("02:00-04:00"),
        &["example.com/a", "example.com/b@v1.0.0"],
    )
    .with_queue(queue.clone());
    // A wall clock that starts at 01:30 on day 3 and follows Tokio's (paused) time.
    let start = tokio::time::Instant::now();
    let base = at(3, 1, 30, 0);
    let clock: Clock = Arc::new(move || {
        let elapsed = u64::try_from(start.elapsed().as_millis()).unwrap();
        std::time::UNIX_EPOCH + Duration::from_millis(base + elapsed)
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        Arc::new(hourly),
        TickClaims::Local,
        clock,
        shutdown.clone(),
    ));
    // Until 05:00: the window holds the 02:00 and 03:00 periods.
    tokio::time::sleep(Duration::from_secs(3 * 3600 + 1800)).await;
    shutdown.cancel();
    task.await.unwrap();
    let token = CancellationToken::new();
    let mut keys: Vec<String> = queue
        .receive(100, &token)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.envelope.unwrap().key)
        .collect();
    keys.sort();
    let (two, three) = (3 * 24 + 2, 3 * 24 + 3);
    assert_eq!(
        keys,
        [
            format!("schedule/nightly/{two}/example.com/a"),
            format!("schedule/nightly/{two}/example.com/b@v1.0.0"),
            format!("schedule/nightly/{three}/example.com/a"),
            format!("schedule/nightly/{three}/example.com/b@v1.0.0"),
        ]
    );
}

#[test]
fn invalid_schedules_are_rejected_with_their_key() {
    let config = |name: &str, modules: &[&str], every_ms, window: Option<&str>| ScheduleConfig {
        name: name.into(),
        modules: modules.iter().map(|m| (*m).to_owned()).collect(),
        repository: RepoName::new("gocache").unwrap(),
        every_ms,
        window: window.map(str::to_owned),
    };
    for (c, want) in [
        (config("", &["example.com/a"], 60_000, None), "name"),
        (config("a/b", &["example.com/a"], 60_000, None), "name"),
        (config("n", &[], 60_000, None), "at least one"),
        (config("n", &["example/a"], 60_000, None), "example/a"),
        (
            config("n", &["example.com/a@1.0"], 60_000, None),
            "semantic",
        ),
        (config("n", &["example.com/a@v2.0.0"], 60_000, None), "v2"),
        (config("n", &["example.com/a"], 10, None), "every_ms"),
        (
            config("n", &["example.com/a"], 60_000, Some("9-5")),
            "window",
        ),
    ] {
        let error = validate(&[c]).unwrap_err().to_string();
        assert!(error.contains("schedules"), "{error}");
        assert!(error.contains(want), "{want}: {error}");
    }
    let twice = [
        config("n", &["example.com/a"], 60_000, None),
        config("n", &["example.com/b"], 60_000, None),
    ];
    assert!(validate(&twice).unwrap_err().to_string().contains("twice"));
    assert!(validate(&twice[..1]).is_ok());
}
