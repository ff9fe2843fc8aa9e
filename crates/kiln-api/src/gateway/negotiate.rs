//! Choosing the response format: `?format=` always wins (IPIP-523); otherwise the
//! `Accept` header, its media ranges ranked by q-value, then specificity, then position
//! (RFC 9110 §12.5.1). Wildcards (`*/*`, `type/*`) never select a trustless format: they
//! mean the deserialized (path gateway) answer.
//!
//! For CARs, the variant comes from the `version`, `order` and `dups` parameters of the
//! best `application/vnd.ipld.car` range kiln can serve, each overridden by the URL's
//! `car-version`, `car-order`, `car-dups`. kiln writes CARv1 depth-first, with or without
//! duplicates: `order=unk` is served as `dfs` (any order satisfies it), and a request that
//! only names variants kiln cannot write (`version=2`, an unknown order) is answered 406.

use super::GatewayError;
use super::trustless::CarParams;
use axum::http::{HeaderMap, StatusCode, header};
use std::collections::HashMap;

pub(super) const RAW_TYPE: &str = "application/vnd.ipld.raw";
pub(super) const CAR_TYPE: &str = "application/vnd.ipld.car";
pub(super) const TAR_TYPE: &str = "application/x-tar";
const IPNS_RECORD_TYPE: &str = "application/vnd.ipfs.ipns-record";

/// The `json` codec (0x0200): plain JSON, no links.
pub(super) const JSON: u64 = 0x0200;
/// The `cbor` codec (0x51): plain CBOR, no links.
pub(super) const CBOR: u64 = 0x51;

/// A format that returns the block as it is, under its codec's media type, when the
/// CID's codec is that codec (IPIP-524: no conversion between codecs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CodecFormat {
    /// The `format=` value.
    pub name: &'static str,
    /// The multicodec the CID must have.
    pub codec: u64,
    /// The media type, in `Accept` and `Content-Type`.
    pub media_type: &'static str,
}

const CODEC_FORMATS: [CodecFormat; 4] = [
    CodecFormat {
        name: "dag-json",
        codec: kiln_core::cids::DAG_JSON,
        media_type: "application/vnd.ipld.dag-json",
    },
    CodecFormat {
        name: "dag-cbor",
        codec: kiln_core::cids::DAG_CBOR,
        media_type: "application/vnd.ipld.dag-cbor",
    },
    CodecFormat {
        name: "json",
        codec: JSON,
        media_type: "application/json",
    },
    CodecFormat {
        name: "cbor",
        codec: CBOR,
        media_type: "application/cbor",
    },
];

/// The response format asked for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Format {
    /// Deserialized: file bytes, `index.html` or a listing (the path gateway).
    UnixFs,
    /// One block, `application/vnd.ipld.raw`.
    Raw,
    /// A CARv1 stream.
    Car(CarParams),
    /// The UnixFS tree as a tar stream.
    Tar,
    /// The block as it is under its codec's media type.
    Codec(CodecFormat),
}

impl Format {
    /// The `format=` value naming this format (none for the deserialized answer).
    fn query_name(&self) -> Option<&'static str> {
        match self {
            Format::UnixFs => None,
            Format::Raw => Some("raw"),
            Format::Car(_) => Some("car"),
            Format::Tar => Some("tar"),
            Format::Codec(c) => Some(c.name),
        }
    }
}

/// The outcome of negotiation.
#[derive(Debug)]
pub(super) struct Negotiated {
    pub format: Format,
    /// Part of the choice came from `Accept`, not the URL: the response then names the
    /// URL that selects the same representation by itself (`Content-Location`).
    pub from_accept: bool,
}

impl Negotiated {
    /// `Content-Location` for a request to `path` with `raw_query`: the same query with
    /// the negotiated `format` (and CAR parameters) in it, when `Accept` chose any of it.
    pub(super) fn content_location(&self, path: &str, raw_query: Option<&str>) -> Option<String> {
        if !self.from_accept {
            return None;
        }
        let name = self.format.query_name()?;
        let ours = ["format", "car-version", "car-order", "car-dups"];
        let mut parts: Vec<String> = raw_query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| !ours.contains(&p.split('=').next().unwrap_or_default()))
            .map(str::to_string)
            .collect();
        parts.push(format!("format={name}"));
        if let Format::Car(c) = self.format {
            parts.push("car-version=1".into());
            parts.push("car-order=dfs".into());
            parts.push(format!("car-dups={}", if c.dups { "y" } else { "n" }));
        }
        Some(format!("{path}?{}", parts.join("&")))
    }
}

