//! `kiln build` running steps for real: the sandbox's isolation seen from a build, the action
//! cache, records, logs, `--check`, cache directories, `kiln get ACTION`, bad input, and the
//! two examples of the repository.

mod common;

use common::{Repo, git, text};
use std::path::{Path, PathBuf};
use std::process::Output;

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A source tree with `kiln.toml` = `recipe` and the given files.
fn tree(r: &Repo, name: &str, recipe: &str, files: &[(&str, &str)]) -> String {
    let dir = r.path(name);
    write(&dir.join("kiln.toml"), recipe);
    for (f, text) in files {
        write(&dir.join(f), text);
    }
    dir.to_string_lossy().into_owned()
}

/// `kiln build DIR`, whatever the status: (stdout, stderr, success).
fn build(r: &Repo, args: &[&str]) -> (String, String, bool) {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let o: Output = r.run(&all);
    (text(&o.stdout), text(&o.stderr), o.status.success())
}

/// The CID printed for `step:path`.
fn output_of(stdout: &str, what: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_suffix(&format!(" {what}")))
        .unwrap_or_else(|| panic!("no output {what} in {stdout:?}"))
        .to_string()
}

fn cat(r: &Repo, cid: &str) -> String {
    r.ok(&["cat", cid])
}

#[test]
fn builds_are_cached_recorded_and_logged() {
    let r = Repo::new();
    let d = tree(
        &r,
        "src",
        r#"
[step.a]
builder = "host"
command = ["sh", "-c", "mkdir -p out && cat in.txt > out/a && echo built a"]
inputs = { "in.txt" = "in.txt" }
outputs = ["out/a"]

[step.b]
builder = "host"
command = ["sh", "-c", "tr a-z A-Z < a > b && echo built b >&2"]
inputs = { "a" = "step:a/out/a" }
outputs = ["b"]
"#,
        &[("in.txt", "hello\n")],
    );
    let (out, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    assert!(
        err.contains("[a] built a") && err.contains("[b] built b"),
        "{err}"
    );
    assert!(err.contains("2 steps done (0 cached)"), "{err}");
    assert_eq!(cat(&r, &output_of(&out, "b:b")), "HELLO\n");
    // Again: nothing runs, the same outputs.
    let (out2, err2, ok) = build(&r, &[&d]);
    assert!(
        ok && err2.contains("2 steps done (2 cached)") && !err2.contains("built a"),
        "{err2}"
    );
    assert_eq!(out, out2);
    // A changed input byte rebuilds what depends on it, and only that.
    write(&r.path("src/in.txt"), "hallo\n");
    let (out3, err3, ok) = build(&r, &[&d]);
    assert!(ok, "{err3}");
    assert_eq!(cat(&r, &output_of(&out3, "b:b")), "HALLO\n");
    // History and logs.
    let builds = r.ok(&["builds"]);
    assert!(
        builds
            .lines()
            .any(|l| l.contains("cached") && l.contains(" a ")),
        "{builds}"
    );
    let first = builds.lines().last().unwrap();
    assert!(
        first.trim_start().starts_with("1 ") && first.contains("built"),
        "{builds}"
    );
    assert_eq!(r.ok(&["log", "1"]), "built a\n");
    let record = first.split_whitespace().last().unwrap();
    assert_eq!(r.ok(&["log", record]), "built a\n");
    // The record is signed content, pinned by `build` with the step's name, and exports
    // as a CAR.
    let pins = r.ok(&["pin", "ls"]);
    assert!(
        pins.contains(" recursive build a\n") && pins.contains(" recursive build b\n"),
        "{pins}"
    );
    let car = r.path("rec.car");
    r.ok(&["dag", "export", record, "-o", &car.to_string_lossy()]);
    assert!(std::fs::metadata(&car).unwrap().len() > 100);
    let shown = r.ok(&["record", record]);
    assert!(
        shown.contains("step          a") && shown.contains("signature valid"),
        "{shown}"
    );
    assert!(shown.contains("host builder  yes"), "{shown}");
}

#[test]
fn a_step_cannot_read_the_node_key_or_host_files() {
    let r = Repo::new();
    r.ok(&["id"]);
    let key = r.home().join("identity.key");
    assert!(key.exists());
    let d = tree(
        &r,
        "src",
        &format!(
            r#"
[step.peek]
builder = "host"
command = ["sh", "-c", "cat {} /etc/shadow; ls {} ; ls / > out; true"]
outputs = ["out"]
"#,
            key.display(),
            r.home().display()
        ),
        &[],
    );
    let (out, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    let secret = std::fs::read(&key).unwrap();
    assert!(
        !err.as_bytes()
            .windows(8)
            .any(|w| secret.windows(8).any(|s| s == w))
    );
    let root = cat(&r, &output_of(&out, "peek:out"));
    let names: Vec<&str> = root.lines().collect();
    for name in names {
        assert!(
            [
                "bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp",
                "usr", "work"
            ]
            .contains(&name),
            "unexpected {name:?} in the sandbox's /: {root}"
        );
    }
}

#[test]
fn a_step_cannot_write_its_inputs_the_store_or_another_builds_outputs() {
    let r = Repo::new();
    let d = tree(
        &r,
        "src",
        r#"
[step.make]
builder = "host"
command = ["sh", "-c", "echo original > made"]
outputs = ["made"]

[step.tamper]
builder = "host"
command = ["sh", "-c", "echo x > src/file; echo x > dep/made; rm -f dep/made; chmod 777 dep/made; echo tried > out"]
inputs = { "src" = "data", "dep/made" = "step:make/made" }
outputs = ["out"]
"#,
        &[("data/file", "source\n")],
    );
    let (out, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    assert!(
        err.contains("Read-only file system") || err.contains("Device or resource busy"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(r.path("src/data/file")).unwrap(),
        "source\n"
    );
    let made = output_of(&out, "make:made");
    assert_eq!(cat(&r, &made), "original\n");
    // The written-out copy the sandbox saw is intact too, and the store verifies.
    let copy = r.home().join("builds/content").join(&made);
    assert_eq!(std::fs::read_to_string(copy).unwrap(), "original\n");
    let v = r.run(&["repo", "verify"]);
    assert!(v.status.success(), "{}", text(&v.stdout));
    // The store itself is not in the sandbox at all.
    let d2 = tree(
        &r,
        "src2",
        &format!(
            r#"
[step.store]
builder = "host"
command = ["sh", "-c", "ls {home} > out 2>&1; touch {home}/x 2>> out; true"]
outputs = ["out"]
"#,
            home = r.home().display()
        ),
        &[],
    );
    let (out, err, ok) = build(&r, &[&d2]);
    assert!(ok, "{err}");
    assert!(cat(&r, &output_of(&out, "store:out")).contains("No such file"));
    assert!(!r.home().join("x").exists());
}

#[test]
fn no_network_unless_fixed_output() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = Repo::new();
    let d = tree(
        &r,
        "src",
        &format!(
            r#"
[step.net]
builder = "host"
command = ["bash", "-c", "(echo hi > /dev/tcp/127.0.0.1/{port}) 2> out && echo CONNECTED >> out; true"]
outputs = ["out"]
"#
        ),
        &[],
    );
    let (out, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    let said = cat(&r, &output_of(&out, "net:out"));
    assert!(!said.contains("CONNECTED"), "{said}");
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the step reached the host's loopback"
    );
}

fn sleepers(tag: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("sleep") && c.contains(tag))
        .collect()
}

#[test]
fn a_step_is_killed_at_its_time_limit_with_nothing_left() {
    let r = Repo::new();
    let d = tree(
        &r,
        "src",
        r#"
[step.slow]
builder = "host"
command = ["sh", "-c", "echo starting; sleep 3131 & setsid sleep 3132 & sleep 3133"]
outputs = ["out"]
limits = { time = "1s" }

[step.fast]
builder = "host"
command = ["sh", "-c", "echo fine > out"]
outputs = ["out"]
"#,
        &[],
    );
    let t = std::time::Instant::now();
    let (out, err, ok) = build(&r, &[&d, "--slots", "2"]);
    assert!(!ok);
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        err.contains(
            "kiln.toml: step \"slow\": killed at its time limit; the log ends with:\nstarting"
        ),
        "{err}"
    );
    // The other step finished and is printed.
    assert!(out.contains(" fast:out"), "{out}");
    common::eventually("no process of the step left", 10, || {
        sleepers("313").is_empty()
    });
}

#[test]
fn bad_builds_get_clear_errors() {
    let r = Repo::new();
    // A declared output that is not produced.
    let d = tree(
        &r,
        "missing",
        r#"
[step.lazy]
builder = "host"
command = ["true"]
outputs = ["out/never"]
"#,
        &[],
    );
    let (_, err, ok) = build(&r, &[&d]);
    assert!(!ok);
    assert!(
        err.contains(
            "missing/kiln.toml: step \"lazy\": output \"out/never\" was declared but not produced"
        ),
        "{err}"
    );
    // A failing command: its status and log tail; the dependent step is not run.
    let d = tree(
        &r,
        "failing",
        r#"
[step.bad]
builder = "host"
command = ["sh", "-c", "echo something broke >&2; exit 7"]
outputs = ["x"]

[step.after]
builder = "host"
command = ["cp", "x", "y"]
inputs = { "x" = "step:bad/x" }
outputs = ["y"]
"#,
        &[],
    );
    let (_, err, ok) = build(&r, &[&d]);
    assert!(!ok);
    assert!(
        err.contains("step \"bad\": exit status 7; the log ends with:\nsomething broke"),
        "{err}"
    );
    assert!(err.contains("Not run: after"), "{err}");
    // The failed run is in the history with its log.
    let builds = r.ok(&["builds"]);
    assert!(
        builds.contains("failed") && builds.contains("exit status 7"),
        "{builds}"
    );
    // A program that is not there.
    let d = tree(
        &r,
        "noprog",
        r#"
[step.x]
builder = "host"
command = ["no-such-compiler", "-o", "x"]
outputs = ["x"]
"#,
        &[],
    );
    let (_, err, ok) = build(&r, &[&d]);
    assert!(!ok);
    assert!(
        err.contains(
            "noprog/kiln.toml: step \"x\": sandbox: command \"no-such-compiler\" was not found"
        ),
        "{err}"
    );
    // A root file system that is not in the repository.
    let d = tree(
        &r,
        "norootfs",
        r#"
[step.x]
builder = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
command = ["true"]
outputs = ["x"]
"#,
        &[],
    );
    let (_, err, ok) = build(&r, &[&d]);
    assert!(!ok);
    assert!(
        err.contains("step \"x\": builder bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi: this repository has no such root file system"),
        "{err}"
    );
    // A content input that is not here.
    let d = tree(
        &r,
        "nocontent",
        r#"
[step.x]
builder = "host"
command = ["true"]
inputs = { "in" = "/ipfs/bafkreie3zw4d5ngsbpe2kuiarghvpl2bldcfz2cxzjazvl4kzjbljmiv5y" }
outputs = ["x"]
"#,
        &[],
    );
    let (_, err, ok) = build(&r, &[&d]);
    assert!(!ok);
    assert!(err.contains("step \"x\": input \"in\": bafkreie3zw4d5ngsbpe2kuiarghvpl2bldcfz2cxzjazvl4kzjbljmiv5y is not in this repository"), "{err}");
    // A fixed-output step whose output has another hash.
    let d = tree(
        &r,
        "fixed",
        r#"
[step.fetch]
builder = "host"
command = ["sh", "-c", "echo not what was promised > f"]
outputs = ["f"]
output_hash = "bafkreie3zw4d5ngsbpe2kuiarghvpl2bldcfz2cxzjazvl4kzjbljmiv5y"
"#,
        &[],
    );
    let (_, err, ok) = build(&r, &[&d]);
    assert!(!ok);
    assert!(
        err.contains("step \"fetch\": output \"f\" is bafkrei")
            && err.contains("not the declared output_hash"),
        "{err}"
    );
}

#[test]
fn check_reports_reproducibility() {
    let r = Repo::new();
    let d = tree(
        &r,
        "src",
        r#"
[step.same]
builder = "host"
command = ["sh", "-c", "echo stable > out"]
outputs = ["out"]

[step.clock]
builder = "host"
command = ["sh", "-c", "date +%s%N > out"]
outputs = ["out"]
"#,
        &[],
    );
    let (first, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    let (again, err, ok) = build(&r, &[&d, "--check"]);
    assert!(!ok, "a non-reproducible step must fail --check");
    assert!(err.contains("[same] reproducible"), "{err}");
    assert!(
        err.contains("[clock] NOT reproducible: out differ"),
        "{err}"
    );
    // The cached result stays what it was.
    assert_eq!(
        output_of(&first, "clock:out"),
        output_of(&build(&r, &[&d]).0, "clock:out")
    );
    assert_ne!(
        output_of(&first, "clock:out"),
        output_of(&again, "clock:out")
    );
}

/// The record of the newest build, as `kiln builds` lists it.
fn newest_record(r: &Repo) -> String {
    r.ok(&["builds", "-n", "1"])
        .split_whitespace()
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn pruning_the_history_releases_old_records_and_leaves_other_pins() {
    let r = Repo::new();
    let recipe = r#"
[step.copy]
builder = "host"
command = ["sh", "-c", "cat in.txt > out; echo copied"]
inputs = { "in.txt" = "in.txt" }
outputs = ["out"]
"#;
    let d = tree(&r, "src", recipe, &[("in.txt", "one\n")]);
    let mut outs = Vec::new();
    let mut records = Vec::new();
    for text in ["one\n", "two\n", "three\n"] {
        write(&r.path("src/in.txt"), text);
        let (out, err, ok) = build(&r, &[&d]);
        assert!(ok && err.contains("1 step done (0 cached)"), "{err}");
        outs.push(output_of(&out, "copy:out"));
        records.push(newest_record(&r));
    }
    // The first output is the user's too.
    r.ok(&["pin", "add", &outs[0], "--name", "mine"]);
    // No rule: refused, nothing removed.
    let o = r.run(&["builds", "prune"]);
    let e = text(&o.stderr);
    assert!(!o.status.success(), "{e}");
    assert!(e.contains("--keep") && e.contains("--older-than"), "{e}");
    assert!(
        r.fails(&["builds", "prune", "--older-than", "soon"])
            .contains("bad duration")
    );
    assert_eq!(
        r.ok(&["builds", "prune", "--older-than", "1d"]),
        "no build to prune (older than 1d)\n"
    );
    assert_eq!(r.ok(&["builds"]).lines().count(), 4);

    let out = r.ok(&["builds", "prune", "--keep", "1"]);
    assert_eq!(
        out,
        "removed 2 builds from the history; 2 records and logs are no longer kept, 2 cached results forgotten\nrun `kiln gc` to free their space\n"
    );
    let left = r.ok(&["builds"]);
    assert_eq!(left.lines().count(), 2, "{left}");
    assert!(left.contains(&records[2]), "{left}");
    let pins = r.ok(&["pin", "ls"]);
    assert_eq!(pins.matches(" build copy\n").count(), 1, "{pins}");
    assert!(pins.contains(" mine\n"), "{pins}");
    let events = r.ok(&["events"]);
    assert!(
        events.contains("builds prune") && events.contains("keep 1: 2 builds removed"),
        "{events}"
    );
    // GC frees the old records and logs; the user's pin and the kept build stay. The
    // inputs written out for the sandbox whose content went with them go too.
    let written = |r: &Repo| {
        std::fs::read_dir(r.home().join("builds/content"))
            .unwrap()
            .count()
    };
    assert_eq!(written(&r), 3);
    let gc = r.ok(&["gc"]);
    assert!(gc.contains("build directories nothing refers to"), "{gc}");
    assert!(written(&r) < 3);
    assert!(!r.run(&["record", &records[0]]).status.success());
    assert!(!r.run(&["record", &records[1]]).status.success());
    assert_eq!(cat(&r, &outs[0]), "one\n");
    assert_eq!(cat(&r, &outs[2]), "three\n");
    assert!(r.ok(&["record", &records[2]]).contains("signature valid"));
    // A forgotten result is built again; the kept one is answered from the cache.
    write(&r.path("src/in.txt"), "two\n");
    let (_, err, ok) = build(&r, &[&d]);
    assert!(ok && err.contains("1 step done (0 cached)"), "{err}");
    write(&r.path("src/in.txt"), "three\n");
    let (_, err, ok) = build(&r, &[&d]);
    assert!(ok && err.contains("1 step done (1 cached)"), "{err}");
}

#[test]
fn cache_directories_are_kept_between_builds() {
    let r = Repo::new();
    let recipe = r#"
[step.count]
builder = "host"
command = ["sh", "-c", "n=$(cat cache/n 2>/dev/null || echo 0); n=$((n+1)); mkdir -p cache; echo $n > cache/n; cat src > out"]
inputs = { "src" = "src.txt" }
outputs = ["out"]
cache = ["cache"]
"#;
    let d = tree(&r, "src", recipe, &[("src.txt", "one\n")]);
    let (_, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    write(&r.path("src/src.txt"), "two\n");
    let (_, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    // The second run saw the first run's cache: the record holds the cache dir with n = 2.
    let record = newest_record(&r);
    let shown = r.ok(&["record", &record]);
    let cache_cid = shown
        .lines()
        .find_map(|l| l.strip_prefix("cache         "))
        .and_then(|l| l.strip_suffix(" cache"))
        .unwrap_or_else(|| panic!("no cache dir in {shown}"));
    assert_eq!(r.ok(&["cat", &format!("{cache_cid}/n")]), "2\n");
}

#[test]
fn get_finds_or_builds_an_action() {
    let r = Repo::new();
    let d = tree(
        &r,
        "src",
        r#"
[step.greet]
builder = "host"
command = ["sh", "-c", "mkdir out; cp in out/greeting; printf '#!/bin/sh\necho run\n' > out/tool; chmod +x out/tool"]
inputs = { "in" = "in.txt" }
outputs = ["out"]

[step.slow]
builder = "host"
command = ["sleep", "30"]
outputs = ["never"]
"#,
        &[("in.txt", "hi\n")],
    );
    let plan = r.ok(&["build", "--plan", &d]);
    let key = |step: &str| {
        plan.lines()
            .find_map(|l| l.strip_prefix(&format!("{step} ")))
            .unwrap()
            .to_string()
    };
    // Not built yet: get builds it (the plan stored the action and its source).
    let dest = r.path("got");
    let o = r.run(&["get", &key("greet"), "-o", &dest.to_string_lossy()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("Built action"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("greeting")).unwrap(),
        "hi\n"
    );
    // Executable outputs come out executable.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dest.join("tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "{mode:o}");
    // Now cached; a path below the output works too.
    let dest2 = r.path("g2");
    let o = r.run(&[
        "get",
        &format!("{}/out/greeting", key("greet")),
        "-o",
        &dest2.to_string_lossy(),
    ]);
    assert!(
        text(&o.stderr).contains("Found action"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&dest2).unwrap(), "hi\n");
    // A build that cannot finish in time.
    let t = std::time::Instant::now();
    let o = r.run(&[
        "get",
        &key("slow"),
        "--timeout",
        "1s",
        "-o",
        &r.path("g3").to_string_lossy(),
    ]);
    assert!(!o.status.success());
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "action {}: not built within the time limit",
            key("slow")
        )),
        "{err}"
    );
    // An action nobody knows.
    let e = r.fails(&[
        "get",
        "bafyreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ]);
    assert!(e.contains("this repository has no such action"), "{e}");
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_examples_build() {
    let r = Repo::new();
    // 1. The C hello-world, compiled and run in the sandbox.
    let hello = workspace().join("examples/hello-c");
    let (out, err, ok) = build(&r, &[&hello.to_string_lossy()]);
    assert!(ok, "{err}");
    assert_eq!(
        cat(&r, &output_of(&out, "run:out.txt")),
        "hello from a kiln build\n"
    );
    let (out2, err2, ok) = build(
        &r,
        &[&hello.to_string_lossy(), "--param", "greeting=bonjour"],
    );
    assert!(ok, "{err2}");
    assert_eq!(
        cat(&r, &output_of(&out2, "run:out.txt")),
        "bonjour from a kiln build\n"
    );
    let bin = r.path("hello");
    r.ok(&[
        "get",
        &output_of(&out, "compile:out/hello"),
        "-o",
        &bin.to_string_lossy(),
    ]);
    let o = std::process::Command::new(&bin).output().unwrap();
    assert_eq!(text(&o.stdout), "hello from a kiln build\n");
    // 2. kiln's docs as a static site.
    let (out, err, ok) = build(&r, &[&workspace().to_string_lossy()]);
    assert!(ok, "{err}");
    let site = output_of(&out, "docs:site");
    let index = r.ok(&["cat", &format!("{site}/index.html")]);
    assert!(
        index.contains("<!doctype html>") && index.contains("ARCHITECTURE.html"),
        "{index}"
    );
    let listing = r.ok(&["ls", &format!("{site}/crates/kiln-build")]);
    assert!(listing.contains("RECIPES.html"), "{listing}");
}

#[test]
fn watch_rebuilds_when_a_source_changes() {
    use std::io::BufRead;
    let r = Repo::new();
    let d = tree(
        &r,
        "src",
        r#"
[step.copy]
builder = "host"
command = ["cp", "in", "out"]
inputs = { "in" = "in.txt" }
outputs = ["out"]
"#,
        &[("in.txt", "one\n")],
    );
    let mut child = r
        .cmd()
        .args(["build", "--watch", "--interval", "100ms", &d])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let cid1 = output_of(&first, "copy:out");
    assert_eq!(cat(&r, &cid1), "one\n");
    // A file that no input covers changes: seen, and nothing is built (no new line on
    // stdout before the next).
    write(&r.path("src/unrelated.txt"), "x");
    let seen = said
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.starts_with("Change in "))
        .expect("the watcher saw the change");
    assert!(
        seen.ends_with(": no step's inputs changed, nothing to build"),
        "{seen}"
    );
    write(&r.path("src/in.txt"), "two\n");
    let second = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let cid2 = output_of(&second, "copy:out");
    assert_eq!(cat(&r, &cid2), "two\n");
    let builds = r.ok(&["builds"]);
    assert_eq!(
        builds.lines().filter(|l| l.contains("built")).count(),
        2,
        "{builds}"
    );
}

#[test]
fn a_step_runs_on_a_root_file_system_from_the_store() {
    let Some(busybox) = common::needs::busybox("a_step_runs_on_a_root_file_system_from_the_store")
    else {
        return;
    };
    let r = Repo::new();
    let fs = r.path("rootfs");
    std::fs::create_dir_all(fs.join("bin")).unwrap();
    std::fs::copy(busybox, fs.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "echo", "touch", "id", "wc"] {
        std::os::unix::fs::symlink("busybox", fs.join("bin").join(applet)).unwrap();
    }
    let rootfs = r.ok(&[
        "rootfs",
        "import",
        &fs.to_string_lossy(),
        "--name",
        "busybox",
    ]);
    let rootfs = rootfs.trim();
    let d = tree(
        &r,
        "src",
        &format!(
            r#"
[step.inside]
builder = "{rootfs}"
command = ["sh", "-c", "ls / > out; id -u >> out; cat in | wc -c >> out; touch /bin/x 2>> out; true"]
inputs = {{ "in" = "in.txt" }}
outputs = ["out"]
env = {{ PATH = "/bin" }}
"#
        ),
        &[("in.txt", "12345\n")],
    );
    let (out, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    let said = cat(&r, &output_of(&out, "inside:out"));
    let lines: Vec<&str> = said.lines().collect();
    // Only the root fs's own entries and what the sandbox adds; no host /usr.
    assert_eq!(&lines[..5], ["bin", "dev", "etc", "proc", "tmp"], "{said}");
    assert_eq!(lines[5], "work", "{said}");
    assert_eq!(lines[6], "1000", "{said}");
    assert_eq!(lines[7].trim(), "6", "{said}");
    assert!(said.contains("Read-only file system"), "{said}");
    let latest = r.ok(&["builds", "-n", "1"]);
    let record = latest.split_whitespace().last().unwrap();
    let shown = r.ok(&["record", record]);
    assert!(shown.contains("host builder  no"), "{shown}");
}

/// A git repository at `dir` whose `main` has one commit with `a` = `first`; the commit.
fn git_repo(dir: &Path, first: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git_commit(dir, first)
}

/// Commit `a` = `content` on the current branch; the commit.
fn git_commit(dir: &Path, content: &str) -> String {
    write(&dir.join("a"), content);
    git(dir, &["add", "a"]);
    git(dir, &["commit", "-q", "-m", content.trim()]);
    git(dir, &["rev-parse", "HEAD"])
}

const GIT_STEP: &str = r#"
[step.copy]
builder = "host"
command = ["cp", "src/a", "out"]
inputs = { "src" = "git+file://REPO#main" }
outputs = ["out"]
"#;

#[test]
fn git_inputs_rebuild_when_the_ref_moves_and_never_for_the_same_commit() {
    let r = Repo::new();
    let repo = r.path("repo");
    let c1 = git_repo(&repo, "one\n");
    let d = tree(
        &r,
        "src",
        &GIT_STEP.replace("REPO", &repo.to_string_lossy()),
        &[],
    );
    let (out1, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    assert_eq!(cat(&r, &output_of(&out1, "copy:out")), "one\n");
    assert!(
        err.contains(&format!(
            "[copy] input \"src\": git+file://{}#main at {c1} (refs/heads/main)",
            repo.display()
        )),
        "{err}"
    );
    assert!(r.home().join("builds/git/trees").join(&c1).is_dir());
    let plan1 = r.ok(&["build", "--plan", &d]);
    // The branch moves: a new key, a new output.
    let c2 = git_commit(&repo, "two\n");
    let (plan2, err) = {
        let o = r.run(&["build", "--plan", &d]);
        (text(&o.stdout), text(&o.stderr))
    };
    assert!(err.contains(&format!("at {c2}")), "{err}");
    let (out2, err, ok) = build(&r, &[&d]);
    assert!(ok && err.contains("1 step done (0 cached)"), "{err}");
    assert_eq!(cat(&r, &output_of(&out2, "copy:out")), "two\n");
    assert_ne!(plan2, plan1);
    // Back to the first commit: the first key, answered from the cache, the first output.
    git(&repo, &["reset", "-q", "--hard", &c1]);
    assert_eq!(r.ok(&["build", "--plan", &d]), plan1);
    let (out3, err, ok) = build(&r, &[&d]);
    assert!(ok && err.contains("1 step done (1 cached)"), "{err}");
    assert_eq!(out3, out1);
    // Nothing refers to the checkouts and the fetch cache once no plan lives: GC takes
    // them, and the next build fetches again, to the same key.
    let git_dir = r.home().join("builds/git");
    assert!(std::fs::read_dir(git_dir.join("repos")).unwrap().count() > 0);
    let gc = r.ok(&["gc"]);
    assert!(gc.contains("build directories nothing refers to"), "{gc}");
    assert!(!git_dir.join("trees").join(&c1).exists());
    assert!(!git_dir.join("trees").join(&c2).exists());
    let left: Vec<_> = std::fs::read_dir(git_dir.join("repos"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let (out4, err, ok) = build(&r, &[&d]);
    assert!(ok && err.contains("1 step done (1 cached)"), "{err}");
    assert_eq!(out4, out1);
    assert!(git_dir.join("trees").join(&c1).is_dir());
    // Errors: one line naming the file, step and input.
    write(
        &r.path("src/kiln.toml"),
        &GIT_STEP
            .replace("REPO", &repo.to_string_lossy())
            .replace("#main", "#nope"),
    );
    let e = r.fails(&["build", &d]);
    assert!(
        e.contains(&format!(
            "kiln.toml: step \"copy\": input \"src\": git+file://{}#nope: no branch or tag \"nope\" in file://{}",
            repo.display(),
            repo.display()
        )),
        "{e}"
    );
    write(
        &r.path("src/kiln.toml"),
        &GIT_STEP.replace("REPO", &r.path("nothing").to_string_lossy()),
    );
    let e = r.fails(&["build", &d]);
    assert!(
        e.contains("step \"copy\": input \"src\": git+file://") && e.contains("git ls-remote: "),
        "{e}"
    );
    // Without git on PATH.
    write(
        &r.path("src/kiln.toml"),
        &GIT_STEP.replace("REPO", &repo.to_string_lossy()),
    );
    std::fs::create_dir_all(r.path("empty")).unwrap();
    let o = r
        .cmd()
        .args(["build", &d])
        .env("PATH", r.path("empty"))
        .output()
        .unwrap();
    let e = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.trim_end().lines().count() == 1
            && e.contains("input \"src\"")
            && e.contains("the git command is not installed or not on PATH"),
        "{e}"
    );
}

#[test]
fn watch_checks_git_inputs_on_the_schedule() {
    use std::io::BufRead;
    let r = Repo::new();
    let repo = r.path("repo");
    git_repo(&repo, "one\n");
    let d = tree(
        &r,
        "src",
        &format!(
            "schedule = \"@every 1s\"\n{}",
            GIT_STEP.replace("REPO", &repo.to_string_lossy())
        ),
        &[],
    );
    let mut child = r
        .cmd()
        .args(["build", "--watch", "--interval", "100ms", &d])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    let wait_for = |what: &str| {
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(l) if l.contains(what) => return l,
                Ok(l) => seen.push(l),
                Err(_) => panic!("no {what:?} on stderr: {seen:#?}"),
            }
        }
    };
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(cat(&r, &output_of(&first, "copy:out")), "one\n");
    // Nothing moved: the scheduled check says so.
    let quiet = wait_for("Scheduled check (@every 1s): nothing new");
    assert!(quiet.contains("#main at "), "{quiet}");
    // The branch moves: at the next scheduled time it is built.
    git_commit(&repo, "two\n");
    let second = lines.next().unwrap().unwrap();
    let said = wait_for("Scheduled check: ");
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        said.contains("moved") && said.ends_with("building"),
        "{said}"
    );
    assert_eq!(cat(&r, &output_of(&second, "copy:out")), "two\n");
}

#[test]
fn a_killed_build_leaves_nothing_behind_and_the_next_one_works() {
    use std::io::BufRead;
    let r = Repo::new();
    let recipe = |cmd: &str| {
        format!(
            r#"
[step.slow]
builder = "host"
command = ["sh", "-c", "{cmd}"]
outputs = ["out"]
"#
        )
    };
    let d = tree(
        &r,
        "src",
        &recipe("echo started; sleep 4321; echo x > out"),
        &[],
    );
    let mut child = r
        .cmd()
        .args(["build", "--no-daemon", &d])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(err.any(|l| l.unwrap().contains("[slow] started")));
    child.kill().unwrap();
    let _ = child.wait();
    common::eventually("no process of the step left", 10, || {
        sleepers("4321").is_empty()
    });
    // The next kiln to open the builds clears up: the step is marked interrupted and its
    // work directory is gone; the store is consistent.
    let builds = r.ok(&["builds"]);
    assert!(
        builds.contains("interrupted: kiln stopped while it ran"),
        "{builds}"
    );
    let left: Vec<_> = std::fs::read_dir(r.home().join("builds/run"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let v = r.run(&["repo", "verify"]);
    assert!(v.status.success(), "{}", text(&v.stdout));
    // And building works again.
    write(&r.path("src/kiln.toml"), &recipe("echo done > out"));
    let (out, err, ok) = build(&r, &[&d]);
    assert!(ok, "{err}");
    assert_eq!(cat(&r, &output_of(&out, "slow:out")), "done\n");
}
