//! Recipes the daemon builds on their schedule: `kiln build --schedule` registers one whose
//! input is a branch of a real git repository; the daemon builds it once, builds nothing
//! while the branch stays, builds again when it moves, still has it after a restart, and
//! stops when it is removed.

mod common;

use common::daemon::{Daemon, request};
use common::{Repo, git, text, write};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Commit `a` = `content` on the current branch; the commit.
fn git_commit(dir: &Path, content: &str) -> String {
    write(&dir.join("a"), content.as_bytes());
    git(dir, &["add", "a"]);
    git(dir, &["commit", "-q", "-m", content.trim()]);
    git(dir, &["rev-parse", "HEAD"])
}

const RECIPE: &str = r#"
schedule = "@every 1s"

[step.copy]
builder = "host"
command = ["cp", "src/a", "out"]
inputs = { "src" = "git+file://REPO#main" }
outputs = ["out"]
"#;

fn get_json(d: &Daemon, path: &str) -> Value {
    let r = request(&d.api, "GET", path, &[]);
    assert_eq!(r.status, 200, "{path}: {}", text(&r.body));
    serde_json::from_slice(&r.body).unwrap()
}

/// The steps `kiln builds` lists as built (not answered from the cache).
fn built(r: &Repo) -> usize {
    r.ok(&["builds", "-n", "100"])
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("built"))
        .count()
}

