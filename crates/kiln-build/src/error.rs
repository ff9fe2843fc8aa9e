//! The crate's one error type. Every recipe error is one line that names the recipe file and,
//! where there is one, the step and the key.

use std::path::PathBuf;

/// Errors from loading a recipe, ordering its steps and computing action keys.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An action asked for by its key (`kiln get ACTION`) cannot be found or built.
    #[error("action {action}: {message}")]
    Action {
        /// The action key.
        action: cid::Cid,
        /// Why.
        message: String,
    },
    /// A step could not be built: the recipe file (or the action, for `kiln get`), the
    /// step and what went wrong, on one line (a failing command's log tail follows it).
    #[error("{where_}: step {step:?}: {message}")]
    Step {
        /// The recipe file, or `action CID`.
        where_: String,
        /// The step.
        step: String,
        /// What went wrong.
        message: String,
    },
    /// A stored build record that cannot be read or whose signature does not hold.
    #[error("build record: {reason}")]
    BadRecord {
        /// Why.
        reason: String,
    },
    /// The build index (its SQLite database) failed.
    #[error("build index: {0}")]
    Index(#[from] rusqlite::Error),
    /// The content store failed.
    #[error("{0}")]
    Store(#[from] kiln_store::Error),
    /// Reading or writing content failed.
    #[error("{0}")]
    Core(#[from] kiln_core::Error),
    /// A file system operation on kiln's build directories failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox could not be set up or its helper failed.
    #[error("sandbox: {message}")]
    Sandbox {
        /// What went wrong.
        message: String,
    },
    /// The recipe file could not be read.
    #[error("{}: cannot read recipe: {source}", file.display())]
    Read {
        /// The recipe file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The recipe is not valid TOML or does not have the recipe's shape.
    #[error("{}{}: {message}", file.display(), step_part(step))]
    Syntax {
        /// The recipe file.
        file: PathBuf,
        /// The step, when the error is inside one.
        step: Option<String>,
        /// The parser's message, on one line.
        message: String,
    },
    /// A value in the recipe is not allowed.
    #[error("{}{}: {key}: {problem}", file.display(), step_part(step))]
    Invalid {
        /// The recipe file.
        file: PathBuf,
        /// The step, when the error is inside one.
        step: Option<String>,
        /// The key holding the bad value (`inputs."src"`, `command`, …).
        key: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// Steps depend on each other in a circle.
    #[error("{}: step {:?}: steps form a cycle: {}", file.display(), cycle[0], cycle.join(" -> "))]
    Cycle {
        /// The recipe file.
        file: PathBuf,
        /// The steps of the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A parameter given on the command line is not declared in the recipe.
    #[error("{}: unknown parameter {name:?} (declared: {})", file.display(), declared.join(", "))]
    UnknownParam {
        /// The recipe file.
        file: PathBuf,
        /// The parameter given.
        name: String,
        /// The parameters the recipe declares.
        declared: Vec<String>,
    },
    /// A source input could not be read.
    #[error("{}: step {step:?}: input {path:?}: cannot read {}: {source}", file.display(), host.display())]
    Input {
        /// The recipe file.
        file: PathBuf,
        /// The step.
        step: String,
        /// The input's path in the sandbox.
        path: String,
        /// The file on the host that could not be read.
        host: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A git input could not be resolved or checked out (git missing, repository
    /// unreachable, unknown ref, …).
    #[error("{}: step {step:?}: input {path:?}: {source_text}: {message}", file.display())]
    Git {
        /// The recipe file.
        file: PathBuf,
        /// The step.
        step: String,
        /// The input's path in the sandbox.
        path: String,
        /// The input's source as written (`git+URL#REF`).
        source_text: String,
        /// What went wrong, on one line.
        message: String,
    },
    /// Hashing a source input failed.
    #[error("hashing {}: {source}", host.display())]
    Import {
        /// The file or directory being hashed.
        host: PathBuf,
        /// The importer's error.
        #[source]
        source: kiln_core::Error,
    },
    /// Writing content out to the file system failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file, directory or symlink being written.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Content could not be read or is not UnixFS.
    #[error("reading {cid}: {source}")]
    Content {
        /// The node being read.
        cid: cid::Cid,
        /// The exporter's error.
        #[source]
        source: kiln_core::Error,
    },
    /// A directory holds an entry whose name could leave it on disk.
    #[error(
        "refusing unsafe entry name {name:?} in directory {dir} (names may not be empty, '.', '..', or contain '/' or NUL)"
    )]
    UnsafeName {
        /// The directory.
        dir: cid::Cid,
        /// The entry's name.
        name: String,
    },
    /// A tree too deep to write out.
    #[error("the tree is more than {limit} directories deep (at {cid})")]
    TooDeep {
        /// The directory past the limit.
        cid: cid::Cid,
        /// The limit.
        limit: usize,
    },
    /// An action could not be encoded as dag-cbor.
    #[error("encoding an action: {source}")]
    Encode {
        /// The encoder's error.
        #[source]
        source: serde_ipld_dagcbor::EncodeError<std::collections::TryReserveError>,
    },
}

fn step_part(step: &Option<String>) -> String {
    match step {
        Some(s) => format!(": step {s:?}"),
        None => String::new(),
    }
}

/// What is wrong with a value in a recipe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The recipe declares no steps.
    #[error("the recipe declares no steps")]
    NoSteps,
    /// A step or parameter name that cannot be referenced as `step:NAME/path` or `{NAME}`.
    #[error("names may only use letters, digits, '-' and '_'")]
    BadName,
    /// A builder that is neither `host`, `builtin` nor a CID.
    #[error(
        "unknown builder {0:?} (expected \"host\", \"builtin\" or the CID of a root file system)"
    )]
    UnknownBuilder(String),
    /// A builtin step whose `command[0]` names no builtin.
    #[error("unknown builtin {0:?} (known: {known})", known = crate::builtin::BUILTINS.join(", "))]
    UnknownBuiltin(String),
    /// An empty command, or an empty program name.
    #[error("the command is empty")]
    EmptyCommand,
    /// A path that must be relative and clean is not.
    #[error("{0:?} is not a relative path without '.', '..' or empty segments")]
    NotRelative(String),
    /// A source input that leaves the source tree.
    #[error("{0:?} escapes the source tree")]
    Escapes(String),
    /// `step:NAME/path` naming a step the recipe does not declare.
    #[error("unknown step {0:?}")]
    UnknownStep(String),
    /// `step:NAME/path` naming a path the step does not declare as an output.
    #[error("step {step:?} declares no output {path:?}")]
    UnknownOutput {
        /// The step referred to.
        step: String,
        /// The path asked for.
        path: String,
    },
    /// A malformed `step:` or `/ipfs/` reference.
    #[error(
        "bad reference {0:?} (expected step:NAME/PATH, /ipfs/CID[/PATH], git+URL#REF or a path in the source tree)"
    )]
    BadReference(String),
    /// A `{name}` placeholder naming no declared parameter.
    #[error("unknown parameter {{{0}}}")]
    UnknownParam(String),
    /// A `{` without its `}` (write `{{` and `}}` for braces).
    #[error("unbalanced braces in {0:?} (write {{{{ and }}}} for literal braces)")]
    Braces(String),
    /// A step declares no outputs.
    #[error("the step declares no outputs")]
    NoOutputs,
    /// The same path twice.
    #[error("{0:?} is declared twice")]
    Duplicate(String),
    /// A fixed-output hash that is not a CID.
    #[error("{0:?} is not a CID")]
    BadCid(String),
    /// A fixed-output step must have exactly one output.
    #[error("a fixed-output step must declare exactly one output")]
    FixedOutputCount,
    /// A time limit that cannot be read.
    #[error("bad duration {0:?} (expected e.g. 90s, 10m, 2h)")]
    BadDuration(String),
    /// A memory limit that cannot be read.
    #[error("bad size {0:?} (expected e.g. 512MiB, 2GiB)")]
    BadSize(String),
    /// Two sandbox paths of a step (inputs, outputs, cache directories) that are the same or
    /// one inside the other.
    #[error("{0:?} overlaps {1}")]
    Overlap(String, String),
    /// A malformed `git+URL#REF` input.
    #[error("bad git input {0:?}: {1}")]
    BadGit(String, String),
    /// An `/ipns/` input: kiln has no name system yet.
    #[error(
        "{0:?}: IPNS names are not supported yet (kiln has no name system); use /ipfs/CID or git+URL#REF"
    )]
    Ipns(String),
    /// A schedule that cannot be read.
    #[error("bad schedule: {0}")]
    BadSchedule(String),
    /// A schedule in a recipe with nothing it could check.
    #[error(
        "the recipe has no mutable inputs (git+URL#REF) for a schedule to check; schedules only re-resolve those"
    )]
    ScheduleWithoutMutable,
    /// An environment variable name that a process cannot have.
    #[error("{0:?} is not a valid environment variable name")]
    BadEnvName(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
