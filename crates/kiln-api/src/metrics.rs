//! Prometheus metrics: requests by listener, route and status, latency histograms, bytes
//! served (where the length is known up front), and the store's size, at `GET /metrics`
//! on the API listener.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Label, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::time::Instant;

/// Install the process-wide recorder (once, at daemon start-up).
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ])
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

/// Drain the histograms' raw samples into their buckets every few seconds. The recorder
/// keeps every sample until then, so without this a busy daemon that nobody scrapes would
/// grow without bound.
pub fn spawn_upkeep(handle: PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

/// Count blocks that a request added to the store (not counting ones already there).
pub(crate) fn blocks_added(n: u64) {
    if n > 0 {
        metrics::counter!("kiln_blocks_added_total").increment(n);
    }
}

/// Record one request (a layer on each listener; `listener` is "api" or "gateway").
pub(crate) async fn track(listener: &'static str, req: Request, next: Next) -> Response {
    let route: SharedString = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(SharedString::const_str("unmatched"), |p| {
            SharedString::from(p.as_str().to_owned())
        });
    let started = Instant::now();
    let resp = next.run(req).await;
    let status: SharedString = match resp.status().as_u16() {
        // The common ones without an allocation.
        200 => SharedString::const_str("200"),
        206 => SharedString::const_str("206"),
        301 => SharedString::const_str("301"),
        304 => SharedString::const_str("304"),
        400 => SharedString::const_str("400"),
        404 => SharedString::const_str("404"),
        429 => SharedString::const_str("429"),
        other => SharedString::from(other.to_string()),
    };
    let labels = [
        Label::from_static_parts("listener", listener),
        Label::new("route", route),
        Label::new("status", status),
    ];
    metrics::counter!("kiln_http_requests_total", labels.to_vec()).increment(1);
    metrics::histogram!("kiln_http_request_duration_seconds", labels[..2].to_vec())
        .record(started.elapsed().as_secs_f64());
    if let Some(n) = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        metrics::counter!("kiln_http_response_bytes_total", labels[..1].to_vec()).increment(n);
    }
    resp
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn render(State(s): State<AppState>) -> Response {
    let Some(handle) = s.metrics.clone() else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            "metrics are not enabled\n",
        )
            .into_response();
    };
    let store = s.store.clone();
    if let Ok(Ok(st)) =
        tokio::task::spawn_blocking(move || store.stat().map_err(|e| e.to_string())).await
    {
        metrics::gauge!("kiln_store_blocks").set(st.blocks as f64);
        metrics::gauge!("kiln_store_block_bytes").set(st.block_bytes as f64);
        metrics::gauge!("kiln_store_disk_bytes").set((st.pack_bytes + st.db_bytes) as f64);
        metrics::gauge!("kiln_store_pins").set(st.pins as f64);
    }
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
