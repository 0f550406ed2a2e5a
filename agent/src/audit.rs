//! The auditor's hash-chained log: every decision, order and fill appended as an entry whose hash
//! covers its content and the previous entry's hash, so an edited, inserted or deleted row breaks the
//! chain at a row [`verify`] names.

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit-log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: i64,
    /// `decision`, `order` or `fill`.
    pub kind: String,
    /// What the entry is about (the decision id).
    pub subject: String,
    /// The record, as JSON.
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry's content chained to `prev_hash` (SHA-256, hex).
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    kind: &str,
    subject: &str,
    payload: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &seq.to_string(),
        &at.to_string(),
        kind,
        subject,
        payload,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The head of a strategy's chain, appending entries in memory (the store writes them).
#[derive(Debug, Clone)]
pub struct AuditChain {
    seq: i64,
    last_hash: String,
}

impl Default for AuditChain {
    fn default() -> Self {
        Self::resume(0, GENESIS.to_string())
    }
}

impl AuditChain {
    /// Continues a chain whose last entry has `seq` and `hash` (0 and [`GENESIS`] for a new one).
    pub fn resume(seq: i64, hash: String) -> Self {
        Self {
            seq,
            last_hash: hash,
        }
    }

    pub fn append(&mut self, at: i64, kind: &str, subject: &str, payload: String) -> AuditEntry {
        self.seq += 1;
        let hash = entry_hash(&self.last_hash, self.seq, at, kind, subject, &payload);
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
    Sequence { expected: i64, found: i64 },
    #[error("row seq={seq}: prev_hash does not match the hash of the row before it (a row was removed, inserted or re-linked)")]
    Link { seq: i64 },
    #[error("row seq={seq}: its content does not match its hash (the row was edited)")]
    Content { seq: i64 },
}

/// Checks a chain entry by entry, as its rows are read: memory stays constant however long the chain.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev_hash: String,
    verified: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            prev_hash: GENESIS.to_string(),
            verified: 0,
        }
    }
}

impl ChainVerifier {
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
        if entry_hash(&e.prev_hash, e.seq, e.at, &e.kind, &e.subject, &e.payload) != e.hash {
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
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> Result<u64, ChainBreak> {
    let mut chain = ChainVerifier::default();
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
        assert_eq!(verify(&chain(5)), Ok(5));
        assert_eq!(verify(&chain(0)), Ok(0));
    }

    #[test]
    fn edits_insertions_and_deletions_are_named() {
        let mut edited = chain(5);
        edited[2].payload = "{\"i\":99}".into();
        assert_eq!(verify(&edited), Err(ChainBreak::Content { seq: 3 }));

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(
            verify(&deleted),
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
            &forged.prev_hash,
            2,
            forged.at,
            &forged.kind,
            "forged",
            &forged.payload,
        );
        inserted[1] = forged;
        assert_eq!(verify(&inserted), Err(ChainBreak::Link { seq: 3 }));

        let mut truncated_head = chain(3);
        truncated_head.remove(0);
        assert!(verify(&truncated_head).is_err());
    }

    #[test]
    fn a_resumed_chain_continues_where_it_stopped() {
        let first = chain(2);
        let mut c = AuditChain::resume(2, first[1].hash.clone());
        let mut all = first.clone();
        all.push(c.append(9, "order", "d9", "{}".into()));
        assert_eq!(verify(&all), Ok(3));
    }
}
