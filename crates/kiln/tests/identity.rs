//! `kiln identity`: the user's own key, kept apart from any repository, exported and
//! imported as PKCS#8 PEM — checked against the real `openssl`.

mod common;

use common::Repo;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn key_path(r: &Repo) -> std::path::PathBuf {
    r.path("config").join("kiln").join("identity.key")
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `openssl`, required: the interoperability this test proves is with it.
fn openssl(args: &[&str]) -> Vec<u8> {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (it is part of the test set-up)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The raw 32-byte public key of a PEM private key, as openssl derives it.
fn openssl_public_key(pem: &std::path::Path) -> Vec<u8> {
    let der = openssl(&[
        "pkey",
        "-in",
        pem.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    der[der.len() - 32..].to_vec()
}

#[test]
fn a_new_identity_lives_outside_the_repository_and_is_private() {
    let r = Repo::new();
    let did = r.ok(&["identity", "new"]).trim().to_string();
    assert!(did.starts_with("did:key:z6Mk"), "{did}");
    let path = key_path(&r);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert!(!r.home().exists(), "kiln identity touched the repository");
    assert_eq!(r.ok(&["identity", "show"]).trim(), did);
    let v: serde_json::Value =
        serde_json::from_str(&r.ok(&["identity", "show", "--json"])).unwrap();
    assert_eq!(v["did"], did.as_str());
    assert_eq!(v["path"], path.to_str().unwrap());
    // The node's own key is another key.
    let id: serde_json::Value = serde_json::from_str(&r.ok(&["id"])).unwrap();
    assert_ne!(id["DID"].as_str(), Some(did.as_str()));

    // A second `new` refuses and keeps the identity; --force replaces it.
    let before = std::fs::read(&path).unwrap();
    let err = r.fails(&["identity", "new"]);
    assert!(
        err.contains("already exists") && err.contains(&did),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let other = r.ok(&["identity", "new", "--force"]).trim().to_string();
    assert_ne!(other, did);
    assert_eq!(r.ok(&["identity", "show"]).trim(), other);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn no_identity_is_a_clear_error() {
    let r = Repo::new();
    for args in [
        &["identity", "show"][..],
        &["identity", "export", "-o", "x.pem"],
    ] {
        let err = r.fails(args);
        assert!(err.contains("kiln identity new"), "{err}");
    }
    assert!(!key_path(&r).exists());
}

#[test]
fn export_and_import_speak_openssls_pkcs8() {
    let r = Repo::new();
    let did = r.ok(&["identity", "new"]).trim().to_string();
    let pem = r.path("me.pem");
    r.ok(&["identity", "export", "-o", pem.to_str().unwrap()]);
    assert_eq!(mode(&pem), 0o600);
    // openssl reads the export, and its public key is the DID's.
    let public = kiln_id::parse_did_key(&did).unwrap();
    assert_eq!(openssl_public_key(&pem), public.as_bytes());
    // An export never overwrites a file.
    let err = r.fails(&["identity", "export", "-o", pem.to_str().unwrap()]);
    assert!(err.contains("cannot create"), "{err}");
    // To a pipe, standard output.
    assert_eq!(
        r.ok(&["identity", "export"]),
        std::fs::read_to_string(&pem).unwrap()
    );

    // Another user (another config directory) imports it and has the same identity.
    let other = Repo::new();
    assert_eq!(
        other
            .ok(&["identity", "import", pem.to_str().unwrap()])
            .trim(),
        did
    );
    assert_eq!(mode(&key_path(&other)), 0o600);
    assert_eq!(other.ok(&["identity", "show"]).trim(), did);

    // A key made by openssl becomes an identity whose DID is openssl's public key.
    let theirs = r.path("openssl.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        theirs.to_str().unwrap(),
    ]);
    let fresh = Repo::new();
    let imported = fresh
        .ok(&["identity", "import", theirs.to_str().unwrap()])
        .trim()
        .to_string();
    let key = kiln_id::parse_did_key(&imported).unwrap();
    assert_eq!(key.as_bytes().to_vec(), openssl_public_key(&theirs));

    // Importing over an identity refuses (and keeps it) unless forced.
    let err = fresh.fails(&["identity", "import", pem.to_str().unwrap()]);
    assert!(
        err.contains("already exists") && err.contains(&imported),
        "{err}"
    );
    assert_eq!(fresh.ok(&["identity", "show"]).trim(), imported);
    assert_eq!(
        fresh
            .ok(&["identity", "import", "--force", pem.to_str().unwrap()])
            .trim(),
        did
    );
}

#[test]
fn bad_key_files_are_refused_and_change_nothing() {
    let r = Repo::new();
    let did = r.ok(&["identity", "new"]).trim().to_string();
    let before = std::fs::read(key_path(&r)).unwrap();
    let rsa = r.path("rsa.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "rsa",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        rsa.to_str().unwrap(),
    ]);
    let junk = r.path("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let huge = r.path("huge.pem");
    std::fs::write(&huge, vec![b'A'; 1 << 20]).unwrap();
    let binary = r.path("binary");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    for (f, says) in [
        (&rsa, "not an ed25519 private key"),
        (&junk, "not an ed25519 private key"),
        (&huge, "too large"),
        (&binary, "not a PEM text file"),
        (&r.path("missing.pem"), "cannot open"),
    ] {
        let err = r.fails(&["identity", "import", "--force", f.to_str().unwrap()]);
        assert!(err.contains(says), "{}: {err}", f.display());
        // The message names the file, never its contents.
        assert!(!err.contains("not base64 at all"), "{err}");
    }
    assert_eq!(std::fs::read(key_path(&r)).unwrap(), before);
    assert_eq!(r.ok(&["identity", "show"]).trim(), did);
}
