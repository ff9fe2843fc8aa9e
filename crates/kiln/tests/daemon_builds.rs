//! Builds through a running daemon: `kiln build`, `kiln builds`, `kiln log` and `kiln get
//! ACTION` print what they print without one; the API's server-sent events come in order;
//! the web UI's live page streams while the build runs; a daemon that stops ends its streams
//! and marks its running builds interrupted.

mod common;

use common::daemon::{Daemon, request};
use common::{Repo, write};
use kiln_wire::BuildEvent;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const RECIPE: &str = r#"
[params]
greeting = "hi"

[step.hi]
builder = "host"
command = ["sh", "-c", "echo {greeting} > out/x; ./tools/say.sh; echo to-stderr >&2; printf 'no newline'"]
inputs = { "tools" = "tools", ".config" = ".config" }
outputs = ["out/x"]

[step.site]
builder = "builtin"
command = ["markdown-site", "--title", "{greeting}", "docs", "out/site"]
inputs = { "docs" = "docs" }
outputs = ["out/site"]

[step.count]
builder = "host"
command = ["sh", "-c", "ls site | wc -l > out/n; cat x"]
inputs = { "site" = "step:site/out/site", "x" = "step:hi/out/x" }
outputs = ["out/n"]
"#;

/// A source tree: the recipe, docs, an executable script, a hidden file, and files no step
/// reads.
fn source(root: &Path) -> String {
    write(&root.join("kiln.toml"), RECIPE.as_bytes());
    write(
        &root.join("docs/README.md"),
        b"# Hello\n\nSee [the guide](guide.md).\n",
    );
    write(&root.join("docs/guide.md"), b"# Guide\n");
    write(
        &root.join("tools/say.sh"),
        b"#!/bin/sh\necho script says hello\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        root.join("tools/say.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    write(&root.join(".config"), b"hidden\n");
    write(&root.join("unused/big.bin"), &common::bytes(1 << 20, 3));
    root.to_str().unwrap().to_string()
}

/// Stdout, stderr (each line cut before ` in `, which names elapsed time, and the time in
/// `failed after N s` left out) and status.
fn shown(o: &Output) -> (String, String, Option<i32>) {
    let cut = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| {
                let l = l.split(" in ").next().unwrap_or(l);
                match l.split_once(" failed after ") {
                    Some((step, rest)) => format!(
                        "{step} failed after T{}",
                        rest.split_once(" s").map_or("", |(_, why)| why)
                    ),
                    None => l.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    (cut(&o.stdout), cut(&o.stderr), o.status.code())
}

/// How many requests the daemon has answered on `route` (from its metrics).
fn served(d: &Daemon, route: &str) -> u64 {
    let m = request(&d.api, "GET", "/metrics", &[]);
    String::from_utf8_lossy(&m.body)
        .lines()
        .filter(|l| {
            l.starts_with("kiln_http_requests_total{") && l.contains(&format!("route=\"{route}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn builds_print_the_same_through_the_daemon() {
    // `a` builds through its daemon, `b` (another repository) without one.
    let a = Repo::new();
    let b = Repo::new();
    let dir = a.path("project");
    let src = source(&dir);
    let d = Daemon::start(&a);
    let both = |args: &[&str]| {
        let oa = a.run(args);
        let mut direct = vec!["--no-daemon"];
        direct.extend_from_slice(args);
        let ob = b.run(&direct);
        assert_eq!(
            shown(&oa),
            shown(&ob),
            "kiln {args:?} differs through the daemon"
        );
        oa
    };

    let o = both(&["build", "--slots", "1", &src]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for line in [
        "[hi] running (build 1)",
        "[hi] script says hello",
        "[hi] to-stderr",
        "[hi] no newline",
        "[site] page README.md -> index.html",
        "[count] hi",
        "3 steps done (0 cached)",
    ] {
        assert!(err.lines().any(|l| l == line), "{line:?} not in {err}");
    }
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        served(&d, "/api/kiln/v1/builds") >= 1,
        "not built by the daemon"
    );

    // Cached, checked, another parameter.
    both(&["build", &src]);
    both(&["build", "--check", "--slots", "1", &src]);
    both(&["build", "--slots", "1", "--param", "greeting=hello", &src]);

    // Errors: the same message and status.
    both(&["build", "--param", "nope=1", &src]);
    both(&["build", &a.path("nowhere").to_string_lossy()]);
    let failing = a.path("failing");
    write(
        &failing.join("kiln.toml"),
        br#"
[step.ok]
builder = "builtin"
command = ["markdown-site", "docs", "out"]
inputs = { "docs" = "docs" }
outputs = ["out"]

[step.bad]
builder = "host"
command = ["sh", "-c", "echo about to fail; exit 3"]
inputs = { "x" = "step:ok/out" }
outputs = ["out/y"]

[step.after]
builder = "host"
command = ["true"]
inputs = { "y" = "step:bad/out/y" }
outputs = ["z"]
"#,
    );
    write(&failing.join("docs/README.md"), b"# x\n");
    let o = both(&["build", "--slots", "1", &failing.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("failing/kiln.toml: step \"bad\": exit status 3; the log ends with:"),
        "{err}"
    );
    assert!(err.contains("Not run: after"), "{err}");

    // The history and logs, through the daemon and not, on `a`.
    let same = |args: &[&str]| {
        let through = a.run(args);
        let mut direct = vec!["--no-daemon"];
        direct.extend_from_slice(args);
        let without = a.run(&direct);
        assert_eq!(
            (&through.stdout, &through.stderr, through.status.code()),
            (&without.stdout, &without.stderr, without.status.code()),
            "kiln {args:?} differs through the daemon: {}",
            String::from_utf8_lossy(&through.stderr)
        );
        String::from_utf8_lossy(&through.stdout).into_owned()
    };
    let list = same(&["builds", "-n", "50"]);
    assert!(
        list.contains("cached") && list.contains("exit status 3"),
        "{list}"
    );
    let log = same(&["log", "1"]);
    assert_eq!(log, "script says hello\nto-stderr\nno newline");
    let record = list
        .lines()
        .find(|l| l.contains(" count "))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    // The newest build of `count` is the one with greeting=hello.
    assert_eq!(same(&["log", &record]), "hello\n");
    for bad in ["999", "nope", "bafkqaaa"] {
        assert!(!a.run(&["log", bad]).status.success());
        same(&["log", bad]);
    }
    let logs_before = served(&d, "/api/kiln/v1/builds/{id}/log");
    a.ok(&["log", "2"]);
    assert!(served(&d, "/api/kiln/v1/builds/{id}/log") > logs_before);

    // get ACTION: planned, then built by the daemon (or found), written out.
    let plan = a.ok(&["build", "--plan", "--param", "greeting=get", &src]);
    let key = |step: &str| {
        plan.lines()
            .find_map(|l| l.strip_prefix(&format!("{step} ")))
            .unwrap()
            .to_string()
    };
    let got = a.path("got-x");
    let o = a.run(&["get", &key("hi"), "-o", got.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("Built action {}: record ", key("hi"))),
        "{err}"
    );
    assert!(err.contains("] script says hello"), "{err}");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "get\n");
    // Found now, through the daemon and directly alike.
    let found = |r: &Repo, extra: &[&str], out: &str| {
        let hi = key("hi");
        let mut args = extra.to_vec();
        args.extend_from_slice(&["get", &hi]);
        let p = r.path(out);
        args.extend_from_slice(&["-o", p.to_str().unwrap()]);
        let o = r.run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).replace(p.to_str().unwrap(), "OUT")
    };
    assert_eq!(
        found(&a, &[], "found-1"),
        found(&a, &["--no-daemon"], "found-2")
    );
    // A path below an output, and errors.
    let site = a.path("site-index");
    let plan = a.ok(&["build", "--plan", &src]);
    let site_key = plan
        .lines()
        .find_map(|l| l.strip_prefix("site "))
        .unwrap()
        .to_string();
    a.ok(&[
        "get",
        &format!("{site_key}/out/site/index.html"),
        "-o",
        site.to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&site).unwrap().contains("<title>"));
    let e = a.fails(&[
        "get",
        "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    ]);
    let e2 = a.fails(&[
        "--no-daemon",
        "get",
        "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    ]);
    assert_eq!(e, e2);
    assert!(e.contains("no such action"), "{e}");
    let e = a.fails(&["get", &key("hi"), "--timeout", "soon"]);
    assert!(e.contains("bad duration"), "{e}");

    // Pruning, through the daemon: the newest three builds are left.
    let pruned_before = served(&d, "/api/kiln/v1/builds/prune");
    let out = a.ok(&["builds", "prune", "--keep", "3"]);
    assert!(
        out.starts_with("removed ") && out.contains(" builds from the history; "),
        "{out}"
    );
    assert!(served(&d, "/api/kiln/v1/builds/prune") > pruned_before);
    let left = a.ok(&["builds", "-n", "50"]);
    let rows = left
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .count();
    assert_eq!(rows, 3, "three builds: {left}");
    assert_eq!(same(&["builds", "-n", "50"]), left);
    let again = a.ok(&["builds", "prune", "--keep", "3"]);
    assert!(again.starts_with("no build to prune (keep 3)"), "{again}");
    assert_eq!(d.stop().code(), Some(0));
}

/// Server-sent events of submission `id`, read with reqwest: (id, event) pairs.
fn events(api: &str, id: &str, last: Option<u64>) -> Vec<(Option<u64>, BuildEvent)> {
    follow(api, id, last, |_| {})
}

/// The events of submission `id` as they stream, each shown to `seen` as it arrives; all
/// of them once the stream ends.
fn follow(
    api: &str,
    id: &str,
    last: Option<u64>,
    mut seen: impl FnMut(&BuildEvent),
) -> Vec<(Option<u64>, BuildEvent)> {
    use std::io::BufRead;
    let client = http();
    let mut req = client.get(format!("http://{api}/api/kiln/v1/builds/{id}/events"));
    if let Some(n) = last {
        req = req.header("last-event-id", n.to_string());
    }
    let resp = req.send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut out = Vec::new();
    let (mut seq, mut name, mut data) = (None, String::new(), String::new());
    for line in std::io::BufReader::new(resp).lines() {
        let line = line.unwrap();
        if let Some(v) = line.strip_prefix("id: ") {
            seq = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("event: ") {
            name = v.to_string();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data.push_str(v);
        } else if line.is_empty() && !data.is_empty() {
            let ev: BuildEvent = serde_json::from_str(&data).unwrap();
            assert_eq!(ev.name(), name);
            seen(&ev);
            out.push((seq.take(), ev));
            data.clear();
        }
    }
    out
}

fn submit(api: &str, body: serde_json::Value) -> serde_json::Value {
    let resp = http()
        .post(format!("http://{api}/api/kiln/v1/builds"))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 202);
    resp.json().unwrap()
}

#[test]
fn events_stream_in_order_and_the_live_page_streams() {
    let r = Repo::new();
    let dir = r.path("slow");
    write(
        &dir.join("kiln.toml"),
        br#"
[step.slow]
builder = "host"
command = ["sh", "-c", "echo first; sleep 2; echo second; echo done > out/x"]
outputs = ["out/x"]

[step.quick]
builder = "host"
command = ["sh", "-c", "echo quick > out/q"]
inputs = { "x" = "step:slow/out/x" }
outputs = ["out/q"]
"#,
    );
    let d = Daemon::start(&r);
    // A tree without executables: `add -r -H` gives the CID builds give it.
    let src = r.add(&["-r", "-H", "--pin=false", dir.to_str().unwrap()]);
    let sub = submit(&d.api, serde_json::json!({"source": src}));
    let id = sub["id"].as_str().unwrap().to_string();
    assert_eq!(sub["state"], "running");

    // The live page: its head and the first line come while the build still runs.
    let mut page = std::net::TcpStream::connect(&d.api).unwrap();
    write!(
        page,
        "GET /ui/builds/{id} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        d.api
    )
    .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("[slow] first") {
        let n = page.read(&mut buf).unwrap();
        assert!(n > 0, "page ended early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let early = String::from_utf8_lossy(&got).into_owned();
    assert!(
        early
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{early}"
    );
    assert!(early.contains("<pre id=\"log\">"));
    assert!(
        !early.contains("id=\"result\""),
        "result before the build ended"
    );
    // Meanwhile the API says it runs, with the output so far.
    let v: serde_json::Value = http()
        .get(format!("http://{}/api/kiln/v1/builds/{id}", d.api))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["state"], "running");
    let build = v["steps"][0]["build"].as_i64().unwrap();
    let so_far = http()
        .get(format!("http://{}/api/kiln/v1/builds/{build}/log", d.api))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(so_far, "first\n");
    page.read_to_end(&mut got).unwrap();
    let whole = String::from_utf8_lossy(&got).into_owned();
    assert!(whole.contains("[slow] second") && whole.contains("id=\"result\""));
    assert!(whole.contains("2 steps done (0 cached)"), "{whole}");
    assert!(started.elapsed() >= Duration::from_millis(500));

    // The events, replayed: each step started, its output, finished; `done` last.
    let evs = events(&d.api, &id, None);
    let names: Vec<String> = evs
        .iter()
        .map(|(_, e)| match e {
            BuildEvent::Started { step, .. } => format!("started {step}"),
            BuildEvent::Output { step, line } => format!("output {step} {line}"),
            BuildEvent::Finished { step, ok, .. } => format!("finished {step} {ok}"),
            other => other.name().to_string(),
        })
        .collect();
    assert_eq!(
        names,
        [
            "started slow",
            "output slow first",
            "output slow second",
            "finished slow true",
            "started quick",
            "finished quick true",
            "done"
        ]
    );
    let ids: Vec<u64> = evs.iter().map(|(s, _)| s.unwrap()).collect();
    assert_eq!(ids, (0..7).collect::<Vec<_>>());
    let BuildEvent::Done(result) = &evs[6].1 else {
        unreachable!()
    };
    assert!(result.succeeded());
    assert_eq!(result.done.len(), 2);
    // Resumed after event 3.
    let rest = events(&d.api, &id, Some(3));
    assert_eq!(rest.len(), 3);
    assert!(matches!(rest[0].1, BuildEvent::Started { .. }));

    // Through the command line: listed, and the transcript of the submission.
    assert!(r.ok(&["builds"]).contains("slow"));
    let transcript = r.ok(&["log", &id]);
    assert!(
        transcript.starts_with("[slow] running (build"),
        "{transcript}"
    );
    assert!(
        transcript.ends_with("2 steps done (0 cached)\n"),
        "{transcript}"
    );
    d.stop();
}

#[test]
fn a_stopping_daemon_ends_streams_and_marks_builds_interrupted() {
    let r = Repo::new();
    let dir = r.path("forever");
    write(
        &dir.join("kiln.toml"),
        br#"
[step.forever]
builder = "host"
command = ["sh", "-c", "echo waiting; sleep 60.4242; echo never > out/x"]
outputs = ["out/x"]
"#,
    );
    let d = Daemon::start(&r);
    let src = r.add(&["-r", "-H", "--pin=false", dir.to_str().unwrap()]);
    let sub = submit(&d.api, serde_json::json!({"source": src}));
    let id = sub["id"].as_str().unwrap().to_string();
    // A follower, in the middle of the build: the daemon stops once the step has said
    // its first line to it.
    let api = d.api.clone();
    let (said, running) = std::sync::mpsc::channel();
    let follower = std::thread::spawn(move || {
        follow(&api, &id, None, |e| {
            if matches!(e, BuildEvent::Output { line, .. } if line == "waiting") {
                let _ = said.send(());
            }
        })
    });
    running
        .recv_timeout(Duration::from_secs(20))
        .expect("the step did not start and say its first line");
    let stopping = Instant::now();
    assert_eq!(d.stop().code(), Some(0));
    assert!(stopping.elapsed() < Duration::from_secs(10));
    let seen = follower.join().unwrap();
    assert!(
        seen.iter().all(|(_, e)| !matches!(e, BuildEvent::Done(_))),
        "{seen:?}"
    );
    assert!(matches!(seen[0].1, BuildEvent::Started { .. }), "{seen:?}");
    let list = r.ok(&["builds"]);
    assert!(list.contains("interrupted: the daemon stopped"), "{list}");
    // The daemon cancelled the build before it exited: the step's processes are gone.
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("sleep 60.4242"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn sources_must_be_in_the_store_and_be_trees() {
    let r = Repo::new();
    let f = r.path("file.txt");
    write(&f, b"just a file");
    let d = Daemon::start(&r);
    let file = r.add(&["--pin=false", f.to_str().unwrap()]);
    let client = http();
    let post = |body: serde_json::Value| {
        let resp = client
            .post(format!("http://{}/api/kiln/v1/builds", d.api))
            .json(&body)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let v: serde_json::Value = resp.json().unwrap();
        (
            status,
            v["Message"].as_str().unwrap_or_default().to_string(),
        )
    };
    let (st, m) = post(serde_json::json!({"source": file}));
    assert_eq!(st, 400, "{m}");
    assert!(m.contains("is not a directory"), "{m}");
    let (st, m) = post(serde_json::json!({
        "source": "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
    }));
    assert_eq!(st, 404, "{m}");
    // Cross-site requests are refused.
    let resp = client
        .post(format!("http://{}/api/kiln/v1/builds", d.api))
        .header("origin", "http://evil.example")
        .json(&serde_json::json!({"source": file}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    d.stop();
}

/// The project documents itself with itself: `kiln build` at the top of the repository
/// renders the docs into a site, and the daemon's gateway serves it, links and all.
#[test]
fn the_docs_site_is_served_through_the_gateway() {
    let r = Repo::new();
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let d = Daemon::start(&r);
    let out = r.ok(&["build", &top.to_string_lossy()]);
    let site = out
        .lines()
        .find_map(|l| l.strip_suffix(" docs:site"))
        .unwrap_or_else(|| panic!("no docs:site in {out:?}"))
        .to_string();
    // The directory answers with its index.html.
    let index = request(&d.gateway, "GET", &format!("/ipfs/{site}/"), &[]);
    assert_eq!(index.status, 200, "{}", index.head);
    assert!(
        index
            .head
            .to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{}",
        index.head
    );
    let html = String::from_utf8_lossy(&index.body).into_owned();
    assert!(
        html.contains("<!doctype html>") && html.contains("href=\"ARCHITECTURE.html\""),
        "{html}"
    );
    // A relative link from the index works under /ipfs/CID/.
    let arch = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{site}/ARCHITECTURE.html"),
        &[],
    );
    assert_eq!(arch.status, 200);
    assert!(String::from_utf8_lossy(&arch.body).contains("kiln architecture"));
    let recipes = request(
        &d.gateway,
        "GET",
        &format!("/ipfs/{site}/crates/kiln-build/RECIPES.html"),
        &[],
    );
    assert_eq!(recipes.status, 200);
    assert!(String::from_utf8_lossy(&recipes.body).contains("The sandbox"));
    d.stop();
}

/// An HTTP client (reqwest's TLS needs the process's crypto provider, as kiln installs it).
fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}
