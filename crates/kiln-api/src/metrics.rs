//! Prometheus metrics: requests by listener, route and status, latency histograms, bytes
//! served (where the length is known up front), and the store's size, at `GET /metrics`
//! on the API listener.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics::{Label, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::cell::RefCell;
use std::collections::HashMap;
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

/// The metric handles of one (listener, route, status).
#[derive(Clone)]
struct Handles {
    requests: metrics::Counter,
    latency: metrics::Histogram,
    bytes: metrics::Counter,
}

impl Handles {
    fn new(listener: &'static str, route: &str, status: u16) -> Handles {
        let labels = [
            Label::from_static_parts("listener", listener),
            Label::new("route", SharedString::from(route.to_owned())),
            Label::new("status", SharedString::from(status.to_string())),
        ];
        Handles {
            requests: metrics::counter!("kiln_http_requests_total", labels.to_vec()),
            latency: metrics::histogram!(
                "kiln_http_request_duration_seconds",
                labels[..2].to_vec()
            ),
            bytes: metrics::counter!("kiln_http_response_bytes_total", labels[..1].to_vec()),
        }
    }
}

type HandleMap = HashMap<(&'static str, u16), HashMap<String, Handles>>;

thread_local! {
    /// Handles already registered, per worker thread: a request then costs a map lookup and
    /// three atomic updates instead of registering its labels with the recorder each time.
    static HANDLES: RefCell<HandleMap> = RefCell::new(HashMap::new());
}

fn handles(listener: &'static str, route: &str, status: u16) -> Handles {
    HANDLES.with(|h| {
        let mut h = h.borrow_mut();
        let by_route = h.entry((listener, status)).or_default();
        if let Some(found) = by_route.get(route) {
            return found.clone();
        }
        let made = Handles::new(listener, route, status);
        by_route.insert(route.to_owned(), made.clone());
        made
    })
}

/// Records every request of a listener (`listener` is "api" or "gateway"): a plain tower
/// layer, so the per-request cost is a map lookup and a few atomic updates, with no boxed
/// future.
#[derive(Clone, Copy)]
pub(crate) struct TrackLayer(pub &'static str);

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            listener: self.0,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Track<S> {
    inner: S,
    listener: &'static str,
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Tracked<S::Future> {
        let route = req.extensions().get::<MatchedPath>().cloned();
        Tracked {
            inner: self.inner.call(req),
            listener: self.listener,
            route,
            started: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response future, recorded when it completes.
    pub(crate) struct Tracked<F> {
        #[pin]
        inner: F,
        listener: &'static str,
        route: Option<MatchedPath>,
        started: Instant,
    }
}

impl<F, E> std::future::Future for Tracked<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Ok(resp) = &out {
            let route = this.route.as_ref().map_or("unmatched", |p| p.as_str());
            let h = handles(this.listener, route, resp.status().as_u16());
            h.requests.increment(1);
            h.latency.record(this.started.elapsed().as_secs_f64());
            if let Some(n) = resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            {
                h.bytes.increment(n);
            }
        }
        std::task::Poll::Ready(out)
    }
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn render(
    State(s): State<AppState>,
    caller: Result<crate::auth::ApiCaller, crate::KilnError>,
) -> Response {
    // What the node serves and holds is for its readers: a scraper needs a token (or the
    // socket, or an open loopback) like any other client.
    let caller = match caller {
        Ok(crate::auth::ApiCaller(c)) => c,
        Err(e) => return e.into_response(),
    };
    let store = s.store.clone();
    let stat = match tokio::task::spawn_blocking(move || kiln_node::content::stat(&store, &caller))
        .await
    {
        Ok(Ok(st)) => Some(st),
        Ok(Err(e)) if e.kind() != kiln_node::ErrorKind::Internal => {
            return crate::KilnError::from(e).into_response();
        }
        _ => None,
    };
    let Some(handle) = s.metrics.clone() else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            "metrics are not enabled\n",
        )
            .into_response();
    };
    if let Some(st) = stat {
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
