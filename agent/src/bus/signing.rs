//! Who published a stream message, proved (docs/architecture.md, "Identities and permissions"):
//! the server's permissions say who may publish on a subject, but a consumer of one team can make
//! the server push its stream's messages onto another team's subjects, and nothing in a message
//! says who wrote it. So the decisions and candles on `….decision` carry the coordinator's
//! signature, and the order reports on `….order` the executor's: an ed25519 signature by the
//! identity's own nkey (the seed it connects with) over the subject, the message id and the
//! payload, in the header [`SIGNATURE_HEADER`]. A service given its peer's public key acts on or
//! records only what that key signed for that subject.

use super::auth::NatsAuth;
use std::sync::Arc;

/// The header that carries a stream message's signature: hex of the 64-byte ed25519 signature.
pub const SIGNATURE_HEADER: &str = "Ia-Signature";

/// Why a key could not be used, or a message was not taken.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    /// A public key given to check signatures is not a user nkey (`U…`, 56 characters).
    #[error("{flag}: not a user nkey public key (U…): {reason}")]
    BadPublicKey {
        /// The flag or variable it came from.
        flag: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The seed in the credentials cannot sign.
    #[error("the NATS credentials' seed cannot sign: {0}")]
    BadSeed(String),
    /// The message carries no signature.
    #[error("unsigned (no {SIGNATURE_HEADER} header)")]
    Unsigned,
    /// The signature is not `who`'s over this subject, id and payload.
    #[error("not signed by the {who}'s key")]
    Forged {
        /// Whose key it was checked against.
        who: &'static str,
    },
}

/// The bytes a signature covers: the subject and the message id bind it to the team's subject and
/// to the message, so that a signed message pushed onto another subject does not verify.
fn signed(subject: &str, id: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(subject.len() + id.len() + payload.len() + 2);
    bytes.extend_from_slice(subject.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(id.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(payload);
    bytes
}

/// Signs what this identity publishes on a stream, with the seed it connects with.
#[derive(Clone)]
pub struct Signer(Arc<nkeys::KeyPair>);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the public key only: never the seed
        f.debug_tuple("Signer").field(&self.0.public_key()).finish()
    }
}

impl Signer {
    /// The signer of an identity that connects with an nkey seed or a `.creds` file (whose seed
    /// is its second block); `None` for a user and password or no credentials.
    pub fn of(auth: &NatsAuth) -> Result<Option<Self>, SigningError> {
        let seed = match auth {
            NatsAuth::Nkey { seed } => seed.clone(),
            NatsAuth::Creds { path } => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| SigningError::BadSeed(format!("{}: {e}", path.display())))?;
                creds_seed(&text).ok_or_else(|| {
                    SigningError::BadSeed(format!("{}: no user nkey seed", path.display()))
                })?
            }
            NatsAuth::Password { .. } | NatsAuth::Anonymous => return Ok(None),
        };
        let pair = nkeys::KeyPair::from_seed(seed.trim())
            .map_err(|_| SigningError::BadSeed("not an nkey seed".into()))?;
        Ok(Some(Self(Arc::new(pair))))
    }

    /// The signature of `payload` published on `subject` with message id `id`, in hex.
    pub fn sign(&self, subject: &str, id: &str, payload: &[u8]) -> String {
        // signing with a pair made from a seed does not fail
        let signature = self
            .0
            .sign(&signed(subject, id, payload))
            .unwrap_or_default();
        hex::encode(signature)
    }

    /// The public key that checks this signer's signatures.
    pub fn public_key(&self) -> String {
        self.0.public_key()
    }
}

/// The seed in a `.creds` file: the line after `-----BEGIN USER NKEY SEED-----`.
fn creds_seed(text: &str) -> Option<String> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains("BEGIN USER NKEY SEED"));
    lines.next()?;
    lines
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// Checks that a message was signed by one identity's key (`who`: "coordinator", "executor").
#[derive(Clone)]
pub struct Verifier {
    key: Arc<nkeys::KeyPair>,
    who: &'static str,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("who", &self.who)
            .field("key", &self.key.public_key())
            .finish()
    }
}

impl Verifier {
    /// A checker of `who`'s signatures with its `public_key` (from `flag`, named in an error).
    pub fn new(
        public_key: &str,
        who: &'static str,
        flag: &'static str,
    ) -> Result<Self, SigningError> {
        let key = public_key.trim();
        if !key.starts_with('U') {
            return Err(SigningError::BadPublicKey {
                flag,
                reason: "a user key starts with U".into(),
            });
        }
        let key = nkeys::KeyPair::from_public_key(key).map_err(|e| SigningError::BadPublicKey {
            flag,
            reason: e.to_string(),
        })?;
        Ok(Self {
            key: Arc::new(key),
            who,
        })
    }

    /// Whether `signature` (hex, from the header) is `who`'s over this subject, id and payload.
    pub fn check(
        &self,
        subject: &str,
        id: &str,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<(), SigningError> {
        let signature = signature.ok_or(SigningError::Unsigned)?;
        let forged = SigningError::Forged { who: self.who };
        let bytes = hex::decode(signature).map_err(|_| forged.clone())?;
        self.key
            .verify(&signed(subject, id, payload), &bytes)
            .map_err(|_| forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        let seed = nkeys::KeyPair::new_user().seed().unwrap();
        Signer::of(&NatsAuth::Nkey { seed }).unwrap().unwrap()
    }

    #[test]
    fn a_signature_holds_for_its_subject_id_and_payload_only() {
        let coordinator = signer();
        let check = Verifier::new(
            &coordinator.public_key(),
            "coordinator",
            "--coordinator-key",
        )
        .unwrap();
        let (subject, id, payload) = ("ia.t.s.decision", "ia.t.s.decision/d1", b"{\"v\":1}");
        let signature = coordinator.sign(subject, id, payload);
        assert_eq!(check.check(subject, id, payload, Some(&signature)), Ok(()));
        let forged = Err(SigningError::Forged { who: "coordinator" });
        // pushed onto another team's subject, another id, edited, or signed by another key
        assert_eq!(
            check.check("ia.t.other.decision", id, payload, Some(&signature)),
            forged
        );
        assert_eq!(
            check.check(subject, "ia.t.s.decision/d2", payload, Some(&signature)),
            forged
        );
        assert_eq!(
            check.check(subject, id, b"{\"v\":2}", Some(&signature)),
            forged
        );
        let stranger = signer().sign(subject, id, payload);
        assert_eq!(check.check(subject, id, payload, Some(&stranger)), forged);
        assert_eq!(check.check(subject, id, payload, Some("zz")), forged);
        assert_eq!(
            check.check(subject, id, payload, None),
            Err(SigningError::Unsigned)
        );
    }

    #[test]
    fn keys_come_from_seeds_and_creds_files_and_bad_ones_are_named() {
        assert!(Signer::of(&NatsAuth::Anonymous).unwrap().is_none());
        let pair = nkeys::KeyPair::new_user();
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\neyJ0eXAi.x.y\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            pair.seed().unwrap()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.creds");
        std::fs::write(&path, creds).unwrap();
        let from_creds = Signer::of(&NatsAuth::Creds { path }).unwrap().unwrap();
        assert_eq!(from_creds.public_key(), pair.public_key());
        assert!(!format!("{from_creds:?}").contains(&pair.seed().unwrap()));
        let bad = Verifier::new("SUAB", "coordinator", "--coordinator-key").unwrap_err();
        assert!(bad.to_string().starts_with("--coordinator-key: "), "{bad}");
        assert!(Verifier::new("UABC", "coordinator", "--coordinator-key").is_err());
    }
}
