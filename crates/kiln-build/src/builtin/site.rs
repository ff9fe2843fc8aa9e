//! `markdown-site [--title TITLE] IN OUT`: a static HTML site from a directory of Markdown.
//!
//! Every `*.md` file under `IN` becomes a `*.html` page at the same relative path under
//! `OUT`, except that a directory's `README.md` becomes its `index.html`; when nothing
//! becomes the top `index.html`, a page listing all pages is generated there. Other files are
//! copied as they are. Hidden entries (names starting with `.`), symbolic links (never
//! followed) and special files are skipped with a log line; a file name that is not UTF-8 is
//! an error. `OUT` must not exist yet, or be empty; it may lie inside `IN` (it is then left
//! out of the walk).
//!
//! Pages are CommonMark with tables, strikethrough, task lists and heading attributes
//! (`# Title {#id}`); every heading gets an `id` (explicit, or a GitHub-style slug of its
//! text, made unique with `-1`, `-2`, …) and a `#` anchor link. Raw HTML is never passed
//! through: HTML blocks are shown as code, inline HTML as text, and HTML comments are
//! dropped. Link targets with a scheme other than `http`, `https`, `mailto`, `tel`, `ipfs` and
//! `ipns` (or `data:image/…` for images) are replaced with `#`, and each page carries a
//! Content-Security-Policy that allows no scripts. Relative links to `.md` files (with an
//! optional `?query` and `#fragment`) point at the rendered `.html` page (`README.md` at
//! `index.html`), and relative links to a directory of the site that has an `index.html`
//! point at that file, so the site also works from `file://`; links with a scheme or a
//! leading `/` are left alone.
//!
//! Each page has a title (its first heading, or else its file name, then the site title), a
//! small embedded style sheet that works on a phone, and a list of all pages with relative
//! links, so the site works at any URL prefix (for instance `/ipfs/CID/` on a gateway). The
//! site title is `--title`, or else the top page's first heading, or else `Documentation`.
//!
//! The output depends only on the input tree and the arguments: entries are processed in
//! sorted order and nothing time- or host-dependent is written, so rebuilding gives the same
//! bytes, and the same CID.

use super::{BuiltinError, check_no_links, relative_arg, shown};
use pulldown_cmark::{CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The builtin's name, `command[0]`.
pub const NAME: &str = "markdown-site";

/// The synopsis shown in usage errors.
pub const USAGE: &str = "markdown-site [--title TITLE] IN OUT";

/// The site title when `--title` is not given and the top page has no heading.
pub const DEFAULT_TITLE: &str = "Documentation";

/// Link schemes kept in link targets.
const LINK_SCHEMES: &[&str] = &["http", "https", "mailto", "tel", "ipfs", "ipns"];
/// Link schemes kept in image sources (plus `data:image/…`).
const IMAGE_SCHEMES: &[&str] = &["http", "https", "ipfs", "ipns"];

/// Pages may load styles from themselves and images from anywhere; nothing else, and in
/// particular no scripts, even if something got past the escaping.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; \
                   base-uri 'none'; form-action 'none'";

const CSS: &str = r#"
:root{color-scheme:light dark;--fg:#1f2328;--bg:#fff;--muted:#59636e;--line:#d1d9e0;--box:#f6f8fa;--link:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--line:#3d444d;--box:#161b22;--link:#4493f8}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;color:var(--fg);background:var(--bg);font:16px/1.6 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--link)}
header{padding:.6rem 1rem;border-bottom:1px solid var(--line)}
header a{color:var(--fg);font-weight:600;text-decoration:none}
.layout{display:flex;flex-direction:column;max-width:78rem;margin:0 auto}
nav{padding:.5rem 1rem;border-bottom:1px solid var(--line);font-size:.9rem}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.2rem 1.2rem}
nav a{text-decoration:none}
nav a:hover{text-decoration:underline}
nav a[aria-current]{color:var(--fg);font-weight:600}
main{min-width:0;max-width:52rem;padding:.5rem 1rem 3rem;overflow-wrap:break-word}
@media (min-width:60rem){.layout{flex-direction:row}nav{flex:0 0 16rem;border-bottom:0;border-right:1px solid var(--line);padding:1.5rem 1rem}nav ul{display:block}nav li{margin:.3rem 0}main{flex:1;padding:.5rem 2.5rem 3rem}}
h1,h2,h3,h4,h5,h6{line-height:1.25;margin:1.5em 0 .6em}
h1,h2{padding-bottom:.3em;border-bottom:1px solid var(--line)}
.anchor{margin-left:.35em;color:var(--muted);text-decoration:none;opacity:0}
h1:hover .anchor,h2:hover .anchor,h3:hover .anchor,h4:hover .anchor,h5:hover .anchor,h6:hover .anchor{opacity:1}
@media (hover:none){.anchor{opacity:.4}}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.875em}
:not(pre)>code{padding:.15em .35em;background:var(--box);border-radius:4px}
pre{overflow-x:auto;padding:.8rem 1rem;background:var(--box);border-radius:6px;line-height:1.45}
pre code{font-size:1em}
table{display:block;max-width:100%;overflow-x:auto;border-collapse:collapse;margin:1em 0}
th,td{padding:.35rem .75rem;border:1px solid var(--line);vertical-align:top}
th{background:var(--box)}
img{max-width:100%;height:auto}
blockquote{margin:1em 0;padding:0 1em;color:var(--muted);border-left:.25em solid var(--line)}
hr{border:0;border-top:1px solid var(--line);margin:2em 0}
li:has(>input[type=checkbox]){list-style:none}
li>input[type=checkbox]{margin:0 .4em 0 -1.3em}
"#;

