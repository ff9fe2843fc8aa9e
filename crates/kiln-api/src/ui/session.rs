//! Signing a browser in and out of the web UI: `GET /ui/login?code=…` trades a one-time
//! link (`kiln ui login`) for a session cookie, `POST /ui/logout` ends it. Both are outside
//! the UI's gate (the browser has no session yet, or is leaving it).

use super::{Nav, SameOrigin, UiError, layout};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_node::sessions::COOKIE;
use maud::html;

/// The session id a request's cookies carry, if any.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_string())
        })
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginQuery {
    code: Option<String>,
}

/// `GET /ui/login?code=…`: a session for the browser, then the dashboard.
pub(crate) async fn login(
    State(s): State<AppState>,
    tls: Option<axum::Extension<crate::tls::OverTls>>,
    q: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, UiError> {
    let code = q.ok().and_then(|Query(q)| q.code).unwrap_or_default();
    let begun = s.auth.sessions().begin(&code).map_err(|e| {
        UiError::new(StatusCode::UNAUTHORIZED, e.message().to_string()).titled("Sign-in failed")
    })?;
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        begun.id,
        begun.max_age.as_secs(),
        if tls.is_some() { "; Secure" } else { "" }
    );
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|e| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    );
    Ok(resp)
}

/// `POST /ui/logout`: end the browser's session and forget its cookie.
pub(crate) async fn logout(
    State(s): State<AppState>,
    _same: SameOrigin,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = cookie(&headers) {
        s.auth.sessions().end(&id);
    }
    let page = layout(
        "Signed out",
        Nav::None,
        html! {
            h1 { "Signed out" }
            p { "This browser's session has ended. To sign in again, run " code { "kiln ui login" } " on the node's machine and open the link it prints." }
        },
    );
    let mut resp = (StatusCode::OK, page).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kiln_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}
