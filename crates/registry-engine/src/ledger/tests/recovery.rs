//! Crashes and tampering: record slots whose appender died before the head, a pending slot of
//! the version being appended, heads and tiles changed behind the ledger's back.

use futures::StreamExt as _;
use strata_core::sumdb::format_tree;

use super::super::head;
use super::*;

const PREFIX: &str = "ledger/sum.strata.test";

/// Fills slot `id` with record `i` by hand, as an appender that died right after it would.
async fn pending_slot(f: &Fixture, id: u64, i: usize) {
    f.write(&format!("{PREFIX}/record/{id}"), text(i)).await;
}

async fn index_entry(f: &Fixture, i: usize) -> Option<Bytes> {
    let m = module(i);
    f.read(&format!("{PREFIX}/index/{}@v1.0.0", m.escaped()))
        .await
}

#[tokio::test]
async fn recover_commits_a_pending_slot() {
    let f = Fixture::new();
    for i in 0..3 {
        f.append(i).await.unwrap();
    }
    pending_slot(&f, 3, 100).await;
    assert_eq!(f.tree().await.n, 3);
    assert!(
        f.ledger
            .find(&module(100), &version())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.ledger
            .lookup(&format!("{}@v1.0.0", module(100).escaped()))
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(f.replica().recover().await.unwrap(), 4);
    let (id, lines) = f
        .ledger
        .find(&module(100), &version())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((id, lines.join("\n") + "\n"), (3, text(100)));
    assert_eq!(index_entry(&f, 100).await.as_deref(), Some(b"3".as_slice()));
    assert!(f.read(&format!("{PREFIX}/record/4")).await.is_none());

    // Appending it again finds it; recovering again changes nothing.
    assert_eq!(f.append(100).await.unwrap(), 3);
    assert_eq!(f.ledger.recover().await.unwrap(), 4);
    let records = f.records().await;
    assert_eq!(records.len(), 4);
    assert_eq!(
        f.tree().await.hash,
        tree_hash(4, &reference(&records)).unwrap()
    );
}

#[tokio::test]
async fn an_append_commits_a_pending_slot_of_another_version() {
    let f = Fixture::new();
    for i in 0..3 {
        f.append(i).await.unwrap();
    }
    pending_slot(&f, 3, 100).await;
    assert_eq!(f.append(3).await.unwrap(), 4);
    assert_eq!(f.tree().await.n, 5);
    assert_eq!(
        f.ledger
            .find(&module(100), &version())
            .await
            .unwrap()
            .unwrap()
            .0,
        3
    );
    assert_eq!(index_entry(&f, 100).await.as_deref(), Some(b"3".as_slice()));
    assert_eq!(f.records().await[3], text(100).into_bytes());
}

#[tokio::test]
async fn an_append_of_a_pending_version_takes_its_slot() {
    let f = Fixture::new();
    for i in 0..2 {
        f.append(i).await.unwrap();
    }
    // Slot 2 holds version 100 (its appender died): appending it returns 2, no slot 3.
    pending_slot(&f, 2, 100).await;
    assert_eq!(f.append(100).await.unwrap(), 2);
    assert!(f.read(&format!("{PREFIX}/record/3")).await.is_none());
    assert_eq!(f.tree().await.n, 3);

    // Slot 3 holds version 101: appending 101 with other hashes conflicts and writes nothing;
    // the pending record stands and is committed as it was.
    pending_slot(&f, 3, 101).await;
    let err = f
        .ledger
        .append(&module(101), &version(), &h1("other"), &h1("other"))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Conflict { .. }), "{err}");
    assert!(f.read(&format!("{PREFIX}/record/4")).await.is_none());
    assert_eq!(f.ledger.recover().await.unwrap(), 4);
    assert_eq!(f.records().await[3], text(101).into_bytes());
}

/// A head document signing `tree` with `signer`.
fn head_doc(tree: &Tree, signer: &SignerKey) -> Bytes {
    let note = head::sign(tree, signer).unwrap();
    head::encode(tree, &note).unwrap()
}

fn is_corrupt(result: Result<impl std::fmt::Debug, LedgerError>, what: &str) {
    match result {
        Err(e @ LedgerError::Corrupt { .. }) => assert_eq!(e.kind(), ErrorKind::Internal),
        other => panic!("{what}: {other:?}"),
    }
}

