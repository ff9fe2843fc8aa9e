//! The fuzz targets of every parser that reads outside input. Each takes arbitrary bytes and
//! must not panic, hang or give an answer that contradicts itself (a value that parses must
//! survive its own round trip). `fuzz/` runs them under AFL++ (`scripts/fuzz`); the test
//! suite runs each target's committed corpus and every crash found so far
//! (`fuzz/regressions/TARGET/`) through them.

use std::sync::OnceLock;

/// A fuzz target: arbitrary bytes in; a panic is a finding.
pub type Target = fn(&[u8]);

/// Every target, by name (the directory names under `fuzz/corpus` and `fuzz/regressions`).
pub const TARGETS: &[(&str, Target)] = &[
    ("cid", cid),
    ("dag_pb", dag_pb),
    ("unixfs", unixfs),
    ("dag_cbor", dag_cbor),
    ("car", car),
    ("recipe", recipe),
    ("gateway", gateway),
    ("rpc_add", rpc_add),
];

/// CID strings and content paths (`CID/a/b`, `/ipfs/CID/…`, `ipfs://…`).
pub fn cid(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = kiln_core::cids::parse_cid(s) {
        let again = kiln_core::cids::parse_cid(&c.to_string()).expect("a CID's own string parses");
        assert_eq!(again, c);
    }
    if let Ok(p) = kiln_core::cids::ContentPath::parse(s) {
        for seg in &p.segments {
            assert!(!seg.is_empty() && seg != "..", "{seg:?} in a parsed path");
        }
    }
}

/// dag-pb nodes: what decodes encodes and decodes to the same node.
pub fn dag_pb(data: &[u8]) {
    use kiln_core::dag_pb::PbNode;
    if let Ok(n) = PbNode::decode(data, None) {
        let again = PbNode::decode(&n.encode(), None).expect("an encoded node decodes");
        assert_eq!(again, n);
    }
}

/// UnixFS data, and reading a file or directory node made of it through the exporter.
pub fn unixfs(data: &[u8]) {
    use kiln_core::MemoryBlocks;
    use kiln_core::dag_pb::PbNode;
    use kiln_core::unixfs::UnixfsData;
    let _ = UnixfsData::decode(data, None);
    let node = PbNode {
        links: Vec::new(),
        data: Some(data.to_vec()),
    };
    let bytes = node.encode();
    let cid = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::DAG_PB, &bytes);
    let mut blocks = MemoryBlocks::default();
    blocks.blocks.insert(cid, bytes);
    if let Ok(kiln_core::export::Node::File { size }) = kiln_core::export::stat(&blocks, &cid) {
        let mut out = Vec::new();
        if kiln_core::export::read_file(&blocks, &cid, 0, Some(1 << 20), &mut out).is_ok() {
            assert!(out.len() as u64 <= size, "read more than the node's size");
        }
    }
    let _ = kiln_core::export::list(&blocks, &cid);
    let _ = kiln_core::export::lookup(&blocks, &cid, "a");
}

/// dag-cbor blocks: decoding, and the links kiln finds in them.
pub fn dag_cbor(data: &[u8]) {
    let cid = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::DAG_CBOR, data);
    let links = kiln_core::links::links_of(&cid, data);
    if let Ok(v) = serde_ipld_dagcbor::from_slice::<ipld_core::ipld::Ipld>(data) {
        let bytes = serde_ipld_dagcbor::to_vec(&v).expect("a decoded value encodes");
        let back: ipld_core::ipld::Ipld =
            serde_ipld_dagcbor::from_slice(&bytes).expect("an encoded value decodes");
        assert_eq!(back, v);
        assert!(
            links.is_ok(),
            "decodes as dag-cbor but its links were refused"
        );
    }
}

/// CARv1 and CARv2 files: every block that comes out matches its CID.
pub fn car(data: &[u8]) {
    let Ok(mut r) = kiln_core::car::CarReader::new(data) else {
        return;
    };
    assert!(r.roots().len() <= kiln_core::car::MAX_ROOTS);
    while let Ok(Some((c, d))) = r.next_block() {
        kiln_core::cids::verify(&c, &d).expect("a block read from a CAR matches its CID");
    }
}

/// Recipes (`kiln.toml`) and schedules.
pub fn recipe(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let root = std::path::Path::new("/nonexistent-kiln-fuzz");
    let _ = kiln_build::recipe::Recipe::parse(&root.join("kiln.toml"), root, text);
    if let Ok(s) = kiln_build::schedule::Schedule::parse(text) {
        let _ = s.next_after(std::time::UNIX_EPOCH);
    }
}

