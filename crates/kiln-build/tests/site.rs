//! The `markdown-site` builtin on small trees and on the repository's own documents.

use kiln_build::builtin::{self, BuiltinError};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const README: &str = "# Test site\n\nSee [the guide](sub/guide.md) and [a folder](sub/).\n";

const GUIDE: &str = "\
# Guide

Back to [the top](../README.md#x), on to [the other page](other.md).

## Table

| key | value |
|-----|-------|
| a   | `1`   |

## Code

```sh
echo 'hello' > out.txt
```

<script>alert('owned')</script>

![logo](logo.png)
";

const OTHER: &str = "No heading here, just [a link](https://example.org/x.md).\n";

/// A PNG header is enough: the file is copied, not decoded.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn small_tree(work: &Path) {
    fs::create_dir_all(work.join("docs/sub")).unwrap();
    fs::write(work.join("docs/README.md"), README).unwrap();
    fs::write(work.join("docs/sub/guide.md"), GUIDE).unwrap();
    fs::write(work.join("docs/sub/other.md"), OTHER).unwrap();
    fs::write(work.join("docs/sub/logo.png"), PNG).unwrap();
}

/// Runs the builtin, returning its log.
fn site(work: &Path, a: &[&str]) -> Result<String, BuiltinError> {
    let mut log = Vec::new();
    builtin::run(&args(a), work, &mut log)?;
    Ok(String::from_utf8(log).unwrap())
}

/// Every file under `dir`, relative path → bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn read(path: PathBuf) -> String {
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn renders_a_small_tree() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    small_tree(work);
    let log = site(work, &["markdown-site", "docs", "out/site"]).unwrap();
    assert_eq!(
        log,
        "page README.md -> index.html\n\
         page sub/guide.md -> sub/guide.html\n\
         page sub/other.md -> sub/other.html\n\
         copy sub/logo.png\n\
         3 pages and 1 other file copied into out/site\n"
    );

    let out = work.join("out/site");
    let names: Vec<PathBuf> = files(&out).into_keys().collect();
    assert_eq!(
        names,
        [
            "index.html",
            "sub/guide.html",
            "sub/logo.png",
            "sub/other.html"
        ]
        .map(PathBuf::from)
    );
    assert_eq!(fs::read(out.join("sub/logo.png")).unwrap(), PNG);

    let index = read(out.join("index.html"));
    assert!(index.starts_with("<!doctype html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"));
    assert!(
        index.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
    );
    assert!(index.contains("<title>Test site</title>"), "{index}");
    assert!(index.contains("<a href=\"sub/guide.html\">the guide</a>"));
    // sub/ has no index.html, so the directory link stays as written.
    assert!(index.contains("<a href=\"sub/\">a folder</a>"));
    assert!(index.contains("<h1 id=\"test-site\">"));

    let guide = read(out.join("sub/guide.html"));
    assert!(
        guide.contains("<title>Guide — Test site</title>"),
        "{guide}"
    );
    // Links between pages.
    assert!(
        guide.contains("<a href=\"../index.html#x\">the top</a>"),
        "{guide}"
    );
    assert!(
        guide.contains("<a href=\"other.html\">the other page</a>"),
        "{guide}"
    );
    // The table, the code block, the image.
    assert!(guide.contains("<table>") && guide.contains("<td><code>1</code></td>"));
    assert!(
        guide.contains(
            "<pre><code class=\"language-sh\">echo &#39;hello&#39; &gt; out.txt\n</code></pre>"
        ) || guide
            .contains("<pre><code class=\"language-sh\">echo 'hello' &gt; out.txt\n</code></pre>"),
        "{guide}"
    );
    assert!(
        guide.contains("<img src=\"logo.png\" alt=\"logo\" />"),
        "{guide}"
    );
    // Raw HTML is shown, escaped, never run.
    assert!(!guide.contains("<script"), "{guide}");
    assert!(guide.contains("&lt;script&gt;alert("), "{guide}");
    assert!(guide.contains("Content-Security-Policy"));
    // Navigation from a nested page: relative, up one level, the current page marked.
    assert!(guide.contains("<header><a href=\"../index.html\">Test site</a></header>"));
    assert!(
        guide.contains(
            "<li><a href=\"../index.html\" title=\"README.md\">Test site</a></li>\n\
         <li><a href=\"guide.html\" title=\"sub/guide.md\" aria-current=\"page\">Guide</a></li>\n\
         <li><a href=\"other.html\" title=\"sub/other.md\">other.md</a></li>\n"
        ),
        "{guide}"
    );
    // No absolute links to the site's own pages anywhere (it must work under /ipfs/CID/).
    for (name, bytes) in files(&out) {
        if name.extension().is_some_and(|e| e == "html") {
            let html = String::from_utf8(bytes).unwrap();
            assert!(!html.contains("href=\"/"), "{}", name.display());
            assert!(!html.contains("src=\"/"), "{}", name.display());
        }
    }

    // A page without a heading is titled by its file name; absolute URLs are untouched.
    let other = read(out.join("sub/other.html"));
    assert!(other.contains("<title>other.md — Test site</title>"));
    assert!(other.contains("<a href=\"https://example.org/x.md\">a link</a>"));
}

