//! `kiln build`: so far only `--plan`, which prints each step's action key in build order.

use crate::cli::BuildArgs;
use anyhow::{Result, anyhow, bail};
use kiln_build::{Plan, Recipe};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

/// `NAME=VALUE` parameters; a name given twice is an error.
fn params(given: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in given {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--param {p:?}: expected NAME=VALUE");
        };
        if out.insert(k.to_string(), v.to_string()).is_some() {
            bail!("--param {k:?} given twice");
        }
    }
    Ok(out)
}

pub fn run(a: BuildArgs) -> Result<ExitCode> {
    if !a.plan {
        bail!(
            "running builds is not implemented yet; `kiln build --plan [DIR]` prints the action keys"
        );
    }
    let params = params(&a.params)?;
    // The library's errors are already one line naming file, step and key (with their cause);
    // keep them as the whole message rather than repeating the cause chain.
    let recipe = Recipe::load(&a.dir).map_err(|e| anyhow!("{e}"))?;
    let plan = Plan::new(&recipe, &params).map_err(|e| anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    for s in &plan.steps {
        writeln!(out, "{} {}", s.name, s.key)?;
    }
    Ok(ExitCode::SUCCESS)
}