struct Args {
    title: Option<String>,
    input: PathBuf,
    output: PathBuf,
}

fn usage(message: impl Into<String>) -> BuiltinError {
    BuiltinError::Usage {
        builtin: NAME,
        message: message.into(),
        usage: USAGE,
    }
}

fn parse_args(args: &[String]) -> Result<Args, BuiltinError> {
    let mut title = None;
    let mut positional = Vec::new();
    let mut options_done = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            positional.push(arg.as_str());
            continue;
        }
        let value = if arg == "--" {
            options_done = true;
            continue;
        } else if arg == "--title" {
            it.next()
                .ok_or_else(|| usage("--title needs a value"))?
                .clone()
        } else if let Some(v) = arg.strip_prefix("--title=") {
            v.to_string()
        } else {
            return Err(usage(format!("unknown option {arg:?}")));
        };
        if value.trim().is_empty() {
            return Err(usage("--title must not be empty"));
        }
        if title.replace(value).is_some() {
            return Err(usage("--title given twice"));
        }
    }
    let [input, output] = positional[..] else {
        return Err(usage(format!(
            "expected IN and OUT, got {} argument{}",
            positional.len(),
            if positional.len() == 1 { "" } else { "s" }
        )));
    };
    let input = relative_arg(NAME, "IN", input)?;
    let output = relative_arg(NAME, "OUT", output)?;
    if output.as_os_str().is_empty() {
        return Err(BuiltinError::BadPath {
            builtin: NAME,
            what: "OUT",
            path: positional[1].to_string(),
        });
    }
    Ok(Args {
        title,
        input,
        output,
    })
}

/// Runs `markdown-site` with `args` (everything after the name) in `work`.
pub fn run(args: &[String], work: &Path, log: &mut dyn io::Write) -> Result<(), BuiltinError> {
    let args = parse_args(args)?;
    build(&args, work, log)
}

/// A file found under `IN`: its path relative to `IN`, by components.
struct Found {
    rel: Vec<String>,
    page: bool,
}

/// One page of the site.
struct Page {
    /// The Markdown source relative to `IN` (none for the generated index).
    src: Option<Vec<String>>,
    /// The HTML file relative to `OUT`.
    out: Vec<String>,
    /// The text of its first heading, if any.
    heading: Option<String>,
    /// Its title: the heading, or else the file name.
    title: String,
    /// The rendered body.
    body: String,
}

/// What link rewriting needs to know about the site.
struct LinkCtx<'a> {
    /// The page's directory, relative to the site's root.
    dir: &'a [String],
    /// Directories of the site that have an `index.html`.
    index_dirs: &'a BTreeSet<Vec<String>>,
}

