//! The path gateway: files (content types, single ranges, downloads), directories
//! (`/` redirect, `index.html`, an HTML listing), symlinks as their target text, dag-cbor
//! and dag-json blocks as they are.

use super::{
    GatewayError, Request, Resolved, SendFirstAtOnce, content_disposition, immutable_headers,
    percent_encode, resolve,
};
use crate::AppState;
use crate::stream::blocking_body;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_core::cids::{DAG_CBOR, DAG_JSON, DAG_PB, RAW};
use kiln_core::export::{self, Entry, Node};
use kiln_core::{BlockSource, Cid};
use std::collections::HashMap;

/// Bytes read to guess a content type.
pub(crate) const SNIFF: u64 = 512;

/// What to answer with, decided on the blocking pool.
enum Answer {
    Redirect,
    File {
        cid: Cid,
        size: u64,
        name: Option<String>,
        head: Vec<u8>,
    },
    Listing(Vec<Entry>),
    /// A symlink's target, or a non-UnixFS block (dag-cbor, dag-json) as it is.
    Bytes {
        data: Vec<u8>,
        ctype: &'static str,
    },
}

pub(super) async fn serve(
    s: &AppState,
    req: &Request,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, GatewayError> {
    let store = s.store.clone();
    let path = req.path.clone();
    let trailing_slash = req.trailing_slash;
    let (resolved, answer) = tokio::task::spawn_blocking(move || {
        let src: &dyn BlockSource = &store;
        let r = resolve(src, &path)?;
        let ctype = match r.cid.codec() {
            DAG_PB | RAW => None,
            DAG_CBOR => Some("application/vnd.ipld.dag-cbor"),
            DAG_JSON => Some("application/vnd.ipld.dag-json"),
            code => {
                return Err(kiln_core::Error::Unsupported {
                    what: "codec",
                    code,
                }
                .into());
            }
        };
        if let Some(ctype) = ctype {
            let data = src.get(&r.cid)?.ok_or(kiln_core::Error::NotFound(r.cid))?;
            return Ok((r, Answer::Bytes { data, ctype }));
        }
        let answer = match export::stat(src, &r.cid)? {
            Node::Directory { .. } if !trailing_slash => Answer::Redirect,
            Node::Directory { .. } => match export::lookup(src, &r.cid, "index.html") {
                Ok(index) => match export::stat(src, &index)? {
                    Node::File { size } => Answer::File {
                        cid: index,
                        size,
                        name: Some("index.html".into()),
                        head: Vec::new(),
                    },
                    _ => Answer::Listing(export::list(src, &r.cid)?),
                },
                Err(kiln_core::Error::NoSuchLink { .. }) => {
                    Answer::Listing(export::list(src, &r.cid)?)
                }
                Err(e) => return Err(e.into()),
            },
            Node::File { size } => {
                let mut head = Vec::new();
                export::read_file(src, &r.cid, 0, Some(SNIFF), &mut head)?;
                Answer::File {
                    cid: r.cid,
                    size,
                    name: path.segments.last().cloned(),
                    head,
                }
            }
            Node::Symlink { target } => Answer::Bytes {
                data: target,
                ctype: "text/plain; charset=utf-8",
            },
        };
        Ok::<_, GatewayError>((r, answer))
    })
    .await??;
    let mut resp = match answer {
        Answer::Redirect => {
            let mut to = format!("{}/", req.link_path);
            if let Some(q) = &req.raw_query {
                to.push('?');
                to.push_str(q);
            }
            let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(r);
        }
        Answer::File {
            cid,
            size,
            name,
            head,
        } => file(s, req, q, headers, &resolved, cid, size, name, &head),
        Answer::Listing(entries) => {
            let html = listing(req, &resolved, &entries);
            let len = html.len();
            let mut r = if req.head {
                Body::empty().into_response()
            } else {
                html.into_response()
            };
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            immutable_headers(h, &format!("\"DirIndex-{}\"", resolved.cid), &resolved);
            r
        }
        Answer::Bytes { data, ctype } => {
            let len = data.len();
            let mut r = if req.head {
                Body::empty().into_response()
            } else {
                data.into_response()
            };
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            immutable_headers(h, &format!("\"{}\"", resolved.cid), &resolved);
            r
        }
    };
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

/// A single `Range: bytes=…` request against a file of `size` bytes.
enum Range {
    /// No usable range: send everything.
    Whole,
    /// `[start, end)`.
    Part(u64, u64),
    /// Outside the file.
    Unsatisfiable,
}

fn parse_range(headers: &HeaderMap, size: u64) -> Range {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Whole;
    };
    if spec.contains(',') {
        // Several ranges: answered with the whole body, as RFC 9110 allows.
        return Range::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return Range::Whole;
        };
        if n == 0 {
            return Range::Unsatisfiable;
        }
        (size.saturating_sub(n), size)
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return Range::Whole;
        };
        let end = if b.is_empty() {
            size
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.saturating_add(1).min(size),
                _ => return Range::Whole,
            }
        };
        (start, end)
    };
    if start >= size {
        Range::Unsatisfiable
    } else {
        Range::Part(start, end)
    }
}

