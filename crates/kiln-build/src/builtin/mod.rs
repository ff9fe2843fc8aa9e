//! Builders that kiln carries inside itself, run in a step's work directory instead of a
//! program: a step with `builder = "builtin"` names one in `command[0]` and passes it the
//! rest as arguments.
//!
//! - `markdown-site [--title TITLE] IN OUT`: a static HTML site from a directory of Markdown
//!   (see [`site`]).
//!
//! Paths given to a builtin are relative to the work directory; absolute paths and `..` are
//! refused, and so are paths that go through a symbolic link.

pub mod site;

use std::io;
use std::path::{Component, Path, PathBuf};

/// The names [`run`] knows, in the order they are listed in errors.
pub const BUILTINS: &[&str] = &[site::NAME];

/// Runs the builtin named by `args[0]` with the rest of `args`, in `work`. Progress goes to
/// `log`, one short line at a time.
pub fn run(args: &[String], work: &Path, log: &mut dyn io::Write) -> Result<(), BuiltinError> {
    let Some((name, rest)) = args.split_first() else {
        return Err(BuiltinError::NoBuiltin);
    };
    match name.as_str() {
        site::NAME => site::run(rest, work, log),
        _ => Err(BuiltinError::Unknown { name: name.clone() }),
    }
}

/// Errors of the builtins: each one line, naming the builtin, argument or path concerned.
/// Paths are shown relative to the work directory, as they were given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuiltinError {
    /// The command is empty.
    #[error("no builtin named (known: {})", BUILTINS.join(", "))]
    NoBuiltin,
    /// `command[0]` names no builtin.
    #[error("unknown builtin {name:?} (known: {})", BUILTINS.join(", "))]
    Unknown {
        /// The name given.
        name: String,
    },
    /// Missing, extra or unknown arguments.
    #[error("{builtin}: {message} (usage: {usage})")]
    Usage {
        /// The builtin.
        builtin: &'static str,
        /// What is wrong.
        message: String,
        /// The builtin's synopsis.
        usage: &'static str,
    },
    /// A path argument that is absolute, climbs out with `..`, or is empty.
    #[error(
        "{builtin}: {what} {path:?} must be a relative path inside the work directory (no leading '/', no '..')"
    )]
    BadPath {
        /// The builtin.
        builtin: &'static str,
        /// Which argument (`IN`, `OUT`).
        what: &'static str,
        /// The argument as given.
        path: String,
    },
    /// The input directory does not exist.
    #[error("input directory {} does not exist", path.display())]
    MissingInput {
        /// The input, relative to the work directory.
        path: PathBuf,
    },
    /// A path that must be a directory is something else.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path, relative to the work directory.
        path: PathBuf,
    },
    /// An argument path goes through a symbolic link (builtins never follow them).
    #[error("{} is a symbolic link (builtins do not follow links)", path.display())]
    Symlink {
        /// The link, relative to the work directory.
        path: PathBuf,
    },
    /// The output directory exists and holds something.
    #[error("output directory {} already exists and is not empty", path.display())]
    OutputNotEmpty {
        /// The output, relative to the work directory.
        path: PathBuf,
    },
    /// The output directory is the input directory.
    #[error("output directory {} is the input directory", path.display())]
    OutputIsInput {
        /// The directory, relative to the work directory.
        path: PathBuf,
    },
    /// A file name that is not UTF-8 (pages and links are UTF-8 text).
    #[error("{}: file name {name:?} is not valid UTF-8", dir.display())]
    NonUtf8Name {
        /// The directory holding it, relative to the work directory.
        dir: PathBuf,
        /// The name, with invalid bytes replaced.
        name: String,
    },
    /// Two input files would be written to the same output file.
    #[error("{first} and {second} would both become {output}")]
    Collision {
        /// The output path, relative to the output directory.
        output: String,
        /// One input, relative to the input directory.
        first: String,
        /// The other.
        second: String,
    },
    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `create`, …).
        action: &'static str,
        /// The file or directory, relative to the work directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing to the log failed.
    #[error("cannot write the build log: {0}")]
    Log(#[source] io::Error),
}

impl BuiltinError {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| BuiltinError::Io {
            action,
            path,
            source,
        }
    }
}

/// A path argument as a clean relative path (`.` segments dropped); empty for the work
/// directory itself. Absolute paths, `..` and the empty string are refused.
pub(crate) fn relative_arg(
    builtin: &'static str,
    what: &'static str,
    arg: &str,
) -> Result<PathBuf, BuiltinError> {
    let bad = || BuiltinError::BadPath {
        builtin,
        what,
        path: arg.to_string(),
    };
    if arg.is_empty() {
        return Err(bad());
    }
    let mut clean = PathBuf::new();
    for c in Path::new(arg).components() {
        match c {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return Err(bad()),
        }
    }
    Ok(clean)
}

/// How a relative path is shown in messages: `.` for the work directory itself.
pub(crate) fn shown(rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel.to_path_buf()
    }
}

/// Refuses a relative path any existing prefix of which is a symbolic link. Returns whether
/// the whole path exists.
pub(crate) fn check_no_links(work: &Path, rel: &Path) -> Result<bool, BuiltinError> {
    let mut prefix = PathBuf::new();
    for c in rel.components() {
        prefix.push(c);
        match std::fs::symlink_metadata(work.join(&prefix)) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(BuiltinError::Symlink { path: prefix });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(BuiltinError::io("inspect", &prefix)(e)),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unknown_and_missing_builtin_list_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Vec::new();
        let e = run(&args(&["make-coffee", "x"]), dir.path(), &mut log).unwrap_err();
        assert!(matches!(e, BuiltinError::Unknown { .. }));
        assert_eq!(
            e.to_string(),
            "unknown builtin \"make-coffee\" (known: markdown-site)"
        );
        let e = run(&[], dir.path(), &mut log).unwrap_err();
        assert_eq!(e.to_string(), "no builtin named (known: markdown-site)");
        assert!(log.is_empty());
    }

    #[test]
    fn relative_args() {
        assert_eq!(relative_arg("b", "IN", "docs").unwrap(), Path::new("docs"));
        assert_eq!(
            relative_arg("b", "IN", "./a//b/").unwrap(),
            Path::new("a/b")
        );
        assert_eq!(relative_arg("b", "IN", ".").unwrap(), Path::new(""));
        for bad in ["", "/etc", "../x", "a/../b", "a/.."] {
            let e = relative_arg("b", "IN", bad).unwrap_err();
            assert!(matches!(e, BuiltinError::BadPath { .. }), "{bad}");
        }
        assert_eq!(
            relative_arg("markdown-site", "OUT", "/tmp/site")
                .unwrap_err()
                .to_string(),
            "markdown-site: OUT \"/tmp/site\" must be a relative path inside the work directory \
             (no leading '/', no '..')"
        );
    }

    #[test]
    fn links_on_the_way_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        assert!(check_no_links(dir.path(), Path::new("real")).unwrap());
        assert!(!check_no_links(dir.path(), Path::new("real/missing/x")).unwrap());
        let e = check_no_links(dir.path(), Path::new("link/x")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "link is a symbolic link (builtins do not follow links)"
        );
    }
}
