//! The checksum-database vectors: `note.json`, `note_mangled_keys.json`, `tlog.json`,
//! `rfc6962.json` and `sumdb_client.json` (golang.org/x/mod sumdb tests, RFC 6962 reference
//! values, and a byte-exact test server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use strata_core::sumdb::client::{Client, ClientError, ClientOps, OpsError, WriteConfigError};
use strata_core::sumdb::key::{Signer, Verifier, VerifierKey, VerifierList, Verifiers, key_hash};
use strata_core::sumdb::note::{self, Note, NoteError, Signature};
use strata_core::sumdb::record::{Tree, format_record, format_tree, parse_record, parse_tree};
use strata_core::sumdb::tile::{Tile, new_tiles, read_tile_data};
use strata_core::sumdb::tlog::{
    self, Hash, check_record, check_tree, prove_record, prove_tree, record_hash,
    split_stored_hash_index, stored_hash_count, stored_hash_index, stored_hashes, tree_hash,
};
use strata_core::sumdb::{MemoryState, SignerKey};

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected string, got {v}"))
}

fn b64(v: &Value) -> Hash {
    Hash::from_base64(s(v)).unwrap()
}

fn sigs(v: &Value) -> Vec<Signature> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| Signature {
            name: s(&x["name"]).to_owned(),
            hash: u32::from_str_radix(s(&x["hash"]), 16).unwrap(),
            base64: s(&x["base64"]).to_owned(),
        })
        .collect()
}

fn verifier_list(v: &Value) -> VerifierList {
    VerifierList::new(
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| VerifierKey::parse(s(k)).unwrap()),
    )
}

#[test]
fn note_keys_sign_open() {
    let Some(v) = common::load("note.json") else {
        return;
    };
    for k in v["new_verifier_ok"].as_array().unwrap() {
        let key = VerifierKey::parse(s(k)).unwrap();
        assert_eq!(key.encode(), s(k));
    }
    for k in v["new_signer_ok"].as_array().unwrap() {
        let key = SignerKey::parse(s(k)).unwrap_or_else(|e| panic!("{k}: {e}"));
        assert_eq!(key.encode(), s(k));
    }
    for bad in v["new_verifier_bad"].as_array().unwrap() {
        assert!(VerifierKey::parse(s(&bad["key"])).is_err(), "{bad}");
    }
    for kh in v["key_hashes"].as_array().unwrap() {
        let key = base64_decode(s(&kh["key_b64"]));
        assert_eq!(
            format!("{:08x}", key_hash(s(&kh["name"]), &key)),
            s(&kh["hash"])
        );
    }
    // Ed25519 is deterministic: signatures are byte-exact.
    for case in v["sign"].as_array().unwrap() {
        let signer = SignerKey::parse(s(&case["skey"])).unwrap();
        let n = Note {
            text: s(&case["text"]).to_owned(),
            ..Note::default()
        };
        assert_eq!(
            note::sign(&n, &[&signer]).unwrap(),
            s(&case["want"]).as_bytes()
        );
    }
    let add = &v["sign_add_signature"];
    let opened = note::open(
        s(&add["input"]).as_bytes(),
        &verifier_list(&add["verifiers"]),
    )
    .unwrap();
    let enoch = SignerKey::parse(s(&add["skey"])).unwrap();
    assert_eq!(
        note::sign(&opened, &[&enoch]).unwrap(),
        s(&add["want"]).as_bytes()
    );

    let rep = &v["sign_replacing"];
    let n = Note {
        text: s(&rep["text"]).to_owned(),
        sigs: sigs(&rep["existing_sigs"]),
        ..Note::default()
    };
    let peter = SignerKey::parse(s(&rep["skey"])).unwrap();
    assert_eq!(
        note::sign(&n, &[&peter]).unwrap(),
        s(&rep["want"]).as_bytes()
    );

    for case in v["sign_errors"].as_array().unwrap() {
        let n = Note {
            text: s(&case["text"]).to_owned(),
            sigs: case.get("existing_sigs").map(sigs).unwrap_or_default(),
            ..Note::default()
        };
        let err = if let Some(name) = case["signer_name"].as_str() {
            note::sign(&n, &[&NamedSigner(name.to_owned())])
        } else if let Some(skey) = case["skey"].as_str() {
            note::sign(&n, &[&SignerKey::parse(skey).unwrap()])
        } else {
            note::sign(&n, &[])
        };
        assert_eq!(
            err.unwrap_err().to_string(),
            s(&case["want_error"]),
            "{}",
            case["desc"]
        );
    }

    let list = verifier_list(&v["verifier_list"]["verifiers"]);
    for l in v["verifier_list"]["lookups"].as_array().unwrap() {
        let hash = u32::from_str_radix(s(&l["hash"]), 16).unwrap();
        match list.verifier(s(&l["name"]), hash) {
            Ok(found) => assert_eq!(found.name(), s(&l["name"])),
            Err(e) => assert_eq!(e.to_string(), s(&l["want_error"])),
        }
    }

    for case in v["open"].as_array().unwrap() {
        let desc = &case["desc"];
        let got = note::open(
            &common::bytes(&case["msg"]),
            &verifier_list(&case["verifiers"]),
        );
        if let Some(want) = case.get("want") {
            let n = got.unwrap_or_else(|e| panic!("{desc}: {e}"));
            assert_eq!(n.text, s(&want["text"]), "{desc}");
            assert_eq!(n.sigs, sigs(&want["sigs"]), "{desc}");
            assert_eq!(n.unverified_sigs, sigs(&want["unverified_sigs"]), "{desc}");
            continue;
        }
        let err = got.expect_err(desc.as_str().unwrap());
        assert_eq!(err.to_string(), s(&case["want_error"]), "{desc}");
        if let (NoteError::UnverifiedNote(n), Some(want)) = (&err, case.get("error_note")) {
            assert_eq!(n.text, s(&want["text"]));
            assert!(n.sigs.is_empty());
            assert_eq!(n.unverified_sigs, sigs(&want["unverified_sigs"]));
        }
    }

    for case in v["open_custom_verifiers"].as_array().unwrap() {
        let always = AlwaysVerifier(VerifierKey::parse(s(&case["returned_verifier"])).unwrap());
        let err = note::open(s(&case["msg"]).as_bytes(), &always).unwrap_err();
        assert_eq!(err.to_string(), s(&case["want_error"]), "{}", case["desc"]);
    }
}

