//! `kiln daemon` end to end: bound addresses printed, RPC answers, gateway serves content,
//! SIGTERM stops it cleanly.

mod common;

use common::daemon::{Daemon, request, request_with_body};
use common::{Repo, write};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// (status, header block, body) of one request.
fn http(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let r = request(addr, method, target, headers);
    (r.status, r.head, r.body)
}

fn http_with_body(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let r = request_with_body(addr, method, target, headers, body);
    (r.status, r.head, r.body)
}

#[test]
fn daemon_serves_rpc_and_gateway_and_stops_on_sigterm() {
    let r = Repo::new();
    let f = r.path("hello.txt");
    write(&f, b"hello from the gateway");
    let cid = r.add(&[f.to_str().unwrap()]);
    let d = Daemon::start(&r);

    let (st, _, body) = http(&d.api, "POST", "/api/v0/version", &[]);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));

    let (st, _, body) = http(&d.api, "GET", "/api/v0/version", &[]);
    assert_eq!(st, 405);
    let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["Type"], "error");

    let (st, _, body) = http(&d.api, "POST", "/api/v0/id", &[]);
    assert_eq!(st, 200);
    let id: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let cli_id: serde_json::Value = serde_json::from_str(&r.ok(&["id"])).unwrap();
    assert_eq!(id["ID"], cli_id["ID"]);
    let port = d.api.rsplit(':').next().unwrap();
    assert_eq!(
        id["Addresses"][0],
        format!("/ip4/127.0.0.1/tcp/{port}/http")
    );

    let (st, head, body) = http(&d.gateway, "GET", &format!("/ipfs/{cid}"), &[]);
    assert_eq!(st, 200);
    assert_eq!(body, b"hello from the gateway");
    assert!(head.to_ascii_lowercase().contains("immutable"), "{head}");
    let (st, head, body) = http(&d.gateway, "GET", &format!("/ipfs/{cid}?format=raw"), &[]);
    assert_eq!(st, 200);
    assert!(head.contains("application/vnd.ipld.raw"), "{head}");
    assert_eq!(body, b"hello from the gateway");
    let (st, _, _) = http(&d.gateway, "GET", "/ipfs/bafkqaaa", &[]);
    assert_eq!(st, 200);
    let missing = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    let (st, _, _) = http(&d.gateway, "GET", &format!("/ipfs/{missing}"), &[]);
    assert_eq!(st, 404);
    let (st, _, _) = http(&d.gateway, "GET", "/ipfs/notacid", &[]);
    assert_eq!(st, 400);

    // A block added through the daemon is counted (the CLI sends it there).
    let other = r.path("other.txt");
    write(&other, b"a second block, through the daemon");
    r.add(&[other.to_str().unwrap()]);

    let (st, _, body) = http(&d.api, "GET", "/metrics", &[]);
    assert_eq!(st, 200);
    let m = String::from_utf8(body).unwrap();
    assert!(m.contains("kiln_blocks_added_total 1"), "{m}");
    assert!(m.contains("kiln_store_blocks 2"), "{m}");
    assert!(
        m.contains(
            r#"kiln_http_requests_total{listener="api",route="/api/v0/version",status="200"} 1"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"listener="gateway",route="/ipfs/{*path}",status="404""#),
        "{m}"
    );
    assert!(
        m.contains("kiln_http_request_duration_seconds_bucket"),
        "{m}"
    );

    let status = d.stop();
    assert!(status.success(), "daemon exit: {status:?}");
}

