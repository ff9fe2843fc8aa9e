//! `GET /ui/audit?who=…&action=…&since=…&limit=…`: the audit trail (the event journal),
//! newest first. An administrator reads everyone's events and may filter by identity; anyone
//! else reads its own (the node layer narrows the query: asking for another identity's is
//! refused, 403).

use super::{Nav, UiCaller, UiError, blocking, browse_href, layout, param, short_did, utc};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kiln_store::journal::Query as Events;
use maud::html;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Events listed by default, and at most.
const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 2000;

/// The actions offered in the filter (any other is accepted typed in the URL).
const ACTIONS: &[&str] = &[
    "add",
    "import",
    "pin",
    "unpin",
    "pin request",
    "gc",
    "build started",
    "build finished",
    "token create",
    "token revoke",
    "user add",
    "user rm",
    "role grant",
    "role revoke",
    "quota set",
    "invite create",
    "invite use",
];

pub(super) async fn page(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let admin = kiln_node::auth::is_admin(&caller);
    let title = if admin { "Audit" } else { "Activity" };
    let get = |n: &str| param(&q, n).unwrap_or("").trim().to_string();
    let (who, action, since) = (get("who"), get("action"), get("since"));
    let limit = get("limit")
        .parse::<usize>()
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let since_ms = if since.is_empty() {
        Ok(None)
    } else {
        kiln_wire::parse_duration(&since)
            .map(|d| {
                let t = SystemTime::now()
                    .checked_sub(d)
                    .unwrap_or(UNIX_EPOCH)
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Some(i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
            })
            .map_err(|e| UiError::new(StatusCode::BAD_REQUEST, e).titled("Not a valid time"))
    };
    let query = since_ms.map(|since_ms| Events {
        since_ms,
        limit: Some(limit),
        newest_first: true,
        who: Some(who.clone()).filter(|w| !w.is_empty()),
        action: Some(action.clone()).filter(|a| !a.is_empty()),
        ..Events::default()
    });
    let c = caller.clone();
    let events = match query {
        Ok(query) => {
            blocking(&s, move |st| {
                Ok(kiln_node::journal::events(st, &c, &query)?)
            })
            .await
        }
        Err(e) => Err(e),
    };
    let filters = html! {
        form.filters method="get" action="/ui/audit" role="search" {
            @if admin {
                div {
                    label for="audit-who" { "Who " span.muted { "(a did:key, local, schedule:N)" } }
                    input #audit-who type="text" name="who" value=(who) autocomplete="off" spellcheck="false";
                }
            }
            div {
                label for="audit-action" { "Action" }
                select #audit-action name="action" {
                    option value="" selected[action.is_empty()] { "any" }
                    @for a in ACTIONS { option value=(a) selected[*a == action] { (a) } }
                }
            }
            div {
                label for="audit-since" { "Within " span.muted { "(1h, 7d)" } }
                input #audit-since type="text" name="since" value=(since) autocomplete="off" spellcheck="false";
            }
            div { button type="submit" { "Show" } }
        }
    };
    let events = match events {
        Ok(e) => e,
        Err(e) => return e.page(title, Nav::Audit, filters),
    };
    layout(
        title,
        Nav::Audit,
        html! {
            h1 { (title) }
            p.muted {
                @if admin { "Every change made on this node, by whom and through what (the event journal)." }
                @else { "Your own changes on this node." }
                " The command line has it too: " code { "kiln audit" } "."
            }
            (filters)
            @if events.is_empty() {
                p.muted #audit-empty { "No events match." }
            } @else {
                table.list #audit {
                    thead { tr {
                        th scope="col" { "Time" } th scope="col" { "Who" } th scope="col" { "Via" }
                        th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Detail" }
                    } }
                    tbody {
                        @for e in &events {
                            tr {
                                td data-label="Time" { time { (utc(UNIX_EPOCH + Duration::from_millis(u64::try_from(e.at_ms).unwrap_or(0)))) } }
                                td data-label="Who" { code.cid title=(e.entry.who) { (short_did(&e.entry.who)) } }
                                td data-label="Via" { (e.entry.via) }
                                td data-label="Action" {
                                    span.tag { (e.entry.action) }
                                    @if !e.entry.ok { " " span.tag.state-failed { "failed" } }
                                }
                                td data-label="Target" {
                                    @if kiln_core::cids::parse_cid(&e.entry.target).is_ok() {
                                        a href=(browse_href(&e.entry.target)) { code.cid { (e.entry.target) } }
                                    } @else {
                                        code.cid { (e.entry.target) }
                                    }
                                }
                                td data-label="Detail" { (e.entry.detail) }
                            }
                        }
                    }
                }
                @if events.len() == limit {
                    p.muted { "The newest " (limit) " shown: narrow the filters, or add " code { "&limit=" (MAX_LIMIT) } " to the address." }
                }
            }
        },
    )
    .into_response()
}
