//! A repository written by an earlier kiln opens with this one, migrated in one transaction
//! with nothing lost; `kill -9` during the migration leaves the old schema or the new, never
//! a mix. The repository is a fixture made by the 0.1.0 release
//! (`tests/fixtures/make-repo.sh`, which says how; its `.expect` file is what that release
//! printed of it).

mod common;

use common::Repo;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The newest schema version of `store.db`, which every migration ends at.
const NEWEST: i64 = 9;

#[test]
fn the_newest_version_here_is_the_stores() {
    assert_eq!(NEWEST, kiln_store::schema::newest_store_version());
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/repo-0.1.0-schema1"
);

/// A fresh copy of the fixture repository, as `r.home()`.
fn unpack(r: &Repo) {
    let st = Command::new("tar")
        .args(["-xzf", &format!("{FIXTURE}.tar.gz"), "-C"])
        .arg(r.dir.path())
        .status()
        .expect("tar");
    assert!(st.success(), "unpacking the fixture");
}

/// The fixture's `.expect` file: named CIDs, and each section's lines.
struct Expect {
    cids: BTreeMap<String, String>,
    sections: BTreeMap<String, Vec<String>>,
}

fn expect() -> Expect {
    let text = std::fs::read_to_string(format!("{FIXTURE}.expect")).expect("expect file");
    let (mut cids, mut sections) = (BTreeMap::new(), BTreeMap::<String, Vec<String>>::new());
    let mut section = None;
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("## ") {
            section = Some(s.to_string());
        } else if line.starts_with('#') {
        } else if let Some(s) = &section {
            sections
                .entry(s.clone())
                .or_default()
                .push(line.to_string());
        } else if let Some((k, v)) = line.split_once(' ') {
            cids.insert(k.to_string(), v.to_string());
        }
    }
    Expect { cids, sections }
}

/// What version 1's pin names become: `(owner, name)`.
fn owned(name: Option<&str>) -> (String, Option<String>) {
    let Some(n) = name else {
        return ("local".into(), None);
    };
    for (prefix, owner, renamed) in [
        ("build:", "build", ""),
        ("build-failed:", "build", "failed:"),
        ("build-check:", "build", "check:"),
        ("rootfs:", "rootfs", ""),
    ] {
        if let Some(rest) = n.strip_prefix(prefix) {
            return (owner.into(), Some(format!("{renamed}{rest}")));
        }
    }
    if n.starts_with("schedule:") {
        return (n.into(), None);
    }
    ("local".into(), Some(n.into()))
}

/// `(user_version, state.schema, whether pins has an owner column, pin rows)` of a store.
fn schema_of(db: &Path) -> (i64, i64, bool, i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    let uv: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let schema: i64 = c
        .query_row("SELECT schema FROM state", [], |r| r.get(0))
        .unwrap();
    let mut cols = c
        .prepare("SELECT name FROM pragma_table_info('pins')")
        .unwrap();
    let names: Vec<String> = cols
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM pins", [], |r| r.get(0))
        .unwrap();
    let leftover: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'pins2'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leftover, 0, "a half-made table is visible");
    (uv, schema, names.iter().any(|n| n == "owner"), n)
}

#[test]
fn a_repository_from_kiln_0_1_0_opens_migrated_with_nothing_lost() {
    let r = Repo::new();
    unpack(&r);
    let want = expect();
    let db = r.home().join("store.db");
    assert_eq!(schema_of(&db).0, 0, "the fixture is a version 1 store");
    assert_eq!(schema_of(&db).1, 1);

    // The first command migrates, and says so once.
    let o = r.run(&["pin", "ls"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains(&format!(
            "from schema version 1 to {NEWEST} (written by an earlier kiln)"
        )),
        "{said}"
    );
    let listed = String::from_utf8(o.stdout).unwrap();
    let (uv, schema, owners, _) = schema_of(&db);
    assert_eq!((uv, schema, owners), (NEWEST, NEWEST, true));
    let again = r.run(&["pin", "ls"]);
    assert!(String::from_utf8_lossy(&again.stderr).is_empty());
    assert_eq!(String::from_utf8(again.stdout).unwrap(), listed);

    // Every pin is there, in order, the prefixes of version 1 now owners.
    let old = &want.sections["pin ls"];
    let new: Vec<&str> = listed.lines().collect();
    assert_eq!(new.len(), old.len(), "{listed}");
    for (was, is) in old.iter().zip(&new) {
        let mut f = was.splitn(3, ' ');
        let (cid, mode, name) = (f.next().unwrap(), f.next().unwrap(), f.next());
        let (owner, name) = owned(name);
        let line = match name {
            Some(n) => format!("{cid} {mode} {owner} {n}"),
            None => format!("{cid} {mode} {owner}"),
        };
        assert_eq!(*is, line);
    }

    // The content, the build history, the schedule and the records are all there.
    assert_eq!(r.ok(&["cat", &want.cids["v0"]]), "hello, v0\n");
    assert_eq!(
        r.ok(&["cat", &format!("{}/sub/b", want.cids["tree"])]),
        "two\n"
    );
    assert_eq!(r.ok(&["cat", &want.cids["loose"]]), "not pinned\n");
    r.ok(&["repo", "verify"]);
    let builds = r.ok(&["builds", "-n", "100"]);
    let rows: Vec<String> = builds
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<u32>().is_ok())
        })
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(rows, want.sections["builds"], "{builds}");
    let sched = r.ok(&["schedules"]);
    assert!(sched.contains("@every 1h"), "{sched}");
    for n in ["1", "2", "3"] {
        r.ok(&["record", n]);
    }
    assert_eq!(r.ok(&["log", "3"]), "about to fail\n");

    // GC keeps what is pinned, takes what is not.
    r.ok(&["gc"]);
    r.ok(&["repo", "verify"]);
    assert!(r.fails(&["cat", &want.cids["loose"]]).contains("not found"));
    assert_eq!(r.ok(&["cat", &format!("{}/a", want.cids["tree"])]), "one\n");
    for n in ["1", "2", "3"] {
        r.ok(&["record", n]);
    }

    // The defect pins with owners mend: the user's pin and unpin of a root file system's
    // root leave the root file system's pin, and GC keeps it.
    let rootfs = old
        .iter()
        .find(|l| l.ends_with(" rootfs:mini"))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    r.ok(&["pin", "add", &rootfs, "--name", "mine"]);
    let said = r.ok(&["pin", "rm", &rootfs]);
    assert_eq!(said, format!("unpinned {rootfs}; still pinned by rootfs\n"));
    let e = r.fails(&["pin", "rm", &rootfs]);
    assert!(
        e.contains("has no pin of local; it is pinned by rootfs"),
        "{e}"
    );
    r.ok(&["gc"]);
    assert_eq!(
        r.ok(&["cat", &format!("{rootfs}/bin/hi")]),
        "#!/bin/sh\necho hi\n"
    );
    let said = r.ok(&["pin", "rm", "--owner", "rootfs", &rootfs]);
    assert_eq!(said, format!("unpinned {rootfs}\n"));
}

