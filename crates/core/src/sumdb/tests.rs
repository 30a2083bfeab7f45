//! Unit tests of the tile hash reader's authentication and of key round trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use super::key::{SignerKey, VerifierKey, VerifierList};
use super::note::{Note, open, sign};
use super::record::Tree;
use super::tile::{Tile, TileHashReader, TileReader, new_tiles, read_tile_data};
use super::tlog::{Hash, HashReader, TlogError, stored_hash_index, stored_hashes, tree_hash};

/// Tiles of height 2 for a tree of `n` leaves, served from a map (optionally tampered).
struct MapTiles(HashMap<Tile, Vec<u8>>);

impl TileReader for MapTiles {
    fn height(&self) -> u32 {
        2
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles
            .iter()
            .map(|t| {
                let full = self.0.get(&t.full()).or_else(|| self.0.get(t));
                let data = full.ok_or_else(|| TlogError::Read(t.path().into()))?;
                Ok(data[..t.w as usize * 32].to_vec())
            })
            .collect()
    }
    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

fn tree_of(n: u64) -> (Vec<Hash>, Tree, MapTiles) {
    let mut storage = Vec::new();
    let mut tiles = HashMap::new();
    for i in 0..n {
        let add = stored_hashes(i, format!("leaf {i}").as_bytes(), &storage).unwrap();
        storage.extend(add);
        for t in new_tiles(2, i, i + 1) {
            tiles.insert(t, read_tile_data(&t, &storage).unwrap());
        }
    }
    let tree = Tree {
        n,
        hash: tree_hash(n, &storage).unwrap(),
    };
    (storage, tree, MapTiles(tiles))
}

#[test]
fn tile_hash_reader_reads_every_stored_hash() {
    for n in 1..40u64 {
        let (storage, tree, tiles) = tree_of(n);
        let thr = TileHashReader::new(tree, &tiles);
        let all: Vec<u64> = (0..stored_hash_index(0, n)).collect();
        assert_eq!(thr.read_hashes(&all).unwrap(), storage[..all.len()]);
        assert_eq!(tree_hash(n, &thr).unwrap(), tree.hash);
        assert!(matches!(
            thr.read_hashes(&[stored_hash_index(0, n)]),
            Err(TlogError::IndexNotInTree)
        ));
    }
}

#[test]
fn tampered_child_tile_is_rejected() {
    // Tree of 7 leaves, height 2: its subtrees live in tiles 2/1/000.p/1 and 2/0/001.p/3, so
    // leaf 0 comes from the full tile 2/0/000, which must be checked against its parent tile.
    // (x/mod's loop starts that check at len(stx) and would skip this tile.)
    let (_, tree, mut tiles) = tree_of(7);
    let leaf_tile = Tile {
        h: 2,
        l: 0,
        n: 0,
        w: 4,
    };
    tiles.0.get_mut(&leaf_tile).unwrap()[0] ^= 1;
    let thr = TileHashReader::new(tree, &tiles);
    assert!(matches!(
        thr.read_hashes(&[stored_hash_index(0, 0)]),
        Err(TlogError::InconsistentTile)
    ));
    // A tampered subtree tile fails against the tree hash itself.
    let (_, tree, mut tiles) = tree_of(7);
    tiles
        .0
        .get_mut(&Tile {
            h: 2,
            l: 0,
            n: 1,
            w: 3,
        })
        .unwrap()[5] ^= 1;
    let thr = TileHashReader::new(tree, &tiles);
    assert!(matches!(
        thr.read_hashes(&[stored_hash_index(0, 6)]),
        Err(TlogError::InconsistentTile)
    ));
}

#[test]
fn tile_paths_reject_noncanonical_spellings() {
    for bad in [
        "tile/2/0/1",
        "tile/2/0/0001",
        "tile/2/0/x000/001",
        "tile/2/0/000.p/4",
        "tile/2/0/000.p/0",
        "tile/31/0/000",
        "tile/0/0/000",
        "tile/2/+1/000",
        "tile/2/0/000/",
        "tile/2/data/000.p/01",
        "tile/2/0/x999999999999999999/000",
    ] {
        assert!(Tile::parse_path(bad).is_err(), "{bad}");
    }
}

#[test]
fn seeded_signer_round_trips() {
    let signer = SignerKey::from_seed("example.com/sumdb", &[7; 32]).unwrap();
    assert_eq!(
        SignerKey::parse(&signer.encode()).unwrap().encode(),
        signer.encode()
    );
    let vkey = signer.verifier().encode();
    let verifier = VerifierKey::parse(&vkey).unwrap();
    let note = Note {
        text: "go.sum database tree\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n".into(),
        ..Note::default()
    };
    let msg = sign(&note, &[&signer]).unwrap();
    let opened = open(&msg, &VerifierList::new([verifier])).unwrap();
    assert_eq!(opened.text, note.text);
    assert!(SignerKey::from_seed("bad name", &[0; 32]).is_err());
}

#[test]
fn absurd_tile_coordinates_are_errors() {
    let (storage, _, _) = tree_of(5);
    for t in [
        Tile::parse_path("tile/30/0/x999/x999/x999/x999/x999/999").unwrap(),
        Tile::parse_path("tile/2/2000000000/000").unwrap(),
        Tile {
            h: 2,
            l: -1,
            n: 0,
            w: 4,
        },
    ] {
        assert!(read_tile_data(&t, &storage).is_err(), "{}", t.path());
    }
    let t = Tile::parse_path("tile/2/0/001").unwrap();
    assert!(matches!(
        read_tile_data(&t, &storage),
        Err(TlogError::IndexNotInTree)
    ));
}

#[test]
fn data_tiles_split_into_their_records() {
    use super::record::split_data_tile;
    let a = b"example.com/a v1.0.0 h1:x=\nexample.com/a v1.0.0/go.mod h1:y=\n";
    let b = b"example.com/b v1.0.0 h1:z=\nexample.com/b v1.0.0/go.mod h1:w=\n";
    let tile = [a.as_slice(), b"\n", b.as_slice(), b"\n"].concat();
    assert_eq!(split_data_tile(&tile), vec![a.as_slice(), b.as_slice()]);
    assert_eq!(split_data_tile(&tile[..a.len() + 1]), vec![a.as_slice()]);
    // A record whose blank line has not come yet is not a record.
    assert_eq!(split_data_tile(&tile[..tile.len() - 1]), vec![a.as_slice()]);
    assert!(split_data_tile(b"").is_empty());
}
