//! The web UI through the real API router (no socket): pages, the content browser, pin
//! management, cross-site POSTs, hostile names.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use kiln_api::{AppState, NodeInfo};
use kiln_core::import::{
    DirEntry, ImportOptions, Imported, Profile, build_directory, import_bytes,
};
use kiln_store::{Store, StoreOptions};
use std::sync::Arc;
use tower::ServiceExt;

const HOSTILE: &str = "<script>alert(1)</script>";
/// Hostile too, and without a `/`, so it is reachable as a path segment.
const HOSTILE_SEGMENT: &str = "<img src=x onerror=alert(1)>.txt";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    app: Router,
    /// root/{hello.txt, sub/{nested.txt, HOSTILE, HOSTILE_SEGMENT, data.bin}}, unpinned.
    root: Imported,
    file_bytes: Vec<u8>,
}

/// A flat directory block of `entries` as given (names unchecked), stored in `s`.
fn foreign_directory(s: &mut kiln_store::Session, mut entries: Vec<DirEntry>) -> Imported {
    use kiln_core::dag_pb::{PbLink, PbNode};
    use kiln_core::unixfs::{DataType, UnixfsData};
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let node = PbNode {
        links: entries
            .iter()
            .map(|e| PbLink {
                cid: e.cid,
                name: e.name.clone(),
                tsize: e.tsize,
            })
            .collect(),
        data: Some(UnixfsData::new(DataType::Directory).encode()),
    };
    let bytes = node.encode();
    let cid = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::DAG_PB, &bytes);
    let links: Vec<_> = entries.iter().map(|e| e.cid).collect();
    kiln_core::BlockSink::put(s, &cid, &bytes, &links).unwrap();
    Imported {
        cid,
        tsize: bytes.len() as u64 + entries.iter().map(|e| e.tsize).sum::<u64>(),
        size: 0,
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let opts = ImportOptions::from_profile(Profile::V1_2025);
    let file_bytes = b"hello from kiln\nsecond line\n".to_vec();
    let mut s = store.session().unwrap();
    let hello = import_bytes(&mut s, &file_bytes, &opts).unwrap();
    let nested = import_bytes(&mut s, b"nested text", &opts).unwrap();
    let hostile = import_bytes(&mut s, b"boo", &opts).unwrap();
    let hostile2 = import_bytes(&mut s, b"boo too", &opts).unwrap();
    let binary = import_bytes(&mut s, &[0u8, 1, 2, 3, 255, 254], &opts).unwrap();
    // kiln refuses to make an entry named HOSTILE (it holds '/'), so this directory is
    // written by hand, as it could come from elsewhere in a CAR.
    let sub = foreign_directory(
        &mut s,
        vec![
            DirEntry::new("nested.txt", &nested),
            DirEntry::new(HOSTILE, &hostile),
            DirEntry::new(HOSTILE_SEGMENT, &hostile2),
            DirEntry::new("data.bin", &binary),
        ],
    );
    let root = build_directory(
        &mut s,
        vec![
            DirEntry::new("hello.txt", &hello),
            DirEntry::new("sub", &sub),
        ],
        &opts,
    )
    .unwrap();
    s.commit().unwrap();
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
            addresses: vec!["/ip4/127.0.0.1/tcp/5001/http".into()],
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
        store,
        app: kiln_api::auth::as_local(kiln_api::api_router(state)),
        root,
        file_bytes,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// A form POST as a browser sends it from one of the UI's own pages.
async fn post_form(app: &Router, uri: &str, form: &str, extra: &[(&str, &str)]) -> Reply {
    let mut req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:5001");
    if extra.is_empty() {
        req = req
            .header("sec-fetch-site", "same-origin")
            .header(header::ORIGIN, "http://127.0.0.1:5001");
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    send(app, req.body(Body::from(form.to_string())).unwrap()).await
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn location(r: &Reply) -> &str {
    r.headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn is_html(r: &Reply) -> bool {
    r.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

#[tokio::test]
async fn dashboard_shows_identity_counts_and_safe_headers() {
    let f = fixture();
    let stat = f.store.stat().unwrap();
    for uri in ["/", "/ui", "/ui/"] {
        let r = get(&f.app, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(is_html(&r));
        assert!(r.body.contains("did:key:z6MkTestDid"));
        assert!(r.body.contains("12D3KooWTestPeer"));
        assert!(r.body.contains("kiln/test"));
        assert!(
            r.body.contains(&format!(
                "<span class=\"value\" id=\"stat-blocks\">{}<",
                stat.blocks
            )),
            "block count: {}",
            r.body
        );
        assert!(r.body.contains("id=\"stat-pins\" href=\"/ui/pins\">0<"));
        assert!(r.body.contains("name=\"viewport\""));
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
        assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    }
    let css = get(&f.app, "/ui/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.body.contains("@media (max-width: 40rem)"));
}

#[tokio::test]
async fn browser_lists_directories_and_previews_files() {
    let f = fixture();
    let root = f.root.cid.to_string();
    let r = get(&f.app, &format!("/ui/browse?path={root}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains(&format!("href=\"/ui/browse?path={root}/hello.txt\""))
    );
    assert!(
        r.body
            .contains(&format!("href=\"/ui/browse?path={root}/sub\""))
    );
    assert!(r.body.contains("2 entries"));

    // `/ipfs/` prefix, a subdirectory, breadcrumb back to the root.
    let r = get(&f.app, &format!("/ui/browse?path=%2Fipfs%2F{root}%2Fsub")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("nested.txt") && r.body.contains("data.bin"));
    assert!(
        r.body
            .contains(&format!("<a href=\"/ui/browse?path={root}\">{root}</a>"))
    );
    assert!(r.body.contains("<span aria-current=\"page\">sub</span>"));
    assert!(r.body.contains(".. (parent directory)"));

    // A text file: size, type, preview, download link.
    let r = get(&f.app, &format!("/ui/browse?path={root}/hello.txt")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("hello from kiln\nsecond line\n"));
    assert!(r.body.contains(&format!(">{} bytes<", f.file_bytes.len())));
    assert!(r.body.contains("text/plain"));
    assert!(
        r.body
            .contains(&format!("href=\"/ui/download?path={root}/hello.txt\""))
    );

    // A binary file gets no preview.
    let r = get(&f.app, &format!("/ui/browse?path={root}/sub/data.bin")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("No preview"));
    assert!(!r.body.contains("id=\"preview\""));

    // The empty browser page offers the form.
    let r = get(&f.app, "/ui/browse").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<label for=\"path\">CID or path</label>"));
}

#[tokio::test]
async fn hostile_names_are_escaped_everywhere() {
    let f = fixture();
    let root = f.root.cid.to_string();
    let r = get(&f.app, &format!("/ui/browse?path={root}/sub")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains(HOSTILE), "raw markup in the listing");
    assert!(r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!r.body.contains(HOSTILE_SEGMENT));
    assert!(r.body.contains("&lt;img src=x onerror=alert(1)&gt;.txt"));
    // A name holding `/` cannot be a path segment: it links to its CID instead.
    let sub = kiln_core::export::resolve(
        &f.store,
        &kiln_core::cids::ContentPath::parse(&format!("{root}/sub")).unwrap(),
    )
    .unwrap();
    let entries = kiln_core::export::list(&f.store, &sub).unwrap();
    let script = entries.iter().find(|e| e.name == HOSTILE).unwrap();
    assert!(
        r.body
            .contains(&format!("href=\"/ui/browse?path={}\"", script.cid))
    );
    // The other one's link is percent-encoded, and it opens, its name escaped.
    let href =
        format!("/ui/browse?path={root}/sub/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt");
    assert!(r.body.contains(&format!("href=\"{href}\"")), "{}", r.body);
    let r = get(&f.app, &href).await;
    assert_eq!(r.status, StatusCode::OK, "{href}: {}", r.body);
    assert!(!r.body.contains(HOSTILE_SEGMENT));
    assert!(
        r.body
            .contains("<span aria-current=\"page\">&lt;img src=x onerror=alert(1)&gt;.txt</span>")
    );
    assert!(r.body.contains("boo too"));

    // A hostile path typed into the browser comes back escaped in the form and error.
    let r = get(
        &f.app,
        &format!("/ui/browse?path={}", enc(&format!("{root}/{HOSTILE}"))),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.body.contains(HOSTILE));

    // A hostile pin name.
    let r = post_form(
        &f.app,
        "/ui/pins",
        &format!("path={root}&name={}", enc(HOSTILE)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = get(&f.app, location(&r)).await;
    assert!(!r.body.contains(HOSTILE));
    assert!(
        r.body
            .contains("<span class=\"pin-name\">&lt;script&gt;alert(1)&lt;/script&gt;</span>")
    );
    let r = get(&f.app, "/ui/browse").await;
    assert!(!r.body.contains(HOSTILE));
}

#[tokio::test]
async fn downloads_stream_files_as_attachments() {
    let f = fixture();
    let root = f.root.cid.to_string();
    let r = get(&f.app, &format!("/ui/download?path={root}/hello.txt")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_bytes(), &f.file_bytes[..]);
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"hello.txt\""
    );
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(
        r.headers[header::CONTENT_LENGTH],
        f.file_bytes.len().to_string().as_str()
    );
    assert!(
        r.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );

    let r = get(&f.app, &format!("/ui/download?path={root}/sub")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(is_html(&r));
    assert!(r.body.contains("Not a file"));
}

#[tokio::test]
async fn bad_input_gets_clear_error_pages() {
    let f = fixture();
    let root = f.root.cid.to_string();

    let r = get(&f.app, "/ui/browse?path=not-a-cid%3Cb%3E").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(is_html(&r));
    assert!(r.body.contains("Not a valid CID or path"));
    assert!(
        r.body.contains("value=\"not-a-cid&lt;b&gt;\""),
        "form keeps the input"
    );
    assert!(!r.body.contains("not-a-cid<b>"));

    let r = get(&f.app, &format!("/ui/browse?path={root}/../x")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A well-formed CID whose block is not here.
    let absent = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"absent");
    let r = get(&f.app, &format!("/ui/browse?path={absent}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("Not found in this repository"));
    assert!(r.body.contains(&absent.to_string()));

    let r = get(&f.app, &format!("/ui/browse?path={root}/nope.txt")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("nope.txt"));

    let r = get(&f.app, "/ui/download?path=garbage").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(is_html(&r));
}

#[tokio::test]
async fn pins_are_added_listed_and_removed_through_forms() {
    let f = fixture();
    let root = f.root.cid;

    let r = post_form(
        &f.app,
        "/ui/pins",
        &format!("path={root}&name=my+photos&mode=recursive"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), format!("/ui/pins?added={root}"));
    let pins = f.store.pins().unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].cid, root);
    assert_eq!(pins[0].name.as_deref(), Some("my photos"));

    let r = get(&f.app, location(&r)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&format!("Pinned “my photos” ({root}).")));
    assert!(r.body.contains("<span class=\"pin-name\">my photos</span>"));
    assert!(r.body.contains("recursive, directory"));
    // Cumulative size: the root block plus its links' Tsize, which is the importer's tsize.
    assert!(
        r.body
            .contains(&format!("title=\"{} bytes\"", f.root.tsize)),
        "size {} not shown: {}",
        f.root.tsize,
        r.body
    );

    // A path below a CID pins what it names.
    let r = post_form(
        &f.app,
        "/ui/pins",
        &format!("path={root}/sub/nested.txt&mode=direct"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(f.store.pins().unwrap().len(), 2);

    // The notice only claims what the pins confirm.
    let bogus = get(&f.app, "/ui/pins?added=bafkqaaa").await;
    assert!(!bogus.body.contains("Pinned bafkqaaa"));

    // The dashboard's activity lists the pins.
    let d = get(&f.app, "/").await;
    assert!(d.body.contains("id=\"activity\""));
    assert!(d.body.contains("my photos"));
    assert!(d.body.contains("id=\"stat-pins\" href=\"/ui/pins\">2<"));

    let r = post_form(&f.app, "/ui/pins/remove", &format!("cid={root}"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), format!("/ui/pins?removed={root}"));
    assert_eq!(f.store.pins().unwrap().len(), 1);
    let r = get(&f.app, location(&r)).await;
    assert!(r.body.contains(&format!("Removed the pin on {root}.")));
    assert!(get(&f.app, "/").await.body.contains(">unpin<"));
}

#[tokio::test]
async fn pin_form_errors_keep_the_input_and_say_why() {
    let f = fixture();
    let root = f.root.cid;

    let r = post_form(&f.app, "/ui/pins", "path=zzz&name=keep+me", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Not a valid CID or path"));
    assert!(r.body.contains("value=\"zzz\"") && r.body.contains("value=\"keep me\""));

    let r = post_form(&f.app, "/ui/pins", &format!("path={root}/missing"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = post_form(
        &f.app,
        "/ui/pins",
        &format!("path={root}&mode=sideways"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("unknown pin mode"));

    let r = post_form(&f.app, "/ui/pins", &format!("path={root}&name=a%0Ab"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("control characters"));

    let r = post_form(&f.app, "/ui/pins/remove", &format!("cid={root}"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("is not pinned"));
    assert!(f.store.pins().unwrap().is_empty());
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let f = fixture();
    let form = format!("path={}", f.root.cid);
    let refused: &[&[(&str, &str)]] = &[
        &[("sec-fetch-site", "cross-site")],
        // The gateway: another port of the same host is same-site, not same-origin.
        &[("sec-fetch-site", "same-site")],
        &[("origin", "http://127.0.0.1:8080")],
        &[("origin", "null")],
        &[("origin", "https://evil.example")],
    ];
    for headers in refused {
        for uri in ["/ui/pins", "/ui/pins/remove"] {
            let r = post_form(&f.app, uri, &form, headers).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri} {headers:?}");
            assert!(is_html(&r));
            assert!(r.body.contains("cross-site request refused"), "{}", r.body);
        }
    }
    assert!(f.store.pins().unwrap().is_empty());

    // Same origin by Origin alone (a browser without Fetch Metadata), and a non-browser
    // client that sends neither header.
    let r = post_form(
        &f.app,
        "/ui/pins",
        &form,
        &[("origin", "http://127.0.0.1:5001")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = post_form(
        &f.app,
        "/ui/pins/remove",
        &format!("cid={}", f.root.cid),
        &[("x-none", "1")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn rpc_work_shows_in_the_activity_list() {
    let f = fixture();
    let root = f.root.cid;
    let r = send(
        &f.app,
        Request::post(format!("/api/v0/pin/add?arg={root}&name=via-rpc"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(
        &f.app,
        Request::post(format!("/api/v0/pin/rm?arg={root}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(
        &f.app,
        Request::post("/api/v0/repo/gc")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // kiln's own API (what `kiln gc` calls when a daemon runs) records its runs too.
    let r = send(
        &f.app,
        Request::post("/api/kiln/v1/gc")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let d = get(&f.app, "/").await.body;
    let (gc, unpin, pin) = (
        d.find(">gc<").expect("gc listed"),
        d.find(">unpin<").expect("unpin listed"),
        d.find(">pin<").expect("pin listed"),
    );
    assert!(gc < unpin && unpin < pin, "newest first");
    assert!(d.contains("via-rpc"));
    assert!(d.contains("blocks removed"));
    assert_eq!(d.matches(">gc<").count(), 2);
}

/// A source tree whose recipe makes a site of its docs with the builtin builder, added to
/// the store unpinned; its CID.
fn docs_source(f: &Fixture) -> String {
    let t = f._dir.path().join("docs-project");
    std::fs::create_dir_all(t.join("docs")).unwrap();
    std::fs::write(
        t.join("kiln.toml"),
        r#"
[params]
title = "Docs"

[step.site]
builder = "builtin"
command = ["markdown-site", "--title", "{title}", "docs", "out/site"]
inputs = { "docs" = "docs" }
outputs = ["out/site"]
"#,
    )
    .unwrap();
    std::fs::write(
        t.join("docs/README.md"),
        "# Welcome\n\nSee [the guide](guide.md).\n",
    )
    .unwrap();
    std::fs::write(
        t.join("docs/guide.md"),
        "# Guide\n\nkiln keeps content by its hash.\n",
    )
    .unwrap();
    let mut s = f.store.session().unwrap();
    let cid = kiln_build::content::import_tree(&mut s, &t).unwrap().cid;
    s.commit().unwrap();
    cid.to_string()
}

#[tokio::test]
async fn builds_start_from_the_form_show_their_log_and_link_their_outputs() {
    let f = fixture();
    let r = get(&f.app, "/ui/builds").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("<a href=\"/ui/builds\" aria-current=\"page\">Builds</a>")
    );
    assert!(
        r.body
            .contains("<label for=\"build-source\">Source tree CID</label>")
    );
    assert!(r.body.contains("No build has run in this repository yet."));

    let src = docs_source(&f);
    let r = post_form(
        &f.app,
        "/ui/builds",
        &format!("source={src}&params={}", enc(&format!("title={HOSTILE}"))),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), "/ui/builds/s1");

    // The page follows the build to its end (the body ends when the build does).
    let page = get(&f.app, "/ui/builds/s1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(is_html(&page));
    assert!(!page.body.contains(HOSTILE), "raw markup from a parameter");
    assert!(page.body.contains("title=&lt;script&gt;"), "{}", page.body);
    assert!(
        page.body.contains("[site] page README.md -&gt; index.html"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"result\""), "{}", page.body);
    let outputs = page.body.find("id=\"outputs\"").expect("outputs listed");
    let at = outputs + page.body[outputs..].find("href=\"").unwrap() + 6;
    let href = &page.body[at..at + page.body[at..].find('"').unwrap()];
    let site = get(&f.app, href).await;
    assert_eq!(site.status, StatusCode::OK, "{href}");
    assert!(
        site.body.contains("index.html") && site.body.contains("guide.html"),
        "{}",
        site.body
    );
    // Reloaded once it has ended: the same page, whole.
    let again = get(&f.app, "/ui/builds/s1").await;
    assert!(
        again
            .body
            .contains("<dd id=\"state\"><span class=\"tag state-ok\">ok</span>"),
        "{}",
        again.body
    );
    assert!(again.body.contains("1 step done (0 cached)"));

    // Listed: the submission and the step's build, whose page has the record and the log.
    let list = get(&f.app, "/ui/builds").await;
    assert!(
        list.body.contains("<a href=\"/ui/builds/s1\">s1</a>"),
        "{}",
        list.body
    );
    assert!(
        list.body.contains("<a href=\"/ui/builds/1\">1</a>"),
        "{}",
        list.body
    );
    let b = get(&f.app, "/ui/builds/1").await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert!(b.body.contains("page README.md -&gt; index.html"));
    assert!(b.body.contains(href), "output linked from the build's page");
    assert!(b.body.contains("<a href=\"/ui/builds/s1\">s1</a>"));
    assert!(b.body.contains("web UI"), "requested by");

    // Errors keep the form and say why.
    let r = post_form(&f.app, "/ui/builds", "source=zzz&params=a%3D1", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Cannot start this build"));
    assert!(r.body.contains("value=\"zzz\"") && r.body.contains(">a=1</textarea>"));
    let r = post_form(
        &f.app,
        "/ui/builds",
        &format!("source={src}&params=nope"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("expected NAME=VALUE"));
    let r = post_form(
        &f.app,
        "/ui/builds",
        &format!("source={src}&params=other%3D1"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("unknown parameter"), "{}", r.body);
    for missing in ["/ui/builds/s9", "/ui/builds/99"] {
        let r = get(&f.app, missing).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{missing}");
        assert!(is_html(&r));
    }
    assert_eq!(
        get(&f.app, "/ui/builds/nonsense").await.status,
        StatusCode::BAD_REQUEST
    );

    // Not from another site.
    let r = post_form(
        &f.app,
        "/ui/builds",
        &format!("source={src}"),
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(get(&f.app, "/ui/builds/s2").await.status == StatusCode::NOT_FOUND);

    // Again: cached, said so.
    let r = post_form(
        &f.app,
        "/ui/builds",
        &format!("source={src}&params={}", enc(&format!("title={HOSTILE}"))),
        &[],
    )
    .await;
    assert_eq!(location(&r), "/ui/builds/s2");
    let page = get(&f.app, "/ui/builds/s2").await;
    assert!(page.body.contains("(cached)") && page.body.contains("1 step done (1 cached)"));
}
