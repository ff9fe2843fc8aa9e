//! Crash safety: `kill -9` of add, pin, gc and dag import at random moments, then
//! `kiln repo verify` must report a clean store and every pin made before must be intact.
//!
//! Iterations: `KILN_CRASH_ITERATIONS` (default 150); seed: `KILN_CRASH_SEED`.

mod common;

use common::{Repo, bytes, write};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Run a command and SIGKILL it after `after` unless it finished; returns its stdout and
/// run time if it exited successfully on its own.
fn run_and_maybe_kill(mut child: Child, after: Duration) -> Option<(String, Duration)> {
    let start = Instant::now();
    let deadline = start + after;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let took = start.elapsed();
            let out = child.wait_with_output().expect("output");
            return status
                .success()
                .then(|| (String::from_utf8_lossy(&out.stdout).to_string(), took));
        }
        if Instant::now() >= deadline {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn kill_9_at_random_moments_leaves_a_consistent_store() {
    let seed: u64 = std::env::var("KILN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6b69_6c6e);
    let iterations: usize = std::env::var("KILN_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    eprintln!("crash test: seed {seed}, {iterations} iterations");
    let mut rng = StdRng::seed_from_u64(seed);
    let r = Repo::new();

    // A CAR made in another repository, imported (and killed) repeatedly.
    let other = Repo::new();
    let tree = other.path("tree");
    for i in 0..20 {
        write(
            &tree.join(format!("f{i}")),
            &bytes(200_000 + i * 1000, 100 + i as u64),
        );
    }
    let car_root = other.add(&["-r", tree.to_str().unwrap()]);
    let car = other.path("tree.car");
    other.ok(&["dag", "export", &car_root, "-o", car.to_str().unwrap()]);

    // pins that must survive
    let mut pinned: BTreeSet<String> = BTreeSet::new();
    let mut unpinned: Vec<String> = Vec::new();
    let mut kills = 0;
    // How long each kind of operation takes when it completes: kills land inside that window.
    let mut typical: HashMap<usize, Duration> = HashMap::new();
    for i in 0..iterations {
        let op = rng.random_range(0..6);
        // Some operations run to completion (so there are pins to lose), most are killed.
        let window = typical
            .get(&op)
            .copied()
            .unwrap_or(Duration::from_millis(40));
        let delay = if rng.random_bool(0.35) {
            Duration::from_secs(120)
        } else {
            window.mul_f64(rng.random_range(0.0..1.0))
        };
        let (args, expect): (Vec<String>, Option<(String, u64, bool)>) = match op {
            0 | 1 => {
                let size = rng.random_range(1..12) * 1024 * 1024 + rng.random_range(0..1000);
                let seed = rng.random::<u64>();
                let f = r.path(&format!("in{i}"));
                write(&f, &bytes(size, seed));
                let pin = rng.random_bool(0.7);
                let mut a: Vec<String> = vec!["add".into(), "-Q".into()];
                if !pin {
                    a.push("--pin=false".into());
                }
                if rng.random_bool(0.3) {
                    a.push("--cid-version=0".into());
                }
                a.push(f.to_str().unwrap().into());
                (a, Some(("add".into(), seed, pin)))
            }
            2 => match unpinned.pop() {
                Some(c) => (
                    vec!["pin".into(), "add".into(), c.clone()],
                    Some((c, 0, true)),
                ),
                None => (vec!["gc".into()], None),
            },
            3 => (vec!["gc".into()], None),
            4 => (
                vec!["dag".into(), "import".into(), car.to_str().unwrap().into()],
                Some(("car".into(), 0, true)),
            ),
            _ => match pinned
                .iter()
                .nth(rng.random_range(0..pinned.len().max(1)))
                .cloned()
            {
                Some(c) if pinned.len() > 3 && rng.random_bool(0.5) => {
                    // the pin is uncertain once `pin rm` started
                    pinned.remove(&c);
                    (vec!["pin".into(), "rm".into(), c], None)
                }
                _ => (vec!["gc".into()], None),
            },
        };
        // Sometimes a gc runs concurrently with the operation, and is killed too.
        let concurrent_gc = if rng.random_bool(0.3) {
            Some(
                r.cmd()
                    .arg("gc")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn gc"),
            )
        } else {
            None
        };
        let child = r
            .cmd()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let result = run_and_maybe_kill(child, delay);
        if let Some(gc) = concurrent_gc {
            run_and_maybe_kill(gc, Duration::from_millis(rng.random_range(0..50)));
        }
        if let Some((_, took)) = &result {
            typical.insert(op, *took);
        }
        match (result.map(|(out, _)| out), expect) {
            (Some(out), Some((kind, _seed, pin))) if kind == "add" => {
                let cid = out.trim().to_string();
                if pin {
                    pinned.insert(cid);
                } else {
                    unpinned.push(cid);
                }
            }
            (Some(_), Some((kind, _, _))) if kind == "car" => {
                pinned.insert(car_root.clone());
            }
            (Some(_), Some((cid, _, _))) => {
                pinned.insert(cid);
            }
            (None, _) => kills += 1,
            _ => {}
        }

        // The store must be consistent after every step.
        let verify = r.run(&["repo", "verify"]);
        assert!(
            verify.status.success(),
            "iteration {i} ({args:?}): verify failed:\n{}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        let pins = r.ok(&["pin", "ls", "-q"]);
        for c in &pinned {
            assert!(
                pins.lines().any(|l| l == c),
                "iteration {i} ({args:?}): pin {c} lost"
            );
        }
    }
    // Everything pinned is still readable in full.
    for c in &pinned {
        let o = r.run(&["dag", "export", c]);
        assert!(
            o.status.success(),
            "{c} unreadable: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    eprintln!("crash test: {kills} kills, {} pins intact", pinned.len());
    assert!(
        kills > iterations / 5,
        "too few kills ({kills}) to mean anything"
    );
    assert!(
        !pinned.is_empty(),
        "no operation completed: nothing was checked"
    );
}