fn build(args: &Args, work: &Path, log: &mut dyn io::Write) -> Result<(), BuiltinError> {
    let line = |log: &mut dyn io::Write, text: std::fmt::Arguments| {
        writeln!(log, "{text}").map_err(BuiltinError::Log)
    };

    // The input: an existing directory, reached without links.
    if !check_no_links(work, &args.input)? {
        return Err(BuiltinError::MissingInput {
            path: shown(&args.input),
        });
    }
    let meta = fs::metadata(work.join(&args.input))
        .map_err(BuiltinError::io("inspect", &shown(&args.input)))?;
    if !meta.is_dir() {
        return Err(BuiltinError::NotADirectory {
            path: shown(&args.input),
        });
    }
    // The output: absent, or an empty directory, reached without links; not the input.
    if args.output == args.input {
        return Err(BuiltinError::OutputIsInput {
            path: args.output.clone(),
        });
    }
    if check_no_links(work, &args.output)? {
        let out = work.join(&args.output);
        let meta = fs::metadata(&out).map_err(BuiltinError::io("inspect", &args.output))?;
        if !meta.is_dir() {
            return Err(BuiltinError::NotADirectory {
                path: args.output.clone(),
            });
        }
        let mut entries = fs::read_dir(&out).map_err(BuiltinError::io("read", &args.output))?;
        if entries.next().is_some() {
            return Err(BuiltinError::OutputNotEmpty {
                path: args.output.clone(),
            });
        }
    }
    let skip: Option<Vec<String>> = args.output.strip_prefix(&args.input).ok().map(components);

    // Walk the input.
    let mut found = Vec::new();
    walk(
        work,
        &args.input,
        &mut Vec::new(),
        skip.as_deref(),
        &mut found,
        log,
    )?;

    // Where everything goes; two inputs must not meet.
    let mut outputs: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut claim = |out: Vec<String>, src: String| match outputs.get(&out) {
        Some(first) => Err(BuiltinError::Collision {
            output: out.join("/"),
            first: first.clone(),
            second: src,
        }),
        None => {
            outputs.insert(out, src);
            Ok(())
        }
    };
    let mut planned = Vec::with_capacity(found.len());
    for f in &found {
        let out = if f.page {
            page_output(&f.rel)
        } else {
            f.rel.clone()
        };
        claim(out.clone(), f.rel.join("/"))?;
        planned.push((f, out));
    }
    let root_index = vec!["index.html".to_string()];
    let generate_index = !outputs.contains_key(&root_index);
    let mut index_dirs: BTreeSet<Vec<String>> = outputs
        .keys()
        .filter(|o| o.last().is_some_and(|n| n == "index.html"))
        .map(|o| o[..o.len() - 1].to_vec())
        .collect();
    index_dirs.insert(Vec::new());

    // Render every page (the navigation needs all titles first).
    let mut pages = Vec::new();
    for (f, out) in planned.iter().filter(|(f, _)| f.page) {
        let host = args.input.join(f.rel.iter().collect::<PathBuf>());
        let bytes = fs::read(work.join(&host)).map_err(BuiltinError::io("read", &host))?;
        let text = String::from_utf8(bytes).map_err(|_| BuiltinError::Io {
            action: "read",
            path: host.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, "the file is not UTF-8 text"),
        })?;
        let ctx = LinkCtx {
            dir: &f.rel[..f.rel.len() - 1],
            index_dirs: &index_dirs,
        };
        let (heading, body) = render_markdown(text.strip_prefix('\u{feff}').unwrap_or(&text), &ctx);
        let title = heading
            .clone()
            .unwrap_or_else(|| f.rel.last().cloned().unwrap_or_default());
        pages.push(Page {
            src: Some(f.rel.clone()),
            out: out.clone(),
            heading,
            title,
            body,
        });
    }
    let site_title = match &args.title {
        Some(t) => t.clone(),
        None => pages
            .iter()
            .find(|p| p.out == root_index)
            .and_then(|p| p.heading.clone())
            .unwrap_or_else(|| DEFAULT_TITLE.to_string()),
    };
    if generate_index {
        pages.push(Page {
            src: None,
            out: root_index.clone(),
            heading: None,
            title: site_title.clone(),
            body: String::new(),
        });
    }
    pages.sort_by_key(|p| nav_order(&p.out));
    if generate_index {
        let mut body = format!("<h1>{}</h1>\n<ul class=\"pages\">\n", escape(&site_title));
        for p in pages.iter().filter(|p| p.src.is_some()) {
            let _ = writeln!(
                body,
                "<li><a href=\"{}\">{}</a></li>",
                href(&[], &p.out),
                escape(&p.title)
            );
        }
        body.push_str("</ul>\n");
        if let Some(p) = pages.iter_mut().find(|p| p.src.is_none()) {
            p.body = body;
        }
    }

    // Write the site.
    let out_root = work.join(&args.output);
    fs::create_dir_all(&out_root).map_err(BuiltinError::io("create", &args.output))?;
    let mut made_dirs: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut make_parent = |out: &[String]| -> Result<(), BuiltinError> {
        let parent = out[..out.len() - 1].to_vec();
        if !parent.is_empty() && made_dirs.insert(parent.clone()) {
            let rel = args.output.join(parent.iter().collect::<PathBuf>());
            fs::create_dir_all(work.join(&rel)).map_err(BuiltinError::io("create", &rel))?;
        }
        Ok(())
    };
    for page in &pages {
        make_parent(&page.out)?;
        let html = page_html(&site_title, page, &pages);
        let rel = args.output.join(page.out.iter().collect::<PathBuf>());
        create_new(work, &rel, html.as_bytes())?;
        match &page.src {
            Some(src) => line(
                log,
                format_args!("page {} -> {}", src.join("/"), page.out.join("/")),
            )?,
            None => line(
                log,
                format_args!(
                    "page {} (generated: list of {})",
                    page.out.join("/"),
                    count(pages.len() - 1, "page")
                ),
            )?,
        }
    }
    let mut copied = 0;
    for (f, out) in planned.iter().filter(|(f, _)| !f.page) {
        make_parent(out)?;
        let from = args.input.join(f.rel.iter().collect::<PathBuf>());
        let to = args.output.join(out.iter().collect::<PathBuf>());
        copy_new(work, &from, &to)?;
        copied += 1;
        line(log, format_args!("copy {}", f.rel.join("/")))?;
    }
    line(
        log,
        format_args!(
            "{} and {} copied into {}",
            count(pages.len(), "page"),
            count(copied, "other file"),
            args.output.display()
        ),
    )
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn components(rel: &Path) -> Vec<String> {
    rel.iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect()
}