/// One media range of an `Accept` header.
#[derive(Debug)]
struct MediaRange {
    /// `type/subtype`, lower case.
    essence: String,
    /// Parameters other than `q`, names lower case, values unquoted.
    params: Vec<(String, String)>,
    /// Weight in thousandths (1..=1000; ranges weighted 0 are dropped).
    q: u16,
}

impl MediaRange {
    fn param(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_ascii_lowercase())
    }

    /// 0 for `*/*`, 1 for `type/*`, 2 for a full media type.
    fn specificity(&self) -> u8 {
        match self.essence.split_once('/') {
            Some(("*", _)) => 0,
            Some((_, "*")) => 1,
            _ => 2,
        }
    }
}

/// Split on `sep` outside double-quoted strings.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            out
        }
        None => v.to_string(),
    }
}

/// A qvalue (`0`, `0.5`, `1.000`) in thousandths; None if malformed.
fn qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut q: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    for (d, scale) in frac.bytes().zip([100, 10, 1]) {
        q += u16::from(d - b'0') * scale;
    }
    (q <= 1000).then_some(q)
}

/// The acceptable media ranges, best first. Malformed ranges are skipped.
fn parse_accept(headers: &HeaderMap) -> Vec<MediaRange> {
    let mut ranges: Vec<(usize, MediaRange)> = Vec::new();
    let values = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    for item in values.flat_map(|v| split_unquoted(v, ',')) {
        let mut parts = split_unquoted(item, ';').into_iter();
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        if !essence.contains('/') {
            continue;
        }
        let (mut q, mut params, mut ok) = (1000, Vec::new(), true);
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let k = k.trim().to_ascii_lowercase();
            if k == "q" {
                match qvalue(v.trim()) {
                    Some(w) => q = w,
                    None => ok = false,
                }
            } else {
                params.push((k, unquote(v)));
            }
        }
        if ok && q > 0 {
            let index = ranges.len();
            ranges.push((index, MediaRange { essence, params, q }));
        }
    }
    ranges.sort_by(|(ia, a), (ib, b)| {
        b.q.cmp(&a.q)
            .then(b.specificity().cmp(&a.specificity()))
            .then(ia.cmp(ib))
    });
    ranges.into_iter().map(|(_, r)| r).collect()
}

/// CAR variant parameters as asked for (lower case), before kiln decides.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct CarVariant {
    version: Option<String>,
    order: Option<String>,
    dups: Option<String>,
}

impl CarVariant {
    fn of(m: &MediaRange) -> CarVariant {
        CarVariant {
            version: m.param("version"),
            order: m.param("order"),
            dups: m.param("dups"),
        }
    }

    /// `car-version`, `car-order`, `car-dups` from the URL; values kiln cannot serve are a
    /// client error (the URL is explicit, there is nothing to fall back to).
    fn from_url(q: &HashMap<String, String>) -> Result<CarVariant, GatewayError> {
        let get = |name: &str, allowed: &[&str]| -> Result<Option<String>, GatewayError> {
            match q.get(name) {
                None => Ok(None),
                Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v.clone())),
                Some(v) => Err(GatewayError::bad_request(format!(
                    "unsupported {name}={v:?} (kiln writes {})",
                    allowed.join(" or ")
                ))),
            }
        };
        Ok(CarVariant {
            version: get("car-version", &["1"])?,
            order: get("car-order", &["dfs", "unk"])?,
            dups: get("car-dups", &["y", "n"])?,
        })
    }

    /// `self` with the URL's parameters in place of its own.
    fn overridden_by(&self, url: &CarVariant) -> CarVariant {
        CarVariant {
            version: url.version.clone().or_else(|| self.version.clone()),
            order: url.order.clone().or_else(|| self.order.clone()),
            dups: url.dups.clone().or_else(|| self.dups.clone()),
        }
    }

    /// Whether kiln sends duplicates for this variant, or None if kiln cannot write it.
    /// Without `dups`, kiln sends each block once (the spec's advice for a gateway that
    /// controls it).
    fn dups(&self) -> Option<bool> {
        let version = matches!(self.version.as_deref(), None | Some("1"));
        let order = matches!(self.order.as_deref(), None | Some("dfs" | "unk"));
        let dups = match self.dups.as_deref() {
            None | Some("n") => false,
            Some("y") => true,
            Some(_) => return None,
        };
        (version && order).then_some(dups)
    }
}

