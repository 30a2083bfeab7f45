//! Concurrent appenders on two replicas sharing one store: every record exactly once, every
//! signed head seen along the way a prefix of the final log.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_on_two_replicas() {
    let f = Fixture::new();
    let replicas = [f.ledger.clone(), f.replica()];

    // Watch the head while the appends run.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (ledger, done) = (f.replica(), done.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                seen.push(ledger.latest().await.unwrap());
                tokio::task::yield_now().await;
            }
            seen
        })
    };

    // 20 versions spread over both replicas, 6 of them appended twice at once (once on each)
    // and 2 twice on the same replica (whose appenders share one group commit), all
    // started together.
    let appends = (0..20)
        .map(|i| (i, i % 2))
        .chain([0, 3, 7, 10, 15, 19].into_iter().map(|i| (i, (i + 1) % 2)))
        .chain([(2, 0), (5, 1)])
        .map(|(i, r)| {
            let ledger = replicas[r].clone();
            tokio::spawn(async move { (i, append(&ledger, i).await.unwrap()) })
        });
    let results: Vec<(usize, u64)> = futures::future::join_all(appends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    done.store(true, Ordering::Relaxed);
    let mut seen = watcher.await.unwrap();
    seen.push(f.ledger.latest().await.unwrap());

    // Each version once, under the id every append of it returned.
    let records = f.records().await;
    assert_eq!(records.len(), 20);
    for (i, id) in &results {
        assert_eq!(records[*id as usize], text(*i).into_bytes(), "record {i}");
    }
    let ids: HashSet<u64> = results.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, (0..20).collect());
    for i in 0..20 {
        let (id, _) = f
            .ledger
            .find(&module(i), &version())
            .await
            .unwrap()
            .unwrap();
        assert!(results.contains(&(i, id)));
    }

    // Every head observed verifies and signs a prefix of the final log.
    let all = reference(&records);
    let mut sizes = HashSet::new();
    for note in &seen {
        let tree = open_tree(&f.ledger, note);
        assert_eq!(
            tree.hash,
            tree_hash(tree.n, &all).unwrap(),
            "head of size {}",
            tree.n
        );
        sizes.insert(tree.n);
    }
    assert!(sizes.contains(&20));
    assert_eq!(f.replica().recover().await.unwrap(), 20);
}

/// A look-ahead (made where a publish reads its own index) that found nothing stays safe when
/// another replica records the version before the append: the append then returns that record
/// (same hashes) or refuses (other hashes), and the log holds the version once — also when so
/// many records came after it that its tile completed and only the index knows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_look_ahead_neither_duplicates_nor_hides_a_record() {
    for later in [0usize, 300] {
        let f = Fixture::new();
        let other = f.replica();
        // This replica has seen a head (its own first record) before looking ahead.
        append(&f.ledger, 1000).await.unwrap();
        let ahead0 = f.ledger.look_ahead(&module(0), &version()).await.unwrap();
        let ahead1 = f.ledger.look_ahead(&module(1), &version()).await.unwrap();
        // The other replica records both versions, then `later` more.
        let id0 = append(&other, 0).await.unwrap();
        let id1 = append(&other, 1).await.unwrap();
        for i in 2..2 + later {
            append(&other, i).await.unwrap();
        }
        let size = 3 + later as u64;
        // Same hashes: the other replica's record.
        let (zip, go_mod) = hashes(0);
        let got = f
            .ledger
            .append_with(ahead0, &module(0), &version(), &zip, &go_mod)
            .await
            .unwrap();
        assert_eq!(got, id0, "later = {later}");
        // Other hashes: a conflict naming the recorded ones.
        let (zip, _) = hashes(7);
        let (_, go_mod) = hashes(1);
        let refused = f
            .ledger
            .append_with(ahead1, &module(1), &version(), &zip, &go_mod)
            .await;
        assert!(
            matches!(refused, Err(LedgerError::Conflict { .. })),
            "later = {later}: {refused:?}"
        );
        assert_eq!(f.tree().await.n, size, "later = {later}: nothing added");
        let records = f.records().await;
        assert_eq!(records[id0 as usize], text(0).into_bytes());
        assert_eq!(records[id1 as usize], text(1).into_bytes());
    }
}

/// The usual case: a look-ahead on this replica's own last head, nothing recorded since — the
/// append records the version (once) without reading the index again.
#[tokio::test]
async fn a_look_ahead_on_the_current_head_records_the_version() {
    let f = Fixture::new();
    append(&f.ledger, 5).await.unwrap();
    let ahead = f.ledger.look_ahead(&module(6), &version()).await.unwrap();
    let (zip, go_mod) = hashes(6);
    let id = f
        .ledger
        .append_with(ahead, &module(6), &version(), &zip, &go_mod)
        .await
        .unwrap();
    assert_eq!(id, 1);
    // Recorded already: a new look-ahead finds it, and appending it again is that record.
    let again = f.ledger.look_ahead(&module(6), &version()).await.unwrap();
    assert_eq!(
        f.ledger
            .append_with(again, &module(6), &version(), &zip, &go_mod)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        f.records().await,
        vec![text(5).into_bytes(), text(6).into_bytes()]
    );
}
