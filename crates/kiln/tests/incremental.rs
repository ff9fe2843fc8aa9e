//! Incremental builds with cache directories, with real make and real cargo (issue 9): after
//! a source file changed, restored cache files were newer than the freshly written inputs,
//! so make and cargo saw nothing to do and the new output held the old program — and
//! `--check` approved it, reusing the same cache. Inputs and restored caches now get times
//! that show what changed, and `--check` builds without caches.

mod common;

use common::{Repo, needs, text, write};

fn tree(r: &Repo, name: &str, files: &[(&str, &str)]) -> String {
    let dir = r.path(name);
    for (f, body) in files {
        write(&dir.join(f), body.as_bytes());
    }
    dir.to_string_lossy().into_owned()
}

/// `kiln build ARGS…`: (stdout, stderr), the build must succeed.
fn build(r: &Repo, args: &[&str]) -> (String, String) {
    let mut all = vec!["build", "--no-daemon"];
    all.extend_from_slice(args);
    let o = r.run(&all);
    assert!(o.status.success(), "kiln {all:?}: {}", text(&o.stderr));
    (text(&o.stdout), text(&o.stderr))
}

fn output(r: &Repo, stdout: &str, what: &str) -> String {
    let cid = stdout
        .lines()
        .find_map(|l| l.strip_suffix(&format!(" {what}")))
        .unwrap_or_else(|| panic!("no {what} in {stdout}"));
    r.ok(&["cat", cid])
}

const MAKE_RECIPE: &str = r#"
[step.prog]
builder = "host"
command = ["make", "-f", "src/Makefile"]
inputs = { "src" = "src" }
outputs = ["out/said.txt"]
cache = ["obj"]
limits = { time = "120s" }
"#;

const MAKEFILE: &str = "\
out/said.txt: out/prog
\t./out/prog > $@
out/prog: obj/main.o obj/greet.o
\tmkdir -p out
\tcc -o $@ obj/main.o obj/greet.o
obj/%.o: src/%.c src/greet.h
\tmkdir -p obj
\tcc -c -o $@ $<
";

#[test]
fn make_with_a_cache_directory_rebuilds_what_changed() {
    let Some(_) = needs::host_program("make_with_a_cache", "make", "make") else {
        return;
    };
    let r = Repo::new();
    let main = "#include \"greet.h\"\nint main(void) { greet(); return 0; }\n";
    let greet = |word: &str| {
        format!(
            "#include <stdio.h>\n#include \"greet.h\"\nvoid greet(void) {{ puts(\"{word}\"); }}\n"
        )
    };
    let d = tree(
        &r,
        "proj",
        &[
            ("kiln.toml", MAKE_RECIPE),
            ("src/Makefile", MAKEFILE),
            ("src/main.c", main),
            ("src/greet.h", "void greet(void);\n"),
            ("src/greet.c", &greet("one")),
        ],
    );
    let (out, err) = build(&r, &[&d]);
    assert_eq!(output(&r, &out, "prog:out/said.txt"), "one\n");
    assert!(
        err.contains("obj/main.o") && err.contains("obj/greet.o"),
        "{err}"
    );

    // One source changes: only it is compiled again, and the program is the new one.
    write(&r.path("proj/src/greet.c"), greet("two").as_bytes());
    let (out, err) = build(&r, &[&d]);
    assert_eq!(output(&r, &out, "prog:out/said.txt"), "two\n", "{err}");
    assert!(err.contains("-o obj/greet.o"), "greet.c recompiled: {err}");
    assert!(
        !err.contains("-o obj/main.o"),
        "main.c not recompiled: {err}"
    );

    // A header every object depends on: both are compiled again.
    write(&r.path("proj/src/greet.h"), b"void greet(void); /* v2 */\n");
    let (out, err) = build(&r, &[&d]);
    assert_eq!(output(&r, &out, "prog:out/said.txt"), "two\n");
    assert!(
        err.contains("-o obj/greet.o") && err.contains("-o obj/main.o"),
        "{err}"
    );

    // --check rebuilds from the inputs alone (no cache: everything is compiled).
    let (out, err) = build(&r, &["--check", &d]);
    assert!(
        out.contains("reproducible") || err.contains("reproducible"),
        "{out}{err}"
    );
    assert!(
        err.contains("-o obj/greet.o") && err.contains("-o obj/main.o"),
        "{err}"
    );

    // Back to the first source: a new build, and the right program.
    write(&r.path("proj/src/greet.c"), greet("one").as_bytes());
    let (out, err) = build(&r, &[&d]);
    assert_eq!(output(&r, &out, "prog:out/said.txt"), "one\n", "{err}");
}

const CARGO_RECIPE: &str = r#"
[step.hello]
builder = "host"
command = ["sh", "-c", "cargo build --offline --locked --manifest-path src/Cargo.toml --target-dir target && mkdir -p out && ./target/debug/hello > out/said.txt"]
env = { CARGO_HOME = "/tmp/cargo-home" }
inputs = { "src" = "src" }
outputs = ["out/said.txt"]
cache = ["target"]
limits = { time = "300s", memory = "2GiB" }
"#;

#[test]
fn cargo_with_a_cache_directory_rebuilds_what_changed() {
    let Some(_) = needs::host_program("cargo_with_a_cache", "cargo", "cargo") else {
        return;
    };
    let r = Repo::new();
    let main = |word: &str| format!("fn main() {{ println!(\"{word}\"); }}\n");
    let d = tree(
        &r,
        "proj",
        &[
            ("kiln.toml", CARGO_RECIPE),
            (
                "src/Cargo.toml",
                "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2018\"\n",
            ),
            (
                "src/Cargo.lock",
                "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 3\n\n[[package]]\nname = \"hello\"\nversion = \"0.1.0\"\n",
            ),
            ("src/src/main.rs", &main("one")),
        ],
    );
    let (out, err) = build(&r, &[&d]);
    assert_eq!(output(&r, &out, "hello:out/said.txt"), "one\n", "{err}");
    assert!(err.contains("Compiling hello"), "{err}");

    write(&r.path("proj/src/src/main.rs"), main("two").as_bytes());
    let (out, err) = build(&r, &[&d]);
    assert!(
        err.contains("Compiling hello"),
        "the change is compiled: {err}"
    );
    assert_eq!(output(&r, &out, "hello:out/said.txt"), "two\n", "{err}");

    // Only the manifest's comment changes: cargo's own fingerprint decides (the source is
    // unchanged and older than the cache), and the output is right either way.
    write(
        &r.path("proj/src/Cargo.toml"),
        b"[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2018\"\n# touched\n",
    );
    let (out, err) = build(&r, &[&d]);
    assert_eq!(output(&r, &out, "hello:out/said.txt"), "two\n", "{err}");

    let (out, err) = build(&r, &["--check", &d]);
    assert!(
        out.contains("reproducible") || err.contains("reproducible"),
        "{out}{err}"
    );
    assert!(
        err.contains("Compiling hello"),
        "--check compiles from scratch: {err}"
    );
}
