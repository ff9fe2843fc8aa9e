//! The gateway end to end: a real daemon, raw HTTP. Trustless (raw blocks, CARs cut by
//! scope and byte range, checked by parsing them), the path gateway (redirects, index
//! pages, listings, content types, ranges, caching headers, downloads) and hostile paths.

mod common;

use common::daemon::{Daemon, Reply, request, request_as};
use common::{Repo, bytes, write};
use kiln_core::Cid;
use kiln_core::car::CarReader;
use std::collections::HashMap;

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
        (format!("/ipfs/{root}?format=zip"), 400),
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
    // CARv2 only: nothing kiln can write is acceptable.
    let accept_v2 = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{root}"),
        &[("Accept", "application/vnd.ipld.car; version=2")],
    );
    assert_eq!(accept_v2.status, 406);
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

/// Every block of a CAR body with its bytes, in order, duplicates kept (hash-checked).
fn car_sections(body: &[u8]) -> Vec<(Cid, Vec<u8>)> {
    let mut rd = CarReader::new(body).expect("CAR header");
    let mut out = Vec::new();
    while let Some(section) = rd.next_block().expect("valid CAR block") {
        out.push(section);
    }
    out
}

/// The depth-first walk of the DAG under `root`, meeting each block as often as it is
/// linked: what `order=dfs; dups=y` must send.
fn dfs_with_dups(blocks: &HashMap<Cid, Vec<u8>>, root: Cid) -> Vec<Cid> {
    let (mut out, mut stack) = (Vec::new(), vec![root]);
    while let Some(c) = stack.pop() {
        out.push(c);
        let links = kiln_core::links::links_of(&c, &blocks[&c]).expect("links");
        stack.extend(links.into_iter().rev());
    }
    out
}

/// A tree where blocks repeat: two identical multi-block files and a file of zeros (four
/// identical leaves). Returns (repo, root CID).
fn duplicates() -> (Repo, String) {
    let r = Repo::new();
    let same = bytes(3000, 5);
    write(&r.path("dups/a.txt"), &same);
    write(&r.path("dups/b.txt"), &same);
    write(&r.path("dups/zeros.bin"), &[0u8; 4096]);
    write(&r.path("dups/hello.txt"), b"hello\n");
    let root = r.add(&[
        "-r",
        "--chunker=size-1024",
        r.path("dups").to_str().unwrap(),
    ]);
    (r, root)
}