#[allow(clippy::too_many_arguments)]
fn file(
    s: &AppState,
    req: &Request,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    resolved: &Resolved,
    cid: Cid,
    size: u64,
    name: Option<String>,
    head: &[u8],
) -> Response {
    let filename = q.get("filename").cloned().filter(|f| !f.is_empty());
    let download = q.get("download").is_some_and(|d| d == "true");
    let ctype = filename
        .as_deref()
        .or(name.as_deref())
        .and_then(type_by_name)
        .unwrap_or_else(|| type_by_content(head));
    let etag = format!("\"{cid}\"");
    let range = parse_range(headers, size);
    if let Range::Unsatisfiable = range {
        let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        return r;
    }
    let (status, start, end) = match range {
        Range::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        _ => (StatusCode::OK, 0, size),
    };
    let body = if req.bodiless(&etag) || start == end {
        Body::empty()
    } else {
        let store = s.store.clone();
        blocking_body(move |w| {
            let mut w = SendFirstAtOnce::new(w);
            export::read_file(&store, &cid, start, Some(end - start), &mut w)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    };
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    let disposition = match (download, &filename) {
        (true, Some(f)) => content_disposition("attachment", f),
        (true, None) => content_disposition(
            "attachment",
            &name.clone().unwrap_or_else(|| cid.to_string()),
        ),
        (false, Some(f)) => content_disposition("inline", f),
        (false, None) => None,
    };
    if let Some(v) = disposition {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    immutable_headers(h, &etag, resolved);
    r
}

/// Content type from a file name's extension.
pub(crate) fn type_by_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/vnd.microsoft.icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "car" => "application/vnd.ipld.car",
        _ => return None,
    })
}

/// Content type from the first bytes of a file.
pub(crate) fn type_by_content(b: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"\0asm", "application/wasm"),
        (b"\x1aE\xdf\xa3", "video/webm"),
        (b"ID3", "audio/mpeg"),
        (b"OggS", "audio/ogg"),
    ];
    if let Some((_, t)) = MAGIC.iter().find(|(m, _)| b.starts_with(m)) {
        return t;
    }
    if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return "image/webp";
    }
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let lead: Vec<u8> = b[start..b.len().min(start + 14)].to_ascii_lowercase();
    if lead.starts_with(b"<!doctype html") || lead.starts_with(b"<html") {
        return "text/html; charset=utf-8";
    }
    if lead.starts_with(b"<svg") {
        return "image/svg+xml";
    }
    if lead.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    // Text: valid UTF-8 (a character cut by the sniff window is fine), no control bytes
    // other than whitespace and escape.
    let text = match std::str::from_utf8(b) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && b.len() as u64 == SNIFF,
    };
    if text
        && !b
            .iter()
            .any(|&c| c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
    {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

fn html_escape(s: &str) -> String {
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

/// The HTML index of a directory without `index.html`.
fn listing(req: &Request, resolved: &Resolved, entries: &[Entry]) -> String {
    let title = html_escape(&format!("/ipfs/{}", req.path));
    let mut h = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n</head>\n<body>\n<h1>Index of {title}</h1>\n<p>{}</p>\n<table>\n",
        resolved.cid
    );
    if !req.path.segments.is_empty() {
        h.push_str("<tr><td><a href=\"../\">..</a></td><td></td><td></td></tr>\n");
    }
    for e in entries {
        h.push_str(&format!(
            "<tr><td><a href=\"./{}\">{}</a></td><td><a href=\"/ipfs/{cid}\">{cid}</a></td><td>{}</td></tr>\n",
            percent_encode(&e.name),
            html_escape(&e.name),
            e.tsize,
            cid = e.cid,
        ));
    }
    h.push_str("</table>\n</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(type_by_name("a.HTML"), Some("text/html; charset=utf-8"));
        assert_eq!(type_by_name("noext"), None);
        assert_eq!(type_by_content(b"\x89PNG\r\n\x1a\nxxxx"), "image/png");
        assert_eq!(
            type_by_content(b"  <!DOCTYPE html><p>"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            type_by_content(b"plain words\n"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(type_by_content(b"\0\x01\x02"), "application/octet-stream");
    }

    #[test]
    fn ranges() {
        let r = |v: &str, size| {
            let mut h = HeaderMap::new();
            h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
            match parse_range(&h, size) {
                Range::Whole => "whole".to_string(),
                Range::Part(a, b) => format!("{a}-{b}"),
                Range::Unsatisfiable => "416".to_string(),
            }
        };
        assert_eq!(r("bytes=0-9", 100), "0-10");
        assert_eq!(r("bytes=90-", 100), "90-100");
        assert_eq!(r("bytes=-5", 100), "95-100");
        assert_eq!(r("bytes=50-1000", 100), "50-100");
        assert_eq!(r("bytes=100-", 100), "416");
        assert_eq!(r("bytes=0-1,5-6", 100), "whole");
        assert_eq!(r("bytes=x-y", 100), "whole");
        assert_eq!(r("bytes=9-1", 100), "whole");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