#[test]
fn builds_are_byte_for_byte_identical() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    small_tree(work);
    fs::write(work.join("docs/sub/z.md"), "# Z\n\n[guide](guide.md)\n").unwrap();
    let log_a = site(work, &["markdown-site", "--title", "T", "docs", "a"]).unwrap();
    let log_b = site(work, &["markdown-site", "--title", "T", "docs", "b"]).unwrap();
    assert_eq!(log_a.replace(" a\n", "\n"), log_b.replace(" b\n", "\n"));
    let (a, b) = (files(&work.join("a")), files(&work.join("b")));
    assert_eq!(a.len(), 5);
    assert_eq!(a, b);
    // The same tree somewhere else gives the same bytes too.
    let elsewhere = tempfile::tempdir().unwrap();
    small_tree(elsewhere.path());
    fs::write(
        elsewhere.path().join("docs/sub/z.md"),
        "# Z\n\n[guide](guide.md)\n",
    )
    .unwrap();
    site(
        elsewhere.path(),
        &["markdown-site", "--title", "T", "docs", "c"],
    )
    .unwrap();
    assert_eq!(files(&elsewhere.path().join("c")), a);
}

#[test]
fn generated_index_when_there_is_no_readme() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    fs::create_dir_all(work.join("in/deep/er")).unwrap();
    fs::write(work.join("in/b.md"), "# Bee & co\n").unwrap();
    fs::write(work.join("in/a.md"), "# Ay\n\n[up](deep/er/README.md)\n").unwrap();
    fs::write(
        work.join("in/deep/er/README.md"),
        "# Deep\n\n[home](../../)\n",
    )
    .unwrap();
    let log = site(work, &["markdown-site", "in", "out"]).unwrap();
    assert!(
        log.contains("page index.html (generated: list of 3 pages)\n"),
        "{log}"
    );
    let index = read(work.join("out/index.html"));
    assert!(index.contains("<title>Documentation</title>"), "{index}");
    assert!(
        index.contains(
            "<ul class=\"pages\">\n<li><a href=\"a.html\">Ay</a></li>\n\
         <li><a href=\"b.html\">Bee &amp; co</a></li>\n\
         <li><a href=\"deep/er/index.html\">Deep</a></li>\n</ul>\n"
        ),
        "{index}"
    );
    let deep = read(work.join("out/deep/er/index.html"));
    assert!(
        deep.contains("<a href=\"../../index.html\">home</a>"),
        "{deep}"
    );
    assert!(deep.contains("<li><a href=\"../../index.html\">Documentation</a></li>"));
    assert!(deep.contains("<li><a href=\"../../b.html\" title=\"b.md\">Bee &amp; co</a></li>"));
    let a = read(work.join("out/a.html"));
    assert!(a.contains("<a href=\"deep/er/index.html\">up</a>"), "{a}");
}

#[test]
fn links_hidden_files_and_the_output_inside_the_input() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    fs::create_dir_all(work.join(".git")).unwrap();
    fs::write(work.join(".git/config"), "secret").unwrap();
    fs::write(work.join("README.md"), "# Top\n").unwrap();
    fs::write(work.join("secret.md"), "# Secret\n").unwrap();
    std::os::unix::fs::symlink("secret.md", work.join("link.md")).unwrap();
    std::os::unix::fs::symlink("/etc", work.join("etc")).unwrap();
    // The whole work directory as input, the site inside it.
    let log = site(work, &["markdown-site", ".", "site"]).unwrap();
    assert_eq!(
        log,
        "skip .git (hidden)\n\
         skip etc (symbolic link, not followed)\n\
         skip link.md (symbolic link, not followed)\n\
         page README.md -> index.html\n\
         page secret.md -> secret.html\n\
         2 pages and 0 other files copied into site\n"
    );
    let names: Vec<PathBuf> = files(&work.join("site")).into_keys().collect();
    assert_eq!(names, ["index.html", "secret.html"].map(PathBuf::from));

    // An input reached through a link is refused.
    let e = site(work, &["markdown-site", "etc", "site2"]).unwrap_err();
    assert!(matches!(e, BuiltinError::Symlink { .. }), "{e}");
}