#[test]
fn entity_bytes_imply_dag_scope_entity() {
    let (r, root, _) = site();
    let d = Daemon::start(&r);
    let rootc = cid(&root);
    let path = format!("{root}/big.bin");
    let file = roots_of(&d, &path)[1];
    let leaves = exported(&r, &file.to_string());
    let car = |q: &str| get(&d, &format!("/ipfs/{path}?format=car&{q}"));

    // entity-bytes alone is dag-scope=entity: the same CAR, the same Etag.
    let implied = car("entity-bytes=0:0");
    let explicit = car("dag-scope=entity&entity-bytes=0:0");
    assert_eq!(implied.status, 200);
    assert_eq!(car_blocks(&implied.body).1, vec![rootc, file, leaves[1]]);
    assert_eq!(implied.body, explicit.body);
    assert_eq!(implied.header("etag"), explicit.header("etag"));

    // Any other scope contradicts it.
    for scope in ["all", "block"] {
        let rep = car(&format!("dag-scope={scope}&entity-bytes=0:0"));
        assert_eq!(rep.status, 400, "{scope}");
        assert!(
            String::from_utf8_lossy(&rep.body).contains("dag-scope=entity"),
            "{scope}: {}",
            String::from_utf8_lossy(&rep.body)
        );
    }

    // Wholly past the end of the file: known before streaming, so 400.
    for past in ["5000:*", "6000:7000"] {
        assert_eq!(car(&format!("entity-bytes={past}")).status, 400, "{past}");
    }
    // Partly past the end: the blocks for the bytes there are.
    let partly = car("entity-bytes=4990:99999");
    assert_eq!(
        car_blocks(&partly.body).1,
        vec![rootc, file, *leaves.last().unwrap()]
    );
    // A range that resolves to nothing is dag-scope=block.
    let empty = car("entity-bytes=100:-4950");
    assert_eq!(empty.status, 200);
    assert_eq!(car_blocks(&empty.body).1, vec![rootc, file]);

    // Not a file: entity-bytes is ignored, the answer is the entity.
    let www = |q: &str| get(&d, &format!("/ipfs/{root}/www?format=car&{q}"));
    let with_bytes = www("entity-bytes=0:10");
    assert_eq!(with_bytes.status, 200);
    assert_eq!(
        car_blocks(&with_bytes.body).1,
        car_blocks(&www("dag-scope=entity").body).1
    );
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn car_negotiation_and_duplicate_blocks() {
    let (r, root) = duplicates();
    let d = Daemon::start(&r);
    let rootc = cid(&root);
    let ask = |accept: &str, query: &str| {
        request(
            &d.gateway,
            "GET",
            &format!("/ipfs/{root}{query}"),
            &[("Accept", accept)],
        )
    };
    let ctype = |rep: &Reply| rep.header("content-type").unwrap_or_default();
    const DUPS_Y: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=y";
    const DUPS_N: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";

    // dups=n: each block once, as `dag export` writes them.
    let once = ask(DUPS_N, "");
    assert_eq!(once.status, 200);
    assert_eq!(ctype(&once), DUPS_N);
    assert_eq!(car_blocks(&once.body).1, exported(&r, &root));
    let blocks: HashMap<Cid, Vec<u8>> = car_sections(&once.body).into_iter().collect();

    // dups=y: every occurrence in depth-first order, so a reader can check each block
    // against the walk as it arrives and drop it.
    let every = ask(DUPS_Y, "");
    assert_eq!(every.status, 200);
    assert_eq!(ctype(&every), DUPS_Y);
    let walk = car_blocks(&every.body).1;
    assert_eq!(walk, dfs_with_dups(&blocks, rootc));
    let zeros = roots_of(&d, &format!("{root}/zeros.bin"))[1];
    let zero_leaf = exported(&r, &zeros.to_string())[1];
    assert_eq!(walk.iter().filter(|c| **c == zero_leaf).count(), 4);
    assert!(
        walk.len() >= blocks.len() + 3 + 3,
        "a.txt = b.txt, 4 zero leaves"
    );
    assert_eq!(
        every.header("content-location").unwrap(),
        format!("/ipfs/{root}?format=car&car-version=1&car-order=dfs&car-dups=y")
    );
    assert_eq!(
        once.header("content-location").unwrap(),
        format!("/ipfs/{root}?format=car&car-version=1&car-order=dfs&car-dups=n")
    );
    // The Etag tells the two apart.
    let (tag_y, tag_n) = (every.header("etag").unwrap(), once.header("etag").unwrap());
    assert_ne!(tag_y, tag_n);
    let cond = |accept: &str, tag: &str| {
        request(
            &d.gateway,
            "GET",
            &format!("/ipfs/{root}"),
            &[("Accept", accept), ("If-None-Match", tag)],
        )
        .status
    };
    assert_eq!(cond(DUPS_Y, &tag_y), 304);
    assert_eq!(cond(DUPS_N, &tag_y), 200);
    // If-None-Match compares weakly: the tag without W/ matches too.
    assert_eq!(cond(DUPS_Y, tag_y.trim_start_matches("W/")), 304);

    // ?format=car takes the CAR parameters of Accept; the URL's own win over them.
    let params = ask(DUPS_Y, "?format=car");
    assert_eq!(ctype(&params), DUPS_Y);
    assert_eq!(car_blocks(&params.body).1, walk);
    let url_wins = ask("application/vnd.ipld.car; dups=n", "?format=car&car-dups=y");
    assert_eq!(ctype(&url_wins), DUPS_Y);
    assert_eq!(car_blocks(&url_wins.body).1, walk);
    assert_eq!(url_wins.header("content-location"), None);
    let url_only = get(
        &d,
        &format!("/ipfs/{root}?format=car&car-dups=y&car-order=dfs"),
    );
    assert_eq!(url_only.body, every.body);

    // Lists and weights.
    let raw = ask(
        "application/vnd.ipld.car;q=0.5, application/vnd.ipld.raw;q=0.9",
        "",
    );
    assert_eq!(ctype(&raw), "application/vnd.ipld.raw");
    assert_eq!(kiln_core::cids::verify(&rootc, &raw.body).ok(), Some(()));
    assert_eq!(
        raw.header("content-location").unwrap(),
        format!("/ipfs/{root}?format=raw")
    );
    let second = ask(
        "application/vnd.ipld.car;order=foo, application/vnd.ipld.car;order=dfs;dups=y;q=0.5",
        "",
    );
    assert_eq!(ctype(&second), DUPS_Y);
    // order=unk lets kiln choose: it says what it chose.
    assert_eq!(
        ctype(&ask("application/vnd.ipld.car; order=unk", "")),
        DUPS_N
    );
    // A browser's wildcards mean the deserialized answer (here: the directory redirect).
    assert_eq!(
        ask("text/html,application/xhtml+xml,*/*;q=0.8", "").status,
        301
    );
    // Variants kiln cannot write.
    assert_eq!(ask("application/vnd.ipld.car; version=2", "").status, 406);
    assert_eq!(ask("application/vnd.ipld.car; dups=maybe", "").status, 406);
    assert_eq!(
        ask("application/vnd.ipld.car; version=2", "?format=car").status,
        406
    );
    assert_eq!(
        ask(
            "application/vnd.ipld.car; version=2, application/vnd.ipld.raw;q=0.1",
            ""
        )
        .status,
        200
    );
    assert_eq!(
        get(&d, &format!("/ipfs/{root}?format=car&car-version=2")).status,
        400
    );
    assert_eq!(
        get(&d, &format!("/ipfs/{root}?format=car&car-dups=x")).status,
        400
    );

    // A byte range over repeated leaves: the same leaf twice with dups=y, once without.
    let first_2k =
        |accept| car_blocks(&ask(accept, "/zeros.bin?format=car&entity-bytes=0:2047").body).1;
    assert_eq!(first_2k(DUPS_Y), vec![rootc, zeros, zero_leaf, zero_leaf]);
    assert_eq!(first_2k(DUPS_N), vec![rootc, zeros, zero_leaf]);

    // HEAD: the headers alone.
    let head = request(
        &d.gateway,
        "HEAD",
        &format!("/ipfs/{root}"),
        &[("Accept", DUPS_Y)],
    );
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(ctype(&head), DUPS_Y);
    assert_eq!(head.header("etag"), Some(tag_y));

    // Identity CIDs are never sent as blocks, duplicates or not.
    let id = request(
        &d.gateway,
        "GET",
        "/ipfs/bafkqaaa",
        &[("Accept", "application/vnd.ipld.car; dups=y")],
    );
    assert_eq!(id.status, 200);
    assert_eq!(ctype(&id), DUPS_Y);
    assert!(car_blocks(&id.body).1.is_empty());
    d.stop(); // clean shutdown is daemon.rs's test
}

/// Unpack a tar with the system's `tar` into a fresh directory `into`.
fn untar(r: &Repo, body: &[u8], into: &str) -> std::path::PathBuf {
    use std::io::Write;
    let dir = r.path(into);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut child = std::process::Command::new("tar")
        .arg("-xf")
        .arg("-")
        .arg("-C")
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run tar");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("feed tar");
    assert!(
        child.wait().expect("tar").success(),
        "tar refused the archive"
    );
    dir
}

#[test]
fn tar_of_trees_and_files() {
    let r = Repo::new();
    let big = bytes(300_000, 9);
    write(&r.path("t/a.txt"), b"alpha\n");
    write(&r.path("t/sub/big.bin"), &big);
    write(&r.path("t/sub/deep/ünï cödé.txt"), b"utf8 name\n");
    std::fs::create_dir_all(r.path("t/empty")).expect("mkdir");
    std::os::unix::fs::symlink("a.txt", r.path("t/link")).expect("symlink");
    let root = r.add(&["-r", r.path("t").to_str().unwrap()]);
    let d = Daemon::start(&r);

    let rep = get(&d, &format!("/ipfs/{root}?format=tar"));
    assert_eq!(rep.status, 200);
    assert!(rep.complete);
    assert_eq!(
        rep.header("content-type").as_deref(),
        Some("application/x-tar")
    );
    assert_eq!(
        rep.header("content-disposition").unwrap(),
        format!("attachment; filename=\"{root}.tar\"")
    );
    let etag = rep.header("etag").unwrap();
    assert_eq!(etag, format!("W/\"{root}.x-tar\""));
    assert_eq!(
        rep.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        rep.header("cache-control").as_deref(),
        Some("public, max-age=29030400, immutable")
    );
    let top = untar(&r, &rep.body, "x-root").join(&root);
    assert_eq!(std::fs::read(top.join("a.txt")).unwrap(), b"alpha\n");
    assert!(std::fs::read(top.join("sub/big.bin")).unwrap() == big);
    assert_eq!(
        std::fs::read(top.join("sub/deep/ünï cödé.txt")).unwrap(),
        b"utf8 name\n"
    );
    assert_eq!(
        std::fs::read_link(top.join("link")).unwrap(),
        std::path::Path::new("a.txt")
    );
    assert!(top.join("empty").is_dir());

    // The RPC `get` writes the very same archive: one tar writer serves both.
    let rpc = common::daemon::request_with_body(
        &d.api,
        "POST",
        &format!("/api/v0/get?arg={root}"),
        &[],
        b"",
    );
    assert_eq!(rpc.status, 200);
    assert!(rpc.body == rep.body, "RPC get and the gateway tar differ");

    // A subdirectory through Accept: named after the last segment.
    let sub = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{root}/sub"),
        &[("Accept", "application/x-tar")],
    );
    assert_eq!(sub.status, 200);
    assert_eq!(
        sub.header("content-disposition").unwrap(),
        "attachment; filename=\"sub.tar\""
    );
    assert_eq!(
        sub.header("content-location").unwrap(),
        format!("/ipfs/{root}/sub?format=tar")
    );
    let out = untar(&r, &sub.body, "x-sub");
    assert!(std::fs::read(out.join("sub/big.bin")).unwrap() == big);

    // A file: one entry; ?filename= names the download.
    let one = get(
        &d,
        &format!("/ipfs/{root}/a.txt?format=tar&filename=mine.tar"),
    );
    assert_eq!(
        one.header("content-disposition").unwrap(),
        "attachment; filename=\"mine.tar\""
    );
    let out = untar(&r, &one.body, "x-file");
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["a.txt"]);
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"alpha\n");

    // HEAD and If-None-Match.
    let target = format!("/ipfs/{root}?format=tar");
    let head = request(&d.gateway, "HEAD", &target, &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("etag"), Some(etag.clone()));
    for method in ["GET", "HEAD"] {
        let nm = request(&d.gateway, method, &target, &[("If-None-Match", &etag)]);
        assert_eq!(nm.status, 304, "{method}");
        assert!(nm.body.is_empty());
    }

    // Not UnixFS: 406.
    write(&r.path("node.cbor"), &[0xa1, 0x61, b'a', 0x01]);
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
    assert_eq!(get(&d, &format!("/ipfs/{node}?format=tar")).status, 406);
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn tar_refuses_hostile_names() {
    use kiln_core::dag_pb::{PbLink, PbNode};
    use kiln_core::unixfs::{DataType, UnixfsData};
    let r = Repo::new();
    write(&r.path("payload"), b"evil");
    let file = r.add(&["--cid-version", "1", r.path("payload").to_str().unwrap()]);
    let mut dirs = Vec::new();
    for name in ["../escape", "a/b", ".."] {
        let node = PbNode {
            links: vec![PbLink {
                cid: cid(&file),
                name: name.into(),
                tsize: 4,
            }],
            data: Some(UnixfsData::new(DataType::Directory).encode()),
        };
        let nf = r.path("node.pb");
        std::fs::write(&nf, node.encode()).unwrap();
        let dir = r.ok(&[
            "block",
            "put",
            "--cid-codec",
            "dag-pb",
            nf.to_str().unwrap(),
        ]);
        dirs.push((name, dir.trim().to_string()));
    }
    let d = Daemon::start(&r);
    for (name, dir) in &dirs {
        // The stream has started (the directory's own entry) when the name is met: it
        // must be cut off, never end as a well-formed archive.
        let rep = get(&d, &format!("/ipfs/{dir}?format=tar"));
        assert!(rep.status == 200 || rep.status == 0, "{name}: {}", rep.head);
        assert!(
            !rep.complete,
            "{name}: a tar with a hostile name ended cleanly"
        );
    }
    let log = std::fs::read_to_string(&d.log).unwrap_or_default();
    assert!(log.contains("refusing unsafe entry name"), "{log}");
    assert!(!r.dir.path().join("escape").exists());
    d.stop(); // clean shutdown is daemon.rs's test
}

