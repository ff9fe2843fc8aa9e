//! kiln identities: every node and person is an ed25519 key, written as a `did:key`.
//! The same key gives the node's libp2p peer ID.
//!
//! ```
//! let key = kiln_id::NodeKey::generate().unwrap();
//! assert!(key.did().starts_with("did:key:z6Mk"));
//! assert!(key.peer_id().starts_with("12D3KooW"));
//! assert_eq!(kiln_id::parse_did_key(&key.did()).unwrap(), key.public_key());
//! ```
#![deny(missing_docs)]

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::io::Write;
use std::path::Path;

pub mod invite;
pub mod token;

/// Everything that can go wrong with keys and identifiers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a key file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A key file that is not a kiln key.
    #[error("{0}")]
    BadKeyFile(String),
    /// A string that is not an ed25519 `did:key`.
    #[error("invalid did:key {input:?}: {reason}")]
    BadDid {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An invite code that is not one, or that does not open what it was given.
    #[error("{0}")]
    BadInvite(String),
    /// The system's random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// A key file is already there and was not to be replaced.
    #[error("{0} already exists")]
    Exists(String),
    /// Text that is not an ed25519 private key in PKCS#8 PEM.
    #[error("not an ed25519 private key in PKCS#8 PEM: {0}")]
    BadPem(String),
    /// A token that is not one: malformed, altered, or signed by another key.
    #[error("invalid token: {0}")]
    TokenInvalid(String),
    /// A token (or an attenuation of it) past its expiry.
    #[error("the token has expired")]
    TokenExpired {
        /// When (seconds since the epoch) it was found expired.
        at: u64,
    },
    /// A token whose checks refuse the request (an attenuation narrowed it).
    #[error("the token does not allow this request (its check: {0})")]
    TokenScope(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Multicodec ed25519-pub, as an unsigned varint.
const ED25519_PUB: [u8; 2] = [0xed, 0x01];
/// libp2p `PublicKey { Type: Ed25519, Data: <32 bytes> }` protobuf prefix.
const LIBP2P_ED25519_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x20];
/// Header of a key file: a tag, then the 32-byte secret seed.
const KEY_FILE_TAG: &[u8] = b"kiln-ed25519-v1\n";

/// How a key file is put in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Only where there is none: an existing file is an error.
    New,
    /// Only where there is none; another process's file, written meanwhile, wins.
    Race,
    /// In place of any file there.
    Replace,
}

/// An ed25519 signing key: a node's or a person's identity.
pub struct NodeKey {
    key: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({})", self.did())
    }
}

impl NodeKey {
    /// A new random key.
    pub fn generate() -> Result<NodeKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
        Ok(NodeKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Load the key at `path`, or create one there (mode 0600, written atomically) if there
    /// is none. Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(NodeKey, bool)> {
        match std::fs::read(path) {
            Ok(bytes) => Ok((Self::from_file_bytes(&bytes, path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                key.write_new(path, Place::Race)?;
                // Another process may have won the race: the file on disk is the identity.
                let bytes = std::fs::read(path)
                    .map_err(|e| io(format!("reading {}", path.display()), e))?;
                Ok((Self::from_file_bytes(&bytes, path)?, true))
            }
            Err(e) => Err(io(format!("reading {}", path.display()), e)),
        }
    }

    /// Load the key file at `path` (an I/O error of kind `NotFound` if there is none).
    pub fn load(path: &Path) -> Result<NodeKey> {
        let bytes =
            std::fs::read(path).map_err(|e| io(format!("reading {}", path.display()), e))?;
        Self::from_file_bytes(&bytes, path)
    }

    /// Write this key to `path` as a new key file (mode 0600, written in full before it
    /// appears); [`Error::Exists`] if there is one already, which is left as it was.
    pub fn create(&self, path: &Path) -> Result<()> {
        self.write_new(path, Place::New)
    }

    /// Write this key to `path`, replacing the key file there in one rename.
    pub fn replace(&self, path: &Path) -> Result<()> {
        self.write_new(path, Place::Replace)
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as `openssl` and most
    /// tools read it. This is the secret: never log it.
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
        // Version 1 (the seed alone), as openssl writes it: OpenSSL 3.0 refuses version 2,
        // which also carries the public key.
        let v1 = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        let pem = v1
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::BadPem(e.to_string()))?;
        Ok(pem.as_str().to_string())
    }

    /// A key from PKCS#8 PEM text (as [`NodeKey::to_pkcs8_pem`] and
    /// `openssl genpkey -algorithm ed25519` write it).
    pub fn from_pkcs8_pem(pem: &str) -> Result<NodeKey> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
            // The decoder's message names what it expected; never the text itself.
            Error::BadPem(e.to_string())
        })?;
        Ok(NodeKey { key })
    }

    fn from_file_bytes(bytes: &[u8], path: &Path) -> Result<NodeKey> {
        let seed = bytes
            .strip_prefix(KEY_FILE_TAG)
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .ok_or_else(|| {
                Error::BadKeyFile(format!("{} is not a kiln ed25519 key file", path.display()))
            })?;
        Ok(NodeKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    fn write_new(&self, path: &Path, place: Place) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let ctx = |what: &str| format!("{what} {}", tmp.display());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io(ctx("creating"), e))?;
        let mut body = KEY_FILE_TAG.to_vec();
        body.extend_from_slice(self.key.as_bytes());
        f.write_all(&body)
            .and_then(|()| f.sync_all())
            .map_err(|e| io(ctx("writing"), e))?;
        drop(f);
        if place == Place::Replace {
            std::fs::rename(&tmp, path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io(format!("replacing {}", path.display()), e)
            })?;
        } else {
            // Hard-link into place: fails if a key already exists, never replaces one.
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if place == Place::New {
                        return Err(Error::Exists(path.display().to_string()));
                    }
                }
                Err(e) => return Err(io(format!("creating {}", path.display()), e)),
            }
        }
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// `did:key:z6Mk…`
    pub fn did(&self) -> String {
        did_key(&self.public_key())
    }

    /// The libp2p peer ID (`12D3KooW…`).
    pub fn peer_id(&self) -> String {
        peer_id(&self.public_key())
    }

    /// Sign a message.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

