//! Git inputs with real git repositories in temporary directories: refs resolved to commits,
//! trees hashed like source inputs, moved refs, schedules and errors.

use kiln_build::{ActionInput, Error, Plan, PlanOptions, Recheck, Recipe};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Run git in `dir` with a fixed identity and no user or system configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .expect("git is installed");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// A repository at `dir` with one commit on `main`: `a` ("one"), an executable `bin/run`, a
/// symlink `link -> a`. Returns the commit.
fn repo(dir: &Path) -> String {
    fs::create_dir_all(dir.join("bin")).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    fs::write(dir.join("a"), "one\n").unwrap();
    fs::write(dir.join("bin/run"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(dir.join("bin/run"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("a", dir.join("link")).unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "one"]);
    git(dir, &["rev-parse", "HEAD"])
}

fn commit_a(dir: &Path, text: &str) -> String {
    fs::write(dir.join("a"), text).unwrap();
    git(dir, &["commit", "-q", "-am", text.trim()]);
    git(dir, &["rev-parse", "HEAD"])
}

fn recipe(dir: &Path, source: &str, schedule: Option<&str>) -> Recipe {
    let text = format!(
        r#"{}
[step.use]
builder = "host"
command = ["true"]
inputs = {{ "src" = "{source}" }}
outputs = ["out"]
"#,
        schedule.map_or(String::new(), |s| format!("schedule = \"{s}\"\n"))
    );
    fs::create_dir_all(dir).unwrap();
    Recipe::parse(&dir.join("kiln.toml"), dir, &text).unwrap()
}

struct Setup {
    _tmp: tempfile::TempDir,
    repo: std::path::PathBuf,
    src: std::path::PathBuf,
    opts: PlanOptions,
}

fn setup() -> (Setup, String) {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    let c1 = repo(&repo_dir);
    let s = Setup {
        repo: repo_dir,
        src: tmp.path().join("src"),
        opts: PlanOptions {
            git_dir: Some(tmp.path().join("home/builds/git")),
        },
        _tmp: tmp,
    };
    (s, c1)
}

fn plan(s: &Setup, r: &Recipe) -> Plan {
    Plan::with_options(r, &BTreeMap::new(), &s.opts).unwrap()
}

fn src_cid(p: &Plan) -> String {
    let ActionInput::Content { cid, path } = &p.steps[0].action.inputs["src"] else {
        panic!("a git input is content");
    };
    assert!(path.is_empty());
    cid.to_string()
}

#[test]
fn a_ref_resolves_to_a_tree_hashed_like_a_source_input() {
    let (s, c1) = setup();
    let url = format!("git+file://{}#main", s.repo.display());
    let r = recipe(&s.src, &url, None);
    let p = plan(&s, &r);
    let step = &p.steps[0];
    let pin = &step.git["src"];
    assert_eq!(pin.commit, c1);
    assert_eq!(pin.refname.as_deref(), Some("refs/heads/main"));
    assert_eq!(pin.source.to_string(), url);
    // The tree is checked out once under git_dir/trees/COMMIT, without .git, read-only,
    // executable bit and symlink kept; the plan carries it as the input's host path.
    let tree = s.opts.git_dir.as_ref().unwrap().join("trees").join(&c1);
    assert_eq!(pin.tree, tree);
    assert_eq!(step.sources["src"], tree);
    assert!(!tree.join(".git").exists());
    assert_eq!(fs::read_to_string(tree.join("a")).unwrap(), "one\n");
    assert_eq!(fs::read_link(tree.join("link")).unwrap(), Path::new("a"));
    let mode = fs::metadata(tree.join("bin/run"))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0 && mode & 0o222 == 0, "{mode:o}");
    // The same key as a source input with the same content: the action holds only the
    // tree's CID (no URL, ref or commit).
    let copy = s.src.join("copy");
    fs::create_dir_all(copy.join("bin")).unwrap();
    fs::write(copy.join("a"), "one\n").unwrap();
    fs::write(copy.join("bin/run"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(copy.join("bin/run"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("a", copy.join("link")).unwrap();
    let local = plan(&s, &recipe(&s.src, "copy", None));
    assert_eq!(local.steps[0].key, step.key);
    assert_eq!(src_cid(&local), src_cid(&p));
    // Other spellings of the same commit: HEAD, the commit ID, a tag, an annotated tag, a
    // relative path, a plain path, a full ref.
    git(&s.repo, &["tag", "v1"]);
    git(&s.repo, &["tag", "-a", "-m", "annotated", "v1a"]);
    for source in [
        format!("git+{}", s.repo.display()),
        format!("git+{}#{c1}", s.repo.display()),
        format!("git+file://{}#v1", s.repo.display()),
        format!("git+file://{}#v1a", s.repo.display()),
        "git+../repo#main".to_string(),
        format!("git+{}#refs/heads/main", s.repo.display()),
    ] {
        let q = plan(&s, &recipe(&s.src, &source, None));
        assert_eq!(q.steps[0].key, step.key, "{source}");
        assert_eq!(q.steps[0].git["src"].commit, c1, "{source}");
    }
}

#[test]
fn a_moved_ref_changes_the_key_and_the_same_commit_never_does() {
    let (s, c1) = setup();
    let r = recipe(
        &s.src,
        &format!("git+file://{}#main", s.repo.display()),
        Some("@every 1s"),
    );
    assert_eq!(r.schedule.as_ref().unwrap().as_str(), "@every 1s");
    let first = plan(&s, &r);
    assert!(first.moved(&r).unwrap().is_empty());
    assert!(matches!(
        first.recheck(&r, &BTreeMap::new(), &s.opts).unwrap(),
        Recheck::Unchanged
    ));
    let c2 = commit_a(&s.repo, "two\n");
    let moved = first.moved(&r).unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!((moved[0].from.as_str(), moved[0].to.as_str()), (&*c1, &*c2));
    let Recheck::Moved {
        plan: second,
        changed,
        ..
    } = first.recheck(&r, &BTreeMap::new(), &s.opts).unwrap()
    else {
        panic!("main moved");
    };
    assert_eq!(changed, ["use"]);
    assert_ne!(second.steps[0].key, first.steps[0].key);
    assert_eq!(second.steps[0].git["src"].commit, c2);
    // A commit whose tree is the same as before: the ref moved, no key changed.
    git(&s.repo, &["commit", "-q", "--allow-empty", "-m", "empty"]);
    let Recheck::Moved { changed, .. } = second.recheck(&r, &BTreeMap::new(), &s.opts).unwrap()
    else {
        panic!("main moved");
    };
    assert!(changed.is_empty());
    // Back to the first commit: the first key again.
    git(&s.repo, &["reset", "-q", "--hard", &c1]);
    assert_eq!(plan(&s, &r).steps[0].key, first.steps[0].key);
    // A commit ID never moves.
    let pinned = recipe(&s.src, &format!("git+{}#{c1}", s.repo.display()), None);
    let p = plan(&s, &pinned);
    commit_a(&s.repo, "three\n");
    assert!(p.moved(&pinned).unwrap().is_empty());
}

fn plan_err(s: &Setup, source: &str) -> String {
    let r = recipe(&s.src, source, None);
    let e = Plan::with_options(&r, &BTreeMap::new(), &s.opts).unwrap_err();
    assert!(matches!(e, Error::Git { .. }), "{e:?}");
    let e = e.to_string();
    assert!(!e.contains('\n'), "{e}");
    let prefix = format!(
        "{}: step \"use\": input \"src\": {source}: ",
        s.src.join("kiln.toml").display()
    );
    assert!(e.starts_with(&prefix), "{e}");
    e[prefix.len()..].to_string()
}

#[test]
fn errors_name_the_file_step_and_input() {
    let (s, _) = setup();
    let repo = s.repo.display().to_string();
    let e = plan_err(&s, &format!("git+{repo}#nope"));
    assert_eq!(e, format!("no branch or tag \"nope\" in {repo}"));
    let e = plan_err(&s, &format!("git+{repo}#abc1234"));
    assert!(
        e.ends_with("(a commit must be given as its full ID)"),
        "{e}"
    );
    let e = plan_err(&s, &format!("git+{repo}-missing#main"));
    assert!(
        e.starts_with("git ls-remote: ") && e.contains("does not appear to be a git repository"),
        "{e}"
    );
    let e = plan_err(&s, &format!("git+{repo}#{}", "0".repeat(40)));
    assert!(
        e.starts_with(&format!("git fetch {}: ", "0".repeat(40))),
        "{e}"
    );
    // Plan::new has no directory to fetch into.
    let r = recipe(&s.src, &format!("git+{repo}#main"), None);
    let e = Plan::new(&r, &BTreeMap::new()).unwrap_err().to_string();
    assert!(e.contains("git inputs cannot be planned here"), "{e}");
}

#[test]
fn recipe_errors_for_git_ipns_and_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let parse = |text: &str| {
        Recipe::parse(&dir.path().join("kiln.toml"), dir.path(), text)
            .unwrap_err()
            .to_string()
    };
    let step = |source: &str| {
        format!(
            "[step.s]\nbuilder = \"host\"\ncommand = [\"true\"]\ninputs = {{ \"src\" = \"{source}\" }}\noutputs = [\"out\"]\n"
        )
    };
    let e = parse(&step("git+/srv/repo#a b"));
    assert!(
        e.ends_with("step \"s\": inputs.\"src\": bad git input \"git+/srv/repo#a b\": \"a b\" is not a branch, tag or commit (expected git+URL#REF, or git+URL for HEAD)"),
        "{e}"
    );
    let e = parse(&step("/ipns/example.org"));
    assert!(e.contains("IPNS names are not supported yet"), "{e}");
    let e = parse(&format!("schedule = \"*/5 * * *\"\n{}", step("src")));
    assert!(
        e.ends_with("kiln.toml: schedule: bad schedule: \"*/5 * * *\" has 4 fields; a schedule is MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK (e.g. \"*/5 * * * *\"), @daily, or @every 5m"),
        "{e}"
    );
    let e = parse(&format!("schedule = \"@hourly\"\n{}", step("src")));
    assert!(
        e.contains("schedule: the recipe has no mutable inputs"),
        "{e}"
    );
    let ok = Recipe::parse(
        &dir.path().join("kiln.toml"),
        dir.path(),
        &format!("schedule = \"*/5 * * * *\"\n{}", step("git+/srv/repo#main")),
    )
    .unwrap();
    assert_eq!(ok.schedule.unwrap().to_string(), "*/5 * * * *");
}
