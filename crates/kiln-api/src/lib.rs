//! kiln's HTTP surface. Routers only: the business logic lives in kiln-core and
//! kiln-store; handlers translate HTTP to calls on them, running blocking store work on
//! the blocking pool. `api_router` serves the Kubo RPC subset under `/api/v0/` and the
//! web UI at `/` and `/ui/`;
//! `serve` runs a router on a bound listener until a shutdown signal.
#![deny(missing_docs)]

mod archive;
pub mod auth;
pub mod builds;
mod error;
mod gateway;
mod limits;
pub mod metrics;
mod native;
mod openapi;
mod origin;
pub mod psa;
mod rpc;
mod server;
mod stream;
mod tls;
pub(crate) use kiln_wire as types;
mod ui;

pub use error::{ApiError, KilnError};
pub use kiln_node::builds::BuildService;
pub use limits::Limits;
pub use server::Listener;
pub use tls::Tls;

use kiln_store::Store;
use std::future::Future;
use std::sync::Arc;

/// What every handler can reach: a cheap clone.
#[derive(Clone)]
pub struct AppState {
    /// The block store.
    pub store: Store,
    /// This node.
    pub node: Arc<NodeInfo>,
    /// The metrics recorder's handle, when metrics are on.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// How long the event journal keeps events (pruned after each GC run).
    pub keep_events: std::time::Duration,
    /// The build service (`/api/kiln/v1/builds`, the Builds pages).
    pub builds: Arc<BuildService>,
    /// The Pinning Service API's use cases and worker (`/psa`).
    pub pinning: Arc<kiln_node::pinning::PinningService>,
    /// The node's authenticator (tokens, challenges).
    pub auth: Arc<kiln_node::auth::Auth>,
    /// Who a TCP client without a token is taken for, and how fast a client address may ask.
    pub access: Access,
}

/// The listeners' policy for TCP clients (see [`auth`]).
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Loopback TCP peers act as the local administrator, without a token (`--open-loopback`).
    pub open_loopback: bool,
    /// Requests per client address, over every listener (none: no limit). Over it: 429 with
    /// `Retry-After`, in each protocol's error shape.
    pub per_ip: Option<Arc<kiln_node::rate::Limiter<std::net::IpAddr>>>,
    /// Loopback addresses are limited too (by default they are not: the machine's own
    /// clients, or a reverse proxy in front of the node that limits by the real address).
    pub limit_loopback: bool,
}

/// The node's identity and version, as `id` reports it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// libp2p peer ID (`12D3KooW…`).
    pub peer_id: String,
    /// `did:key:z6Mk…`
    pub did: String,
    /// libp2p `PublicKey` protobuf bytes.
    pub public_key: Vec<u8>,
    /// `kiln/<version>`.
    pub agent_version: String,
    /// Addresses the node listens on (filled in once bound).
    pub addresses: Vec<String>,
}

/// The RPC listener's router: the Kubo RPC subset and the web UI.
pub fn api_router(state: AppState) -> axum::Router {
    let ui = ui::router().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        ui::gate,
    ));
    rpc::router()
        .merge(native::router())
        .merge(auth::router())
        .merge(builds::router())
        .merge(psa::router())
        .merge(ui)
        .merge(ui::public_router())
        .route("/metrics", axum::routing::get(metrics::render))
        .with_state(state)
        .layer(axum::middleware::from_fn(origin::guard_api))
        .layer(metrics::TrackLayer("api"))
}

/// The gateway listener's router: trustless and path gateway, read-only.
pub fn gateway_router(state: AppState) -> axum::Router {
    gateway::router()
        .with_state(state)
        .layer(metrics::TrackLayer("gateway"))
}

/// Serve `router` on `listener` under `limits` until `shutdown` completes, then finish
/// in-flight requests (see `server.rs` for the connection-level protections).
pub async fn serve(
    listener: impl Into<server::Listener>,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let body_cap = usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX);
    let router = router.layer(axum::extract::DefaultBodyLimit::max(body_cap));
    server::serve(listener.into(), router, limits, shutdown).await
}
