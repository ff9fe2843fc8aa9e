//! Actions: the canonical, content-addressed form of a step. An action's CID (dag-cbor,
//! sha2-256, CIDv1) is the step's action key.
//!
//! What goes in: the builder, the command and environment after parameter substitution, every
//! input by its path in the sandbox and its content (a CID, or the action key and output path
//! of the step that makes it), the declared outputs, and the fixed-output hash with the network
//! flag it implies. What stays out: the step's name, the recipe's location and layout, TOML key
//! order, limits and cache directories.

use crate::error::{Error, Problem, Result};
use crate::git::{self, GitPin, GitSource};
use crate::graph::Graph;
use crate::recipe::{Builder, Input, Recipe, substitute};
use crate::tree;
use kiln_core::Cid;
use kiln_core::cids::{DAG_CBOR, cid_of};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The kiln version recorded in the actions of builtin steps.
pub const KILN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The format tag written in every action; a change of meaning changes it.
pub const ACTION_FORMAT: &str = "kiln-action-1";

/// A step normalised for hashing. Maps are `BTreeMap`s and dag-cbor sorts keys canonically,
/// so the encoding does not depend on declaration order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// [`ACTION_FORMAT`].
    pub format: String,
    /// The root file system, or the impure host builder.
    pub builder: Builder,
    /// Program and arguments, parameters substituted.
    pub command: Vec<String>,
    /// Environment variables, parameters substituted.
    pub env: BTreeMap<String, String>,
    /// Inputs by their path in the sandbox.
    pub inputs: BTreeMap<String, ActionInput>,
    /// Declared outputs (a set: order in the recipe does not matter).
    pub outputs: BTreeSet<String>,
    /// The CID the single output must have, for a fixed-output step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_hash: Option<Cid>,
    /// Whether the step may use the network (only fixed-output steps may).
    pub network: bool,
    /// For a builtin builder, the version of kiln whose code runs it (its output may change
    /// between versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kiln: Option<String>,
}

/// The content of an input, as an action refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionInput {
    /// Content by CID (source files and directories, `/ipfs/` inputs), optionally a path
    /// below it.
    Content {
        /// The root CID.
        cid: Cid,
        /// A path below it (empty for the root itself).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        path: String,
    },
    /// An output of another step, known before anything is built.
    Output {
        /// That step's action key.
        action: Cid,
        /// The output path (a declared output or a path below one).
        path: String,
    },
}

impl Action {
    /// The canonical dag-cbor encoding.
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_ipld_dagcbor::to_vec(self).map_err(|source| Error::Encode { source })
    }

    /// The action key: CIDv1, dag-cbor, sha2-256 of [`Action::encode`].
    pub fn key(&self) -> Result<Cid> {
        Ok(cid_of(cid::Version::V1, DAG_CBOR, &self.encode()?))
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// The step's name.
    pub name: String,
    /// Its concurrency group (see [`Graph::groups`]).
    pub group: usize,
    /// Its action.
    pub action: Action,
    /// The action's CID.
    pub key: Cid,
    /// Where the content of its source and git inputs is on this host, by sandbox path:
    /// imported into the store before the step runs (and checked to have the CID the action
    /// names). Not part of the action.
    pub sources: BTreeMap<String, PathBuf>,
    /// Its git inputs by sandbox path: the commit each ref resolved to (for information;
    /// the action names the tree's CID only).
    pub git: BTreeMap<String, GitPin>,
}

/// Every step of a recipe with its action and key, in topological order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The steps, each after the steps it depends on.
    pub steps: Vec<PlannedStep>,
}

/// How to plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Where git inputs are fetched and checked out (`$KILN_HOME/builds/git`: cache
    /// repositories under `repos/`, trees under `trees/COMMIT`). Without it a recipe with
    /// git inputs cannot be planned.
    pub git_dir: Option<PathBuf>,
}

/// A mutable input whose ref now names another commit (see [`Plan::moved`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The input as written.
    pub source: GitSource,
    /// The commit it was planned with.
    pub from: String,
    /// The commit it names now.
    pub to: String,
}

/// What a scheduled check of a plan found (see [`Plan::recheck`]).
#[derive(Debug, Clone)]
pub enum Recheck {
    /// No mutable input moved: the plan stands, nothing needs building.
    Unchanged,
    /// Some moved; the recipe was planned again.
    Moved {
        /// The inputs that moved.
        moved: Vec<Moved>,
        /// The new plan.
        plan: Plan,
        /// Steps whose action key changed (empty when the new commits hold the same trees).
        changed: Vec<String>,
    },
}

impl Plan {
    /// Compute every step's action. `params` override the recipe's defaults; naming an
    /// undeclared parameter is an error. Source inputs are hashed from `recipe.root`.
    /// A recipe with git inputs needs [`Plan::with_options`] (a directory to fetch into).
    pub fn new(recipe: &Recipe, params: &BTreeMap<String, String>) -> Result<Plan> {
        Plan::with_options(recipe, params, &PlanOptions::default())
    }