fn not_acceptable(what: &str) -> GatewayError {
    GatewayError::new(
        StatusCode::NOT_ACCEPTABLE,
        format!(
            "{what}: kiln writes CARv1 ({CAR_TYPE}; version=1; order=dfs; dups=y or n), \
             raw blocks ({RAW_TYPE}), tar ({TAR_TYPE}) or deserialized responses"
        ),
    )
}

fn no_ipns_records() -> GatewayError {
    GatewayError::bad_request(
        "IPNS records are served for /ipns/{name} only (and kiln has no IPNS yet)",
    )
}

/// Decide the format of the response to a request with query `q` and `headers`.
pub(super) fn negotiate(
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Negotiated, GatewayError> {
    let accept = parse_accept(headers);
    let url_car = CarVariant::from_url(q)?;
    let car = |dups| CarParams::from_query(q, dups).map(Format::Car);
    if let Some(f) = q.get("format") {
        let (format, from_accept) = match f.as_str() {
            "raw" => (Format::Raw, false),
            "tar" => (Format::Tar, false),
            "car" => {
                let mut ranges = accept.iter().filter(|m| m.essence == CAR_TYPE).peekable();
                if ranges.peek().is_none() {
                    (car(url_car.dups().unwrap_or(false))?, false)
                } else {
                    let chosen = ranges
                        .map(|m| CarVariant::of(m).overridden_by(&url_car))
                        .find(|v| v.dups().is_some())
                        .ok_or_else(|| not_acceptable("no CAR variant in Accept can be served"))?;
                    let dups = chosen.dups().unwrap_or(false);
                    (car(dups)?, chosen != url_car)
                }
            }
            "ipns-record" => return Err(no_ipns_records()),
            other => match CODEC_FORMATS.iter().find(|c| c.name == other) {
                Some(c) => (Format::Codec(*c), false),
                None => {
                    return Err(GatewayError::bad_request(format!(
                        "unsupported format {other:?} (raw, car, tar, dag-json, dag-cbor, json or cbor)"
                    )));
                }
            },
        };
        return Ok(Negotiated {
            format,
            from_accept,
        });
    }
    let chose = |format| {
        Ok(Negotiated {
            format,
            from_accept: true,
        })
    };
    let mut refused_car = false;
    for m in &accept {
        match m.essence.as_str() {
            RAW_TYPE => return chose(Format::Raw),
            TAR_TYPE => return chose(Format::Tar),
            CAR_TYPE => match CarVariant::of(m).overridden_by(&url_car).dups() {
                Some(dups) => return chose(car(dups)?),
                None => refused_car = true,
            },
            IPNS_RECORD_TYPE => return Err(no_ipns_records()),
            essence => {
                if let Some(c) = CODEC_FORMATS.iter().find(|c| c.media_type == essence) {
                    return chose(Format::Codec(*c));
                }
                break;
            }
        }
    }
    if refused_car && accept.iter().all(|m| m.essence == CAR_TYPE) {
        return Err(not_acceptable("no CAR variant in Accept can be served"));
    }
    Ok(Negotiated {
        format: Format::UnixFs,
        from_accept: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn pick(accept: &str, query: &[(&str, &str)]) -> Result<(String, bool), StatusCode> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        let q: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let n = negotiate(&q, &h).map_err(|e| e.status)?;
        let name = match n.format {
            Format::Car(c) => format!("car dups={}", c.dups),
            f => f.query_name().unwrap_or("unixfs").to_string(),
        };
        Ok((name, n.from_accept))
    }

    fn name(accept: &str) -> String {
        pick(accept, &[])
            .map(|p| p.0)
            .unwrap_or_else(|s| s.to_string())
    }

    #[test]
    fn accept_ranking() {
        assert_eq!(name(""), "unixfs");
        assert_eq!(name("*/*"), "unixfs");
        assert_eq!(name("application/*"), "unixfs");
        assert_eq!(name("text/html,application/xhtml+xml,*/*;q=0.8"), "unixfs");
        assert_eq!(name("application/vnd.ipld.raw"), "raw");
        assert_eq!(name("Application/Vnd.Ipld.Raw"), "raw");
        assert_eq!(
            name("application/vnd.ipld.car;q=0.5, application/vnd.ipld.raw;q=0.9"),
            "raw"
        );
        assert_eq!(
            name("application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car"),
            "car dups=false"
        );
        // Equal weights: the specific type beats the wildcard, else the first listed.
        assert_eq!(name("*/*, application/vnd.ipld.raw"), "raw");
        assert_eq!(
            name("application/vnd.ipld.car, application/vnd.ipld.raw"),
            "car dups=false"
        );
        assert_eq!(name("*/*;q=1, application/vnd.ipld.raw;q=0.9"), "unixfs");
        // q=0 means "not acceptable"; a malformed q drops the range.
        assert_eq!(
            name("application/vnd.ipld.raw;q=0, application/vnd.ipld.car;q=0.1"),
            "car dups=false"
        );
        assert_eq!(name("application/vnd.ipld.raw;q=2"), "unixfs");
        assert_eq!(name("application/x-tar"), "tar");
        assert_eq!(name("application/vnd.ipld.dag-json"), "dag-json");
        assert_eq!(name("application/vnd.ipfs.ipns-record"), "400 Bad Request");
    }

    #[test]
    fn car_variants() {
        assert_eq!(
            name("application/vnd.ipld.car; version=1; order=dfs; dups=y"),
            "car dups=true"
        );
        assert_eq!(
            name("application/vnd.ipld.car; order=\"unk\"; dups=\"n\""),
            "car dups=false"
        );
        // Unservable variants are passed over for the next acceptable one...
        assert_eq!(
            name(
                "application/vnd.ipld.car;order=foo, application/vnd.ipld.car;order=dfs;dups=y;q=0.5"
            ),
            "car dups=true"
        );
        assert_eq!(
            name("application/vnd.ipld.car;version=2, application/vnd.ipld.raw;q=0.1"),
            "raw"
        );
        assert_eq!(
            name("application/vnd.ipld.car;version=2, text/html;q=0.1"),
            "unixfs"
        );
        // ...and when nothing else is acceptable, 406.
        assert_eq!(
            name("application/vnd.ipld.car; version=2"),
            "406 Not Acceptable"
        );
        assert_eq!(
            name("application/vnd.ipld.car; dups=maybe"),
            "406 Not Acceptable"
        );
        // The URL's parameters win over Accept's.
        let car = "application/vnd.ipld.car; dups=n";
        assert_eq!(
            pick(car, &[("format", "car"), ("car-dups", "y")]),
            Ok(("car dups=true".into(), false))
        );
        assert_eq!(
            pick(car, &[("format", "car")]),
            Ok(("car dups=false".into(), true))
        );
        assert_eq!(
            pick("application/vnd.ipld.car; version=2", &[("format", "car")]),
            Err(StatusCode::NOT_ACCEPTABLE)
        );
        assert_eq!(
            pick(
                "application/vnd.ipld.car; version=2",
                &[("format", "car"), ("car-version", "1")]
            ),
            Ok(("car dups=false".into(), false))
        );
        assert_eq!(
            pick("", &[("format", "car"), ("car-version", "2")]),
            Err(StatusCode::BAD_REQUEST)
        );
        // format beats Accept.
        assert_eq!(
            pick("application/vnd.ipld.car", &[("format", "raw")]),
            Ok(("raw".into(), false))
        );
    }

    #[test]
    fn content_locations() {
        let n = Negotiated {
            format: Format::Raw,
            from_accept: true,
        };
        assert_eq!(
            n.content_location("/ipfs/x", Some("a=1&format=car")),
            Some("/ipfs/x?a=1&format=raw".into())
        );
        let unixfs = Negotiated {
            format: Format::UnixFs,
            from_accept: true,
        };
        assert_eq!(unixfs.content_location("/ipfs/x", None), None);
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.125"), Some(125));
        assert_eq!(qvalue("1.000"), Some(1000));
        for bad in ["1.5", "0.1234", "2", "", "x", "-1", "0.x"] {
            assert_eq!(qvalue(bad), None, "{bad}");
        }
        assert_eq!(
            split_unquoted("a;b=\"x;y\";c", ';'),
            ["a", "b=\"x;y\"", "c"]
        );
        assert_eq!(unquote(" \"a\\\"b\" "), "a\"b");
    }
}
