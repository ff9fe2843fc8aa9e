//! The web UI on the API listener: server-rendered HTML (maud escapes every interpolated
//! string), plain links and forms, no script. Pages:
//! - `GET /` (also `/ui`, `/ui/`): the dashboard (`dashboard`);
//! - `GET /ui/browse?path=CID[/path]`: the content browser, `GET /ui/download?path=…` a file
//!   as an attachment (`browse`);
//! - `GET /ui/pins`, `POST /ui/pins` (add), `POST /ui/pins/remove`: pins (`pins`);
//! - `GET /ui/builds`, `POST /ui/builds` (start one), `GET /ui/builds/{id}` (a submission,
//!   streamed live while it runs, or a build of the history), `POST /ui/builds/{id}/cancel`
//!   (its Cancel button): builds (`builds`);
//! - `GET /ui/audit`: the audit trail, everyone's for an administrator, one's own for anyone
//!   else (`audit`);
//! - for administrators (`admin`): `GET /ui/users`, `POST /ui/users` (add),
//!   `POST /ui/users/grant|revoke|remove`; `GET /ui/tokens`, `POST /ui/tokens/revoke`;
//!   `GET /ui/invites`, `POST /ui/invites` (make one: its code is shown once);
//! - `GET /ui/style.css`: the one stylesheet;
//! - `GET /ui/login?code=…` (a one-time link from `kiln ui login`: a session cookie),
//!   `POST /ui/logout`: signing a browser in and out (`session`).
//!
//! Every page acts as whoever is signed in ([`UiCaller`], put in by [`gate`]): the local
//! administrator, or the identity whose token a browser's session holds — it sees what the
//! node layer lets that caller see (its own pins, its own events, the admin pages only as an
//! administrator).
//!
//! Mutations are POST forms answered with a 303 redirect; a [`SameOrigin`] extractor
//! refuses POSTs that a browser marks as coming from another site or origin (the gateway, on
//! another port of the same host, serves arbitrary content and must not be able to pin or
//! unpin). Every UI response carries a restrictive Content-Security-Policy and refuses to be
//! framed.

mod admin;
mod audit;
mod browse;
mod builds;
mod dashboard;
mod pins;
mod session;

use crate::AppState;
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kiln_store::Store;
use maud::{DOCTYPE, Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::time::SystemTime;

/// Every UI route, with the UI's response headers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/ui", get(dashboard::page))
        .route("/ui/", get(dashboard::page))
        .route("/ui/browse", get(browse::page))
        .route("/ui/download", get(browse::download))
        .route("/ui/pins", get(pins::page).post(pins::add))
        .route("/ui/pins/remove", post(pins::remove))
        .route("/ui/builds", get(builds::page).post(builds::start))
        .route("/ui/builds/{id}", get(builds::show))
        .route("/ui/builds/{id}/cancel", post(builds::cancel))
        .route("/ui/audit", get(audit::page))
        .route("/ui/users", get(admin::users).post(admin::user_add))
        .route("/ui/users/grant", post(admin::user_grant))
        .route("/ui/users/revoke", post(admin::user_revoke))
        .route("/ui/users/remove", post(admin::user_remove))
        .route("/ui/tokens", get(admin::tokens))
        .route("/ui/tokens/revoke", post(admin::token_revoke))
        .route(
            "/ui/invites",
            get(admin::invites).post(admin::invite_create),
        )
        .layer(axum::middleware::from_fn(security_headers))
}

/// The UI routes outside its gate: signing in and out, and the stylesheet (the sign-in
/// page uses it too).
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/ui/login", get(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/style.css", get(style))
        .layer(axum::middleware::from_fn(security_headers))
}

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Headers on every UI response (a handler may set its own `Cache-Control` first).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("ui/style.css"),
    )
        .into_response()
}

/// A UI failure: a status and a message, rendered as a page.
#[derive(Debug)]
pub(crate) struct UiError {
    status: StatusCode,
    title: Option<&'static str>,
    message: String,
    retry_after: Option<u64>,
}

