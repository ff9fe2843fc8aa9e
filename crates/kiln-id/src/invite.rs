//! Invite codes. A code is 20 characters of base32 (100 random bits), shown in groups of
//! five (`ABCDE-FGHIJ-KLMNO-PQRST`). Everything else derives from it with SHA-256 under
//! distinct labels: the id that finds the invite on the node, the proof a joiner shows to
//! use it (the node keeps only the proof's hash), and the key that seals the bootstrap
//! bundle (ChaCha20-Poly1305, the id as associated data). A copy of the sealed bundle
//! without the code reveals nothing; the id alone lets nobody use it.

use crate::{Error, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const LEN: usize = 20;
const NONCE: usize = 12;

/// An invite code.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteCode(String);

impl std::fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A code is a secret: never printed by accident.
        f.write_str("InviteCode(…)")
    }
}

fn derive(label: &str, code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kiln invite ");
    h.update(label.as_bytes());
    h.update(b"\n");
    h.update(code.as_bytes());
    h.finalize().into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl InviteCode {
    /// A new random code.
    pub fn generate() -> Result<InviteCode> {
        let mut raw = [0u8; LEN];
        crate::random(&mut raw)?;
        Ok(InviteCode(
            raw.iter()
                .map(|b| ALPHABET[usize::from(b & 31)] as char)
                .collect(),
        ))
    }

    /// Read a code as people type it (any case, with or without dashes and spaces).
    pub fn parse(s: &str) -> Result<InviteCode> {
        let c: String = s
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if c.len() != LEN || !c.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(Error::BadInvite(
                "not an invite code (20 letters and digits 2-7, like ABCDE-FGHIJ-KLMNO-PQRST)"
                    .into(),
            ));
        }
        Ok(InviteCode(c))
    }

    /// The code as shown: four groups of five.
    pub fn display(&self) -> String {
        self.0
            .as_bytes()
            .chunks(5)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The id the node finds the invite by.
    pub fn id(&self) -> String {
        hex(&derive("id", &self.0)[..16])
    }

    /// What a joiner shows to use the invite.
    pub fn proof(&self) -> String {
        hex(&derive("proof", &self.0))
    }

    /// Seal `plain` (the bootstrap bundle) under the code: nonce then ciphertext.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE];
        crate::random(&mut nonce)?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&derive("key", &self.0)));
        let id = self.id();
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| Error::BadInvite("cannot seal the invite".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Open what [`Self::seal`] made with this code; an error for another code or altered
    /// bytes.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE + 16 {
            return Err(Error::BadInvite("the sealed invite is truncated".into()));
        }
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&derive("key", &self.0)));
        let id = self.id();
        cipher
            .decrypt(
                Nonce::from_slice(&sealed[..NONCE]),
                Payload {
                    msg: &sealed[NONCE..],
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| {
                Error::BadInvite("the invite does not open with this code (altered?)".into())
            })
    }
}

/// What the node keeps of a proof: its SHA-256, hex.
pub fn proof_digest(proof: &str) -> String {
    hex(&Sha256::digest(proof.as_bytes()))
}

/// The message a joiner signs with its identity to use invite `id` on node `node` (a
/// did:key): it shows it holds the key it registers.
pub fn join_message(node: &str, id: &str, did: &str) -> Vec<u8> {
    format!("kiln join\n{node}\n{id}\n{did}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_seal_and_open() {
        let c = InviteCode::generate().unwrap();
        let shown = c.display();
        assert_eq!(shown.len(), 23);
        let again = InviteCode::parse(&shown.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(again, c);
        assert_eq!(again.id(), c.id());
        assert_ne!(c.id(), InviteCode::generate().unwrap().id());
        let sealed = c.seal(b"bundle").unwrap();
        assert_eq!(c.open(&sealed).unwrap(), b"bundle");
        let other = InviteCode::generate().unwrap();
        assert!(other.open(&sealed).is_err());
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(c.open(&bad).is_err());
        assert!(InviteCode::parse("short").is_err());
        assert!(InviteCode::parse("ABCDE-FGHIJ-KLMNO-PQRS1").is_err());
        assert_eq!(proof_digest(&c.proof()).len(), 64);
        assert!(!format!("{c:?}").contains(&c.0));
    }
}
