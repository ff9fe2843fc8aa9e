//! Recipes in temporary source trees: action keys, bad recipes and the step graph.

use kiln_build::{Action, ActionInput, Builder, Error, Plan, Recipe};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const RECIPE: &str = r#"
[params]
version = "dev"

[step.lib]
builder = "host"
command = ["sh", "-c", "cc -c src/lib.c -o out/lib.o"]
env = { CFLAGS = "-O2", LANG = "C" }
inputs = { "src" = "src" }
outputs = ["out/lib.o"]

[step.app]
builder = "bafkqaaa"
command = ["sh", "-c", "cc -DVERSION={version} main.c lib/lib.o -o out/app"]
env = { VERSION = "{version}" }
inputs = { "main.c" = "main.c", "lib" = "step:lib/out/lib.o", "data" = "/ipfs/bafkqaaa" }
outputs = ["out/app", "out/app.map"]
cache = ["target"]

[step.app.limits]
time = "10m"
memory = "512MiB"

[step.docs]
builder = "host"
command = ["true"]
inputs = { "README" = "README" }
outputs = ["html"]
"#;

fn tree(dir: &Path, recipe: &str) {
    fs::create_dir_all(dir.join("src/inc")).unwrap();
    fs::write(dir.join("src/lib.c"), "int f(void) { return 1; }\n").unwrap();
    fs::write(dir.join("src/inc/lib.h"), "int f(void);\n").unwrap();
    fs::write(dir.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    fs::write(dir.join("README"), "hello\n").unwrap();
    fs::write(dir.join("kiln.toml"), recipe).unwrap();
}

/// Keys by step name for `recipe` in a fresh tree, after `edit` has changed the tree.
fn keys_with(
    recipe: &str,
    params: &[(&str, &str)],
    edit: impl FnOnce(&Path),
) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), recipe);
    edit(dir.path());
    let r = Recipe::load(dir.path()).unwrap();
    let params = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Plan::new(&r, &params)
        .unwrap()
        .steps
        .into_iter()
        .map(|s| (s.name, s.key.to_string()))
        .collect()
}

fn keys(recipe: &str) -> BTreeMap<String, String> {
    keys_with(recipe, &[], |_| {})
}

#[test]
fn keys_are_dag_cbor_cidv1_and_decode_back() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), RECIPE);
    let r = Recipe::load(dir.path()).unwrap();
    let plan = Plan::new(&r, &BTreeMap::new()).unwrap();
    let names: Vec<_> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["docs", "lib", "app"]);
    let app = plan.step("app").unwrap();
    assert_eq!(app.group, 1);
    assert_eq!(app.key.version(), cid::Version::V1);
    assert_eq!(app.key.codec(), 0x71);
    assert_eq!(app.key.hash().code(), 0x12);
    let bytes = app.action.encode().unwrap();
    let back: Action = serde_ipld_dagcbor::from_slice(&bytes).unwrap();
    assert_eq!(back, app.action);
    assert_eq!(back.key().unwrap(), app.key);
    // Parameters substituted; the dependency referenced by its key.
    assert_eq!(app.action.env["VERSION"], "dev");
    assert!(app.action.command[2].contains("-DVERSION=dev"));
    assert_eq!(
        app.action.inputs["lib"],
        ActionInput::Output {
            action: plan.step("lib").unwrap().key,
            path: "out/lib.o".into()
        }
    );
    assert!(matches!(app.action.builder, Builder::RootFs(_)));
    assert!(!app.action.network);
    // No host path anywhere in the encoding.
    let root = dir.path().to_str().unwrap().as_bytes();
    assert!(!bytes.windows(root.len()).any(|w| w == root));
}

#[test]
fn an_input_byte_changes_the_key_and_its_dependents() {
    let base = keys(RECIPE);
    let edited = keys_with(RECIPE, &[], |d| {
        fs::write(d.join("src/inc/lib.h"), "int f(void); \n").unwrap()
    });
    assert_ne!(base["lib"], edited["lib"]);
    assert_ne!(base["app"], edited["app"], "app takes lib's output");
    assert_eq!(base["docs"], edited["docs"]);
}

