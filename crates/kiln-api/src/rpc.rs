//! The Kubo RPC subset under `/api/v0/`: POST only, arguments in the query string,
//! JSON answers, errors as `{"Message","Code","Type"}`.

use crate::{ApiError, AppState};
use axum::extract::State;
use axum::routing::{MethodRouter, any, post};
use axum::{Json, Router};
use base64::Engine;

/// POST `handler`; any other method → 405 with a Kubo error body.
fn rpc<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    post(handler).fallback(any(|| async { ApiError::method_not_allowed() }))
}

/// Every RPC route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v0/version", rpc(version))
        .route("/api/v0/id", rpc(id))
}

async fn version() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Commit": "",
        "Repo": "kiln-1",
        "System": format!("{}/{}", std::env::consts::ARCH, std::env::consts::OS),
        "Golang": "",
    }))
}

async fn id(State(s): State<AppState>) -> Json<serde_json::Value> {
    let n = &s.node;
    Json(serde_json::json!({
        "ID": n.peer_id,
        "DID": n.did,
        "PublicKey": base64::engine::general_purpose::STANDARD.encode(&n.public_key),
        "Addresses": n.addresses,
        "AgentVersion": n.agent_version,
        "Protocols": [],
    }))
}
