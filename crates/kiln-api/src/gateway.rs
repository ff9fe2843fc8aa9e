//! The read-only gateway: `GET|HEAD /ipfs/{cid}[/path]`, and the same as `GET|HEAD /path`
//! on a `{cidv1-base32}.ipfs.{host}` subdomain. `/ipns/…` (and `{name}.ipns.{host}`)
//! answers 501: kiln resolves no IPNS names yet.
//!
//! One route; the response format is negotiated (`negotiate`: `?format=` beats `Accept`):
//! - `raw` / `application/vnd.ipld.raw`: the one block the path names (`trustless`);
//! - `car` / `application/vnd.ipld.car`: a CARv1 of the path's blocks then the named DAG,
//!   cut by `dag-scope` and `entity-bytes`, with or without duplicates (`trustless`);
//! - `tar` / `application/x-tar`: the UnixFS tree as a tar stream (`unixfs`);
//! - `dag-json`, `dag-cbor`, `json`, `cbor`: the block as it is when its codec matches, else
//!   406 (`unixfs`);
//! - otherwise the path gateway: file bytes (ranges, content types), `index.html` or an
//!   HTML listing for directories (`unixfs`).
//!
//! Paths are decoded here, once, from the raw request target: every segment is
//! percent-decoded and refused if it is `..`, holds a `/` or NUL, or is not UTF-8, so
//! nothing below sees an encoded traversal. Errors are plain text with a status:
//! 400 malformed request, 404 content not in the store, 406 a format the content cannot
//! take, 412 `only-if-cached` and the root is not here, 5xx failures (logged).

// kiln-core errors carry the CIDs they are about; they are cold paths (as in kiln-core).
#![allow(clippy::result_large_err)]

mod negotiate;
mod trustless;
pub(crate) mod unixfs;

use crate::AppState;
use crate::auth::GatewayCaller;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kiln_core::cids::{self, ContentPath};
use kiln_core::export;
use kiln_core::{BlockSource, Cid};
use negotiate::Format;
use std::collections::HashMap;

/// Every gateway route. `get` also answers HEAD.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ipfs/{*path}", get(ipfs))
        .route("/ipfs/", get(no_cid))
        .route("/ipfs", get(no_cid))
        .route("/ipns/{*path}", get(no_ipns))
        .route("/ipns/", get(no_ipns))
        .route("/ipns", get(no_ipns))
        .fallback(subdomain)
}

/// `/ipfs/` alone: the URI router when `?uri=` is given, else a client error.
async fn no_cid(Query(q): Query<HashMap<String, String>>) -> Result<Response, GatewayError> {
    match q.get("uri") {
        Some(uri) => uri_router(uri),
        None => Err(GatewayError::bad_request(
            "no CID in the path: expected /ipfs/{cid}[/path]",
        )),
    }
}