/// The parts of a `multipart/byteranges` answer: (Content-Type, Content-Range, bytes), cut
/// by the lengths their Content-Range gives (not by searching for the boundary).
fn byteranges(rep: &Reply) -> Vec<(String, String, Vec<u8>)> {
    let ct = rep.header("content-type").expect("content-type");
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("not multipart/byteranges: {ct}"));
    let delim = format!("--{boundary}");
    let (mut out, mut rest) = (Vec::new(), &rep.body[..]);
    loop {
        rest = rest
            .strip_prefix(delim.as_bytes())
            .expect("a part starts with the boundary");
        if let Some(end) = rest.strip_prefix(b"--") {
            assert_eq!(end, b"\r\n", "the body ends with the closing boundary");
            return out;
        }
        rest = rest.strip_prefix(b"\r\n").expect("CRLF after the boundary");
        let split = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("part headers");
        let head = String::from_utf8(rest[..split].to_vec()).expect("ASCII part headers");
        rest = &rest[split + 4..];
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {head:?}"))
                .to_string()
        };
        let (ptype, range) = (field("Content-Type: "), field("Content-Range: "));
        let (a, b) = range
            .strip_prefix("bytes ")
            .and_then(|r| r.split_once('/'))
            .and_then(|(r, _)| r.split_once('-'))
            .expect("bytes a-b/size");
        let len = b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1;
        out.push((ptype, range.clone(), rest[..len].to_vec()));
        rest = rest[len..]
            .strip_prefix(b"\r\n")
            .expect("CRLF after a part");
    }
}

