//! The Pinning Service API's use cases: a caller asks the node to pin a CID (with a name,
//! origins and metadata), lists its requests with the spec's filters, reads, replaces and
//! removes them. Each request belongs to the identity whose token made it; another's is
//! "not found" (nothing says it exists). Content already here is pinned at once; the rest
//! waits for the [`fetch`] worker, which fetches it from the request's HTTP origins (every
//! block verified) and pins it, or fails the request after [`Settings::fail_after`].

pub mod fetch;
mod origins;

pub use origins::{Origin, parse_origin};

use crate::auth::{DEFAULT_NAMESPACE, Op, authorize};
use crate::journal::{self, action};
use crate::{Caller, Error, ErrorKind, Result};
use kiln_core::Cid;
use kiln_store::Store;
use kiln_store::requests::{NewRequest, PinRequest, RequestQuery, RequestStatus};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The most CIDs one listing may ask for.
pub const MAX_CIDS: usize = 10;
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// The most origins a request may name.
pub const MAX_ORIGINS: usize = 20;
/// The most metadata entries a request may carry.
pub const MAX_META: usize = 1000;
/// The longest metadata key or value, in bytes.
pub const MAX_META_BYTES: usize = 4096;
/// The most results one listing returns.
pub const MAX_LIMIT: usize = 1000;
/// Results per listing unless asked otherwise.
pub const DEFAULT_LIMIT: usize = 10;

/// What a client asks to pin (the spec's `Pin` object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinSpec {
    /// The CID, as given.
    pub cid: String,
    /// Its name.
    pub name: Option<String>,
    /// Where it may be had: multiaddrs or URLs.
    pub origins: Vec<String>,
    /// The client's metadata.
    pub meta: BTreeMap<String, String>,
}

/// How a listing's `name` matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameMatch {
    /// Exactly, case-sensitive (the default).
    #[default]
    Exact,
    /// Exactly, ignoring case.
    IExact,
    /// As a part, case-sensitive.
    Partial,
    /// As a part, ignoring case.
    IPartial,
}

impl NameMatch {
    /// The mode named `s` (`exact`, `iexact`, `partial`, `ipartial`).
    pub fn parse(s: &str) -> Option<NameMatch> {
        Some(match s {
            "exact" => NameMatch::Exact,
            "iexact" => NameMatch::IExact,
            "partial" => NameMatch::Partial,
            "ipartial" => NameMatch::IPartial,
            _ => return None,
        })
    }

    fn matches(self, want: &str, name: &str) -> bool {
        match self {
            NameMatch::Exact => name == want,
            NameMatch::IExact => name.to_lowercase() == want.to_lowercase(),
            NameMatch::Partial => name.contains(want),
            NameMatch::IPartial => name.to_lowercase().contains(&want.to_lowercase()),
        }
    }
}

/// A listing's filters (the spec's query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these CIDs, as given (at most [`MAX_CIDS`]).
    pub cids: Vec<String>,
    /// Only requests with a name matching this.
    pub name: Option<String>,
    /// How `name` matches.
    pub name_match: NameMatch,
    /// Only these statuses. Empty: `pinned` when no other filter (cid, name, meta) is
    /// given, every status otherwise — so a client that looks up what it just asked for
    /// by CID or name finds it while it is still queued.
    pub statuses: Vec<RequestStatus>,
    /// Made strictly before this time (ms since the epoch).
    pub before_ms: Option<i64>,
    /// Made strictly after this time.
    pub after_ms: Option<i64>,
    /// At most this many results (1 to [`MAX_LIMIT`]; `None`: [`DEFAULT_LIMIT`]).
    pub limit: Option<usize>,
    /// Only requests whose metadata holds every one of these entries.
    pub meta: BTreeMap<String, String>,
}

/// A listing: how many requests match in all, and the newest `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Every match, however many are returned.
    pub count: usize,
    /// The newest matches first.
    pub results: Vec<PinRequest>,
}

/// How the service behaves (`[pinning]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A request whose content is not here after this long fails (its reason in `info`).
    pub fail_after: Duration,
    /// The most time one fetch from one origin may take.
    pub fetch_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            fail_after: Duration::from_secs(24 * 3600),
            fetch_timeout: Duration::from_secs(300),
        }
    }
}

/// The pinning service of a running node: the use cases, and a wake-up for its worker.
pub struct PinningService {
    store: Store,
    settings: Settings,
    delegates: Mutex<Vec<String>>,
    wake: Arc<Wake>,
}

/// The worker's doorbell.
#[derive(Default)]
pub(crate) struct Wake {
    rung: Mutex<(bool, bool)>,
    bell: Condvar,
}

impl Wake {
    fn ring(&self) {
        if let Ok(mut g) = self.rung.lock() {
            g.0 = true;
            self.bell.notify_all();
        }
    }

