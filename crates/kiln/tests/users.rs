//! `kiln user`: the node's registry of identities and their roles; the identity that
//! initialises a node is its first admin.

mod common;

use common::Repo;

fn did(r: &Repo) -> String {
    // A key of another person: an identity made in a configuration of its own.
    let other = Repo::new();
    let _ = r;
    other.ok(&["identity", "new"]).trim().to_string()
}

#[test]
fn the_identity_that_initialises_a_node_is_its_first_admin() {
    let r = Repo::new();
    let me = r.ok(&["identity", "new"]).trim().to_string();
    let out = r.ok(&["init"]);
    assert!(
        out.contains(&me) && out.contains("first administrator"),
        "{out}"
    );
    assert_eq!(r.ok(&["user", "ls"]), format!("{me} admin@*\n"));
    // Initialising again changes nothing.
    r.ok(&["init"]);
    assert_eq!(r.ok(&["user", "ls"]).lines().count(), 1);

    // Without an identity, init makes a node with no users (the local administrator
    // still manages it).
    let bare = Repo::new();
    bare.ok(&["init"]);
    assert_eq!(bare.ok(&["user", "ls"]), "");
}

#[test]
fn users_and_roles_are_managed_and_journaled() {
    let r = Repo::new();
    r.ok(&["init"]);
    let alice = did(&r);
    let bob = did(&r);
    assert_eq!(
        r.ok(&[
            "user",
            "add",
            &alice,
            "--name",
            "Alice",
            "--role",
            "writer",
            "--namespace",
            "ci"
        ]),
        format!("added {alice} as writer in namespace ci\n")
    );
    assert_eq!(
        r.ok(&["user", "add", &bob]),
        format!("added {bob} (no role yet: kiln user grant)\n")
    );
    assert_eq!(
        r.ok(&["user", "grant", &alice, "maintainer", "--namespace", "ci"]),
        format!("{alice} is now maintainer in namespace ci (was writer)\n")
    );
    r.ok(&["user", "grant", &alice, "reader"]);
    let ls = r.ok(&["user", "ls"]);
    assert!(
        ls.contains(&format!("{alice} reader@*,maintainer@ci Alice")),
        "{ls}"
    );
    assert!(ls.contains(&format!("{bob} no role")), "{ls}");
    let v: serde_json::Value = serde_json::from_str(&r.ok(&["user", "ls", "--json"])).unwrap();
    let a = v
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["did"] == alice.as_str())
        .unwrap();
    assert_eq!(a["name"], "Alice");
    assert_eq!(a["added_by"], "local");
    assert_eq!(a["roles"].as_array().unwrap().len(), 2);

    assert_eq!(
        r.ok(&["user", "revoke", &alice, "--namespace", "ci"]),
        format!("{alice} is no longer maintainer in namespace ci\n")
    );
    r.ok(&["user", "rm", &bob]);
    assert!(!r.ok(&["user", "ls"]).contains(&bob));

    // Refusals are clear and change nothing.
    let before = r.ok(&["user", "ls", "--json"]);
    let events_before = r.ok(&["events", "--json", "-n", "1000"]).lines().count();
    for (args, says) in [
        (vec!["user", "add", &alice], "already a user"),
        (vec!["user", "add", "did:key:z6Mknope"], "invalid did:key"),
        (
            vec!["user", "add", "did:web:example.org"],
            "invalid did:key",
        ),
        (vec!["user", "grant", &alice, "root"], "unknown role"),
        (
            vec!["user", "grant", &alice, "admin", "--namespace", "Bad NS"],
            "invalid namespace",
        ),
        (
            vec!["user", "grant", &bob, "admin"],
            "not a user of this node",
        ),
        (
            vec!["user", "revoke", &alice, "--namespace", "docs"],
            "has no role in namespace docs",
        ),
        (vec!["user", "rm", &bob], "not a user of this node"),
    ] {
        let err = r.fails(&args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(r.ok(&["user", "ls", "--json"]), before);
    assert_eq!(
        r.ok(&["events", "--json", "-n", "1000"]).lines().count(),
        events_before
    );

    // Every change is in the journal, with who made it and through what.
    let events = r.ok(&["events", "-n", "1000"]);
    for action in ["user add", "role grant", "role revoke", "user rm"] {
        assert!(
            events
                .lines()
                .any(|l| l.contains(action) && l.contains("local/cli")),
            "{action} not journaled:\n{events}"
        );
    }
}
