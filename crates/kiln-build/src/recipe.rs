//! The recipe format: a `kiln.toml` in a source tree declaring parameters and steps.
//! See `RECIPES.md` for the format; [`Recipe::load`] parses and validates it.

use crate::error::{Error, Problem, Result};
use crate::git::GitSource;
use crate::graph::Graph;
use crate::schedule::Schedule;
use kiln_core::Cid;
use kiln_core::cids::ContentPath;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The recipe's file name in a source tree.
pub const RECIPE_FILE: &str = "kiln.toml";

/// A parsed, validated recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The recipe file, as given (used in error messages only; never part of a key).
    pub file: PathBuf,
    /// The source tree that source inputs are read from.
    pub root: PathBuf,
    /// Declared parameters with their default values.
    pub params: BTreeMap<String, String>,
    /// Steps by name.
    pub steps: BTreeMap<String, Step>,
    /// When a long-running builder (the daemon, `kiln build --watch`) re-resolves the
    /// recipe's mutable inputs (git refs) and builds what that changed. Never part of a key.
    pub schedule: Option<Schedule>,
}

/// One step of a recipe. `command` and `env` values may hold `{param}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The step's name (the key of its `[step.NAME]` table).
    pub name: String,
    /// What the command runs in.
    pub builder: Builder,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Inputs by their path in the sandbox (relative to the work directory).
    pub inputs: BTreeMap<String, Input>,
    /// Declared outputs: paths relative to the work directory.
    pub outputs: Vec<String>,
    /// For a fixed-output step, the CID its single output must have; network is allowed
    /// only then.
    pub output_hash: Option<Cid>,
    /// Time and memory limits (not part of the action key).
    pub limits: Limits,
    /// Cache directories kept between builds of this step (not part of the action key).
    pub cache: Vec<String>,
}

/// The root file system a step runs in. In an action it is written `"host"`, `"builtin"` or
/// `{"rootfs": CID}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Builder {
    /// The impure host builder: the host's `/usr` bound read-only.
    Host,
    /// A root file system stored as content.
    RootFs(Cid),
    /// A builder kiln carries inside itself (`command[0]` names it; see
    /// [`crate::builtin`]). It runs kiln's own code, not a program, so it needs no sandbox;
    /// the action records kiln's version.
    Builtin,
}

/// Where an input's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file or directory of the source tree (`.` is the whole tree).
    Source(String),
    /// An output of another step: `step:NAME/PATH`.
    Step {
        /// The step.
        step: String,
        /// A declared output of it, or a path below one.
        path: String,
    },
    /// Content by CID: `/ipfs/CID[/PATH]`.
    Content(ContentPath),
    /// A mutable input: the tree of the commit a git ref names when the recipe is planned,
    /// `git+URL#REF` (see [`crate::git`]).
    Git(GitSource),
}

impl Input {
    /// Whether the content this input names can change without the recipe or the source
    /// tree changing (a git ref; later IPNS names), so a schedule has something to check.
    pub fn is_mutable(&self) -> bool {
        matches!(self, Input::Git(_))
    }
}

/// Resource limits of a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time limit.
    pub time: Option<Duration>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Most bytes of output kept in the stored log (its start and its end; what lies between
    /// is dropped, and the log says how much). None: [`DEFAULT_LOG_BYTES`].
    pub log: Option<u64>,
}

/// The stored log's size limit when the recipe gives none (`limits.log`).
pub const DEFAULT_LOG_BYTES: u64 = 16 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    step: BTreeMap<String, toml::Value>,
    #[serde(default)]
    schedule: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    builder: String,
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    inputs: BTreeMap<String, String>,
    outputs: Vec<String>,
    #[serde(default)]
    output_hash: Option<String>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    cache: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    time: Option<String>,
    memory: Option<String>,
    log: Option<String>,
}

