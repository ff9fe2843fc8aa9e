//! `kiln build --plan`: the action keys of a recipe, from the real binary.

mod common;

use common::{Repo, write};
use std::collections::BTreeMap;

const RECIPE: &str = r#"
[params]
version = "dev"

[step.app]
builder = "host"
command = ["cc", "-DVERSION={version}", "-o", "out/app", "main.c", "lib/lib.o"]
inputs = { "main.c" = "main.c", "lib" = "step:lib/out" }
outputs = ["out/app"]

[step.lib]
builder = "host"
command = ["cc", "-c", "src/lib.c", "-o", "out/lib.o"]
inputs = { "src" = "src" }
outputs = ["out"]
"#;

fn tree(r: &Repo, name: &str) -> String {
    let d = r.path(name);
    std::fs::create_dir_all(d.join("src")).unwrap();
    write(&d.join("src/lib.c"), b"int f(void) { return 1; }\n");
    write(&d.join("main.c"), b"int main(void) { return 0; }\n");
    write(&d.join("kiln.toml"), RECIPE.as_bytes());
    d.to_str().unwrap().to_string()
}

fn plan(out: &str) -> Vec<(String, String)> {
    out.lines()
        .map(|l| {
            let (n, c) = l.split_once(' ').unwrap();
            (n.to_string(), c.to_string())
        })
        .collect()
}

#[test]
fn plan_prints_steps_and_keys_in_order() {
    let r = Repo::new();
    let a = tree(&r, "a");
    let b = tree(&r, "b");
    let got = plan(&r.ok(&["build", "--plan", &a]));
    let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["lib", "app"]);
    // The same keys as the library computes, and from another location.
    let recipe = kiln_build::Recipe::load(std::path::Path::new(&a)).unwrap();
    let lib = kiln_build::Plan::new(&recipe, &BTreeMap::new()).unwrap();
    for ((n, c), s) in got.iter().zip(&lib.steps) {
        assert_eq!(
            (n.as_str(), c.as_str()),
            (s.name.as_str(), s.key.to_string().as_str())
        );
    }
    assert_eq!(plan(&r.ok(&["build", "--plan", &b])), got);
    // DIR defaults to the current directory.
    let o = r
        .cmd()
        .args(["build", "--plan"])
        .current_dir(&a)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(plan(&String::from_utf8(o.stdout).unwrap()), got);
    // A parameter changes the step that uses it only.
    let v = plan(&r.ok(&["build", "--plan", "--param", "version=v1.2.0", &a]));
    assert_eq!(v[0], got[0]);
    assert_ne!(v[1], got[1]);
}

#[test]
fn plan_errors_are_one_line() {
    let r = Repo::new();
    let a = tree(&r, "a");
    let e = r.fails(&["build", "--plan", "--param", "verison=1", &a]);
    assert!(
        e.contains("kiln.toml: unknown parameter \"verison\""),
        "{e}"
    );
    let e = r.fails(&["build", "--plan", "--param", "version", &a]);
    assert!(e.contains("expected NAME=VALUE"), "{e}");
    write(
        &r.path("a/kiln.toml"),
        RECIPE.replace("step:lib/out", "step:lib/other").as_bytes(),
    );
    let e = r.fails(&["build", "--plan", &a]);
    assert!(
        e.contains(
            "kiln.toml: step \"app\": inputs.\"lib\": step \"lib\" declares no output \"other\""
        ),
        "{e}"
    );
    let e = r.fails(&["build", "--plan", &r.path("nowhere").to_string_lossy()]);
    assert!(e.contains("kiln.toml: cannot read recipe"), "{e}");
}
