//! Builds: `GET /ui/builds` lists the registered schedules, the submissions this daemon
//! remembers and the recent builds of the history, with forms to start a build (a source tree's CID, parameters,
//! `check`) or to find or build an action; `POST /ui/builds` starts one and answers with a
//! 303 redirect to its page. `GET /ui/builds/{id}` shows a submission (`sN`: steps, outputs
//! linked to the content browser, errors, the log) or a build of the history (a number, or
//! an action or record CID: its record, outputs and stored log).
//!
//! While a submission runs its page is a **streamed** response, without script: everything
//! down to the log is sent at once, then each log line as it comes (an empty comment every
//! 15 s keeps an idle connection open), and when the build ends its result and the rest of
//! the page; the response then ends. Reloading the page shows the final state.

use super::{Nav, SameOrigin, UiCaller, UiError, browse_href, layout, param, utc};
use crate::AppState;
use crate::builds::{build_view, follow};
use crate::types::{
    BuildRequest, BuildResult, BuildRowView, BuildView, ScheduleView, SubmissionView,
};
use axum::Form;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use kiln_node::builds::{Submission, render, submission_number};
use maud::{Markup, PreEscaped, html};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Builds of the history listed.
const LISTED: usize = 50;
/// Bytes of a stored log shown on a build's page.
const LOG_SHOWN: u64 = 256 << 10;
/// How often a live page sends something when the build is quiet.
const HEARTBEAT: Duration = Duration::from_secs(15);

fn when(ms: u64) -> String {
    utc(UNIX_EPOCH + Duration::from_millis(ms))
}

fn took(start: u64, end: Option<u64>) -> String {
    match end {
        Some(e) => format!("{:.2} s", e.saturating_sub(start) as f64 / 1000.0),
        None => "—".into(),
    }
}

/// `ok`, `failed`, `running`…, as a tag whose class says which.
fn state_tag(state: &str) -> Markup {
    let class = match state {
        "ok" | "cached" => "tag state-ok",
        "running" | "pending" => "tag state-running",
        "skipped" => "tag",
        _ => "tag state-failed",
    };
    html! { span class=(class) { (state) } }
}

/// What the forms held, to show them again after a failure.
#[derive(Default)]
struct Prefill {
    source: String,
    params: String,
    check: bool,
    action: String,
    timeout: String,
}

pub(super) async fn page(State(s): State<AppState>, UiCaller(caller): UiCaller) -> Response {
    match listing(&s, &caller).await {
        Ok(rows) => render_list(&s, &caller, &rows, None, &Prefill::default()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn listing(s: &AppState, caller: &kiln_node::Caller) -> Result<Vec<BuildRowView>, UiError> {
    let (svc, caller) = (s.builds.clone(), caller.clone());
    let list = tokio::task::spawn_blocking(move || svc.list(&caller, LISTED)).await??;
    Ok(list.builds)
}

/// `NAME=VALUE` lines.
fn parse_params(text: &str) -> Result<BTreeMap<String, String>, UiError> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(UiError::bad_request(format!(
                "parameter line {line:?}: expected NAME=VALUE"
            ))
            .titled("Invalid parameters"));
        };
        if out.insert(k.trim().to_string(), v.to_string()).is_some() {
            return Err(
                UiError::bad_request(format!("parameter {:?} given twice", k.trim()))
                    .titled("Invalid parameters"),
            );
        }
    }
    Ok(out)
}

