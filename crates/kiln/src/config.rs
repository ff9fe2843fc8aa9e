//! The daemon's configuration file (TOML); see `kiln daemon --help`.

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `config.toml`. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The RPC API listener.
    pub api: Listener,
    /// The gateway listener.
    pub gateway: Listener,
    /// Request limits.
    pub limits: LimitsConfig,
    /// The event journal.
    pub events: EventsConfig,
    /// The Pinning Service API.
    pub pinning: PinningConfig,
}

/// The `[pinning]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PinningConfig {
    /// A pin request whose content is not here after this long fails (`24h`, `30m`).
    /// Default 24 hours.
    pub fail_after: Option<String>,
    /// The most time one fetch from one origin may take. Default 5 minutes.
    pub fetch_timeout: Option<String>,
}

/// The `[events]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How long the journal keeps an event (`90d`, `12h`); older ones are pruned after each
    /// garbage collection and when the daemon starts. Default 90 days.
    pub keep: Option<String>,
}

/// A listener section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listener {
    /// `ADDR:PORT`.
    pub listen: Option<SocketAddr>,
    /// Loopback clients act as the local administrator, without a token (`[api]` only).
    pub open_loopback: Option<bool>,
    /// TLS: the certificate chain (PEM), with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// TLS: the private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Listen on a non-loopback address without TLS (`[api]` only; for both listeners).
    pub allow_plaintext: Option<bool>,
}

/// The `[limits]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, bytes.
    pub max_body_bytes: Option<u64>,
    /// Requests in flight per client IP.
    pub per_ip_concurrency: Option<usize>,
    /// Open connections per listener.
    pub max_connections: Option<usize>,
    /// Largest request head, bytes.
    pub max_header_bytes: Option<usize>,
    /// Seconds a client has to send a request head.
    pub header_timeout_secs: Option<f64>,
    /// Seconds without traffic after which a connection is closed.
    pub idle_timeout_secs: Option<f64>,
    /// Requests per second a client address may make, sustained (0: no limit).
    pub ip_requests_per_sec: Option<f64>,
    /// Requests a client address may make at once after a quiet period.
    pub ip_burst: Option<f64>,
    /// Requests per second an identity (a token's did:key) may make, sustained (0: no limit).
    pub identity_requests_per_sec: Option<f64>,
    /// Requests an identity may make at once after a quiet period.
    pub identity_burst: Option<f64>,
    /// Limit loopback addresses too (by default only other addresses are limited).
    pub limit_loopback: Option<bool>,
}

/// Rate limits by default: per client address 100 requests a second (bursts of 1000), per
/// identity 50 (bursts of 500).
pub const DEFAULT_IP_RATE: (f64, f64) = (100.0, 1000.0);
/// See [`DEFAULT_IP_RATE`].
pub const DEFAULT_IDENTITY_RATE: (f64, f64) = (50.0, 500.0);

/// The daemon's rate limits, defaults filled in.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Per client address.
    pub per_ip: Option<kiln_node::rate::Rate>,
    /// Per identity.
    pub per_identity: Option<kiln_node::rate::Rate>,
    /// Loopback addresses are limited too.
    pub limit_loopback: bool,
}

impl Config {
    /// Load `explicit`, else `home/config.toml` if it exists, else defaults.
    pub fn load(explicit: Option<&Path>, home: &Path) -> Result<(Config, Option<PathBuf>)> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = home.join("config.toml");
                if !p.exists() {
                    return Ok((Config::default(), None));
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let cfg: Config = toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        Ok((cfg, Some(path)))
    }

    /// How long the event journal keeps events.
    pub fn keep_events(&self) -> Result<Duration> {
        match &self.events.keep {
            None => Ok(kiln_node::journal::DEFAULT_RETENTION),
            Some(s) => kiln_wire::parse_duration(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow!(
                        "[events] keep must be a positive duration such as 90d or 12h, not {s:?}"
                    )
                }),
        }
    }

    /// The pinning service's settings, defaults filled in.
    pub fn pinning(&self) -> Result<kiln_node::pinning::Settings> {
        let mut out = kiln_node::pinning::Settings::default();
        let read = |name: &str, v: &Option<String>, into: &mut Duration| -> Result<()> {
            if let Some(s) = v {
                *into = kiln_wire::parse_duration(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        anyhow!("[pinning] {name} must be a positive duration such as 24h or 5m, not {s:?}")
                    })?;
            }
            Ok(())
        };
        read("fail_after", &self.pinning.fail_after, &mut out.fail_after)?;
        read(
            "fetch_timeout",
            &self.pinning.fetch_timeout,
            &mut out.fetch_timeout,
        )?;
        Ok(out)
    }

    /// The rate limits, defaults filled in.
    pub fn rates(&self) -> Result<Rates> {
        let l = &self.limits;
        let rate =
            |per_sec: Option<f64>, burst: Option<f64>, names: (&str, &str), d: (f64, f64)| {
                let (per_sec, burst) = (per_sec.unwrap_or(d.0), burst.unwrap_or(d.1));
                for (v, name) in [(per_sec, names.0), (burst, names.1)] {
                    if !v.is_finite() || v < 0.0 {
                        return Err(anyhow!("[limits] {name} must be a number ≥ 0, not {v}"));
                    }
                }
                Ok(kiln_node::rate::Rate::new(per_sec, burst))
            };
        Ok(Rates {
            per_ip: rate(
                l.ip_requests_per_sec,
                l.ip_burst,
                ("ip_requests_per_sec", "ip_burst"),
                DEFAULT_IP_RATE,
            )?,
            per_identity: rate(
                l.identity_requests_per_sec,
                l.identity_burst,
                ("identity_requests_per_sec", "identity_burst"),
                DEFAULT_IDENTITY_RATE,
            )?,
            limit_loopback: l.limit_loopback.unwrap_or(false),
        })
    }

    /// The limits, defaults filled in.
    pub fn limits(&self) -> Result<kiln_api::Limits> {
        let d = kiln_api::Limits::default();
        let l = &self.limits;
        let secs = |v: Option<f64>, name: &str, default: Duration| -> Result<Duration> {
            match v {
                None => Ok(default),
                Some(s) => Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| anyhow!("[limits] {name} must be a positive number of seconds")),
            }
        };
        Ok(kiln_api::Limits {
            max_body_bytes: l.max_body_bytes.unwrap_or(d.max_body_bytes),
            per_ip_concurrency: l.per_ip_concurrency.unwrap_or(d.per_ip_concurrency),
            max_connections: l.max_connections.unwrap_or(d.max_connections),
            max_header_bytes: l.max_header_bytes.unwrap_or(d.max_header_bytes),
            header_timeout: secs(
                l.header_timeout_secs,
                "header_timeout_secs",
                d.header_timeout,
            )?,
            idle_timeout: secs(l.idle_timeout_secs, "idle_timeout_secs", d.idle_timeout)?,
        })
    }
}
