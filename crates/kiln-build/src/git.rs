//! Git inputs: `git+URL#REF`, a mutable reference resolved to a commit when a recipe is
//! planned, with the `git` command-line tool.
//!
//! [`resolve`] asks the repository which commit the ref names (`git ls-remote`; a ref that
//! is a full commit ID is taken as it is). [`checkout`] fetches that commit (depth 1) into a
//! bare cache repository, `DIR/repos/NAME.git`, and writes its tree out once under
//! `DIR/trees/COMMIT` (read-only, without `.git`), which is then hashed like any source
//! input: the action names the tree's content CID, never the URL, ref or commit.
//!
//! The checkout is git's own (`read-tree` + `checkout-index`) with the system and user git
//! configuration ignored, so the tree is a function of the commit alone: no smudge filters
//! (Git LFS files stay pointer files), no `core.autocrlf`; symlinks stay symlinks, the
//! executable bit is kept, submodules are empty directories.

use crate::hold::{Hold, LockFile};
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a recipe writes after `git+`: a repository and, optionally, a ref.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GitSource {
    /// The repository: a URL (`https://…`, `file:///…`, `ssh://…`, `host:path`) or a local
    /// path (relative paths are relative to the source tree).
    pub url: String,
    /// A branch, tag, full ref name (`refs/…`) or full commit ID; `None` is the
    /// repository's `HEAD`.
    pub reference: Option<String>,
}

/// A git input resolved to a commit, and where its tree is on this host. For information
/// (messages, `kiln build --plan`): none of it is part of an action key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPin {
    /// The input as written.
    pub source: GitSource,
    /// The repository as given to git (a relative path made absolute).
    pub remote: String,
    /// The full ref the reference resolved to (`refs/heads/main`, `HEAD`), or `None` when
    /// the reference is a commit ID.
    pub refname: Option<String>,
    /// The commit.
    pub commit: String,
    /// The commit's tree, written out read-only.
    pub tree: PathBuf,
    /// Holds on the tree and on the fetch cache it came from, for as long as the plan
    /// lives: `kiln gc` leaves them ([`crate::hold`]).
    pub holds: Vec<crate::hold::Hold>,
}

impl fmt::Display for GitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "git+{}", self.url)?;
        if let Some(r) = &self.reference {
            write!(f, "#{r}")?;
        }
        Ok(())
    }
}

impl GitSource {
    /// Parse what follows `git+` (`URL`, or `URL#REF`: the ref is after the last `#`).
    pub fn parse(s: &str) -> Result<GitSource, String> {
        let (url, reference) = match s.rsplit_once('#') {
            Some((u, r)) => (u, Some(r)),
            None => (s, None),
        };
        if url.is_empty() {
            return Err("no repository after git+ (expected git+URL#REF)".into());
        }
        if url.starts_with('-') || url.chars().any(char::is_control) {
            return Err(format!("{url:?} is not a repository URL or path"));
        }
        if let Some(r) = reference
            && !valid_ref(r)
        {
            return Err(format!(
                "{r:?} is not a branch, tag or commit (expected git+URL#REF, or git+URL for HEAD)"
            ));
        }
        Ok(GitSource {
            url: url.to_string(),
            reference: reference.map(str::to_string),
        })
    }

    /// The repository as git is given it: URLs as written, local paths absolute (relative
    /// ones below `root`, the source tree).
    pub fn remote(&self, root: &Path) -> String {
        if is_url(&self.url) {
            return self.url.clone();
        }
        let p = root.join(&self.url);
        std::path::absolute(&p)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    }

    /// The ref, `HEAD` when none is given.
    pub fn reference_or_head(&self) -> &str {
        self.reference.as_deref().unwrap_or("HEAD")
    }
}

/// A URL (`scheme://…`) or git's scp-like `[user@]host:path` form, as opposed to a path.
fn is_url(s: &str) -> bool {
    if s.contains("://") {
        return true;
    }
    // git's rule: a colon before any slash makes it host:path.
    match (s.find(':'), s.find('/')) {
        (Some(c), Some(sl)) => c < sl,
        (Some(_), None) => true,
        _ => false,
    }
}

/// A ref git could have made (`git check-ref-format`'s rules, roughly) or a commit ID;
/// nothing that could be read as an option.
fn valid_ref(r: &str) -> bool {
    !r.is_empty()
        && !r.starts_with(['-', '/', '.'])
        && !r.ends_with(['/', '.'])
        && !r.ends_with(".lock")
        && !r.contains("..")
        && !r.contains("//")
        && !r.contains("@{")
        && !r
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
}