/// Wait (at most 20 s) until `f` gives something.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The only schedule the daemon lists.
fn schedule(d: &Daemon) -> Value {
    let list = get_json(d, "/api/kiln/v1/schedules");
    let all = list["schedules"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{list}");
    all[0].clone()
}

/// Submission `id` of schedule 1 once it has ended: the content of its output `out`.
fn output_of(r: &Repo, d: &Daemon, id: &str) -> String {
    output_of_schedule(r, d, id, 1, "out")
}

/// Submission `id` of schedule `n` once it has ended: the content of its output `out`.
fn output_of_schedule(r: &Repo, d: &Daemon, id: &str, n: u64, out: &str) -> String {
    let sub = wait_for(&format!("{id} to end"), || {
        let v = get_json(d, &format!("/api/kiln/v1/builds/{id}"));
        (v["state"] != "running").then_some(v)
    });
    assert_eq!(sub["state"], "ok", "{sub}");
    assert_eq!(sub["schedule"], n, "{sub}");
    let cid = sub["result"]["done"][0]["outputs"][out].as_str().unwrap();
    r.ok(&["cat", cid])
}

#[test]
fn the_daemon_builds_a_recipe_on_its_schedule_when_its_branch_moves() {
    let r = Repo::new();
    let repo = r.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git_commit(&repo, "one\n");
    let src = r.path("src");
    write(
        &src.join("kiln.toml"),
        RECIPE.replace("REPO", &repo.to_string_lossy()).as_bytes(),
    );
    let dir = src.to_str().unwrap();

    // Only through a daemon; only a recipe with a schedule.
    let e = r.fails(&["build", "--schedule", dir]);
    assert!(e.contains("no daemon runs on this repository"), "{e}");
    let plain = r.path("plain");
    write(
        &plain.join("kiln.toml"),
        RECIPE
            .replace("schedule = \"@every 1s\"", "")
            .replace("REPO", &repo.to_string_lossy())
            .as_bytes(),
    );
    let e = r.fails(&["build", "--schedule", plain.to_str().unwrap()]);
    assert!(e.contains("kiln.toml: the recipe has no schedule"), "{e}");

    let d = Daemon::start(&r);
    let said = r.ok(&["build", "--schedule", dir]);
    assert!(
        said.starts_with(&format!(
            "Schedule 1 registered: {dir}/kiln.toml (@every 1s), next check 20"
        )),
        "{said}"
    );
    assert!(said.trim_end().ends_with(" UTC"), "{said}");
    let again = r.ok(&["build", "--schedule", dir]);
    assert!(
        again.starts_with("Schedule 1 was already registered"),
        "{again}"
    );
    let pins = r.ok(&["pin", "ls"]);
    assert!(pins.contains(" recursive schedule:1\n"), "{pins}");
    // The uploads' holds went once the schedule held the source (the second too, which
    // found the schedule already registered).
    assert!(!pins.contains("upload:"), "{pins}");

    // The first check builds it.
    let first = wait_for("the first build", || {
        schedule(&d)["last_submission"].as_str().map(str::to_string)
    });
    assert_eq!(output_of(&r, &d, &first), "one\n");
    assert_eq!(built(&r), 1);
    let s = schedule(&d);
    assert_eq!(s["last_outcome"], "built", "{s}");
    assert!(
        s["last_message"]
            .as_str()
            .unwrap()
            .contains("1 of 1 step not built yet: building as s1"),
        "{s}"
    );
    // Requested by the schedule, in the signed record.
    let rows = get_json(&d, "/api/kiln/v1/builds?limit=1");
    let number = rows["builds"][0]["id"].as_i64().unwrap();
    let b = get_json(&d, &format!("/api/kiln/v1/builds/{number}"));
    assert_eq!(b["record"]["requested_by"], "schedule 1 (@every 1s)", "{b}");

    // Nothing moves: checks find nothing new and nothing is built.
    let checked = s["last_check_ms"].as_u64().unwrap();
    let quiet = wait_for("two more checks", || {
        let s = schedule(&d);
        (s["last_check_ms"].as_u64().unwrap() >= checked + 2000).then_some(s)
    });
    assert_eq!(quiet["last_outcome"], "nothing new", "{quiet}");
    assert!(
        quiet["last_message"]
            .as_str()
            .unwrap()
            .starts_with("nothing new (git+file://"),
        "{quiet}"
    );
    assert_eq!(built(&r), 1);
    let listed = r.ok(&["schedules"]);
    assert!(
        listed.starts_with(&format!("    1  @every 1s  {dir}/kiln.toml\n")),
        "{listed}"
    );
    assert!(listed.contains("last build  s1"), "{listed}");
    let ui = request(&d.api, "GET", "/ui/builds", &[]);
    let page = text(&ui.body);
    assert!(
        page.contains("id=\"schedules\"") && page.contains("@every 1s"),
        "{page}"
    );

    // The branch moves: a new build, with the new content.
    git_commit(&repo, "two\n");
    let second = wait_for("a build after the branch moved", || {
        schedule(&d)["last_submission"]
            .as_str()
            .filter(|s| *s != first)
            .map(str::to_string)
    });
    assert_eq!(output_of(&r, &d, &second), "two\n");
    assert_eq!(built(&r), 2);
    let s = schedule(&d);
    assert!(
        s["last_message"].as_str().unwrap().contains(" moved "),
        "{s}"
    );

    // After a restart the schedule is still there; everything is cached, nothing is built.
    assert!(d.stop().success());
    let d = Daemon::start(&r);
    let listed = r.ok(&["schedules"]);
    assert!(listed.contains("@every 1s"), "{listed}");
    let after = wait_for("a check after the restart", || {
        let s = schedule(&d);
        s["last_message"]
            .as_str()
            .is_some_and(|m| m.contains("every step is cached"))
            .then_some(s)
    });
    assert_eq!(after["last_outcome"], "nothing new", "{after}");
    assert_eq!(built(&r), 2);

    // Removed: unpinned, and nothing more is built when the branch moves.
    let said = r.ok(&["schedules", "rm", "1"]);
    assert!(said.starts_with("Schedule 1 removed: "), "{said}");
    assert_eq!(r.ok(&["schedules"]), "");
    assert!(!r.ok(&["pin", "ls"]).contains("schedule:1"));
    let e = r.fails(&["schedules", "rm", "1"]);
    assert!(e.contains("no schedule 1"), "{e}");
    // A second schedule (another step on the same branch) is the witness: once it has
    // seen the branch move and checked again, the removed one would have built too.
    let other = r.path("other");
    write(
        &other.join("kiln.toml"),
        RECIPE
            .replace("[step.copy]", "[step.copy2]")
            .replace("\"out\"]", "\"out2\"]")
            .replace("REPO", &repo.to_string_lossy())
            .as_bytes(),
    );
    let said = r.ok(&["build", "--schedule", other.to_str().unwrap()]);
    assert!(said.starts_with("Schedule 2 registered: "), "{said}");
    let witness = wait_for("the second schedule's first build", || {
        schedule(&d)["last_submission"].as_str().map(str::to_string)
    });
    assert_eq!(output_of_schedule(&r, &d, &witness, 2, "out2"), "two\n");
    assert_eq!(built(&r), 3);
    git_commit(&repo, "three\n");
    let moved = wait_for("the second schedule's build after the move", || {
        schedule(&d)["last_submission"]
            .as_str()
            .filter(|s| *s != witness)
            .map(str::to_string)
    });
    assert_eq!(output_of_schedule(&r, &d, &moved, 2, "out2"), "three\n");
    let checked = schedule(&d)["last_check_ms"].as_u64().unwrap();
    wait_for("one more check of the second schedule", || {
        (schedule(&d)["last_check_ms"].as_u64().unwrap() >= checked + 1000).then_some(())
    });
    assert_eq!(
        built(&r),
        4,
        "only the second schedule built after the move"
    );
    assert!(d.stop().success());
}
