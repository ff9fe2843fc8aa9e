//! TLS on the listeners, against a real TLS client (`openssl s_client`, which verifies the
//! certificate): a certificate made here with `openssl req`, the gateway and the API served
//! over it, a plaintext request to a TLS port gets nothing, and a listener on a non-loopback
//! address without TLS is refused unless `--allow-plaintext` is given (and then logged).

mod common;

use common::Repo;
use common::daemon::Daemon;
use std::io::Write;
use std::process::{Command, Stdio};

fn openssl_or_skip() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is needed (scripts/test installs it)"
        );
        eprintln!("skipping: no openssl");
    }
    ok
}

/// A self-signed certificate for 127.0.0.1 (ECDSA P-256) and its key.
fn certificate(r: &Repo) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (r.path("cert.pem"), r.path("key.pem"));
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=kiln test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // An end-entity certificate (webpki refuses a CA certificate as a server's own).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    (cert, key)
}

/// `request` sent over TLS to `addr`, the certificate checked against `ca`: the reply.
fn over_tls(addr: &str, ca: &std::path::Path, request: &str) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            "-verify_return_error",
            "-quiet",
        ])
        .args(["-verify_ip", "127.0.0.1", "-CAfile"])
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let reply = common::text(&o.stdout);
    if !o.status.success() {
        eprintln!("openssl s_client: {}", common::text(&o.stderr));
    }
    (o.status.success(), reply)
}

#[test]
fn the_listeners_speak_tls_and_plaintext_off_loopback_needs_a_flag() {
    if !openssl_or_skip() {
        return;
    }
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    let (cert, key) = certificate(&r);
    let d = Daemon::start_with(
        &r,
        &[
            "--api",
            "127.0.0.1:0",
            "--gateway",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read_to_string(r.home().join("api"))
            .unwrap()
            .starts_with("https://")
    );
    let cid = r.add(&[&{
        let f = r.path("hello.txt");
        common::write(&f, b"hello over TLS\n");
        f.to_str().unwrap().to_string()
    }]);
    let get = format!("GET /ipfs/{cid} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let (ok, reply) = over_tls(&d.gateway, &cert, &get);
    assert!(ok, "{reply}");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("hello over TLS\n"), "{reply}");
    // The API too (no token: refused, in Kubo's shape, over TLS).
    let post = "POST /api/v0/pin/ls HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (ok, reply) = over_tls(&d.api, &cert, post);
    assert!(ok, "{reply}");
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    // A web UI session made over TLS is a Secure cookie.
    let link = r.ok(&["ui", "login"]).trim().to_string();
    assert!(
        link.starts_with(&format!("https://{}/ui/login?code=", d.api)),
        "{link}"
    );
    let path = &link[format!("https://{}", d.api).len()..];
    let (ok, reply) = over_tls(
        &d.api,
        &cert,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    );
    assert!(ok, "{reply}");
    assert!(reply.starts_with("HTTP/1.1 303"), "{reply}");
    let cookie = reply
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{reply}"
    );
    // Another certificate is not this one: the client refuses the handshake.
    let other = Repo::new();
    let (other_cert, _) = certificate(&other);
    let (ok, _) = over_tls(&d.gateway, &other_cert, &get);
    assert!(!ok, "a certificate the client does not trust");
    // Plain HTTP to a TLS port gets no HTTP answer.
    let mut plain = std::net::TcpStream::connect(&d.gateway).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    plain.write_all(get.as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut got);
    assert!(!common::text(&got).contains("hello over TLS"));
    assert!(!common::text(&got).starts_with("HTTP/1.1 200"));
    // The command line still reaches the daemon, through the socket.
    assert!(r.ok(&["pin", "ls"]).contains(&cid));
    // And over TLS with --node https://, trusting the certificate through SSL_CERT_FILE,
    // with a token; without the certificate trusted it refuses to talk.
    let token = r
        .ok(&["token", "create", "--ttl", "10m"])
        .trim()
        .to_string();
    let node = format!("https://{}", d.api);
    let o = r
        .cmd()
        .env("SSL_CERT_FILE", &cert)
        .env("KILN_TOKEN", &token)
        .args(["--node", &node, "pin", "ls"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    assert!(common::text(&o.stdout).contains(&cid));
    let o = r
        .cmd()
        .env("SSL_CERT_FILE", &other_cert)
        .env("KILN_TOKEN", &token)
        .args(["--node", &node, "pin", "ls"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "an untrusted certificate was accepted");
    assert!(d.stop().success());

    // Off loopback without TLS: refused, unless asked for, and then said.
    let o = r
        .cmd()
        .args(["daemon", "--api", "0.0.0.0:0", "--gateway", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = common::text(&o.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");
    assert!(err.contains("--allow-plaintext"), "{err}");
    let d = Daemon::start_with(
        &r,
        &[
            "--api",
            "0.0.0.0:0",
            "--gateway",
            "127.0.0.1:0",
            "--allow-plaintext",
        ],
    );
    assert!(d.stop().success());
    let log = std::fs::read_to_string(r.path("daemon.log")).unwrap();
    assert!(
        log.contains("without TLS on a non-loopback address"),
        "{log}"
    );
}