/// One line from a parser's message.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The key a step's deserialization error is about. Errors from a `Value` carry no
/// position, so the step is written out as TOML on its own and parsed again, which gives a
/// span; the key is the one on that line (under its table header, if any).
fn key_of_error(step: &toml::Value) -> Option<String> {
    let text = toml::to_string(step).ok()?;
    let err = toml::from_str::<RawStep>(&text).err()?;
    if err.message().starts_with("missing field") || err.message().starts_with("unknown field") {
        // The message names the field already (and for a missing one the span is the table).
        return None;
    }
    let at = err.span()?.start.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let table = text[..line_start].lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .map(str::trim)
    });
    let (key, _) = text[line_start..].split_once('=')?;
    let key = key.trim();
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// Line number (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Recipe {
    /// Read and validate `DIR/kiln.toml`; source inputs are read from `dir`.
    pub fn load(dir: &Path) -> Result<Recipe> {
        let file = dir.join(RECIPE_FILE);
        let text = std::fs::read_to_string(&file).map_err(|source| Error::Read {
            file: file.clone(),
            source,
        })?;
        Recipe::parse(&file, dir, &text)
    }

    /// Parse and validate recipe `text`; `file` names it in errors, `root` is the source tree.
    pub fn parse(file: &Path, root: &Path, text: &str) -> Result<Recipe> {
        let syntax = |step: Option<&str>, message: String| Error::Syntax {
            file: file.to_path_buf(),
            step: step.map(str::to_string),
            message,
        };
        let raw: RawRecipe = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!("line {}: ", line_of(text, s.start)))
                .unwrap_or_default();
            syntax(None, format!("{at}{}", one_line(e.message())))
        })?;
        let cx = Cx { file };
        for name in raw.params.keys() {
            if !valid_name(name) {
                return Err(cx.invalid(None, format!("params.{name:?}"), Problem::BadName));
            }
        }
        if raw.step.is_empty() {
            return Err(cx.invalid(None, "step".into(), Problem::NoSteps));
        }
        let mut steps = BTreeMap::new();
        for (name, value) in raw.step {
            if !valid_name(&name) {
                return Err(cx.invalid(Some(&name), "step".into(), Problem::BadName));
            }
            let rs = RawStep::deserialize(value.clone()).map_err(|e| {
                let key = key_of_error(&value)
                    .map(|k| format!("{k}: "))
                    .unwrap_or_default();
                syntax(Some(&name), format!("{key}{}", one_line(e.message())))
            })?;
            let step = cx.step(&name, rs, &raw.params)?;
            steps.insert(name, step);
        }
        let schedule = raw
            .schedule
            .map(|s| Schedule::parse(&s))
            .transpose()
            .map_err(|e| cx.invalid(None, "schedule".into(), Problem::BadSchedule(e)))?;
        if schedule.is_some()
            && !steps
                .values()
                .any(|s: &Step| s.inputs.values().any(Input::is_mutable))
        {
            return Err(cx.invalid(None, "schedule".into(), Problem::ScheduleWithoutMutable));
        }
        let recipe = Recipe {
            file: file.to_path_buf(),
            root: root.to_path_buf(),
            params: raw.params,
            steps,
            schedule,
        };
        recipe.check_references()?;
        Graph::new(&recipe)?;
        Ok(recipe)
    }

    /// Check that every `step:NAME/PATH` input names a step and one of its outputs.
    fn check_references(&self) -> Result<()> {
        let cx = Cx { file: &self.file };
        for step in self.steps.values() {
            for (at, input) in &step.inputs {
                let Input::Step { step: dep, path } = input else {
                    continue;
                };
                let key = format!("inputs.{at:?}");
                let Some(d) = self.steps.get(dep) else {
                    return Err(cx.invalid(
                        Some(&step.name),
                        key,
                        Problem::UnknownStep(dep.clone()),
                    ));
                };
                let declared = d.outputs.iter().any(|o| {
                    path == o
                        || path
                            .strip_prefix(o.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                });
                if !declared {
                    return Err(cx.invalid(
                        Some(&step.name),
                        key,
                        Problem::UnknownOutput {
                            step: dep.clone(),
                            path: path.clone(),
                        },
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Step {
    /// The steps this one takes inputs from.
    pub fn dependencies(&self) -> BTreeSet<&str> {
        self.inputs
            .values()
            .filter_map(|i| match i {
                Input::Step { step, .. } => Some(step.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Step and parameter names: letters, digits, `-` and `_`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A relative path with no empty, `.` or `..` segments.
pub(crate) fn relative_clean(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('/')
        && !s.contains('\0')
        && s.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// The same path, or one inside the other.
fn overlaps(a: &str, b: &str) -> bool {
    let inside = |x: &str, y: &str| x.strip_prefix(y).is_some_and(|r| r.starts_with('/'));
    a == b || inside(a, b) || inside(b, a)
}

/// Validation context: the file errors name.
struct Cx<'a> {
    file: &'a Path,
}

impl Cx<'_> {
    fn invalid(&self, step: Option<&str>, key: String, problem: Problem) -> Error {
        Error::Invalid {
            file: self.file.to_path_buf(),
            step: step.map(str::to_string),
            key,
            problem,
        }
    }

    fn step(&self, name: &str, rs: RawStep, params: &BTreeMap<String, String>) -> Result<Step> {
        let bad = |key: String, p: Problem| self.invalid(Some(name), key, p);
        let builder = match rs.builder.as_str() {
            "host" => Builder::Host,
            "builtin" => Builder::Builtin,
            b => Builder::RootFs(
                kiln_core::cids::parse_cid(b)
                    .map_err(|_| bad("builder".into(), Problem::UnknownBuilder(b.into())))?,
            ),
        };
        if rs.command.first().is_none_or(|p| p.is_empty()) {
            return Err(bad("command".into(), Problem::EmptyCommand));
        }
        if builder == Builder::Builtin
            && !crate::builtin::BUILTINS.contains(&rs.command[0].as_str())
        {
            return Err(bad(
                "command[0]".into(),
                Problem::UnknownBuiltin(rs.command[0].clone()),
            ));
        }
        for (i, arg) in rs.command.iter().enumerate() {
            check_template(arg, params).map_err(|p| bad(format!("command[{i}]"), p))?;
        }
        for (k, v) in &rs.env {
            let key = format!("env.{k:?}");
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(bad(key, Problem::BadEnvName(k.clone())));
            }
            check_template(v, params).map_err(|p| bad(key, p))?;
        }
        let mut inputs = BTreeMap::new();
        for (at, from) in rs.inputs {
            let key = format!("inputs.{at:?}");
            if !relative_clean(&at) {
                return Err(bad(key, Problem::NotRelative(at)));
            }
            let input = parse_input(&from).map_err(|p| bad(key, p))?;
            inputs.insert(at, input);
        }
        if rs.outputs.is_empty() {
            return Err(bad("outputs".into(), Problem::NoOutputs));
        }
        let outputs = clean_list(&rs.outputs).map_err(|p| bad("outputs".into(), p))?;
        let cache = clean_list(&rs.cache).map_err(|p| bad("cache".into(), p))?;
        // Every sandbox path of the step must stand alone: inputs are read-only, outputs and
        // caches writable, and none may hide another.
        let mut claimed: Vec<(String, String)> = Vec::new();
        let places = inputs
            .keys()
            .map(|p| ("input", format!("inputs.{p:?}"), p))
            .chain(outputs.iter().map(|p| ("output", "outputs".to_string(), p)))
            .chain(
                cache
                    .iter()
                    .map(|p| ("cache directory", "cache".to_string(), p)),
            );
        for (what, key, p) in places {
            if let Some((_, other)) = claimed.iter().find(|(q, _)| overlaps(p, q)) {
                return Err(bad(key, Problem::Overlap(p.clone(), other.clone())));
            }
            claimed.push((p.clone(), format!("{what} {p:?}")));
        }
        let output_hash = match rs.output_hash {
            None => None,
            Some(h) => {
                if outputs.len() != 1 {
                    return Err(bad("output_hash".into(), Problem::FixedOutputCount));
                }
                Some(
                    kiln_core::cids::parse_cid(&h)
                        .map_err(|_| bad("output_hash".into(), Problem::BadCid(h)))?,
                )
            }
        };
        let limits = Limits {
            time: rs
                .limits
                .time
                .map(|t| parse_duration(&t).ok_or(Problem::BadDuration(t)))
                .transpose()
                .map_err(|p| bad("limits.time".into(), p))?,
            memory: rs
                .limits
                .memory
                .map(|m| parse_size(&m).ok_or(Problem::BadSize(m)))
                .transpose()
                .map_err(|p| bad("limits.memory".into(), p))?,
            log: rs
                .limits
                .log
                .map(|m| parse_size(&m).ok_or(Problem::BadSize(m)))
                .transpose()
                .map_err(|p| bad("limits.log".into(), p))?,
        };
        Ok(Step {
            name: name.to_string(),
            builder,
            command: rs.command,
            env: rs.env,
            inputs,
            outputs,
            output_hash,
            limits,
            cache,
        })
    }
}

/// Relative clean paths, each once.
fn clean_list(list: &[String]) -> Result<Vec<String>, Problem> {
    let mut seen = BTreeSet::new();
    for p in list {
        if !relative_clean(p) {
            return Err(Problem::NotRelative(p.clone()));
        }
        if !seen.insert(p.as_str()) {
            return Err(Problem::Duplicate(p.clone()));
        }
    }
    Ok(list.to_vec())
}

/// An input's source: `step:NAME/PATH`, `/ipfs/CID[/PATH]`, `git+URL#REF`, or a path in the
/// source tree.
fn parse_input(s: &str) -> Result<Input, Problem> {
    if let Some(r) = s.strip_prefix("git+") {
        return GitSource::parse(r)
            .map(Input::Git)
            .map_err(|why| Problem::BadGit(s.into(), why));
    }
    // The hook for names: an `/ipns/NAME` input would be resolved at plan time like a git
    // ref (and be mutable, so schedules check it); kiln has no name system yet.
    if s.starts_with("/ipns/") {
        return Err(Problem::Ipns(s.into()));
    }
    if let Some(r) = s.strip_prefix("step:") {
        let Some((step, path)) = r.split_once('/') else {
            return Err(Problem::BadReference(s.into()));
        };
        if !valid_name(step) || !relative_clean(path) {
            return Err(Problem::BadReference(s.into()));
        }
        return Ok(Input::Step {
            step: step.into(),
            path: path.into(),
        });
    }
    if s.starts_with("/ipfs/") {
        return ContentPath::parse(s)
            .map(Input::Content)
            .map_err(|_| Problem::BadReference(s.into()));
    }
    if s == "." {
        return Ok(Input::Source(s.into()));
    }
    if s.starts_with('/') || s.split('/').any(|seg| seg == "..") {
        return Err(Problem::Escapes(s.into()));
    }
    if !relative_clean(s) {
        return Err(Problem::NotRelative(s.into()));
    }
    Ok(Input::Source(s.into()))
}

/// One piece of a `{param}` template.
enum Piece<'a> {
    Text(&'a str),
    Param(&'a str),
}

/// Split a template into text and `{param}` pieces; `{{` and `}}` are literal braces.
fn pieces(t: &str) -> Result<Vec<Piece<'_>>, Problem> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find(['{', '}']) {
        let (before, at) = rest.split_at(i);
        if !before.is_empty() {
            out.push(Piece::Text(before));
        }
        if let Some(r) = at.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = r;
        } else if let Some(r) = at.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = r;
        } else if at.starts_with('}') {
            return Err(Problem::Braces(t.into()));
        } else {
            let Some(end) = at.find('}') else {
                return Err(Problem::Braces(t.into()));
            };
            out.push(Piece::Param(&at[1..end]));
            rest = &at[end + 1..];
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

fn check_template(t: &str, params: &BTreeMap<String, String>) -> Result<(), Problem> {
    for p in pieces(t)? {
        if let Piece::Param(name) = p
            && !params.contains_key(name)
        {
            return Err(Problem::UnknownParam(name.into()));
        }
    }
    Ok(())
}

/// Substitute parameter values into a template checked by validation.
pub(crate) fn substitute(t: &str, values: &BTreeMap<String, String>) -> Result<String, Problem> {
    let mut s = String::with_capacity(t.len());
    for p in pieces(t)? {
        match p {
            Piece::Text(x) => s.push_str(x),
            Piece::Param(name) => s.push_str(
                values
                    .get(name)
                    .ok_or_else(|| Problem::UnknownParam(name.into()))?,
            ),
        }
    }
    Ok(s)
}

/// A whole number with a unit, as recipes write times: `500ms`, `90s`, `10m`, `2h`, `1d`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "d" => n.checked_mul(86_400).map(Duration::from_secs),
        _ => None,
    }
}

/// `1048576`, `512KiB`, `512MiB`, `2GiB` (also `K`, `M`, `G`; all binary).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn templates() {
        let p = params(&[("v", "1.2"), ("name", "x")]);
        assert_eq!(substitute("a-{v}-{name}", &p).unwrap(), "a-1.2-x");
        assert_eq!(substitute("{{v}}", &p).unwrap(), "{v}");
        assert_eq!(substitute("plain", &p).unwrap(), "plain");
        assert!(
            matches!(check_template("{nope}", &p), Err(Problem::UnknownParam(n)) if n == "nope")
        );
        assert!(matches!(check_template("{v", &p), Err(Problem::Braces(_))));
        assert!(matches!(check_template("v}", &p), Err(Problem::Braces(_))));
    }

    #[test]
    fn limits() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("5ms"), Some(Duration::from_millis(5)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1TB"), None);
    }

    #[test]
    fn overlapping_paths() {
        assert!(overlaps("out", "out"));
        assert!(overlaps("out/a", "out"));
        assert!(overlaps("out", "out/a"));
        assert!(!overlaps("out", "out2"));
        assert!(!overlaps("out2/a", "out"));
    }

    #[test]
    fn paths_and_inputs() {
        assert!(relative_clean("out/a"));
        for bad in ["", "/a", "a/", "a//b", "./a", "a/../b", ".."] {
            assert!(!relative_clean(bad), "{bad}");
        }
        assert_eq!(parse_input("src").unwrap(), Input::Source("src".into()));
        assert_eq!(parse_input(".").unwrap(), Input::Source(".".into()));
        assert_eq!(
            parse_input("step:lib/out/x.a").unwrap(),
            Input::Step {
                step: "lib".into(),
                path: "out/x.a".into()
            }
        );
        assert!(matches!(
            parse_input("step:lib"),
            Err(Problem::BadReference(_))
        ));
        assert!(matches!(parse_input("../x"), Err(Problem::Escapes(_))));
        assert!(matches!(parse_input("a/../../x"), Err(Problem::Escapes(_))));
        assert!(matches!(
            parse_input("/etc/passwd"),
            Err(Problem::Escapes(_))
        ));
        assert!(matches!(
            parse_input("/ipfs/nope"),
            Err(Problem::BadReference(_))
        ));
        let c = parse_input("/ipfs/bafkqaaa/a").unwrap();
        assert!(matches!(c, Input::Content(p) if p.segments == ["a"]));
        let g = parse_input("git+file:///srv/repo.git#main").unwrap();
        assert!(
            matches!(&g, Input::Git(s) if s.url == "file:///srv/repo.git" && s.reference.as_deref() == Some("main"))
        );
        assert!(g.is_mutable());
        assert!(matches!(parse_input("git+"), Err(Problem::BadGit(..))));
        assert!(matches!(
            parse_input("git+/r#a b"),
            Err(Problem::BadGit(..))
        ));
        assert!(matches!(
            parse_input("/ipns/example.org"),
            Err(Problem::Ipns(_))
        ));
    }
}