/// `/ipfs/?uri=ipfs://{cid}[/path][?query]` (and `ipns://…`), the form browsers use for
/// `registerProtocolHandler`: a redirect to the gateway path of that address.
fn uri_router(uri: &str) -> Result<Response, GatewayError> {
    let bad =
        || GatewayError::bad_request(format!("uri {uri:?} is not an ipfs:// or ipns:// address"));
    let (scheme, rest) = uri.split_once("://").ok_or_else(bad)?;
    let ns = match scheme.to_ascii_lowercase().as_str() {
        "ipfs" => "ipfs",
        "ipns" => "ipns",
        _ => return Err(bad()),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let mut segments = path.split('/');
    let root = segments.next().unwrap_or_default();
    if root.is_empty() {
        return Err(bad());
    }
    if ns == "ipfs" {
        cids::parse_cid(root)?;
    }
    let mut to = format!("/{ns}/{}", percent_encode(root));
    for seg in segments {
        to.push('/');
        to.push_str(&percent_encode(seg));
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        to.push('?');
        to.push_str(&encode_query(q));
    }
    Ok(local_redirect(&to))
}

/// A 301 to `to`, a path on this gateway. Whatever the path holds, the `Location` stays on
/// the gateway's own origin: runs of `/` become one (`//host` would be another origin to a
/// browser), a backslash is escaped (browsers read `/\host` as `//host`), and a path that
/// does not start with `/` gets one.
pub(crate) fn local_redirect(to: &str) -> Response {
    let (path, query) = match to.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (to, None),
    };
    let mut location = String::with_capacity(to.len() + 1);
    location.push('/');
    for c in path.chars() {
        match c {
            '/' if location.ends_with('/') => {}
            '\\' => location.push_str("%5C"),
            c if c.is_ascii_control() || !c.is_ascii() => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    location.push_str(&format!("%{b:02X}"));
                }
            }
            c => location.push(c),
        }
    }
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Percent-encode what may not stand in a query as it is (delimiters are kept).
fn encode_query(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    for &c in q.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

async fn no_ipns(Query(q): Query<HashMap<String, String>>) -> Result<Response, GatewayError> {
    match q.get("uri") {
        Some(uri) => uri_router(uri),
        None => Err(ipns_not_implemented()),
    }
}

/// `/ipns/` names (keys and DNSLink) are not resolved by kiln yet.
fn ipns_not_implemented() -> GatewayError {
    GatewayError::new(
        StatusCode::NOT_IMPLEMENTED,
        "kiln does not resolve IPNS names yet: /ipns/ paths cannot be served; \
         use /ipfs/{cid}[/path]",
    )
}

/// A gateway failure, rendered as plain text.
#[derive(Debug)]
pub(crate) struct GatewayError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl GatewayError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            message: message.into(),
            retry_after: None,
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

/// The gateway's rendering of the node's errors: a plain-text page with the kind's status.
impl From<kiln_node::Error> for GatewayError {
    fn from(e: kiln_node::Error) -> Self {
        GatewayError {
            retry_after: e.retry_after_secs(),
            ..GatewayError::new(crate::error::kind_status(e.kind()), e.message())
        }
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
        crate::error::refusal_headers(&mut r, self.retry_after);
        r
    }
}

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
    /// `?filename=`, when given and not empty.
    filename: Option<String>,
}

impl Request {
    /// True when the response needs no body: HEAD, or the client already holds `etag`
    /// (the answer becomes a 304), so no stream is started for nothing.
    fn bodiless(&self, etag: &str) -> bool {
        self.head || self.holds(etag)
    }

