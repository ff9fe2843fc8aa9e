//! The layers point one way (ARCHITECTURE.md, "Layers point one way"): the wire shapes
//! depend on serde alone; `kiln-api` is routes, extractors and rendering, so it neither
//! reaches the database nor runs engines of its own; the command line touches the HTTP
//! server only where it starts the daemon. These checks read the sources, so a change
//! that crosses a layer fails here with the file and the line that crossed it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The names in `[dependencies]` of crate `name`'s manifest.
fn dependencies(name: &str) -> BTreeSet<String> {
    let path = workspace().join("crates").join(name).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let manifest: toml::Table = toml::from_str(&text).expect("manifest parses");
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every `.rs` file under `dir`, with its text cut before its unit-test module.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                let shipped = match text.find("#[cfg(test)]\nmod tests") {
                    Some(at) => text[..at].to_string(),
                    None => text,
                };
                out.push((path, shipped));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

/// The `file:line: text` of every non-comment line of `files` containing one of `needles`.
fn offending(files: &[(PathBuf, String)], needles: &[&str]) -> Vec<String> {
    let root = workspace();
    let mut hits = Vec::new();
    for (path, text) in files {
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if needles.iter().any(|needle| code.contains(needle)) {
                let shown = path.strip_prefix(&root).unwrap_or(path);
                hits.push(format!("{}:{}: {}", shown.display(), n + 1, code));
            }
        }
    }
    hits
}

#[test]
fn the_wire_shapes_depend_on_serde_alone() {
    let deps = dependencies("kiln-wire");
    assert_eq!(deps, BTreeSet::from(["serde".to_string()]));
}

#[test]
fn the_api_crate_reaches_neither_the_database_nor_the_build_engine() {
    let deps = dependencies("kiln-api");
    for banned in ["rusqlite", "kiln-build"] {
        assert!(
            !deps.contains(banned),
            "kiln-api depends on {banned}; that work belongs to kiln-node"
        );
    }
    assert!(
        deps.contains("kiln-node"),
        "kiln-api goes through kiln-node"
    );
}

#[test]
fn the_api_crate_runs_no_engine_and_records_no_event_of_its_own() {
    let files = sources(&workspace().join("crates/kiln-api/src"));
    let hits = offending(
        &files,
        &[
            "thread::spawn",
            "std::thread",
            "thread::Builder",
            "rusqlite",
            "SELECT ",
            "INSERT INTO",
            "DELETE FROM",
            "kiln_build::",
            "journal::record(",
            ".pin_add(",
            ".pin_rm(",
        ],
    );
    assert!(
        hits.is_empty(),
        "kiln-api must leave these to kiln-node:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_command_line_touches_the_server_only_to_start_the_daemon() {
    let dir = workspace().join("crates/kiln/src");
    let files = sources(&dir);
    let allowed = [dir.join("cmd/daemon.rs"), dir.join("config.rs")];
    let elsewhere: Vec<_> = files
        .into_iter()
        .filter(|(path, _)| !allowed.contains(path))
        .collect();
    let hits = offending(
        &elsewhere,
        &["kiln_api", "axum", "hyper::server", "tower::"],
    );
    assert!(
        hits.is_empty(),
        "the command line talks to a daemon over HTTP, never through server code:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    // A check that cannot match proves nothing: the allowed files do use kiln_api.
    let dir = workspace().join("crates/kiln/src");
    let daemon = sources(&dir)
        .into_iter()
        .filter(|(path, _)| *path == dir.join("cmd/daemon.rs"))
        .collect::<Vec<_>>();
    assert!(!offending(&daemon, &["kiln_api"]).is_empty());
    let store = sources(&workspace().join("crates/kiln-store/src"));
    assert!(!offending(&store, &["rusqlite"]).is_empty());
}

#[test]
fn kilns_own_routes_render_errors_with_kilns_table() {
    // `ApiError` renders node errors as kubo does (a missing thing is a 500); kiln's API
    // answers with each kind's status, through `KilnError`. A route of kiln's API that
    // names `ApiError` could answer with the wrong table.
    let api = workspace().join("crates/kiln-api/src");
    let routes: Vec<_> = sources(&api)
        .into_iter()
        .filter(|(path, _)| {
            [
                api.join("native.rs"),
                api.join("builds.rs"),
                api.join("builds/schedules.rs"),
            ]
            .contains(path)
        })
        .collect();
    assert_eq!(
        routes.len(),
        3,
        "kiln's API route files moved: update this test"
    );
    let hits = offending(&routes, &["ApiError"]);
    assert!(
        hits.is_empty(),
        "kiln's API routes answer with KilnError, not the Kubo RPC's ApiError:\n{}",
        hits.join("\n")
    );
    assert!(!offending(&routes, &["KilnError"]).is_empty());
}

#[test]
fn commands_reach_a_node_only_through_the_client_interface() {
    // A command asks `client::Node` and formats the answer; it never branches on what kind
    // of node it talks to, never speaks HTTP itself and never opens the store (except the
    // two documented commands that read the build index through `client::Local`, and
    // `init`/`daemon`, which create and serve the repository).
    let dir = workspace().join("crates/kiln/src");
    let commands: Vec<_> = sources(&dir.join("cmd"))
        .into_iter()
        .filter(|(path, _)| *path != dir.join("cmd/daemon.rs") && *path != dir.join("cmd/repo.rs"))
        .collect();
    assert!(
        commands.len() >= 8,
        "the command modules moved: update this test"
    );
    let hits = offending(
        &commands,
        &[
            "Target",
            "remote::",
            "Daemon",
            "rpc_json",
            "get_json",
            "post_json",
            "repo::open",
            "kiln_store::Store",
            "content::session",
            "content::commit",
            "pins::add(",
            "pins::remove(",
        ],
    );
    assert!(
        hits.is_empty(),
        "commands go through client::Node (client/local.rs, client/http.rs):\n{}",
        hits.join("\n")
    );
    // The needles can match: the HTTP client uses them.
    let http = sources(&dir.join("client"));
    assert!(!offending(&http, &["Daemon", "rpc_json", "content::commit"]).is_empty());
}

#[test]
fn the_gateway_reads_through_the_node_layer() {
    // Every format the gateway serves reads through kiln-node's `content::Reader`, made for
    // the gateway's caller: the one place where reading will be authorized.
    let api = workspace().join("crates/kiln-api/src");
    let gateway: Vec<_> = sources(&api)
        .into_iter()
        .filter(|(path, _)| {
            *path == api.join("gateway.rs") || path.starts_with(api.join("gateway"))
        })
        .collect();
    assert!(
        gateway.len() >= 4,
        "the gateway's files moved: update this test"
    );
    let hits: Vec<_> = offending(&gateway, &["s.store", "kiln_store::", "Store"])
        .into_iter()
        .filter(|h| !h.contains("content::reader(&s.store"))
        .collect();
    assert!(
        hits.is_empty(),
        "the gateway reads content through kiln_node::content::reader only:\n{}",
        hits.join("\n")
    );
    assert_eq!(
        offending(&gateway, &["content::reader("]).len(),
        1,
        "one reader per gateway request"
    );
}