impl UiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        UiError {
            status,
            title: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error under another heading.
    pub(crate) fn titled(self, title: &'static str) -> Self {
        UiError {
            title: Some(title),
            ..self
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        UiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// A heading that says what kind of failure this is.
    pub(crate) fn title(&self) -> &'static str {
        if let Some(t) = self.title {
            return t;
        }
        match self.status {
            StatusCode::BAD_REQUEST => "Not a valid CID or path",
            StatusCode::NOT_FOUND => "Not found in this repository",
            StatusCode::FORBIDDEN => "Refused",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            StatusCode::CONFLICT => "Cannot do that",
            StatusCode::NOT_IMPLEMENTED => "Cannot show this content",
            _ => "Something went wrong",
        }
    }

    /// The error as a section of a page.
    pub(crate) fn panel(&self) -> Markup {
        html! {
            section.error role="alert" {
                h2 { (self.title()) }
                p { (self.message) }
            }
        }
    }

    /// This error's page, with `body` (e.g. a pre-filled form) under the message.
    pub(crate) fn page(self, title: &str, nav: Nav, body: Markup) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, "ui: {}", self.message);
        }
        let page = layout(
            title,
            nav,
            html! {
                h1 { (title) }
                (self.panel())
                (body)
            },
        );
        let mut resp = (self.status, page).into_response();
        crate::error::refusal_headers(&mut resp, self.retry_after);
        resp
    }
}

impl From<kiln_core::Error> for UiError {
    fn from(e: kiln_core::Error) -> Self {
        use kiln_core::Error as E;
        let status = match &e {
            E::InvalidCid { .. } | E::InvalidPath(_) => StatusCode::BAD_REQUEST,
            E::NotFound(_) | E::NoSuchLink { .. } | E::WrongType { .. } => StatusCode::NOT_FOUND,
            E::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        UiError::new(status, e.to_string())
    }
}

/// The web UI's rendering of the node's errors: a page with the status of the kind.
impl From<kiln_node::Error> for UiError {
    fn from(e: kiln_node::Error) -> Self {
        UiError {
            retry_after: e.retry_after_secs(),
            ..UiError::new(crate::error::kind_status(e.kind()), e.message().to_string())
        }
    }
}

impl From<kiln_store::Error> for UiError {
    fn from(e: kiln_store::Error) -> Self {
        use kiln_store::Error as E;
        let status = match &e {
            E::NotFound(_) | E::NotPinned(_) => StatusCode::NOT_FOUND,
            E::MissingBlock { .. } | E::AlreadyPinnedRecursively(_) | E::Pinned { .. } => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        UiError::new(status, e.to_string())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let title = self.title();
        self.page(title, Nav::None, html! {})
    }
}

/// Who is signed in to the web UI for this request: the caller its pages act as — the
/// local administrator (on the repository's Unix socket, a loopback listener opened with
/// `--open-loopback`, or a browser holding the administrator's session), or the identity
/// whose token a browser's session holds. Put in the request by [`gate`]; a handler takes
/// it as an argument.
#[derive(Debug, Clone)]
pub(crate) struct UiCaller(pub kiln_node::Caller);

/// What the page layout needs to know of the viewer (set around each gated request).
#[derive(Debug, Clone)]
struct Viewer {
    /// `the local administrator`, or the did:key.
    label: String,
    /// May administer the node: the admin pages are in the navigation.
    admin: bool,
}

tokio::task_local! {
    static VIEWER: Viewer;
}

/// The web UI's gate: who is signed in ([`UiCaller`]), else 401 before any page runs.
/// Bearer tokens are not a way in (a browser never sends one): the UI is the local
/// administrator's and the signed-in browsers'.
pub(crate) async fn gate(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let caller = match signed_in(&parts, &s).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let viewer = Viewer {
        label: caller.who.to_string(),
        admin: kiln_node::auth::is_admin(&caller),
    };
    parts.extensions.insert(UiCaller(caller));
    VIEWER
        .scope(viewer, next.run(Request::from_parts(parts, body)))
        .await
}

/// Who a UI request comes from, by its session cookie or its connection.
async fn signed_in(parts: &Parts, s: &AppState) -> Result<kiln_node::Caller, UiError> {
    use kiln_node::sessions::Holder;
    let via = kiln_node::Via::Ui;
    match session::cookie(&parts.headers).and_then(|id| s.auth.sessions().holder(&id)) {
        Some(Holder::Local) => return Ok(kiln_node::Caller::local(via)),
        Some(Holder::Token(token)) => {
            let who = crate::auth::prove(s, token).await.map_err(|e| {
                UiError::new(
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "this browser's session no longer holds ({}): sign in again with a new link (kiln ui login)",
                        e.message()
                    ),
                )
                .titled("Sign-in needed")
            })?;
            return Ok(kiln_node::Caller { who, via });
        }
        None => {}
    }
    if crate::auth::bearer_of(&parts.headers).is_none()
        && matches!(crate::auth::who(parts, s).await?, kiln_node::Who::Local)
    {
        return Ok(kiln_node::Caller::local(via));
    }
    Err(UiError::new(
        StatusCode::UNAUTHORIZED,
        "sign in first: run `kiln ui login` (on the node's machine, or with your token) and open the link it prints (it works once, for ten minutes)",
    )
    .titled("Sign-in needed"))
}

impl FromRequestParts<AppState> for UiCaller {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, UiError> {
        if let Some(c) = parts.extensions.get::<UiCaller>() {
            return Ok(c.clone());
        }
        signed_in(parts, s).await.map(UiCaller)
    }
}

/// Read content on the blocking pool, through the node layer's reader for `caller`.
pub(crate) async fn reading<T: Send + 'static>(
    s: &AppState,
    caller: &kiln_node::Caller,
    f: impl FnOnce(&kiln_node::content::Reader) -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    let content = kiln_node::content::reader(&s.store, caller)?;
    tokio::task::spawn_blocking(move || f(&content)).await?
}

