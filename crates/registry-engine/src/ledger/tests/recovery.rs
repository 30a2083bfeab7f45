//! Crashes and tampering: a head stored by a writer that died before storing the tiles its
//! records completed, heads and tiles changed behind the ledger's back.

use futures::StreamExt as _;
use strata_core::sumdb::format_tree;

use super::super::head;
use super::super::record::Entry;
use super::*;

const PREFIX: &str = "ledger/sum.strata.test";

async fn index_entry(f: &Fixture, i: usize) -> Option<Bytes> {
    let m = module(i);
    f.read(&format!("{PREFIX}/index/{}@v1.0.0", m.escaped()))
        .await
}

/// Records 0..256 appended one by one, so that the last head (size 256, grown from 255)
/// completes the first tiles; then those tiles and two index entries removed again: the
/// state a writer leaves that died right after storing that head.
async fn unfinished_head() -> Fixture {
    let f = Fixture::new();
    for i in 0..256 {
        assert_eq!(f.append(i).await.unwrap(), i as u64);
    }
    f.ledger.recover().await.unwrap();
    assert!(f.read(&format!("{PREFIX}/tile/8/data/000")).await.is_some());
    assert_eq!(index_entry(&f, 2).await.as_deref(), Some(b"2".as_slice()));
    for key in [
        format!("{PREFIX}/tile/8/0/000"),
        format!("{PREFIX}/tile/8/data/000"),
        format!("{PREFIX}/index/{}@v1.0.0", module(2).escaped()),
        format!("{PREFIX}/index/{}@v1.0.0", module(255).escaped()),
    ] {
        f.store.delete(&ObjectKey::new(key).unwrap()).await.unwrap();
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_and_recover_finish_a_head_whose_writer_died() {
    let f = unfinished_head().await;
    // A replica (nothing in memory) answers from the records the head carries, and a
    // completed tile is written when asked for.
    let r = f.replica();
    assert_eq!(r.find(&module(2), &version()).await.unwrap().unwrap().0, 2);
    let lookup = r
        .lookup(&format!("{}@v1.0.0", module(255).escaped()))
        .await
        .unwrap()
        .unwrap();
    assert!(lookup.starts_with(b"255\n"), "{lookup:?}");
    assert!(index_entry(&f, 2).await.is_none());
    let tile = f.replica().tile("tile/8/data/000").await.unwrap().unwrap();
    assert_eq!(
        tile.as_ref(),
        (0..256)
            .map(|i| text(i) + "\n")
            .collect::<String>()
            .as_bytes()
    );
    assert!(f.read(&format!("{PREFIX}/tile/8/0/000")).await.is_some());

    assert_eq!(f.replica().recover().await.unwrap(), 256);
    assert_eq!(index_entry(&f, 2).await.as_deref(), Some(b"2".as_slice()));
    assert_eq!(
        index_entry(&f, 255).await.as_deref(),
        Some(b"255".as_slice())
    );
    let records = f.records().await;
    assert_eq!(records.len(), 256);
    assert_eq!(
        f.tree().await.hash,
        tree_hash(256, &reference(&records)).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_finishes_the_head_it_grows() {
    let f = unfinished_head().await;
    let r = f.replica();
    assert_eq!(append(&r, 300).await.unwrap(), 256);
    // Appending a version the unfinished head completed finds it; other hashes conflict.
    assert_eq!(append(&r, 2).await.unwrap(), 2);
    let err = r
        .append(&module(255), &version(), &h1("other"), &h1("other"))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Conflict { .. }), "{err}");
    r.recover().await.unwrap();
    assert_eq!(index_entry(&f, 2).await.as_deref(), Some(b"2".as_slice()));
    assert!(f.read(&format!("{PREFIX}/tile/8/data/000")).await.is_some());
    let records = f.records().await;
    assert_eq!(records.len(), 257);
    assert_eq!(records[256], text(300).into_bytes());
    assert_eq!(
        f.tree().await.hash,
        tree_hash(257, &reference(&records)).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_whose_records_are_not_its_root_is_rejected() {
    let f = unfinished_head().await;
    // The stored head's batch altered (record 255 replaced by record 999): the note still
    // signs the right tree, but the batch does not grow the tree of size 255 to it.
    let key = format!("{PREFIX}/head");
    let doc = String::from_utf8(f.read(&key).await.unwrap().to_vec()).unwrap();
    let escaped = |i: usize| serde_json::to_string(&text(i)).unwrap();
    let altered = doc.replace(
        escaped(255).trim_matches('"'),
        escaped(999).trim_matches('"'),
    );
    assert_ne!(altered, doc);
    f.write(&key, altered).await;
    is_corrupt(f.replica().recover().await, "recover");
    is_corrupt(f.replica().tile("tile/8/0/000").await, "tile");
    is_corrupt(
        f.replica()
            .lookup(&format!("{}@v1.0.0", module(999).escaped()))
            .await,
        "lookup of the altered record",
    );
    is_corrupt(append(&f.replica(), 300).await, "append");
}

/// A head document signing `tree` with `signer`.
fn head_doc(tree: &Tree, signer: &SignerKey) -> Bytes {
    let note = head::sign(tree, signer).unwrap();
    head::encode(tree, &note, tree, &[], None).unwrap()
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
    let key = format!("{PREFIX}/head");
    let stored = f.read(&key).await.unwrap();
    let d = head::decode(&stored, &VerifierList::new([signer.verifier()])).unwrap();
    let batch: Vec<&Entry> = d.batch.iter().collect();
    // A head document for `tree` whose note signs `signed`, carrying the stored head's
    // records and tiles.
    let doc_for = |tree: &Tree, signed: &Tree| {
        let note = head::sign(signed, &signer).unwrap();
        head::encode(tree, &note, &d.prev, &batch, d.prev_tiles.as_deref()).unwrap()
    };

    // Correctly signed, but the root is that of two records: caught against the records and
    // tiles the head carries.
    let wrong = Tree {
        n: 3,
        hash: tree_hash(2, &all).unwrap(),
    };
    f.write(&key, doc_for(&wrong, &wrong)).await;
    is_corrupt(f.ledger.recover().await, "recover");
    is_corrupt(f.append(3).await, "append");

    // A document whose own size and root disagree with the note it carries.
    let right = Tree {
        n: 3,
        hash: tree_hash(3, &all).unwrap(),
    };
    f.write(&key, doc_for(&wrong, &right)).await;
    is_corrupt(f.ledger.latest().await, "latest");

    // Not a note at all.
    let text = format_tree(&right);
    let unsigned = serde_json::json!({"size": 3, "root": right.hash.to_string(), "note": text});
    f.write(&key, serde_json::to_vec(&unsigned).unwrap()).await;
    is_corrupt(f.ledger.latest().await, "latest");

    // Restoring the right head heals everything: the append that failed stored nothing.
    f.write(&key, stored).await;
    assert_eq!(f.ledger.recover().await.unwrap(), 3);
    assert_eq!(f.append(3).await.unwrap(), 3);
    assert_eq!(f.records().await.len(), 4);
}

#[tokio::test]
async fn a_changed_tile_is_rejected() {
    let f = Fixture::new();
    for i in 0..3 {
        f.append(i).await.unwrap();
    }
    f.ledger.recover().await.unwrap();
    // One bit of the hash tile the head carries changed.
    let key = format!("{PREFIX}/head");
    let mut doc: serde_json::Value = serde_json::from_slice(&f.read(&key).await.unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let tile = doc["tiles"]["tile/8/0/000.p/2"].as_str().unwrap();
    let mut raw = b64.decode(tile).unwrap();
    raw[0] ^= 1;
    doc["tiles"]["tile/8/0/000.p/2"] = serde_json::Value::String(b64.encode(raw));
    f.write(&key, serde_json::to_vec(&doc).unwrap()).await;
    // A fresh replica (nothing in memory) sees the stored bytes.
    is_corrupt(f.replica().recover().await, "recover");
    is_corrupt(f.replica().tile("tile/8/0/000.p/3").await, "tile");
    is_corrupt(
        f.replica()
            .append(&module(3), &version(), &hashes(3).0, &hashes(3).1)
            .await,
        "append",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_appends_at_once_than_one_head_takes() {
    let f = Fixture::new();
    f.append(0).await.unwrap();
    // 1100 appends at once in one process: more than one head's batch of 1024.
    let appends = (1..1101usize).map(|i| {
        let f = &f;
        async move { (i, f.append(i).await.unwrap()) }
    });
    let ids: Vec<(usize, u64)> = futures::stream::iter(appends)
        .buffer_unordered(1100)
        .collect()
        .await;
    let mut got: Vec<u64> = ids.iter().map(|(_, id)| *id).collect();
    got.sort_unstable();
    assert_eq!(got, (1..1101).collect::<Vec<u64>>());
    f.ledger.recover().await.unwrap();
    let records = f.records().await;
    assert_eq!(records.len(), 1101);
    for (i, id) in ids {
        assert_eq!(records[id as usize], text(i).into_bytes());
    }
    assert_eq!(
        f.tree().await.hash,
        tree_hash(1101, &reference(&records)).unwrap()
    );
}
