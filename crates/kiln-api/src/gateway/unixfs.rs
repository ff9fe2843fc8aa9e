//! The path gateway: files (content types, byte ranges — one as a 206, several as
//! `multipart/byteranges` —, downloads), directories (`/` redirect, `index.html`, an HTML
//! listing), symlinks as their target text, dag-cbor, dag-json, json and cbor blocks as
//! they are; and the deserialized formats: `tar` (the UnixFS tree, via `archive`) and the
//! codec formats (the block when its codec matches, else 406).

use super::negotiate::{CBOR, CodecFormat, JSON, TAR_TYPE};
use super::{
    GatewayError, Request, Resolved, SendFirstAtOnce, X_CONTENT_TYPE_OPTIONS, content_disposition,
    immutable_headers, percent_encode, resolve,
};
use crate::archive;
use crate::stream::{blocking_body, store_body, with_blocks};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_core::cids::{DAG_CBOR, DAG_JSON, DAG_PB, RAW};
use kiln_core::export::{self, Entry, Node};
use kiln_core::{BlockSource, Cid};
use kiln_node::content::Reader;
use std::collections::HashMap;
use std::io::Write;

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

/// The deserialized answer for `req`; with `want`, the block as it is if its codec is
/// `want`'s (406 otherwise; a UnixFS file asked for as `json` is served as a file).
pub(super) async fn serve(
    content: &Reader,
    req: &Request,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    want: Option<CodecFormat>,
) -> Result<Response, GatewayError> {
    let path = req.path.clone();
    let trailing_slash = req.trailing_slash;
    let (resolved, answer) = with_blocks(content, move |src: &dyn BlockSource| {
        let r = resolve(src, &path)?;
        let codec = r.cid.codec();
        if let Some(w) = want {
            if codec == w.codec {
                let data = src.get(&r.cid)?.ok_or(kiln_core::Error::NotFound(r.cid))?;
                return Ok((
                    r,
                    Answer::Bytes {
                        data,
                        ctype: w.media_type,
                    },
                ));
            }
            if !(w.codec == JSON && matches!(codec, DAG_PB | RAW)) {
                return Err(GatewayError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    format!(
                        "{} has codec 0x{codec:x}, not {} (0x{:x}); kiln does not convert \
                         between codecs: fetch the block with ?format=raw",
                        r.cid, w.name, w.codec
                    ),
                ));
            }
        }
        let ctype = match codec {
            DAG_PB | RAW => None,
            DAG_CBOR => Some("application/vnd.ipld.dag-cbor"),
            DAG_JSON => Some("application/vnd.ipld.dag-json"),
            JSON => Some("application/json"),
            CBOR => Some("application/cbor"),
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
            return Ok(super::local_redirect(&to));
        }
        Answer::File {
            cid,
            size,
            name,
            head,
        } => file(content, req, q, headers, &resolved, cid, size, name, &head),
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
            immutable_headers(h, &dir_index_etag(&resolved.cid), &resolved);
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
    resp.headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(resp)
}

/// The Etag of a generated listing: the listing's code changes with kiln's version, so
/// the version is part of it.
fn dir_index_etag(cid: &Cid) -> String {
    format!("\"DirIndex-kiln-{}_CID-{cid}\"", env!("CARGO_PKG_VERSION"))
}

/// `format=tar`: the UnixFS tree at the path as a tar stream, under the path's last
/// segment (or the CID). A hostile entry name met on the way aborts the stream (the client
/// sees a broken download, never a path outside its directory).
pub(super) async fn tar(content: &Reader, req: &Request) -> Result<Response, GatewayError> {
    let store = content.clone();
    let path = req.path.clone();
    let resolved = tokio::task::spawn_blocking(move || {
        let src: &dyn BlockSource = &store;
        let r = resolve(src, &path)?;
        let not_unixfs = |why: String| {
            GatewayError::new(
                StatusCode::NOT_ACCEPTABLE,
                format!("{why}: a tar holds UnixFS files and directories only; try ?format=car"),
            )
        };
        if !matches!(r.cid.codec(), DAG_PB | RAW) {
            return Err(not_unixfs(format!(
                "{} has codec 0x{:x}",
                r.cid,
                r.cid.codec()
            )));
        }
        match export::stat(src, &r.cid) {
            Ok(_) => Ok(r),
            Err(e @ kiln_core::Error::Malformed { .. }) => Err(not_unixfs(e.to_string())),
            Err(e) => Err(e.into()),
        }
    })
    .await??;
    let cid = resolved.cid;
    let name = req
        .path
        .segments
        .last()
        .cloned()
        .unwrap_or_else(|| cid.to_string());
    let etag = format!("W/\"{cid}.x-tar\"");
    let download = req
        .filename
        .clone()
        .unwrap_or_else(|| format!("{name}.tar"));
    let body = if req.bodiless(&etag) {
        Body::empty()
    } else {
        let store = content.clone();
        blocking_body(move |w| {
            let mut w = SendFirstAtOnce::new(w);
            archive::write_tar(&store, &cid, &name, &mut w)
        })
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(TAR_TYPE));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    if let Some(v) = content_disposition("attachment", &download) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    immutable_headers(h, &etag, &resolved);
    Ok(r)
}

/// What a `Range: bytes=…` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranges {
    /// No usable range: send everything (200).
    Whole,
    /// The satisfiable ranges `[start, end)`, touching ones merged, in the order asked.
    Parts(Vec<(u64, u64)>),
    /// No range overlaps the file (416).
    Unsatisfiable,
}

