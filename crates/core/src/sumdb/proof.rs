//! Record (inclusion) and tree (consistency) proofs over the log of [`super::tlog`], in the
//! order of x/mod and RFC 6962: `RecordProof` lists the sibling nearest the leaf first,
//! `TreeProof` is RFC 6962 `PROOF(n, D[t])`.

use super::tlog::{
    Hash, HashReader, TlogError, maxpow2, node_hash, read_exact, sub_tree_hash, sub_tree_index,
};

/// An inclusion proof: the RFC 6962 audit path, sibling nearest the leaf first.
pub type RecordProof = Vec<Hash>;

/// A consistency proof: RFC 6962 `PROOF(n, D[t])`.
pub type TreeProof = Vec<Hash>;

fn leaf_proof_index(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) {
    if lo + 1 == hi {
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        leaf_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        leaf_proof_index(lo + k, hi, n, need);
    }
}

fn leaf_proof(
    lo: u64,
    hi: u64,
    n: u64,
    hashes: &[Hash],
) -> Result<(RecordProof, &[Hash]), TlogError> {
    if lo + 1 == hi {
        return Ok((Vec::new(), hashes));
    }
    let (k, _) = maxpow2(hi - lo);
    let (mut p, th, rest) = if n < lo + k {
        let (p, rest) = leaf_proof(lo, lo + k, n, hashes)?;
        let (th, rest) = sub_tree_hash(lo + k, hi, rest)?;
        (p, th, rest)
    } else {
        let (th, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let (p, rest) = leaf_proof(lo + k, hi, n, rest)?;
        (p, th, rest)
    };
    p.push(th);
    Ok((p, rest))
}

/// The proof that record `n` is in the tree of size `t`.
pub fn prove_record<R: HashReader + ?Sized>(
    t: u64,
    n: u64,
    r: &R,
) -> Result<RecordProof, TlogError> {
    if n >= t {
        return Err(TlogError::InvalidInputs("ProveRecord"));
    }
    let mut indexes = Vec::new();
    leaf_proof_index(0, t, n, &mut indexes);
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = read_exact(r, &indexes)?;
    Ok(leaf_proof(0, t, n, &hashes)?.0)
}

/// Verifies that `p` proves record `n` with hash `h` is in the tree of size `t` with hash `th`.
pub fn check_record(p: &[Hash], t: u64, th: Hash, n: u64, h: Hash) -> Result<(), TlogError> {
    if n >= t {
        return Err(TlogError::ProofFailed);
    }
    if run_record_proof(p, 0, t, n, h)? == th {
        Ok(())
    } else {
        Err(TlogError::ProofFailed)
    }
}

fn run_record_proof(p: &[Hash], lo: u64, hi: u64, n: u64, leaf: Hash) -> Result<Hash, TlogError> {
    if lo + 1 == hi {
        return if p.is_empty() {
            Ok(leaf)
        } else {
            Err(TlogError::ProofFailed)
        };
    }
    let Some((last, rest)) = p.split_last() else {
        return Err(TlogError::ProofFailed);
    };
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        Ok(node_hash(
            run_record_proof(rest, lo, lo + k, n, leaf)?,
            *last,
        ))
    } else {
        Ok(node_hash(
            *last,
            run_record_proof(rest, lo + k, hi, n, leaf)?,
        ))
    }
}

fn tree_proof_index(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) {
    if n == hi {
        if lo != 0 {
            sub_tree_index(lo, hi, need);
        }
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        tree_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        tree_proof_index(lo + k, hi, n, need);
    }
}

fn tree_proof(
    lo: u64,
    hi: u64,
    n: u64,
    hashes: &[Hash],
) -> Result<(TreeProof, &[Hash]), TlogError> {
    if n == hi {
        if lo == 0 {
            return Ok((Vec::new(), hashes));
        }
        let (th, rest) = sub_tree_hash(lo, hi, hashes)?;
        return Ok((vec![th], rest));
    }
    let (k, _) = maxpow2(hi - lo);
    let (mut p, th, rest) = if n <= lo + k {
        let (p, rest) = tree_proof(lo, lo + k, n, hashes)?;
        let (th, rest) = sub_tree_hash(lo + k, hi, rest)?;
        (p, th, rest)
    } else {
        let (th, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let (p, rest) = tree_proof(lo + k, hi, n, rest)?;
        (p, th, rest)
    };
    p.push(th);
    Ok((p, rest))
}

/// The proof that the tree of size `n` is a prefix of the tree of size `t` (1 ≤ n ≤ t).
pub fn prove_tree<R: HashReader + ?Sized>(t: u64, n: u64, r: &R) -> Result<TreeProof, TlogError> {
    if n < 1 || n > t {
        return Err(TlogError::InvalidInputs("ProveTree"));
    }
    let mut indexes = Vec::new();
    tree_proof_index(0, t, n, &mut indexes);
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = read_exact(r, &indexes)?;
    Ok(tree_proof(0, t, n, &hashes)?.0)
}

/// Verifies that `p` proves the tree of size `n` with hash `h` is a prefix of the tree of size
/// `t` with hash `th`.
pub fn check_tree(p: &[Hash], t: u64, th: Hash, n: u64, h: Hash) -> Result<(), TlogError> {
    if n < 1 || n > t {
        return Err(TlogError::ProofFailed);
    }
    let (h2, th2) = run_tree_proof(p, 0, t, n, h)?;
    if th2 == th && h2 == h {
        Ok(())
    } else {
        Err(TlogError::ProofFailed)
    }
}

/// Returns (hash of the old tree's part of `[lo, hi)`, hash of `[lo, hi)`).
fn run_tree_proof(
    p: &[Hash],
    lo: u64,
    hi: u64,
    n: u64,
    old: Hash,
) -> Result<(Hash, Hash), TlogError> {
    if n == hi {
        if lo == 0 {
            return if p.is_empty() {
                Ok((old, old))
            } else {
                Err(TlogError::ProofFailed)
            };
        }
        return match p {
            [only] => Ok((*only, *only)),
            _ => Err(TlogError::ProofFailed),
        };
    }
    let Some((last, rest)) = p.split_last() else {
        return Err(TlogError::ProofFailed);
    };
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        let (oh, th) = run_tree_proof(rest, lo, lo + k, n, old)?;
        Ok((oh, node_hash(th, *last)))
    } else {
        let (oh, th) = run_tree_proof(rest, lo + k, hi, n, old)?;
        Ok((node_hash(*last, oh), node_hash(*last, th)))
    }
}
