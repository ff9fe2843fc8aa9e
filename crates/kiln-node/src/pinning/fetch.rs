//! The pinning worker: for each request still waiting (oldest first) it pins the content
//! once it is all here; otherwise it fetches it as a CAR (`?format=car`) from the request's
//! HTTP trustless-gateway origins — each block checked against its CID as it is read, the
//! DAG then checked complete — backing off between tries, and fails the request with the
//! reason in `info` once it is older than [`Settings::fail_after`]. A request with no such
//! origin stays queued until its content reaches the node some other way (an add, an
//! import) or its time runs out.

use super::{Origin, Settings, Wake, parse_origin};
use crate::journal::{self, action};
use kiln_store::journal::Entry;
use kiln_store::requests::{PinRequest, RequestStatus};
use kiln_store::{PinOwner, Store};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::time::{Duration, Instant};

/// How often the worker looks at waiting requests when nothing wakes it.
const TICK: Duration = Duration::from_secs(2);
/// The first wait after a failed fetch; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The `via` of the worker's journal entries.
const VIA: &str = "pinning";

/// Run until `wake` says stop.
pub(crate) fn run(store: &Store, settings: &Settings, wake: &Wake) {
    let client = match client(settings.fetch_timeout) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("the pinning worker cannot make its HTTP client: {e}");
            return;
        }
    };
    let mut backoff: HashMap<String, (Instant, Duration)> = HashMap::new();
    loop {
        if wake.wait(TICK) {
            return;
        }
        let waiting = match store.requests_waiting() {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("the pinning worker cannot list waiting requests: {e}");
                continue;
            }
        };
        backoff.retain(|id, _| waiting.iter().any(|r| &r.id == id));
        for req in waiting {
            work_on(store, settings, &client, &mut backoff, &req);
        }
    }
}

/// An HTTP client for fetching from gateways (TLS with the system's roots).
pub fn client(timeout: Duration) -> Result<reqwest::blocking::Client, String> {
    // reqwest's rustls needs a process-wide crypto provider; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(|e| e.to_string())
}

fn work_on(
    store: &Store,
    settings: &Settings,
    client: &reqwest::blocking::Client,
    backoff: &mut HashMap<String, (Instant, Duration)>,
    req: &PinRequest,
) {
    if pin_if_here(store, req).is_some() {
        return;
    }
    let age = Duration::from_millis((kiln_now_ms() - req.created_ms).max(0) as u64);
    if age >= settings.fail_after {
        let last = req
            .info
            .get("last_error")
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        fail(
            store,
            req,
            &format!(
                "its content could not be had within {}{last}",
                kiln_wire::human_duration(settings.fail_after)
            ),
        );
        return;
    }
    let gateways: Vec<String> = req
        .origins
        .iter()
        .filter_map(|o| match parse_origin(o) {
            Origin::Gateway(g) => Some(g),
            Origin::Hint => None,
        })
        .collect();
    if gateways.is_empty() {
        let note = "waiting for the content: no origin is an HTTP gateway kiln can fetch from";
        if req.info.get("waiting").map(String::as_str) != Some(note) {
            let info = BTreeMap::from([("waiting".to_string(), note.to_string())]);
            let _ = store.request_status(&req.id, RequestStatus::Queued, &info);
        }
        return;
    }
    if backoff
        .get(&req.id)
        .is_some_and(|(at, _)| Instant::now() < *at)
    {
        return;
    }
    let info = BTreeMap::from([("fetching".to_string(), gateways.join(" "))]);
    if !store
        .request_status(&req.id, RequestStatus::Pinning, &info)
        .unwrap_or(false)
    {
        return;
    }
    let limit = limit_for(store, &req.owner);
    let mut errors = Vec::new();
    for gw in &gateways {
        match fetch(store, client, gw, req, limit) {
            Ok(()) => {
                if let Some(r) = pin_if_here(store, req) {
                    tracing::info!(request = %r.id, cid = %r.cid, from = %gw, "pin request fetched and pinned");
                    backoff.remove(&req.id);
                    return;
                }
                errors.push(format!("{gw}: its CAR lacks blocks of the DAG"));
            }
            Err(e) => errors.push(format!("{gw}: {e}")),
        }
    }
    let wait = backoff
        .get(&req.id)
        .map_or(FIRST_BACKOFF, |(_, w)| (*w * 2).min(MAX_BACKOFF));
    backoff.insert(req.id.clone(), (Instant::now() + wait, wait));
    let info = BTreeMap::from([("last_error".to_string(), errors.join("; "))]);
    let _ = store.request_status(&req.id, RequestStatus::Queued, &info);
}

/// Pin `req` if its content is all here: the request as pinned, `None` if it is not (or
/// the pin failed: a request over its owner's quota fails, with the reason).
pub(crate) fn pin_if_here(store: &Store, req: &PinRequest) -> Option<PinRequest> {
    let entry = Entry::ok(req.owner.as_str(), VIA, action::PIN, req.cid.to_string())
        .detail(format!("pin request {}", req.id));
    match store.request_pin(&req.id, limit_for(store, &req.owner), &entry) {
        Ok(r) => r.filter(|r| r.status == RequestStatus::Pinned),
        Err(kiln_store::Error::MissingBlock { .. } | kiln_store::Error::NotFound(_)) => None,
        Err(e @ kiln_store::Error::QuotaExceeded { .. }) => {
            fail(store, req, &e.to_string());
            None
        }
        Err(e) => {
            tracing::warn!(request = %req.id, "pinning a pin request failed: {e}");
            None
        }
    }
}

fn fail(store: &Store, req: &PinRequest, reason: &str) {
    let info = BTreeMap::from([("reason".to_string(), reason.to_string())]);
    if store
        .request_status(&req.id, RequestStatus::Failed, &info)
        .unwrap_or(false)
    {
        journal::record(
            store,
            &Entry::ok(
                req.owner.as_str(),
                VIA,
                action::PIN_REQUEST,
                req.cid.to_string(),
            )
            .failed(format!("request {}: {reason}", req.id)),
        );
    }
}

/// The most bytes `owner`'s pins may hold (its quota), if limited.
fn limit_for(store: &Store, owner: &PinOwner) -> Option<u64> {
    let did = owner.as_str();
    if !did.starts_with("did:") {
        return None;
    }
    store.quota(did).ok()?.pinned_bytes.max()
}

fn kiln_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Fetch `req`'s DAG from the gateway at `base` into the store (at most `limit` bytes of
/// CAR when the owner has a quota).
fn fetch(
    store: &Store,
    client: &reqwest::blocking::Client,
    base: &str,
    req: &PinRequest,
    limit: Option<u64>,
) -> Result<(), String> {
    let url = format!("{base}/ipfs/{}?format=car&dag-scope=all", req.cid);
    let resp = client
        .get(&url)
        .header(
            reqwest::header::ACCEPT,
            "application/vnd.ipld.car;version=1;order=dfs;dups=n",
        )
        .send()
        .map_err(describe_http)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let cap = limit.map_or(u64::MAX, |l| l.saturating_add(1 << 20));
    let body = resp.take(cap);
    let mut session = store.session().map_err(|e| e.to_string())?;
    let imported = kiln_core::car::import(body, &mut session).map_err(|e| e.to_string())?;
    session.commit().map_err(|e| e.to_string())?;
    tracing::debug!(request = %req.id, blocks = imported.blocks, bytes = imported.bytes, from = %base, "fetched");
    Ok(())
}

/// An HTTP error without the URL's query (reqwest's messages repeat the URL).
fn describe_http(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    if e.is_connect() {
        return "cannot connect".into();
    }
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}
