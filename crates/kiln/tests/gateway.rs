//! The gateway end to end: a real daemon, raw HTTP. Trustless (raw blocks, CARs cut by
//! scope and byte range, checked by parsing them), the path gateway (redirects, index
//! pages, listings, content types, ranges, caching headers, downloads) and hostile paths.

mod common;

use common::daemon::{Daemon, Reply, request, request_as};
use common::{Repo, bytes, write};
use kiln_core::Cid;
use kiln_core::car::CarReader;

/// A repository holding a small site; returns (repo, root CID, big file bytes).
fn site() -> (Repo, String, Vec<u8>) {
    let r = Repo::new();
    let big = bytes(5000, 7);
    write(&r.path("site/hello.txt"), b"hello world\n");
    write(&r.path("site/big.bin"), &big);
    write(&r.path("site/www/index.html"), b"<p>home</p>");
    write(&r.path("site/www/about.txt"), b"about");
    write(&r.path("site/we<ird> & 'n\"ame'.txt"), b"odd");
    write(&r.path("site/picture"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let root = r.add(&[
        "-r",
        "--chunker=size-1024",
        r.path("site").to_str().unwrap(),
    ]);
    (r, root, big)
}

/// Parse a CAR body, hash-checking every block: (roots, block CIDs in order).
fn car_blocks(body: &[u8]) -> (Vec<Cid>, Vec<Cid>) {
    let mut rd = CarReader::new(body).expect("CAR header");
    let roots = rd.roots().to_vec();
    let mut out = Vec::new();
    while let Some((cid, _)) = rd.next_block().expect("valid CAR block") {
        out.push(cid);
    }
    (roots, out)
}

/// What `kiln dag export` writes for a path: the reference block order.
fn exported(r: &Repo, path: &str) -> Vec<Cid> {
    car_blocks(&r.ok_bytes(&["dag", "export", path])).1
}

fn cid(s: &str) -> Cid {
    s.parse().expect("cid")
}

fn get(d: &Daemon, target: &str) -> Reply {
    request(&d.gateway, "GET", target, &[])
}

/// The CIDs along a path, from `X-Ipfs-Roots`.
fn roots_of(d: &Daemon, path: &str) -> Vec<Cid> {
    let rep = get(d, &format!("/ipfs/{path}?format=raw"));
    assert_eq!(rep.status, 200, "{path}");
    rep.header("x-ipfs-roots")
        .expect("x-ipfs-roots")
        .split(',')
        .map(cid)
        .collect()
}

#[test]
fn raw_blocks_get_and_head() {
    let (r, root, _) = site();
    let d = Daemon::start(&r);
    let file = roots_of(&d, &format!("{root}/hello.txt"))[1];
    let rep = get(&d, &format!("/ipfs/{file}?format=raw"));
    assert_eq!(rep.status, 200);
    assert_eq!(rep.body, b"hello world\n");
    assert_eq!(
        rep.header("content-type").as_deref(),
        Some("application/vnd.ipld.raw")
    );
    assert_eq!(
        rep.header("content-disposition").unwrap(),
        format!("attachment; filename=\"{file}.bin\"")
    );
    assert_eq!(
        rep.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        rep.header("cache-control").as_deref(),
        Some("public, max-age=29030400, immutable")
    );

    let head = request(&d.gateway, "HEAD", &format!("/ipfs/{file}?format=raw"), &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length").as_deref(), Some("12"));
    assert_eq!(head.header("etag"), rep.header("etag"));

    // The Accept header asks for the same thing; a dag-pb block is served as bytes.
    let rep = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{root}"),
        &[("Accept", "application/vnd.ipld.raw")],
    );
    assert_eq!(rep.status, 200);
    assert_eq!(
        kiln_core::cids::verify(&cid(&root), &rep.body).ok(),
        Some(())
    );

    // format beats Accept.
    let rep = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{file}?format=raw"),
        &[("Accept", "application/vnd.ipld.car")],
    );
    assert_eq!(rep.body, b"hello world\n");

    let missing = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    assert_eq!(get(&d, &format!("/ipfs/{missing}?format=raw")).status, 404);
    let rep = get(&d, "/ipfs/bafkqaaa");
    assert_eq!(rep.status, 200);
    assert!(rep.body.is_empty());
    assert_eq!(get(&d, "/ipfs/bafkqaaa?format=raw").status, 200);
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn car_scopes_and_entity_bytes() {
    let (r, root, _) = site();
    let d = Daemon::start(&r);
    let rootc = cid(&root);

    // Default scope: everything, in the order `dag export` uses.
    let rep = get(&d, &format!("/ipfs/{root}?format=car"));
    assert_eq!(rep.status, 200);
    assert_eq!(
        rep.header("content-type").as_deref(),
        Some("application/vnd.ipld.car; version=1; order=dfs; dups=n")
    );
    assert_eq!(
        rep.header("content-disposition").unwrap(),
        format!("attachment; filename=\"{root}.car\"")
    );
    assert_eq!(
        rep.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let (roots, blocks) = car_blocks(&rep.body);
    assert_eq!(roots, vec![rootc]);
    assert_eq!(blocks, exported(&r, &root));
    let etag_all = rep.header("etag").unwrap();
    for method in ["GET", "HEAD"] {
        let nm = request(
            &d.gateway,
            method,
            &format!("/ipfs/{root}?format=car"),
            &[("If-None-Match", &etag_all)],
        );
        assert_eq!(nm.status, 304, "{method}");
        assert!(nm.body.is_empty());
        assert_eq!(nm.header("etag"), Some(etag_all.clone()));
    }

    // The Accept header gives the same CAR.
    let acc = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{root}"),
        &[(
            "Accept",
            "application/vnd.ipld.car; version=1; order=dfs; dups=n",
        )],
    );
    assert_eq!(acc.body, rep.body);

    // A path: the blocks walked first, then the DAG at its end.
    let path = format!("{root}/big.bin");
    let file = roots_of(&d, &path)[1];
    let file_blocks = exported(&r, &file.to_string());
    assert!(file_blocks.len() > 3, "big.bin should have several blocks");
    let (roots, blocks) = car_blocks(&get(&d, &format!("/ipfs/{path}?format=car")).body);
    assert_eq!(roots, vec![rootc]);
    let mut want = vec![rootc];
    want.extend(&file_blocks);
    assert_eq!(blocks, want);

    let block = get(&d, &format!("/ipfs/{path}?format=car&dag-scope=block"));
    assert_eq!(car_blocks(&block.body).1, vec![rootc, file]);
    let entity = get(&d, &format!("/ipfs/{path}?format=car&dag-scope=entity"));
    assert_eq!(car_blocks(&entity.body).1, want);

    // The first byte needs the first leaf only; the last 10 bytes the last leaf only.
    let first = get(
        &d,
        &format!("/ipfs/{path}?format=car&dag-scope=entity&entity-bytes=0:0"),
    );
    assert_eq!(car_blocks(&first.body).1, vec![rootc, file, file_blocks[1]]);
    let last = get(
        &d,
        &format!("/ipfs/{path}?format=car&dag-scope=entity&entity-bytes=-10:*"),
    );
    assert_eq!(
        car_blocks(&last.body).1,
        vec![rootc, file, *file_blocks.last().unwrap()]
    );

    let tags: std::collections::HashSet<String> = [&rep, &block, &entity, &first, &last]
        .iter()
        .map(|x| x.header("etag").unwrap())
        .collect();
    assert_eq!(
        tags.len(),
        5,
        "Etags must vary with scope and bytes: {tags:?}"
    );
    assert!(tags.contains(&etag_all));

    // A directory entity is the directory block alone.
    let www = get(&d, &format!("/ipfs/{root}/www?format=car&dag-scope=entity"));
    let www_cid = roots_of(&d, &format!("{root}/www"))[1];
    assert_eq!(car_blocks(&www.body).1, vec![rootc, www_cid]);

    // Identity CIDs answer, with no blocks.
    let id = get(&d, "/ipfs/bafkqaaa?format=car");
    assert_eq!(id.status, 200);
    let (roots, blocks) = car_blocks(&id.body);
    assert_eq!(roots, vec![cid("bafkqaaa")]);
    assert!(blocks.is_empty());

    let head = request(&d.gateway, "HEAD", &format!("/ipfs/{root}?format=car"), &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let missing = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    assert_eq!(get(&d, &format!("/ipfs/{missing}?format=car")).status, 404);
    assert_eq!(
        get(&d, &format!("/ipfs/{root}/nope?format=car")).status,
        404
    );
    for bad in [
        "dag-scope=everything",
        "dag-scope=entity&entity-bytes=x",
        "dag-scope=entity&entity-bytes=9:1",
    ] {
        assert_eq!(
            get(&d, &format!("/ipfs/{root}?format=car&{bad}")).status,
            400,
            "{bad}"
        );
    }
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn path_gateway_files_and_directories() {
    let (r, root, big) = site();
    let d = Daemon::start(&r);

    // Directories: redirect to the slash form (query kept), then index.html or a listing.
    let rep = get(&d, &format!("/ipfs/{root}/www?x=1"));
    assert_eq!(rep.status, 301);
    assert_eq!(
        rep.header("location").unwrap(),
        format!("/ipfs/{root}/www/?x=1")
    );
    let rep = get(&d, &format!("/ipfs/{root}/www/"));
    assert_eq!(rep.status, 200);
    assert_eq!(rep.body, b"<p>home</p>");
    assert_eq!(
        rep.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let rep = get(&d, &format!("/ipfs/{root}/"));
    assert_eq!(rep.status, 200);
    let html = String::from_utf8(rep.body.clone()).unwrap();
    assert!(html.contains("hello.txt"), "{html}");
    assert!(
        html.contains("we&lt;ird&gt; &amp; &#39;n&quot;ame&#39;.txt"),
        "{html}"
    );
    assert!(!html.contains("<ird>"), "unescaped name: {html}");
    assert!(
        html.contains("href=\"./we%3Cird%3E%20%26%20%27n%22ame%27.txt\""),
        "{html}"
    );
    let odd = get(
        &d,
        &format!("/ipfs/{root}/we%3Cird%3E%20%26%20%27n%22ame%27.txt"),
    );
    assert_eq!(odd.body, b"odd");

    // Files: bytes, type by name then content, caching headers.
    let rep = get(&d, &format!("/ipfs/{root}/hello.txt"));
    assert_eq!(rep.status, 200);
    assert_eq!(rep.body, b"hello world\n");
    assert_eq!(
        rep.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let roots = roots_of(&d, &format!("{root}/hello.txt"));
    assert_eq!(rep.header("etag").unwrap(), format!("\"{}\"", roots[1]));
    assert_eq!(
        rep.header("x-ipfs-roots").unwrap(),
        format!("{},{}", roots[0], roots[1])
    );
    assert_eq!(
        rep.header("x-ipfs-path").unwrap(),
        format!("/ipfs/{root}/hello.txt")
    );
    assert_eq!(
        rep.header("cache-control").as_deref(),
        Some("public, max-age=29030400, immutable")
    );
    let png = get(&d, &format!("/ipfs/{root}/picture"));
    assert_eq!(png.header("content-type").as_deref(), Some("image/png"));
    let full = get(&d, &format!("/ipfs/{root}/big.bin"));
    assert_eq!(full.body, big);
    assert_eq!(
        full.header("content-type").as_deref(),
        Some("application/octet-stream")
    );

    // Conditional requests.
    let etag = rep.header("etag").unwrap();
    let nm = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{root}/hello.txt"),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(nm.status, 304);
    assert!(nm.body.is_empty());

    // Ranges: one range across leaf boundaries, an open one, a suffix, and one past the end.
    let range = |spec: &str| {
        request(
            &d.gateway,
            "GET",
            &format!("/ipfs/{root}/big.bin"),
            &[("Range", spec)],
        )
    };
    let rep = range("bytes=1000-3099");
    assert_eq!(rep.status, 206);
    assert_eq!(rep.body, &big[1000..3100]);
    assert_eq!(
        rep.header("content-range").unwrap(),
        format!("bytes 1000-3099/{}", big.len())
    );
    assert_eq!(rep.header("content-length").unwrap(), "2100");
    let rep = range("bytes=4990-");
    assert_eq!(rep.status, 206);
    assert_eq!(rep.body, &big[4990..]);
    let rep = range("bytes=-7");
    assert_eq!(rep.body, &big[big.len() - 7..]);
    let rep = range("bytes=9999-");
    assert_eq!(rep.status, 416);
    assert_eq!(
        rep.header("content-range").unwrap(),
        format!("bytes */{}", big.len())
    );

    // HEAD: the headers of GET, no body.
    let head = request(&d.gateway, "HEAD", &format!("/ipfs/{root}/big.bin"), &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length").unwrap(),
        big.len().to_string()
    );

    // Downloads.
    let rep = get(&d, &format!("/ipfs/{root}/hello.txt?filename=greeting.txt"));
    assert_eq!(
        rep.header("content-disposition").unwrap(),
        "inline; filename=\"greeting.txt\""
    );
    let rep = get(
        &d,
        &format!("/ipfs/{root}/hello.txt?filename=gr%C3%BC%C3%9F.txt&download=true"),
    );
    assert_eq!(
        rep.header("content-disposition").unwrap(),
        "attachment; filename=\"gr__.txt\"; filename*=UTF-8''gr%C3%BC%C3%9F.txt"
    );
    let rep = get(&d, &format!("/ipfs/{root}/hello.txt?download=true"));
    assert_eq!(
        rep.header("content-disposition").unwrap(),
        "attachment; filename=\"hello.txt\""
    );
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn hostile_requests_are_refused_and_the_daemon_survives() {
    let (r, root, _) = site();
    let d = Daemon::start(&r);
    for (target, want) in [
        ("/ipfs/notacid".to_string(), 400),
        ("/ipfs/".to_string(), 400),
        ("/ipfs/%zz".to_string(), 400),
        (format!("/ipfs/{root}/../{root}"), 400),
        (format!("/ipfs/{root}/www/../hello.txt"), 400),
        (format!("/ipfs/{root}/%2e%2e/hello.txt"), 400),
        (format!("/ipfs/{root}/%2E%2E"), 400),
        (format!("/ipfs/{root}/www%2F..%2Fhello.txt"), 400),
        (format!("/ipfs/{root}/hello.txt%00"), 400),
        (format!("/ipfs/{root}/%ff%fe"), 400),
        (format!("/ipfs/{root}?format=tar"), 400),
        (format!("/ipfs/{root}/no-such-file"), 404),
        (format!("/ipfs/{root}/hello.txt/below-a-file"), 404),
        (
            format!("/ipfs/{root}"),
            301, // the well-formed control
        ),
    ] {
        let rep = get(&d, &target);
        assert_eq!(rep.status, want, "{target}: {}", rep.head);
    }
    let accept_v2 = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{root}"),
        &[("Accept", "application/vnd.ipld.car; version=2")],
    );
    assert_eq!(accept_v2.status, 400);
    // Random paths and queries built from hostile pieces: always an answer, never a 5xx.
    let pieces = [
        "..",
        ".",
        "%2e%2e",
        "%2E.",
        "%2f",
        "%00",
        "%",
        "%zz",
        "%ff",
        "hello.txt",
        "www",
        "index.html",
        "%C3%A9",
        "a b",
        "//",
        "?",
        "&",
        "=",
        "format=car",
        "dag-scope=entity",
        "entity-bytes=-1:*",
        "entity-bytes=9223372036854775807:*",
        "filename=%0d%0a",
        "download=true",
        "format=raw",
        "#",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for _ in 0..300 {
        let mut target = format!("/ipfs/{root}");
        for _ in 0..next(5) {
            target.push('/');
            target.push_str(
                &pieces[next(pieces.len())]
                    .replace(' ', "%20")
                    .replace('#', "%23"),
            );
        }
        if next(2) == 0 {
            target.push('?');
            for i in 0..next(3) + 1 {
                if i > 0 {
                    target.push('&');
                }
                target.push_str(
                    pieces[next(pieces.len())]
                        .replace(' ', "+")
                        .replace('#', "%23")
                        .as_str(),
                );
            }
        }
        let rep = get(&d, &target);
        assert!(
            (200..500).contains(&rep.status),
            "{target}: {} {}",
            rep.status,
            String::from_utf8_lossy(&rep.body)
        );
    }
    // Still serving.
    assert_eq!(get(&d, &format!("/ipfs/{root}/hello.txt")).status, 200);
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn a_missing_child_ends_the_stream_early() {
    let r = Repo::new();
    write(&r.path("f.bin"), &bytes(5000, 3));
    let f = r.path("f.bin");
    let root = r.add(&["--pin=false", "--chunker=size-1024", f.to_str().unwrap()]);
    let blocks = exported(&r, &root);
    r.ok(&["block", "rm", &blocks[3].to_string()]);
    let d = Daemon::start(&r);
    // The root is there, so the response starts; it must then be cut off, never end
    // cleanly. (Whether the status line got out before the abort is up to timing.)
    for target in [format!("/ipfs/{root}?format=car"), format!("/ipfs/{root}")] {
        let rep = get(&d, &target);
        assert!(
            rep.status == 200 || rep.status == 0,
            "{target}: {}",
            rep.head
        );
        assert!(
            !rep.complete || rep.body.len() < 5000,
            "{target}: a response missing a block ended cleanly"
        );
    }
    // The root's own block is still there.
    assert_eq!(get(&d, &format!("/ipfs/{root}?format=raw")).status, 200);
    d.stop(); // clean shutdown is daemon.rs's test
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn large_files_and_cars_stream() {
    let r = Repo::new();
    let data = bytes(48 << 20, 11);
    write(&r.path("large.bin"), &data);
    let root = r.add(&[r.path("large.bin").to_str().unwrap()]);
    let d = Daemon::start(&r);
    let before = peak_rss_kib(d.child.id());
    let rep = get(&d, &format!("/ipfs/{root}"));
    assert_eq!(rep.status, 200);
    assert!(rep.body == data, "large body differs");
    let car = get(&d, &format!("/ipfs/{root}?format=car"));
    assert_eq!(car_blocks(&car.body).1.len(), 49);
    let grown = peak_rss_kib(d.child.id()).saturating_sub(before);
    assert!(
        grown < 24 << 10,
        "serving 48 MiB grew the daemon by {grown} KiB: bodies are buffered"
    );
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn sharded_directories() {
    let r = Repo::new();
    let name = |i: usize| format!("{i:04}-{}", "x".repeat(200));
    for i in 0..1400 {
        write(&r.path(&format!("big/{}", name(i))), &[i as u8]);
    }
    let root = r.add(&["-r", r.path("big").to_str().unwrap()]);
    let all = exported(&r, &root);
    let shards: Vec<Cid> = all
        .iter()
        .filter(|c| c.codec() == kiln_core::cids::DAG_PB)
        .copied()
        .collect();
    assert!(shards.len() > 1, "the directory should be a HAMT");
    let d = Daemon::start(&r);

    let rep = get(&d, &format!("/ipfs/{root}/{}", name(1234)));
    assert_eq!(rep.status, 200);
    assert_eq!(rep.body, [1234usize as u8]);

    // Walking into a shard: the root, the shard(s) on the way, then the file.
    let (_, blocks) = car_blocks(
        &get(
            &d,
            &format!("/ipfs/{root}/{}?format=car&dag-scope=block", name(77)),
        )
        .body,
    );
    assert_eq!(blocks[0], cid(&root));
    assert!(blocks.len() >= 2);
    assert!(
        blocks[..blocks.len() - 1]
            .iter()
            .all(|c| shards.contains(c))
    );
    assert_eq!(
        *blocks.last().unwrap(),
        roots_of(&d, &format!("{root}/{}", name(77)))[1]
    );

    // The directory entity is every shard and none of the entries.
    let (_, blocks) =
        car_blocks(&get(&d, &format!("/ipfs/{root}?format=car&dag-scope=entity")).body);
    let mut got = blocks.clone();
    got.sort();
    let mut want = shards.clone();
    want.sort();
    assert_eq!(got, want);

    let html = String::from_utf8(get(&d, &format!("/ipfs/{root}/")).body).unwrap();
    assert_eq!(html.matches("<tr>").count(), 1400);
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn subdomain_gateway() {
    let (r, root, _) = site();
    let d = Daemon::start(&r);
    let host = format!("{root}.ipfs.localhost");
    let sub = |target: &str| request_as(&d.gateway, &host, "GET", target, &[]);
    let rep = sub("/hello.txt");
    assert_eq!(rep.status, 200);
    assert_eq!(rep.body, b"hello world\n");
    assert_eq!(
        rep.header("x-ipfs-path").unwrap(),
        format!("/ipfs/{root}/hello.txt")
    );
    assert_eq!(rep.header("vary").as_deref(), Some("Accept"));
    let rep = sub("/www");
    assert_eq!(rep.status, 301);
    assert_eq!(rep.header("location").as_deref(), Some("/www/"));
    assert_eq!(sub("/www/").body, b"<p>home</p>");
    let rep = sub("/");
    assert!(String::from_utf8_lossy(&rep.body).contains("hello.txt"));
    let car = request_as(&d.gateway, &host, "GET", "/?format=car", &[]);
    assert_eq!(car_blocks(&car.body).1, exported(&r, &root));
    assert_eq!(sub("/../hello.txt").status, 400);

    let other = |host: &str| request_as(&d.gateway, host, "GET", "/hello.txt", &[]).status;
    assert_eq!(other("notacid.ipfs.localhost"), 400);
    let v0 = Cid::new_v0(*cid(&root).hash()).expect("dag-pb sha2-256 has a v0 form");
    assert_eq!(other(&format!("{v0}.ipfs.localhost")), 400);
    assert_eq!(other("localhost"), 404);
    assert_eq!(
        request_as(&d.gateway, &host, "POST", "/hello.txt", &[]).status,
        405
    );
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn dag_cbor_blocks_and_their_links() {
    let (r, root, _) = site();
    let d = Daemon::start(&r);
    let file = roots_of(&d, &format!("{root}/big.bin"))[1];
    // {"f": CID(file)} in dag-cbor: map(1), text "f", tag 42, bytes(0x00 ‖ CID).
    let cb = file.to_bytes();
    let mut block = vec![0xa1, 0x61, b'f', 0xd8, 0x2a, 0x58, cb.len() as u8 + 1, 0x00];
    block.extend_from_slice(&cb);
    write(&r.path("node.cbor"), &block);
    let node = r
        .ok(&[
            "block",
            "put",
            "--cid-codec",
            "dag-cbor",
            r.path("node.cbor").to_str().unwrap(),
        ])
        .trim()
        .to_string();
    let rep = get(&d, &format!("/ipfs/{node}"));
    assert_eq!(rep.status, 200);
    assert_eq!(rep.body, block);
    assert_eq!(
        rep.header("content-type").as_deref(),
        Some("application/vnd.ipld.dag-cbor")
    );
    // A CAR follows dag-cbor links; the entity of a dag-cbor node is the node.
    let (roots, blocks) = car_blocks(&get(&d, &format!("/ipfs/{node}?format=car")).body);
    assert_eq!(roots, vec![cid(&node)]);
    let mut want = vec![cid(&node)];
    want.extend(exported(&r, &file.to_string()));
    assert_eq!(blocks, want);
    let (_, blocks) =
        car_blocks(&get(&d, &format!("/ipfs/{node}?format=car&dag-scope=entity")).body);
    assert_eq!(blocks, vec![cid(&node)]);
    // Paths inside dag-cbor are not walked (yet).
    assert_eq!(get(&d, &format!("/ipfs/{node}/f")).status, 501);
    d.stop(); // clean shutdown is daemon.rs's test
}
