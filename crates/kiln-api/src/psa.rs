//! The Pinning Service API (v1) on the API listener, at `/psa`: a client's endpoint is
//! `http(s)://HOST:PORT/psa`. Routes, query parsing and the spec's JSON and error shape
//! only; every use case is [`kiln_node::pinning::PinningService`]'s.

use crate::AppState;
use crate::error::{kind_status, refusal_headers};
use crate::types::psa::{Failure, FailureInfo, Pin, PinResults, PinStatus};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kiln_node::pinning::{Filter, NameMatch, PinSpec};
use kiln_node::{Caller, Via};
use kiln_store::requests::{PinRequest, RequestStatus};
use std::collections::BTreeMap;

/// The Pinning Service API's routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/psa/pins", get(list).post(add)).route(
        "/psa/pins/{requestid}",
        get(one).post(replace).delete(remove),
    )
}

/// An error in the spec's shape: `{"error": {"reason": "NOT_FOUND", "details": "…"}}`.
#[derive(Debug)]
pub struct PsaError {
    status: StatusCode,
    reason: String,
    details: String,
    retry_after: Option<u64>,
}

impl PsaError {
    fn bad_request(details: impl Into<String>) -> PsaError {
        PsaError {
            status: StatusCode::BAD_REQUEST,
            reason: "BAD_REQUEST".into(),
            details: details.into(),
            retry_after: None,
        }
    }
}

impl From<kiln_node::Error> for PsaError {
    fn from(e: kiln_node::Error) -> PsaError {
        let reason = match e.reason() {
            "invalid_input" => "BAD_REQUEST".to_string(),
            r => r.to_ascii_uppercase(),
        };
        PsaError {
            status: kind_status(e.kind()),
            reason,
            details: e.message().to_string(),
            retry_after: e.retry_after_secs(),
        }
    }
}

impl From<tokio::task::JoinError> for PsaError {
    fn from(e: tokio::task::JoinError) -> PsaError {
        PsaError::from(kiln_node::Error::internal(format!("task failed: {e}")))
    }
}

impl IntoResponse for PsaError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, "{}", self.details);
        }
        let body = Failure {
            error: FailureInfo {
                reason: self.reason,
                details: (!self.details.is_empty()).then_some(self.details),
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        refusal_headers(&mut resp, self.retry_after);
        resp
    }
}

/// The caller of a Pinning Service API request.
pub(crate) struct PsaCaller(pub Caller);

impl FromRequestParts<AppState> for PsaCaller {
    type Rejection = PsaError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, PsaError> {
        let who = crate::auth::who(parts, s).await?;
        Ok(PsaCaller(Caller { who, via: Via::Psa }))
    }
}

/// A millisecond time as RFC 3339 in UTC (`2026-12-04T21:30:00.123Z`).
fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn parse_time(what: &str, s: &str) -> Result<i64, PsaError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            PsaError::bad_request(format!("{what}: {s:?} is not an RFC 3339 time: {e}"))
        })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn view(s: &AppState, r: PinRequest) -> PinStatus {
    PinStatus {
        requestid: r.id,
        status: r.status.as_str().into(),
        created: rfc3339(r.created_ms),
        pin: Pin {
            cid: r.cid.to_string(),
            name: r.name,
            origins: r.origins,
            meta: r.meta,
        },
        delegates: s.pinning.delegates(),
        info: r.info,
    }
}

fn spec(p: Pin) -> PinSpec {
    PinSpec {
        cid: p.cid,
        name: p.name,
        origins: p.origins,
        meta: p.meta,
    }
}

/// A request body: the spec's `Pin` as JSON (whatever `Content-Type` says).
type Body = axum::body::Bytes;

fn body(b: Body) -> Result<Pin, PsaError> {
    serde_json::from_slice(&b)
        .map_err(|e| PsaError::bad_request(format!("the body is not a Pin object: {e}")))
}

