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
