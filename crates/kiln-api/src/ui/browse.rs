//! The content browser: `GET /ui/browse?path=CID[/path]` shows a directory (paged), a file
//! (size, type, a preview of small text) or a symlink; `GET /ui/download?path=…` streams a
//! file as an attachment. Paths are kiln-core `ContentPath`s: `CID/a/b`, `/ipfs/CID/a/b` or
//! `ipfs://CID/a/b`.

use super::{
    Nav, Paging, UiCaller, UiError, blocking, browse_href, download_href, human_bytes, layout,
    param, reading,
};
use crate::AppState;
use crate::gateway::content_disposition;
use crate::gateway::unixfs::{SNIFF, type_by_content, type_by_name};
use crate::stream::blocking_body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_core::cids::{ContentPath, RAW};
use kiln_core::export::{self, Entry, Node};
use kiln_core::{BlockSource, Cid};
use kiln_node::content::Reader;
use maud::{Markup, html};

/// Directory entries per page.
const PER_PAGE: usize = 500;
/// Bytes of a text file shown in its preview.
const PREVIEW: u64 = 32 << 10;
/// Pins offered as starting points on the empty browser page.
const START_PINS: usize = 20;

/// The "CID or path" form (GET, so a browsed location is a link that can be shared).
pub(super) fn form(value: &str) -> Markup {
    html! {
        form.inline method="get" action="/ui/browse" role="search" {
            label for="path" { "CID or path" }
            div.row {
                input #path type="text" name="path" value=(value) required
                    placeholder="bafy…/dir/file or /ipfs/Qm…" autocomplete="off"
                    autocapitalize="off" spellcheck="false";
                button type="submit" { "Open" }
            }
        }
    }
}

/// One directory entry as listed.
struct Row {
    name: String,
    cid: Cid,
    /// How to reach it: the path below this directory, or the entry's CID when the name
    /// cannot be a path segment (empty, `.`, `..`, or holding `/`).
    target: String,
    kind: &'static str,
    /// A file's size in bytes.
    size: Option<u64>,
    /// The link's cumulative size (what the parent says the subtree weighs).
    tsize: u64,
}

enum View {
    Directory {
        rows: Vec<Row>,
        paging: Paging,
        sharded: bool,
    },
    File {
        size: u64,
        ctype: &'static str,
        /// The first bytes as text, and whether the file goes on.
        preview: Option<(String, bool)>,
    },
    Symlink {
        target: String,
    },
}

struct Shown {
    path: ContentPath,
    cid: Cid,
    view: View,
}

pub(super) async fn page(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let input = param(&q, "path").unwrap_or("").trim().to_string();
    if input.is_empty() {
        return match blocking(&s, move |st| Ok(kiln_node::pins::list(st, &caller)?)).await {
            Ok(pins) => start_page(&pins).into_response(),
            Err(e) => e.page("Browse", Nav::Browse, form("")),
        };
    }
    let shown = {
        let input = input.clone();
        reading(&s, &caller, move |content| look(content, &input, &q)).await
    };
    match shown {
        Ok(shown) => render(&shown).into_response(),
        Err(e) => e.page("Browse", Nav::Browse, form(&input)),
    }
}