    fn stop(&self) {
        if let Ok(mut g) = self.rung.lock() {
            g.1 = true;
            self.bell.notify_all();
        }
    }

    /// Wait until rung, stopped or `timeout`; true when stopped.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let Ok(g) = self.rung.lock() else {
            return true;
        };
        let Ok((mut g, _)) = self.bell.wait_timeout_while(g, timeout, |g| !g.0 && !g.1) else {
            return true;
        };
        g.0 = false;
        g.1
    }
}

impl PinningService {
    /// The service over `store`.
    pub fn new(store: Store, settings: Settings) -> Arc<PinningService> {
        Arc::new(PinningService {
            store,
            settings,
            delegates: Mutex::new(Vec::new()),
            wake: Arc::new(Wake::default()),
        })
    }

    /// The node's addresses that requests name as `delegates` (multiaddrs ending
    /// `/p2p/PEER`).
    pub fn set_delegates(&self, delegates: Vec<String>) {
        if let Ok(mut d) = self.delegates.lock() {
            *d = delegates;
        }
    }

    /// The node's delegates.
    pub fn delegates(&self) -> Vec<String> {
        self.delegates.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Start the worker that fetches and pins waiting requests; it runs until [`Self::close`].
    pub fn start(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("kiln-pinning".into())
            .spawn(move || fetch::run(&me.store, &me.settings, &me.wake))
    }

    /// Stop the worker (it finishes the fetch it is in).
    pub fn close(&self) {
        self.wake.stop();
    }

    /// Ask to pin `spec` for `caller`: pinned at once when its content is here, else queued
    /// for the worker.
    pub fn add(&self, caller: &Caller, spec: &PinSpec) -> Result<PinRequest> {
        authorize(caller, Op::Pin, DEFAULT_NAMESPACE)?;
        let made = (|| {
            let new = new_request(caller, spec)?;
            let entry = journal::entry(caller, action::PIN_REQUEST, new.cid.to_string())
                .detail(describe(&new));
            let req = self.store.request_add(&new, &entry)?;
            Ok(self.settle(req))
        })();
        made.map_err(|e| journal::failed(&self.store, caller, action::PIN_REQUEST, &spec.cid, e))
    }

    /// Replace `caller`'s request `id` by `spec` (a new request id; the old pin stays until
    /// the new one is pinned).
    pub fn replace(&self, caller: &Caller, id: &str, spec: &PinSpec) -> Result<PinRequest> {
        authorize(caller, Op::Pin, DEFAULT_NAMESPACE)?;
        // Another's request is refused as if absent, and like every refusal not recorded.
        self.own(caller, id)?;
        let made = (|| {
            let new = new_request(caller, spec)?;
            let entry = journal::entry(caller, action::PIN_REQUEST, new.cid.to_string())
                .detail(format!("replacing request {id}; {}", describe(&new)));
            let req = self
                .store
                .request_replace(id, &new, &entry)?
                .ok_or_else(|| not_found(id))?;
            Ok(self.settle(req))
        })();
        made.map_err(|e| journal::failed(&self.store, caller, action::PIN_REQUEST, id, e))
    }

    /// Remove `caller`'s request `id` and its pin.
    pub fn remove(&self, caller: &Caller, id: &str) -> Result<PinRequest> {
        authorize(caller, Op::Pin, DEFAULT_NAMESPACE)?;
        let req = self.own(caller, id)?;
        let removed = (|| {
            let entry = journal::entry(caller, action::PIN_REQUEST_RM, req.cid.to_string())
                .detail(format!("request {id}"));
            self.store
                .request_rm(id, &entry)?
                .ok_or_else(|| not_found(id))
        })();
        removed.map_err(|e| journal::failed(&self.store, caller, action::PIN_REQUEST_RM, id, e))
    }

    /// `caller`'s request `id`.
    pub fn get(&self, caller: &Caller, id: &str) -> Result<PinRequest> {
        authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
        self.own(caller, id)
    }

    /// `caller`'s requests matching `filter`, newest first.
    pub fn list(&self, caller: &Caller, filter: &Filter) -> Result<Listing> {
        authorize(caller, Op::Read, DEFAULT_NAMESPACE)?;
        if filter.cids.len() > MAX_CIDS {
            return Err(Error::invalid(format!(
                "at most {MAX_CIDS} CIDs may be asked for at once ({} given)",
                filter.cids.len()
            )));
        }
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT} ({limit} given)"
            )));
        }
        let cids = filter
            .cids
            .iter()
            .map(|c| parse_cid(c))
            .collect::<Result<Vec<_>>>()?;
        let filtered = !filter.cids.is_empty() || filter.name.is_some() || !filter.meta.is_empty();
        let statuses = if filter.statuses.is_empty() && !filtered {
            vec![RequestStatus::Pinned]
        } else {
            filter.statuses.clone()
        };
        let query = RequestQuery {
            cids,
            statuses,
            before_ms: filter.before_ms,
            after_ms: filter.after_ms,
        };
        let all = self.store.requests(&caller.owner(), &query)?;
        let matching: Vec<PinRequest> = all
            .into_iter()
            .filter(|r| match &filter.name {
                None => true,
                Some(want) => r
                    .name
                    .as_deref()
                    .is_some_and(|n| filter.name_match.matches(want, n)),
            })
            .filter(|r| filter.meta.iter().all(|(k, v)| r.meta.get(k) == Some(v)))
            .collect();
        let count = matching.len();
        let results = matching.into_iter().take(limit).collect();
        Ok(Listing { count, results })
    }

    /// The request `id` if `caller` made it (else not found, as if it did not exist).
    fn own(&self, caller: &Caller, id: &str) -> Result<PinRequest> {
        match self.store.request(id)? {
            Some(r) if r.owner == caller.owner() => Ok(r),
            _ => Err(not_found(id)),
        }
    }

    /// Pin a new request now if its content is here, else wake the worker; the request as
    /// it then stands.
    fn settle(&self, req: PinRequest) -> PinRequest {
        match fetch::pin_if_here(&self.store, &req) {
            Some(pinned) => pinned,
            None => {
                self.wake.ring();
                req
            }
        }
    }
}