#[test]
fn note_mangled_keys_rejected() {
    let Some(v) = common::load("note_mangled_keys.json") else {
        return;
    };
    assert!(VerifierKey::parse(s(&v["verifier_key"])).is_ok());
    assert!(SignerKey::parse(s(&v["signer_key"])).is_ok());
    let mut count = 0;
    for field in ["verifier_substrings", "verifier_increments"] {
        for k in v[field].as_array().unwrap() {
            let key = common::bytes(k);
            let key = String::from_utf8_lossy(&key);
            assert!(
                VerifierKey::parse(&key).is_err(),
                "{field}: {key:?} accepted"
            );
            count += 1;
        }
    }
    for field in ["signer_substrings", "signer_increments"] {
        for k in v[field].as_array().unwrap() {
            let key = common::bytes(k);
            let key = String::from_utf8_lossy(&key);
            assert!(SignerKey::parse(&key).is_err(), "{field}: {key:?} accepted");
            count += 1;
        }
    }
    assert!(count > 5000, "only {count} mangled keys");
}

#[test]
fn tlog_formats_and_tiles() {
    let Some(v) = common::load("tlog.json") else {
        return;
    };
    assert_eq!(
        record_hash(b"hello world").to_string(),
        s(&v["record_hash_hello_world"])
    );
    assert_eq!(
        tree_hash(0, &Vec::new()).unwrap().to_string(),
        s(&v["empty_tree_hash"])
    );

    let ft = &v["format_tree"];
    let tree = Tree {
        n: ft["n"].as_u64().unwrap(),
        hash: b64(&ft["hash"]),
    };
    assert_eq!(format_tree(&tree), s(&ft["golden"]));
    let want = Tree {
        n: v["parse_tree_ok_want"]["n"].as_u64().unwrap(),
        hash: b64(&v["parse_tree_ok_want"]["hash"]),
    };
    for text in v["parse_tree_ok"].as_array().unwrap() {
        assert_eq!(parse_tree(&common::bytes(text)).unwrap(), want);
    }
    for text in v["parse_tree_bad"].as_array().unwrap() {
        assert!(parse_tree(&common::bytes(text)).is_err(), "{text}");
    }

    let fr = &v["format_record"];
    let msg = format_record(fr["id"].as_u64().unwrap(), s(&fr["text"]).as_bytes()).unwrap();
    assert_eq!(msg, s(&fr["golden"]).as_bytes());
    for bad in fr["bad_texts"].as_array().unwrap() {
        assert!(format_record(1, &common::bytes(bad)).is_err(), "{bad}");
    }
    for ok in v["parse_record"]["ok"].as_array().unwrap() {
        let input = common::bytes(&ok["in"]);
        let r = parse_record(&input).unwrap();
        assert_eq!(r.id, ok["id"].as_u64().unwrap());
        assert_eq!(r.text, s(&ok["text"]).as_bytes());
        assert_eq!(r.rest, common::bytes(&ok["rest"]));
    }
    for bad in v["parse_record"]["bad"].as_array().unwrap() {
        assert!(parse_record(&common::bytes(bad)).is_err(), "{bad}");
    }

    for case in v["tile_paths"].as_array().unwrap() {
        let path = s(&case["path"]);
        if case["valid"].as_bool().unwrap() {
            let t = Tile {
                h: case["H"].as_u64().unwrap() as u32,
                l: case["L"].as_i64().unwrap() as i32,
                n: case["N"].as_u64().unwrap(),
                w: case["W"].as_u64().unwrap() as u32,
            };
            assert_eq!(t.path(), path);
            assert_eq!(Tile::parse_path(path).unwrap(), t);
        } else {
            assert!(Tile::parse_path(path).is_err(), "{path}");
        }
    }
    for case in v["new_tiles"].as_array().unwrap() {
        let h = case["h"].as_u64().unwrap() as u32;
        let tiles = new_tiles(
            h,
            case["old"].as_u64().unwrap(),
            case["new"].as_u64().unwrap(),
        );
        assert_eq!(
            tiles.len() as u64,
            case["want_count"].as_u64().unwrap(),
            "{case}"
        );
        let paths: Vec<String> = tiles.iter().map(Tile::path).collect();
        let want: Vec<&str> = case["derived_tiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        assert_eq!(paths, want);
    }
}

#[test]
fn tlog_derived_leaf_tree() {
    let Some(v) = common::load("tlog.json") else {
        return;
    };
    let d = &v["derived_leaf_tree"];
    // Grow the tree record by record, as a server does.
    let mut storage: Vec<Hash> = Vec::new();
    let mut tiles = std::collections::BTreeMap::new();
    for i in 0..100u64 {
        let add = stored_hashes(i, format!("leaf {i}").as_bytes(), &storage).unwrap();
        storage.extend(add);
        assert_eq!(storage.len() as u64, stored_hash_count(i + 1));
        let th = tree_hash(i + 1, &storage).unwrap();
        assert_eq!(th, b64(&d["tree_hashes"][i as usize]), "tree {}", i + 1);
        for t in new_tiles(2, i, i + 1) {
            tiles.insert(t.path(), read_tile_data(&t, &storage).unwrap());
        }
    }
    for (i, want) in d["record_hashes_first3"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(record_hash(format!("leaf {i}").as_bytes()), b64(want));
    }
    for (n, want) in d["stored_hash_count"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(stored_hash_count(n as u64), want.as_u64().unwrap());
    }
    for x in d["stored_hash_index_samples"].as_array().unwrap() {
        let (level, n, index) = (
            x["level"].as_u64().unwrap() as u32,
            x["n"].as_u64().unwrap(),
            x["index"].as_u64().unwrap(),
        );
        assert_eq!(stored_hash_index(level, n), index);
        assert_eq!(split_stored_hash_index(index), (level, n));
    }
    for index in 0..storage.len() as u64 {
        let (level, n) = split_stored_hash_index(index);
        assert_eq!(stored_hash_index(level, n), index);
    }
    for p in d["inclusion_proofs"].as_array().unwrap() {
        let (t, n) = (
            p["tree_size"].as_u64().unwrap(),
            p["index"].as_u64().unwrap(),
        );
        let proof = prove_record(t, n, &storage).unwrap();
        let want: Vec<Hash> = p["proof"].as_array().unwrap().iter().map(b64).collect();
        assert_eq!(proof, want, "record {n} in {t}");
        check_record(&proof, t, b64(&p["tree_hash"]), n, b64(&p["leaf_hash"])).unwrap();
        assert!(check_record(&proof, t, b64(&p["tree_hash"]), n, record_hash(b"x")).is_err());
    }
    for p in d["consistency_proofs"].as_array().unwrap() {
        let (t, n) = (
            p["new_size"].as_u64().unwrap(),
            p["old_size"].as_u64().unwrap(),
        );
        let proof = prove_tree(t, n, &storage).unwrap();
        let want: Vec<Hash> = p["proof"].as_array().unwrap().iter().map(b64).collect();
        assert_eq!(proof, want, "tree {n} in {t}");
        check_tree(&proof, t, b64(&p["new_hash"]), n, b64(&p["old_hash"])).unwrap();
    }
    // Every proof between every pair of sizes verifies (x/mod TestTree).
    for t in 1..=100u64 {
        let th = tree_hash(t, &storage).unwrap();
        for n in 0..t {
            let p = prove_record(t, n, &storage).unwrap();
            check_record(&p, t, th, n, record_hash(format!("leaf {n}").as_bytes())).unwrap();
            let p = prove_tree(t, n + 1, &storage).unwrap();
            check_tree(&p, t, th, n + 1, tree_hash(n + 1, &storage).unwrap()).unwrap();
        }
    }
    let want = d["tiles_h2"].as_object().unwrap();
    assert_eq!(tiles.len(), want.len());
    for (path, data) in &tiles {
        assert_eq!(*data, base64_decode(s(&want[path])), "{path}");
    }
}

#[test]
fn rfc6962_reference_vectors() {
    let Some(v) = common::load("rfc6962.json") else {
        return;
    };
    let hex_hash = |x: &Value| Hash::from_slice(&hex::decode(s(x)).unwrap()).unwrap();
    let leaves: Vec<Vec<u8>> = v["leaves_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| hex::decode(s(x)).unwrap())
        .collect();
    let mut storage = Vec::new();
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(record_hash(leaf), hex_hash(&v["leaf_hashes_hex"][i]));
        let add = stored_hashes(i as u64, leaf, &storage).unwrap();
        storage.extend(add);
    }
    let roots: Vec<Hash> = v["roots_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(hex_hash)
        .collect();
    for (n, root) in roots.iter().enumerate() {
        assert_eq!(tree_hash(n as u64, &storage).unwrap(), *root, "root {n}");
    }
    for c in v["inclusion"].as_array().unwrap() {
        let (n, t) = (c["leaf"].as_u64().unwrap() - 1, c["size"].as_u64().unwrap());
        let want: Vec<Hash> = c["proof_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex_hash)
            .collect();
        assert_eq!(prove_record(t, n, &storage).unwrap(), want);
        check_record(
            &want,
            t,
            roots[t as usize],
            n,
            record_hash(&leaves[n as usize]),
        )
        .unwrap();
    }
    for c in v["consistency"].as_array().unwrap() {
        let (n, t) = (c["size1"].as_u64().unwrap(), c["size2"].as_u64().unwrap());
        let want: Vec<Hash> = c["proof_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex_hash)
            .collect();
        assert_eq!(prove_tree(t, n, &storage).unwrap(), want);
        check_tree(&want, t, roots[t as usize], n, roots[n as usize]).unwrap();
        if let Some((first, rest)) = want.split_first() {
            let mut bad = vec![tlog::node_hash(*first, *first)];
            bad.extend_from_slice(rest);
            assert!(check_tree(&bad, t, roots[t as usize], n, roots[n as usize]).is_err());
        }
    }
}

#[test]
fn sumdb_client_scenario() {
    let Some(v) = common::load("sumdb_client.json") else {
        return;
    };
    run_lookup_steps(&v, "fixture_H2");
    run_lookup_steps(&v, "fixture_H8");
    run_bad_tiles(&v);
    run_fork(&v);
}

/// A test server (URL path → body), config and cache in memory, with switches for the
/// network and for corrupting tiles.
#[derive(Default)]
struct Ops {
    remote: Mutex<HashMap<String, Vec<u8>>>,
    state: MemoryState,
    lookups_off: AtomicBool,
    tiles_off: AtomicBool,
    corrupt_tiles: AtomicBool,
    security: Mutex<Vec<String>>,
}

impl Ops {
    fn new(v: &Value, remote: &Value, latest: &[u8]) -> Arc<Ops> {
        let ops = Ops::default();
        for (path, body) in remote.as_object().unwrap() {
            let body = match body.get("b64") {
                Some(b) => base64_decode(s(b)),
                None => s(body).as_bytes().to_vec(),
            };
            ops.remote.lock().unwrap().insert(path.clone(), body);
        }
        let file = format!("{}/latest", s(&v["server_name"]));
        ops.state.write_config(&file, b"", latest).unwrap();
        Arc::new(ops)
    }

    fn config_tree(&self, v: &Value) -> u64 {
        let file = format!("{}/latest", s(&v["server_name"]));
        let msg = self.state.read_config(&file);
        let list = VerifierList::new([VerifierKey::parse(s(&v["verifier_key"])).unwrap()]);
        parse_tree(note::open(&msg, &list).unwrap().text.as_bytes())
            .unwrap()
            .n
    }
}

impl ClientOps for Ops {
    fn read_remote(&self, path: &str) -> Result<Vec<u8>, OpsError> {
        let tile = path.starts_with("/tile/");
        let off = if tile {
            &self.tiles_off
        } else {
            &self.lookups_off
        };
        if off.load(Ordering::SeqCst) {
            return Err(format!("network disabled: {path}").into());
        }
        let mut body = self
            .remote
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| format!("404 {path}"))?;
        if tile && self.corrupt_tiles.load(Ordering::SeqCst) {
            body.iter_mut().for_each(|b| *b ^= 0x80);
        }
        Ok(body)
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
        self.security.lock().unwrap().push(report.to_owned());
    }
}

fn client(v: &Value, ops: &Arc<Ops>, height: u64) -> Client<Arc<Ops>> {
    Client::new(ops.clone(), s(&v["initial_config"]["key"]))
        .unwrap()
        .with_tile_height(height as u32)
}

fn lookup_arg(step: &Value, i: usize) -> &str {
    s(&step["lookup"][i])
}

fn run_lookup_steps(v: &Value, fixture: &str) {
    let f = &v[fixture];
    let ops = Ops::new(v, &f["remote"], s(&f["signed_tree_notes"]["1"]).as_bytes());
    let c = client(v, &ops, f["tile_height"].as_u64().unwrap());
    for step in v["lookup_steps"].as_array().unwrap() {
        if let Some(n) = step.get("expect_latest_before") {
            assert_eq!(ops.config_tree(v), n.as_u64().unwrap());
            c.merge_latest_note(b"").unwrap();
            assert_eq!(c.latest().0.n, n.as_u64().unwrap());
            continue;
        }
        let network = step["network"].as_str().unwrap_or("");
        ops.lookups_off
            .store(network.starts_with("disabled"), Ordering::SeqCst);
        ops.tiles_off.store(!network.is_empty(), Ordering::SeqCst);
        if let Some(path) = step["remote_path"].as_str() {
            assert!(ops.remote.lock().unwrap().contains_key(path));
        }
        let lines = c
            .lookup(lookup_arg(step, 0), lookup_arg(step, 1))
            .unwrap_or_else(|e| panic!("{fixture} {step}: {e}"));
        let want: Vec<&str> = step["want_lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        assert_eq!(lines, want, "{fixture} {step}");
        if let Some(n) = step.get("expect_latest_after") {
            assert_eq!(c.latest().0.n, n.as_u64().unwrap(), "{fixture} {step}");
            assert_eq!(ops.config_tree(v), n.as_u64().unwrap(), "{fixture} {step}");
        }
    }
}

fn run_bad_tiles(v: &Value) {
    let f = &v["fixture_H2"];
    let height = v["client_tile_height"].as_u64().unwrap();
    let note1 = s(&f["signed_tree_notes"]["1"]).as_bytes();
    let cases = v["bad_tiles"].as_array().unwrap();
    let expect = |c: &Client<Arc<Ops>>, case: &Value| {
        let err = c
            .lookup(lookup_arg(case, 0), lookup_arg(case, 1))
            .unwrap_err()
            .to_string();
        let want = s(&case["want_error_contains"]);
        assert!(
            err.contains(want),
            "{}: got {err:?}, want {want:?}",
            case["desc"]
        );
    };

    let ops = Ops::new(v, &f["remote"], note1);
    ops.corrupt_tiles.store(true, Ordering::SeqCst);
    expect(&client(v, &ops, height), &cases[0]);

    let ops = Ops::new(v, &f["remote"], note1);
    let c = client(v, &ops, height);
    c.lookup("rsc.io/sampler", "v1.3.0").unwrap();
    ops.corrupt_tiles.store(true, Ordering::SeqCst);
    expect(&c, &cases[1]);

    let signer = SignerKey::parse(s(&v["signer_key"])).unwrap();
    let text = format_tree(&Tree {
        n: 1,
        hash: Hash([0; 32]),
    });
    let bad_latest = note::sign(
        &Note {
            text,
            ..Note::default()
        },
        &[&signer],
    )
    .unwrap();
    let ops = Ops::new(v, &f["remote"], &bad_latest);
    expect(&client(v, &ops, height), &cases[2]);
}

fn run_fork(v: &Value) {
    let fork = &v["fork"];
    let note1 = s(&v["fixture_H2"]["signed_tree_notes"]["1"]).as_bytes();
    let ops = Ops::new(v, &fork["fixture_tc2_H2_remote"], note1);
    let c = client(v, &ops, v["client_tile_height"].as_u64().unwrap());
    c.lookup("rsc.io/pkg1", "v1.5.4").unwrap();
    assert_eq!(c.latest().0.n, 6);
    assert_eq!(c.latest().1, s(&fork["tc2_tree6_note"]).as_bytes());

    // The other timeline's signed tree 5.
    let body = s(&fork["tc_lookup_pkg1_v1.5.2_response"])
        .as_bytes()
        .to_vec();
    ops.remote
        .lock()
        .unwrap()
        .insert("/lookup/rsc.io/pkg1@v1.5.2".to_owned(), body);
    let err = c.lookup("rsc.io/pkg1", "v1.5.2").unwrap_err();
    assert!(err.to_string().contains(s(&fork["want_error"])), "{err}");
    let ClientError::Lookup { source, .. } = &err else {
        panic!("{err:?}")
    };
    let ClientError::Security { report } = source.as_ref() else {
        panic!("{err:?}")
    };
    assert_eq!(
        ops.security.lock().unwrap().as_slice(),
        std::slice::from_ref(report)
    );
    for want in fork["report_contains"].as_array().unwrap() {
        assert!(report.contains(s(want)), "report lacks {want}:\n{report}");
    }
    let proof: Vec<&str> = report
        .split("proof of misbehavior:\n\t")
        .nth(1)
        .unwrap()
        .split("\n\t")
        .collect();
    let want: Vec<&str> = fork["proof_of_misbehavior"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert_eq!(proof, want);
    // The fork was not accepted: latest stays at tree 6.
    assert_eq!(c.latest().0.n, 6);
    assert_eq!(ops.config_tree(v), 6);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    // Go's StdEncoding: padded, lenient about non-zero trailing bits.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    lenient.decode(text).unwrap()
}

/// A signer with an arbitrary (possibly invalid) name, as in x/mod's Sign error test.
struct NamedSigner(String);

impl Signer for NamedSigner {
    fn name(&self) -> &str {
        &self.0
    }
    fn key_hash(&self) -> u32 {
        0
    }
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, NoteError> {
        Ok(vec![0; 64])
    }
}

/// Returns the same verifier for every lookup (x/mod's mismatched-verifier test).
struct AlwaysVerifier(VerifierKey);

impl Verifiers for AlwaysVerifier {
    fn verifier(&self, _: &str, _: u32) -> Result<&dyn Verifier, NoteError> {
        Ok(&self.0)
    }
}
