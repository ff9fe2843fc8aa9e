//! The Pinning Service API between two kiln nodes: `kiln pin remote` on one asks the other
//! (a daemon that requires tokens) to pin content only the first has, giving its gateway as
//! the origin; the service fetches it (every block checked), pins it for the token's
//! identity, lists and removes it. Another identity sees none of it; a request nobody can
//! serve fails after the configured time with its reason; no key reaches a log.

mod common;

use common::Repo;
use common::daemon::{Daemon, Reply, request, request_with_body};
use std::time::{Duration, Instant};

fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("{e}: {}", common::text(&reply.body)))
}

#[test]
fn a_node_pins_on_another_through_the_pinning_service_api() {
    // The service: a node that requires tokens, whose requests fail after 3 s.
    let service = Repo::new();
    service.ok(&["identity", "new"]);
    service.ok(&["init"]);
    common::write(
        &service.home().join("config.toml"),
        b"[pinning]\nfail_after = \"3s\"\n",
    );
    let svc = Daemon::start_with(
        &service,
        &["--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0"],
    );
    let (alice, _) = common::person(&service, "alice");
    let (bob, _) = common::person(&service, "bob");
    service.ok(&["user", "add", &alice, "--role", "writer"]);
    service.ok(&["user", "add", &bob, "--role", "writer"]);
    let alice_token = service
        .ok(&["token", "create", "--for", &alice])
        .trim()
        .to_string();
    let bob_token = service
        .ok(&["token", "create", "--for", &bob])
        .trim()
        .to_string();

    // The client: content only it has, served by its gateway.
    let client = Repo::new();
    client.ok(&["identity", "new"]);
    client.ok(&["init"]);
    let gw = Daemon::start(&client);
    let dir = client.path("site");
    common::write(&dir.join("index.html"), b"<h1>only on the client</h1>");
    common::write(&dir.join("big.bin"), &common::bytes(600_000, 7));
    let cid = client
        .ok(&[
            "add",
            "-r",
            "-Q",
            "--cid-version",
            "1",
            dir.to_str().unwrap(),
        ])
        .trim()
        .to_string();
    assert!(service.run(&["block", "stat", &cid]).status.code() != Some(0));

    let endpoint = format!("http://{}/psa", svc.api);
    client.ok(&[
        "pin",
        "remote",
        "service",
        "add",
        "there",
        &endpoint,
        &alice_token,
    ]);
    assert_eq!(
        client.ok(&["pin", "remote", "service", "ls"]),
        format!("there\t{endpoint}\n")
    );
    let file = client.path("config/kiln/pinning-services.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let origin = format!(
        "/ip4/127.0.0.1/tcp/{}/http",
        gw.gateway.rsplit(':').next().unwrap()
    );
    let out = client.ok(&[
        "pin",
        "remote",
        "add",
        &cid,
        "--service",
        "there",
        "--name",
        "site",
        "--origin",
        &origin,
    ]);
    assert_eq!(out, format!("CID:\t{cid}\nName:\tsite\nStatus:\tpinned\n"));
    // The service has it all now, pinned for alice.
    let pins = service.ok(&["pin", "ls"]);
    assert!(
        pins.contains(&format!("{cid} recursive {alice} site")),
        "{pins}"
    );
    assert_eq!(
        service.ok_bytes(&["cat", &format!("{cid}/index.html")]),
        b"<h1>only on the client</h1>"
    );
    assert_eq!(
        client.ok(&["pin", "remote", "ls", "--service", "there"]),
        format!("{cid}\tpinned\tsite\n")
    );

    // Bob sees none of alice's requests and can touch none.
    let list = |token: Option<&str>, q: &str| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h = vec![];
        if let Some(a) = &auth {
            h.push(("Authorization", a.as_str()));
        }
        request(&svc.api, "GET", &format!("/psa/pins{q}"), &h)
    };
    let mine = json(&list(Some(&alice_token), ""));
    assert_eq!(mine["count"], 1);
    let id = mine["results"][0]["requestid"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = json(&list(
        Some(&bob_token),
        "?status=queued,pinning,pinned,failed",
    ));
    assert_eq!(theirs["count"], 0);
    let bob_auth = format!("Bearer {bob_token}");
    for method in ["GET", "DELETE"] {
        let r = request(
            &svc.api,
            method,
            &format!("/psa/pins/{id}"),
            &[("Authorization", &bob_auth)],
        );
        assert_eq!(r.status, 404, "{method}");
        assert_eq!(json(&r)["error"]["reason"], "NOT_FOUND");
    }
    let r = request_with_body(
        &svc.api,
        "POST",
        &format!("/psa/pins/{id}"),
        &[
            ("Authorization", &bob_auth),
            ("Content-Type", "application/json"),
        ],
        format!(r#"{{"cid":"{cid}"}}"#).as_bytes(),
    );
    assert_eq!(r.status, 404);
    // No token, a bad token: 401 in the spec's shape.
    let r = list(None, "");
    assert_eq!(r.status, 401);
    assert_eq!(json(&r)["error"]["reason"], "TOKEN_MISSING");
    assert!(r.header("www-authenticate").is_some());
    let r = list(Some("kiln1_forged"), "");
    assert_eq!(r.status, 401);
    // Bad input: 400 BAD_REQUEST.
    let r = list(Some(&alice_token), "?status=done");
    assert_eq!(r.status, 400);
    assert_eq!(json(&r)["error"]["reason"], "BAD_REQUEST");
    let r = request_with_body(
        &svc.api,
        "POST",
        "/psa/pins",
        &[("Authorization", &format!("Bearer {alice_token}"))],
        br#"{"cid":"not-a-cid"}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(service.ok(&["pin", "ls"]).lines().count(), 1);

    // What nobody can serve stays queued, then fails with its reason.
    let missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    let out = client.ok(&[
        "pin",
        "remote",
        "add",
        missing,
        "--service",
        "there",
        "--name",
        "nowhere",
        "--background",
    ]);
    assert!(out.ends_with("Status:\tqueued\n"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let l = json(&list(Some(&alice_token), "?name=nowhere&status=failed"));
        if l["count"] == 1 {
            let reason = l["results"][0]["info"]["reason"].as_str().unwrap();
            assert!(reason.contains("within 3s"), "{reason}");
            break;
        }
        assert!(Instant::now() < deadline, "the request never failed");
        std::thread::sleep(Duration::from_millis(200));
    }
    let err = client.fails(&[
        "pin",
        "remote",
        "add",
        missing,
        "--service",
        "there",
        "--timeout",
        "20s",
    ]);
    assert!(
        err.contains("could not pin") && err.contains("within 3s"),
        "{err}"
    );

    // Removing: one match goes; several need --force.
    client.ok(&[
        "pin",
        "remote",
        "rm",
        "--service",
        "there",
        "--name",
        "site",
    ]);
    assert!(!service.ok(&["pin", "ls"]).contains(&cid));
    let err = client.fails(&[
        "pin",
        "remote",
        "rm",
        "--service",
        "there",
        "--status",
        "failed",
    ]);
    assert!(
        err.contains("2 remote pins match") && err.contains("--force"),
        "{err}"
    );
    client.ok(&[
        "pin",
        "remote",
        "rm",
        "--service",
        "there",
        "--status",
        "failed",
        "--force",
    ]);
    assert_eq!(
        json(&list(
            Some(&alice_token),
            "?status=queued,pinning,pinned,failed"
        ))["count"],
        0
    );
    // The audit trail names alice; no key reached a log or the journal.
    let audit = service.ok(&["audit", "--who", &alice, "--json"]);
    assert!(audit.contains("\"action\":\"pin request\""), "{audit}");
    assert!(audit.contains("\"action\":\"pin request rm\""), "{audit}");
    client.ok(&["pin", "remote", "service", "rm", "there"]);
    assert_eq!(client.ok(&["pin", "remote", "service", "ls"]), "");
    drop(gw);
    svc.stop();
    let log = std::fs::read_to_string(service.path("daemon.log")).unwrap();
    for secret in [&alice_token, &bob_token] {
        assert!(!log.contains(secret.as_str()) && !audit.contains(secret.as_str()));
    }
}
