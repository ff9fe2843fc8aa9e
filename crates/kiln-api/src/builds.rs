//! The build routes (`/api/kiln/v1/builds`): submit, list, show, follow, cancel, prune. The build
//! engine — submissions, their admission, events and the scheduler — is
//! `kiln_node::builds`; these handlers parse, call it off the async runtime, and render.

use crate::auth::ApiCaller;
use crate::types::{BuildList, BuildRequest, BuildView};
use crate::{AppState, KilnError};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use kiln_node::Caller;
use kiln_node::auth::{DEFAULT_NAMESPACE, Op, authorize};
use kiln_node::builds::{Followed, Submission, find_build, gone, no_log, submission_number};
use kiln_wire::{BuildEvent, PruneRequest, PruneView};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub mod schedules;

/// The largest `POST /builds` body.
const MAX_REQUEST: usize = 64 << 10;
/// Builds listed by default.
const DEFAULT_LIMIT: usize = 20;

/// Every path [`router`] serves (with the schedules').
#[cfg(test)]
pub const PATHS: [&str; 8] = [
    "/api/kiln/v1/builds",
    "/api/kiln/v1/builds/prune",
    "/api/kiln/v1/builds/{id}",
    "/api/kiln/v1/builds/{id}/log",
    "/api/kiln/v1/builds/{id}/events",
    "/api/kiln/v1/builds/{id}/cancel",
    "/api/kiln/v1/schedules",
    "/api/kiln/v1/schedules/{id}",
];

/// The build routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/kiln/v1/builds", get(list).post(submit))
        .route("/api/kiln/v1/builds/prune", axum::routing::post(prune))
        .route("/api/kiln/v1/builds/{id}", get(show))
        .route("/api/kiln/v1/builds/{id}/log", get(log))
        .route("/api/kiln/v1/builds/{id}/events", get(events))
        .route(
            "/api/kiln/v1/builds/{id}/cancel",
            axum::routing::post(cancel),
        )
        .merge(schedules::router())
}

/// Start a build from a parsed request (blocking work on the blocking pool).
pub(crate) async fn start(
    s: &AppState,
    caller: Caller,
    req: BuildRequest,
) -> Result<Arc<Submission>, KilnError> {
    let svc = s.builds.clone();
    tokio::task::spawn_blocking(move || svc.submit(&caller, req))
        .await?
        .map_err(KilnError::from)
}

async fn submit(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Body,
) -> Result<Response, KilnError> {
    // Refused before the body is read.
    authorize(&caller, Op::Build, DEFAULT_NAMESPACE)?;
    let bytes = axum::body::to_bytes(body, MAX_REQUEST).await.map_err(|e| {
        KilnError::payload_too_large(format!(
            "a build request is at most {MAX_REQUEST} bytes of JSON: {e}"
        ))
    })?;
    let req: BuildRequest = serde_json::from_slice(&bytes)
        .map_err(|e| KilnError::bad_request(format!("bad build request: {e}")))?;
    let sub = start(&s, caller, req).await?;
    let view = sub.view();
    tracing::info!(build = %view.id, kind = %view.kind, "build submitted");
    let location = format!("{}/builds/{}", crate::types::PREFIX, view.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BuildList>, KilnError> {
    let Query(q) = q.map_err(|e| KilnError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    let svc = s.builds.clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || svc.list(&caller, limit)).await??,
    ))
}

/// The largest `POST /builds/prune` body.
const MAX_PRUNE_REQUEST: usize = 4 << 10;

/// `POST /builds/prune`: remove old builds from the history (`{"keep": N}`,
/// `{"older_than_s": S}`, or both); their records and logs are no longer kept.
async fn prune(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: Body,
) -> Result<Json<PruneView>, KilnError> {
    authorize(&caller, Op::Admin, kiln_node::users::ALL)?;
    let bytes = axum::body::to_bytes(body, MAX_PRUNE_REQUEST)
        .await
        .map_err(|e| KilnError::payload_too_large(format!("a prune request is small JSON: {e}")))?;
    let req: PruneRequest = serde_json::from_slice(&bytes)
        .map_err(|e| KilnError::bad_request(format!("bad prune request: {e}")))?;
    let svc = s.builds.clone();
    let done = tokio::task::spawn_blocking(move || svc.prune(&caller, &req)).await??;
    Ok(Json(done))
}

