//! Hostile and heavy clients against a real daemon: oversized heads, slow and idle
//! connections, garbage, thousands of concurrent requests. Each gets a clean 4xx or a
//! closed connection, and the daemon keeps answering.

mod common;

use common::Repo;
use common::daemon::{Daemon, request};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A daemon with short timeouts and small limits.
fn start(r: &Repo) -> Daemon {
    start_with_limits(
        r,
        "header_timeout_secs = 1\nidle_timeout_secs = 2\nper_ip_concurrency = 64\nmax_header_bytes = 16384\n",
    )
}

fn start_with_limits(r: &Repo, limits: &str) -> Daemon {
    let cfg = r.path("config.toml");
    std::fs::write(&cfg, format!("[limits]\n{limits}")).unwrap();
    Daemon::start_with(
        r,
        &[
            "--api",
            "127.0.0.1:0",
            "--gateway",
            "127.0.0.1:0",
            "--open-loopback",
            "--config",
            cfg.to_str().unwrap(),
        ],
    )
}

/// The daemon still answers.
fn alive(d: &Daemon) {
    let r = request(&d.api, "POST", "/api/v0/version", &[]);
    assert_eq!(r.status, 200);
    let g = request(&d.gateway, "GET", "/ipfs/bafkqaaa", &[]);
    assert_eq!(g.status, 200);
}

/// Read until the server closes; returns what came and how long it took.
fn until_closed(mut s: TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    s.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("connection still open after {:?}: {e}", started.elapsed()),
        }
    }
    (got, started.elapsed())
}