pub(super) async fn start(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    _: SameOrigin,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let field = |n: &str| param(&f, n).unwrap_or("").trim().to_string();
    let prefill = Prefill {
        source: field("source"),
        params: param(&f, "params").unwrap_or("").to_string(),
        check: param(&f, "check").is_some(),
        action: field("action"),
        timeout: field("timeout"),
    };
    let req = if !prefill.action.is_empty() {
        Ok(BuildRequest {
            action: Some(prefill.action.clone()),
            timeout: Some(prefill.timeout.clone()).filter(|t| !t.is_empty()),
            requested_by: Some("web UI".into()),
            ..BuildRequest::default()
        })
    } else {
        parse_params(&prefill.params).map(|params| BuildRequest {
            source: Some(prefill.source.clone()),
            params,
            check: prefill.check,
            requested_by: Some("web UI".into()),
            ..BuildRequest::default()
        })
    };
    let started = match req {
        Ok(req) => crate::builds::start(&s, caller.clone(), req)
            .await
            .map_err(|e| UiError::new(e.status(), e.message()).titled("Cannot start this build")),
        Err(e) => Err(e),
    };
    match started {
        Ok(sub) => Redirect::to(&format!("/ui/builds/{}", sub.name())).into_response(),
        Err(e) => {
            let status = e.status();
            match listing(&s, &caller).await {
                Ok(rows) => {
                    (status, render_list(&s, &caller, &rows, Some(&e), &prefill)).into_response()
                }
                Err(_) => e.into_response(),
            }
        }
    }
}

fn forms(f: &Prefill) -> Markup {
    html! {
        section aria-labelledby="start-h" {
            h2 #start-h { "Start a build" }
            form.stack method="post" action="/ui/builds" {
                div {
                    label for="build-source" { "Source tree CID" }
                    input #build-source type="text" name="source" value=(f.source) required
                        placeholder="bafy… (a directory holding kiln.toml)" autocomplete="off"
                        autocapitalize="off" spellcheck="false";
                }
                div {
                    label for="build-params" { "Parameters " span.muted { "(optional, NAME=VALUE per line)" } }
                    textarea #build-params name="params" rows="2" autocapitalize="off" spellcheck="false" { (f.params) }
                }
                div.check {
                    input #build-check type="checkbox" name="check" value="1" checked[f.check];
                    label for="build-check" { "Check: run every step even when cached and compare the outputs" }
                }
                div { button type="submit" { "Build" } }
            }
        }
        section aria-labelledby="action-h" {
            h2 #action-h { "Find or build an action" }
            form.stack method="post" action="/ui/builds" {
                div {
                    label for="build-action" { "Action key" }
                    input #build-action type="text" name="action" value=(f.action) required
                        placeholder="bafyrei… (kiln build --plan prints them)" autocomplete="off"
                        autocapitalize="off" spellcheck="false";
                }
                div {
                    label for="build-timeout" { "Time limit " span.muted { "(default 30s)" } }
                    input #build-timeout type="text" name="timeout" value=(f.timeout) placeholder="30s";
                }
                div { button type="submit" { "Find or build" } }
            }
        }
    }
}

fn submission_what(v: &SubmissionView) -> Markup {
    html! {
        @if let Some(src) = &v.source {
            "recipe " a href=(browse_href(src)) { code.cid { (src) } }
            @if let Some(n) = v.schedule { " " span.muted { "(schedule " (n) ")" } }
        } @else if let Some(a) = &v.action {
            "action " code.cid { (a) }
        }
    }
}

