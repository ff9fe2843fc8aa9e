//! The read-only gateway: `GET|HEAD /ipfs/{cid}[/path]`. For now: single blocks with
//! `?format=raw` or `Accept: application/vnd.ipld.raw` (trustless), and file bytes.

use crate::{ApiError, AppState};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kiln_core::cids::ContentPath;
use std::collections::HashMap;

/// Every gateway route.
pub fn router() -> Router<AppState> {
    Router::new().route("/ipfs/{*path}", get(ipfs))
}

struct Source<'a>(&'a kiln_store::Store);

impl kiln_core::BlockSource for Source<'_> {
    fn get(&self, cid: &kiln_core::Cid) -> kiln_core::Result<Option<Vec<u8>>> {
        self.0
            .get(cid)
            .map_err(|e| kiln_core::Error::Storage(Box::new(e)))
    }
}

fn wants_raw(q: &HashMap<String, String>, headers: &HeaderMap) -> bool {
    match q.get("format").map(String::as_str) {
        Some("raw") => true,
        Some(_) => false,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/vnd.ipld.raw")),
    }
}

async fn ipfs(
    State(s): State<AppState>,
    Path(path): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let parsed = ContentPath::parse(&path)?;
    let raw = wants_raw(&q, &headers);
    let store = s.store.clone();
    let result =
        tokio::task::spawn_blocking(move || -> Result<(kiln_core::Cid, Vec<u8>), ApiError> {
            let src = Source(&store);
            let cid = kiln_core::export::resolve(&src, &parsed)?;
            let body = if raw {
                kiln_core::BlockSource::get(&src, &cid)?.ok_or(kiln_core::Error::NotFound(cid))?
            } else {
                let mut out = Vec::new();
                kiln_core::export::read_file(&src, &cid, 0, None, &mut out)?;
                out
            };
            Ok((cid, body))
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (cid, body) = match result {
        Ok(x) => x,
        Err(e) if e.is_not_found() => {
            return Ok((StatusCode::NOT_FOUND, e.message().to_string()).into_response());
        }
        Err(e) => return Err(e),
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    let ctype = if raw {
        "application/vnd.ipld.raw"
    } else {
        "application/octet-stream"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{cid}\"")) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=29030400, immutable"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}