    /// [`Plan::new`], resolving git inputs: each ref is resolved to a commit
    /// ([`git::resolve`]), the commit's tree is checked out under `opts.git_dir`
    /// ([`git::checkout`]) and hashed like a source directory. The action names the tree's
    /// CID, so a moved ref changes the key and the same commit never does.
    pub fn with_options(
        recipe: &Recipe,
        params: &BTreeMap<String, String>,
        opts: &PlanOptions,
    ) -> Result<Plan> {
        let mut values = recipe.params.clone();
        for (k, v) in params {
            let Some(slot) = values.get_mut(k) else {
                return Err(Error::UnknownParam {
                    file: recipe.file.clone(),
                    name: k.clone(),
                    declared: recipe.params.keys().cloned().collect(),
                });
            };
            v.clone_into(slot);
        }
        let graph = Graph::new(recipe)?;
        let mut keys: BTreeMap<&str, Cid> = BTreeMap::new();
        let mut sources: BTreeMap<&str, Cid> = BTreeMap::new();
        let mut gits: BTreeMap<&GitSource, (GitPin, Cid)> = BTreeMap::new();
        let mut steps = Vec::with_capacity(recipe.steps.len());
        for (group, names) in graph.groups().iter().enumerate() {
            for name in names {
                let Some(step) = recipe.steps.get(name) else {
                    continue;
                };
                let invalid = |key: String, problem: Problem| Error::Invalid {
                    file: recipe.file.clone(),
                    step: Some(name.clone()),
                    key,
                    problem,
                };
                let command = step
                    .command
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        substitute(a, &values).map_err(|p| invalid(format!("command[{i}]"), p))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let env = step
                    .env
                    .iter()
                    .map(|(k, v)| {
                        substitute(v, &values)
                            .map(|v| (k.clone(), v))
                            .map_err(|p| invalid(format!("env.{k:?}"), p))
                    })
                    .collect::<Result<BTreeMap<_, _>>>()?;
                let mut inputs = BTreeMap::new();
                let mut hosts = BTreeMap::new();
                let mut pins = BTreeMap::new();
                for (at, input) in &step.inputs {
                    let ai = match input {
                        Input::Git(src) => {
                            let (pin, cid) = match gits.get(src) {
                                Some(known) => known.clone(),
                                None => {
                                    let fail = |message: String| Error::Git {
                                        file: recipe.file.clone(),
                                        step: name.clone(),
                                        path: at.clone(),
                                        source_text: src.to_string(),
                                        message,
                                    };
                                    let pin = pin_git(src, recipe, opts).map_err(fail)?;
                                    let cid = tree::hash_path(&pin.tree)?;
                                    gits.insert(src, (pin.clone(), cid));
                                    (pin, cid)
                                }
                            };
                            hosts.insert(at.clone(), pin.tree.clone());
                            pins.insert(at.clone(), pin);
                            ActionInput::Content {
                                cid,
                                path: String::new(),
                            }
                        }
                        Input::Source(rel) => {
                            let cid = match sources.get(rel.as_str()) {
                                Some(c) => *c,
                                None => {
                                    let host = if rel == "." {
                                        recipe.root.clone()
                                    } else {
                                        recipe.root.join(rel)
                                    };
                                    if let Err(source) = std::fs::symlink_metadata(&host) {
                                        return Err(Error::Input {
                                            file: recipe.file.clone(),
                                            step: name.clone(),
                                            path: at.clone(),
                                            host,
                                            source,
                                        });
                                    }
                                    if through_symlink(&recipe.root, rel) {
                                        return Err(invalid(
                                            format!("inputs.{at:?}"),
                                            Problem::Escapes(rel.clone()),
                                        ));
                                    }
                                    let c = tree::hash_path(&host)?;
                                    sources.insert(rel, c);
                                    c
                                }
                            };
                            hosts.insert(
                                at.clone(),
                                if rel == "." {
                                    recipe.root.clone()
                                } else {
                                    recipe.root.join(rel)
                                },
                            );
                            ActionInput::Content {
                                cid,
                                path: String::new(),
                            }
                        }
                        Input::Content(cp) => ActionInput::Content {
                            cid: cp.root,
                            path: cp.segments.join("/"),
                        },
                        Input::Step { step: dep, path } => {
                            let Some(action) = keys.get(dep.as_str()) else {
                                return Err(invalid(
                                    format!("inputs.{at:?}"),
                                    Problem::UnknownStep(dep.clone()),
                                ));
                            };
                            ActionInput::Output {
                                action: *action,
                                path: path.clone(),
                            }
                        }
                    };
                    inputs.insert(at.clone(), ai);
                }
                let action = Action {
                    format: ACTION_FORMAT.into(),
                    builder: step.builder,
                    command,
                    env,
                    inputs,
                    outputs: step.outputs.iter().cloned().collect(),
                    output_hash: step.output_hash,
                    network: step.output_hash.is_some(),
                    kiln: (step.builder == Builder::Builtin).then(|| KILN_VERSION.to_string()),
                };
                let key = action.key()?;
                keys.insert(name, key);
                steps.push(PlannedStep {
                    name: name.clone(),
                    group,
                    action,
                    key,
                    sources: hosts,
                    git: pins,
                });
            }
        }
        Ok(Plan { steps })
    }