    /// The client's `If-None-Match` names `etag` (weak comparison, RFC 9110 §8.8.3.2:
    /// `W/"x"` and `"x"` match).
    fn holds(&self, etag: &str) -> bool {
        let opaque = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_string();
        self.if_none_match
            .iter()
            .any(|t| t == "*" || opaque(t) == opaque(etag))
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

async fn ipfs(
    State(s): State<AppState>,
    GatewayCaller(caller): GatewayCaller,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let path = uri.path().to_string();
    answer(&s, &caller, &method, path.clone(), path, &uri, &q, &headers).await
}

/// Requests outside `/ipfs/`: the subdomain form `{cid}.ipfs.{host}/path` when the
/// `Host` says so, else 404.
async fn subdomain(
    State(s): State<AppState>,
    GatewayCaller(caller): GatewayCaller,
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
    // Host names are case-insensitive; base32 CIDs are lower case.
    let host = host.to_ascii_lowercase();
    if host.contains(".ipns.") {
        return Err(ipns_not_implemented());
    }
    let Some((label, _)) = host.split_once(".ipfs.") else {
        return Err(GatewayError::new(StatusCode::NOT_FOUND, "not found"));
    };
    if label.len() > 63 {
        return Err(GatewayError::bad_request(format!(
            "{label:?} is longer than a DNS label (63 characters)"
        )));
    }
    let root = cids::parse_cid(label)?;
    if root.version() == cid::Version::V0 || root.to_string() != label {
        return Err(GatewayError::bad_request(format!(
            "{label:?} is not a CIDv1 in base32: subdomains need one"
        )));
    }
    let path = format!("/ipfs/{label}{}", uri.path());
    let link_path = uri.path().to_string();
    answer(&s, &caller, &method, path, link_path, &uri, &q, &headers).await
}

/// Serve `/ipfs/…` (`path`, still percent-encoded); `link_path` is the same resource as
/// the client addressed it (for redirects).
#[allow(clippy::too_many_arguments)]
async fn answer(
    s: &AppState,
    caller: &kiln_node::Caller,
    method: &Method,
    path: String,
    link_path: String,
    uri: &Uri,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, GatewayError> {
    let (content, trailing_slash) = parse_request_path(&path)?;
    // A service worker registered from `/ipfs/{cid}` would control all of `/ipfs/`.
    if content.segments.is_empty()
        && !trailing_slash
        && link_path.starts_with("/ipfs/")
        && headers
            .get("service-worker")
            .is_some_and(|v| v.as_bytes() == b"script")
    {
        return Err(GatewayError::bad_request(
            "navigator.serviceWorker: registration is not allowed for this scope \
             (register from /ipfs/{cid}/ with the trailing slash)",
        ));
    }
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
        filename: q.get("filename").filter(|f| !f.is_empty()).cloned(),
    };
    // Everything below reads through the node layer's reader for the gateway's caller.
    let content = kiln_node::content::reader(&s.store, caller)?;
    if only_if_cached(headers) {
        let reader = content.clone();
        let root = req.path.root;
        let here = tokio::task::spawn_blocking(move || reader.has(&root)).await??;
        if !here {
            return Ok(StatusCode::PRECONDITION_FAILED.into_response());
        }
    }
    let negotiated = negotiate::negotiate(q, headers)?;
    let mut resp = match negotiated.format {
        Format::Raw => trustless::raw(&content, &req).await?,
        Format::Car(params) => trustless::car(&content, &req, params).await?,
        Format::Tar => unixfs::tar(&content, &req).await?,
        Format::Codec(c) => unixfs::serve(&content, &req, q, headers, Some(c)).await?,
        Format::UnixFs => unixfs::serve(&content, &req, q, headers, None).await?,
    };
    let ok = resp.status().is_success();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&req.raw_path) {
        h.insert(X_IPFS_PATH, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if ok
        && let Some(loc) = negotiated.content_location(&req.link_path, req.raw_query.as_deref())
        && let Ok(v) = HeaderValue::from_str(&loc)
    {
        h.insert(header::CONTENT_LOCATION, v);
    }
    let cached = |tag: &HeaderValue| tag.to_str().is_ok_and(|t| req.holds(t));
    if ok && h.get(header::ETAG).is_some_and(cached) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        for name in [
            header::ETAG,
            header::CACHE_CONTROL,
            header::CONTENT_LOCATION,
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

/// `Cache-Control: only-if-cached`: answer only from what is here (412 otherwise).
fn only_if_cached(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("only-if-cached"))
}

const X_IPFS_PATH: HeaderName = HeaderName::from_static("x-ipfs-path");
const X_IPFS_ROOTS: HeaderName = HeaderName::from_static("x-ipfs-roots");
const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");

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

    /// Regression (issue 9): `GET //evil.com` on a subdomain gateway answered
    /// `Location: //evil.com/`, a redirect to another origin.
    #[test]
    fn redirects_stay_on_the_gateway() {
        let loc = |to: &str| {
            local_redirect(to)
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(loc("//evil.com/"), "/evil.com/");
        assert_eq!(loc("///evil.com//x/"), "/evil.com/x/");
        assert_eq!(loc("/\\evil.com/"), "/%5Cevil.com/");
        assert_eq!(loc("evil.com/"), "/evil.com/");
        assert_eq!(loc(""), "/");
        assert_eq!(
            loc("/ipfs/bafkqaaa/a//b/?x=//y"),
            "/ipfs/bafkqaaa/a/b/?x=//y"
        );
        for to in [
            "//evil.com/",
            "/\\evil.com",
            "https://evil.com/",
            "\t//evil.com",
        ] {
            let l = loc(to);
            assert!(l.starts_with('/') && !l.starts_with("//"), "{to:?} → {l:?}");
            assert!(
                !l.contains("://") || l.find("://") > l.find('/'),
                "{to:?} → {l:?}"
            );
        }
    }

    #[test]
    fn uri_router_redirects() {
        let to = |uri: &str| {
            uri_router(uri).map(|r| {
                r.headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            })
        };
        assert_eq!(to("ipfs://bafkqaaa").unwrap(), "/ipfs/bafkqaaa");
        assert_eq!(
            to("IPFS://bafkqaaa/a b/é.txt?filename=x y#top").unwrap(),
            "/ipfs/bafkqaaa/a%20b/%C3%A9.txt?filename=x%20y"
        );
        assert_eq!(to("ipns://example.com/x").unwrap(), "/ipns/example.com/x");
        assert_eq!(
            to("ipfs://bafkqaaa/a\r\nb").unwrap(),
            "/ipfs/bafkqaaa/a%0D%0Ab"
        );
        for bad in ["https://x", "ipfs://", "ipfs://notacid", "bafkqaaa"] {
            assert_eq!(
                to(bad).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
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