/// A full commit ID (SHA-1 or SHA-256, hex).
pub fn is_commit_id(r: &str) -> bool {
    matches!(r.len(), 40 | 64) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The message when `git` cannot be started.
const NOT_INSTALLED: &str = "the git command is not installed or not on PATH (git inputs need it)";

/// Run git; its standard output, or one line saying why it failed.
fn git<I, S>(args: I, isolated: bool, index: Option<&Path>) -> Result<Vec<u8>, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("git");
    cmd.args(args)
        .stdin(Stdio::null())
        // Never wait for a password on the terminal.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        // A transfer that stalls (under 1 KB/s for a minute) fails instead of hanging the
        // plan; so does an SSH server that does not answer.
        .env("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
        .env("GIT_HTTP_LOW_SPEED_TIME", "60");
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        cmd.env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4",
        );
    }
    // Whatever git repository kiln itself may have been started in is not ours.
    for v in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
    ] {
        cmd.env_remove(v);
    }
    if isolated {
        // The tree must depend on the commit only: no filters or line-ending conversion
        // from the system's or the user's configuration.
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
    }
    if let Some(i) = index {
        cmd.env("GIT_INDEX_FILE", i);
    }
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            NOT_INSTALLED.to_string()
        } else {
            format!("cannot run git: {e}")
        }
    })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(git_message(&out.stderr, out.status))
}

/// The line of git's error output that says what went wrong.
fn git_message(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pick = lines
        .iter()
        .find_map(|l| l.strip_prefix("fatal: "))
        .or_else(|| lines.iter().find_map(|l| l.strip_prefix("error: ")))
        .or_else(|| lines.last().copied());
    match pick {
        Some(l) => l.to_string(),
        None => format!("git failed ({status})"),
    }
}

/// The commit `source`'s ref names in the repository `remote` (see [`GitSource::remote`]),
/// with the full ref it matched. A full commit ID is taken as it is (no network). Branch and
/// tag names are looked up as git does: `refs/tags/NAME`, then `refs/heads/NAME`; an
/// annotated tag gives the commit it tags.
pub fn resolve(source: &GitSource, remote: &str) -> Result<(Option<String>, String), String> {
    let r = source.reference_or_head();
    if is_commit_id(r) {
        return Ok((None, r.to_ascii_lowercase()));
    }
    let candidates: Vec<String> = if r == "HEAD" || r.starts_with("refs/") {
        vec![r.to_string()]
    } else {
        vec![format!("refs/tags/{r}"), format!("refs/heads/{r}")]
    };
    let mut args: Vec<String> = vec!["ls-remote".into(), "--".into(), remote.into()];
    for c in &candidates {
        args.push(c.clone());
        args.push(format!("{c}^{{}}"));
    }
    let out = git(&args, false, None).map_err(|e| format!("git ls-remote: {e}"))?;
    let listed: Vec<(&str, &str)> = std::str::from_utf8(&out)
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .collect();
    let find = |name: &str| {
        listed
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(sha, _)| sha.to_string())
    };
    for c in &candidates {
        if let Some(sha) = find(&format!("{c}^{{}}")).or_else(|| find(c)) {
            return Ok((Some(c.clone()), sha));
        }
    }
    let hint = if r.len() < 40 && r.len() >= 4 && r.bytes().all(|b| b.is_ascii_hexdigit()) {
        " (a commit must be given as its full ID)"
    } else {
        ""
    };
    if r == "HEAD" {
        return Err(format!("{remote} has no HEAD (name a branch: #main){hint}"));
    }
    Err(format!("no branch or tag {r:?} in {remote}{hint}"))
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The tree of `commit` from `remote`, written out read-only under `cache/trees/COMMIT`
/// (once: later calls find it there), with holds on it and on the cache repository for
/// `remote` (see [`crate::hold`]). The commit is fetched first if the cache repository
/// does not have it; `refname` (the ref it was resolved from) is fetched instead if the
/// server will not give a commit by its ID.
pub fn checkout(
    cache: &Path,
    remote: &str,
    refname: Option<&str>,
    commit: &str,
) -> Result<(PathBuf, Vec<Hold>), String> {
    let cache = std::path::absolute(cache).unwrap_or_else(|_| cache.to_path_buf());
    let trees = cache.join("trees");
    let tree = trees.join(commit);
    let repos = cache.join("repos");
    for d in [&trees, &repos] {
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let name = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, remote.as_bytes())
        .to_string();
    let repo = repos.join(format!("{name}.git"));
    let hold =
        |p: &Path| crate::hold::shared(p).map_err(|e| format!("holding {}: {e}", p.display()));
    // One process at a time fetches into a cache repository (and GC removes none while
    // one does).
    let _fetching = LockFile::take(&repos.join(format!("{name}.lock")))
        .map_err(|e| format!("locking the cache of {remote}: {e}"))?;
    loop {
        if let Some(t) = hold(&tree)? {
            // The repository is held too (if there is one), so GC leaves it while the
            // plan lives: a later check of the same remote fetches only what is new.
            let mut holds = vec![t];
            holds.extend(hold(&repo)?);
            return Ok((tree, holds));
        }
        fetch_and_write(&repo, &trees, &tree, remote, refname, commit)?;
        // Held at the top of the loop; should a GC take the new tree in between, it is
        // written again.
    }
}