fn start_page(pins: &[kiln_store::Pin]) -> Markup {
    layout(
        "Browse",
        Nav::Browse,
        html! {
            h1 { "Browse" }
            (form(""))
            @if !pins.is_empty() {
                section aria-labelledby="start-h" {
                    h2 #start-h { "Pinned content" }
                    ul.links {
                        @for p in pins.iter().rev().take(START_PINS) {
                            li {
                                a href=(browse_href(&p.cid.to_string())) {
                                    @if let Some(n) = &p.name { (n) " " }
                                    code.cid { (p.cid) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn look(st: &Reader, input: &str, q: &[(String, String)]) -> Result<Shown, UiError> {
    let path = ContentPath::parse(input)?;
    let src: &dyn BlockSource = st;
    let cid = export::resolve(src, &path)?;
    let view = match export::stat(src, &cid)? {
        Node::Directory { sharded } => {
            let entries = export::list(src, &cid)?;
            let paging = Paging::new(q, PER_PAGE, entries.len());
            let rows = entries[paging.range()]
                .iter()
                .map(|e| row(st, &path, e))
                .collect::<Result<_, _>>()?;
            View::Directory {
                rows,
                paging,
                sharded,
            }
        }
        Node::File { size } => {
            let mut head = Vec::new();
            if size > 0 {
                export::read_file(src, &cid, 0, Some(PREVIEW.min(size)), &mut head)?;
            }
            let sniff = &head[..head.len().min(SNIFF as usize)];
            let ctype = path
                .segments
                .last()
                .and_then(|n| type_by_name(n))
                .unwrap_or_else(|| type_by_content(sniff));
            let truncated = size > head.len() as u64;
            let preview = textual(ctype)
                .then(|| as_text(&head, truncated))
                .flatten()
                .map(|t| (t, truncated));
            View::File {
                size,
                ctype,
                preview,
            }
        }
        Node::Symlink { target } => View::Symlink {
            target: String::from_utf8_lossy(&target).into_owned(),
        },
    };
    Ok(Shown { path, cid, view })
}

/// Describe one entry. A child that is absent (a partial DAG) or undecodable is listed as
/// such instead of failing the whole listing; only store failures end the page.
fn row(st: &Reader, dir: &ContentPath, e: &Entry) -> Result<Row, UiError> {
    let (kind, size) = if e.cid.codec() == RAW {
        // A raw block is a file of its own length: no need to read it.
        match st.size(&e.cid)? {
            Some(n) => ("file", Some(n)),
            None => ("missing", None),
        }
    } else {
        match export::stat(st, &e.cid) {
            Ok(Node::File { size }) => ("file", Some(size)),
            Ok(Node::Directory { .. }) => ("directory", None),
            Ok(Node::Symlink { .. }) => ("symlink", None),
            Err(kiln_core::Error::NotFound(_)) => ("missing", None),
            Err(err @ (kiln_core::Error::Storage(_) | kiln_core::Error::Io { .. })) => {
                return Err(err.into());
            }
            Err(_) => ("unknown", None),
        }
    };
    let addressable = kiln_core::names::is_safe(&e.name);
    let target = if addressable {
        format!("{dir}/{}", e.name)
    } else {
        e.cid.to_string()
    };
    Ok(Row {
        name: e.name.clone(),
        cid: e.cid,
        target,
        kind,
        size,
        tsize: e.tsize,
    })
}

/// Types whose bytes are worth showing as text.
fn textual(ctype: &str) -> bool {
    ctype.starts_with("text/")
        || ctype.starts_with("application/json")
        || ctype.starts_with("application/xml")
        || ctype.starts_with("image/svg+xml")
}

/// `bytes` as text, if they are UTF-8 (a character cut at the end of a truncated read is
/// dropped) without NUL bytes.
fn as_text(bytes: &[u8], truncated: bool) -> Option<String> {
    let valid = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) if truncated && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    (!valid.contains('\0')).then(|| valid.to_string())
}

/// Links to the root and each segment of `path`; the last one is the current page.
fn breadcrumb(path: &ContentPath) -> Markup {
    let root = path.root.to_string();
    let mut prefix = root.clone();
    let mut crumbs = vec![(root.clone(), browse_href(&root))];
    for seg in &path.segments {
        prefix = format!("{prefix}/{seg}");
        crumbs.push((seg.clone(), browse_href(&prefix)));
    }
    let last = crumbs.len() - 1;
    html! {
        nav.crumbs aria-label="Breadcrumb" {
            ol {
                @for (i, (label, href)) in crumbs.iter().enumerate() {
                    li {
                        @if i == last {
                            span aria-current="page" { (label) }
                        } @else {
                            a href=(href) { (label) }
                        }
                    }
                }
            }
        }
    }
}

fn render(shown: &Shown) -> Markup {
    let here = shown.path.to_string();
    let title = shown
        .path
        .segments
        .last()
        .cloned()
        .unwrap_or_else(|| shown.cid.to_string());
    let body = match &shown.view {
        View::Directory {
            rows,
            paging,
            sharded,
        } => html! {
            h2 { "Directory " span.muted { (paging.total) " entries" @if *sharded { ", sharded (HAMT)" } } }
            dl.facts { dt { "CID" } dd { code.cid { (shown.cid) } } }
            @if rows.is_empty() {
                p.muted { "This directory is empty." }
            } @else {
                (paging.links(|n| format!("{}&page={n}", browse_href(&here))))
                table.list #listing {
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Type" }
                            th scope="col" { "Size" }
                            th scope="col" { span.visually-hidden { "Actions" } }
                        }
                    }
                    tbody {
                        @if !shown.path.segments.is_empty() {
                            tr {
                                td data-label="Name" {
                                    a href=(browse_href(&parent(&shown.path))) { ".. (parent directory)" }
                                }
                                td data-label="Type" { "directory" }
                                td {}
                                td {}
                            }
                        }
                        @for r in rows {
                            tr {
                                td data-label="Name" {
                                    a.name href=(browse_href(&r.target)) title=(r.cid) { (r.name) }
                                }
                                td data-label="Type" { (r.kind) }
                                td data-label="Size" {
                                    @if let Some(n) = r.size {
                                        span title={ (n) " bytes" } { (human_bytes(n)) }
                                    } @else if r.kind == "directory" {
                                        span.muted title="cumulative size of the directory's blocks" {
                                            (human_bytes(r.tsize))
                                        }
                                    }
                                }
                                td {
                                    @if r.kind == "file" {
                                        a href=(download_href(&r.target)) {
                                            "Download" span.visually-hidden { " " (r.name) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (paging.links(|n| format!("{}&page={n}", browse_href(&here))))
            }
        },
        View::File {
            size,
            ctype,
            preview,
        } => html! {
            h2 { "File" }
            dl.facts {
                dt { "CID" } dd { code.cid { (shown.cid) } }
                dt { "Size" } dd #file-size {
                    @if *size < 1024 { (size) " bytes" }
                    @else { (human_bytes(*size)) " (" (size) " bytes)" }
                }
                dt { "Type" } dd { (ctype) }
            }
            p { a.button href=(download_href(&here)) { "Download " (title) } }
            @if let Some((text, truncated)) = preview {
                section aria-labelledby="preview-h" {
                    h3 #preview-h { "Preview" @if *truncated { span.muted { " (first " (human_bytes(PREVIEW)) ")" } } }
                    pre #preview { (text) }
                }
            } @else if *size > 0 {
                p.muted { "No preview: this file is not text." }
            }
        },
        View::Symlink { target } => html! {
            h2 { "Symbolic link" }
            dl.facts {
                dt { "CID" } dd { code.cid { (shown.cid) } }
                dt { "Target" } dd { code.cid { (target) } }
            }
        },
    };
    layout(
        &title,
        Nav::Browse,
        html! {
            h1 { "Browse" }
            (form(&here))
            (breadcrumb(&shown.path))
            (body)
        },
    )
}

fn parent(p: &ContentPath) -> String {
    let mut up = p.clone();
    up.segments.pop();
    up.to_string()
}

pub(super) async fn download(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let input = param(&q, "path").unwrap_or("").trim().to_string();
    let found = reading(&s, &caller, move |st| {
        let path = ContentPath::parse(&input)?;
        let cid = export::resolve(st, &path)?;
        match export::stat(st, &cid)? {
            Node::File { size } => {
                let name = path.segments.last().cloned();
                Ok((cid, size, name.unwrap_or_else(|| cid.to_string())))
            }
            other => Err(UiError::new(
                StatusCode::BAD_REQUEST,
                format!("{cid} is a {}: only files can be downloaded", other.kind()),
            )
            .titled("Not a file")),
        }
    })
    .await;
    let (cid, size, name) = match found {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let content = match kiln_node::content::reader(&s.store, &caller) {
        Ok(c) => c,
        Err(e) => return UiError::from(e).into_response(),
    };
    let body = blocking_body(move |w| {
        export::read_file(&content, &cid, 0, None, w)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut r = body.into_response();
    let h = r.headers_mut();
    // The bytes are whatever someone stored: never let the browser render them on this origin.
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if let Some(v) = content_disposition("attachment", &name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_previews() {
        assert_eq!(as_text(b"hello\n", false).as_deref(), Some("hello\n"));
        // "é" cut in half by the preview window.
        assert_eq!(as_text(b"caf\xc3", true).as_deref(), Some("caf"));
        assert_eq!(as_text(b"caf\xc3", false), None);
        assert_eq!(as_text(b"a\0b", false), None);
        assert!(textual("text/plain; charset=utf-8") && textual("application/json"));
        assert!(!textual("image/png"));
    }
}