/// Fill `buf` from the system's random source.
pub fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}

/// The `did:key` of an ed25519 public key.
pub fn did_key(key: &VerifyingKey) -> String {
    let mut b = ED25519_PUB.to_vec();
    b.extend_from_slice(key.as_bytes());
    format!(
        "did:key:{}",
        multibase::encode(multibase::Base::Base58Btc, b)
    )
}

/// The ed25519 public key of a `did:key`.
pub fn parse_did_key(did: &str) -> Result<VerifyingKey> {
    let bad = |reason| Error::BadDid {
        input: did.to_string(),
        reason,
    };
    let mb = did
        .strip_prefix("did:key:")
        .ok_or_else(|| bad("does not start with did:key:"))?;
    if !mb.starts_with('z') {
        return Err(bad("not base58btc (z…)"));
    }
    let (_, bytes) = multibase::decode(mb).map_err(|_| bad("bad base58btc"))?;
    let raw = bytes
        .strip_prefix(&ED25519_PUB[..])
        .ok_or_else(|| bad("not an ed25519 key"))?;
    let arr = <[u8; 32]>::try_from(raw).map_err(|_| bad("wrong key length"))?;
    VerifyingKey::from_bytes(&arr).map_err(|_| bad("not a valid ed25519 point"))
}

/// Check an ed25519 signature made by the key of `did` (strict verification).
pub fn verify(did: &str, msg: &[u8], signature: &[u8]) -> Result<bool> {
    let key = parse_did_key(did)?;
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return Ok(false);
    };
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    Ok(key.verify_strict(msg, &sig).is_ok())
}

/// The libp2p `PublicKey` protobuf of an ed25519 key.
pub fn libp2p_public_key(key: &VerifyingKey) -> Vec<u8> {
    let mut b = LIBP2P_ED25519_PREFIX.to_vec();
    b.extend_from_slice(key.as_bytes());
    b
}

/// The libp2p peer ID: base58btc of the identity multihash of the `PublicKey` protobuf.
pub fn peer_id(key: &VerifyingKey) -> String {
    let pb = libp2p_public_key(key);
    let mut mh = vec![0x00, pb.len() as u8];
    mh.extend_from_slice(&pb);
    multibase::encode(multibase::Base::Base58Btc, mh)[1..].to_string()
}

fn io(context: String, source: std::io::Error) -> Error {
    Error::Io { context, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_against_the_did() {
        let key = NodeKey::generate().unwrap();
        let sig = key.sign(b"message");
        assert!(verify(&key.did(), b"message", &sig).unwrap());
        assert!(!verify(&key.did(), b"massage", &sig).unwrap());
        assert!(!verify(&key.did(), b"message", &sig[..63]).unwrap());
        let other = NodeKey::generate().unwrap();
        assert!(!verify(&other.did(), b"message", &sig).unwrap());
        assert!(verify("did:key:nope", b"message", &sig).is_err());
    }

    // Test vector from the did:key method spec (ed25519 public key → did).
    #[test]
    fn did_key_spec_vector() {
        let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        let key = parse_did_key(did).unwrap();
        assert_eq!(did_key(&key), did);
        assert!(
            parse_did_key("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme").is_err()
        );
        assert!(parse_did_key("did:web:example.com").is_err());
    }

    #[test]
    fn peer_id_shape() {
        let k = NodeKey::generate().unwrap();
        let p = k.peer_id();
        assert!(p.starts_with("12D3KooW"), "{p}");
        let (_, mh) = multibase::decode(format!("z{p}")).unwrap();
        assert_eq!(&mh[..6], &[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
        assert_eq!(&mh[6..], k.public_key().as_bytes());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        let (a, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.did(), b.did());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            NodeKey::load_or_create(&path),
            Err(Error::BadKeyFile(_))
        ));
    }

    #[test]
    fn pkcs8_pem_round_trips_and_refuses_what_is_not_a_key() {
        let key = NodeKey::generate().unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        assert_eq!(NodeKey::from_pkcs8_pem(&pem).unwrap().did(), key.did());
        for bad in [
            "",
            "hello",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let e = NodeKey::from_pkcs8_pem(bad).unwrap_err();
            assert!(matches!(e, Error::BadPem(_)), "{bad:?}: {e}");
        }
    }

    #[test]
    fn create_never_replaces_and_replace_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.key");
        let (a, b) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
        a.create(&path).unwrap();
        assert!(matches!(b.create(&path), Err(Error::Exists(_))));
        assert_eq!(NodeKey::load(&path).unwrap().did(), a.did());
        b.replace(&path).unwrap();
        assert_eq!(NodeKey::load(&path).unwrap().did(), b.did());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
