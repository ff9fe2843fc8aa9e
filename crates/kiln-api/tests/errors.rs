//! One error table: the same failing operation sent through every protocol that offers it
//! (the Kubo RPC, kiln's API, the gateway, the web UI) fails with the node's one error kind,
//! and each protocol renders that kind with its own status and in its own shape.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use kiln_api::{AppState, NodeInfo};
use kiln_node::ErrorKind;
use kiln_store::{Store, StoreOptions};
use std::sync::Arc;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Rpc,
    Kiln,
    Gateway,
    Ui,
}

/// How each protocol renders each kind: the whole table, written once.
fn status(p: Protocol, kind: ErrorKind) -> u16 {
    use ErrorKind as K;
    match (p, kind) {
        // Kubo answers 400 for bad arguments and 500 for every other command error (kubo's
        // clients rely on it); kiln keeps 401/403/429/503 for what kubo has no code for.
        (Protocol::Rpc, K::InvalidInput) => 400,
        (Protocol::Rpc, K::NotFound | K::AlreadyExists | K::Conflict | K::Internal) => 500,
        (Protocol::Rpc, K::Forbidden) => 403,
        (Protocol::Rpc, K::Unauthenticated) => 401,
        (Protocol::Rpc, K::Quota) => 429,
        (Protocol::Rpc, K::Unavailable) => 503,
        // kiln's API, the gateway and the UI use the HTTP status of the kind.
        (_, K::NotFound) => 404,
        (_, K::AlreadyExists | K::Conflict) => 409,
        (_, K::InvalidInput) => 400,
        (_, K::Forbidden) => 403,
        (_, K::Unauthenticated) => 401,
        (_, K::Quota) => 429,
        (_, K::Unavailable) => 503,
        (_, K::Internal) => 500,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    api: Router,
    gateway: Router,
    store: Store,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let builds = kiln_api::BuildService::open(
        store.clone(),
        kiln_id::NodeKey::generate().unwrap(),
        dir.path().join("builds"),
        std::env::current_exe().unwrap(),
    )
    .unwrap();
    let state = AppState {
        builds,
        pinning: kiln_node::pinning::PinningService::new(store.clone(), Default::default()),
        store: store.clone(),
        node: Arc::new(NodeInfo {
            peer_id: "12D3KooWTestPeer".into(),
            did: "did:key:z6MkTestDid".into(),
            public_key: Vec::new(),
            agent_version: "kiln/test".into(),
            addresses: Vec::new(),
        }),
        metrics: None,
        keep_events: kiln_node::journal::DEFAULT_RETENTION,
        auth: Arc::new(kiln_node::auth::Auth::new(
            kiln_id::NodeKey::generate().unwrap(),
        )),
        access: Default::default(),
    };
    Fixture {
        _dir: dir,
        api: kiln_api::auth::as_local(kiln_api::api_router(state.clone())),
        gateway: kiln_api::gateway_router(state),
        store,
    }
}

/// A request as each protocol's client sends it.
fn request(p: Protocol, method: &str, uri: &str, form: Option<&str>) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:5001");
    if p == Protocol::Ui {
        r = r
            .header("sec-fetch-site", "same-origin")
            .header(header::ORIGIN, "http://127.0.0.1:5001");
    }
    match form {
        Some(f) => r
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(f.to_string()))
            .unwrap(),
        None => r.body(Body::empty()).unwrap(),
    }
}

/// Send it; check the status the table gives and the protocol's own shape.
async fn check(f: &Fixture, case: &str, kind: ErrorKind, p: Protocol, req: Request<Body>) {
    let app = if p == Protocol::Gateway {
        &f.gateway
    } else {
        &f.api
    };
    let r = app.clone().oneshot(req).await.unwrap();
    let got = r.status();
    let ct = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    let want = status(p, kind);
    assert_eq!(
        got,
        StatusCode::from_u16(want).unwrap(),
        "{case} through {p:?}: {body}"
    );
    match p {
        Protocol::Rpc | Protocol::Kiln => {
            // Kubo's error JSON, which kiln's API shares.
            let v: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{case} {p:?}: {e}: {body}"));
            assert_eq!(v["Type"], "error", "{case} {p:?}");
            assert!(v["Message"].as_str().is_some_and(|m| !m.is_empty()));
            let code = if want == 400 { 1 } else { 0 };
            assert_eq!(v["Code"], code, "{case} {p:?}");
        }
        Protocol::Gateway => {
            assert!(ct.starts_with("text/plain"), "{case} gateway: {ct}");
            assert!(!body.trim().is_empty());
        }
        Protocol::Ui => {
            assert!(ct.starts_with("text/html"), "{case} UI: {ct}");
            assert!(body.contains("<h1>"), "{case} UI: a page");
        }
    }
}