#[test]
fn multi_range_requests() {
    let (r, root, big) = site();
    let d = Daemon::start(&r);
    let target = format!("/ipfs/{root}/big.bin");
    let range = |spec: &str| request(&d.gateway, "GET", &target, &[("Range", spec)]);
    let size = big.len();

    // Several ranges: 206 multipart/byteranges, one part each, in the order asked,
    // across leaf boundaries.
    let rep = range("bytes=0-9,20-29");
    assert_eq!(rep.status, 206);
    assert_eq!(rep.header("content-range"), None);
    assert_eq!(
        rep.header("content-length").unwrap(),
        rep.body.len().to_string()
    );
    let parts = byteranges(&rep);
    let octets = "application/octet-stream".to_string();
    assert_eq!(
        parts,
        vec![
            (
                octets.clone(),
                format!("bytes 0-9/{size}"),
                big[0..10].to_vec()
            ),
            (
                octets.clone(),
                format!("bytes 20-29/{size}"),
                big[20..30].to_vec()
            ),
        ]
    );
    let parts = byteranges(&range("bytes=4000-4499, 1000-1100, -3"));
    let got: Vec<(String, Vec<u8>)> = parts.into_iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(
        got,
        vec![
            (format!("bytes 4000-4499/{size}"), big[4000..4500].to_vec()),
            (format!("bytes 1000-1100/{size}"), big[1000..1101].to_vec()),
            (
                format!("bytes {}-{}/{size}", size - 3, size - 1),
                big[size - 3..].to_vec()
            ),
        ]
    );
    // The part type is the file's.
    let hello = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{root}/hello.txt"),
        &[("Range", "bytes=0-1,6-8")],
    );
    let parts = byteranges(&hello);
    assert_eq!(parts[0].0, "text/plain; charset=utf-8");
    assert_eq!(parts[1].2, b"wor");

    // Overlapping ranges merge; ranges past the end drop out; one left is a plain 206.
    let merged = range("bytes=0-9,5-14");
    assert_eq!(merged.status, 206);
    assert_eq!(
        merged.header("content-range").unwrap(),
        format!("bytes 0-14/{size}")
    );
    assert_eq!(merged.body, &big[..15]);
    let kept = range("bytes=0-9,9999-");
    assert_eq!(
        kept.header("content-range").unwrap(),
        format!("bytes 0-9/{size}")
    );
    assert_eq!(kept.body, &big[..10]);
    let none = range("bytes=9000-,9999-");
    assert_eq!(none.status, 416);
    assert_eq!(
        none.header("content-range").unwrap(),
        format!("bytes */{size}")
    );
    // Too many ranges: the whole file.
    let many = format!("bytes={}", vec!["0-0"; 17].join(","));
    let whole = range(&many);
    assert_eq!(whole.status, 200);
    assert!(whole.body == big);

    // HEAD: the multipart length without the body.
    let head = request(&d.gateway, "HEAD", &target, &[("Range", "bytes=0-9,20-29")]);
    assert_eq!(head.status, 206);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length").unwrap(),
        rep.body.len().to_string()
    );

    // If-Range: the current Etag keeps the ranges, any other gets the whole file.
    let etag = rep.header("etag").unwrap();
    let if_range = |tag: &str| {
        request(
            &d.gateway,
            "GET",
            &target,
            &[("Range", "bytes=0-9,20-29"), ("If-Range", tag)],
        )
    };
    assert_eq!(if_range(&etag).status, 206);
    let other = if_range("\"bafkqaaa\"");
    assert_eq!(other.status, 200);
    assert!(other.body == big);
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn ipns_is_not_implemented_and_the_uri_router_redirects() {
    let (r, root, _) = site();
    let d = Daemon::start(&r);
    let key = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8";
    for target in [
        format!("/ipns/{key}"),
        format!("/ipns/{key}/a/b.txt?format=raw"),
        format!("/ipns/{key}?format=ipns-record"),
        "/ipns/en.wikipedia-on-ipfs.org/wiki/".to_string(),
        "/ipns/".to_string(),
        "/ipns".to_string(),
    ] {
        let rep = get(&d, &target);
        assert_eq!(rep.status, 501, "{target}");
        let body = String::from_utf8_lossy(&rep.body);
        assert!(body.contains("IPNS"), "{target}: {body}");
        let head = request(&d.gateway, "HEAD", &target, &[]);
        assert_eq!(head.status, 501, "HEAD {target}");
        assert!(head.body.is_empty());
    }
    let sub = request_as(
        &d.gateway,
        &format!("{key}.ipns.localhost"),
        "GET",
        "/",
        &[],
    );
    assert_eq!(sub.status, 501);
    // The URI router (registerProtocolHandler's /ipfs/?uri=%s) redirects to the path.
    let routed = get(
        &d,
        &format!("/ipfs/?uri=ipfs%3A%2F%2F{root}%2Fwe%20x.txt%3Fdownload%3Dtrue"),
    );
    assert_eq!(routed.status, 301);
    assert_eq!(
        routed.header("location").unwrap(),
        format!("/ipfs/{root}/we%20x.txt?download=true")
    );
    let routed = get(&d, "/ipns/?uri=ipns%3A%2F%2Fexample.com%2Fa");
    assert_eq!(routed.status, 301);
    assert_eq!(routed.header("location").unwrap(), "/ipns/example.com/a");
    assert_eq!(get(&d, "/ipfs/?uri=https%3A%2F%2Fexample.com").status, 400);
    // IPNS records exist for /ipns/ names only.
    assert_eq!(
        get(&d, &format!("/ipfs/{root}?format=ipns-record")).status,
        400
    );
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn head_and_if_none_match_on_every_form() {
    let (r, root, _) = site();
    let d = Daemon::start(&r);
    let forms: Vec<(String, &str)> = vec![
        (format!("/ipfs/{root}/hello.txt"), ""),
        (format!("/ipfs/{root}/"), ""),
        (format!("/ipfs/{root}/www/"), ""),
        (format!("/ipfs/{root}/hello.txt?format=raw"), ""),
        (format!("/ipfs/{root}?format=car"), ""),
        (format!("/ipfs/{root}?format=car&car-dups=y"), ""),
        (format!("/ipfs/{root}?format=car&dag-scope=block"), ""),
        (
            format!("/ipfs/{root}/big.bin?format=car&entity-bytes=0:99"),
            "",
        ),
        (
            format!("/ipfs/{root}/big.bin?format=car&entity-bytes=0:100"),
            "",
        ),
        (format!("/ipfs/{root}?format=tar"), ""),
        (format!("/ipfs/{root}/big.bin"), "application/vnd.ipld.raw"),
        (
            format!("/ipfs/{root}/www"),
            "application/vnd.ipld.car; dups=y",
        ),
        (format!("/ipfs/{root}/www"), "application/x-tar"),
    ];
    let mut tags = std::collections::HashSet::new();
    for (target, accept) in &forms {
        let mut hs = vec![];
        if !accept.is_empty() {
            hs.push(("Accept", *accept));
        }
        let full = request(&d.gateway, "GET", target, &hs);
        assert_eq!(full.status, 200, "{target} {accept}");
        let etag = full.header("etag").expect("etag");
        tags.insert(etag.clone());
        assert_eq!(
            full.header("cache-control").as_deref(),
            Some("public, max-age=29030400, immutable"),
            "{target}"
        );
        let head = request(&d.gateway, "HEAD", target, &hs);
        assert_eq!(head.status, 200, "HEAD {target} {accept}");
        assert!(head.body.is_empty(), "HEAD {target}");
        for h in [
            "etag",
            "content-type",
            "content-disposition",
            "content-location",
            "x-ipfs-roots",
        ] {
            assert_eq!(head.header(h), full.header(h), "HEAD {target}: {h}");
        }
        // The Etag as sent, and its weak or strong twin: 304 without a body.
        let twin = match etag.strip_prefix("W/") {
            Some(strong) => strong.to_string(),
            None => format!("W/{etag}"),
        };
        for tag in [etag.as_str(), twin.as_str(), &format!("\"other\", {etag}")] {
            for method in ["GET", "HEAD"] {
                let mut with = hs.clone();
                with.push(("If-None-Match", tag));
                let nm = request(&d.gateway, method, target, &with);
                assert_eq!(nm.status, 304, "{method} {target} If-None-Match: {tag}");
                assert!(nm.body.is_empty());
                assert_eq!(nm.header("etag").as_deref(), Some(etag.as_str()));
            }
        }
        let mut other = hs.clone();
        other.push(("If-None-Match", "\"other\""));
        assert_eq!(request(&d.gateway, "GET", target, &other).status, 200);
    }
    assert_eq!(
        tags.len(),
        forms.len(),
        "every form has its own Etag: {tags:?}"
    );
    // The generated listing's tag names kiln's version (the HTML changes with it).
    let listing = get(&d, &format!("/ipfs/{root}/"));
    assert!(
        listing
            .header("etag")
            .unwrap()
            .starts_with("\"DirIndex-kiln-"),
        "{}",
        listing.head
    );
    // Downloads name their files.
    let car = get(&d, &format!("/ipfs/{root}?format=car&filename=site.car"));
    assert_eq!(
        car.header("content-disposition").unwrap(),
        "attachment; filename=\"site.car\""
    );
    let inline = get(&d, &format!("/ipfs/{root}/hello.txt?download=false"));
    assert_eq!(
        inline.header("content-disposition").unwrap(),
        "inline; filename=\"hello.txt\""
    );
    // Redirects answer HEAD as GET.
    let head = request(&d.gateway, "HEAD", &format!("/ipfs/{root}/www"), &[]);
    assert_eq!(head.status, 301);
    assert_eq!(
        head.header("location").unwrap(),
        format!("/ipfs/{root}/www/")
    );
    d.stop(); // clean shutdown is daemon.rs's test
}

#[test]
fn codec_formats_service_workers_and_only_if_cached() {
    let (r, root, _) = site();
    // {"a": 1} in dag-cbor.
    write(&r.path("node.cbor"), &[0xa1, 0x61, b'a', 0x01]);
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
    let d = Daemon::start(&r);

    // A codec format returns the block when the codec matches, else 406 (no conversion).
    let rep = get(&d, &format!("/ipfs/{node}?format=dag-cbor"));
    assert_eq!(rep.status, 200);
    assert_eq!(rep.body, [0xa1, 0x61, b'a', 0x01]);
    assert_eq!(
        rep.header("content-type").as_deref(),
        Some("application/vnd.ipld.dag-cbor")
    );
    assert_eq!(
        get(&d, &format!("/ipfs/{node}?format=dag-json")).status,
        406
    );
    assert_eq!(
        get(&d, &format!("/ipfs/{root}/?format=dag-cbor")).status,
        406
    );
    let acc = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{root}/hello.txt"),
        &[("Accept", "application/vnd.ipld.dag-json")],
    );
    assert_eq!(acc.status, 406);
    // A UnixFS file asked for as JSON is served as the file.
    let json = get(&d, &format!("/ipfs/{root}/hello.txt?format=json"));
    assert_eq!(json.status, 200);
    assert_eq!(json.body, b"hello world\n");

    // A service worker may not be registered for all of /ipfs/ from /ipfs/{cid}.
    let sw =
        |target: &str| request(&d.gateway, "GET", target, &[("Service-Worker", "script")]).status;
    assert_eq!(sw(&format!("/ipfs/{root}")), 400);
    assert_eq!(sw(&format!("/ipfs/{root}/")), 200);
    assert_eq!(sw(&format!("/ipfs/{root}/hello.txt")), 200);

    // only-if-cached: 412 when the root is not here, the answer otherwise.
    let cached = |target: &str, method: &str| {
        request(
            &d.gateway,
            method,
            target,
            &[("Cache-Control", "no-cache, only-if-cached")],
        )
        .status
    };
    let missing = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    for method in ["GET", "HEAD"] {
        assert_eq!(cached(&format!("/ipfs/{missing}"), method), 412);
        assert_eq!(cached(&format!("/ipfs/{root}/hello.txt"), method), 200);
        assert_eq!(cached("/ipfs/bafkqaaa", method), 200);
    }

    // Subdomain hosts are case-insensitive; a label longer than DNS allows is refused.
    let upper = format!("{}.ipfs.localhost", root.to_uppercase());
    assert_eq!(
        request_as(&d.gateway, &upper, "GET", "/hello.txt", &[]).body,
        b"hello world\n"
    );
    let long = format!("{}.ipfs.localhost", "b".repeat(64));
    assert_eq!(request_as(&d.gateway, &long, "GET", "/", &[]).status, 400);
    d.stop(); // clean shutdown is daemon.rs's test
}