/// Run store work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&Store) -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    crate::stream::on_store(&s.store, f).await
}

impl From<tokio::task::JoinError> for UiError {
    fn from(e: tokio::task::JoinError) -> Self {
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        )
    }
}

/// Proof that a POST comes from the UI itself: browsers mark cross-site requests with
/// `Sec-Fetch-Site`, or failing that with an `Origin` that is not this server's. A request
/// with neither header is not from a browser that a third-party page could drive, and passes.
pub(crate) struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, UiError> {
        check_same_origin(&parts.headers).map(|()| SameOrigin)
    }
}

fn check_same_origin(h: &HeaderMap) -> Result<(), UiError> {
    crate::origin::check(h).map_err(|why| {
        UiError::new(
            StatusCode::FORBIDDEN,
            format!("cross-site request refused: {why}. Use the forms on this node's own pages."),
        )
    })
}

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Dashboard,
    Browse,
    Pins,
    Builds,
    Users,
    Tokens,
    Invites,
    Audit,
    None,
}

/// A did:key shortened for a narrow place (`did:key:z6Mk…a1b2c3`); other text as it is.
pub(crate) fn short_did(s: &str) -> String {
    match s.strip_prefix("did:key:") {
        Some(rest) if rest.len() > 16 && rest.is_ascii() => {
            format!("did:key:{}…{}", &rest[..6], &rest[rest.len() - 6..])
        }
        _ => s.to_string(),
    }
}