fn not_found(id: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("no pin request {id:?}"))
}

fn parse_cid(s: &str) -> Result<Cid> {
    s.trim()
        .parse::<Cid>()
        .map_err(|e| Error::invalid(format!("{s:?} is not a CID: {e}")))
}

/// A random request id: 26 characters of base32 (128 bits).
fn request_id() -> Result<String> {
    let mut raw = [0u8; 16];
    kiln_id::random(&mut raw).map_err(|e| Error::internal(e.to_string()))?;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(26);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in raw {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    Ok(out)
}

/// Check `spec` and make the request `caller` stores.
fn new_request(caller: &Caller, spec: &PinSpec) -> Result<NewRequest> {
    let cid = parse_cid(&spec.cid)?;
    if let Some(n) = &spec.name {
        if n.chars().count() > MAX_NAME_CHARS {
            return Err(Error::invalid(format!(
                "the name is longer than {MAX_NAME_CHARS} characters"
            )));
        }
        if n.chars().any(char::is_control) {
            return Err(Error::invalid("the name holds control characters"));
        }
    }
    if spec.origins.len() > MAX_ORIGINS {
        return Err(Error::invalid(format!(
            "at most {MAX_ORIGINS} origins may be given ({})",
            spec.origins.len()
        )));
    }
    if let Some(o) = spec.origins.iter().find(|o| o.len() > MAX_META_BYTES) {
        return Err(Error::invalid(format!(
            "an origin is longer than {MAX_META_BYTES} bytes ({} bytes)",
            o.len()
        )));
    }
    if spec.meta.len() > MAX_META {
        return Err(Error::invalid(format!(
            "at most {MAX_META} metadata entries are allowed ({})",
            spec.meta.len()
        )));
    }
    if spec
        .meta
        .iter()
        .any(|(k, v)| k.len() > MAX_META_BYTES || v.len() > MAX_META_BYTES)
    {
        return Err(Error::invalid(format!(
            "a metadata key or value is longer than {MAX_META_BYTES} bytes"
        )));
    }
    Ok(NewRequest {
        id: request_id()?,
        owner: caller.owner(),
        namespace: DEFAULT_NAMESPACE.into(),
        cid,
        name: spec.name.clone(),
        origins: spec.origins.clone(),
        meta: spec.meta.clone(),
    })
}

fn describe(new: &NewRequest) -> String {
    let mut d = format!("request {}", new.id);
    if let Some(n) = &new.name {
        d.push_str(&format!(", named {n}"));
    }
    if !new.origins.is_empty() {
        d.push_str(&format!(", {} origins", new.origins.len()));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_random_base32() {
        let a = request_id().unwrap();
        let b = request_id().unwrap();
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
        );
    }

    #[test]
    fn name_matching() {
        assert!(NameMatch::Exact.matches("Ab", "Ab"));
        assert!(!NameMatch::Exact.matches("ab", "Ab"));
        assert!(NameMatch::IExact.matches("ab", "AB"));
        assert!(NameMatch::Partial.matches("b", "abc"));
        assert!(!NameMatch::Partial.matches("B", "abc"));
        assert!(NameMatch::IPartial.matches("B", "abc"));
        assert_eq!(NameMatch::parse("ipartial"), Some(NameMatch::IPartial));
        assert_eq!(NameMatch::parse("fuzzy"), None);
    }
}
