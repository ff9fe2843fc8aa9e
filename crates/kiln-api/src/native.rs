//! kiln's own API under `/api/kiln/v1/`: JSON views of the node and the repository that
//! the Kubo RPC has no shape for (pin names and times, GC and verify reports, full
//! statistics). The command line uses it when it talks to a running daemon; `openapi.json`
//! documents it.

use crate::auth::ApiCaller;
use crate::types::{EventList, GcView, NodeView, PinList, StatView, VerifyView};
use crate::{AppState, KilnError};
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

/// Run store work on the blocking pool; its errors are rendered by kiln's table.
async fn blocking<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&kiln_store::Store) -> Result<T, KilnError> + Send + 'static,
) -> Result<T, KilnError> {
    crate::stream::on_store(&s.store, f).await
}

/// Every path [`router`] serves (kept in step with it; a test checks each is documented).
#[cfg(test)]
pub const PATHS: [&str; 8] = [
    "/api/kiln/v1/node",
    "/api/kiln/v1/stat",
    "/api/kiln/v1/pins",
    "/api/kiln/v1/blocks/{cid}",
    "/api/kiln/v1/gc",
    "/api/kiln/v1/verify",
    "/api/kiln/v1/events",
    "/api/kiln/v1/openapi.json",
];

/// kiln's own routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/kiln/v1/node", get(node))
        .route("/api/kiln/v1/stat", get(stat))
        .route("/api/kiln/v1/pins", get(pins))
        .route("/api/kiln/v1/blocks/{cid}", get(block))
        .route("/api/kiln/v1/gc", post(gc))
        .route("/api/kiln/v1/verify", post(verify))
        .route("/api/kiln/v1/events", get(events))
        .route("/api/kiln/v1/openapi.json", get(crate::openapi::document))
        .route("/api/kiln/v1/{*route}", axum::routing::any(unknown_route))
}

/// A path under `/api/kiln/v1/` that names no route: 404 with the JSON error body.
async fn unknown_route(axum::extract::Path(route): axum::extract::Path<String>) -> KilnError {
    KilnError::not_found(format!("no such route: /api/kiln/v1/{route}"))
}

async fn node(State(s): State<AppState>) -> Json<NodeView> {
    Json(NodeView {
        peer_id: s.node.peer_id.clone(),
        did: s.node.did.clone(),
        agent_version: s.node.agent_version.clone(),
        addresses: s.node.addresses.clone(),
        repo_path: s.store.root().display().to_string(),
    })
}

async fn stat(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<StatView>, KilnError> {
    blocking(&s, move |st| {
        let stat = kiln_node::content::stat(st, &caller)?;
        Ok(Json(kiln_node::view::stat(&stat, st.root())))
    })
    .await
}

#[derive(Deserialize)]
struct PinsQuery {
    #[serde(default)]
    indirect: bool,
}

async fn pins(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    q: Result<Query<PinsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PinList>, KilnError> {
    let Query(q) = q.map_err(|e| KilnError::bad_request(e.body_text()))?;
    blocking(&s, move |st| {
        let pins = kiln_node::pins::list(st, &caller)?
            .iter()
            .map(kiln_node::view::pin)
            .collect();
        let indirect = if q.indirect {
            kiln_node::pins::indirect(st, &caller)?
                .iter()
                .map(|c| c.to_string())
                .collect()
        } else {
            Vec::new()
        };
        Ok(Json(PinList { pins, indirect }))
    })
    .await
}

async fn gc(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<GcView>, KilnError> {
    let keep = s.keep_events;
    let report = blocking(&s, move |st| {
        Ok(kiln_node::content::gc(st, &caller, keep, &mut |_| {})?)
    })
    .await?;
    tracing::info!(
        blocks = report.store.blocks_removed,
        bytes = report.store.bytes_freed,
        build_dirs = report.build_dirs.total(),
        "gc"
    );
    Ok(Json(kiln_node::view::gc(&report)))
}

async fn verify(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<VerifyView>, KilnError> {
    blocking(&s, move |st| {
        Ok(Json(kiln_node::view::verify(&kiln_node::content::verify(
            st, &caller,
        )?)))
    })
    .await
}

/// `GET /api/kiln/v1/blocks/{cid}`: a block's bytes, 404 if it is not stored.
async fn block(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    axum::extract::Path(cid): axum::extract::Path<String>,
) -> Result<axum::response::Response, KilnError> {
    use axum::response::IntoResponse;
    let cid = kiln_core::cids::parse_cid(&cid)?;
    let data = blocking(&s, move |st| {
        Ok(kiln_node::content::block(st, &caller, &cid)?)
    })
    .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/vnd.ipld.raw")],
        data,
    )
        .into_response())
}

/// `GET /api/kiln/v1/events` query: `after` (an event number), `since` (milliseconds since
/// the epoch), `limit` (at most 10,000), `order` (`oldest`, the default, or `newest`),
/// `who` (a caller: `local`, a did:key), `action` (`pin`, `token create`, …).
#[derive(Deserialize)]
struct EventsQuery {
    after: Option<i64>,
    since: Option<i64>,
    limit: Option<usize>,
    order: Option<String>,
    who: Option<String>,
    action: Option<String>,
}

/// The most events one answer holds.
const MAX_EVENTS: usize = 10_000;

async fn events(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventList>, KilnError> {
    let Query(q) = q.map_err(|e| KilnError::bad_request(e.body_text()))?;
    let newest_first = match q.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(o) => {
            return Err(KilnError::bad_request(format!(
                "order must be oldest or newest, not {o:?}"
            )));
        }
    };
    let query = kiln_store::journal::Query {
        after: q.after,
        since_ms: q.since,
        limit: Some(q.limit.unwrap_or(MAX_EVENTS).min(MAX_EVENTS)),
        newest_first,
        who: q.who,
        action: q.action,
    };
    blocking(&s, move |st| {
        let events = kiln_node::journal::events(st, &caller, &query)?;
        Ok(Json(EventList {
            events: events.iter().map(kiln_node::view::event).collect(),
        }))
    })
    .await
}