/// More ranges than this in one request and the whole file is sent instead (RFC 9110
/// lets a server ignore `Range`; many small ranges are a known amplification).
const MAX_RANGES: usize = 16;

/// Decimal digits only (`str::parse` would take a `+`).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One range-spec: None if malformed, Some(None) if it misses the file.
fn parse_one_range(spec: &str, size: u64) -> Option<Option<(u64, u64)>> {
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n = digits(b)?;
        return Some((n > 0 && size > 0).then(|| (size.saturating_sub(n), size)));
    }
    let start = digits(a)?;
    let end = if b.is_empty() {
        size
    } else {
        let last = digits(b)?;
        if last < start {
            return None;
        }
        last.saturating_add(1).min(size)
    };
    Some((start < size).then_some((start, end)))
}

/// Merge ranges that overlap or touch, each into the place of the first it meets (RFC
/// 9110 §14.6 allows coalescing; the parts otherwise keep the order asked).
fn coalesce(parts: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for mut cur in parts {
        let mut at = None;
        let mut i = 0;
        while i < out.len() {
            let o = out[i];
            if o.0 <= cur.1 && cur.0 <= o.1 {
                cur = (cur.0.min(o.0), cur.1.max(o.1));
                if at.is_none() {
                    at = Some(i);
                    i += 1;
                } else {
                    out.remove(i);
                }
            } else {
                i += 1;
            }
        }
        match at {
            Some(i) => out[i] = cur,
            None => out.push(cur),
        }
    }
    out
}

/// The ranges of `Range`, unless `If-Range` names another version (kiln's file Etags are
/// strong; a date or a weak tag never matches, so the whole file is sent).
fn parse_ranges(headers: &HeaderMap, size: u64, etag: &str) -> Ranges {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ranges::Whole;
    };
    if let Some(cond) = headers.get(header::IF_RANGE)
        && cond.as_bytes() != etag.as_bytes()
    {
        return Ranges::Whole;
    }
    let specs: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if specs.is_empty() || specs.len() > MAX_RANGES {
        return Ranges::Whole;
    }
    let mut parts = Vec::new();
    for one in specs {
        match parse_one_range(one, size) {
            None => return Ranges::Whole,
            Some(None) => {}
            Some(Some(p)) => parts.push(p),
        }
    }
    if parts.is_empty() {
        Ranges::Unsatisfiable
    } else {
        Ranges::Parts(coalesce(parts))
    }
}

/// A `multipart/byteranges` body laid out ahead: its boundary, the head of each part, the
/// closing line and the exact length.
struct Multipart {
    boundary: String,
    heads: Vec<String>,
    tail: String,
    len: u64,
}