/// Collects the files under `input/dir`, sorted by name at each level, skipping `skip` (the
/// output directory, relative to `input`).
fn walk(
    work: &Path,
    input: &Path,
    dir: &mut Vec<String>,
    skip: Option<&[String]>,
    found: &mut Vec<Found>,
    log: &mut dyn io::Write,
) -> Result<(), BuiltinError> {
    let rel = input.join(dir.iter().collect::<PathBuf>());
    let shown_rel = shown(&rel);
    let mut entries = Vec::new();
    for entry in fs::read_dir(work.join(&rel)).map_err(BuiltinError::io("read", &shown_rel))? {
        let entry = entry.map_err(BuiltinError::io("read", &shown_rel))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|name| BuiltinError::NonUtf8Name {
                dir: shown_rel.clone(),
                name: name.to_string_lossy().into_owned(),
            })?;
        // `DirEntry::file_type` does not follow symbolic links.
        let kind = entry
            .file_type()
            .map_err(BuiltinError::io("inspect", &rel.join(&name)))?;
        entries.push((name, kind));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in entries {
        dir.push(name);
        let path = dir.join("/");
        let name = &dir[dir.len() - 1];
        if name.starts_with('.') {
            writeln!(log, "skip {path} (hidden)").map_err(BuiltinError::Log)?;
        } else if kind.is_symlink() {
            writeln!(log, "skip {path} (symbolic link, not followed)")
                .map_err(BuiltinError::Log)?;
        } else if kind.is_dir() {
            if skip != Some(&dir[..]) {
                walk(work, input, dir, skip, found, log)?;
            }
        } else if kind.is_file() {
            found.push(Found {
                page: name.ends_with(".md"),
                rel: dir.clone(),
            });
        } else {
            writeln!(log, "skip {path} (not a regular file)").map_err(BuiltinError::Log)?;
        }
        dir.pop();
    }
    Ok(())
}

/// Where a Markdown file's page goes: `README.md` → `index.html`, `x.md` → `x.html`.
fn page_output(rel: &[String]) -> Vec<String> {
    let mut out = rel.to_vec();
    if let Some(last) = out.last_mut() {
        *last = if last == "README.md" {
            "index.html".to_string()
        } else {
            format!("{}.html", last.strip_suffix(".md").unwrap_or(last))
        };
    }
    out
}

/// Pages in reading order: the top first, then each directory's index, its pages, and its
/// subdirectories.
fn nav_order(out: &[String]) -> (Vec<String>, bool, String) {
    let (name, dir) = out.split_last().map_or(("", out), |(n, d)| (n.as_str(), d));
    (dir.to_vec(), name != "index.html", name.to_string())
}

/// A relative link from a page in directory `from` to the file `target` (both relative to
/// the top of the site), percent-encoded.
fn href(from: &[String], target: &[String]) -> String {
    let (target_dir, _) = target.split_at(target.len().saturating_sub(1));
    let common = from
        .iter()
        .zip(target_dir)
        .take_while(|(a, b)| a == b)
        .count();
    let mut s = "../".repeat(from.len() - common);
    for (i, seg) in target[common..].iter().enumerate() {
        if i > 0 {
            s.push('/');
        }
        for b in seg.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                s.push(b as char);
            } else {
                let _ = write!(s, "%{b:02X}");
            }
        }
    }
    s
}

fn create_new(work: &Path, rel: &Path, bytes: &[u8]) -> Result<(), BuiltinError> {
    use std::io::Write as _;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(work.join(rel))
        .map_err(BuiltinError::io("create", rel))?;
    f.write_all(bytes).map_err(BuiltinError::io("write", rel))
}

fn copy_new(work: &Path, from: &Path, to: &Path) -> Result<(), BuiltinError> {
    let mut src = fs::File::open(work.join(from)).map_err(BuiltinError::io("read", from))?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(work.join(to))
        .map_err(BuiltinError::io("create", to))?;
    io::copy(&mut src, &mut dst).map_err(BuiltinError::io("copy to", to))?;
    Ok(())
}

