//! The protocol: core's verifying client (the same checks as the go command) against the
//! ledger, and every tile and lookup byte for byte against a reference log.

use std::sync::Mutex;

use futures::StreamExt as _;
use strata_core::sumdb::record::format_record;
use strata_core::sumdb::tile::read_tile_data;
use strata_core::sumdb::{Client, ClientOps, MemoryState, OpsError, Tile, WriteConfigError};
use tokio::runtime::Handle;

use super::*;

/// The client's I/O: `/latest`, `/lookup/…` and `/tile/…` answered by the ledger, a 404 being
/// an error as over HTTP.
struct LedgerOps {
    ledger: Arc<Ledger>,
    runtime: Handle,
    state: MemoryState,
    security_errors: Mutex<Vec<String>>,
}

impl ClientOps for LedgerOps {
    fn read_remote(&self, path: &str) -> Result<Vec<u8>, OpsError> {
        let (ledger, path) = (self.ledger.clone(), path.to_owned());
        let body = self.runtime.block_on(async move {
            if let Some(key) = path.strip_prefix("/lookup/") {
                ledger.lookup(key).await
            } else if path == "/latest" {
                ledger.latest().await.map(Some)
            } else {
                ledger.tile(&path).await
            }
            .map(|body| body.ok_or_else(|| format!("{path}: 404 Not Found")))
        })??;
        Ok(body.to_vec())
    }
    fn read_config(&self, file: &str) -> Result<Vec<u8>, OpsError> {
        Ok(self.state.read_config(file))
    }
    fn write_config(&self, file: &str, old: &[u8], new: &[u8]) -> Result<(), WriteConfigError> {
        self.state.write_config(file, old, new)
    }
    fn read_cache(&self, file: &str) -> Option<Vec<u8>> {
        self.state.read_cache(file)
    }
    fn write_cache(&self, file: &str, data: &[u8]) {
        self.state.write_cache(file, data)
    }
    fn security_error(&self, report: &str) {
        self.security_errors.lock().unwrap().push(report.to_owned());
    }
}