    /// Ask each git input's repository which commit its ref names now (`git ls-remote`
    /// only: nothing is fetched) and say which moved. Refs given as commit IDs never move.
    /// `recipe` (the one planned) names the file in errors.
    pub fn moved(&self, recipe: &Recipe) -> Result<Vec<Moved>> {
        let mut seen = BTreeSet::new();
        let mut moved = Vec::new();
        for step in &self.steps {
            for (at, pin) in &step.git {
                if !seen.insert(&pin.source) {
                    continue;
                }
                let (_, now) =
                    git::resolve(&pin.source, &pin.remote).map_err(|message| Error::Git {
                        file: recipe.file.clone(),
                        step: step.name.clone(),
                        path: at.clone(),
                        source_text: pin.source.to_string(),
                        message,
                    })?;
                if now != pin.commit {
                    moved.push(Moved {
                        source: pin.source.clone(),
                        from: pin.commit.clone(),
                        to: now,
                    });
                }
            }
        }
        Ok(moved)
    }

    /// A scheduled check: if a mutable input moved ([`Plan::moved`]), plan `recipe` again
    /// (with `params` and `opts`, as this plan was made) and say which keys that changed.
    /// A scheduler builds the new plan when `changed` is not empty.
    pub fn recheck(
        &self,
        recipe: &Recipe,
        params: &BTreeMap<String, String>,
        opts: &PlanOptions,
    ) -> Result<Recheck> {
        let moved = self.moved(recipe)?;
        if moved.is_empty() {
            return Ok(Recheck::Unchanged);
        }
        let plan = Plan::with_options(recipe, params, opts)?;
        let changed = plan
            .steps
            .iter()
            .filter(|s| self.step(&s.name).is_none_or(|old| old.key != s.key))
            .map(|s| s.name.clone())
            .collect();
        Ok(Recheck::Moved {
            moved,
            plan,
            changed,
        })
    }

    /// The planned step called `name`.
    pub fn step(&self, name: &str) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// Resolve a git input and check its tree out (one line on error).
fn pin_git(
    src: &GitSource,
    recipe: &Recipe,
    opts: &PlanOptions,
) -> std::result::Result<GitPin, String> {
    let Some(dir) = &opts.git_dir else {
        return Err(
            "git inputs cannot be planned here: no directory to fetch them into was given (Plan::with_options)"
                .into(),
        );
    };
    let remote = src.remote(&recipe.root);
    let (refname, commit) = git::resolve(src, &remote)?;
    let (tree, holds) = git::checkout(dir, &remote, refname.as_deref(), &commit)?;
    Ok(GitPin {
        source: src.clone(),
        remote,
        refname,
        commit,
        tree,
        holds,
    })
}

/// Whether a directory on the way to `rel` (below `root`) is a symlink, which could lead out
/// of the source tree. (The input itself may be a symlink: it is hashed as one, not followed.)
fn through_symlink(root: &std::path::Path, rel: &str) -> bool {
    let mut p = root.to_path_buf();
    let mut segs: Vec<&str> = rel.split('/').collect();
    segs.pop();
    segs.into_iter().any(|seg| {
        p.push(seg);
        std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Action {
        let cid: Cid = "bafkqaaa".parse().unwrap();
        Action {
            format: ACTION_FORMAT.into(),
            builder: Builder::RootFs(cid),
            command: vec!["sh".into(), "-c".into(), "echo hi > out/x".into()],
            env: BTreeMap::from([("LANG".into(), "C".into()), ("A".into(), "1".into())]),
            inputs: BTreeMap::from([
                (
                    "src".into(),
                    ActionInput::Content {
                        cid,
                        path: String::new(),
                    },
                ),
                (
                    "dep".into(),
                    ActionInput::Output {
                        action: cid,
                        path: "out/lib".into(),
                    },
                ),
            ]),
            outputs: BTreeSet::from(["out/x".into()]),
            output_hash: None,
            network: false,
            kiln: None,
        }
    }

    /// The encoding is the key: this pins it. If it changes on purpose, change
    /// [`ACTION_FORMAT`] too, since every cached key changes with it.
    #[test]
    fn encoding_is_pinned() {
        let a = sample();
        let key = a.key().unwrap();
        assert_eq!(
            key.to_string(),
            "bafyreidofkl5ch34rd2cucnxyx2ymrls3osoiaxtbgnqc3oosgxv6vaibi"
        );
        let back: Action = serde_ipld_dagcbor::from_slice(&a.encode().unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn host_builder_and_fixed_output_are_in_the_key() {
        let a = sample();
        let mut h = a.clone();
        h.builder = Builder::Host;
        assert_ne!(a.key().unwrap(), h.key().unwrap());
        let mut f = a.clone();
        f.output_hash = Some("bafkqaaa".parse().unwrap());
        f.network = true;
        assert_ne!(a.key().unwrap(), f.key().unwrap());
    }
}