/// Fetch `commit` into the cache repository `repo` if it lacks it and write its tree out
/// as `tree` (in `trees`), with the repository's lock held.
fn fetch_and_write(
    repo: &Path,
    trees: &Path,
    tree: &Path,
    remote: &str,
    refname: Option<&str>,
    commit: &str,
) -> Result<(), String> {
    if !repo.join("HEAD").exists() {
        let arg = repo.as_os_str();
        git(
            [
                OsStr::new("init"),
                OsStr::new("--bare"),
                OsStr::new("--quiet"),
                arg,
            ],
            true,
            None,
        )
        .map_err(|e| format!("git init {}: {e}", repo.display()))?;
    }
    let git_dir = format!("--git-dir={}", repo.display());
    let has = |c: &str| {
        git(
            [&git_dir, "cat-file", "-e", &format!("{c}^{{commit}}")],
            true,
            None,
        )
        .is_ok()
    };
    if !has(commit) {
        let keep = format!("+{commit}:refs/kiln/{commit}");
        let fetch = |what: &str| {
            git(
                [
                    git_dir.as_str(),
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--depth=1",
                    "--",
                    remote,
                    what,
                ],
                false,
                None,
            )
        };
        if let Err(by_id) = fetch(&keep) {
            let Some(refname) = refname else {
                return Err(format!("git fetch {commit}: {by_id}"));
            };
            fetch(refname).map_err(|e| format!("git fetch {refname}: {e}"))?;
            if !has(commit) {
                return Err(format!(
                    "{refname} moved while it was being fetched (it was {commit}); try again"
                ));
            }
            git(
                [
                    &git_dir,
                    "update-ref",
                    &format!("refs/kiln/{commit}"),
                    commit,
                ],
                true,
                None,
            )
            .map_err(|e| format!("git update-ref: {e}"))?;
        }
    }
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = trees.join(format!(".tmp-{}-{seq}", std::process::id()));
    let index = trees.join(format!(".tmp-{}-{seq}.index", std::process::id()));
    let made = write_tree(&git_dir, commit, &tmp, &index);
    let _ = std::fs::remove_file(&index);
    if let Err(e) = made {
        let _ = crate::exec::remove_tree(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, tree) {
        let _ = crate::exec::remove_tree(&tmp);
        if std::fs::symlink_metadata(tree).is_err() {
            return Err(format!("creating {}: {e}", tree.display()));
        }
    }
    Ok(())
}

/// Check `commit`'s tree out into `dest` (made here) and make it read-only.
fn write_tree(git_dir: &str, commit: &str, dest: &Path, index: &Path) -> Result<(), String> {
    std::fs::create_dir(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let work_tree = format!("--work-tree={}", dest.display());
    let base = [
        git_dir,
        work_tree.as_str(),
        "-c",
        "core.autocrlf=false",
        "-c",
        "core.symlinks=true",
    ];
    let run = |args: &[&str]| {
        let all: Vec<&str> = base.iter().chain(args).copied().collect();
        git(all, true, Some(index))
    };
    run(&["read-tree", commit]).map_err(|e| format!("git read-tree {commit}: {e}"))?;
    run(&["checkout-index", "--all", "--force"])
        .map_err(|e| format!("git checkout-index {commit}: {e}"))?;
    crate::content::seal(dest).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let s = GitSource::parse("file:///srv/repo.git#main").unwrap();
        assert_eq!(s.url, "file:///srv/repo.git");
        assert_eq!(s.reference.as_deref(), Some("main"));
        assert_eq!(s.to_string(), "git+file:///srv/repo.git#main");
        let h = GitSource::parse("https://example.org/x.git").unwrap();
        assert_eq!(h.reference, None);
        assert_eq!(h.reference_or_head(), "HEAD");
        assert_eq!(h.to_string(), "git+https://example.org/x.git");
        assert_eq!(
            GitSource::parse("../repo#v1.2")
                .unwrap()
                .remote(Path::new("/src/tree")),
            "/src/tree/../repo"
        );
        assert_eq!(
            GitSource::parse("/srv/repo#refs/heads/x")
                .unwrap()
                .remote(Path::new("/t")),
            "/srv/repo"
        );
        assert_eq!(
            GitSource::parse("git@host:x/y.git#main")
                .unwrap()
                .remote(Path::new("/t")),
            "git@host:x/y.git"
        );
        for bad in [
            "",
            "#main",
            "-uoops#main",
            "/r#",
            "/r#-x",
            "/r#a..b",
            "/r#a b",
            "/r#x.lock",
            "/r#a:b",
            "/r#a^",
        ] {
            assert!(GitSource::parse(bad).is_err(), "{bad}");
        }
        assert!(is_commit_id(&"a".repeat(40)));
        assert!(is_commit_id(&"0".repeat(64)));
        assert!(!is_commit_id("abc123"));
    }

    #[test]
    fn git_errors_are_one_line() {
        use std::os::unix::process::ExitStatusExt;
        let st = std::process::ExitStatus::from_raw(128 << 8);
        let m = git_message(
            b"fatal: './x' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure\n",
            st,
        );
        assert_eq!(m, "'./x' does not appear to be a git repository");
        assert_eq!(git_message(b"warning: w\nsomething\n", st), "something");
        assert!(git_message(b"", st).starts_with("git failed"));
    }
}
