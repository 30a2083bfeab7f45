//! Signed notes (`golang.org/x/mod/sumdb/note`): a text, a blank line, and signature lines
//! `— name base64(keyhash || signature)`. [`open`] verifies a note against known keys with the
//! exact rules of x/mod (unknown signers are kept as unverified, a bad signature by a known key
//! rejects the whole note, a note needs at least one verified signature); [`sign`] adds
//! signatures.

use std::collections::HashSet;

use base64::Engine as _;

use super::key::{B64, Signer, Verifiers, is_valid_name};

/// A signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The key name.
    pub name: String,
    /// The key hash (first 4 bytes of the decoded base64).
    pub hash: u32,
    /// The base64 of key hash and signature, as in the note.
    pub base64: String,
}

/// A note: its text (ending in `\n`) and signatures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Note {
    /// The signed text.
    pub text: String,
    /// Signatures verified by a known key.
    pub sigs: Vec<Signature>,
    /// Signatures by unknown keys (not verified).
    pub unverified_sigs: Vec<Signature>,
}

/// Errors of key parsing, [`open`] and [`sign`]; messages are x/mod's.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// Syntax error in the note (or in an existing signature when signing).
    #[error("malformed note")]
    MalformedNote,
    /// The verifier key string is malformed.
    #[error("malformed verifier id")]
    MalformedVerifierId,
    /// The verifier key's algorithm byte is not Ed25519.
    #[error("unknown verifier algorithm")]
    UnknownVerifierAlgorithm,
    /// The verifier key's hash does not match its name and key.
    #[error("invalid verifier hash")]
    InvalidVerifierHash,
    /// The signer key string is malformed.
    #[error("malformed signer id")]
    MalformedSignerId,
    /// The signer key's algorithm byte is not Ed25519.
    #[error("unknown signer algorithm")]
    UnknownSignerAlgorithm,
    /// The signer key's hash does not match its name and public key.
    #[error("invalid signer hash")]
    InvalidSignerHash,
    /// A signer has an invalid name.
    #[error("invalid signer")]
    InvalidSigner,
    /// No verifier is known for a name and key hash.
    #[error("unknown key {name}+{hash:08x}")]
    UnknownKey {
        /// Key name.
        name: String,
        /// Key hash.
        hash: u32,
    },
    /// More than one verifier is known for a name and key hash.
    #[error("ambiguous key {name}+{hash:08x}")]
    AmbiguousKey {
        /// Key name.
        name: String,
        /// Key hash.
        hash: u32,
    },
    /// A [`Verifiers`] implementation returned a verifier for another name or hash.
    #[error("verifier name or hash doesn't match signature")]
    MismatchedVerifier,
    /// A known key's signature does not verify: the note is rejected.
    #[error("invalid signature for key {name}+{hash:08x}")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key hash.
        hash: u32,
    },
    /// The note parsed but no signature is by a known key; the parsed note is attached.
    #[error("note has no verifiable signatures")]
    UnverifiedNote(Box<Note>),
}

const SIG_PREFIX: &str = "\u{2014} ";

/// At most this many signature lines are looked at; more makes the note malformed.
const MAX_SIGNATURES: usize = 100;

/// Parses and verifies the signed note `msg` against `known`.
pub fn open(msg: &[u8], known: &dyn Verifiers) -> Result<Note, NoteError> {
    // Valid UTF-8 without control characters other than newline.
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::MalformedNote)?;
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::MalformedNote);
    }
    // The signature block follows the last blank line.
    let split = msg.rfind("\n\n").ok_or(NoteError::MalformedNote)?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if !sigs.ends_with('\n') {
        return Err(NoteError::MalformedNote);
    }

    let mut note = Note {
        text: text.to_owned(),
        ..Note::default()
    };
    let mut seen: HashSet<(&str, u32)> = HashSet::new();
    let mut seen_unverified: HashSet<&str> = HashSet::new();
    for (count, full_line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        let line = full_line
            .strip_prefix(SIG_PREFIX)
            .ok_or(NoteError::MalformedNote)?;
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        let raw = B64.decode(b64).map_err(|_| NoteError::MalformedNote)?;
        if !is_valid_name(name) || b64.is_empty() || raw.len() < 5 {
            return Err(NoteError::MalformedNote);
        }
        if count + 1 > MAX_SIGNATURES {
            return Err(NoteError::MalformedNote);
        }
        let hash = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let sig = Signature {
            name: name.to_owned(),
            hash,
            base64: b64.to_owned(),
        };

        let verifier = match known.verifier(name, hash) {
            Ok(v) => v,
            Err(NoteError::UnknownKey { .. }) => {
                if seen_unverified.insert(line) {
                    note.unverified_sigs.push(sig);
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if verifier.name() != name || verifier.key_hash() != hash {
            return Err(NoteError::MismatchedVerifier);
        }
        // A second signature by the same key is ignored unverified.
        if !seen.insert((name, hash)) {
            continue;
        }
        if !verifier.verify(text.as_bytes(), &raw[4..]) {
            return Err(NoteError::InvalidSignature {
                name: name.to_owned(),
                hash,
            });
        }
        note.sigs.push(sig);
    }

    if note.sigs.is_empty() {
        return Err(NoteError::UnverifiedNote(Box::new(note)));
    }
    Ok(note)
}

/// Signs `note.text` with `signers` and returns the encoded note: existing signatures first
/// (except those by the new signers' keys), then the new ones.
pub fn sign(note: &Note, signers: &[&dyn Signer]) -> Result<Vec<u8>, NoteError> {
    if !note.text.ends_with('\n') {
        return Err(NoteError::MalformedNote);
    }
    let mut new_sigs = String::new();
    let mut have: HashSet<(&str, u32)> = HashSet::new();
    for s in signers {
        let (name, hash) = (s.name(), s.key_hash());
        have.insert((name, hash));
        if !is_valid_name(name) {
            return Err(NoteError::InvalidSigner);
        }
        let mut raw = hash.to_be_bytes().to_vec();
        raw.extend(s.sign(note.text.as_bytes())?);
        new_sigs.push_str(&format!("{SIG_PREFIX}{name} {}\n", B64.encode(raw)));
    }

    let mut out = note.text.clone();
    out.push('\n');
    for sig in note.sigs.iter().chain(&note.unverified_sigs) {
        if !is_valid_name(&sig.name) {
            return Err(NoteError::MalformedNote);
        }
        if have.contains(&(sig.name.as_str(), sig.hash)) {
            continue;
        }
        // The base64 must start with the hash it claims.
        let raw = B64
            .decode(&sig.base64)
            .map_err(|_| NoteError::MalformedNote)?;
        if raw.len() < 4 || raw[..4] != sig.hash.to_be_bytes() {
            return Err(NoteError::MalformedNote);
        }
        out.push_str(&format!("{SIG_PREFIX}{} {}\n", sig.name, sig.base64));
    }
    out.push_str(&new_sigs);
    Ok(out.into_bytes())
}