#[tokio::test]
async fn a_head_signed_by_another_key_is_rejected() {
    let f = Fixture::new();
    for i in 0..3 {
        f.append(i).await.unwrap();
    }
    let tree = f.tree().await;
    let other = SignerKey::from_seed(NAME, &[2; 32]).unwrap();
    f.write(&format!("{PREFIX}/head"), head_doc(&tree, &other))
        .await;
    is_corrupt(f.ledger.latest().await, "latest");
    is_corrupt(f.replica().latest().await, "latest on a fresh ledger");
    is_corrupt(f.append(3).await, "append");
    is_corrupt(
        f.ledger.lookup("example.com/team/m1@v1.0.0").await,
        "lookup",
    );
    is_corrupt(f.ledger.tile("tile/8/0/000.p/3").await, "tile");
    is_corrupt(f.ledger.recover().await, "recover");
    assert!(f.read(&format!("{PREFIX}/record/3")).await.is_none());
}

#[tokio::test]
async fn a_head_whose_root_is_not_the_tiles_is_rejected() {
    let f = Fixture::new();
    for i in 0..3 {
        f.append(i).await.unwrap();
    }
    let records = f.records().await;
    let all = reference(&records);
    let signer = SignerKey::parse(&f.signer_key).unwrap();

    // Correctly signed, but the root is that of two records: caught against the tiles.
    let wrong = Tree {
        n: 3,
        hash: tree_hash(2, &all).unwrap(),
    };
    f.write(&format!("{PREFIX}/head"), head_doc(&wrong, &signer))
        .await;
    is_corrupt(f.ledger.recover().await, "recover");
    is_corrupt(f.append(3).await, "append");

    // A document whose own size and root disagree with the note it carries.
    let right = Tree {
        n: 3,
        hash: tree_hash(3, &all).unwrap(),
    };
    let note = head::sign(&right, &signer).unwrap();
    let doc = head::encode(&wrong, &note).unwrap();
    f.write(&format!("{PREFIX}/head"), doc).await;
    is_corrupt(f.ledger.latest().await, "latest");

    // Not a note at all.
    let text = format_tree(&right);
    let unsigned = serde_json::json!({"size": 3, "root": right.hash.to_string(), "note": text});
    f.write(
        &format!("{PREFIX}/head"),
        serde_json::to_vec(&unsigned).unwrap(),
    )
    .await;
    is_corrupt(f.ledger.latest().await, "latest");

    // Restoring the right head heals everything: the append that failed had claimed slot 3
    // before it found the head corrupt, and recovering commits it.
    f.write(&format!("{PREFIX}/head"), head_doc(&right, &signer))
        .await;
    assert_eq!(f.ledger.recover().await.unwrap(), 4);
    assert_eq!(f.append(3).await.unwrap(), 3);
    assert_eq!(f.records().await.len(), 4);
}

#[tokio::test]
async fn a_changed_tile_is_rejected() {
    let f = Fixture::new();
    for i in 0..3 {
        f.append(i).await.unwrap();
    }
    let path = format!("{PREFIX}/tile/8/0/000.p/3");
    let mut tile = f.read(&path).await.unwrap().to_vec();
    tile[0] ^= 1;
    f.write(&path, tile).await;
    // A fresh replica (no tiles in memory) sees the stored bytes.
    is_corrupt(f.replica().recover().await, "recover");
    is_corrupt(
        f.replica()
            .append(&module(3), &version(), &hashes(3).0, &hashes(3).1)
            .await,
        "append",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_pending_slots_than_one_commit_takes() {
    let f = Fixture::new();
    f.append(0).await.unwrap();
    // 1100 slots left by appenders that died: more than one commit's batch of 1024.
    let writes = (1..1101u64).map(|id| {
        let f = &f;
        async move { pending_slot(f, id, 1000 + id as usize).await }
    });
    futures::stream::iter(writes)
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    assert_eq!(f.append(1).await.unwrap(), 1101);
    assert_eq!(f.tree().await.n, 1102);
    let records = f.records().await;
    assert_eq!(
        f.tree().await.hash,
        tree_hash(1102, &reference(&records)).unwrap()
    );
    assert_eq!(
        f.ledger
            .find(&module(2000), &version())
            .await
            .unwrap()
            .unwrap()
            .0,
        1000
    );
}
