//! Identities on the wire, tested as an attacker would: a daemon that requires tokens on
//! TCP, the repository's socket for its owner, and every mutating route of every protocol
//! refused — with the right status and nothing changed — for no token, a forged one,
//! another node's, an expired, a revoked, a removed user's, a wrong role, a token narrowed
//! below the request, and another user's resource. No token ever reaches the log or the
//! journal.

mod common;

use common::Repo;
use common::daemon::{Daemon, Reply, request, request_with_body};
use std::time::{Duration, Instant};

/// A daemon that requires tokens on TCP (no `--open-loopback`).
fn strict(r: &Repo) -> Daemon {
    Daemon::start_with(r, &["--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0"])
}

fn token(r: &Repo, args: &[&str]) -> String {
    let mut a = vec!["token", "create"];
    a.extend_from_slice(args);
    let t = r.ok(&a).trim().to_string();
    assert!(t.starts_with("kiln1_"), "{t}");
    t
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// The reason code of a refusal: Kubo's and kiln's `Reason`, or the Pinning Service API's
/// `error.reason` (the same codes, upper-case).
fn reason(reply: &Reply) -> String {
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    match v["Reason"].as_str() {
        Some(r) => r.to_string(),
        None => v["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase(),
    }
}

const BOUNDARY: &str = "kilnboundary";

fn multipart(data: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// One mutating request: method, target, body (with a content type), and the listener.
struct Route {
    method: &'static str,
    target: String,
    body: Vec<u8>,
    ctype: &'static str,
}

/// A did:key that is nobody's on the node (the did:key spec's example).
const SOMEONE: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

/// Every mutating route of the API listener (Kubo RPC, kiln's API, the Pinning Service API,
/// the web UI), with arguments that would succeed for the local administrator
/// (`request_id`: the administrator's pin request).
fn routes(cid: &str, token_id: &str, request_id: &str) -> Vec<Route> {
    let car = {
        let mut c = Vec::new();
        // An empty CAR body is refused either way; what matters is that the refusal comes
        // first, before anything is read into the store.
        c.extend_from_slice(b"not a car");
        c
    };
    let r = |method, target: String, body: Vec<u8>, ctype| Route {
        method,
        target,
        body,
        ctype,
    };
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let mp: &'static str = "multipart/form-data; boundary=kilnboundary";
    vec![
        r("POST", "/api/v0/add".into(), multipart(b"new content"), mp),
        r(
            "POST",
            "/api/v0/block/put".into(),
            multipart(b"a new block"),
            mp,
        ),
        r("POST", "/api/v0/dag/import".into(), multipart(&car), mp),
        r("POST", format!("/api/v0/block/rm?arg={cid}"), vec![], json),
        r(
            "POST",
            format!("/api/v0/pin/add?arg={cid}&name=x"),
            vec![],
            json,
        ),
        r("POST", format!("/api/v0/pin/rm?arg={cid}"), vec![], json),
        r(
            "POST",
            format!("/api/v0/pin/rm?arg={cid}&owner=local"),
            vec![],
            json,
        ),
        r(
            "POST",
            format!("/api/v0/pin/rm?arg={cid}&all=true"),
            vec![],
            json,
        ),
        r("POST", "/api/v0/repo/gc".into(), vec![], json),
        r("POST", "/api/kiln/v1/gc".into(), vec![], json),
        r(
            "POST",
            "/api/kiln/v1/builds".into(),
            format!(r#"{{"source":"{cid}"}}"#).into_bytes(),
            json,
        ),
        r(
            "POST",
            "/api/kiln/v1/builds/prune".into(),
            br#"{"keep":0}"#.to_vec(),
            json,
        ),
        r("POST", "/api/kiln/v1/builds/s1/cancel".into(), vec![], json),
        r(
            "POST",
            "/api/kiln/v1/schedules".into(),
            format!(r#"{{"source":"{cid}"}}"#).into_bytes(),
            json,
        ),
        r("DELETE", "/api/kiln/v1/schedules/1".into(), vec![], json),
        r(
            "POST",
            "/api/kiln/v1/tokens".into(),
            br#"{"ttl_secs":600}"#.to_vec(),
            json,
        ),
        r(
            "POST",
            "/api/kiln/v1/tokens/revoke".into(),
            format!(r#"{{"token":"{token_id}"}}"#).into_bytes(),
            json,
        ),
        r(
            "POST",
            "/api/kiln/v1/invites".into(),
            br#"{"role":"admin","ttl_secs":600}"#.to_vec(),
            json,
        ),
        r("POST", "/api/kiln/v1/ui/login".into(), vec![], json),
        r("POST", "/api/kiln/v1/ui/logout".into(), vec![], json),
        r(
            "POST",
            "/psa/pins".into(),
            format!(r#"{{"cid":"{cid}","name":"psa"}}"#).into_bytes(),
            json,
        ),
        r(
            "POST",
            format!("/psa/pins/{request_id}"),
            format!(r#"{{"cid":"{cid}"}}"#).into_bytes(),
            json,
        ),
        r("DELETE", format!("/psa/pins/{request_id}"), vec![], json),
        r(
            "POST",
            "/ui/pins".into(),
            format!("cid={cid}").into_bytes(),
            form,
        ),
        r(
            "POST",
            "/ui/pins/remove".into(),
            format!("cid={cid}").into_bytes(),
            form,
        ),
        r(
            "POST",
            "/ui/builds".into(),
            format!("source={cid}").into_bytes(),
            form,
        ),
        r(
            "POST",
            "/ui/users".into(),
            format!("did={SOMEONE}&role=admin&namespace=*").into_bytes(),
            form,
        ),
        r(
            "POST",
            "/ui/users/grant".into(),
            format!("did={SOMEONE}&role=admin").into_bytes(),
            form,
        ),
        r(
            "POST",
            "/ui/users/revoke".into(),
            format!("did={SOMEONE}&namespace=*").into_bytes(),
            form,
        ),
        r(
            "POST",
            "/ui/users/remove".into(),
            format!("did={SOMEONE}").into_bytes(),
            form,
        ),
        r(
            "POST",
            "/ui/tokens/revoke".into(),
            format!("id={token_id}").into_bytes(),
            form,
        ),
        r(
            "POST",
            "/ui/invites".into(),
            b"role=admin&namespace=*&expires=1h".to_vec(),
            form,
        ),
    ]
}

/// What the node holds that a request could change: pins, the journal, users, tokens.
fn snapshot(r: &Repo) -> String {
    [
        r.ok(&["pin", "ls", "--type", "all"]),
        r.ok(&["events", "--json", "-n", "10000"]),
        r.ok(&["user", "ls"]),
        r.ok(&["token", "ls"]),
        r.ok(&["repo", "stat"])
            .lines()
            .filter(|l| l.starts_with("NumObjects"))
            .collect(),
    ]
    .join("\n--\n")
}

fn send(d: &Daemon, route: &Route, auth: Option<&str>) -> Reply {
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", route.ctype)];
    if route.target.starts_with("/ui/") {
        h.push(("Sec-Fetch-Site", "same-origin"));
    }
    let b;
    if let Some(t) = auth {
        b = bearer(t);
        h.push(("Authorization", &b));
    }
    request_with_body(&d.api, route.method, &route.target, &h, &route.body)
}

#[test]
fn every_mutating_route_refuses_whoever_may_not_and_changes_nothing() {
    let r = Repo::new();
    let admin = r.ok(&["identity", "new"]).trim().to_string();
    r.ok(&["init"]);
    let d = strict(&r);
    // The owner's commands go through the socket, as the local administrator: no token.
    let cid = r.add(&[&{
        let f = r.path("f.txt");
        common::write(&f, b"pinned by the local administrator");
        f.to_str().unwrap().to_string()
    }]);
    assert!(r.ok(&["pin", "ls"]).contains(&cid));

    let (reader, _) = common::person(&r, "reader");
    let (writer, _) = common::person(&r, "writer");
    let (gone, _) = common::person(&r, "gone");
    r.ok(&["user", "add", &reader, "--role", "reader"]);
    r.ok(&["user", "add", &writer, "--role", "writer"]);
    r.ok(&["user", "add", &gone, "--role", "admin"]);
    let admin_token = token(&r, &["--for", &admin, "--note", "admin"]);
    let reader_token = token(&r, &["--for", &reader]);
    let writer_token = token(&r, &["--for", &writer]);
    let revoked = token(&r, &["--for", &admin, "--note", "to revoke"]);
    r.ok(&["token", "revoke", &revoked]);
    let removed = token(&r, &["--for", &gone]);
    r.ok(&["user", "rm", &gone]);
    let expired = token(&r, &["--for", &admin, "--ttl", "1s"]);
    let read_only = r
        .ok(&["token", "attenuate", &admin_token, "--only", "read"])
        .trim()
        .to_string();
    let forged = {
        let mut b = admin_token.clone().into_bytes();
        let i = b.len() - 20;
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let elsewhere = {
        let other = Repo::new();
        std::fs::create_dir_all(other.path("config/kiln")).unwrap();
        std::fs::copy(
            r.path("config/kiln/identity.key"),
            other.path("config/kiln/identity.key"),
        )
        .unwrap();
        other.ok(&["init"]);
        token(&other, &["--for", &admin])
    };
    // The admin's token itself works over TCP.
    let ok = request(
        &d.api,
        "POST",
        &format!("/api/v0/pin/ls?arg={cid}"),
        &[("Authorization", &bearer(&admin_token))],
    );
    assert_eq!(ok.status, 200, "{}", common::text(&ok.body));
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(
        &d.api,
        "POST",
        "/api/v0/repo/stat",
        &[("Authorization", &bearer(&expired))],
    )
    .status
        != 401
    {
        assert!(
            Instant::now() < deadline,
            "the 1-second token never expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let admin_id = r
        .ok(&["token", "ls"])
        .lines()
        .find(|l| l.ends_with(" admin"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();

    // The administrator's pin request (of content nobody has: it stays queued).
    let admin_request = {
        let made = request_with_body(
            &d.api,
            "POST",
            "/psa/pins",
            &[("Authorization", &bearer(&admin_token))],
            br#"{"cid":"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}"#,
        );
        assert_eq!(made.status, 202, "{}", common::text(&made.body));
        let v: serde_json::Value = serde_json::from_slice(&made.body).unwrap();
        v["requestid"].as_str().unwrap().to_string()
    };
    // The requests as the client made them (the node's own notes in `info` may change).
    let admin_requests = || {
        let mut v: serde_json::Value = serde_json::from_slice(
            &request(
                &d.api,
                "GET",
                "/psa/pins?status=queued,pinning,pinned,failed",
                &[("Authorization", &bearer(&admin_token))],
            )
            .body,
        )
        .unwrap();
        for r in v["results"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("info");
        }
        v.to_string()
    };
    let requests_before = admin_requests();
    assert!(requests_before.contains(&admin_request));

    let before = snapshot(&r);
    let cases: [(&str, Option<&str>, u16, &[&str]); 9] = [
        ("no token", None, 401, &["token_missing"]),
        ("forged", Some(&forged), 401, &["token_invalid"]),
        ("another node's", Some(&elsewhere), 401, &["token_invalid"]),
        ("expired", Some(&expired), 401, &["token_expired"]),
        ("revoked", Some(&revoked), 401, &["token_revoked"]),
        ("removed user", Some(&removed), 401, &["unknown_user"]),
        (
            "reader",
            Some(&reader_token),
            403,
            &["role_insufficient", "not_owner"],
        ),
        (
            "narrowed to read",
            Some(&read_only),
            403,
            &["token_scope", "not_owner"],
        ),
        (
            "writer",
            Some(&writer_token),
            403,
            &["role_insufficient", "not_owner"],
        ),
    ];
    for (what, tok, status, reasons) in cases {
        for route in routes(&cid, &admin_id, &admin_request) {
            // A writer may add and pin its own: those are not refusals.
            let writer_may = what == "writer"
                && (route.target.starts_with("/api/v0/add")
                    || route.target.starts_with("/api/v0/block/put")
                    || route.target.starts_with("/api/v0/dag/import")
                    || route.target.contains("pin/add")
                    || route.target == "/psa/pins"
                    || route.target.ends_with(&format!("pin/rm?arg={cid}")));
            // Any identity may ask for a web UI sign-in link for itself (its session can
            // do no more than its token).
            let own_sign_in = matches!(what, "reader" | "narrowed to read" | "writer")
                && route.target == "/api/kiln/v1/ui/login";
            if writer_may || own_sign_in {
                continue;
            }
            // Another identity's pin request does not exist for a writer (404, as the
            // Pinning Service API has it).
            let (status, reasons): (u16, &[&str]) =
                if what == "writer" && route.target.starts_with("/psa/pins/") {
                    (404, &["not_found"])
                } else {
                    (status, reasons)
                };
            let reply = send(&d, &route, tok);
            let ui = route.target.starts_with("/ui/");
            let want = if ui { 401 } else { status };
            assert_eq!(
                reply.status,
                want,
                "{what}: {} {} answered {}: {}",
                route.method,
                route.target,
                reply.status,
                common::text(&reply.body)
            );
            if !ui {
                let got = reason(&reply);
                assert!(
                    reasons.contains(&got.as_str()),
                    "{what}: {} {}: reason {got:?}, not one of {reasons:?}: {}",
                    route.method,
                    route.target,
                    common::text(&reply.body)
                );
            }
            if reply.status == 401 && !ui {
                assert!(
                    reply
                        .header("www-authenticate")
                        .is_some_and(|v| v.starts_with("Bearer")),
                    "{what}: {}: no WWW-Authenticate",
                    route.target
                );
            }
        }
        assert_eq!(snapshot(&r), before, "{what}: something changed");
        assert_eq!(
            admin_requests(),
            requests_before,
            "{what}: a pin request changed"
        );
    }

    // A writer adds and pins its own, and may not take the administrator's pin away.
    let w = bearer(&writer_token);
    let added = request_with_body(
        &d.api,
        "POST",
        "/api/v0/add",
        &[
            ("Content-Type", "multipart/form-data; boundary=kilnboundary"),
            ("Authorization", &w),
        ],
        &multipart(b"the writer's file"),
    );
    assert_eq!(added.status, 200, "{}", common::text(&added.body));
    let pins = r.ok(&["pin", "ls"]);
    assert!(pins.contains(&cid) && pins.contains(&writer), "{pins}");
    // The writer's pins are its own: listed for it, owned by its DID.
    let listed = request(&d.api, "GET", "/api/kiln/v1/pins", &[("Authorization", &w)]);
    assert_eq!(listed.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    let owners: Vec<&str> = v["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["owner"].as_str().unwrap())
        .collect();
    assert!(
        !owners.is_empty() && owners.iter().all(|o| *o == writer),
        "{owners:?}"
    );
    let events = r.ok(&["events", "--json", "-n", "50"]);
    assert!(
        events.contains(&writer),
        "the journal names the writer: {events}"
    );

    // Revocation takes effect at once, on every route.
    r.ok(&["token", "revoke", &writer_token]);
    let refused = request(
        &d.api,
        "POST",
        "/api/v0/repo/stat",
        &[("Authorization", &w)],
    );
    assert_eq!(refused.status, 401);
    assert_eq!(reason(&refused), "token_revoked");

    // The gateway serves content to anyone; its private neighbours refuse.
    let g = request(&d.gateway, "GET", &format!("/ipfs/{cid}"), &[]);
    assert_eq!(g.status, 200);
    for private in [
        "/api/kiln/v1/pins",
        "/api/kiln/v1/events",
        "/api/kiln/v1/stat",
        "/api/kiln/v1/invites",
        "/psa/pins",
    ] {
        assert_eq!(
            request(&d.api, "GET", private, &[]).status,
            401,
            "{private}"
        );
    }
    assert_eq!(request(&d.api, "GET", "/", &[]).status, 401, "the UI");
    assert_eq!(
        request(&d.api, "GET", "/api/kiln/v1/node", &[]).status,
        200,
        "who the node is stays public"
    );

    // No secret in the daemon's log or the journal.
    let log = std::fs::read_to_string(&d.log).unwrap();
    let journal = r.ok(&["events", "--json", "-n", "10000"]);
    for (name, text) in [("log", &log), ("journal", &journal)] {
        assert!(!text.contains("kiln1_"), "a token in the {name}");
    }
    d.stop();
}

#[test]
fn an_identity_signs_in_by_answering_a_challenge() {
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    let d = strict(&r);
    let url = format!("http://{}", d.api);
    let (bob, bob_config) = common::person(&r, "bob");
    let bob_cmd = |args: &[&str]| {
        r.cmd()
            .env("XDG_CONFIG_HOME", &bob_config)
            .env_remove("KILN_TOKEN")
            .args(args)
            .output()
            .unwrap()
    };
    // Not a user yet: refused, clearly.
    let o = bob_cmd(&["--node", &url, "token", "create"]);
    assert!(!o.status.success());
    assert!(
        common::text(&o.stderr).contains("not a user of this node"),
        "{}",
        common::text(&o.stderr)
    );
    r.ok(&[
        "user",
        "add",
        &bob,
        "--role",
        "writer",
        "--namespace",
        "default",
    ]);
    let o = bob_cmd(&["--node", &url, "token", "create", "--ttl", "1h"]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let t = common::text(&o.stdout).trim().to_string();
    let who = request(
        &d.api,
        "GET",
        "/api/kiln/v1/auth/whoami",
        &[("Authorization", &bearer(&t))],
    );
    let v: serde_json::Value = serde_json::from_slice(&who.body).unwrap();
    assert_eq!(v["did"], bob.as_str());
    // With the token, bob's commands work against the node over TCP.
    let o = r
        .cmd()
        .env("KILN_TOKEN", &t)
        .args(["--node", &url, "pin", "ls"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o.stderr));

    // A challenge is good once, for its identity, signed by it.
    let key = kiln_id::NodeKey::load(&bob_config.join("kiln/identity.key")).unwrap();
    let ask = || {
        let c = request_with_body(
            &d.api,
            "POST",
            "/api/kiln/v1/auth/challenge",
            &[("Content-Type", "application/json")],
            format!(r#"{{"did":"{bob}"}}"#).as_bytes(),
        );
        assert_eq!(c.status, 200, "{}", common::text(&c.body));
        serde_json::from_slice::<serde_json::Value>(&c.body).unwrap()
    };
    let answer = |c: &serde_json::Value, signer: &kiln_id::NodeKey| {
        use base64::Engine;
        let nonce = c["nonce"].as_str().unwrap();
        let msg = kiln_node::auth::challenge_message(c["node"].as_str().unwrap(), &bob, nonce);
        let sig = base64::engine::general_purpose::STANDARD.encode(signer.sign(&msg));
        request_with_body(
            &d.api,
            "POST",
            "/api/kiln/v1/auth/token",
            &[("Content-Type", "application/json")],
            format!(r#"{{"did":"{bob}","nonce":"{nonce}","signature":"{sig}"}}"#).as_bytes(),
        )
    };
    let c = ask();
    assert_eq!(answer(&c, &key).status, 200);
    let replay = answer(&c, &key);
    assert_eq!(replay.status, 401, "a replayed challenge");
    assert_eq!(reason(&replay), "challenge_failed");
    let c = ask();
    let mallory = kiln_id::NodeKey::generate().unwrap();
    assert_eq!(answer(&c, &mallory).status, 401, "signed by another key");
    d.stop();
}

/// The journal is the audit trail: a user's changes name its did:key; an admin reads any
/// identity's events (`kiln audit --who DID`), a user only its own.
#[test]
fn the_audit_trail_names_the_identity_that_asked() {
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    let d = strict(&r);
    let url = format!("http://{}", d.api);
    let (bob, _) = common::person(&r, "bob");
    r.ok(&["user", "add", &bob, "--role", "writer"]);
    let t = token(&r, &["--for", &bob, "--ttl", "1h"]);
    let bob_cmd = |args: &[&str]| {
        let mut a = vec!["--node", url.as_str()];
        a.extend_from_slice(args);
        r.cmd().env("KILN_TOKEN", &t).args(&a).output().unwrap()
    };
    let file = r.path("bob.txt");
    common::write(&file, b"bob's file\n");
    let o = bob_cmd(&["add", "-Q", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let cid = common::text(&o.stdout).trim().to_string();
    r.add(&[file.to_str().unwrap()]);

    let events = |out: String| -> Vec<serde_json::Value> {
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // The admin, on the socket: bob's add, under bob's did:key, and nothing else.
    let bobs = events(r.ok(&["audit", "--who", &bob, "--json"]));
    assert!(!bobs.is_empty());
    assert!(bobs.iter().all(|e| e["who"] == bob.as_str()), "{bobs:?}");
    assert!(
        bobs.iter()
            .any(|e| e["action"] == "add" && e["target"] == cid.as_str()),
        "{bobs:?}"
    );
    let adds = events(r.ok(&["audit", "--action", "add", "--json"]));
    assert!(adds.iter().any(|e| e["who"] == "local"));
    assert!(adds.iter().any(|e| e["who"] == bob.as_str()));
    // Bob, over TCP: his own events only; another identity's are refused.
    let o = bob_cmd(&["audit", "--json"]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let own = events(common::text(&o.stdout));
    assert!(!own.is_empty());
    assert!(own.iter().all(|e| e["who"] == bob.as_str()), "{own:?}");
    // Metrics are for readers too: a scraper needs a token.
    assert_eq!(request(&d.api, "GET", "/metrics", &[]).status, 401);
    let m = request(&d.api, "GET", "/metrics", &[("Authorization", &bearer(&t))]);
    assert_eq!(m.status, 200);
    assert!(common::text(&m.body).contains("kiln_store_blocks"));
    let o = bob_cmd(&["audit", "--who", "local"]);
    assert!(!o.status.success());
    assert!(
        common::text(&o.stderr).contains("only an admin"),
        "{}",
        common::text(&o.stderr)
    );
    d.stop();
}

/// The daemon keeps what it read of users and revoked tokens in memory: a change made on
/// the repository by another process (the command line) holds from the very next request.
#[test]
fn a_revocation_or_removal_made_beside_the_daemon_holds_at_once() {
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    let d = strict(&r);
    let (bob, _) = common::person(&r, "bob");
    r.ok(&["user", "add", &bob, "--role", "writer"]);
    let first = token(&r, &["--for", &bob]);
    let second = token(&r, &["--for", &bob]);
    let ask = |t: &str| {
        request(
            &d.api,
            "POST",
            "/api/v0/pin/ls",
            &[("Authorization", &bearer(t))],
        )
    };
    for _ in 0..3 {
        assert_eq!(ask(&first).status, 200);
        assert_eq!(ask(&second).status, 200);
    }
    r.ok(&["token", "revoke", &first]);
    let refused = ask(&first);
    assert_eq!(refused.status, 401);
    assert_eq!(reason(&refused), "token_revoked");
    assert_eq!(ask(&second).status, 200);
    r.ok(&["user", "revoke", &bob]);
    let refused = ask(&second);
    assert_eq!(refused.status, 403, "{}", common::text(&refused.body));
    r.ok(&["user", "rm", &bob]);
    let refused = ask(&second);
    assert_eq!(refused.status, 401);
    assert_eq!(reason(&refused), "unknown_user");
    d.stop();
}

/// The web UI on a listener that requires tokens: a one-time link from `kiln ui login`
/// gives the browser a session cookie (HttpOnly, SameSite=Strict); the link works once;
/// signing out, or `kiln ui logout --all`, ends the session; nothing secret is logged.
#[test]
fn a_browser_signs_in_to_the_web_ui_with_a_one_time_link() {
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    let d = strict(&r);
    let page = |cookie: Option<&str>| {
        let c;
        let mut h = vec![];
        if let Some(v) = cookie {
            c = format!("kiln_session={v}");
            h.push(("Cookie", c.as_str()));
        }
        request(&d.api, "GET", "/ui/pins", &h)
    };
    let refused = page(None);
    assert_eq!(refused.status, 401);
    assert!(common::text(&refused.body).contains("kiln ui login"));

    let url = r.ok(&["ui", "login"]).trim().to_string();
    let prefix = format!("http://{}/ui/login?code=", d.api);
    assert!(url.starts_with(&prefix), "{url}");
    let path = &url[format!("http://{}", d.api).len()..];
    let signed_in = request(&d.api, "GET", path, &[]);
    assert_eq!(signed_in.status, 303, "{}", common::text(&signed_in.body));
    assert_eq!(signed_in.header("location").as_deref(), Some("/"));
    let set = signed_in.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(flag), "{set}");
    }
    let session = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("kiln_session=")
        .unwrap()
        .to_string();
    assert_eq!(page(Some(&session)).status, 200);
    // The link worked once; a made-up session is nobody.
    let again = request(&d.api, "GET", path, &[]);
    assert_eq!(again.status, 401);
    assert!(common::text(&again.body).contains("not valid"));
    assert_eq!(page(Some(&"0".repeat(64))).status, 401);
    // The session is for the web UI only: not a token for the APIs.
    let api = request(
        &d.api,
        "POST",
        "/api/v0/pin/ls",
        &[("Cookie", &format!("kiln_session={session}"))],
    );
    assert_eq!(api.status, 401);

    // Signing out ends it.
    let out = request_with_body(
        &d.api,
        "POST",
        "/ui/logout",
        &[
            ("Cookie", &format!("kiln_session={session}")),
            ("Sec-Fetch-Site", "same-origin"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"",
    );
    assert_eq!(out.status, 200);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(page(Some(&session)).status, 401);

    // The administrator ends every session at once.
    let url = r.ok(&["ui", "login"]).trim().to_string();
    let path = url[format!("http://{}", d.api).len()..].to_string();
    let set = request(&d.api, "GET", &path, &[])
        .header("set-cookie")
        .unwrap();
    let second = set.split(';').next().unwrap()["kiln_session=".len()..].to_string();
    assert_eq!(page(Some(&second)).status, 200);
    assert!(r.ok(&["ui", "logout", "--all"]).contains("ended 1"));
    assert_eq!(page(Some(&second)).status, 401);
    d.stop();
    let log = std::fs::read_to_string(r.path("daemon.log")).unwrap();
    let code = &path["/ui/login?code=".len()..];
    for secret in [code, session.as_str(), second.as_str()] {
        assert!(!log.contains(secret), "a secret reached the daemon's log");
    }
}

/// The host's first non-loopback IPv4 address (the one a UDP socket "connected" outward would
/// send from; nothing is sent).
fn host_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.254:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// One raw HTTP/1.1 request, as a step would write it on a socket.
fn raw_request(method: &str, target: &str, ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nSec-Fetch-Site: same-origin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    b.extend_from_slice(body);
    b
}

#[test]
fn a_fixed_output_step_reaches_no_listener_of_the_daemon() {
    let test = "a_fixed_output_step_reaches_no_listener_of_the_daemon";
    if common::needs::host_program(test, "slirp4netns", "slirp4netns").is_none() {
        return;
    }
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    // The worst case: loopback callers act as the local administrator without a token.
    let d = Daemon::start(&r);
    let secret = "private-content-the-step-must-not-read-7f3a";
    let f = r.path("private.txt");
    common::write(&f, secret.as_bytes());
    let cid = r.add(&[f.to_str().unwrap()]);

    // Every mutating route of the API listener, the private reads of both listeners, and
    // the web UI, each as a raw request file in the step's source.
    let src = r.path("src");
    let mut n = 0;
    let mut put = |listener: &str, method: &str, target: &str, ctype: &str, body: &[u8]| {
        n += 1;
        common::write(
            &src.join(format!("req/{listener}-{n:03}")),
            &raw_request(method, target, ctype, body),
        );
    };
    for route in routes(&cid, "t1", "r1") {
        put("api", route.method, &route.target, route.ctype, &route.body);
    }
    let json = "application/json";
    for target in [
        format!("/api/v0/cat?arg={cid}"),
        format!("/api/v0/block/get?arg={cid}"),
        "/api/v0/pin/ls".into(),
        "/api/v0/repo/stat".into(),
        "/api/kiln/v1/events".into(),
        "/api/kiln/v1/builds".into(),
        "/api/kiln/v1/tokens".into(),
        "/api/kiln/v1/users".into(),
        "/metrics".into(),
    ] {
        put("api", "POST", &target, json, b"");
        put("api", "GET", &target, json, b"");
    }
    for target in [
        "/ui/".to_string(),
        "/ui/pins".into(),
        "/ui/builds".into(),
        "/ui/events".into(),
    ] {
        put("api", "GET", &target, json, b"");
    }
    for target in [
        format!("/ipfs/{cid}"),
        format!("/ipfs/{cid}?format=raw"),
        format!("/ipfs/{cid}?format=car"),
        "/metrics".into(),
    ] {
        put("gw", "GET", &target, json, b"");
    }
    let port = |a: &str| a.rsplit(':').next().unwrap().to_string();
    // A listener on the host's own address the step must reach: the network is on, so the
    // refusals below are the loopback being out of reach, not the step having no network.
    let control = host_address().map(|ip| {
        let l = std::net::TcpListener::bind((ip, 0)).unwrap();
        (ip, l)
    });
    let control_probe = match &control {
        Some((ip, l)) => format!(
            "(echo hello > /dev/tcp/{ip}/{}) 2>/dev/null || echo 'NO NETWORK: {ip} unreachable'\n",
            l.local_addr().unwrap().port()
        ),
        None => String::new(),
    };
    let script = format!(
        r#"for f in req/*; do
  case "$f" in req/api-*) p={api};; *) p={gw};; esac
  for h in 127.0.0.1 10.0.2.2 localhost; do
    {{ {{ cat "$f" >&3; echo "REACHED $h:$p with $f:"; head -c 300 <&3; echo; }} 3<>"/dev/tcp/$h/$p"; }} 2>/dev/null
  done
done
{control_probe}echo isolated
"#,
        api = port(&d.api),
        gw = port(&d.gateway),
    );
    common::write(&src.join("probe.sh"), script.as_bytes());
    let isolated = {
        let f = r.path("isolated");
        common::write(&f, b"isolated\n");
        r.ok(&["add", "-n", "-Q", "--cid-version", "1", f.to_str().unwrap()])
            .trim()
            .to_string()
    };
    common::write(
        &src.join("kiln.toml"),
        format!(
            r#"
[step.probe]
builder = "host"
command = ["bash", "-c", "bash probe.sh 2>&1 | tee out"]
inputs = {{ "req" = "req", "probe.sh" = "probe.sh" }}
outputs = ["out"]
output_hash = "{isolated}"
"#
        )
        .as_bytes(),
    );

    let before = r.ok(&["events", "--json", "-n", "10000"]);
    let before_state = [
        r.ok(&["pin", "ls", "--type", "all"]),
        r.ok(&["user", "ls"]),
        r.ok(&["token", "ls"]),
    ]
    .join("\n--\n");
    let o = r.run(&["build", src.to_str().unwrap()]);
    let (out, err) = (common::text(&o.stdout), common::text(&o.stderr));
    assert!(
        o.status.success(),
        "the step reached a listener (or lost its network):\n{out}\n{err}"
    );
    assert!(!out.contains(secret) && !err.contains(secret));
    if let Some((_, l)) = &control {
        l.set_nonblocking(true).unwrap();
        assert!(l.accept().is_ok(), "the control connection never arrived");
    }
    // Nothing changed but the build's own records: the same pins, users and tokens, and
    // the journal's new events are the build's import of its source and the build itself.
    let state = |r: &Repo| {
        [
            r.ok(&["pin", "ls", "--type", "all"])
                .lines()
                .filter(|l| !l.contains(" recursive build "))
                .map(|l| format!("{l}\n"))
                .collect(),
            r.ok(&["user", "ls"]),
            r.ok(&["token", "ls"]),
        ]
        .join("\n--\n")
    };
    assert_eq!(state(&r), before_state);
    let events = r.ok(&["events", "--json", "-n", "10000"]);
    let new: Vec<serde_json::Value> = events
        .lines()
        .filter(|l| !before.contains(*l))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!new.is_empty());
    for e in &new {
        let action = e["action"].as_str().unwrap();
        assert!(action == "import" || action.starts_with("build"), "{e}");
    }
    d.stop();
}

/// A browser's session cookie from a sign-in link printed by `kiln ui login`.
fn ui_session(d: &Daemon, url: &str) -> String {
    let url = url.trim();
    let path = &url[format!("http://{}", d.api).len()..];
    let signed_in = request(&d.api, "GET", path, &[]);
    assert_eq!(
        signed_in.status,
        303,
        "{url}: {}",
        common::text(&signed_in.body)
    );
    let set = signed_in.header("set-cookie").unwrap();
    set.split(';')
        .next()
        .unwrap()
        .strip_prefix("kiln_session=")
        .unwrap()
        .to_string()
}

/// A web UI request with a session cookie (a form POST when `form` is given).
fn ui(d: &Daemon, session: &str, target: &str, form: Option<&str>) -> Reply {
    let cookie = format!("kiln_session={session}");
    match form {
        None => request(&d.api, "GET", target, &[("Cookie", &cookie)]),
        Some(body) => request_with_body(
            &d.api,
            "POST",
            target,
            &[
                ("Cookie", &cookie),
                ("Sec-Fetch-Site", "same-origin"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        ),
    }
}

/// Identities sign in to the web UI too: `kiln ui login` with a token gives a session that
/// acts as that identity — its own pins, quota and events; the admin pages (users, tokens,
/// invites, everyone's audit trail) refused, nothing changed — and dies with its token. An
/// administrator's session runs those pages: users and roles added, granted, revoked and
/// removed, a token revoked (its holder's session ends at once), an invite made whose code
/// another identity then joins with.
#[test]
fn identities_sign_in_to_the_web_ui_and_see_what_their_roles_allow() {
    let r = Repo::new();
    let admin = r.ok(&["identity", "new"]).trim().to_string();
    r.ok(&["init"]);
    let d = strict(&r);
    let url = format!("http://{}", d.api);
    let (bob, _) = common::person(&r, "bob");
    let (carol, _) = common::person(&r, "carol");
    r.ok(&["user", "add", &bob, "--role", "writer", "--name", "Bob"]);
    r.ok(&["user", "add", &carol, "--role", "reader"]);
    let bob_token = token(&r, &["--for", &bob, "--note", "bob's"]);
    let carol_token = token(&r, &["--for", &carol]);
    let as_holder = |t: &str, args: &[&str]| {
        let mut a = vec!["--node", url.as_str()];
        a.extend_from_slice(args);
        let o = r.cmd().env("KILN_TOKEN", t).args(&a).output().unwrap();
        assert!(o.status.success(), "{a:?}: {}", common::text(&o.stderr));
        common::text(&o.stdout).trim().to_string()
    };
    let admins_file = r.path("admin.txt");
    common::write(&admins_file, b"the administrator's file");
    let admins_cid = r.add(&[admins_file.to_str().unwrap()]);
    let bobs_file = r.path("bob.txt");
    common::write(&bobs_file, b"bob's own file, pinned by bob");
    let bobs_cid = as_holder(&bob_token, &["add", "-Q", bobs_file.to_str().unwrap()]);

    // Bob signs in with his token: his pins, his roles, his quota use.
    let bob_link = as_holder(&bob_token, &["ui", "login"]);
    let bob_ui = ui_session(&d, &bob_link);
    let home = ui(&d, &bob_ui, "/", None);
    assert_eq!(home.status, 200, "{}", common::text(&home.body));
    let home = common::text(&home.body);
    for want in [bob.as_str(), "writer", "Pinned bytes", "Your pins"] {
        assert!(home.contains(want), "the dashboard lacks {want:?}");
    }
    assert!(!home.contains("/ui/users"), "admin links shown to a writer");
    let pins = common::text(&ui(&d, &bob_ui, "/ui/pins", None).body);
    assert!(pins.contains(&bobs_cid), "bob's pin is not listed");
    assert!(
        !pins.contains(&admins_cid),
        "the admin's pin is shown to bob"
    );
    let activity = ui(&d, &bob_ui, "/ui/audit", None);
    assert_eq!(activity.status, 200);
    let activity = common::text(&activity.body);
    assert!(activity.contains(&bobs_cid) && !activity.contains(&admins_cid));
    assert_eq!(ui(&d, &bob_ui, "/ui/audit?who=local", None).status, 403);

    // The admin pages and their forms refuse him, and change nothing.
    let before = snapshot(&r);
    let bob_token_id = r
        .ok(&["token", "ls"])
        .lines()
        .find(|l| l.contains(&bob))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let (mallory, _) = common::person(&r, "mallory");
    for page in ["/ui/users", "/ui/tokens", "/ui/invites"] {
        assert_eq!(ui(&d, &bob_ui, page, None).status, 403, "{page}");
    }
    let forms = [
        ("/ui/users", format!("did={mallory}&role=admin&namespace=*")),
        (
            "/ui/users/grant",
            format!("did={bob}&role=admin&namespace=*"),
        ),
        ("/ui/users/revoke", format!("did={carol}&namespace=default")),
        ("/ui/users/remove", format!("did={carol}")),
        (
            "/ui/invites",
            "role=admin&namespace=*&expires=1h".to_string(),
        ),
        ("/ui/pins/remove", format!("cid={admins_cid}&owner=local")),
    ];
    for (target, body) in &forms {
        let reply = ui(&d, &bob_ui, target, Some(body));
        assert_eq!(reply.status, 403, "{target}: {}", common::text(&reply.body));
    }
    let carol_ui = ui_session(&d, &as_holder(&carol_token, &["ui", "login"]));
    for (target, body) in forms
        .iter()
        .chain(&[("/ui/pins", format!("path={admins_cid}&name=carol"))])
    {
        let reply = ui(&d, &carol_ui, target, Some(body));
        assert_eq!(
            reply.status,
            403,
            "carol {target}: {}",
            common::text(&reply.body)
        );
    }
    assert_eq!(
        snapshot(&r),
        before,
        "a refused UI request changed something"
    );

    // The administrator's session runs them.
    let admin_ui = ui_session(&d, &r.ok(&["ui", "login"]));
    let users = common::text(&ui(&d, &admin_ui, "/ui/users", None).body);
    assert!(users.contains(&bob) && users.contains(&carol) && users.contains("Bob"));
    let (dave, _) = common::person(&r, "dave");
    let done = |target: &str, body: &str| {
        let reply = ui(&d, &admin_ui, target, Some(body));
        assert_eq!(reply.status, 303, "{target}: {}", common::text(&reply.body));
    };
    done(
        "/ui/users",
        &format!("did={dave}&name=Dave&role=writer&namespace=default"),
    );
    done(
        "/ui/users/grant",
        &format!("did={dave}&role=maintainer&namespace=ci"),
    );
    let listed = r.ok(&["user", "ls"]);
    let dave_line = listed.lines().find(|l| l.contains(&dave)).unwrap();
    assert!(
        dave_line.contains("writer") && dave_line.contains("maintainer"),
        "{dave_line}"
    );
    done("/ui/users/revoke", &format!("did={dave}&namespace=ci"));
    assert!(!r.ok(&["user", "ls"]).contains("maintainer"));
    // A bad form answers with the page, the error and its status.
    let bad = ui(
        &d,
        &admin_ui,
        "/ui/users",
        Some("did=not-a-did&role=reader"),
    );
    assert_eq!(bad.status, 400, "{}", common::text(&bad.body));
    assert!(common::text(&bad.body).contains("did:key"));
    done("/ui/users/remove", &format!("did={dave}"));
    assert!(!r.ok(&["user", "ls"]).contains(&dave));
    let audit = common::text(&ui(&d, &admin_ui, &format!("/ui/audit?who={dave}"), None).body);
    assert!(
        audit.contains("No events match"),
        "dave did nothing himself"
    );
    let audit = common::text(&ui(&d, &admin_ui, "/ui/audit?action=user+add", None).body);
    assert!(audit.contains(&dave) && audit.contains(&bob) && !audit.contains(&bobs_cid));

    // Revoking bob's token on the Tokens page ends his session at once.
    let tokens = common::text(&ui(&d, &admin_ui, "/ui/tokens", None).body);
    assert!(tokens.contains(&bob_token_id), "bob's token is not listed");
    done("/ui/tokens/revoke", &format!("id={bob_token_id}"));
    assert!(
        r.ok(&["token", "ls"])
            .contains(&format!("{bob_token_id} {bob} revoked"))
    );
    let gone = ui(&d, &bob_ui, "/ui/pins", None);
    assert_eq!(gone.status, 401, "{}", common::text(&gone.body));
    assert!(common::text(&gone.body).contains("no longer holds"));
    // Removing carol ends hers.
    assert_eq!(ui(&d, &carol_ui, "/ui/pins", None).status, 200);
    r.ok(&["user", "rm", &carol]);
    assert_eq!(ui(&d, &carol_ui, "/ui/pins", None).status, 401);

    // An invite made on the Invites page: its code, shown once, lets erin join.
    let made = ui(
        &d,
        &admin_ui,
        "/ui/invites",
        Some("role=writer&namespace=default&expires=1h"),
    );
    assert_eq!(made.status, 200, "{}", common::text(&made.body));
    let page = common::text(&made.body);
    let join_line = page
        .split("<pre id=\"invite-join\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap()
        .to_string();
    let words: Vec<&str> = join_line.split(' ').collect();
    assert_eq!(words[..3], ["kiln", "join", url.as_str()], "{join_line}");
    let code = words[3].to_string();
    let listed = common::text(&ui(&d, &admin_ui, "/ui/invites", None).body);
    assert!(!listed.contains(&code), "the code is shown again");
    assert!(listed.contains("waiting"));
    let (erin, erin_config) = common::person(&r, "erin");
    let o = r
        .cmd()
        .env("XDG_CONFIG_HOME", &erin_config)
        .args(["join", &url, &code])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let erin_line = r.ok(&["user", "ls"]);
    assert!(
        erin_line
            .lines()
            .any(|l| l.contains(&erin) && l.contains("writer"))
    );
    assert!(common::text(&ui(&d, &admin_ui, "/ui/invites", None).body).contains("used"));
    let _ = admin;

    let log_path = d.log.clone();
    d.stop();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let journal = r.ok(&["events", "--json", "-n", "10000"]);
    for secret in [
        bob_token.as_str(),
        carol_token.as_str(),
        bob_ui.as_str(),
        carol_ui.as_str(),
        admin_ui.as_str(),
        code.as_str(),
    ] {
        assert!(!log.contains(secret), "a secret reached the daemon's log");
        assert!(!journal.contains(secret), "a secret reached the journal");
    }
}

/// A key file's secret as it would show if it leaked: a PEM file's base64 body, or a raw
/// key's bytes in hex and in base64.
fn key_forms(path: &std::path::Path) -> Vec<String> {
    use base64::Engine;
    let raw = std::fs::read(path).unwrap();
    match std::str::from_utf8(&raw) {
        Ok(pem) if pem.starts_with("-----") => vec![
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        ],
        _ => vec![
            raw.iter().map(|b| format!("{b:02x}")).collect(),
            base64::engine::general_purpose::STANDARD.encode(&raw),
        ],
    }
}

/// No secret — the node's key, a person's key, tokens (issued, narrowed, signed in for,
/// revoked, forged), invite codes, sign-in links, session cookies — reaches the daemon's log
/// (at debug level), its metrics, an error body of any protocol, or the journal, however
/// the requests around them fail.
#[test]
fn no_secret_reaches_a_log_a_metric_an_error_body_or_the_journal() {
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    let d = Daemon::start_with_env(
        &r,
        &["--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0"],
        &[("RUST_LOG", "debug")],
    );
    let url = format!("http://{}", d.api);
    let admin = token(&r, &["--note", "scraper"]);
    let (bob, bob_config) = common::person(&r, "bob");
    r.ok(&["user", "add", &bob, "--role", "writer"]);
    let issued = token(&r, &["--for", &bob]);
    let narrowed = r
        .ok(&[
            "token",
            "attenuate",
            &issued,
            "--only",
            "read",
            "--ttl",
            "10m",
        ])
        .trim()
        .to_string();
    // Bob signs in by challenge (his key signs; the node mints).
    let o = r
        .cmd()
        .env("XDG_CONFIG_HOME", &bob_config)
        .args(["--node", &url, "token", "create", "--ttl", "1h"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let signed_in = common::text(&o.stdout).trim().to_string();
    let revoked = token(&r, &["--for", &bob, "--note", "to revoke"]);
    r.ok(&["token", "revoke", &revoked]);
    let forged = {
        let mut b = issued.clone().into_bytes();
        let i = b.len() - 10;
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let code = r
        .ok(&["invite", "create", "--role", "reader", "--expires", "1h"])
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.len() == 23 && w.matches('-').count() == 3)
                .map(str::to_string)
        })
        .expect("an invite code");
    let link = r.ok(&["ui", "login"]).trim().to_string();
    let link_code = link.split("code=").nth(1).unwrap().to_string();
    let session = ui_session(&d, &link);

    // Requests that fail, in every protocol, each error body kept.
    let mut bodies = Vec::new();
    let mut keep = |reply: Reply, want: u16, what: &str| {
        assert_eq!(reply.status, want, "{what}: {}", common::text(&reply.body));
        bodies.push(common::text(&reply.body));
    };
    let with = |t: &str| format!("Bearer {t}");
    let json = ("Content-Type", "application/json");
    for (t, want) in [(&forged, 401), (&revoked, 401), (&narrowed, 403)] {
        let h = with(t);
        keep(
            request(&d.api, "POST", "/api/v0/repo/gc", &[("Authorization", &h)]),
            want,
            "rpc",
        );
        keep(
            request_with_body(
                &d.api,
                "POST",
                "/api/kiln/v1/gc",
                &[("Authorization", &h), json],
                b"{}",
            ),
            want,
            "kiln api",
        );
        keep(
            request_with_body(
                &d.api,
                "POST",
                "/psa/pins",
                &[("Authorization", &h), json],
                br#"{"cid":"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}"#,
            ),
            want,
            "pinning service",
        );
    }
    keep(
        request(&d.api, "GET", &format!("/ui/login?code={link_code}"), &[]),
        401,
        "a used sign-in link",
    );
    keep(
        request(
            &d.api,
            "GET",
            "/ui/users",
            &[("Cookie", &format!("kiln_session={session}x"))],
        ),
        401,
        "a made-up session",
    );
    keep(
        request(
            &d.api,
            "GET",
            "/ui/users",
            &[("Authorization", &with(&issued))],
        ),
        401,
        "a token on the web UI",
    );
    let wrong_code = format!("{}A", &code[..code.len() - 1]);
    let o = r
        .cmd()
        .env("XDG_CONFIG_HOME", &bob_config)
        .args(["join", &url, &wrong_code])
        .output()
        .unwrap();
    assert!(!o.status.success(), "a wrong code joined");
    // And some that succeed, so the log has their debug lines too.
    for t in [&issued, &signed_in] {
        assert_eq!(
            request(
                &d.api,
                "POST",
                "/api/v0/pin/ls",
                &[("Authorization", &with(t))]
            )
            .status,
            200
        );
    }
    assert_eq!(ui(&d, &session, "/ui/tokens", None).status, 200);
    let metrics = request(
        &d.api,
        "GET",
        "/metrics",
        &[("Authorization", &with(&admin))],
    );
    assert_eq!(metrics.status, 200);
    let metrics = common::text(&metrics.body);
    assert!(metrics.contains("kiln_"));
    let journal = r.ok(&["events", "--json", "-n", "100000"]);
    let log_path = d.log.clone();
    d.stop();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("DEBUG"),
        "the daemon did not log at debug level"
    );

    let plain_code: String = code.chars().filter(|c| *c != '-').collect();
    let keys: Vec<String> = [
        r.home().join("identity.key"),
        r.path("config/kiln/identity.key"),
        bob_config.join("kiln/identity.key"),
    ]
    .iter()
    .flat_map(|p| key_forms(p))
    .collect();
    let mut secrets: Vec<(&str, &str)> = keys.iter().map(|k| ("a key", k.as_str())).collect();
    secrets.extend([
        ("an issued token", issued.as_str()),
        ("a narrowed token", narrowed.as_str()),
        ("a signed-in token", signed_in.as_str()),
        ("a revoked token", revoked.as_str()),
        ("a forged token", forged.as_str()),
        ("the scraper's token", admin.as_str()),
        ("an invite code", code.as_str()),
        ("an invite code", plain_code.as_str()),
        ("a sign-in link", link_code.as_str()),
        ("a session", session.as_str()),
    ]);
    let mut places = vec![
        ("the log", log.as_str()),
        ("the metrics", metrics.as_str()),
        ("the journal", journal.as_str()),
    ];
    places.extend(bodies.iter().map(|b| ("an error body", b.as_str())));
    for (secret, value) in secrets {
        assert!(value.len() >= 20, "{secret} is too short to look for");
        for (place, text) in &places {
            assert!(!text.contains(value), "{secret} reached {place}");
        }
    }
}

/// Namespaces scope pins: a token narrowed to `--only pin --namespace ci` pins and unpins
/// there and nowhere else; a writer only in `ci` likewise; an owner's pin of a CID lives in
/// one namespace; `kiln pin ls` says where.
#[test]
fn a_token_narrowed_to_one_namespace_pins_there_and_nowhere_else() {
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    let d = strict(&r);
    let url = format!("http://{}", d.api);
    let f = r.path("f.txt");
    common::write(&f, b"content a CI job pins");
    let cid = r.add(&[f.to_str().unwrap()]);
    let (bob, _) = common::person(&r, "bob");
    let (carol, _) = common::person(&r, "carol");
    r.ok(&["user", "add", &bob, "--role", "writer"]);
    r.ok(&[
        "user",
        "add",
        &carol,
        "--role",
        "writer",
        "--namespace",
        "ci",
    ]);
    let bobs = token(&r, &["--for", &bob]);
    let ci = r
        .ok(&[
            "token",
            "attenuate",
            &bobs,
            "--only",
            "pin",
            "--namespace",
            "ci",
            "--ttl",
            "1h",
        ])
        .trim()
        .to_string();
    let carols = token(&r, &["--for", &carol]);
    let rpc =
        |t: &str, target: &str| request(&d.api, "POST", target, &[("Authorization", &bearer(t))]);

    let refused = rpc(&ci, &format!("/api/v0/pin/add?arg={cid}"));
    assert_eq!(refused.status, 403, "{}", common::text(&refused.body));
    assert_eq!(reason(&refused), "token_scope");
    let ok = rpc(&ci, &format!("/api/v0/pin/add?arg={cid}&namespace=ci"));
    assert_eq!(ok.status, 200, "{}", common::text(&ok.body));
    assert!(
        r.ok(&["pin", "ls"])
            .contains(&format!("{cid} recursive {bob}@ci")),
        "{}",
        r.ok(&["pin", "ls"])
    );
    // Bob's own full token may not move that pin to another namespace.
    let moved = rpc(&bobs, &format!("/api/v0/pin/add?arg={cid}&namespace=other"));
    assert_eq!(
        moved.status, 500,
        "kubo's table: a conflict is a 500 on the RPC"
    );
    assert!(common::text(&moved.body).contains("namespace ci"));
    // The narrowed token lists its own pins and unpins there.
    let listed = request(
        &d.api,
        "GET",
        "/api/kiln/v1/pins",
        &[("Authorization", &bearer(&ci))],
    );
    assert_eq!(listed.status, 200, "{}", common::text(&listed.body));
    let v: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    assert_eq!(v["pins"][0]["namespace"], "ci");
    assert_eq!(v["pins"].as_array().unwrap().len(), 1);
    let rm = rpc(&ci, &format!("/api/v0/pin/rm?arg={cid}"));
    assert_eq!(rm.status, 200, "{}", common::text(&rm.body));
    assert!(!r.ok(&["pin", "ls"]).contains(&bob));

    // Carol writes in ci only.
    let refused = rpc(&carols, &format!("/api/v0/pin/add?arg={cid}"));
    assert_eq!(refused.status, 403);
    assert_eq!(reason(&refused), "role_insufficient");
    let star = rpc(&carols, &format!("/api/v0/pin/add?arg={cid}&namespace=*"));
    assert_eq!(star.status, 400, "{}", common::text(&star.body));
    let o = r
        .cmd()
        .env("KILN_TOKEN", &carols)
        .args(["--node", &url, "pin", "add", "--namespace", "ci", &cid])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    assert!(r.ok(&["pin", "ls"]).contains(&format!("{carol}@ci")));
    // The local administrator's pin (from its add) is in the default namespace: pinning it
    // in another is refused, clearly, until it is unpinned there.
    let o = r.run(&["pin", "add", "--namespace", "team", &cid]);
    assert!(!o.status.success());
    assert!(
        common::text(&o.stderr).contains("already pins"),
        "{}",
        common::text(&o.stderr)
    );
    r.ok(&["pin", "rm", &cid]);
    assert!(
        r.ok(&["pin", "add", "--namespace", "team", "--name", "t", &cid])
            .contains("pinned")
    );
    let pins = r.ok(&["pin", "ls"]);
    assert!(
        pins.contains(&format!("{cid} recursive local@team t")),
        "{pins}"
    );
    let events = r.ok(&["audit", "--action", "pin", "--json"]);
    assert!(events.contains("in ci"), "{events}");
    d.stop();
}
