//! The schedule routes (`/api/kiln/v1/schedules`): the scheduler itself is
//! `kiln_node::builds::schedules`.

use super::MAX_REQUEST;
use crate::auth::ApiCaller;
use crate::types::{ScheduleList, ScheduleRequest, ScheduleView};
use crate::{AppState, KilnError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kiln_node::auth::{DEFAULT_NAMESPACE, Op, authorize};
use kiln_node::builds::schedules::no_such;

/// The schedule routes.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/kiln/v1/schedules", get(list).post(add))
        .route("/api/kiln/v1/schedules/{id}", get(show).delete(remove))
}

async fn list(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<ScheduleList>, KilnError> {
    Ok(Json(ScheduleList {
        schedules: s.builds.schedule_views(&caller)?,
    }))
}

async fn add(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Body,
) -> Result<Response, KilnError> {
    authorize(&caller, Op::Build, DEFAULT_NAMESPACE)?;
    let bytes = axum::body::to_bytes(body, MAX_REQUEST).await.map_err(|e| {
        KilnError::payload_too_large(format!(
            "a schedule request is at most {MAX_REQUEST} bytes of JSON: {e}"
        ))
    })?;
    let req: ScheduleRequest = serde_json::from_slice(&bytes)
        .map_err(|e| KilnError::bad_request(format!("bad schedule request: {e}")))?;
    let svc = s.builds.clone();
    let (view, new) = tokio::task::spawn_blocking(move || svc.register(&caller, req)).await??;
    let location = format!("{}/schedules/{}", crate::types::PREFIX, view.id);
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, [(header::LOCATION, location)], Json(view)).into_response())
}

fn schedule_id(id: &str) -> Result<i64, KilnError> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| KilnError::bad_request(format!("{id:?} is not a schedule number")))
}

async fn show(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, KilnError> {
    authorize(&caller, Op::Read, DEFAULT_NAMESPACE)?;
    let id = schedule_id(&id)?;
    s.builds
        .schedule_view(id)
        .map(Json)
        .ok_or_else(|| KilnError::from(no_such(id)))
}

async fn remove(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, KilnError> {
    let id = schedule_id(&id)?;
    let svc = s.builds.clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || svc.unregister_schedule(&caller, id)).await??,
    ))
}