/// A store from a newer kiln is refused with a clear error, and left as it was.
#[test]
fn a_repository_from_a_newer_kiln_is_refused() {
    let r = Repo::new();
    r.ok(&["init"]);
    let db = r.home().join("store.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = r.fails(&["pin", "ls"]);
    assert!(
        e.contains(&format!(
            "has schema version 99, newer than this kiln knows ({NEWEST})"
        )) && e.contains("written by a newer kiln"),
        "{e}"
    );
    assert_eq!(schema_of(&db).0, 99);
}

/// `kill -9` at many moments of a long migration (a version 1 store with 150,000 pins):
/// each time the store holds version 1 with every pin or the newest version with every pin, and
/// the next kiln finishes the job.
#[test]
fn kill_9_during_a_migration_leaves_the_old_schema_or_the_new() {
    const PINS: i64 = 150_000;
    let base = Repo::new();
    unpack(&base);
    let db = base.home().join("store.db");
    let (_, _, _, before) = schema_of(&db);
    {
        let mut c = rusqlite::Connection::open(&db).unwrap();
        let tx = c.transaction().unwrap();
        let mut ins = tx
            .prepare("INSERT INTO pins(cid, mode, name, created, seq) VALUES (?1, 1, ?2, 0, ?3)")
            .unwrap();
        for i in 0..PINS {
            let cid =
                kiln_core::cids::cid_of(cid::Version::V1, 0x55, format!("pin {i}").as_bytes());
            let name = if i % 3 == 0 {
                format!("build:step{i}")
            } else {
                format!("n{i}")
            };
            ins.execute(rusqlite::params![cid.to_bytes(), name, 1_000_000 + i])
                .unwrap();
        }
        drop(ins);
        tx.commit().unwrap();
    }
    let total = before + PINS;
    let copy = |to: &Path| {
        let st = Command::new("cp")
            .arg("-a")
            .arg(base.home())
            .arg(to)
            .status()
            .unwrap();
        assert!(st.success());
    };
    let migrate = |home: &Path| {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env("KILN_HOME", home)
            .args(["repo", "stat"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole migration takes here.
    let probe = tempfile::tempdir().unwrap();
    let home = probe.path().join("home");
    copy(&home);
    let t = Instant::now();
    assert!(migrate(&home).wait().unwrap().success());
    let whole = t.elapsed();
    assert_eq!(
        schema_of(&home.join("store.db")),
        (NEWEST, NEWEST, true, total)
    );

    let (mut old, mut new) = (0, 0);
    for round in 0..14u32 {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        copy(&home);
        let mut child = migrate(&home);
        // Across the migration, and twice well after it (a slower run than the probe still
        // ends by then).
        let at = if round < 12 {
            f64::from(round) / 12.0
        } else {
            3.0
        };
        std::thread::sleep(whole.mul_f64(at));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        match schema_of(&home.join("store.db")) {
            (0, 1, false, n) => {
                assert_eq!(n, total, "round {round}: pins lost");
                old += 1;
            }
            (v, s, true, n) if v == NEWEST && s == NEWEST => {
                assert_eq!(n, total, "round {round}: pins lost");
                new += 1;
            }
            other => panic!("round {round}: a mixed schema {other:?}"),
        }
        // The next kiln completes it.
        assert!(migrate(&home).wait().unwrap().success(), "round {round}");
        assert_eq!(
            schema_of(&home.join("store.db")),
            (NEWEST, NEWEST, true, total)
        );
    }
    eprintln!(
        "a migration of {total} pins took {whole:?}; killed before it committed {old} times, after {new}"
    );
    assert!(
        old > 0 && new > 0,
        "the kills missed the migration: {old} before, {new} after"
    );
}