impl Multipart {
    fn new(ctype: &str, size: u64, parts: &[(u64, u64)]) -> Multipart {
        use std::hash::BuildHasher;
        // Unpredictable to whoever wrote the file, so its bytes cannot fake a part.
        let seed = std::collections::hash_map::RandomState::new();
        let boundary = format!(
            "kiln-{:016x}{:016x}",
            seed.hash_one(parts),
            seed.hash_one(size)
        );
        let heads: Vec<String> = parts
            .iter()
            .map(|&(a, b)| {
                format!(
                    "--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{}/{size}\r\n\r\n",
                    b - 1
                )
            })
            .collect();
        let tail = format!("--{boundary}--\r\n");
        let len = heads
            .iter()
            .zip(parts)
            .map(|(h, &(a, b))| h.len() as u64 + (b - a) + 2)
            .sum::<u64>()
            + tail.len() as u64;
        Multipart {
            boundary,
            heads,
            tail,
            len,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn file(
    content: &Reader,
    req: &Request,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    resolved: &Resolved,
    cid: Cid,
    size: u64,
    name: Option<String>,
    head: &[u8],
) -> Response {
    let filename = req.filename.clone();
    let download = q.get("download").map(String::as_str);
    let ctype = filename
        .as_deref()
        .or(name.as_deref())
        .and_then(type_by_name)
        .unwrap_or_else(|| type_by_content(head));
    let etag = format!("\"{cid}\"");
    let (parts, partial) = match parse_ranges(headers, size, &etag) {
        Ranges::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        Ranges::Whole => (vec![(0, size)], false),
        Ranges::Parts(p) => (p, true),
    };
    let multipart = (parts.len() > 1).then(|| Multipart::new(ctype, size, &parts));
    let (status, len) = match (&multipart, partial) {
        (Some(m), _) => (StatusCode::PARTIAL_CONTENT, m.len),
        (None, true) => (StatusCode::PARTIAL_CONTENT, parts[0].1 - parts[0].0),
        (None, false) => (StatusCode::OK, size),
    };
    let body = if req.bodiless(&etag) || len == 0 {
        Body::empty()
    } else {
        let layout = multipart
            .as_ref()
            .map(|m| (m.heads.clone(), m.tail.clone()));
        let parts = parts.clone();
        store_body(content, len, move |src, w| {
            let mut w = SendFirstAtOnce::new(w);
            let read = |w: &mut dyn Write, (a, b): (u64, u64)| {
                export::read_file(src, &cid, a, Some(b - a), w)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            let Some((heads, tail)) = &layout else {
                return read(&mut w, parts[0]);
            };
            let io = |e: std::io::Error| e.to_string();
            for (head, &part) in heads.iter().zip(&parts) {
                w.write_all(head.as_bytes()).map_err(io)?;
                read(&mut w, part)?;
                w.write_all(b"\r\n").map_err(io)?;
            }
            w.write_all(tail.as_bytes()).map_err(io)
        })
    };
    let mut r = (status, body).into_response();
    // Room for every header set below and by the caller, so the map never regrows.
    r.headers_mut().reserve(16);
    let h = r.headers_mut();
    match &multipart {
        Some(m) => {
            if let Ok(v) =
                HeaderValue::from_str(&format!("multipart/byteranges; boundary={}", m.boundary))
            {
                h.insert(header::CONTENT_TYPE, v);
            }
        }
        None => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        }
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if partial
        && multipart.is_none()
        && let Ok(v) =
            HeaderValue::from_str(&format!("bytes {}-{}/{size}", parts[0].0, parts[0].1 - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    let shown = name.clone().unwrap_or_else(|| cid.to_string());
    let disposition = match (download, &filename) {
        (Some("true"), Some(f)) => content_disposition("attachment", f),
        (Some("true"), None) => content_disposition("attachment", &shown),
        (_, Some(f)) => content_disposition("inline", f),
        (Some("false"), None) => content_disposition("inline", &shown),
        _ => None,
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
            match parse_ranges(&h, size, "\"x\"") {
                Ranges::Whole => "whole".to_string(),
                Ranges::Parts(p) => p
                    .iter()
                    .map(|(a, b)| format!("{a}-{b}"))
                    .collect::<Vec<_>>()
                    .join(","),
                Ranges::Unsatisfiable => "416".to_string(),
            }
        };
        assert_eq!(r("bytes=0-9", 100), "0-10");
        assert_eq!(r("bytes=90-", 100), "90-100");
        assert_eq!(r("bytes=-5", 100), "95-100");
        assert_eq!(r("bytes=50-1000", 100), "50-100");
        assert_eq!(r("bytes=100-", 100), "416");
        assert_eq!(r("bytes=-5", 0), "416");
        assert_eq!(r("bytes=x-y", 100), "whole");
        assert_eq!(r("bytes=9-1", 100), "whole");
        assert_eq!(r("bytes=+1-5", 100), "whole");
        assert_eq!(r("bytes=", 100), "whole");
        // Several ranges: kept in order, the ones past the end dropped, touching ones merged.
        assert_eq!(r("bytes=0-1,5-6", 100), "0-2,5-7");
        assert_eq!(r("bytes=50-59, 0-9", 100), "50-60,0-10");
        assert_eq!(r("bytes=0-9,200-300,-5", 100), "0-10,95-100");
        assert_eq!(r("bytes=0-9,10-19", 100), "0-20");
        assert_eq!(r("bytes=20-29,0-9,5-25", 100), "0-30");
        assert_eq!(r("bytes=200-,300-", 100), "416");
        assert_eq!(r("bytes=0-1,x", 100), "whole");
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(r(&many, 100), "whole");
        // If-Range: only the current strong Etag keeps the range.
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-9"));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"x\""));
        assert_eq!(parse_ranges(&h, 100, "\"x\""), Ranges::Parts(vec![(0, 10)]));
        h.insert(header::IF_RANGE, HeaderValue::from_static("W/\"x\""));
        assert_eq!(parse_ranges(&h, 100, "\"x\""), Ranges::Whole);
    }

    #[test]
    fn multipart_layout() {
        let m = Multipart::new("text/plain", 100, &[(0, 10), (50, 60)]);
        assert!(m.boundary.starts_with("kiln-") && m.boundary.len() > 20);
        assert_eq!(
            m.heads[1],
            format!(
                "--{}\r\nContent-Type: text/plain\r\nContent-Range: bytes 50-59/100\r\n\r\n",
                m.boundary
            )
        );
        let want: u64 =
            m.heads.iter().map(|h| h.len() as u64 + 10 + 2).sum::<u64>() + m.tail.len() as u64;
        assert_eq!(m.len, want);
        assert_ne!(
            m.boundary,
            Multipart::new("text/plain", 100, &[(0, 10), (50, 60)]).boundary
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
