//! Builds for kiln: recipes (`kiln.toml`), the graph of their steps, and the canonical
//! [`Action`] each step normalises to, whose CID is the step's action key.
//!
//! ```
//! use kiln_build::{Recipe, Plan};
//! use std::collections::BTreeMap;
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("hello.c"), "int main(void) { return 0; }\n").unwrap();
//! std::fs::write(
//!     dir.path().join("kiln.toml"),
//!     r#"
//! [step.hello]
//! builder = "host"
//! command = ["cc", "-o", "out/hello", "src/hello.c"]
//! inputs = { "src/hello.c" = "hello.c" }
//! outputs = ["out/hello"]
//! "#,
//! )
//! .unwrap();
//! let recipe = Recipe::load(dir.path()).unwrap();
//! let plan = Plan::new(&recipe, &BTreeMap::new()).unwrap();
//! assert_eq!(plan.steps[0].name, "hello");
//! println!("{}", plan.steps[0].key);
//! ```
//!
//! The format is documented in `RECIPES.md` beside this crate.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]
// Recipe errors carry the file, step and key they are about; they are cold paths.
#![allow(clippy::result_large_err)]

pub mod action;
pub mod builtin;
pub mod content;
mod error;
pub mod exec;
pub mod git;
pub mod graph;
pub mod hold;
pub mod index;
pub mod owners;
pub mod recipe;
pub mod record;
pub mod sandbox;
pub mod schedule;
pub mod tree;

pub use action::{Action, ActionInput, Moved, Plan, PlanOptions, PlannedStep, Recheck};
pub use error::{Error, Problem, Result};
pub use git::{GitPin, GitSource};
pub use graph::Graph;
pub use recipe::{Builder, Input, Limits, Recipe, Step};
pub use schedule::Schedule;