/// Text escaped for HTML content and double- or single-quoted attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole HTML document of `page`, with the navigation over `pages`.
fn page_html(site_title: &str, page: &Page, pages: &[Page]) -> String {
    let dir = &page.out[..page.out.len() - 1];
    let title = if page.title == site_title {
        escape(site_title)
    } else {
        format!("{} — {}", escape(&page.title), escape(site_title))
    };
    let mut s = String::with_capacity(page.body.len() + CSS.len() + 200 * pages.len() + 1024);
    s.push_str("<!doctype html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        s,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
    );
    let _ = writeln!(s, "<title>{title}</title>");
    let _ = writeln!(s, "<style>{CSS}</style>");
    s.push_str("</head>\n<body>\n");
    let _ = writeln!(
        s,
        "<header><a href=\"{}\">{}</a></header>",
        href(dir, &["index.html".to_string()]),
        escape(site_title)
    );
    s.push_str("<div class=\"layout\">\n<nav aria-label=\"Pages\">\n<ul>\n");
    for p in pages {
        let current = if p.out == page.out {
            " aria-current=\"page\""
        } else {
            ""
        };
        let tip = match &p.src {
            Some(src) => format!(" title=\"{}\"", escape(&src.join("/"))),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "<li><a href=\"{}\"{tip}{current}>{}</a></li>",
            href(dir, &p.out),
            escape(&p.title)
        );
    }
    s.push_str("</ul>\n</nav>\n<main>\n");
    s.push_str(&page.body);
    s.push_str("</main>\n</div>\n</body>\n</html>\n");
    s
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// Renders one Markdown page to an HTML fragment; also returns the text of its first
/// heading.
fn render_markdown(src: &str, ctx: &LinkCtx) -> (Option<String>, String) {
    let events: Vec<Event> = Parser::new_ext(src, options()).collect();

    // Headings: their text (for the title and slugs) and explicit ids.
    let mut headings: Vec<(Option<String>, String)> = Vec::new();
    let mut current: Option<String> = None;
    for ev in &events {
        match ev {
            Event::Start(Tag::Heading { id, .. }) => {
                headings.push((id.as_ref().map(|i| i.to_string()), String::new()));
                current = Some(String::new());
            }
            Event::End(TagEnd::Heading(_)) => {
                if let (Some(text), Some(h)) = (current.take(), headings.last_mut()) {
                    h.1 = text.split_whitespace().collect::<Vec<_>>().join(" ");
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(t);
                }
            }
            Event::InlineHtml(t) if !is_comment(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(c) = current.as_mut() {
                    c.push(' ');
                }
            }
            _ => {}
        }
    }
    let title = headings
        .first()
        .map(|h| h.1.clone())
        .filter(|t| !t.is_empty());
    let mut used: BTreeSet<String> = headings.iter().filter_map(|h| h.0.clone()).collect();
    let ids: Vec<String> = headings
        .iter()
        .map(|(explicit, text)| match explicit {
            Some(id) => id.clone(),
            None => {
                let base = slug(text);
                let mut id = base.clone();
                let mut n = 0;
                while used.contains(&id) {
                    n += 1;
                    id = format!("{base}-{n}");
                }
                used.insert(id.clone());
                id
            }
        })
        .collect();

    // The events to render: ids and anchors on headings, raw HTML neutralised, links
    // rewritten.
    let mut out: Vec<Event> = Vec::with_capacity(events.len() + headings.len());
    let mut ids = ids.into_iter();
    let mut heading_id: Option<String> = None;
    let mut html_block: Option<String> = None;
    for ev in events {
        match ev {
            Event::Start(Tag::Heading { level, .. }) => {
                let id = ids.next().unwrap_or_default();
                heading_id = Some(id.clone());
                out.push(Event::Start(Tag::Heading {
                    level,
                    id: Some(id.into()),
                    classes: Vec::new(),
                    attrs: Vec::new(),
                }));
            }
            Event::End(TagEnd::Heading(level)) => {
                if let Some(id) = heading_id.take() {
                    let id = escape(&id);
                    out.push(Event::Html(
                        format!(
                            "<a class=\"anchor\" href=\"#{id}\" aria-hidden=\"true\" tabindex=\"-1\">#</a>"
                        )
                        .into(),
                    ));
                }
                out.push(Event::End(TagEnd::Heading(level)));
            }
            Event::Start(Tag::HtmlBlock) => html_block = Some(String::new()),
            Event::End(TagEnd::HtmlBlock) => {
                let text = html_block.take().unwrap_or_default();
                if !is_comment(&text) {
                    out.push(Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(
                        "html".into(),
                    ))));
                    out.push(Event::Text(text.into()));
                    out.push(Event::End(TagEnd::CodeBlock));
                }
            }
            Event::Html(t) => match html_block.as_mut() {
                Some(block) => block.push_str(&t),
                None => out.push(Event::Text(t)),
            },
            Event::InlineHtml(t) => {
                if !is_comment(&t) {
                    out.push(Event::Text(t));
                }
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                // An e-mail autolink's target is the bare address (the renderer adds
                // `mailto:`); it is no path.
                let dest_url = match link_type {
                    LinkType::Email => dest_url,
                    _ => rewrite_link(&dest_url, ctx).into(),
                };
                out.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }))
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => out.push(Event::Start(Tag::Image {
                link_type,
                dest_url: safe_image(dest_url),
                title,
                id,
            })),
            ev => out.push(ev),
        }
    }
    let mut body = String::with_capacity(src.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut body, out.into_iter());
    (title, body)
}

