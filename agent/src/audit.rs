//! The auditor's hash-chained log: every decision, order and fill appended as an entry whose hash
//! covers its content and the previous entry's hash, so an edited, inserted or deleted row breaks the
//! chain at a row [`verify`] names. The chain is keyed (HMAC-SHA256 with `IA_AUDIT_KEY`): without
//! the key nobody can re-hash an edited suffix or append a forged row. Unkeyed (plain SHA-256) it
//! still shows accidents, not intent, and the binaries say so loudly. Its head, anchored outside the
//! database (`report.json`'s `audit.head`, `audit verify --expect-head`), shows truncation.
//! See docs/architecture.md, "Storage".

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The environment variable holding the audit chain's key.
pub const KEY_ENV: &str = protocol::env::AUDIT_KEY;

/// How the chain's hashes are made.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum AuditKey {
    /// Plain SHA-256: anyone who can write the database can re-hash it.
    #[default]
    Unkeyed,
    /// HMAC-SHA256 under this key.
    Keyed(Vec<u8>),
}

impl std::fmt::Debug for AuditKey {
    /// Never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_keyed() {
            "Keyed(..)"
        } else {
            "Unkeyed"
        })
    }
}

impl AuditKey {
    /// The key in `IA_AUDIT_KEY` (unkeyed when unset or empty).
    pub fn from_env() -> Self {
        match std::env::var(KEY_ENV) {
            Ok(key) if !key.is_empty() => AuditKey::Keyed(key.into_bytes()),
            _ => AuditKey::Unkeyed,
        }
    }

    /// Whether hashes are HMACs under a key (false: plain SHA-256).
    pub fn is_keyed(&self) -> bool {
        matches!(self, AuditKey::Keyed(_))
    }

    /// Hex digest of length-prefixed `parts`: HMAC-SHA256 when keyed, SHA-256 otherwise.
    fn digest(&self, parts: &[&str]) -> String {
        match self {
            AuditKey::Unkeyed => {
                let mut h = Sha256::new();
                for part in parts {
                    h.update((part.len() as u64).to_be_bytes());
                    h.update(part.as_bytes());
                }
                hex::encode(h.finalize())
            }
            AuditKey::Keyed(key) => {
                let mut h =
                    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
                for part in parts {
                    h.update(&(part.len() as u64).to_be_bytes());
                    h.update(part.as_bytes());
                }
                hex::encode(h.finalize().into_bytes())
            }
        }
    }
}

/// SHA-256 (hex) of length-prefixed `parts`: the digest of a stored row's content, committed to
/// its audit entry so that an edit to the row itself shows.
pub fn content_digest(parts: &[&str]) -> String {
    AuditKey::Unkeyed.digest(parts)
}

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit-log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the strategy's chain, from 1 with no gaps.
    pub seq: i64,
    /// When the recorded event happened (the decision or order time), ms since the epoch.
    pub at: i64,
    /// `decision`, `order` or `fill`.
    pub kind: String,
    /// What the entry is about (the decision id).
    pub subject: String,
    /// The record, as JSON.
    pub payload: String,
    /// The previous entry's `hash` ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// [`entry_hash`] of this entry, hex.
    pub hash: String,
}

/// The hash of an entry's content chained to `prev_hash` (hex; keyed by `key`).
pub fn entry_hash(
    key: &AuditKey,
    prev_hash: &str,
    seq: i64,
    at: i64,
    kind: &str,
    subject: &str,
    payload: &str,
) -> String {
    key.digest(&[
        prev_hash,
        &seq.to_string(),
        &at.to_string(),
        kind,
        subject,
        payload,
    ])
}

/// The head of a strategy's chain, appending entries in memory (the store writes them).
#[derive(Debug, Clone)]
pub struct AuditChain {
    seq: i64,
    last_hash: String,
    key: AuditKey,
}

impl Default for AuditChain {
    fn default() -> Self {
        Self::resume(0, GENESIS.to_string(), AuditKey::Unkeyed)
    }
}

impl AuditChain {
    /// Continues a chain whose last entry has `seq` and `hash` (0 and [`GENESIS`] for a new one).
    pub fn resume(seq: i64, hash: String, key: AuditKey) -> Self {
        Self {
            seq,
            last_hash: hash,
            key,
        }
    }

    /// The last entry's (seq, hash): the head to anchor outside the database.
    pub fn head(&self) -> (i64, &str) {
        (self.seq, &self.last_hash)
    }

    /// Whether the chain's hashes are keyed (HMAC) rather than plain SHA-256.
    pub fn is_keyed(&self) -> bool {
        self.key.is_keyed()
    }

    /// Links the next entry (`at` in ms since the epoch) to the head and makes it the new head;
    /// nothing is written until the store saves the returned entry.
    pub fn append(&mut self, at: i64, kind: &str, subject: &str, payload: String) -> AuditEntry {
        self.seq += 1;
        let hash = entry_hash(
            &self.key,
            &self.last_hash,
            self.seq,
            at,
            kind,
            subject,
            &payload,
        );
        AuditEntry {
            seq: self.seq,
            at,
            kind: kind.to_string(),
            subject: subject.to_string(),
            payload,
            prev_hash: std::mem::replace(&mut self.last_hash, hash.clone()),
            hash,
        }
    }
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("row seq={found}: expected seq={expected} (a row was deleted or inserted before it)")]
    /// A row's seq is not the one after its predecessor's.
    Sequence {
        /// The seq the row should have had.
        expected: i64,
        /// The seq the row has.
        found: i64,
    },
    #[error("row seq={seq}: prev_hash does not match the hash of the row before it (a row was removed, inserted or re-linked)")]
    /// A row does not point at the hash of the row before it.
    Link {
        /// The row whose `prev_hash` is wrong.
        seq: i64,
    },
    #[error("row seq={seq}: its content does not match its hash (the row was edited, or it was not written under this IA_AUDIT_KEY)")]
    /// A row's hash does not cover its content (edited, or another key).
    Content {
        /// The row whose hash does not match.
        seq: i64,
    },
}