#[test]
fn command_env_and_params_change_the_key() {
    let base = keys(RECIPE);
    let cmd = keys(&RECIPE.replace("-o out/lib.o", "-o  out/lib.o"));
    assert_ne!(base["lib"], cmd["lib"]);
    let env = keys(&RECIPE.replace("\"-O2\"", "\"-O3\""));
    assert_ne!(base["lib"], env["lib"]);
    let env_added = keys(&RECIPE.replace("LANG = \"C\"", "LANG = \"C\", TZ = \"UTC\""));
    assert_ne!(base["lib"], env_added["lib"]);
    let param = keys_with(RECIPE, &[("version", "v1.2.0")], |_| {});
    assert_ne!(base["app"], param["app"]);
    assert_eq!(base["lib"], param["lib"], "lib does not use the parameter");
    let default = keys(&RECIPE.replace("version = \"dev\"", "version = \"v1.2.0\""));
    assert_eq!(default["app"], param["app"]);
    let output_hash = keys(&RECIPE.replace(
        "outputs = [\"html\"]",
        "outputs = [\"html\"]\noutput_hash = \"bafkqaaa\"",
    ));
    assert_ne!(base["docs"], output_hash["docs"]);
}

#[test]
fn order_location_limits_and_cache_do_not_change_the_key() {
    let base = keys(RECIPE);
    // The same recipe written differently: tables and keys reordered, env reordered,
    // inline tables expanded, outputs listed in another order.
    let reordered = r#"
[step.docs]
outputs = ["html"]
inputs = { "README" = "README" }
command = ["true"]
builder = "host"

[step.app]
outputs = ["out/app.map", "out/app"]
env.VERSION = "{version}"
builder = "bafkqaaa"
command = ["sh", "-c", "cc -DVERSION={version} main.c lib/lib.o -o out/app"]

[step.app.inputs]
"data" = "/ipfs/bafkqaaa"
"lib" = "step:lib/out/lib.o"
"main.c" = "main.c"

[step.lib]
inputs = { "src" = "src" }
env = { LANG = "C", CFLAGS = "-O2" }
outputs = ["out/lib.o"]
command = ["sh", "-c", "cc -c src/lib.c -o out/lib.o"]
builder = "host"

[params]
version = "dev"
"#;
    assert_eq!(base, keys(reordered));
    // Another location of the source tree (a different temp dir each call), limits and
    // cache directories.
    let other = keys_with(RECIPE, &[], |_| {});
    assert_eq!(base, other);
    let limits = keys(
        &RECIPE
            .replace("time = \"10m\"", "time = \"2h\"")
            .replace("512MiB", "4GiB"),
    );
    assert_eq!(base, limits);
    let cache = keys(&RECIPE.replace("cache = [\"target\"]", "cache = [\"target\", \"build\"]"));
    assert_eq!(base, cache);
    let no_limits = keys(&RECIPE.replace(
        "[step.app.limits]\ntime = \"10m\"\nmemory = \"512MiB\"\n",
        "",
    ));
    assert_eq!(base, no_limits);
}

/// The one-line error for `recipe` (loaded, then planned).
fn error(recipe: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), recipe);
    let e = match Recipe::load(dir.path()) {
        Err(e) => e,
        Ok(r) => Plan::new(&r, &BTreeMap::new()).unwrap_err(),
    };
    let s = e.to_string();
    assert!(!s.contains('\n'), "not one line: {s}");
    let file = dir.path().join("kiln.toml");
    assert!(s.starts_with(&format!("{}: ", file.display())), "{s}");
    s[file.to_str().unwrap().len() + 2..].to_string()
}

const ONE: &str = r#"
[step.one]
builder = "host"
command = ["true"]
inputs = { "src" = "src" }
outputs = ["out"]
"#;

