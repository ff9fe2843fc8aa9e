//! The read-only gateway: `GET|HEAD /ipfs/{cid}[/path]`, and the same as `GET|HEAD /path`
//! on a `{cidv1-base32}.ipfs.{host}` subdomain.
//!
//! One route; the response format is negotiated (`?format=` beats `Accept`):
//! - `raw` / `application/vnd.ipld.raw`: the one block the path names (`trustless`);
//! - `car` / `application/vnd.ipld.car`: a CARv1 of the path's blocks then the named DAG,
//!   cut by `dag-scope` and `entity-bytes` (`trustless`);
//! - otherwise the path gateway: file bytes (ranges, content types), `index.html` or an
//!   HTML listing for directories (`unixfs`).
//!
//! Paths are decoded here, once, from the raw request target: every segment is
//! percent-decoded and refused if it is `..`, holds a `/` or NUL, or is not UTF-8, so
//! nothing below sees an encoded traversal. Errors are plain text with a status:
//! 400 malformed request, 404 content not in the store, 5xx failures (logged).

// kiln-core errors carry the CIDs they are about; they are cold paths (as in kiln-core).
#![allow(clippy::result_large_err)]

mod trustless;
pub(crate) mod unixfs;

use crate::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kiln_core::cids::{self, ContentPath};
use kiln_core::export;
use kiln_core::{BlockSource, Cid};
use std::collections::HashMap;

/// Every gateway route. `get` also answers HEAD.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ipfs/{*path}", get(ipfs))
        .route("/ipfs/", get(no_cid))
        .route("/ipfs", get(no_cid))
        .fallback(subdomain)
}

async fn no_cid() -> GatewayError {
    GatewayError::bad_request("no CID in the path: expected /ipfs/{cid}[/path]")
}

/// A gateway failure, rendered as plain text.
#[derive(Debug)]
pub(crate) struct GatewayError {
    status: StatusCode,
    message: String,
}