/// A build of the history with its record's content.
pub(crate) async fn build_view(
    s: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<BuildView, KilnError> {
    let svc = s.builds.clone();
    let arg = id.to_string();
    let caller = caller.clone();
    tokio::task::spawn_blocking(move || svc.build_view(&caller, &arg))
        .await?
        .map_err(KilnError::from)
}

async fn show(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, KilnError> {
    authorize(&caller, Op::Read, DEFAULT_NAMESPACE)?;
    if let Some(n) = submission_number(&id) {
        return match s.builds.submission(n) {
            Some(sub) => Ok(Json(sub.view()).into_response()),
            None => Err(KilnError::from(gone(&id))),
        };
    }
    Ok(Json(build_view(&s, &caller, &id).await?).into_response())
}

/// `POST /builds/sN/cancel`: stop a running submission (its running steps are killed and
/// recorded `cancelled`; no other step starts). 202 with the submission as it is now; a
/// submission that has ended is answered as it is (200), nothing changed.
async fn cancel(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, KilnError> {
    let (sub, stopping) = cancel_submission(&s, &id, caller).await?;
    let status = if stopping {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sub.view())).into_response())
}

/// Ask submission `id` to stop for `caller` (recorded in the journal): the submission, and
/// whether it was running (an ended one is left as it is).
pub(crate) async fn cancel_submission(
    s: &AppState,
    id: &str,
    caller: Caller,
) -> Result<(Arc<Submission>, bool), KilnError> {
    let svc = s.builds.clone();
    let id = id.to_string();
    tokio::task::spawn_blocking(move || svc.cancel(&caller, &id))
        .await?
        .map_err(KilnError::from)
}

fn text(body: impl Into<Body>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn log(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, KilnError> {
    authorize(&caller, Op::Read, DEFAULT_NAMESPACE)?;
    if let Some(n) = submission_number(&id) {
        return match s.builds.submission(n) {
            Some(sub) => Ok(text(sub.transcript())),
            None => Err(KilnError::from(gone(&id))),
        };
    }
    let svc = s.builds.clone();
    let arg = id.clone();
    let row = tokio::task::spawn_blocking(move || find_build(svc.index(), &arg)).await??;
    match row.log {
        Some(log) => {
            let content = kiln_node::content::reader(&s.store, &caller)?;
            Ok(text(crate::stream::blocking_body(move |w| {
                kiln_core::export::read_file(&content, &log, 0, None, w)
                    .map(drop)
                    .map_err(|e| format!("reading log {log} of build {}: {e}", row.id))
            })))
        }
        None => match s.builds.submission_of(row.id) {
            Some((sub, step)) if row.status == "running" => Ok(text(sub.step_lines(&step))),
            _ => Err(KilnError::not_found(no_log(&row))),
        },
    }
}

async fn events(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, KilnError> {
    authorize(&caller, Op::Read, DEFAULT_NAMESPACE)?;
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    let Some(n) = submission_number(&id) else {
        return Err(KilnError::not_found(format!(
            "{id:?}: events stream for submissions (sN, as POST /builds answers) only"
        )));
    };
    let sub = s
        .builds
        .submission(n)
        .ok_or_else(|| KilnError::from(gone(&id)))?;
    // A client that reconnects says what it saw last.
    let from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |n| n + 1);
    let stream = follow(sub, from, s.builds.closing()).map(|(seq, ev)| {
        let mut e = SseEvent::default()
            .event(ev.name())
            .data(serde_json::to_string(&*ev).unwrap_or_default());
        if let Some(seq) = seq {
            e = e.id(seq.to_string());
        }
        Ok::<_, std::convert::Infallible>(e)
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The events of `sub` from `from` on, then live until its `done` event (or until the
/// daemon stops).
pub(crate) fn follow(
    sub: Arc<Submission>,
    from: u64,
    closing: watch::Receiver<bool>,
) -> impl futures_util::Stream<Item = Followed> + Send + 'static {
    let changed = sub.changes();
    let state = (
        sub,
        from,
        changed,
        closing,
        VecDeque::<Followed>::new(),
        false,
    );
    futures_util::stream::unfold(
        state,
        |(sub, mut next, mut changed, mut closing, mut buf, mut ended)| async move {
            loop {
                // A stopping daemon ends its streams at once (the builds it then cancels
                // end after them).
                if *closing.borrow() {
                    return None;
                }
                if let Some(item) = buf.pop_front() {
                    return Some((item, (sub, next, changed, closing, buf, ended)));
                }
                if ended {
                    return None;
                }
                let (items, done, after) = sub.since(next);
                next = after;
                if !items.is_empty() {
                    ended = items
                        .iter()
                        .any(|(_, e)| matches!(**e, BuildEvent::Done(_)));
                    buf.extend(items);
                    continue;
                }
                if done {
                    return None;
                }
                tokio::select! {
                    r = changed.changed() => if r.is_err() { return None },
                    r = closing.changed() => if r.is_err() { return None },
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::openapi::tests::conforms;
    use crate::types::{BuildEvent, SubmissionView};
    use crate::{AppState, NodeInfo};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::Value;
    use std::sync::Arc;
    use tower::ServiceExt;

    const RECIPE: &str = r#"
[params]
title = "Docs"

[step.site]
builder = "builtin"
command = ["markdown-site", "--title", "{title}", "docs", "out/site"]
inputs = { "docs" = "docs" }
outputs = ["out/site"]
"#;

    struct Fixture {
        dir: tempfile::TempDir,
        store: kiln_store::Store,
        app: axum::Router,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store =
            kiln_store::Store::open(dir.path(), kiln_store::StoreOptions::default()).unwrap();
        let builds = crate::BuildService::open(
            store.clone(),
            kiln_id::NodeKey::generate().unwrap(),
            dir.path().join("builds"),
            std::env::current_exe().unwrap(),
        )
        .unwrap();
        let app = crate::api_router(AppState {
            pinning: kiln_node::pinning::PinningService::new(store.clone(), Default::default()),
            store: store.clone(),
            node: Arc::new(NodeInfo {
                peer_id: "12D3KooWtest".into(),
                did: "did:key:z6Mktest".into(),
                public_key: vec![],
                agent_version: "kiln/test".into(),
                addresses: vec![],
            }),
            metrics: None,
            keep_events: kiln_node::journal::DEFAULT_RETENTION,
            builds,
            auth: std::sync::Arc::new(kiln_node::auth::Auth::new(
                kiln_id::NodeKey::generate().expect("key"),
            )),
            access: Default::default(),
        });
        let app = crate::auth::as_local(app);
        Fixture { dir, store, app }
    }

    /// A source tree with `recipe` and a docs directory, added to the store (unpinned).
    fn source(f: &Fixture, name: &str, recipe: &str) -> String {
        let t = f.dir.path().join(name);
        std::fs::create_dir_all(t.join("docs")).unwrap();
        std::fs::write(t.join("kiln.toml"), recipe).unwrap();
        std::fs::write(
            t.join("docs/README.md"),
            "# Hello\n\nSee [the guide](guide.md).\n",
        )
        .unwrap();
        std::fs::write(t.join("docs/guide.md"), "# Guide\n\nText.\n").unwrap();
        let mut s = f.store.session().unwrap();
        let cid = kiln_build::content::import_tree(&mut s, &t).unwrap().cid;
        s.commit().unwrap();
        cid.to_string()
    }

    async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn post(app: &axum::Router, body: Value) -> (StatusCode, Value) {
        let (st, text) = call(
            app,
            Request::post("/api/kiln/v1/builds")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
        (st, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
        call(app, Request::get(uri).body(Body::empty()).unwrap()).await
    }

    /// The server-sent events of a submission, to the end.
    async fn events(app: &axum::Router, id: &str) -> Vec<BuildEvent> {
        let (st, text) = get(app, &format!("/api/kiln/v1/builds/{id}/events")).await;
        assert_eq!(st, StatusCode::OK, "{text}");
        let mut out = Vec::new();
        let (mut name, mut data) = (String::new(), String::new());
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            } else if line.is_empty() && !data.is_empty() {
                let ev: BuildEvent = serde_json::from_str(&data).unwrap();
                assert_eq!(ev.name(), name);
                out.push(ev);
                data.clear();
            }
        }
        out
    }

    #[tokio::test]
    async fn a_recipe_builds_and_its_events_logs_and_views_follow() {
        let f = fixture();
        let src = source(&f, "project", RECIPE);
        let doc = crate::openapi::spec();
        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": src, "params": {"title": "Mine"}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        conforms(
            &doc,
            &doc["components"]["schemas"]["Submission"],
            &v,
            "submit",
        );
        assert_eq!(v["id"], "s1");
        assert_eq!(v["origin"], format!("{src}/kiln.toml"));
        assert_eq!(v["steps"][0]["name"], "site");

        let evs = events(&f.app, "s1").await;
        let names: Vec<&str> = evs.iter().map(BuildEvent::name).collect();
        assert_eq!(names.first(), Some(&"started"), "{names:?}");
        assert_eq!(names.last(), Some(&"done"), "{names:?}");
        let fin = names.iter().position(|n| *n == "finished").unwrap();
        assert!(
            names[1..fin].iter().all(|n| *n == "output") && fin > 1,
            "{names:?}"
        );
        let BuildEvent::Done(result) = evs.last().unwrap() else {
            unreachable!()
        };
        assert!(result.succeeded(), "{result:?}");
        let site = result.done[0].outputs["out/site"].clone();
        // The output is the site: an index page made from README.md.
        let index = kiln_core::export::resolve(
            &f.store,
            &kiln_core::cids::ContentPath::parse(&format!("{site}/index.html")).unwrap(),
        )
        .unwrap();
        let mut html = Vec::new();
        kiln_core::export::read_file(&f.store, &index, 0, None, &mut html).unwrap();
        assert!(String::from_utf8_lossy(&html).contains("Mine"));

        // Replayed the same after the end.
        assert_eq!(events(&f.app, "s1").await, evs);

        let (st, body) = get(&f.app, "/api/kiln/v1/builds/s1").await;
        assert_eq!(st, StatusCode::OK);
        let v: Value = serde_json::from_str(&body).unwrap();
        conforms(&doc, &doc["components"]["schemas"]["Submission"], &v, "s1");
        let sub: SubmissionView = serde_json::from_value(v).unwrap();
        assert_eq!(sub.state, "ok");
        assert_eq!(sub.steps[0].state, "ok");
        let build = sub.steps[0].build.unwrap();

        let (st, body) = get(&f.app, "/api/kiln/v1/builds?limit=5").await;
        assert_eq!(st, StatusCode::OK);
        let v: Value = serde_json::from_str(&body).unwrap();
        conforms(&doc, &doc["components"]["schemas"]["BuildList"], &v, "list");
        assert_eq!(v["builds"][0]["id"], build);
        assert_eq!(v["builds"][0]["status"], "ok");
        assert_eq!(v["submissions"][0]["id"], "s1");

        for id in [build.to_string(), sub.steps[0].record.clone().unwrap()] {
            let (st, body) = get(&f.app, &format!("/api/kiln/v1/builds/{id}")).await;
            assert_eq!(st, StatusCode::OK, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            conforms(&doc, &doc["components"]["schemas"]["Build"], &v, "build");
            assert_eq!(v["submission"], "s1");
            assert_eq!(v["record"]["outputs"]["out/site"], site.as_str());
            assert_eq!(v["record"]["requested_by"], "kiln API");
        }
        let (st, log) = get(&f.app, &format!("/api/kiln/v1/builds/{build}/log")).await;
        assert_eq!(st, StatusCode::OK);
        assert!(log.contains("README.md -> index.html"), "{log}");
        let (st, transcript) = get(&f.app, "/api/kiln/v1/builds/s1/log").await;
        assert_eq!(st, StatusCode::OK);
        assert!(
            transcript.starts_with(&format!("[site] running (build {build})\n")),
            "{transcript}"
        );
        assert!(
            transcript.contains("[site] page README.md -> index.html\n"),
            "{transcript}"
        );
        assert!(
            transcript.contains(&format!("{site} site:out/site\n")),
            "{transcript}"
        );
        assert!(
            transcript.ends_with("1 step done (0 cached)\n"),
            "{transcript}"
        );

        // Again: answered from the cache.
        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": src, "params": {"title": "Mine"}}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let evs = events(&f.app, "s2").await;
        assert_eq!(
            evs.iter().map(BuildEvent::name).collect::<Vec<_>>(),
            ["cached", "done"]
        );
        let (_, body) = get(&f.app, "/api/kiln/v1/builds/s2").await;
        let sub: SubmissionView = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (sub.state.as_str(), sub.steps[0].state.as_str()),
            ("ok", "cached")
        );

        // An action by its key: found in the cache.
        let action = sub.steps[0].action.clone().unwrap();
        let (st, v) = post(
            &f.app,
            serde_json::json!({"action": action, "timeout": "5s"}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let evs = events(&f.app, &id).await;
        let BuildEvent::Done(r) = &evs[0] else {
            panic!("{evs:?}")
        };
        assert!(
            r.done[0].cached && r.done[0].outputs["out/site"] == site,
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn bad_submissions_are_refused_with_one_line() {
        let f = fixture();
        let bad = source(
            &f,
            "bad",
            &RECIPE.replace("outputs = [\"out/site\"]", "outputs = []"),
        );
        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": bad, "origin": "proj/kiln.toml"}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let m = v["Message"].as_str().unwrap();
        assert!(
            m.starts_with("proj/kiln.toml: step \"site\": outputs:"),
            "{m}"
        );
        assert!(!m.contains('\n'));

        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": bad, "params": {"nope": "1"}}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

        let good = source(&f, "good", RECIPE);
        let (st, v) = post(
            &f.app,
            serde_json::json!({"source": good, "params": {"nope": "1"}}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(
            v["Message"]
                .as_str()
                .unwrap()
                .contains("unknown parameter \"nope\""),
            "{v}"
        );

        let absent = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::DAG_PB, b"absent");
        let (st, v) = post(&f.app, serde_json::json!({"source": absent.to_string()})).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        for body in [
            serde_json::json!({}),
            serde_json::json!({"source": good, "action": good}),
            serde_json::json!({"source": "not-a-cid"}),
            serde_json::json!({"source": good, "timeout": "1s"}),
            serde_json::json!({"action": good, "timeout": "soon"}),
            serde_json::json!({"source": good, "surprise": 1}),
            serde_json::json!({"source": good, "origin": "two\nlines"}),
        ] {
            let (st, v) = post(&f.app, body.clone()).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        }
        // A tree without a recipe.
        let (st, v) = post(&f.app, serde_json::json!({"source": kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::RAW, b"").to_string()})).await;
        assert!(
            st == StatusCode::BAD_REQUEST || st == StatusCode::NOT_FOUND,
            "{st} {v}"
        );

        // An action that is not here: the build ends with the error.
        let (st, v) = post(&f.app, serde_json::json!({"action": "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let evs = events(&f.app, v["id"].as_str().unwrap()).await;
        let [BuildEvent::Done(r)] = &evs[..] else {
            panic!("{evs:?}")
        };
        assert!(
            r.error.as_deref().unwrap().contains("no such action"),
            "{r:?}"
        );

        // Cross-site: refused before anything runs.
        let (st, _) = call(
            &f.app,
            Request::post("/api/kiln/v1/builds")
                .header("content-type", "application/json")
                .header("sec-fetch-site", "cross-site")
                .body(Body::from(serde_json::json!({"source": good}).to_string()))
                .unwrap(),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        for uri in [
            "/api/kiln/v1/builds/s99",
            "/api/kiln/v1/builds/77",
            "/api/kiln/v1/builds/s99/events",
            "/api/kiln/v1/builds/5/events",
            "/api/kiln/v1/builds/77/log",
        ] {
            assert_eq!(get(&f.app, uri).await.0, StatusCode::NOT_FOUND, "{uri}");
        }
        assert_eq!(
            get(&f.app, "/api/kiln/v1/builds/garbage").await.0,
            StatusCode::BAD_REQUEST
        );
        let (_, body) = get(&f.app, "/api/kiln/v1/builds/garbage/log").await;
        assert!(
            body.contains("\\\"garbage\\\" is neither a build number nor a CID"),
            "{body}"
        );
    }

    /// Run git in `dir` with a fixed identity and no user or system configuration.
    fn git(dir: &std::path::Path, args: &[&str]) {
        let o = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .expect("git is installed");
        assert!(o.status.success(), "git {args:?}: {o:?}");
    }

    async fn send(app: &axum::Router, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let (st, text) = call(
            app,
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from(if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                }))
                .unwrap(),
        )
        .await;
        (st, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn schedules_are_registered_pinned_listed_and_removed() {
        let f = fixture();
        let doc = crate::openapi::spec();
        let repo = f.dir.path().join("repo");
        std::fs::create_dir_all(repo.join("docs")).unwrap();
        std::fs::write(repo.join("README.md"), "# One\n").unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "README.md"]);
        git(&repo, &["commit", "-q", "-m", "one"]);
        let scheduled = format!(
            "schedule = \"@every 1s\"\n{}",
            RECIPE.replace(
                "\"docs\" = \"docs\"",
                &format!("\"docs\" = \"git+file://{}#main\"", repo.display())
            )
        );
        let src = source(&f, "scheduled", &scheduled);
        let uri = "/api/kiln/v1/schedules";

        // Refused: no schedule, a bad recipe, a ref that is not there, a source not here.
        let plain = source(&f, "plain", RECIPE);
        let (st, v) = send(
            &f.app,
            "POST",
            uri,
            serde_json::json!({"source": plain, "origin": "p/kiln.toml"}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        let m = v["Message"].as_str().unwrap();
        assert!(
            m.starts_with("p/kiln.toml: the recipe has no schedule"),
            "{m}"
        );
        let bad = source(
            &f,
            "bad",
            &scheduled.replace("outputs = [\"out/site\"]", "outputs = []"),
        );
        let (st, v) = send(&f.app, "POST", uri, serde_json::json!({"source": bad})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        let m = v["Message"].as_str().unwrap();
        assert!(
            m.contains("step \"site\": outputs:") && !m.contains('\n'),
            "{m}"
        );
        let nope = source(&f, "nope", &scheduled.replace("#main", "#nope"));
        let (st, v) = send(&f.app, "POST", uri, serde_json::json!({"source": nope})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["Message"]
                .as_str()
                .unwrap()
                .contains("no branch or tag \"nope\""),
            "{v}"
        );
        let absent = kiln_core::cids::cid_of(cid::Version::V1, kiln_core::cids::DAG_PB, b"absent");
        let (st, _) = send(
            &f.app,
            "POST",
            uri,
            serde_json::json!({"source": absent.to_string()}),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        for body in [
            serde_json::json!({}),
            serde_json::json!({"source": src, "check": true}),
            serde_json::json!({"source": "not-a-cid"}),
        ] {
            assert_eq!(
                send(&f.app, "POST", uri, body.clone()).await.0,
                StatusCode::BAD_REQUEST,
                "{body}"
            );
        }

        // Registered, and pinned; the same again is the same schedule.
        let body =
            serde_json::json!({"source": src, "origin": "s/kiln.toml", "params": {"title": "T"}});
        let (st, v) = send(&f.app, "POST", uri, body.clone()).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        conforms(
            &doc,
            &doc["components"]["schemas"]["Schedule"],
            &v,
            "register",
        );
        let id = v["id"].as_i64().unwrap();
        assert_eq!(v["schedule"], "@every 1s");
        assert_eq!(v["origin"], "s/kiln.toml");
        assert_eq!(v["params"]["title"], "T");
        assert!(v["next_ms"].as_u64().unwrap() > v["created_ms"].as_u64().unwrap());
        assert!(v["last_check_ms"].is_null());
        let (st, again) = send(&f.app, "POST", uri, body.clone()).await;
        assert_eq!((st, again["id"].as_i64()), (StatusCode::OK, Some(id)));
        // The owners of the source's pins.
        let pin = |f: &Fixture| {
            let owners: Vec<String> = f
                .store
                .pins()
                .unwrap()
                .into_iter()
                .filter(|p| p.cid.to_string() == src)
                .map(|p| p.owner.to_string())
                .collect();
            (!owners.is_empty()).then(|| owners.join(","))
        };
        assert_eq!(pin(&f).as_deref(), Some(format!("schedule:{id}").as_str()));
        // Another schedule of the same source (other parameters) holds a pin of its own.
        let (st, other) = send(&f.app, "POST", uri, serde_json::json!({"source": src})).await;
        assert_eq!(st, StatusCode::CREATED, "{other}");
        let other = other["id"].as_i64().unwrap();
        assert_eq!(pin(&f), Some(format!("schedule:{id},schedule:{other}")));

        let (st, list) = send(&f.app, "GET", uri, Value::Null).await;
        assert_eq!(st, StatusCode::OK);
        conforms(
            &doc,
            &doc["components"]["schemas"]["ScheduleList"],
            &list,
            "list",
        );
        assert_eq!(list["schedules"].as_array().unwrap().len(), 2);
        let (st, one) = send(&f.app, "GET", &format!("{uri}/{id}"), Value::Null).await;
        assert_eq!((st, &one["id"]), (StatusCode::OK, &v["id"]));

        // Kept in the index: a service opened on the same repository lists them.
        let again = crate::BuildService::open(
            f.store.clone(),
            kiln_id::NodeKey::generate().unwrap(),
            f.dir.path().join("builds"),
            "/nonexistent".into(),
        )
        .unwrap();
        let ids: Vec<i64> = again
            .schedule_views(&kiln_node::Caller::local(kiln_node::Via::Api))
            .unwrap()
            .iter()
            .map(|v| v.id)
            .collect();
        assert_eq!(ids, [id, other]);

        // Removed: its pin goes, the other schedule's stays; then that one goes too.
        let (st, gone) = send(&f.app, "DELETE", &format!("{uri}/{id}"), Value::Null).await;
        assert_eq!(st, StatusCode::OK, "{gone}");
        conforms(
            &doc,
            &doc["components"]["schemas"]["Schedule"],
            &gone,
            "delete",
        );
        assert_eq!(
            pin(&f).as_deref(),
            Some(format!("schedule:{other}").as_str())
        );
        assert_eq!(
            send(&f.app, "DELETE", &format!("{uri}/{id}"), Value::Null)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            send(&f.app, "GET", &format!("{uri}/{id}"), Value::Null)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            send(&f.app, "DELETE", &format!("{uri}/x"), Value::Null)
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            send(&f.app, "DELETE", &format!("{uri}/{other}"), Value::Null)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(pin(&f), None);
        let (_, list) = send(&f.app, "GET", uri, Value::Null).await;
        assert_eq!(list["schedules"], serde_json::json!([]));
    }

    #[test]
    fn submission_ids() {
        assert_eq!(super::submission_number("s12"), Some(12));
        for bad in ["s", "12", "s-1", "s1x", "S1", "s+1"] {
            assert_eq!(super::submission_number(bad), None, "{bad}");
        }
    }
}
