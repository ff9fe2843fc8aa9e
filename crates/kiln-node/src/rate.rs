//! Rate limits: a token bucket per key (an identity, a client address). A bucket holds up to
//! `burst` requests and refills at `per_sec`; a request finds it empty → refused, with how
//! long until it holds one again (the `Retry-After` of a 429).

use crate::{Error, ErrorKind, Result};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many requests a key may make: `per_sec` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_sec: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: f64,
}

impl Rate {
    /// A rate, or `None` (no limit) when `per_sec` is 0.
    pub fn new(per_sec: f64, burst: f64) -> Option<Rate> {
        (per_sec > 0.0).then(|| Rate {
            per_sec,
            burst: burst.max(1.0),
        })
    }
}

/// More keys than this and the full buckets are forgotten (a full bucket is the same as
/// none).
const SWEEP_AT: usize = 4096;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> std::fmt::Debug for Limiter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Limiter({:?})", self.rate)
    }
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// Buckets that follow `rate`.
    pub fn new(rate: Rate) -> Limiter<K> {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The rate it keeps.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Take one request from `key`'s bucket at `now`: `Err(wait)` when it is empty, with how
    /// long until it holds one.
    pub fn take_at(&self, key: &K, now: Instant) -> std::result::Result<(), Duration> {
        let Rate { per_sec, burst } = self.rate;
        let mut m = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() >= SWEEP_AT && !m.contains_key(key) {
            m.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
            });
        }
        let b = m.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        refill_and_take(b, self.rate, now)
    }

    /// [`Limiter::take_at`] now, as the node's error: over the limit is a quota error
    /// (429) with reason `rate_limited` and when to try again; `what` names the key for
    /// the message (never a secret).
    pub fn take(&self, key: &K, what: &dyn std::fmt::Display) -> Result<()> {
        self.take_at(key, Instant::now())
            .map_err(|wait| limited(&what.to_string(), wait))
    }
}

impl Limiter<String> {
    /// [`Limiter::take`] for a string key, named by itself, without allocating when its
    /// bucket exists.
    pub fn take_str(&self, key: &str) -> Result<()> {
        let now = Instant::now();
        {
            let mut m = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(b) = m.get_mut(key) {
                return refill_and_take(b, self.rate, now).map_err(|wait| limited(key, wait));
            }
        }
        self.take(&key.to_string(), &key)
    }
}

/// Refill `b` to `now` at `rate` and take one request from it, or say how long until one.
fn refill_and_take(b: &mut Bucket, rate: Rate, now: Instant) -> std::result::Result<(), Duration> {
    let refill = now.saturating_duration_since(b.at).as_secs_f64() * rate.per_sec;
    b.tokens = (b.tokens + refill).min(rate.burst);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        Ok(())
    } else {
        Err(Duration::from_secs_f64((1.0 - b.tokens) / rate.per_sec))
    }
}

/// The error of a request over a rate limit.
pub fn limited(what: &str, wait: Duration) -> Error {
    let secs = crate::error::whole_secs(wait);
    Error::new(
        ErrorKind::Quota,
        format!("too many requests from {what}; try again in {secs} s"),
    )
    .because(crate::auth::reason::RATE_LIMITED)
    .retry_after(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let l = Limiter::new(Rate::new(2.0, 3.0).unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take_at(&"a", t0).is_ok());
        }
        let wait = l.take_at(&"a", t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        // Another key has its own bucket.
        assert!(l.take_at(&"b", t0).is_ok());
        // Half a second later one more request fits, and no second.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.take_at(&"a", t1).is_ok());
        assert!(l.take_at(&"a", t1).is_err());
        // A long quiet period refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.take_at(&"a", t2).is_ok());
        }
        assert!(l.take_at(&"a", t2).is_err());
    }

    #[test]
    fn no_rate_means_no_limit_and_the_error_says_when() {
        assert!(Rate::new(0.0, 10.0).is_none());
        let e = limited("did:key:z6Mk", Duration::from_millis(1200));
        assert_eq!(e.kind(), ErrorKind::Quota);
        assert_eq!(e.reason(), "rate_limited");
        assert_eq!(e.retry_after_secs(), Some(2));
    }

    #[test]
    fn many_keys_are_swept_when_full() {
        let l = Limiter::new(Rate::new(1000.0, 1.0).unwrap());
        let t0 = Instant::now();
        for k in 0..SWEEP_AT {
            l.take_at(&k, t0).unwrap();
        }
        // A second later every bucket is full again: they go when a new key comes.
        l.take_at(&usize::MAX, t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
    }
}
