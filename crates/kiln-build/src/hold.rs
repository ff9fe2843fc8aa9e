//! Holds on the directories builds keep beside the store: `builds/content/CID` (content
//! written out for the sandbox), `builds/git/trees/COMMIT` (checked-out commits) and
//! `builds/git/repos/NAME.git` (fetch caches). Whoever uses one holds it with a shared
//! `flock`; [`collect`] removes only what it can lock exclusively at once, so what a plan
//! or a running step uses is never taken from under it. A directory is removed by renaming
//! it out of the way first (`.gc-…`), so a half-removed one is never found by its name.

use crate::error::{Error, Result};
use kiln_core::Cid;
use kiln_store::Store;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A shared hold on a directory (or a file): it stays until every clone is dropped.
#[derive(Clone)]
pub struct Hold(#[allow(dead_code)] Option<Arc<File>>);

impl Hold {
    /// A hold on nothing (for what cannot be held, a symbolic link: GC never needs to wait
    /// for one).
    pub fn none() -> Hold {
        Hold(None)
    }
}

/// Open `path` itself for reading, never through a symbolic link (`None` for a link or
/// nothing).
fn open_nofollow(path: &Path) -> std::io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(None),
        Err(e) => Err(e),
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hold")
    }
}

/// Holds compare equal: they say nothing about what is held, only that it is.
impl PartialEq for Hold {
    fn eq(&self, _: &Hold) -> bool {
        true
    }
}
impl Eq for Hold {}

fn flock(f: &File, op: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor `f` owns.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// Whether `f` is still what `path` names (not renamed away or removed since it was opened).
fn still_there(f: &File, path: &Path) -> std::io::Result<bool> {
    let held = f.metadata()?;
    Ok(match std::fs::symlink_metadata(path) {
        Ok(now) => now.dev() == held.dev() && now.ino() == held.ino(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    })
}

/// Hold the existing directory `path` shared; `None` if there is none (or it was being
/// removed), for the caller to make it.
pub fn shared(path: &Path) -> std::io::Result<Option<Hold>> {
    let Some(f) = open_nofollow(path)? else {
        return Ok(None);
    };
    flock(&f, libc::LOCK_SH)?;
    if !still_there(&f, path)? {
        return Ok(None);
    }
    Ok(Some(Hold(Some(Arc::new(f)))))
}

/// An exclusive `flock` on the lock file `path` (made if absent), waiting for it; checked
/// to still be the file `path` names once taken, since [`collect`] removes lock files.
pub(crate) struct LockFile {
    _file: File,
}

impl LockFile {
    pub(crate) fn take(path: &Path) -> std::io::Result<LockFile> {
        loop {
            if let Some(l) = LockFile::lock(path, libc::LOCK_EX)? {
                return Ok(l);
            }
        }
    }

    /// The lock if nobody else has it now.
    fn try_take(path: &Path) -> std::io::Result<Option<LockFile>> {
        LockFile::lock(path, libc::LOCK_EX | libc::LOCK_NB)
    }

    /// Open (making) `path` and `flock` it with `op`: `None` if a non-blocking lock is
    /// taken, or if the file was removed in between.
    fn lock(path: &Path, op: libc::c_int) -> std::io::Result<Option<LockFile>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        if !flock(&file, op)? || !still_there(&file, path)? {
            return Ok(None);
        }
        Ok(Some(LockFile { _file: file }))
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The name a directory in `parent` is renamed to before it is removed.
fn doomed(parent: &Path, name: &str) -> PathBuf {
    parent.join(format!(
        ".gc-{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Remove the directory `name` in `parent` if nothing holds it: whether it went.
fn remove_unheld(parent: &Path, name: &str) -> Result<bool> {
    let path = parent.join(name);
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |source| Error::Io {
            context: format!("collecting {what}"),
            source,
        }
    };
    // A symbolic link is never held: it goes as it is.
    let f = open_nofollow(&path).map_err(io(&path))?;
    if let Some(f) = &f
        && (!flock(f, libc::LOCK_EX | libc::LOCK_NB).map_err(io(&path))?
            || !still_there(f, &path).map_err(io(&path))?)
    {
        return Ok(false);
    }
    let away = doomed(parent, name);
    match std::fs::rename(&path, &away) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(&path)(e)),
    }
    drop(f);
    let dir = std::fs::symlink_metadata(&away).is_ok_and(|m| m.is_dir());
    if dir {
        crate::exec::remove_tree(&away)
    } else {
        std::fs::remove_file(&away)
    }
    .map_err(io(&away))?;
    Ok(true)
}

/// Whether process `pid` is alive (on this host).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let signalled = unsafe { libc::kill(pid, 0) } == 0;
    signalled || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Leftovers: `.gc-…` (a collection cut off) and `.tmp-PID-…` of a process that is gone.
fn leftover(name: &str) -> bool {
    if name.starts_with(".gc-") {
        return true;
    }
    name.strip_prefix(".tmp-")
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| !alive(pid))
}

fn entries(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                context: format!("reading {}", dir.display()),
                source,
            });
        }
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn remove_leftover(dir: &Path, name: &str) -> bool {
    let p = dir.join(name);
    let gone = match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => crate::exec::remove_tree(&p),
        Ok(_) => std::fs::remove_file(&p),
        Err(_) => return false,
    };
    gone.is_ok()
}

/// What [`collect`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// `builds/content/CID` directories whose content the store no longer has.
    pub content: u64,
    /// Checked-out commits no plan holds.
    pub trees: u64,
    /// Fetch caches no plan holds.
    pub repos: u64,
}