impl GatewayError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        GatewayError::new(StatusCode::BAD_REQUEST, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        GatewayError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<kiln_core::Error> for GatewayError {
    fn from(e: kiln_core::Error) -> Self {
        use kiln_core::Error as E;
        let status = match &e {
            E::InvalidCid { .. } | E::InvalidPath(_) | E::Options(_) => StatusCode::BAD_REQUEST,
            E::NotFound(_) | E::NoSuchLink { .. } | E::WrongType { .. } => StatusCode::NOT_FOUND,
            E::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        GatewayError::new(status, e.to_string())
    }
}

impl From<tokio::task::JoinError> for GatewayError {
    fn from(e: tokio::task::JoinError) -> Self {
        GatewayError::internal(format!("gateway task failed: {e}"))
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, "gateway: {}", self.message);
        }
        let mut r = (self.status, format!("{}\n", self.message)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

/// The store as a kiln-core block source.
/// Passes the first write straight through to the body, then buffers as `inner` does: the
/// status line, headers and CAR header leave at once instead of after a full piece.
struct SendFirstAtOnce<'a> {
    inner: &'a mut dyn std::io::Write,
    sent: bool,
}

impl<'a> SendFirstAtOnce<'a> {
    fn new(inner: &'a mut dyn std::io::Write) -> Self {
        SendFirstAtOnce { inner, sent: false }
    }
}

impl std::io::Write for SendFirstAtOnce<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if !self.sent {
            self.sent = true;
            self.inner.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A parsed `/ipfs/…` request.
#[derive(Debug, Clone)]
struct Request {
    /// Root CID and decoded segments.
    path: ContentPath,
    /// `/ipfs/{cid}/…` as sent (still percent-encoded): `X-Ipfs-Path`.
    raw_path: String,
    /// The path as the client addressed it (differs for subdomain requests): redirects.
    link_path: String,
    /// The raw query string, if any.
    raw_query: Option<String>,
    /// The path ended with `/`.
    trailing_slash: bool,
    /// HEAD: headers only.
    head: bool,
    /// The `If-None-Match` entity tags.
    if_none_match: Vec<String>,
}

impl Request {
    /// True when the response needs no body: HEAD, or the client already holds `etag`
    /// (the answer becomes a 304), so no stream is started for nothing.
    fn bodiless(&self, etag: &str) -> bool {
        self.head || self.holds(etag)
    }

    /// The client's `If-None-Match` names `etag`.
    fn holds(&self, etag: &str) -> bool {
        self.if_none_match.iter().any(|t| t == etag || t == "*")
    }
}

/// What the path resolved to: the CID after each step (root first).
struct Resolved {
    roots: Vec<Cid>,
    /// The CID the whole path names (the last of `roots`).
    cid: Cid,
}

impl Resolved {
    /// `X-Ipfs-Roots`: every CID along the path.
    fn roots_header(&self) -> String {
        let v: Vec<String> = self.roots.iter().map(Cid::to_string).collect();
        v.join(",")
    }
}

/// Walk the path, checking the root exists even when there are no segments.
fn resolve(src: &dyn BlockSource, path: &ContentPath) -> kiln_core::Result<Resolved> {
    let mut cur = path.root;
    let mut roots = vec![cur];
    if path.segments.is_empty() {
        src.get(&cur)?.ok_or(kiln_core::Error::NotFound(cur))?;
    }
    for seg in &path.segments {
        cur = export::lookup(src, &cur, seg)?;
        roots.push(cur);
    }
    Ok(Resolved { roots, cid: cur })
}

/// Decode `%XX` escapes; refuses bad escapes and non-UTF-8 results.
fn percent_decode(s: &str) -> Result<String, GatewayError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| GatewayError::bad_request(format!("bad escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| GatewayError::bad_request(format!("path segment {s:?} is not UTF-8")))
}

/// Percent-encode everything but unreserved characters (for hrefs and headers).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Parse the raw request path `/ipfs/{cid}[/seg…][/]`.
fn parse_request_path(raw: &str) -> Result<(ContentPath, bool), GatewayError> {
    let rest = raw
        .strip_prefix("/ipfs/")
        .ok_or_else(|| GatewayError::bad_request("expected /ipfs/{cid}"))?;
    let trailing_slash = rest.ends_with('/');
    let mut parts = rest.split('/');
    let root = cids::parse_cid(&percent_decode(parts.next().unwrap_or_default())?)?;
    let mut segments = Vec::new();
    for p in parts {
        let seg = percent_decode(p)?;
        match seg.as_str() {
            "" | "." => {}
            ".." => return Err(GatewayError::bad_request("\"..\" is not allowed in paths")),
            s if s.contains(['/', '\0']) => {
                return Err(GatewayError::bad_request(format!(
                    "path segment {s:?} holds '/' or NUL"
                )));
            }
            s => segments.push(s.to_string()),
        }
    }
    Ok((ContentPath { root, segments }, trailing_slash))
}

/// The response format asked for.
enum Format {
    UnixFs,
    Raw,
    Car(trustless::CarParams),
}

fn negotiate(q: &HashMap<String, String>, headers: &HeaderMap) -> Result<Format, GatewayError> {
    let car = || trustless::CarParams::from_query(q);
    if let Some(f) = q.get("format") {
        return match f.as_str() {
            "raw" => Ok(Format::Raw),
            "car" => Ok(Format::Car(car()?)),
            other => Err(GatewayError::bad_request(format!(
                "unsupported format {other:?} (raw or car)"
            ))),
        };
    }
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for item in accept {
        let mut parts = item.split(';').map(str::trim);
        let mime = parts.next().unwrap_or_default().to_ascii_lowercase();
        match mime.as_str() {
            "application/vnd.ipld.raw" => return Ok(Format::Raw),
            "application/vnd.ipld.car" => {
                for p in parts {
                    if let Some(v) = p.strip_prefix("version=")
                        && v.trim_matches('"') != "1"
                    {
                        return Err(GatewayError::bad_request(format!(
                            "unsupported CAR version {v} (1 only)"
                        )));
                    }
                }
                return Ok(Format::Car(car()?));
            }
            _ => {}
        }
    }
    Ok(Format::UnixFs)
}

async fn ipfs(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let path = uri.path().to_string();
    answer(&s, &method, path.clone(), path, &uri, &q, &headers).await
}

/// Requests outside `/ipfs/`: the subdomain form `{cid}.ipfs.{host}/path` when the
/// `Host` says so, else 404.
async fn subdomain(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(uri.host())
        .unwrap_or_default();
    if method != Method::GET && method != Method::HEAD {
        return Err(GatewayError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "the gateway is read-only: GET or HEAD",
        ));
    }
    let Some((label, _)) = host.split_once(".ipfs.") else {
        return Err(GatewayError::new(StatusCode::NOT_FOUND, "not found"));
    };
    let root = cids::parse_cid(label)?;
    if root.version() == cid::Version::V0 || root.to_string() != label {
        return Err(GatewayError::bad_request(format!(
            "{label:?} is not a CIDv1 in base32: subdomains need one"
        )));
    }
    let path = format!("/ipfs/{label}{}", uri.path());
    answer(
        &s,
        &method,
        path,
        uri.path().to_string(),
        &uri,
        &q,
        &headers,
    )
    .await
}

/// Serve `/ipfs/…` (`path`, still percent-encoded); `link_path` is the same resource as
/// the client addressed it (for redirects).
async fn answer(
    s: &AppState,
    method: &Method,
    path: String,
    link_path: String,
    uri: &Uri,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, GatewayError> {
    let (content, trailing_slash) = parse_request_path(&path)?;
    let req = Request {
        path: content,
        raw_path: path,
        link_path,
        raw_query: uri.query().map(str::to_string),
        trailing_slash,
        head: method == Method::HEAD,
        if_none_match: headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .collect(),
    };
    let mut resp = match negotiate(q, headers)? {
        Format::Raw => trustless::raw(s, &req).await?,
        Format::Car(params) => trustless::car(s, &req, params).await?,
        Format::UnixFs => unixfs::serve(s, &req, q, headers).await?,
    };
    let ok = resp.status().is_success();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&req.raw_path) {
        h.insert(X_IPFS_PATH, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    let cached = |tag: &HeaderValue| tag.to_str().is_ok_and(|t| req.holds(t));
    if ok && h.get(header::ETAG).is_some_and(cached) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        for name in [
            header::ETAG,
            header::CACHE_CONTROL,
            header::VARY,
            X_IPFS_PATH,
            X_IPFS_ROOTS,
        ] {
            if let Some(v) = h.get(&name) {
                not_modified.headers_mut().insert(name, v.clone());
            }
        }
        return Ok(not_modified);
    }
    Ok(resp)
}

const X_IPFS_PATH: HeaderName = HeaderName::from_static("x-ipfs-path");
const X_IPFS_ROOTS: HeaderName = HeaderName::from_static("x-ipfs-roots");

/// Headers every successful `/ipfs/` response carries.
fn immutable_headers(h: &mut HeaderMap, etag: &str, roots: &Resolved) {
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=29030400, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&roots.roots_header()) {
        h.insert(X_IPFS_ROOTS, v);
    }
}

/// `Content-Disposition` with an ASCII fallback and the UTF-8 name.
pub(crate) fn content_disposition(kind: &str, name: &str) -> Option<HeaderValue> {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let v = if ascii == name {
        format!("{kind}; filename=\"{ascii}\"")
    } else {
        format!(
            "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
            percent_encode(name)
        )
    };
    HeaderValue::from_str(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths() {
        let cid = "bafkqaaa";
        let (p, slash) = parse_request_path(&format!("/ipfs/{cid}/a%20b/c/")).unwrap();
        assert_eq!(p.segments, vec!["a b", "c"]);
        assert!(slash);
        for bad in [
            "/ipfs/bafkqaaa/../x",
            "/ipfs/bafkqaaa/%2e%2e/x",
            "/ipfs/bafkqaaa/%2E%2E",
            "/ipfs/bafkqaaa/a%2fb",
            "/ipfs/bafkqaaa/a%00",
            "/ipfs/bafkqaaa/%zz",
            "/ipfs/bafkqaaa/%ff",
            "/ipfs/notacid",
            "/ipfs/",
        ] {
            let e = parse_request_path(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn dispositions() {
        assert_eq!(
            content_disposition("attachment", "a.car").unwrap(),
            "attachment; filename=\"a.car\""
        );
        assert_eq!(
            content_disposition("inline", "é\".txt").unwrap(),
            "inline; filename=\"__.txt\"; filename*=UTF-8''%C3%A9%22.txt"
        );
    }
}
