//! Invite codes between two identities: an administrator makes one, another identity joins
//! with it over the node's API and gets exactly the role it grants; a code works once, a
//! wrong or expired one is refused, the store holds no code, and no code reaches a log.

mod common;

use common::Repo;
use common::daemon::{Daemon, request};
use std::time::{Duration, Instant};

fn as_person(r: &Repo, config: &std::path::Path, args: &[&str]) -> std::process::Output {
    r.cmd()
        .env("XDG_CONFIG_HOME", config)
        .env("KILN_HOME", r.path("elsewhere"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn an_invite_code_lets_one_identity_join_with_its_role_once() {
    let r = Repo::new();
    r.ok(&["identity", "new"]);
    r.ok(&["init"]);
    let d = Daemon::start_with(&r, &["--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0"]);
    let url = format!("http://{}", d.api);
    let o = r.run(&[
        "invite",
        "create",
        "--role",
        "writer",
        "--namespace",
        "ci",
        "--expires",
        "1h",
    ]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let code = common::text(&o.stdout).trim().to_string();
    assert_eq!(code.len(), 23, "{code}");
    assert!(common::text(&o.stderr).contains("kiln join"));

    let (alice, alice_cfg) = common::person(&r, "alice");
    let o = as_person(&r, &alice_cfg, &["join", &url, &code.to_lowercase()]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    assert!(
        common::text(&o.stdout).contains("writer in namespace ci"),
        "{}",
        common::text(&o.stdout)
    );
    let users = r.ok(&["user", "ls"]);
    assert!(users.contains(&format!("{alice} writer@ci")), "{users}");
    let nodes = alice_cfg.join("kiln/nodes.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&nodes).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&nodes).unwrap().contains(&url));
    // Alice signs in for a token of her own, with the role the invite gave.
    let o = as_person(&r, &alice_cfg, &["token", "create", "--node", &url]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let token = common::text(&o.stdout).trim().to_string();
    let who = request(
        &d.api,
        "GET",
        "/api/kiln/v1/auth/whoami",
        &[("Authorization", &format!("Bearer {token}"))],
    );
    assert!(
        common::text(&who.body).contains("\"ci\""),
        "{}",
        common::text(&who.body)
    );

    // The code works once; a wrong one finds nothing.
    let (bob, bob_cfg) = common::person(&r, "bob");
    let o = as_person(&r, &bob_cfg, &["join", &url, &code]);
    assert!(!o.status.success());
    assert!(
        common::text(&o.stderr).contains("wrong, used or expired"),
        "{}",
        common::text(&o.stderr)
    );
    let o = as_person(&r, &bob_cfg, &["join", &url, "AAAAA-BBBBB-CCCCC-DDDDD"]);
    assert!(!o.status.success());
    assert!(common::text(&o.stderr).contains("wrong, used or expired"));
    let o = as_person(&r, &bob_cfg, &["join", &url, "not a code"]);
    assert!(common::text(&o.stderr).contains("not an invite code"));
    // An expired one too: once the node stops serving it, joining fails.
    let made: serde_json::Value = serde_json::from_str(&r.ok(&[
        "invite",
        "create",
        "--role",
        "reader",
        "--expires",
        "1s",
        "--json",
    ]))
    .unwrap();
    let short = made["code"].as_str().unwrap().to_string();
    let id = made["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while request(&d.api, "GET", &format!("/api/kiln/v1/invites/{id}"), &[]).status != 404 {
        assert!(Instant::now() < deadline, "the invite never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = as_person(&r, &bob_cfg, &["join", &url, &short]);
    assert!(!o.status.success());
    assert!(common::text(&o.stderr).contains("wrong, used or expired"));
    assert!(!r.ok(&["user", "ls"]).contains(&bob));
    // Only an administrator makes invites.
    let err = as_person(
        &r,
        &alice_cfg,
        &["invite", "create", "--role", "admin", "--node", &url],
    );
    assert!(!err.status.success());
    let listed = r.ok(&["invite", "ls"]);
    assert!(listed.contains(&alice), "{listed}");

    d.stop();
    // No code in the store, the journal or the log.
    let db = std::fs::read(r.home().join("store.db")).unwrap();
    let log = std::fs::read_to_string(r.path("daemon.log")).unwrap();
    let journal = r.ok(&["audit", "--json", "-n", "1000"]);
    for c in [&code, &short] {
        let bare = c.replace('-', "");
        assert!(!db.windows(bare.len()).any(|w| w == bare.as_bytes()));
        assert!(!log.contains(c.as_str()) && !log.contains(&bare));
        assert!(!journal.contains(c.as_str()) && !journal.contains(&bare));
    }
    assert!(journal.contains("\"action\":\"invite use\""));
}