/// A repository with a little content, and the routers over it, made once per process.
struct Node {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    api: axum::Router,
    gateway: axum::Router,
    root: String,
}

fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        use kiln_core::import::{DirEntry, ImportOptions, Profile, build_directory, import_bytes};
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            kiln_store::Store::open(&dir.path().join("store"), Default::default()).expect("store");
        let opts = ImportOptions::from_profile(Profile::V1_2025);
        let mut s = store.session().expect("session");
        let file = import_bytes(&mut s, &[7u8; 300_000], &opts).expect("file");
        let small = import_bytes(&mut s, b"<h1>hi</h1>", &opts).expect("file");
        let sub =
            build_directory(&mut s, vec![DirEntry::new("index.html", &small)], &opts).expect("dir");
        let root = build_directory(
            &mut s,
            vec![DirEntry::new("big.bin", &file), DirEntry::new("site", &sub)],
            &opts,
        )
        .expect("dir");
        s.commit().expect("commit");
        let builds = kiln_api::BuildService::open(
            store.clone(),
            kiln_id::NodeKey::generate().expect("key"),
            dir.path().join("builds"),
            std::path::PathBuf::from("/nonexistent-kiln-helper"),
        )
        .expect("build service");
        let state = kiln_api::AppState {
            builds,
            pinning: kiln_node::pinning::PinningService::new(store.clone(), Default::default()),
            store,
            node: std::sync::Arc::new(kiln_api::NodeInfo {
                peer_id: "12D3KooWFuzz".into(),
                did: "did:key:z6MkFuzz".into(),
                public_key: Vec::new(),
                agent_version: "kiln/fuzz".into(),
                addresses: Vec::new(),
            }),
            metrics: None,
            keep_events: kiln_node::journal::DEFAULT_RETENTION,
            auth: std::sync::Arc::new(kiln_node::auth::Auth::new(
                kiln_id::NodeKey::generate().expect("key"),
            )),
            access: Default::default(),
        };
        Node {
            _dir: dir,
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime"),
            // Fuzzed requests come from the local administrator: every route runs.
            api: kiln_api::auth::as_local(kiln_api::api_router(state.clone())),
            gateway: kiln_api::gateway_router(state),
            root: root.cid.to_string(),
        }
    })
}

/// Send one request to `router`; the answer's status and body (at most 16 MiB read).
fn send(router: &axum::Router, req: axum::http::Request<axum::body::Body>) -> (u16, Vec<u8>) {
    use tower::ServiceExt;
    node().runtime.block_on(async {
        let resp = router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .unwrap_or_default();
        (status, body.to_vec())
    })
}

/// Gateway requests: the input's lines are the request path (`ROOT` stands for a stored
/// directory's CID), then `Range`, `Accept`, `Host` and `If-None-Match` headers. No answer
/// may be a server error but for content that is itself malformed (the first finding,
/// `fuzz/regressions/gateway/`, was such: `/ipfs/` + a base2 `bafyaaaa`, an identity dag-pb
/// CID of no bytes) or kiln cannot serve (501).
pub fn gateway(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let n = node();
    let path = lines.next().unwrap_or("/").replace("ROOT", &n.root);
    let mut b = axum::http::Request::builder().method("GET");
    let uri = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    b = b.uri(uri.as_str());
    for name in ["range", "accept", "host", "if-none-match"] {
        if let Some(v) = lines.next().filter(|v| !v.is_empty()) {
            b = b.header(name, v.replace("ROOT", &n.root));
        }
    }
    let Ok(req) = b.body(axum::body::Body::empty()) else {
        return;
    };
    let (status, body) = send(&n.gateway, req);
    // A server error only for content that is itself bad (e.g. an identity CID whose bytes
    // are no UnixFS node), which the answer says; never for the request.
    let bad_content = String::from_utf8_lossy(&body).contains("malformed");
    assert!(
        status < 500 || status == 501 || (status == 500 && bad_content),
        "GET {uri}: {status} {}",
        String::from_utf8_lossy(&body)
    );
}

/// RPC `add` bodies: the input is a multipart body (boundary `X`).
pub fn rpc_add(data: &[u8]) {
    let n = node();
    for q in ["", "?wrap-with-directory=true&progress=true"] {
        let Ok(req) = axum::http::Request::builder()
            .method("POST")
            .uri(format!("/api/v0/add{q}"))
            .header("content-type", "multipart/form-data; boundary=X")
            .body(axum::body::Body::from(data.to_vec()))
        else {
            return;
        };
        let (status, _) = send(&n.api, req);
        assert!(status < 500, "add: {status}");
    }
}
