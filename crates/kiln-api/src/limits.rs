//! Protection for the listeners: a request body cap and a per-client-IP cap on requests in
//! flight (over it: 429, the request is not run).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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

/// Requests in flight per client IP. Each connection looks its address's counter up once;
/// a request then costs one atomic increment and one decrement. Counters of addresses with
/// no connection left are dropped.
pub(crate) struct InFlight {
    max: usize,
    counts: Mutex<HashMap<IpAddr, Arc<AtomicUsize>>>,
}

impl InFlight {
    pub(crate) fn new(max: usize) -> Self {
        InFlight {
            max: max.max(1),
            counts: Mutex::default(),
        }
    }

    /// The counter of `ip`, for one connection's lifetime (see [`InFlight::release`]).
    pub(crate) fn counter(&self, ip: IpAddr) -> Arc<AtomicUsize> {
        let mut m = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        m.entry(ip).or_default().clone()
    }

    /// A connection from `ip` ended: forget the counter when no other connection holds it.
    pub(crate) fn release(&self, ip: IpAddr, counter: Arc<AtomicUsize>) {
        let mut m = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        drop(counter);
        if m.get(&ip).is_some_and(|c| Arc::strong_count(c) == 1) {
            m.remove(&ip);
        }
    }

    /// Take a slot on `counter`, or `None` when the address is at its limit.
    pub(crate) fn enter(&self, counter: &Arc<AtomicUsize>) -> Option<Slot> {
        if counter.fetch_add(1, Ordering::AcqRel) >= self.max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(counter.clone()))
    }
}

/// A request in flight; gives its slot back when dropped (also if the request is dropped
/// or panics).
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The answer to a request over its address's limit.
pub(crate) fn too_many() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests in flight from this address\n",
    )
        .into_response()
}
