//! Signed-note keys (`golang.org/x/mod/sumdb/note`): verifier keys `name+hash+keydata`, signer
//! keys `PRIVATE+KEY+name+hash+keydata`, and the [`Verifier`], [`Signer`] and [`Verifiers`]
//! traits that [`super::note`] opens and signs notes with. Only Ed25519 (algorithm byte 0x01)
//! exists.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use ed25519_dalek::{Signature as EdSignature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::note::NoteError;

const ALG_ED25519: u8 = 1;

/// Go's `base64.StdEncoding`: padded, and lenient about non-zero trailing bits.
pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Checks a key or signature name: non-empty UTF-8, no Unicode white space, no `+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The key hash: the first 4 bytes (big-endian) of `SHA-256(name + "\n" + key)`, where `key` is
/// the algorithm byte followed by the public key.
pub fn key_hash(name: &str, key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// Verifies signatures by one key.
pub trait Verifier {
    /// The key (and signature) name.
    fn name(&self) -> &str;
    /// The key hash that signatures by this key start with.
    fn key_hash(&self) -> u32;
    /// Whether `sig` is a valid signature of `msg`.
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool;
}

/// Signs with one key.
pub trait Signer {
    /// The key (and signature) name.
    fn name(&self) -> &str;
    /// The key hash.
    fn key_hash(&self) -> u32;
    /// A signature of `msg`.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, NoteError>;
}

/// Finds the verifier for a signature line's name and key hash.
pub trait Verifiers {
    /// The verifier for `(name, hash)`: [`NoteError::UnknownKey`] when none is known (the
    /// signature is then kept as unverified), any other error rejects the note.
    fn verifier(&self, name: &str, hash: u32) -> Result<&dyn Verifier, NoteError>;
}

/// Splits `s` at the first `+`; the whole string and "" when there is none (Go's `strings.Cut`).
fn cut_plus(s: &str) -> (&str, &str) {
    s.split_once('+').unwrap_or((s, ""))
}

/// Parses exactly 8 hex digits.
fn parse_hash(hex: &str) -> Option<u32> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// An Ed25519 verifier key parsed from `name+hash+keydata`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    hash: u32,
    /// Raw public key; decoded as a curve point only when verifying, as Go accepts any 32 bytes.
    public: [u8; 32],
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({}+{:08x})", self.name, self.hash)
    }
}

impl VerifierKey {
    /// Parses a verifier key (`NewVerifier`), checking its name, hash and algorithm.
    pub fn parse(vkey: &str) -> Result<VerifierKey, NoteError> {
        let (name, rest) = cut_plus(vkey);
        let (hash16, key64) = cut_plus(rest);
        let (Some(hash), Ok(key)) = (parse_hash(hash16), B64.decode(key64)) else {
            return Err(NoteError::MalformedVerifierId);
        };
        if !is_valid_name(name) || key.is_empty() {
            return Err(NoteError::MalformedVerifierId);
        }
        if hash != key_hash(name, &key) {
            return Err(NoteError::InvalidVerifierHash);
        }
        if key[0] != ALG_ED25519 {
            return Err(NoteError::UnknownVerifierAlgorithm);
        }
        let public = <[u8; 32]>::try_from(&key[1..]).map_err(|_| NoteError::MalformedVerifierId)?;
        Ok(VerifierKey {
            name: name.to_owned(),
            hash,
            public,
        })
    }

    /// The key in its `name+hash+keydata` form.
    pub fn encode(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&self.public);
        format!("{}+{:08x}+{}", self.name, self.hash, B64.encode(key))
    }
}

impl Verifier for VerifierKey {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_hash(&self) -> u32 {
        self.hash
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let (Ok(key), Ok(sig)) = (
            VerifyingKey::from_bytes(&self.public),
            EdSignature::from_slice(sig),
        ) else {
            return false;
        };
        // Plain (cofactorless, canonical-S) verification, as Go's crypto/ed25519.Verify.
        use ed25519_dalek::Verifier as _;
        key.verify(msg, &sig).is_ok()
    }
}

/// An Ed25519 signer key parsed from `PRIVATE+KEY+name+hash+keydata` (keydata holds the seed).
pub struct SignerKey {
    name: String,
    hash: u32,
    key: SigningKey,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({}+{:08x})", self.name, self.hash)
    }
}

impl SignerKey {
    /// Parses a signer key (`NewSigner`); the hash must match the public key of the seed.
    pub fn parse(skey: &str) -> Result<SignerKey, NoteError> {
        let (priv1, rest) = cut_plus(skey);
        let (priv2, rest) = cut_plus(rest);
        let (name, rest) = cut_plus(rest);
        let (hash16, key64) = cut_plus(rest);
        let (Some(hash), Ok(key)) = (parse_hash(hash16), B64.decode(key64)) else {
            return Err(NoteError::MalformedSignerId);
        };
        if priv1 != "PRIVATE" || priv2 != "KEY" || !is_valid_name(name) || key.is_empty() {
            return Err(NoteError::MalformedSignerId);
        }
        if key[0] != ALG_ED25519 {
            return Err(NoteError::UnknownSignerAlgorithm);
        }
        let seed = <[u8; 32]>::try_from(&key[1..]).map_err(|_| NoteError::MalformedSignerId)?;
        let signer = SignerKey::from_seed(name, &seed)?;
        if signer.hash != hash {
            return Err(NoteError::InvalidSignerHash);
        }
        Ok(signer)
    }

    /// The signer for Ed25519 `seed` under `name` (e.g. a test key from fixed or random bytes).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<SignerKey, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::MalformedSignerId);
        }
        let key = SigningKey::from_bytes(seed);
        let mut public = vec![ALG_ED25519];
        public.extend_from_slice(key.verifying_key().as_bytes());
        Ok(SignerKey {
            name: name.to_owned(),
            hash: key_hash(name, &public),
            key,
        })
    }

    /// The private key in its `PRIVATE+KEY+name+hash+keydata` form.
    pub fn encode(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.hash,
            B64.encode(key)
        )
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            hash: self.hash,
            public: self.key.verifying_key().to_bytes(),
        }
    }
}

impl Signer for SignerKey {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_hash(&self) -> u32 {
        self.hash
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, NoteError> {
        use ed25519_dalek::Signer as _;
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// A set of verifiers looked up by `(name, hash)`; a pair listed twice is ambiguous.
#[derive(Default)]
pub struct VerifierList {
    by_id: HashMap<(String, u32), Vec<Box<dyn Verifier + Send + Sync>>>,
}

impl fmt::Debug for VerifierList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_id.keys()).finish()
    }
}

impl VerifierList {
    /// The list of `verifiers`.
    pub fn new<V>(verifiers: impl IntoIterator<Item = V>) -> VerifierList
    where
        V: Verifier + Send + Sync + 'static,
    {
        let mut list = VerifierList::default();
        for v in verifiers {
            list.push(Box::new(v));
        }
        list
    }

    /// Adds a verifier.
    pub fn push(&mut self, v: Box<dyn Verifier + Send + Sync>) {
        self.by_id
            .entry((v.name().to_owned(), v.key_hash()))
            .or_default()
            .push(v);
    }
}

impl Verifiers for VerifierList {
    fn verifier(&self, name: &str, hash: u32) -> Result<&dyn Verifier, NoteError> {
        match self.by_id.get(&(name.to_owned(), hash)).map(Vec::as_slice) {
            None | Some([]) => Err(NoteError::UnknownKey {
                name: name.to_owned(),
                hash,
            }),
            Some([v]) => Ok(v.as_ref()),
            Some(_) => Err(NoteError::AmbiguousKey {
                name: name.to_owned(),
                hash,
            }),
        }
    }
}