impl Collected {
    /// Directories removed in all.
    pub fn total(&self) -> u64 {
        self.content + self.trees + self.repos
    }
}

/// Collect what the builds directory `dir` keeps that nothing refers to any longer: the
/// content written out for the sandbox whose CID `store` no longer has, and the git
/// checkouts and fetch caches no plan (of a build, or of a registered schedule while the
/// daemon runs) holds. What is in use is left for a later collection; leftovers of work
/// that was cut off go too.
pub fn collect(dir: &Path, store: &Store) -> Result<Collected> {
    let mut done = Collected::default();
    let content = dir.join("content");
    for name in entries(&content)? {
        if leftover(&name) {
            remove_leftover(&content, &name);
            continue;
        }
        let Ok(cid) = Cid::try_from(name.as_str()) else {
            continue;
        };
        if !store.has(&cid)? && remove_unheld(&content, &name)? {
            done.content += 1;
        }
    }
    let trees = dir.join("git").join("trees");
    for name in entries(&trees)? {
        if leftover(&name) {
            remove_leftover(&trees, &name);
        } else if crate::git::is_commit_id(&name) && remove_unheld(&trees, &name)? {
            done.trees += 1;
        }
    }
    let repos = dir.join("git").join("repos");
    for name in entries(&repos)? {
        if leftover(&name) {
            remove_leftover(&repos, &name);
            continue;
        }
        let Some(stem) = name.strip_suffix(".git") else {
            continue;
        };
        // Not while a checkout fetches into it; then not while a plan holds it.
        let lock = repos.join(format!("{stem}.lock"));
        let fetching = LockFile::try_take(&lock).map_err(|source| Error::Io {
            context: format!("locking {}", lock.display()),
            source,
        })?;
        let Some(fetching) = fetching else {
            continue;
        };
        if remove_unheld(&repos, &name)? {
            // Removed while locked: a checkout that opened it before finds it gone once
            // it has the lock, and makes another.
            let _ = std::fs::remove_file(&lock);
            done.repos += 1;
        }
        drop(fetching);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_store::StoreOptions;
    use std::os::unix::fs::PermissionsExt;

    /// A sealed (read-only) directory with a file, as builds leave them.
    fn sealed(p: &Path) {
        std::fs::create_dir_all(p).unwrap();
        std::fs::write(p.join("f"), b"x").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o555)).unwrap();
    }

    #[test]
    fn what_is_held_or_still_stored_stays_and_the_rest_goes() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(home.path(), StoreOptions::default()).unwrap();
        let dir = home.path().join("builds");
        let kept = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"here");
        let mut session = store.session().unwrap();
        session.put(&kept, b"here", &[]).unwrap();
        session.commit().unwrap();
        let gone = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"gone");
        let content = dir.join("content");
        sealed(&content.join(kept.to_string()));
        sealed(&content.join(gone.to_string()));
        std::fs::write(content.join("not-a-cid"), b"left alone").unwrap();
        let trees = dir.join("git/trees");
        let commit = "a".repeat(40);
        sealed(&trees.join(&commit));
        sealed(&trees.join(".gc-old-1-1"));
        sealed(&trees.join(".tmp-999999999-1"));
        let mine = format!(".tmp-{}-1", std::process::id());
        sealed(&trees.join(&mine));
        let repos = dir.join("git/repos");
        sealed(&repos.join("r.git"));

        // Everything in use: only leftovers go.
        let h1 = shared(&content.join(gone.to_string())).unwrap().unwrap();
        let h2 = shared(&trees.join(&commit)).unwrap().unwrap();
        let fetching = LockFile::take(&repos.join("r.lock")).unwrap();
        assert_eq!(collect(&dir, &store).unwrap(), Collected::default());
        assert!(!trees.join(".gc-old-1-1").exists());
        assert!(!trees.join(".tmp-999999999-1").exists());
        assert!(
            trees.join(&mine).exists(),
            "this process's work in progress"
        );
        // A plan's hold on a repository (shared) keeps it as well.
        drop(fetching);
        let h3 = shared(&repos.join("r.git")).unwrap().unwrap();
        assert_eq!(collect(&dir, &store).unwrap().repos, 0);

        drop((h1, h2.clone()));
        let c = collect(&dir, &store).unwrap();
        assert_eq!(
            (c.content, c.trees, c.repos),
            (1, 0, 0),
            "a clone still holds the tree"
        );
        assert!(!content.join(gone.to_string()).exists());
        assert!(
            content.join(kept.to_string()).exists(),
            "its CID is in the store"
        );
        assert!(content.join("not-a-cid").exists());
        drop((h2, h3));
        let c = collect(&dir, &store).unwrap();
        assert_eq!((c.content, c.trees, c.repos), (0, 1, 1));
        assert!(!trees.join(&commit).exists());
        assert!(!repos.join("r.git").exists() && !repos.join("r.lock").exists());
        let names = entries(&trees).unwrap();
        assert_eq!(names, [mine], "nothing half-removed is left");
    }

    #[test]
    fn a_hold_on_a_removed_directory_is_no_hold() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t");
        assert!(shared(&p).unwrap().is_none());
        std::fs::create_dir(&p).unwrap();
        assert!(shared(&p).unwrap().is_some());
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        assert!(
            shared(&d.path().join("link")).unwrap().is_none(),
            "links are never followed"
        );
        assert!(remove_unheld(d.path(), "link").unwrap());
        assert!(std::fs::symlink_metadata(d.path().join("link")).is_err());
        assert!(std::fs::symlink_metadata("/etc").is_ok());
    }
}