#[test]
fn bad_recipes_name_file_step_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "builder = \"host\"",
            "builder = \"docker:alpine\"",
            "step \"one\": builder: unknown builder \"docker:alpine\"",
        ),
        (
            "command = [\"true\"]",
            "command = []",
            "step \"one\": command: the command is empty",
        ),
        (
            "command = [\"true\"]",
            "command = [\"\"]",
            "step \"one\": command: the command is empty",
        ),
        (
            "command = [\"true\"]",
            "command = [\"echo\", \"{nope}\"]",
            "step \"one\": command[1]: unknown parameter {nope}",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"/abs\"]",
            "step \"one\": outputs: \"/abs\" is not a relative path",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"a/../b\"]",
            "step \"one\": outputs: \"a/../b\" is not a relative path",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\", \"out\"]",
            "step \"one\": outputs: \"out\" is declared twice",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = []",
            "step \"one\": outputs: the step declares no outputs",
        ),
        (
            "\"src\" = \"src\"",
            "\"src\" = \"../secret\"",
            "step \"one\": inputs.\"src\": \"../secret\" escapes the source tree",
        ),
        (
            "\"src\" = \"src\"",
            "\"src\" = \"/etc/shadow\"",
            "step \"one\": inputs.\"src\": \"/etc/shadow\" escapes the source tree",
        ),
        (
            "\"src\" = \"src\"",
            "\"/src\" = \"src\"",
            "step \"one\": inputs.\"/src\": \"/src\" is not a relative path",
        ),
        (
            "\"src\" = \"src\"",
            "\"src\" = \"step:nope/out\"",
            "step \"one\": inputs.\"src\": unknown step \"nope\"",
        ),
        (
            "\"src\" = \"src\"",
            "\"src\" = \"step:one\"",
            "step \"one\": inputs.\"src\": bad reference \"step:one\"",
        ),
        (
            "\"src\" = \"src\"",
            "\"src\" = \"/ipfs/notacid\"",
            "step \"one\": inputs.\"src\": bad reference",
        ),
        (
            "\"src\" = \"src\"",
            "\"src\" = \"missing\"",
            "step \"one\": input \"src\": cannot read",
        ),
        (
            "command = [\"true\"]",
            "comand = [\"true\"]",
            "step \"one\": unknown field `comand`",
        ),
        (
            "command = [\"true\"]",
            "command = \"true\"",
            "step \"one\": command: invalid type: string \"true\", expected a sequence",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\"]\nenv = { \"A=B\" = \"x\" }",
            "step \"one\": env.\"A=B\": \"A=B\" is not a valid environment variable name",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\"]\ncache = [\"../target\"]",
            "step \"one\": cache: \"../target\" is not a relative path",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\"]\noutput_hash = \"sha256:abc\"",
            "step \"one\": output_hash: \"sha256:abc\" is not a CID",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\", \"b\"]\noutput_hash = \"bafkqaaa\"",
            "step \"one\": output_hash: a fixed-output step must declare exactly one output",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\"]\nlimits = { time = \"soon\" }",
            "step \"one\": limits.time: bad duration \"soon\"",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\"]\nlimits = { memory = \"lots\" }",
            "step \"one\": limits.memory: bad size \"lots\"",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\"]\nlimits = { time = 5 }",
            "step \"one\": limits.time: invalid type: integer `5`, expected a string",
        ),
        (
            "outputs = [\"out\"]",
            "",
            "step \"one\": missing field `outputs`",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\"]\nlimits = { cpu = 1 }",
            "step \"one\": unknown field `cpu`",
        ),
        (
            "\"src\" = \"src\"",
            "\"src\" = \"src\", \"src/x\" = \"main.c\"",
            "step \"one\": inputs.\"src/x\": \"src/x\" overlaps input \"src\"",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"src/out\"]",
            "step \"one\": outputs: \"src/out\" overlaps input \"src\"",
        ),
        (
            "outputs = [\"out\"]",
            "outputs = [\"out\"]\ncache = [\"out/target\"]",
            "step \"one\": cache: \"out/target\" overlaps output \"out\"",
        ),
        (
            "[step.one]",
            "[step.\"one/two\"]",
            "step \"one/two\": step: names may only use",
        ),
    ];
    for (from, to, want) in cases {
        let recipe = ONE.replacen(from, to, 1);
        assert_ne!(recipe, ONE, "{from} not in the recipe");
        let got = error(&recipe);
        assert!(got.starts_with(want), "{to}:\n got  {got}\n want {want}");
    }
}