/// Checks a chain entry by entry, as its rows are read: memory stays constant however long the chain.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev_hash: String,
    verified: u64,
    key: AuditKey,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new(AuditKey::Unkeyed)
    }
}

impl ChainVerifier {
    /// A verifier of chains written under `key`.
    pub fn new(key: AuditKey) -> Self {
        Self {
            prev_hash: GENESIS.to_string(),
            verified: 0,
            key,
        }
    }

    /// The hash of the last intact entry ([`GENESIS`] before any).
    pub fn head(&self) -> &str {
        &self.prev_hash
    }

    /// Checks the next entry of the chain (entries come in `seq` order, from the first).
    pub fn check(&mut self, e: &AuditEntry) -> Result<(), ChainBreak> {
        let expected = self.verified as i64 + 1;
        if e.seq != expected {
            return Err(ChainBreak::Sequence {
                expected,
                found: e.seq,
            });
        }
        if e.prev_hash != self.prev_hash {
            return Err(ChainBreak::Link { seq: e.seq });
        }
        let hash = entry_hash(
            &self.key,
            &e.prev_hash,
            e.seq,
            e.at,
            &e.kind,
            &e.subject,
            &e.payload,
        );
        if hash != e.hash {
            return Err(ChainBreak::Content { seq: e.seq });
        }
        self.prev_hash.clone_from(&e.hash);
        self.verified += 1;
        Ok(())
    }

    /// The intact entries so far.
    pub fn verified(&self) -> u64 {
        self.verified
    }
}

/// Checks a chain given in `seq` order; `Ok(n)` is the number of intact entries.
pub fn verify<'a>(
    key: &AuditKey,
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<u64, ChainBreak> {
    let mut chain = ChainVerifier::new(key.clone());
    for e in entries {
        chain.check(e)?;
    }
    Ok(chain.verified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut c = AuditChain::default();
        (0..n)
            .map(|i| {
                c.append(
                    i as i64,
                    "decision",
                    &format!("d{i}"),
                    format!("{{\"i\":{i}}}"),
                )
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&AuditKey::Unkeyed, &chain(5)), Ok(5));
        assert_eq!(verify(&AuditKey::Unkeyed, &chain(0)), Ok(0));
    }

    #[test]
    fn edits_insertions_and_deletions_are_named() {
        let mut edited = chain(5);
        edited[2].payload = "{\"i\":99}".into();
        assert_eq!(
            verify(&AuditKey::Unkeyed, &edited),
            Err(ChainBreak::Content { seq: 3 })
        );

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(
            verify(&AuditKey::Unkeyed, &deleted),
            Err(ChainBreak::Sequence {
                expected: 2,
                found: 3
            })
        );

        // an inserted row renumbered to fit still breaks the links
        let mut inserted = chain(5);
        let mut forged = inserted[1].clone();
        forged.subject = "forged".into();
        forged.hash = entry_hash(
            &AuditKey::Unkeyed,
            &forged.prev_hash,
            2,
            forged.at,
            &forged.kind,
            "forged",
            &forged.payload,
        );
        inserted[1] = forged;
        assert_eq!(
            verify(&AuditKey::Unkeyed, &inserted),
            Err(ChainBreak::Link { seq: 3 })
        );

        let mut truncated_head = chain(3);
        truncated_head.remove(0);
        assert!(verify(&AuditKey::Unkeyed, &truncated_head).is_err());
    }

    #[test]
    fn a_resumed_chain_continues_where_it_stopped() {
        let first = chain(2);
        let mut c = AuditChain::resume(2, first[1].hash.clone(), AuditKey::Unkeyed);
        let mut all = first.clone();
        all.push(c.append(9, "order", "d9", "{}".into()));
        assert_eq!(verify(&AuditKey::Unkeyed, &all), Ok(3));
    }

    #[test]
    fn a_keyed_chain_cannot_be_forged_without_its_key() {
        let key = AuditKey::Keyed(b"k3y".to_vec());
        let mut c = AuditChain::resume(0, GENESIS.into(), key.clone());
        let mut entries: Vec<AuditEntry> = (0..3)
            .map(|i| c.append(i, "decision", &format!("d{i}"), "{}".into()))
            .collect();
        assert_eq!(verify(&key, &entries), Ok(3));
        assert!(
            verify(&AuditKey::Unkeyed, &entries).is_err(),
            "not a plain SHA-256 chain"
        );
        assert_eq!(
            verify(&AuditKey::Keyed(b"other".to_vec()), &entries),
            Err(ChainBreak::Content { seq: 1 })
        );
        // a forger without the key appends a row hashed the only way it can
        let last = entries.last().unwrap().clone();
        let mut forged = AuditEntry {
            seq: 4,
            at: 9,
            kind: "order".into(),
            subject: "forged".into(),
            payload: "{}".into(),
            prev_hash: last.hash.clone(),
            hash: String::new(),
        };
        forged.hash = entry_hash(
            &AuditKey::Unkeyed,
            &forged.prev_hash,
            4,
            9,
            "order",
            "forged",
            "{}",
        );
        entries.push(forged);
        assert_eq!(verify(&key, &entries), Err(ChainBreak::Content { seq: 4 }));
        assert_eq!(format!("{key:?}"), "Keyed(..)", "the key never shows");
    }
}