/// Run the service's work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, kiln_node::Error> + Send + 'static,
) -> Result<T, PsaError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// Read the spec's query parameters (arrays comma-separated; `meta` a JSON object).
fn filter(query: Option<&str>) -> Result<Filter, PsaError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| PsaError::bad_request(format!("bad query: {e}")))?;
    let mut f = Filter::default();
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    for (k, v) in pairs {
        match k.as_str() {
            "cid" => f.cids.extend(list(&v)),
            "name" => f.name = Some(v),
            "match" => {
                f.name_match = NameMatch::parse(&v).ok_or_else(|| {
                    PsaError::bad_request(format!(
                        "match must be exact, iexact, partial or ipartial ({v:?} given)"
                    ))
                })?
            }
            "status" => {
                for s in list(&v) {
                    let st = RequestStatus::parse(&s).ok_or_else(|| {
                        PsaError::bad_request(format!(
                            "status must be queued, pinning, pinned or failed ({s:?} given)"
                        ))
                    })?;
                    if !f.statuses.contains(&st) {
                        f.statuses.push(st);
                    }
                }
            }
            "before" => f.before_ms = Some(parse_time("before", &v)?),
            "after" => f.after_ms = Some(parse_time("after", &v)?),
            "limit" => {
                f.limit = Some(v.parse().map_err(|_| {
                    PsaError::bad_request(format!("limit must be a number ({v:?} given)"))
                })?)
            }
            "meta" => {
                f.meta = serde_json::from_str::<BTreeMap<String, String>>(&v).map_err(|e| {
                    PsaError::bad_request(format!("meta must be a JSON object of strings: {e}"))
                })?
            }
            _ => {}
        }
    }
    Ok(f)
}

/// `GET /psa/pins`: the caller's requests matching the filters, newest first.
async fn list(
    State(s): State<AppState>,
    PsaCaller(caller): PsaCaller,
    RawQuery(q): RawQuery,
) -> Result<Json<PinResults>, PsaError> {
    let f = filter(q.as_deref())?;
    let svc = s.pinning.clone();
    let listing = blocking(move || svc.list(&caller, &f)).await?;
    Ok(Json(PinResults {
        count: listing.count as u64,
        results: listing.results.into_iter().map(|r| view(&s, r)).collect(),
    }))
}

/// `POST /psa/pins`: a new request (202).
async fn add(
    State(s): State<AppState>,
    PsaCaller(caller): PsaCaller,
    b: Body,
) -> Result<(StatusCode, Json<PinStatus>), PsaError> {
    let p = spec(body(b)?);
    let svc = s.pinning.clone();
    let r = blocking(move || svc.add(&caller, &p)).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&s, r))))
}

/// `GET /psa/pins/{requestid}`.
async fn one(
    State(s): State<AppState>,
    PsaCaller(caller): PsaCaller,
    Path(id): Path<String>,
) -> Result<Json<PinStatus>, PsaError> {
    let svc = s.pinning.clone();
    let r = blocking(move || svc.get(&caller, &id)).await?;
    Ok(Json(view(&s, r)))
}

/// `POST /psa/pins/{requestid}`: replace it by a new request (202).
async fn replace(
    State(s): State<AppState>,
    PsaCaller(caller): PsaCaller,
    Path(id): Path<String>,
    b: Body,
) -> Result<(StatusCode, Json<PinStatus>), PsaError> {
    let p = spec(body(b)?);
    let svc = s.pinning.clone();
    let r = blocking(move || svc.replace(&caller, &id, &p)).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&s, r))))
}

/// `DELETE /psa/pins/{requestid}`: remove it and its pin (202).
async fn remove(
    State(s): State<AppState>,
    PsaCaller(caller): PsaCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, PsaError> {
    let svc = s.pinning.clone();
    blocking(move || svc.remove(&caller, &id)).await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_milliseconds() {
        let ms = 1_796_419_526_360;
        let s = rfc3339(ms);
        assert_eq!(s, "2026-12-04T21:25:26.360Z");
        assert_eq!(parse_time("before", &s).unwrap(), ms);
        assert_eq!(
            parse_time("after", "2026-12-04T22:25:26.360+01:00").unwrap(),
            ms
        );
        assert!(parse_time("before", "yesterday").is_err());
    }

    #[test]
    fn filters_parse_as_the_spec_writes_them() {
        let f = filter(Some(
            "cid=bafkqaaa,bafkqaaa&name=a&match=ipartial&status=queued,pinning&limit=5&meta=%7B%22k%22%3A%22v%22%7D",
        ))
        .unwrap();
        assert_eq!(f.cids.len(), 2);
        assert_eq!(f.name_match, NameMatch::IPartial);
        assert_eq!(f.statuses, [RequestStatus::Queued, RequestStatus::Pinning]);
        assert_eq!(f.limit, Some(5));
        assert_eq!(f.meta["k"], "v");
        assert!(filter(Some("status=done")).is_err());
        assert!(filter(Some("match=fuzzy")).is_err());
        assert!(filter(Some("meta=notjson")).is_err());
        assert!(filter(Some("limit=x")).is_err());
    }
}
