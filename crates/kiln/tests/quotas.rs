//! Quotas and rate limits, against a daemon that requires tokens: an identity over its
//! pinned-bytes quota is refused (403) and nothing is pinned, at its builds quota it is told
//! to come back (429 with `Retry-After`), and requests over the rate of an identity or of a
//! client address get 429 with `Retry-After` in each protocol's own error shape.

mod common;

use common::Repo;
use common::daemon::{Daemon, Reply, request, request_with_body};

fn reason(reply: &Reply) -> String {
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    v["Reason"].as_str().unwrap_or_default().to_string()
}

/// A repository with an admin, and a daemon on it that requires tokens, with `config`.
fn node(config: &str) -> (Repo, Daemon) {
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    std::fs::write(r.home().join("config.toml"), config).unwrap();
    let d = Daemon::start_with(&r, &["--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0"]);
    (r, d)
}

/// Another identity, made a user with `role`, and a token for it.
fn user(r: &Repo, role: &str) -> (String, String) {
    let config = r.path("config-bob");
    let o = r
        .cmd()
        .env("XDG_CONFIG_HOME", &config)
        .args(["identity", "new"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let did = common::text(&o.stdout).trim().to_string();
    r.ok(&["user", "add", &did, "--role", role]);
    let token = r
        .ok(&["token", "create", "--for", &did, "--ttl", "1h"])
        .trim()
        .to_string();
    (did, token)
}

#[test]
fn pinned_bytes_are_counted_once_and_a_pin_over_the_quota_changes_nothing() {
    let (r, d) = node("");
    let (bob, token) = user(&r, "writer");
    let url = format!("http://{}", d.api);
    let bob_run = |args: &[&str]| {
        let mut a = vec!["--node", url.as_str()];
        a.extend_from_slice(args);
        r.cmd().env("KILN_TOKEN", &token).args(&a).output().unwrap()
    };
    let out = r.ok(&[
        "user",
        "quota",
        &bob,
        "--pinned-bytes",
        "1KiB",
        "--builds",
        "0",
    ]);
    assert!(out.contains("pinned bytes  0 B used of 1.0 KiB"), "{out}");
    assert!(out.contains("builds        0 at once"), "{out}");

    let first = r.path("first");
    let second = r.path("second");
    common::write(&first, &common::bytes(600, 1));
    common::write(&second, &common::bytes(600, 2));
    let o = bob_run(&["add", "-Q", first.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let cid = common::text(&o.stdout).trim().to_string();
    // The same content pinned again (and under a name) is counted once.
    let o = bob_run(&["add", "-Q", first.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let o = bob_run(&["pin", "add", &cid]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));

    let pins_before = r.ok(&["pin", "ls", "--type", "all"]);
    // 1200 bytes would be over 1 KiB: refused, and nothing pinned.
    let o = bob_run(&["add", "-Q", second.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = common::text(&o.stderr);
    assert!(err.contains("over its quota of 1024 bytes"), "{err}");
    assert_eq!(r.ok(&["pin", "ls", "--type", "all"]), pins_before);
    // Over the RPC too: 403 with the reason.
    let plain = r.add(&["--pin=false", second.to_str().unwrap()]);
    let b = format!("Bearer {token}");
    let reply = request(
        &d.api,
        "POST",
        &format!("/api/v0/pin/add?arg={plain}"),
        &[("Authorization", &b)],
    );
    assert_eq!(reply.status, 403, "{}", common::text(&reply.body));
    assert_eq!(reason(&reply), "quota_pinned_bytes");
    assert_eq!(r.ok(&["pin", "ls", "--type", "all"]), pins_before);
    // Raised: the pin goes through.
    r.ok(&["user", "quota", &bob, "--pinned-bytes", "2KiB"]);
    let o = bob_run(&["pin", "add", &plain]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let out = r.ok(&["user", "quota", &bob, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pinned_bytes"]["used"], 1200);
    assert_eq!(v["pinned_bytes"]["max"], 2048);

    // At its builds quota (0 here): 429, with when to try again, and no build.
    r.ok(&["user", "grant", &bob, "maintainer"]);
    let token = r
        .ok(&["token", "create", "--for", &bob, "--ttl", "1h"])
        .trim()
        .to_string();
    let reply = request_with_body(
        &d.api,
        "POST",
        "/api/kiln/v1/builds",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        format!(r#"{{"source":"{cid}"}}"#).as_bytes(),
    );
    assert_eq!(reply.status, 429, "{}", common::text(&reply.body));
    assert_eq!(reason(&reply), "quota_builds");
    assert_eq!(reply.header("retry-after").as_deref(), Some("10"));
    assert!(!r.ok(&["builds"]).contains(" s1 "));

    // The default quota applies to users without one of their own.
    r.ok(&["user", "quota", "*", "--pinned-bytes", "10MiB"]);
    r.ok(&["user", "quota", &bob, "--pinned-bytes", "default"]);
    let out = r.ok(&["user", "quota", &bob]);
    assert!(out.contains("of 10 MiB (the default)"), "{out}");
    let bad = r.fails(&["user", "quota", &bob, "--pinned-bytes", "lots"]);
    assert!(bad.contains("bad size"), "{bad}");
    // Quota changes are in the audit trail.
    assert!(r.ok(&["audit", "--action", "quota set"]).contains(&bob));
    d.stop();
}

#[test]
fn requests_over_a_rate_get_429_with_retry_after_in_each_protocols_shape() {
    let (r, d) = node(
        "[limits]\nidentity_requests_per_sec = 0.01\nidentity_burst = 3\n\
         ip_requests_per_sec = 0.01\nip_burst = 8\nlimit_loopback = true\n",
    );
    let (_bob, token) = user(&r, "writer");
    let b = format!("Bearer {token}");
    let auth = [("Authorization", b.as_str())];
    // An identity: its burst, then 429 on every protocol, with when to try again.
    for _ in 0..3 {
        let ok = request(&d.api, "POST", "/api/v0/pin/ls", &auth);
        assert_eq!(ok.status, 200, "{}", common::text(&ok.body));
    }
    let rpc = request(&d.api, "POST", "/api/v0/pin/ls", &auth);
    assert_eq!(rpc.status, 429);
    assert_eq!(reason(&rpc), "rate_limited");
    let wait: u64 = rpc.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=100).contains(&wait), "{wait}");
    let api = request(&d.api, "GET", "/api/kiln/v1/pins", &auth);
    assert_eq!(api.status, 429);
    assert_eq!(reason(&api), "rate_limited");
    assert!(api.header("retry-after").is_some());
    // The address has a burst of 8 (some used above): the gateway serves until it is out,
    // then answers in its own shape (plain text).
    let mut served = 0;
    let gw = loop {
        let reply = request(&d.gateway, "GET", "/ipfs/bafkqaaa", &[]);
        if reply.status != 200 {
            break reply;
        }
        served += 1;
        assert!(served <= 8, "more than the burst served");
    };
    assert_eq!(gw.status, 429, "{}", common::text(&gw.body));
    assert!(common::text(&gw.body).contains("too many requests from 127.0.0.1"));
    assert!(gw.header("retry-after").is_some());
    // The token never appears in what the node said or logged.
    let log = std::fs::read_to_string(r.path("daemon.log")).unwrap();
    assert!(!log.contains(&token));
    d.stop();
}
