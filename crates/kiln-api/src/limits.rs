//! Protection for the listeners: a request body cap and a per-client-IP cap on requests in
//! flight (over it: 429, the request is not run).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Limits applied by [`crate::serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted (bytes).
    pub max_body_bytes: u64,
    /// Requests one client IP may have in flight at once.
    pub per_ip_concurrency: usize,
    /// Open connections per listener; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Largest request head (request line and headers), bytes; larger → 431.
    pub max_header_bytes: usize,
    /// Time a client has to send a complete request head.
    pub header_timeout: std::time::Duration,
    /// A connection on which no byte moves either way for this long is closed.
    pub idle_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 30,
            per_ip_concurrency: 256,
            max_connections: 4096,
            max_header_bytes: 64 << 10,
            header_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Requests in flight per client IP.
#[derive(Clone, Default)]
pub(crate) struct InFlight {
    max: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl InFlight {
    pub(crate) fn new(max: usize) -> Self {
        InFlight {
            max,
            counts: Arc::default(),
        }
    }
}

/// Decrements the count when the request is done (also if it is dropped or panics).
struct Slot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = c.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
    }
}

pub(crate) async fn per_ip(
    State(limit): State<InFlight>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let ip = peer.ip();
    let slot = {
        let mut c = limit.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = c.entry(ip).or_insert(0);
        if *n >= limit.max {
            None
        } else {
            *n += 1;
            Some(Slot {
                ip,
                counts: Arc::clone(&limit.counts),
            })
        }
    };
    let Some(_slot) = slot else {
        tracing::debug!(%ip, "per-IP concurrency limit reached");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests in flight from this address\n",
        )
            .into_response();
    };
    next.run(req).await
}