/// The RPC subset used without kubo-rpc-client: cat, ls, block, pin, repo, dag export.
#[test]
fn rpc_subset() {
    let r = Repo::new();
    let dir = r.path("site");
    write(&dir.join("index.html"), b"<h1>hi</h1>");
    write(&dir.join("big.bin"), &common::bytes(3_000_000, 7));
    let root = r.add(&["-r", dir.to_str().unwrap()]);
    let d = Daemon::start(&r);
    let api = d.api.clone();
    let post = |t: &str| http(&api, "POST", t, &[]);

    let (st, _, body) = post(&format!(
        "/api/v0/cat?arg={root}/big.bin&offset=10&length=100000"
    ));
    assert_eq!(st, 200);
    assert_eq!(body, &common::bytes(3_000_000, 7)[10..100_010]);
    let (st, _, body) = post(&format!("/api/v0/cat?arg={root}/big.bin"));
    assert_eq!(st, 200);
    assert_eq!(body.len(), 3_000_000);
    let (st, _, body) = post(&format!("/api/v0/cat?arg={root}"));
    assert_eq!(st, 500);
    assert!(String::from_utf8_lossy(&body).contains("not a file"));
    let (st, _, body) = post("/api/v0/cat?arg=notacid");
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    let (st, _, _) = post("/api/v0/cat");
    assert_eq!(st, 400);

    let (st, _, body) = post(&format!("/api/v0/ls?arg={root}"));
    assert_eq!(st, 200);
    let ls: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let links = ls["Objects"][0]["Links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["Name"], "big.bin");
    assert_eq!(links[0]["Size"], 3_000_000);
    assert_eq!(links[0]["Type"], 2);

    // block put (multipart), stat, get, rm
    let boundary = "kilnboundary";
    let mut mp = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    mp.extend_from_slice(b"rpc block");
    mp.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let (st, _, body) = http_with_body(
        &api,
        "POST",
        "/api/v0/block/put",
        &[("Content-Type", &ct)],
        &mp,
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let put: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let key = put["Key"].as_str().unwrap().to_string();
    assert_eq!(put["Size"], 9);
    let (_, _, body) = post(&format!("/api/v0/block/get?arg={key}"));
    assert_eq!(body, b"rpc block");
    let (_, _, body) = post(&format!("/api/v0/block/stat?arg={key}"));
    let stat: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stat["Size"], 9);
    assert_eq!(r.ok(&["block", "get", &key]), "rpc block");

    // pins
    let (st, _, body) = post(&format!("/api/v0/pin/add?arg={key}"));
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let (_, _, body) = post("/api/v0/pin/ls?type=recursive");
    let pins: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(pins["Keys"][&key]["Type"], "recursive");
    assert_eq!(pins["Keys"][&root]["Type"], "recursive");
    let (_, _, body) = post(&format!("/api/v0/block/rm?arg={key}"));
    assert!(String::from_utf8_lossy(&body).contains("pinned"));
    let (st, _, _) = post(&format!("/api/v0/pin/rm?arg={key}"));
    assert_eq!(st, 200);
    let (st, _, _) = post("/api/v0/repo/gc");
    assert_eq!(st, 200);
    let (st, _, _) = post(&format!("/api/v0/block/get?arg={key}"));
    assert_eq!(st, 500);
    let (_, _, body) = post("/api/v0/repo/stat");
    let rs: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(rs["NumObjects"].as_u64().unwrap() >= 3);

    // dag export streams a CAR that kiln imports elsewhere
    let (st, _, car) = post(&format!("/api/v0/dag/export?arg={root}"));
    assert_eq!(st, 200);
    let other = Repo::new();
    let carf = other.path("x.car");
    std::fs::write(&carf, &car).unwrap();
    other.ok(&["dag", "import", carf.to_str().unwrap()]);
    assert_eq!(
        other.ok(&["cat", &format!("{root}/index.html")]),
        "<h1>hi</h1>"
    );

    assert!(d.stop().success());
}

fn multipart(boundary: &str, name: &str, data: &[u8]) -> Vec<u8> {
    let mut mp = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    mp.extend_from_slice(data);
    mp.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    mp
}

/// Listeners and limits from a config file; bodies over the cap get 413; a client over its
/// in-flight cap gets 429; a big add under the default cap streams through.
#[test]
fn config_file_and_limits() {
    let r = Repo::new();
    let cfg = r.path("kiln.toml");
    std::fs::write(
        &cfg,
        "[api]\nlisten = \"127.0.0.1:0\"\nopen_loopback = true\n[gateway]\nlisten = \"127.0.0.1:0\"\n[limits]\nmax_body_bytes = 4096\nper_ip_concurrency = 1\n",
    )
    .unwrap();
    let d = Daemon::start_with(&r, &["--config", cfg.to_str().unwrap()]);
    let ct = "multipart/form-data; boundary=b0";
    let (st, _, _) = http_with_body(
        &d.api,
        "POST",
        "/api/v0/add",
        &[("Content-Type", ct)],
        &multipart("b0", "x", &[7u8; 1000]),
    );
    assert_eq!(st, 200);
    let (st, _, _) = http_with_body(
        &d.api,
        "POST",
        "/api/v0/add",
        &[("Content-Type", ct)],
        &multipart("b0", "x", &[7u8; 10_000]),
    );
    assert_eq!(st, 413);

    // The refused add may hold the slot a moment after its answer: wait until it is free.
    let deadline = Instant::now() + Duration::from_secs(10);
    while http(&d.api, "POST", "/api/v0/version", &[]).0 != 200 {
        assert!(Instant::now() < deadline, "the slot never came free");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A request whose body never comes holds this client's only slot.
    let mut slow = TcpStream::connect(&d.api).unwrap();
    let head = format!(
        "POST /api/v0/add HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: 1000\r\n\r\n--b0"
    );
    slow.write_all(head.as_bytes()).unwrap();
    // Once the server holds the slow request, the client's next one is refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let st = http(&d.api, "POST", "/api/v0/version", &[]).0;
        if st == 429 {
            break;
        }
        seen.push(st);
        if Instant::now() >= deadline {
            // Say what became of the request that should hold the slot.
            slow.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut got = Vec::new();
            let _ = slow.read_to_end(&mut got);
            panic!(
                "no 429 within 30 s (statuses {:?}…); the held request got {:?}",
                &seen[..seen.len().min(5)],
                String::from_utf8_lossy(&got)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(5);
    while http(&d.api, "POST", "/api/v0/version", &[]).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "slot not released after the client left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(d.stop().success());

    // Defaults: an 8 MiB add over RPC goes through and gives the CLI's CID.
    let d = Daemon::start(&r);
    let data = common::bytes(8 << 20, 3);
    let ct = "multipart/form-data; boundary=b1";
    let (st, _, body) = http_with_body(
        &d.api,
        "POST",
        "/api/v0/add?cid-version=1",
        &[("Content-Type", ct)],
        &multipart("b1", "big", &data),
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let line: serde_json::Value =
        serde_json::from_slice(body.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let f = r.path("big");
    write(&f, &data);
    assert_eq!(
        line["Hash"].as_str().unwrap(),
        r.add(&["-n", "--cid-version", "1", f.to_str().unwrap()])
    );
    assert!(d.stop().success());

    // A broken config file is a clear error.
    std::fs::write(&cfg, "[api]\nlisten = 5\n").unwrap();
    let o = r.run(&["daemon", "--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid configuration"));
}

/// The event journal: work done by the command line directly and through the daemon is
/// recorded (who, via, action, target, outcome), survives a restart, shows on the
/// dashboard, is followed live by `kiln events -f`, and is pruned by age after a GC run.
#[test]
fn the_event_journal_records_direct_and_daemon_work_and_survives_a_restart() {
    let r = Repo::new();
    r.ok(&["init"]);
    // A very old event, written first, to be pruned by the next GC run (kept 90 days by default).
    {
        let c = rusqlite::Connection::open(r.home().join("store.db")).unwrap();
        c.execute(
            "INSERT INTO events(at, who, via, action, target, ok, detail)
             VALUES (1000, 'local', 'cli', 'pin', 'ancient', 1, '')",
            [],
        )
        .unwrap();
    }
    write(&r.path("a.txt"), b"journal a");
    let a = r.add(&[r.path("a.txt").to_str().unwrap()]);
    r.ok(&["pin", "add", &a, "--name", "kept"]);
    r.ok(&["pin", "rm", &a]);
    r.fails(&["pin", "rm", &a]);
    let json = |args: &[&str]| -> Vec<serde_json::Value> {
        r.ok(args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = json(&["events", "--json", "-n", "100"]);
    let actions: Vec<(&str, &str, bool)> = all
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["via"].as_str().unwrap(),
                e["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("pin", "cli", true), // the ancient one: the lowest number
            ("add", "cli", true),
            ("pin", "cli", true),
            ("unpin", "cli", true),
            ("unpin", "cli", false),
        ]
    );
    assert_eq!(all[1]["target"], a.as_str());
    assert!(all[2]["detail"].as_str().unwrap().contains("named kept"));
    assert!(all[4]["detail"].as_str().unwrap().contains("is not pinned"));
    // The text form: one line each, failures say so.
    let text = r.ok(&["events", "--since", "1h"]);
    assert!(
        text.contains(&format!("local/cli  add  {a}  pinned")),
        "{text}"
    );
    assert!(text.contains("failed: "), "{text}");
    assert!(
        !text.contains("ancient"),
        "--since keeps the old one out: {text}"
    );
    let bad = r.fails(&["events", "--since", "last tuesday"]);
    assert!(bad.contains("bad"), "{bad}");

    // The daemon shows what the command line did before it started, and records its own.
    let d = Daemon::start(&r);
    let mut follow = r
        .cmd()
        .args(["events", "--follow", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It prints the newest event there is first: from then on it is following.
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let newest = lines.next().unwrap().unwrap();
    assert!(
        newest.contains("unpin") && newest.contains("failed"),
        "{newest}"
    );
    let dash = request(&d.api, "GET", "/", &[]);
    let page = String::from_utf8_lossy(&dash.body).to_string();
    assert!(page.contains("id=\"activity\""), "{page}");
    assert!(page.contains(&a), "the dashboard lists the direct add");
    write(&r.path("b.txt"), b"journal b");
    let b = r.add(&[r.path("b.txt").to_str().unwrap()]);
    r.ok(&["gc"]);
    // `kiln events -f` through the daemon prints them as they come.
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains(&format!("local/rpc  add  {b}")), "{first}");
    let second = lines.next().unwrap().unwrap();
    assert!(second.contains("local/api  gc"), "{second}");
    let _ = follow.kill();
    let _ = follow.wait();
    // The GC pruned the ancient event and kept the rest.
    let reply = request(
        &d.api,
        "GET",
        "/api/kiln/v1/events?order=newest&limit=3",
        &[],
    );
    assert_eq!(reply.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["events"][0]["action"], "gc");
    assert_eq!(v["events"][0]["ok"], true);
    assert_eq!(v["events"][1]["target"], b.as_str());
    assert!(d.stop().success());

    // After the daemon stopped, the command line reads the same journal.
    let after = json(&["events", "--json", "-n", "1000"]);
    assert_eq!(
        after.len(),
        all.len() - 1 + 2,
        "the old one pruned, the add and GC kept"
    );
    assert!(after.iter().all(|e| e["target"] != "ancient"));
}