#[test]
fn bad_recipe_files() {
    assert!(error("").starts_with("step: the recipe declares no steps"));
    let e = error(&format!("{ONE}\n[stepz.x]\n"));
    assert!(e.starts_with("line 8: unknown field `stepz`"), "{e}");
    let e = error("[step.one\n");
    assert!(e.starts_with("line 1: "), "{e}");
    let e = error(&ONE.replace("outputs = [\"out\"]", "outputs = [\"out\"]\n[step.two]\nbuilder = \"host\"\ncommand = [\"x\"]\noutputs = [\"o\"]\ninputs = { i = \"step:one/elsewhere\" }"));
    assert_eq!(
        e,
        "step \"two\": inputs.\"i\": step \"one\" declares no output \"elsewhere\""
    );
    let dir = tempfile::tempdir().unwrap();
    let e = Recipe::load(dir.path()).unwrap_err();
    assert!(matches!(e, Error::Read { .. }));
    assert!(e.to_string().contains("kiln.toml: cannot read recipe"));
}

#[test]
fn cycles_are_refused() {
    let recipe = r#"
[step.a]
builder = "host"
command = ["true"]
inputs = { x = "step:c/out" }
outputs = ["out"]

[step.b]
builder = "host"
command = ["true"]
inputs = { x = "step:a/out/sub" }
outputs = ["out"]

[step.c]
builder = "host"
command = ["true"]
inputs = { x = "step:b/out" }
outputs = ["out"]
"#;
    assert_eq!(
        error(recipe),
        "step \"a\": steps form a cycle: a -> c -> b -> a"
    );
}

#[test]
fn unknown_parameters_on_the_command_line_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), RECIPE);
    let r = Recipe::load(dir.path()).unwrap();
    let e = Plan::new(
        &r,
        &BTreeMap::from([("verison".to_string(), "1".to_string())]),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("kiln.toml: unknown parameter \"verison\" (declared: version)"),
        "{e}"
    );
}

#[test]
fn concurrency_groups() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), RECIPE);
    let r = Recipe::load(dir.path()).unwrap();
    let g = kiln_build::Graph::new(&r).unwrap();
    let groups: Vec<Vec<&str>> = g
        .groups()
        .iter()
        .map(|v| v.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(groups, [vec!["docs", "lib"], vec!["app"]]);
}

#[test]
fn the_documented_example_loads() {
    let doc = include_str!("../RECIPES.md");
    let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
    let example = &doc[start..start + doc[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), example);
    let r = Recipe::load(dir.path()).unwrap();
    let plan = Plan::new(&r, &BTreeMap::from([("version".into(), "1.0".into())])).unwrap();
    let names: Vec<_> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["fetch", "lib", "app"]);
    let fetch = plan.step("fetch").unwrap();
    assert!(fetch.action.network && fetch.action.output_hash.is_some());
    assert!(!plan.step("app").unwrap().action.network);
}

#[test]
fn inputs_cannot_leave_the_tree_through_a_symlinked_directory() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "s").unwrap();
    let recipe = ONE.replace("\"src\" = \"src\"", "\"x\" = \"link/secret\"");
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &recipe);
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    let r = Recipe::load(dir.path()).unwrap();
    let e = Plan::new(&r, &BTreeMap::new()).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "kiln.toml: step \"one\": inputs.\"x\": \"link/secret\" escapes the source tree"
        ),
        "{e}"
    );
    // A symlink as the input itself is hashed as a link, not followed.
    let recipe = ONE.replace("\"src\" = \"src\"", "\"x\" = \"link\"");
    fs::write(dir.path().join("kiln.toml"), recipe).unwrap();
    let r = Recipe::load(dir.path()).unwrap();
    let plan = Plan::new(&r, &BTreeMap::new()).unwrap();
    let ActionInput::Content { cid, .. } = plan.steps[0].action.inputs["x"] else {
        panic!("not content");
    };
    let want = kiln_core::import::symlink(
        &mut kiln_core::NullSink,
        outside.path().as_os_str().as_encoded_bytes(),
        &kiln_build::tree::options(),
    )
    .unwrap();
    assert_eq!(cid, want.cid);
}