#[test]
fn errors() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    small_tree(work);
    let err = |a: &[&str]| site(work, a).unwrap_err().to_string();

    assert_eq!(
        err(&["markdown-sight", "docs", "out"]),
        "unknown builtin \"markdown-sight\" (known: markdown-site)"
    );
    assert_eq!(
        err(&["markdown-site", "docs"]),
        "markdown-site: expected IN and OUT, got 1 argument \
         (usage: markdown-site [--title TITLE] IN OUT)"
    );
    assert_eq!(
        err(&["markdown-site", "--theme", "dark", "docs", "out"]),
        "markdown-site: unknown option \"--theme\" (usage: markdown-site [--title TITLE] IN OUT)"
    );
    assert_eq!(
        err(&["markdown-site", "docs", "/tmp/out"]),
        "markdown-site: OUT \"/tmp/out\" must be a relative path inside the work directory \
         (no leading '/', no '..')"
    );
    assert!(err(&["markdown-site", "docs/../..", "out"]).contains("IN \"docs/../..\""));
    assert_eq!(
        err(&["markdown-site", "nodocs", "out"]),
        "input directory nodocs does not exist"
    );
    assert_eq!(
        err(&["markdown-site", "docs/README.md", "out"]),
        "docs/README.md is not a directory"
    );
    assert_eq!(
        err(&["markdown-site", "docs", "docs/sub"]),
        "output directory docs/sub already exists and is not empty"
    );
    assert_eq!(
        err(&["markdown-site", "docs", "./docs"]),
        "output directory docs is the input directory"
    );
    fs::write(work.join("file"), "").unwrap();
    assert_eq!(
        err(&["markdown-site", "docs", "file"]),
        "file is not a directory"
    );
    // Nothing was written by the failed runs.
    assert!(!work.join("out").exists());

    // An empty output directory is fine.
    fs::create_dir(work.join("empty")).unwrap();
    site(work, &["markdown-site", "docs", "empty"]).unwrap();
    assert!(work.join("empty/index.html").is_file());

    // Two inputs that would become the same output.
    fs::write(work.join("docs/sub/guide.html"), "<p>hand-written</p>").unwrap();
    assert_eq!(
        err(&["markdown-site", "docs", "out"]),
        "sub/guide.html and sub/guide.md would both become sub/guide.html"
    );
    fs::remove_file(work.join("docs/sub/guide.html")).unwrap();

    // A Markdown file that is not UTF-8.
    fs::write(work.join("docs/bad.md"), b"# \xff\n").unwrap();
    assert_eq!(
        err(&["markdown-site", "docs", "out"]),
        "cannot read docs/bad.md: the file is not UTF-8 text"
    );
}

#[test]
fn non_utf8_names_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    small_tree(work);
    let name = std::ffi::OsStr::from_bytes(b"bad-\xff.md");
    if fs::write(work.join("docs/sub").join(name), "# x\n").is_err() {
        return; // a file system that insists on UTF-8 names
    }
    let e = site(work, &["markdown-site", "docs", "out"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "docs/sub: file name \"bad-\u{fffd}.md\" is not valid UTF-8"
    );
}

/// kiln's own documents render, with an index and working links between them. (Only the
/// structure is checked, so editing the documents does not break this test.)
#[test]
fn renders_the_repository_docs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let docs = [
        "README.md",
        "ARCHITECTURE.md",
        "crates/kiln-build/RECIPES.md",
    ];
    for doc in docs {
        let to = work.join("docs").join(doc);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(repo.join(doc), &to).unwrap();
    }
    let log = site(work, &["markdown-site", "docs", "site"]).unwrap();
    assert_eq!(
        log,
        "page README.md -> index.html\n\
         page ARCHITECTURE.md -> ARCHITECTURE.html\n\
         page crates/kiln-build/RECIPES.md -> crates/kiln-build/RECIPES.html\n\
         3 pages and 0 other files copied into site\n"
    );
    // Each page and its navigation links, in order, relative to itself.
    let pages = [
        (
            "index.html",
            [
                "index.html",
                "ARCHITECTURE.html",
                "crates/kiln-build/RECIPES.html",
            ],
        ),
        (
            "ARCHITECTURE.html",
            [
                "index.html",
                "ARCHITECTURE.html",
                "crates/kiln-build/RECIPES.html",
            ],
        ),
        (
            "crates/kiln-build/RECIPES.html",
            [
                "../../index.html",
                "../../ARCHITECTURE.html",
                "RECIPES.html",
            ],
        ),
    ];
    for (page, nav) in pages {
        let html = read(work.join("site").join(page));
        assert!(html.starts_with("<!doctype html>\n"), "{page}");
        assert!(
            html.ends_with("</main>\n</div>\n</body>\n</html>\n"),
            "{page}"
        );
        assert!(!html.contains("<script"), "{page}");
        assert!(!html.contains("<title></title>"), "{page}");
        let links: Vec<&str> = html
            .split("<li><a href=\"")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .collect();
        assert_eq!(links, nav, "{page}");
        // Every heading has an id.
        for level in 1..=6 {
            let open = format!("<h{level}");
            assert_eq!(
                html.matches(&open).count(),
                html.matches(&format!("{open} id=\"")).count(),
                "{page}"
            );
        }
    }
    let recipes = read(work.join("site/crates/kiln-build/RECIPES.html"));
    assert!(recipes.contains("<table>"));
    assert!(recipes.contains("<pre><code class=\"language-toml\">"));
}