/// Whether raw HTML is nothing but one comment (dropped: a browser would not show it).
fn is_comment(html: &str) -> bool {
    html.trim()
        .strip_prefix("<!--")
        .and_then(|rest| rest.strip_suffix("-->"))
        .is_some_and(|inner| !inner.contains("-->"))
}

/// A heading's id as GitHub makes it: lower case, letters, digits, `-` and `_` kept, spaces
/// turned into `-`, everything else dropped.
fn slug(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.trim().chars() {
        if c.is_alphanumeric() || c == '-' || c == '_' {
            s.extend(c.to_lowercase());
        } else if c.is_whitespace() {
            s.push('-');
        }
    }
    if s.is_empty() {
        s.push_str("section");
    }
    s
}

/// The URL as a browser reads it: leading spaces and controls ignored, tabs and newlines
/// removed.
fn cleaned(url: &str) -> String {
    url.trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// The URL's scheme, lower-cased, if it has one.
fn scheme(url: &str) -> Option<String> {
    let url = cleaned(url);
    let end = url.find([':', '/', '?', '#'])?;
    let name = &url[..end];
    let valid = url[end..].starts_with(':')
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| name.to_ascii_lowercase())
}

/// An image source as it should appear in the page: unsafe schemes point at nothing.
fn safe_image(url: CowStr) -> CowStr {
    match scheme(&url) {
        None => url,
        Some(s) if IMAGE_SCHEMES.contains(&s.as_str()) => url,
        Some(s)
            if s == "data"
                && cleaned(&url)[5..]
                    .to_ascii_lowercase()
                    .starts_with("image/") =>
        {
            url
        }
        Some(_) => "#".into(),
    }
}

