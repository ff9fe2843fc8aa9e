//! The step graph: who takes inputs from whom, a topological order, and the groups of steps
//! that can run at the same time.

use crate::error::{Error, Problem, Result};
use crate::recipe::Recipe;
use std::collections::{BTreeMap, BTreeSet};

/// The dependency graph of a recipe's steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    deps: BTreeMap<String, BTreeSet<String>>,
    groups: Vec<Vec<String>>,
}

impl Graph {
    /// The graph of `recipe`'s steps; refuses cycles, naming one.
    pub fn new(recipe: &Recipe) -> Result<Graph> {
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, step) in &recipe.steps {
            let mut ds = BTreeSet::new();
            for d in step.dependencies() {
                if !recipe.steps.contains_key(d) {
                    return Err(Error::Invalid {
                        file: recipe.file.clone(),
                        step: Some(name.clone()),
                        key: "inputs".into(),
                        problem: Problem::UnknownStep(d.into()),
                    });
                }
                ds.insert(d.to_string());
            }
            deps.insert(name.clone(), ds);
        }
        // Kahn's algorithm, one level at a time: a level is every step whose dependencies
        // are all in earlier levels.
        let mut waiting: BTreeMap<&str, usize> =
            deps.iter().map(|(n, ds)| (n.as_str(), ds.len())).collect();
        let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (n, ds) in &deps {
            for d in ds {
                users.entry(d.as_str()).or_default().push(n.as_str());
            }
        }
        let mut ready: Vec<&str> = waiting
            .iter()
            .filter(|(_, c)| **c == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut groups = Vec::new();
        let mut placed = 0;
        while !ready.is_empty() {
            let mut next = Vec::new();
            for &n in &ready {
                for &u in users.get(n).map(Vec::as_slice).unwrap_or_default() {
                    if let Some(c) = waiting.get_mut(u) {
                        *c -= 1;
                        if *c == 0 {
                            next.push(u);
                        }
                    }
                }
            }
            placed += ready.len();
            ready.sort_unstable();
            groups.push(ready.iter().map(|s| s.to_string()).collect());
            ready = next;
        }
        if placed < deps.len() {
            let left: BTreeSet<&str> = waiting
                .iter()
                .filter(|(_, c)| **c > 0)
                .map(|(n, _)| *n)
                .collect();
            return Err(Error::Cycle {
                file: recipe.file.clone(),
                cycle: find_cycle(&deps, &left),
            });
        }
        Ok(Graph { deps, groups })
    }

    /// Every step, each after the steps it depends on (ties in name order).
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().flatten().map(String::as_str)
    }

    /// Groups of steps that can run concurrently: each group depends only on earlier ones.
    pub fn groups(&self) -> &[Vec<String>] {
        &self.groups
    }

    /// The steps `step` takes inputs from.
    pub fn dependencies(&self, step: &str) -> Option<&BTreeSet<String>> {
        self.deps.get(step)
    }
}

/// A cycle among `left`, the steps Kahn's algorithm could not place: each of them depends on
/// another of them, so walking dependencies from any one must come back to a step seen before.
fn find_cycle(deps: &BTreeMap<String, BTreeSet<String>>, left: &BTreeSet<&str>) -> Vec<String> {
    let Some(&start) = left.first() else {
        return Vec::new();
    };
    let mut path: Vec<&str> = vec![start];
    loop {
        let Some(&cur) = path.last() else {
            return Vec::new();
        };
        let next = deps
            .get(cur)
            .and_then(|ds| ds.iter().find(|d| left.contains(d.as_str())));
        let Some(next) = next else {
            return path.iter().map(|s| s.to_string()).collect();
        };
        if let Some(i) = path.iter().position(|p| *p == next.as_str()) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            // Start at the smallest name so the message does not depend on the walk.
            let min = cycle
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.cmp(b.1))
                .map_or(0, |(i, _)| i);
            cycle.rotate_left(min);
            let first = cycle[0].clone();
            cycle.push(first);
            return cycle;
        }
        path.push(next.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::{Builder, Input, Limits, Step};
    use std::path::PathBuf;

    fn recipe(edges: &[(&str, &[&str])]) -> Recipe {
        let steps = edges
            .iter()
            .map(|(n, ds)| {
                let inputs = ds
                    .iter()
                    .map(|d| {
                        (
                            format!("in/{d}"),
                            Input::Step {
                                step: d.to_string(),
                                path: "out".into(),
                            },
                        )
                    })
                    .collect();
                let step = Step {
                    name: n.to_string(),
                    builder: Builder::Host,
                    command: vec!["true".into()],
                    env: BTreeMap::new(),
                    inputs,
                    outputs: vec!["out".into()],
                    output_hash: None,
                    limits: Limits::default(),
                    cache: vec![],
                };
                (n.to_string(), step)
            })
            .collect();
        Recipe {
            file: PathBuf::from("kiln.toml"),
            root: PathBuf::from("."),
            params: BTreeMap::new(),
            steps,
            schedule: None,
        }
    }

    #[test]
    fn diamond() {
        let g = Graph::new(&recipe(&[
            ("d", &["b", "c"]),
            ("b", &["a"]),
            ("c", &["a"]),
            ("a", &[]),
            ("e", &[]),
        ]))
        .unwrap();
        assert_eq!(g.order().collect::<Vec<_>>(), ["a", "e", "b", "c", "d"]);
        assert_eq!(
            g.groups(),
            [vec!["a", "e"], vec!["b", "c"], vec!["d"]]
                .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
        );
        assert_eq!(g.dependencies("d").unwrap().len(), 2);
    }

    #[test]
    fn uneven_levels() {
        // c needs a (level 0) and b (level 1): it must wait for level 2.
        let g = Graph::new(&recipe(&[("a", &[]), ("b", &["a"]), ("c", &["a", "b"])])).unwrap();
        assert_eq!(g.groups().len(), 3);
        assert_eq!(g.order().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn cycles_are_named() {
        let e = Graph::new(&recipe(&[
            ("a", &[]),
            ("x", &["a", "z"]),
            ("y", &["x"]),
            ("z", &["y"]),
            ("w", &["z"]),
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "kiln.toml: step \"x\": steps form a cycle: x -> z -> y -> x"
        );
        let e = Graph::new(&recipe(&[("s", &["s"])])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kiln.toml: step \"s\": steps form a cycle: s -> s"
        );
    }
}
