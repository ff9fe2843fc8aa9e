//! A client of any Pinning Service API (v1) endpoint, for `kiln pin remote`: bearer token,
//! the spec's JSON, its `{"error": {"reason", "details"}}` errors read back into messages.

use anyhow::{Context, Result, anyhow};
use kiln_wire::psa::{Failure, Pin, PinResults, PinStatus};
use reqwest::blocking::{Client, RequestBuilder, Response};
use std::time::Duration;

/// One remote pinning service.
pub struct PinningService {
    endpoint: String,
    http: Client,
}

impl PinningService {
    /// The service at `endpoint` (`https://host/psa`, no `/pins`), reached with `token`.
    pub fn new(endpoint: &str, token: &str) -> Result<PinningService> {
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| anyhow!("the service's key holds characters a token cannot have"))?;
        auth.set_sensitive(true);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::AUTHORIZATION, auth);
        let http = Client::builder()
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .default_headers(h)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(PinningService {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http,
        })
    }

    fn send(&self, what: &str, req: RequestBuilder) -> Result<Response> {
        let resp = req.send().map_err(|e| {
            anyhow!(
                "{what}: cannot reach {}: {}",
                self.endpoint,
                e.without_url()
            )
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().unwrap_or_default();
        let why = match serde_json::from_str::<Failure>(&text) {
            Ok(f) => match f.error.details {
                Some(d) => format!("{}: {d}", f.error.reason),
                None => f.error.reason,
            },
            Err(_) => text.chars().take(200).collect(),
        };
        Err(anyhow!("{what}: the service answered {status}: {why}"))
    }

    /// `POST /pins`.
    pub fn add(&self, pin: &Pin) -> Result<PinStatus> {
        let url = format!("{}/pins", self.endpoint);
        self.send("pinning", self.http.post(url).json(pin))?
            .json()
            .context("the service's answer is not a PinStatus")
    }

    /// `GET /pins/{id}`.
    pub fn get(&self, id: &str) -> Result<PinStatus> {
        let url = format!("{}/pins/{id}", self.endpoint);
        self.send("reading the pin request", self.http.get(url))?
            .json()
            .context("the service's answer is not a PinStatus")
    }

    /// `GET /pins` with the spec's query parameters.
    pub fn list(&self, query: &[(&str, String)]) -> Result<PinResults> {
        let url = format!("{}/pins", self.endpoint);
        self.send("listing", self.http.get(url).query(query))?
            .json()
            .context("the service's answer is not a PinResults")
    }

    /// Every request matching `query`, newest first, page after page (each next page asks
    /// for those made before the oldest of the last).
    pub fn list_all(&self, query: &[(&str, String)]) -> Result<Vec<PinStatus>> {
        let mut out: Vec<PinStatus> = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            q.push(("limit", "1000".into()));
            if let Some(b) = &before {
                q.push(("before", b.clone()));
            }
            let page = self.list(&q)?;
            let Some(oldest) = page.results.last().map(|p| p.created.clone()) else {
                return Ok(out);
            };
            let fresh: Vec<PinStatus> = page
                .results
                .into_iter()
                .filter(|p| !out.iter().any(|o| o.requestid == p.requestid))
                .collect();
            if fresh.is_empty() || out.len() + fresh.len() >= page.count as usize {
                out.extend(fresh);
                return Ok(out);
            }
            out.extend(fresh);
            before = Some(oldest);
        }
    }

    /// `DELETE /pins/{id}`.
    pub fn remove(&self, id: &str) -> Result<()> {
        let url = format!("{}/pins/{id}", self.endpoint);
        self.send("removing the pin request", self.http.delete(url))?;
        Ok(())
    }
}