/// A link target as it should appear in the page: `.md` pages point at their `.html`,
/// directories with an index at that index, unsafe schemes at nothing.
fn rewrite_link(url: &str, ctx: &LinkCtx) -> String {
    match scheme(url) {
        Some(s) if LINK_SCHEMES.contains(&s.as_str()) => return url.to_string(),
        Some(_) => return "#".to_string(),
        None => {}
    }
    if url.is_empty() || url.starts_with(['#', '/']) {
        return url.to_string();
    }
    let (rest, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let (path, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    if path.is_empty() {
        return url.to_string();
    }
    let new_path = if let Some(stem) = path.strip_suffix(".md") {
        match stem.strip_suffix("README") {
            Some(dir) if dir.is_empty() || dir.ends_with('/') => format!("{dir}index.html"),
            _ => format!("{stem}.html"),
        }
    } else if has_index(path, ctx) {
        if path.ends_with('/') {
            format!("{path}index.html")
        } else {
            format!("{path}/index.html")
        }
    } else {
        return url.to_string();
    };
    format!("{new_path}{query}{fragment}")
}

/// Whether a relative URL path names a directory of the site that has an `index.html`.
fn has_index(path: &str, ctx: &LinkCtx) -> bool {
    let mut at = ctx.dir.to_vec();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if at.pop().is_none() {
                    return false;
                }
            }
            seg => match percent_decode(seg) {
                Some(s) => at.push(s),
                None => return false,
            },
        }
    }
    ctx.index_dirs.contains(&at)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn render(src: &str) -> (Option<String>, String) {
        let index_dirs = BTreeSet::from([vec![], vec!["sub".to_string()]]);
        let dir = vec!["sub".to_string()];
        render_markdown(
            src,
            &LinkCtx {
                dir: &dir,
                index_dirs: &index_dirs,
            },
        )
    }

    fn link(url: &str) -> String {
        let index_dirs = BTreeSet::from([vec![], vec!["sub".to_string()]]);
        let dir = vec!["sub".to_string()];
        rewrite_link(
            url,
            &LinkCtx {
                dir: &dir,
                index_dirs: &index_dirs,
            },
        )
    }

    #[test]
    fn arguments() {
        let a = parse_args(&strings(&["docs", "site"])).unwrap();
        assert_eq!(
            (a.title, a.input, a.output),
            (None, "docs".into(), "site".into())
        );
        let a = parse_args(&strings(&["--title", "My docs", "./docs/", "out/site"])).unwrap();
        assert_eq!(a.title.as_deref(), Some("My docs"));
        assert_eq!((a.input, a.output), ("docs".into(), "out/site".into()));
        let a = parse_args(&strings(&[".", "--title=T", "--", "-site"])).unwrap();
        assert_eq!(a.title.as_deref(), Some("T"));
        assert_eq!((a.input, a.output), ("".into(), "-site".into()));

        let err = |a: &[&str]| parse_args(&strings(a)).err().unwrap().to_string();
        assert_eq!(
            err(&[]),
            "markdown-site: expected IN and OUT, got 0 arguments \
             (usage: markdown-site [--title TITLE] IN OUT)"
        );
        assert!(
            err(&["docs"]).contains("got 1 argument "),
            "{}",
            err(&["docs"])
        );
        assert!(err(&["a", "b", "c"]).contains("got 3 arguments"));
        assert!(err(&["--titel", "x", "a", "b"]).contains("unknown option \"--titel\""));
        assert!(err(&["a", "b", "--title"]).contains("--title needs a value"));
        assert!(err(&["--title", "", "a", "b"]).contains("--title must not be empty"));
        assert!(err(&["--title=x", "--title=y", "a", "b"]).contains("--title given twice"));
        assert!(err(&["docs", "/tmp/site"]).contains("OUT \"/tmp/site\" must be a relative"));
        assert!(err(&["../docs", "site"]).contains("IN \"../docs\" must be a relative"));
        assert!(err(&["docs", "."]).contains("OUT \".\" must be a relative"));
    }

    #[test]
    fn outputs_and_order() {
        let v = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        assert_eq!(page_output(&v("README.md")), v("index.html"));
        assert_eq!(page_output(&v("a/README.md")), v("a/index.html"));
        assert_eq!(page_output(&v("a/guide.md")), v("a/guide.html"));
        assert_eq!(page_output(&v("readme.md")), v("readme.html"));
        let mut outs = [
            v("b/index.html"),
            v("a.html"),
            v("b/c/x.html"),
            v("b/a.html"),
            v("index.html"),
            v("Z.html"),
        ];
        outs.sort_by_key(|o| nav_order(o));
        let joined: Vec<String> = outs.iter().map(|o| o.join("/")).collect();
        assert_eq!(
            joined,
            [
                "index.html",
                "Z.html",
                "a.html",
                "b/index.html",
                "b/a.html",
                "b/c/x.html"
            ]
        );
        assert_eq!(
            href(&v("x/y"), &v("a b/c#d:é.html")),
            "../../a%20b/c%23d%3A%C3%A9.html"
        );
        assert_eq!(href(&[], &v("index.html")), "index.html");
        assert_eq!(href(&v("a/b"), &v("a/c/x.html")), "../c/x.html");
        assert_eq!(href(&v("a/b"), &v("a/b/x.html")), "x.html");
        assert_eq!(href(&v("a"), &v("a.html")), "../a.html");
        assert_eq!(href(&v("a"), &v("a/b/a.html")), "b/a.html");
    }

    #[test]
    fn links() {
        assert_eq!(link("other.md"), "other.html");
        assert_eq!(link("./other.md#part"), "./other.html#part");
        assert_eq!(link("../README.md#x"), "../index.html#x");
        assert_eq!(link("README.md"), "index.html");
        assert_eq!(link("deep/README.md?v=1#y"), "deep/index.html?v=1#y");
        assert_eq!(link("NOT-README.md"), "NOT-README.html");
        assert_eq!(link("../"), "../index.html");
        assert_eq!(link(".."), "../index.html");
        assert_eq!(link("."), "./index.html");
        assert_eq!(link("../sub#z"), "../sub/index.html#z");
        assert_eq!(link("nodir/"), "nodir/");
        assert_eq!(link("../../.."), "../../..");
        assert_eq!(link("picture.png"), "picture.png");
        assert_eq!(link("#frag"), "#frag");
        assert_eq!(link("?q"), "?q");
        assert_eq!(link(""), "");
        assert_eq!(link("/abs/page.md"), "/abs/page.md");
        assert_eq!(link("//host/page.md"), "//host/page.md");
        assert_eq!(
            link("https://example.org/a.md#x"),
            "https://example.org/a.md#x"
        );
        assert_eq!(link("mailto:a@example.org"), "mailto:a@example.org");
        assert_eq!(link("ipfs://bafkqaaa"), "ipfs://bafkqaaa");
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " \u{1}java\tscript:alert(1)",
            "vbscript:x",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
        ] {
            assert_eq!(link(bad), "#", "{bad:?}");
        }
        assert_eq!(scheme("a/b:c"), None);
        assert_eq!(scheme("1a:b"), None);
        assert_eq!(scheme("HTTPS://x"), Some("https".into()));
        assert_eq!(
            safe_image("data:image/png;base64,AA".into()).as_ref(),
            "data:image/png;base64,AA"
        );
        assert_eq!(safe_image("data:text/html,x".into()).as_ref(), "#");
        assert_eq!(safe_image("javascript:x".into()).as_ref(), "#");
        assert_eq!(safe_image("img/a.png".into()).as_ref(), "img/a.png");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("The action and its key"), "the-action-and-its-key");
        assert_eq!(
            slug("Caveat: cache directories"),
            "caveat-cache-directories"
        );
        assert_eq!(slug("crates/kiln-core"), "crateskiln-core");
        assert_eq!(slug("Ünïcode_and  Spaces"), "ünïcode_and--spaces");
        assert_eq!(slug("?!"), "section");
    }

    #[test]
    fn headings_get_unique_ids_and_anchors() {
        let (title, html) = render(
            "Intro *text*\n============\n\n## Intro text\n\n## Intro text\n\n\
             ## Custom {#mine .cls onclick=alert(1)}\n\n## `code` & <b>more</b>\n",
        );
        assert_eq!(title.as_deref(), Some("Intro text"));
        assert!(html.contains(
            "<h1 id=\"intro-text\">Intro <em>text</em><a class=\"anchor\" href=\"#intro-text\" \
             aria-hidden=\"true\" tabindex=\"-1\">#</a></h1>"
        ));
        assert!(html.contains("<h2 id=\"intro-text-1\">"));
        assert!(html.contains("<h2 id=\"intro-text-2\">"));
        assert!(html.contains("<h2 id=\"mine\">Custom<a"), "{html}");
        assert!(!html.contains("onclick") && !html.contains("cls"), "{html}");
        assert!(
            html.contains(
                "<h2 id=\"code--bmoreb\"><code>code</code> &amp; &lt;b&gt;more&lt;/b&gt;"
            ),
            "{html}"
        );
    }

    #[test]
    fn raw_html_is_shown_not_run() {
        let (title, html) = render(
            "no heading <span onclick=\"x()\">inline</span>\n\n\
             <script>\nalert(1)\n</script>\n\n\
             <!-- a note for authors -->\n\n\
             text <!-- inline note --> more\n\n\
             [click](javascript:alert(1)) ![img](javascript:alert(2))\n",
        );
        assert_eq!(title, None);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<span"), "{html}");
        assert!(
            html.contains("&lt;span onclick=\"x()\"&gt;inline&lt;/span&gt;"),
            "{html}"
        );
        assert!(html.contains(
            "<pre><code class=\"language-html\">&lt;script&gt;\nalert(1)\n&lt;/script&gt;\n</code></pre>"
        ), "{html}");
        assert!(!html.contains("note"), "{html}");
        assert!(html.contains("<p>text  more</p>"), "{html}");
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains("<a href=\"#\">click</a>"), "{html}");
        let (_, html) = render(
            "[a](java&#x73;cript:alert(1)) [b](<java\tscript:alert(1)>) \
             [c](&#106;avascript:x \"t\\\"><script>\")\n\n\
             # T {#x\"><script>alert(1)</script>}\n\n\
             ```x\"><script>\ncode\n```\n",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(
            !html.contains("javascript") && !html.contains("java\tscript"),
            "{html}"
        );
        assert_eq!(html.matches("<a href=\"#\"").count(), 3, "{html}");
    }

    #[test]
    fn extensions() {
        let (_, html) = render(
            "| a | b |\n|:--|--:|\n| 1 | ~~2~~ |\n\n- [x] done\n- [ ] todo\n\n\
             ```rust\nfn main() {}\n```\n\n[other](other.md) [up](../README.md#x)\n",
        );
        assert!(html.contains("<table>"), "{html}");
        assert!(
            html.contains("<th style=\"text-align: left\">a</th>"),
            "{html}"
        );
        assert!(html.contains("<del>2</del>"), "{html}");
        assert!(html.contains("type=\"checkbox\" checked=\"\""), "{html}");
        assert!(html.contains("<pre><code class=\"language-rust\">fn main() {}\n</code></pre>"));
        assert!(html.contains("<a href=\"other.html\">other</a>"));
        assert!(html.contains("<a href=\"../index.html#x\">up</a>"));
        let (_, html) = render("<someone@host.md> <https://example.org/a.md>\n");
        assert!(html.contains("<a href=\"mailto:someone@host.md\">someone@host.md</a>"));
        assert!(
            html.contains("<a href=\"https://example.org/a.md\">"),
            "{html}"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(percent_decode("a%20b%C3%A9"), Some("a bé".to_string()));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