/// Appends records `range` of the fixture set, 16 at a time (so commits take groups); their
/// ids by record number.
async fn append_all(ledger: &Arc<Ledger>, range: std::ops::Range<usize>) -> Vec<(usize, u64)> {
    futures::stream::iter(range)
        .map(|i| {
            let ledger = ledger.clone();
            async move { (i, append(&ledger, i).await.unwrap()) }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Looks up every `(record, id)` with the verifying client on a blocking thread.
async fn verify(client: &Arc<Client<Arc<LedgerOps>>>, ids: &[(usize, u64)]) {
    let (client, ids) = (client.clone(), ids.to_vec());
    tokio::task::spawn_blocking(move || {
        for (i, _) in ids {
            let m = module(i);
            let lines = client.lookup(m.as_str(), "v1.0.0").unwrap();
            let go_mod = client.lookup(m.as_str(), "v1.0.0/go.mod").unwrap();
            let (zip_h1, mod_h1) = hashes(i);
            assert_eq!(lines, [format!("{m} v1.0.0 {zip_h1}")]);
            assert_eq!(go_mod, [format!("{m} v1.0.0/go.mod {mod_h1}")]);
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_client_verifies_lookups_across_tiles_and_growth() {
    let f = Fixture::new();
    let ops = Arc::new(LedgerOps {
        ledger: f.ledger.clone(),
        runtime: Handle::current(),
        state: MemoryState::default(),
        security_errors: Mutex::new(Vec::new()),
    });
    let client = Arc::new(Client::new(ops.clone(), &f.ledger.verifier_key()).unwrap());

    // 300 records: one full tile at height 8 and a partial one, at levels 0 and 1.
    let first = append_all(&f.ledger, 0..300).await;
    verify(&client, &first).await;
    assert_eq!(client.latest().0.n, 300);

    // More records: the client proves the new head consistent with the one it holds, then
    // verifies old and new records against the new head.
    let second = append_all(&f.ledger, 300..530).await;
    verify(&client, &second[..20]).await;
    assert_eq!(client.latest().0.n, 530);
    verify(&client, &first[..20]).await;

    // A client that starts from scratch on the bigger tree agrees.
    let fresh = Arc::new(Client::new(ops.clone(), &f.ledger.verifier_key()).unwrap());
    verify(&fresh, &first[280..]).await;
    assert!(ops.security_errors.lock().unwrap().is_empty());
}

#[tokio::test]
async fn tiles_and_lookups_are_those_of_the_reference_log() {
    let f = Fixture::new();
    let mut checked_sizes = Vec::new();
    for size in [1usize, 3, 255, 256, 257, 300, 513] {
        let have = f.records().await.len();
        for i in have..size {
            f.append(i).await.unwrap();
        }
        let records = f.records().await;
        let all = reference(&records);
        let n = records.len() as u64;
        assert_eq!(f.tree().await.hash, tree_hash(n, &all).unwrap());
        for (tile, want) in every_tile(n, &records, &all) {
            let got = f.ledger.tile(&tile.path()).await.unwrap();
            assert_eq!(
                got.as_deref(),
                Some(want.as_slice()),
                "{} at size {n}",
                tile.path()
            );
            assert_eq!(
                f.ledger.tile(&format!("/{}", tile.path())).await.unwrap(),
                got
            );
        }
        for beyond in beyond_the_tree(n) {
            assert_eq!(
                f.ledger.tile(&beyond.path()).await.unwrap(),
                None,
                "{}",
                beyond.path()
            );
        }
        let note = f.ledger.latest().await.unwrap();
        for id in [0, n as usize / 2, n as usize - 1] {
            let m = module(id);
            let key = format!("{}@v1.0.0", m.escaped());
            let mut want = format_record(id as u64, &records[id]).unwrap();
            want.extend_from_slice(&note);
            assert_eq!(f.ledger.lookup(&key).await.unwrap().unwrap().as_ref(), want);
        }
        checked_sizes.push(n);
    }
    assert_eq!(
        f.ledger.lookup("example.com/nope@v1.0.0").await.unwrap(),
        None
    );
    assert_eq!(f.ledger.tile("tile/4/0/000").await.unwrap(), None);
    assert_eq!(checked_sizes, [1, 3, 255, 256, 257, 300, 513]);
}

/// Every tile of a tree of `n` records at every width that exists (hash tiles from the
/// reference hashes, data tiles as x/mod's server formats them), with its expected body.
fn every_tile(n: u64, records: &[Vec<u8>], all: &[Hash]) -> Vec<(Tile, Vec<u8>)> {
    let mut out = Vec::new();
    for l in 0..3i32 {
        let count = n >> (8 * l);
        for tn in 0..count.div_ceil(256) {
            let available = (count - tn * 256).min(256);
            for w in [1, available / 2, available - 1, available] {
                if w == 0 {
                    continue;
                }
                let t = Tile {
                    h: 8,
                    l,
                    n: tn,
                    w: w as u32,
                };
                out.push((t, read_tile_data(&t, all).unwrap()));
                if l == 0 {
                    let start = (tn * 256) as usize;
                    let data = records[start..start + w as usize]
                        .iter()
                        .flat_map(|r| r.iter().copied().chain([b'\n']))
                        .collect();
                    out.push((Tile { l: -1, ..t }, data));
                }
            }
        }
    }
    out
}

/// Tiles just past what a tree of `n` records has.
fn beyond_the_tree(n: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    for l in [-1, 0, 1, 2] {
        let count = n >> (8 * l.max(0));
        let (tn, w) = (count / 256, count % 256 + 1);
        out.push(Tile {
            h: 8,
            l,
            n: tn,
            w: w as u32,
        });
        out.push(Tile {
            h: 8,
            l,
            n: tn + 1,
            w: 1,
        });
    }
    out
}