/// The registered schedules (read-only: `kiln build --schedule` registers one, `kiln
/// schedules rm` removes it).
fn schedules_section(list: &[ScheduleView]) -> Markup {
    html! {
        section aria-labelledby="schedules-h" {
            h2 #schedules-h { "Schedules " span.muted { "(" (list.len()) ")" } }
            @if list.is_empty() {
                p.muted { "No recipe is built on a schedule. " code { "kiln build --schedule DIR" } " registers one whose kiln.toml has a schedule and git inputs; this daemon then checks them at each scheduled time and builds when a ref moved." }
            } @else {
                table.list #schedules {
                    thead { tr {
                        th scope="col" { "Schedule" } th scope="col" { "When" } th scope="col" { "Recipe" }
                        th scope="col" { "Next check" } th scope="col" { "Last check" } th scope="col" { "Last build" }
                    } }
                    tbody {
                        @for v in list {
                            tr {
                                td data-label="Schedule" { (v.id) }
                                td data-label="When" { code { (v.schedule) } }
                                td data-label="Recipe" {
                                    code.cid { (v.origin) } " "
                                    a href=(browse_href(&v.source)) { code.cid { (v.source) } }
                                    @for (k, val) in &v.params { " " code { (k) "=" (val) } }
                                }
                                td data-label="Next check" {
                                    @if v.checking { "now (checking)" }
                                    @else if let Some(t) = v.next_ms { time { (when(t)) } }
                                    @else { span.muted { "never" } }
                                }
                                td data-label="Last check" {
                                    @match (v.last_check_ms, &v.last_message) {
                                        (Some(t), Some(m)) => {
                                            time { (when(t)) } " "
                                            @if v.last_outcome.as_deref() == Some("error") {
                                                span.tag.state-failed { "error" } " "
                                            }
                                            span.muted { (m) }
                                        }
                                        _ => span.muted { "none yet" },
                                    }
                                }
                                td data-label="Last build" {
                                    @if let Some(sub) = &v.last_submission {
                                        a href={ "/ui/builds/" (sub) } { (sub) }
                                    } @else { span.muted { "—" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn render_list(
    s: &AppState,
    caller: &kiln_node::Caller,
    rows: &[BuildRowView],
    error: Option<&UiError>,
    f: &Prefill,
) -> Markup {
    let subs: Vec<SubmissionView> = s.builds.submissions().iter().map(|s| s.view()).collect();
    let schedules = s.builds.schedule_views(caller).unwrap_or_default();
    layout(
        "Builds",
        Nav::Builds,
        html! {
            h1 { "Builds" }
            @if let Some(e) = error { (e.panel()) }
            (forms(f))
            (schedules_section(&schedules))
            section aria-labelledby="subs-h" {
                h2 #subs-h { "Submitted to this daemon " span.muted { "(" (subs.len()) ")" } }
                @if subs.is_empty() {
                    p.muted { "Nothing yet: builds started here, with the form above, by kiln build or by a schedule while this daemon runs, are listed here until it stops." }
                } @else {
                    table.list #submissions {
                        thead { tr {
                            th scope="col" { "Build" } th scope="col" { "State" } th scope="col" { "What" }
                            th scope="col" { "Steps" } th scope="col" { "Started" } th scope="col" { "Duration" }
                        } }
                        tbody {
                            @for v in &subs {
                                tr {
                                    td data-label="Build" { a href={ "/ui/builds/" (v.id) } { (v.id) } }
                                    td data-label="State" { (state_tag(&v.state)) }
                                    td data-label="What" { (submission_what(v)) }
                                    td data-label="Steps" { (v.steps.len()) }
                                    td data-label="Started" { time { (when(v.started_ms)) } }
                                    td data-label="Duration" { (took(v.started_ms, v.ended_ms)) }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="history-h" {
                h2 #history-h { "Recent builds" }
                @if rows.is_empty() {
                    p.muted { "No build has run in this repository yet." }
                } @else {
                    (history_table(rows))
                }
            }
        },
    )
}

fn history_table(rows: &[BuildRowView]) -> Markup {
    html! {
        table.list #builds {
            thead { tr {
                th scope="col" { "Number" } th scope="col" { "Status" } th scope="col" { "Run" }
                th scope="col" { "Duration" } th scope="col" { "Step" } th scope="col" { "Record" }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td data-label="Number" { a href={ "/ui/builds/" (r.id) } { (r.id) } }
                        td data-label="Status" {
                            (state_tag(match r.status.as_str() { "ok" | "running" => &r.status, _ => "failed" }))
                            @if r.status != "ok" && r.status != "running" { " " span.muted { (r.status) } }
                        }
                        td data-label="Run" { @if r.cached { "cached" } @else { "built" } }
                        td data-label="Duration" { (took(r.started_ms, r.ended_ms)) }
                        td data-label="Step" { (r.step) }
                        td data-label="Record" {
                            @if let Some(rec) = &r.record {
                                a href={ "/ui/builds/" (rec) } { code.cid { (rec) } }
                            } @else { span.muted { "—" } }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /ui/builds/sN/cancel`: the submission page's Cancel button; back to the page,
/// which then follows the build to its (cancelled) end.
pub(super) async fn cancel(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    _: SameOrigin,
    Path(id): Path<String>,
) -> Response {
    match crate::builds::cancel_submission(&s, &id, caller).await {
        Ok((sub, _)) => Redirect::to(&format!("/ui/builds/{}", sub.name())).into_response(),
        Err(e) => UiError::new(e.status(), e.message())
            .titled("Cannot cancel this build")
            .page(
                "Build",
                Nav::Builds,
                html! { p { a href="/ui/builds" { "All builds" } } },
            ),
    }
}

pub(super) async fn show(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<String>,
) -> Response {
    let back = || html! { p { a href="/ui/builds" { "All builds" } } };
    if let Err(e) = kiln_node::auth::authorize(
        &caller,
        kiln_node::auth::Op::Read,
        kiln_node::auth::DEFAULT_NAMESPACE,
    ) {
        return UiError::from(e).page("Build", Nav::Builds, back());
    }
    if let Some(n) = submission_number(&id) {
        let Some(sub) = s.builds.submission(n) else {
            return UiError::new(
                StatusCode::NOT_FOUND,
                format!("no submission {id:?}: this daemon does not remember it (submissions are kept while it runs; their steps' builds are in the history)"),
            )
            .page("Build", Nav::Builds, html! { p { a href="/ui/builds" { "All builds" } } });
        };
        return if sub.is_done() {
            submission_page(&sub, Some(sub.transcript())).into_response()
        } else {
            live(&s, sub)
        };
    }
    match build_view(&s, &caller, &id).await {
        Ok(v) => build_page(&s, &caller, &v).await,
        Err(e) => UiError::new(e.status(), e.message()).page(
            "Build",
            Nav::Builds,
            html! { p { a href="/ui/builds" { "All builds" } } },
        ),
    }
}

const MARK_LOG: &str = "\u{1}kiln-log\u{1}";
const MARK_END: &str = "\u{1}kiln-end\u{1}";

/// A submission's page; `log`: the whole transcript, or none when it streams in place of
/// [`MARK_LOG`] (and the result in place of [`MARK_END`]).
fn submission_page(sub: &Submission, log: Option<String>) -> Markup {
    let v = sub.view();
    let title = format!("Build {}", v.id);
    layout(
        &title,
        Nav::Builds,
        html! {
            h1 { (title) }
            @let live = log.is_none();
            @let hide = live.then_some("while-running");
            dl.facts #facts {
                dt class=[hide] { "State" } dd #state class=[hide] { (state_tag(&v.state)) }
                dt { "What" } dd { (submission_what(&v)) }
                @if let Some(o) = &v.origin { dt { "Recipe" } dd { code.cid { (o) } } }
                @if let Some(n) = v.schedule { dt { "Started by" } dd { "schedule " (n) } }
                @if !v.params.is_empty() {
                    dt { "Parameters" }
                    dd { @for (k, val) in &v.params { code { (k) "=" (val) } " " } }
                }
                @if v.check { dt { "Check" } dd { "outputs compared with the cached build" } }
                dt { "Started" } dd { time { (when(v.started_ms)) } }
                dt class=[hide] { "Duration" } dd class=[hide] { (took(v.started_ms, v.ended_ms)) }
            }
            @if live {
                p.notice.while-running role="status" { "Running: this page follows the build and shows its result when it ends." }
                form.while-running #cancel method="post" action={ "/ui/builds/" (v.id) "/cancel" } {
                    button type="submit" { "Cancel build" }
                    " "
                    span.muted { "Its running steps are stopped and recorded as cancelled; no other step starts." }
                }
            }
            section class=[hide] aria-labelledby="steps-h" {
                h2 #steps-h { "Steps" }
                (steps_table(&v, if live { "steps-live" } else { "steps" }))
            }
            section aria-labelledby="log-h" {
                h2 #log-h { "Log" }
                pre #log {
                    @match &log {
                        Some(text) => (text),
                        None => (PreEscaped(MARK_LOG)),
                    }
                }
            }
            @match &log {
                Some(_) => (result_section(&v, false)),
                None => (PreEscaped(MARK_END)),
            }
            p { a href="/ui/builds" { "All builds" } }
        },
    )
}

fn steps_table(v: &SubmissionView, id: &str) -> Markup {
    html! {
        @if v.steps.is_empty() {
            p.muted { "No step has run." }
        } @else {
            table.list id=(id) {
                thead { tr {
                    th scope="col" { "Step" } th scope="col" { "State" } th scope="col" { "Build" }
                    th scope="col" { "Duration" } th scope="col" { "Record" }
                } }
                tbody {
                    @for st in &v.steps {
                        tr {
                            td data-label="Step" { (st.name) }
                            td data-label="State" { (state_tag(&st.state)) }
                            td data-label="Build" {
                                @if let Some(b) = st.build { a href={ "/ui/builds/" (b) } { (b) } }
                                @else { span.muted { "—" } }
                            }
                            td data-label="Duration" {
                                @match (st.started_ms, st.ended_ms) {
                                    (Some(a), Some(b)) => (took(a, Some(b))),
                                    _ => span.muted { "—" },
                                }
                            }
                            td data-label="Record" {
                                @if let Some(r) = &st.record { a href={ "/ui/builds/" (r) } { code.cid { (r) } } }
                                @else { span.muted { "—" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How a submission ended: its outputs (linked to the content browser) and errors; on the
/// live page also the steps' final states (the page's earlier table is then hidden).
fn result_section(v: &SubmissionView, with_steps: bool) -> Markup {
    let Some(r) = &v.result else {
        return html! {};
    };
    html! {
        section #result aria-labelledby="result-h" {
            h2 #result-h { "Result " (state_tag(&v.state)) }
            p { "Ended after " (took(v.started_ms, v.ended_ms)) "." }
            @if with_steps {
                h3 { "Steps" }
                (steps_table(v, "steps"))
            }
            (outputs_list(r))
            @if let Some(e) = &r.error { pre.error-text { (e) } }
            @for f in &r.failed { pre.error-text { (f.error) } }
            @if !r.skipped.is_empty() { p { "Not run: " (r.skipped.join(", ")) } }
        }
    }
}

fn outputs_list(r: &BuildResult) -> Markup {
    html! {
        @if r.done.iter().any(|d| !d.outputs.is_empty()) {
            h3 { "Outputs" }
            ul.links #outputs {
                @for d in &r.done {
                    @for (path, cid) in &d.outputs {
                        li {
                            a href=(browse_href(cid)) { code.cid { (cid) } }
                            " " (d.step) ":" (path)
                            @if d.cached { " " span.muted { "(cached)" } }
                        }
                    }
                }
            }
        }
    }
}

/// The live page: streamed as the build goes.
fn live(s: &AppState, sub: Arc<Submission>) -> Response {
    let page = submission_page(&sub, None).into_string();
    let (head, rest) = page.split_once(MARK_LOG).unwrap_or((&page, ""));
    let (middle, tail) = rest.split_once(MARK_END).unwrap_or((rest, ""));
    let (head, middle, tail) = (head.to_string(), middle.to_string(), tail.to_string());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let closing = s.builds.closing();
    tokio::spawn(async move {
        if tx.send(Bytes::from(head)).await.is_err() {
            return;
        }
        let check = sub.check();
        let mut events = Box::pin(follow(sub.clone(), 0, closing));
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.tick().await;
        let mut ended = false;
        loop {
            tokio::select! {
                ev = events.next() => {
                    let Some((_, ev)) = ev else { break };
                    let mut text = Vec::new();
                    render(&ev, check, &mut text);
                    ended |= matches!(*ev, crate::types::BuildEvent::Done(_));
                    let html = html! { (String::from_utf8_lossy(&text)) }.into_string();
                    if !html.is_empty() && tx.send(Bytes::from(html)).await.is_err() {
                        return;
                    }
                }
                _ = beat.tick() => {
                    if tx.send(Bytes::from_static(b"<!---->")).await.is_err() {
                        return;
                    }
                }
            }
        }
        let end = if ended {
            result_section(&sub.view(), true)
        } else {
            html! {
                section.error role="alert" {
                    h2 { "The daemon is stopping" }
                    p { "This page stops following the build here." }
                }
            }
        };
        let _ = tx.send(Bytes::from(middle)).await;
        let _ = tx.send(Bytes::from(end.into_string())).await;
        let _ = tx.send(Bytes::from(tail)).await;
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|b| b.map(Ok::<_, std::convert::Infallible>))
    }));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Proxies must not hold the page back until it ends.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

async fn build_page(s: &AppState, caller: &kiln_node::Caller, v: &BuildView) -> Response {
    let b = &v.build;
    let live_lines = match (&b.log, &v.submission) {
        (None, Some(_)) if b.status == "running" => s
            .builds
            .submission_of(b.id)
            .map(|(sub, step)| sub.step_lines(&step)),
        _ => None,
    };
    let log = match &b.log {
        Some(cid) => {
            let content = kiln_node::content::reader(&s.store, caller).ok();
            let cid = kiln_core::cids::parse_cid(cid).ok();
            tokio::task::spawn_blocking(move || -> Option<(String, bool)> {
                let (cid, store) = (cid?, content?);
                let size = match kiln_core::export::stat(&store, &cid).ok()? {
                    kiln_core::export::Node::File { size } => size,
                    _ => return None,
                };
                let mut buf = Vec::new();
                kiln_core::export::read_file(&store, &cid, 0, Some(LOG_SHOWN), &mut buf).ok()?;
                Some((String::from_utf8_lossy(&buf).into_owned(), size > LOG_SHOWN))
            })
            .await
            .ok()
            .flatten()
        }
        None => None,
    };
    let title = format!("Build {}", b.id);
    let state = match b.status.as_str() {
        "ok" | "running" => b.status.as_str(),
        _ => "failed",
    };
    layout(
        &title,
        Nav::Builds,
        html! {
            h1 { (title) }
            dl.facts #facts {
                dt { "Step" } dd { (b.step) }
                dt { "State" } dd #state { (state_tag(state)) @if state == "failed" { " " (b.status) } }
                dt { "Run" } dd { @if b.cached { "answered from the action cache" } @else { "built" } }
                dt { "Action" } dd { code.cid { (b.action) } }
                dt { "From" } dd { code.cid { (b.origin) } }
                dt { "Started" } dd { time { (when(b.started_ms)) } }
                dt { "Duration" } dd { (took(b.started_ms, b.ended_ms)) }
                @if let Some(sub) = &v.submission {
                    dt { "Submission" } dd { a href={ "/ui/builds/" (sub) } { (sub) } }
                }
                @if let Some(r) = &b.record {
                    dt { "Record" } dd #record { code.cid { (r) } }
                }
                @if let Some(rec) = &v.record {
                    @if let Some(code) = rec.exit { dt { "Exit code" } dd { (code) } }
                    dt { "Built by" } dd { code.cid { (rec.builder) } @if rec.host { " (host builder: impure)" } }
                    dt { "Requested by" } dd { (rec.requested_by) }
                }
            }
            @if let Some(rec) = &v.record {
                @if !rec.outputs.is_empty() {
                    section aria-labelledby="outputs-h" {
                        h2 #outputs-h { "Outputs" }
                        ul.links #outputs {
                            @for (path, cid) in &rec.outputs {
                                li { a href=(browse_href(cid)) { code.cid { (cid) } } " " (b.step) ":" (path) }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="log-h" {
                h2 #log-h { "Log" }
                @match (&log, &live_lines) {
                    (Some((text, cut)), _) => {
                        pre #log { (text) }
                        @if *cut {
                            p.muted { "The log goes on: " a href=(super::download_href(b.log.as_deref().unwrap_or_default())) { "download all of it" } "." }
                        }
                    }
                    (None, Some(lines)) => {
                        p.notice role="status" {
                            "Running: the output so far. "
                            @if let Some(sub) = &v.submission { a href={ "/ui/builds/" (sub) } { "Follow it live" } }
                        }
                        pre #log { (lines) }
                    }
                    (None, None) => p.muted { "No log is stored for this build." },
                }
            }
            p { a href="/ui/builds" { "All builds" } }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let p = parse_params("a=1\n\n b = x=y \n").unwrap();
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], " x=y");
        assert!(parse_params("nothing").is_err());
        assert!(parse_params("a=1\na=2").is_err());
    }
}