/// The page around `body`.
pub(crate) fn layout(title: &str, current: Nav, body: Markup) -> Markup {
    let viewer = VIEWER.try_with(Viewer::clone).ok();
    let admin = viewer.as_ref().is_some_and(|v| v.admin);
    let item = |nav: Nav, href: &str, label: &str| {
        html! {
            li {
                a href=(href) aria-current=[(nav == current).then_some("page")] { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · kiln" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    a.brand href="/" { "kiln" }
                    nav aria-label="Main" {
                        ul {
                            (item(Nav::Dashboard, "/", "Dashboard"))
                            (item(Nav::Browse, "/ui/browse", "Browse"))
                            (item(Nav::Pins, "/ui/pins", "Pins"))
                            (item(Nav::Builds, "/ui/builds", "Builds"))
                            (item(Nav::Audit, "/ui/audit", if admin { "Audit" } else { "Activity" }))
                            @if admin {
                                (item(Nav::Users, "/ui/users", "Users"))
                                (item(Nav::Tokens, "/ui/tokens", "Tokens"))
                                (item(Nav::Invites, "/ui/invites", "Invites"))
                            }
                        }
                    }
                    @if let Some(v) = &viewer {
                        span.viewer #viewer title=(v.label) { (short_did(&v.label)) }
                    }
                    form.signout method="post" action="/ui/logout" {
                        button type="submit" { "Sign out" }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// Characters escaped in a query value: everything but unreserved characters and `/`
/// (kept readable in `path=CID/a/b`).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// `/ui/browse?path=…` for a content path.
pub(crate) fn browse_href(path: &str) -> String {
    format!("/ui/browse?path={}", utf8_percent_encode(path, QUERY))
}

/// `/ui/download?path=…` for a content path.
pub(crate) fn download_href(path: &str) -> String {
    format!("/ui/download?path={}", utf8_percent_encode(path, QUERY))
}

pub(crate) use kiln_wire::human_bytes;

/// `2026-11-20 14:03:07 UTC`.
pub(crate) fn utc(t: SystemTime) -> String {
    kiln_node::text::format_utc(t)
}

/// The value of query parameter `name`, if given.
pub(crate) fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// One page of a long list: `?page=N`, 1-based.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    pub page: usize,
    pub per_page: usize,
    pub total: usize,
}

impl Paging {
    pub(crate) fn new(q: &[(String, String)], per_page: usize, total: usize) -> Self {
        let pages = total.div_ceil(per_page).max(1);
        let page = param(q, "page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, pages);
        Paging {
            page,
            per_page,
            total,
        }
    }

    pub(crate) fn range(&self) -> std::ops::Range<usize> {
        let start = (self.page - 1) * self.per_page;
        start.min(self.total)..(start + self.per_page).min(self.total)
    }

    fn pages(&self) -> usize {
        self.total.div_ceil(self.per_page).max(1)
    }

    /// Previous/next links; `href(n)` makes the URL of page `n`.
    pub(crate) fn links(&self, href: impl Fn(usize) -> String) -> Markup {
        let r = self.range();
        html! {
            @if self.pages() > 1 {
                nav.paging aria-label="Pages" {
                    @if self.page > 1 { a href=(href(self.page - 1)) rel="prev" { "← Previous" } }
                    span { (r.start + 1) "–" (r.end) " of " (self.total) }
                    @if self.page < self.pages() { a href=(href(self.page + 1)) rel="next" { "Next →" } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn origins() {
        assert!(crate::origin::same_authority(
            "http://127.0.0.1:5001",
            "127.0.0.1:5001"
        ));
        assert!(crate::origin::same_authority(
            "http://Kiln.example",
            "kiln.example:80"
        ));
        assert!(crate::origin::same_authority(
            "https://kiln.example",
            "kiln.example"
        ));
        assert!(crate::origin::same_authority(
            "http://[::1]:5001",
            "[::1]:5001"
        ));
        assert!(!crate::origin::same_authority(
            "http://127.0.0.1:8080",
            "127.0.0.1:5001"
        ));
        assert!(!crate::origin::same_authority("null", "127.0.0.1:5001"));
        assert!(!crate::origin::same_authority(
            "http://evil.example",
            "kiln.example"
        ));
        assert!(!crate::origin::same_authority("http://", ""));
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(200 << 20), "200 MiB");
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_827_696);
        assert_eq!(utc(t), "2000-02-29 12:34:56 UTC");
    }

    #[test]
    fn query_links_escape_what_a_query_needs() {
        assert_eq!(
            browse_href("bafy/a b/c&d=e+f?#"),
            "/ui/browse?path=bafy/a%20b/c%26d%3De%2Bf%3F%23"
        );
    }

    #[test]
    fn paging() {
        let q = vec![("page".to_string(), "3".to_string())];
        let p = Paging::new(&q, 10, 25);
        assert_eq!(p.range(), 20..25);
        let p = Paging::new(&q, 10, 5);
        assert_eq!((p.page, p.range()), (1, 0..5));
    }
}