/// A failing operation: what it is, the kind it fails with, its request per protocol.
type Case = (&'static str, ErrorKind, Vec<(Protocol, Request<Body>)>);

#[tokio::test]
async fn one_failing_operation_fails_alike_through_every_protocol() {
    use Protocol::*;
    let f = fixture();
    // Content that is not in the store; a CID that is, unpinned.
    let absent = "bafkreie7kvqbuaxrf4h6s2oqbklhrmjet6oddgc7bfsnfzajp4rp4g7uvq";
    let stored = {
        let mut s = f.store.session().unwrap();
        let opts =
            kiln_core::import::ImportOptions::from_profile(kiln_core::import::Profile::V1_2025);
        let i = kiln_core::import::import_bytes(&mut s, b"stored, not pinned", &opts).unwrap();
        s.commit().unwrap();
        i.cid.to_string()
    };
    let bad = "not-a-cid";
    let cases: Vec<Case> = vec![
        (
            "read a block that is not here",
            ErrorKind::NotFound,
            vec![
                (
                    Rpc,
                    request(
                        Rpc,
                        "POST",
                        &format!("/api/v0/block/get?arg={absent}"),
                        None,
                    ),
                ),
                (
                    Rpc,
                    request(Rpc, "POST", &format!("/api/v0/cat?arg={absent}"), None),
                ),
                (
                    Kiln,
                    request(Kiln, "GET", &format!("/api/kiln/v1/blocks/{absent}"), None),
                ),
                (
                    Gateway,
                    request(Gateway, "GET", &format!("/ipfs/{absent}?format=raw"), None),
                ),
                (
                    Ui,
                    request(Ui, "GET", &format!("/ui/browse?path={absent}"), None),
                ),
            ],
        ),
        (
            "read a malformed CID",
            ErrorKind::InvalidInput,
            vec![
                (
                    Rpc,
                    request(Rpc, "POST", &format!("/api/v0/block/get?arg={bad}"), None),
                ),
                (
                    Kiln,
                    request(Kiln, "GET", &format!("/api/kiln/v1/blocks/{bad}"), None),
                ),
                (
                    Gateway,
                    request(Gateway, "GET", &format!("/ipfs/{bad}"), None),
                ),
                (
                    Ui,
                    request(Ui, "GET", &format!("/ui/browse?path={bad}"), None),
                ),
            ],
        ),
        (
            "pin content that is not here",
            ErrorKind::NotFound,
            vec![
                (
                    Rpc,
                    request(Rpc, "POST", &format!("/api/v0/pin/add?arg={absent}"), None),
                ),
                (
                    Ui,
                    request(Ui, "POST", "/ui/pins", Some(&format!("path={absent}"))),
                ),
            ],
        ),
        (
            "pin under a name with control characters",
            ErrorKind::InvalidInput,
            vec![
                (
                    Rpc,
                    request(
                        Rpc,
                        "POST",
                        &format!("/api/v0/pin/add?arg={stored}&name=a%0Ab"),
                        None,
                    ),
                ),
                (
                    Ui,
                    request(
                        Ui,
                        "POST",
                        "/ui/pins",
                        Some(&format!("path={stored}&name=a%0Ab")),
                    ),
                ),
            ],
        ),
        (
            "unpin what is not pinned",
            ErrorKind::NotFound,
            vec![
                (
                    Rpc,
                    request(Rpc, "POST", &format!("/api/v0/pin/rm?arg={stored}"), None),
                ),
                (
                    Ui,
                    request(
                        Ui,
                        "POST",
                        "/ui/pins/remove",
                        Some(&format!("cid={stored}")),
                    ),
                ),
            ],
        ),
        (
            "follow a build this daemon does not know",
            ErrorKind::NotFound,
            vec![(
                Kiln,
                request(Kiln, "POST", "/api/kiln/v1/builds/s999/cancel", None),
            )],
        ),
        (
            "prune the build history without saying what to keep",
            ErrorKind::InvalidInput,
            vec![(
                Kiln,
                request(Kiln, "POST", "/api/kiln/v1/builds/prune", Some("{}")),
            )],
        ),
        (
            "read the journal with a malformed parameter",
            ErrorKind::InvalidInput,
            vec![(
                Kiln,
                request(Kiln, "GET", "/api/kiln/v1/events?order=sideways", None),
            )],
        ),
    ];
    for (case, kind, sends) in cases {
        for (p, req) in sends {
            check(&f, case, kind, p, req).await;
        }
    }
    // Nothing was pinned by any of it.
    assert!(f.store.pins().unwrap().is_empty());
}

/// Pruning the build history is refused to a cross-site page (by Fetch Metadata or by
/// Origin) with nothing removed, and done for the local client.
#[tokio::test]
async fn a_cross_site_page_cannot_prune_the_build_history() {
    let f = fixture();
    let index = kiln_build::index::Index::open(&f._dir.path().join("builds/index.db")).unwrap();
    let action = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"action");
    let id = index.begin(&action, "step", "o", 1).unwrap();
    index.finish(id, "ok", None, None, 2).unwrap();
    let prune = |headers: &[(&str, &str)]| {
        let mut r = Request::builder()
            .method("POST")
            .uri("/api/kiln/v1/builds/prune")
            .header(header::HOST, "127.0.0.1:5001");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(Body::from(r#"{"keep": 0}"#)).unwrap()
    };
    for hostile in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "http://evil.example")],
    ] {
        let r = f.api.clone().oneshot(prune(&hostile)).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{hostile:?}");
        assert_eq!(
            index.recent(10).unwrap().len(),
            1,
            "{hostile:?} removed a build"
        );
    }
    let r = f.api.clone().oneshot(prune(&[])).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(index.recent(10).unwrap().is_empty());
}