fn status_of(reply: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(reply);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn oversized_heads_get_431_and_the_daemon_goes_on() {
    let r = Repo::new();
    let d = start(&r);
    for addr in [&d.api, &d.gateway] {
        let mut s = TcpStream::connect(addr).unwrap();
        let big = "a".repeat(100 << 10);
        // The server may answer and close before the whole head is written.
        let _ = write!(
            s,
            "GET /ipfs/bafkqaaa HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"
        );
        let (reply, _) = until_closed(s, Duration::from_secs(5));
        if let Some(st) = status_of(&reply) {
            assert_eq!(st, 431, "{}", String::from_utf8_lossy(&reply));
        }
        // Too many headers.
        let mut s = TcpStream::connect(addr).unwrap();
        let mut head = String::from("GET /ipfs/bafkqaaa HTTP/1.1\r\nHost: x\r\n");
        for i in 0..500 {
            head.push_str(&format!("X-H{i}: v\r\n"));
        }
        let _ = s.write_all(format!("{head}\r\n").as_bytes());
        let (reply, _) = until_closed(s, Duration::from_secs(5));
        if let Some(st) = status_of(&reply) {
            assert!(
                (400..500).contains(&st),
                "{}",
                String::from_utf8_lossy(&reply)
            );
        }
    }
    alive(&d);
    d.stop();
}

#[test]
fn slow_idle_and_garbage_connections_are_closed() {
    let r = Repo::new();
    let d = start(&r);
    // Connects and says nothing.
    let silent = TcpStream::connect(&d.api).unwrap();
    // Sends half a head and stalls (slow loris).
    let mut half = TcpStream::connect(&d.gateway).unwrap();
    half.write_all(b"GET /ipfs/bafkqaaa HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Keeps a finished keep-alive connection open.
    let mut kept = TcpStream::connect(&d.gateway).unwrap();
    kept.write_all(b"GET /ipfs/bafkqaaa HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Starts an upload and stops sending.
    let mut stalled = TcpStream::connect(&d.api).unwrap();
    stalled
        .write_all(b"POST /api/v0/block/put HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n")
        .unwrap();
    for (name, s) in [
        ("silent", silent),
        ("half head", half),
        ("keep-alive", kept),
        ("stalled body", stalled),
    ] {
        let (_, took) = until_closed(s, Duration::from_secs(10));
        assert!(
            took < Duration::from_secs(8),
            "{name} connection open for {took:?}"
        );
    }
    // Garbage instead of HTTP.
    let mut g = TcpStream::connect(&d.api).unwrap();
    g.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")
        .unwrap();
    let (reply, _) = until_closed(g, Duration::from_secs(5));
    if let Some(st) = status_of(&reply) {
        assert_eq!(st, 400);
    }
    alive(&d);
    d.stop();
}

#[test]
fn hostile_arguments_get_clean_errors() {
    let r = Repo::new();
    let d = start(&r);
    let long = "b".repeat(8000);
    for target in [
        "/api/v0/cat?arg=%00".to_string(),
        format!("/api/v0/cat?arg={long}"),
        "/api/v0/cat?arg=bafybeigarbage".to_string(),
        "/api/v0/ls?arg=/ipfs/../../etc/passwd".to_string(),
        "/api/v0/cat?arg=bafkqaaa&offset=-1".to_string(),
        "/api/v0/get?arg=bafkqaaa%2F..%2F..".to_string(),
        "/api/v0/block/get?arg=".to_string(),
        "/api/v0/pin/add?arg=QmInvalid!!".to_string(),
    ] {
        let reply = request(&d.api, "POST", &target, &[]);
        assert!(
            (400..600).contains(&reply.status) && reply.status != 502,
            "{target}: {}",
            reply.status
        );
        let e: serde_json::Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|_| panic!("{target}: {}", String::from_utf8_lossy(&reply.body)));
        assert_eq!(e["Type"], "error", "{target}");
    }
    for target in [
        "/ipfs/bafkqaaa/%2e%2e/etc",
        "/ipfs/not-a-cid",
        "/ipfs/bafkqaaa/\u{0}",
    ] {
        let reply = request(&d.gateway, "GET", target, &[]);
        assert!(
            (400..500).contains(&reply.status),
            "{target}: {}",
            reply.status
        );
    }
    alive(&d);
    d.stop();
}

#[test]
fn thousands_of_concurrent_requests() {
    let r = Repo::new();
    let f = r.path("f.txt");
    common::write(&f, &common::bytes(4096, 1));
    let cid = r.add(&[f.to_str().unwrap()]);
    // Default timeouts: opening 2000 connections takes longer than `start`'s 1 s head timeout.
    let d = start_with_limits(&r, "per_ip_concurrency = 64\n");
    const THREADS: usize = 8;
    const PER: usize = 250;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (addr, api, cid, barrier) = (d.gateway.clone(), d.api.clone(), cid.clone(), barrier.clone());
            std::thread::spawn(move || {
                // Open every connection first, then send every request, then read.
                let mut conns = Vec::new();
                for i in 0..PER {
                    let target = if (t + i) % 5 == 0 { &api } else { &addr };
                    conns.push((TcpStream::connect(target).expect("connect"), target == &api));
                }
                barrier.wait();
                for (s, is_api) in &mut conns {
                    let req = if *is_api {
                        "POST /api/v0/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".to_string()
                    } else {
                        format!("GET /ipfs/{cid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    };
                    s.write_all(req.as_bytes()).expect("send");
                }
                let mut counts = std::collections::BTreeMap::new();
                for (s, _) in conns {
                    let (reply, _) = until_closed(s, Duration::from_secs(60));
                    *counts.entry(status_of(&reply)).or_insert(0usize) += 1;
                }
                counts
            })
        })
        .collect();
    let mut total = std::collections::BTreeMap::new();
    for h in handles {
        for (k, v) in h.join().unwrap() {
            *total.entry(k).or_insert(0) += v;
        }
    }
    let ok = total.get(&Some(200)).copied().unwrap_or(0);
    let busy = total.get(&Some(429)).copied().unwrap_or(0);
    assert_eq!(ok + busy, THREADS * PER, "unexpected answers: {total:?}");
    assert!(ok > 0, "{total:?}");
    alive(&d);
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    d.stop();
}

#[test]
fn cross_site_browser_requests_to_the_api_are_refused() {
    let r = Repo::new();
    let f = r.path("f.txt");
    common::write(&f, b"not to be pinned by a web page");
    let cid = r.add(&["--pin=false", f.to_str().unwrap()]);
    let d = start(&r);
    let pin = format!("/api/v0/pin/add?arg={cid}");
    let gateway_origin = format!("http://{}", d.gateway);
    for headers in [
        vec![("Origin", "http://evil.example")],
        vec![("Origin", gateway_origin.as_str())],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![
            ("Sec-Fetch-Site", "same-site"),
            ("Origin", gateway_origin.as_str()),
        ],
    ] {
        let reply = common::daemon::request(&d.api, "POST", &pin, &headers);
        assert_eq!(reply.status, 403, "{headers:?}");
        let e: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert!(e["Message"].as_str().unwrap().contains("cross-site"), "{e}");
        let gc = common::daemon::request(&d.api, "POST", "/api/kiln/v1/gc", &headers);
        assert_eq!(gc.status, 403, "{headers:?}");
    }
    assert!(r.ok(&["pin", "ls"]).is_empty(), "a refused request pinned");
    // The node's own pages, and clients that are not browsers, pass.
    let own = format!("http://{}", d.api);
    let reply = common::daemon::request(&d.api, "POST", &pin, &[("Origin", own.as_str())]);
    assert_eq!(reply.status, 200);
    let reply = common::daemon::request(&d.api, "POST", "/api/v0/version", &[]);
    assert_eq!(reply.status, 200);
    d.stop();
}
