//! `GET /`: who is signed in (roles, quota and its use, own pins), who this node is, how
//! big its repository is, what happened recently. A part the viewer may not read (an
//! identity without the reader role in the default namespace) is left out.

use super::{Nav, UiCaller, UiError, blocking, browse, browse_href, human_bytes, layout, utc};
use crate::AppState;
use crate::rpc::repo_size;
use axum::extract::State;
use axum::http::StatusCode;
use kiln_node::{Caller, Who};
use kiln_store::quotas::Limit;
use maud::{Markup, html};

/// How many events the dashboard lists.
const RECENT: usize = 50;

/// What the signed-in identity holds and uses.
struct You {
    did: String,
    grants: Vec<(String, String)>,
    usage: kiln_node::quotas::Usage,
    pins: usize,
}

/// `Ok(None)` for a refusal: that part of the page is not the viewer's to see.
fn allowed<T>(r: Result<T, UiError>) -> Result<Option<T>, UiError> {
    match r {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.status() == StatusCode::FORBIDDEN => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn page(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
) -> Result<Markup, UiError> {
    let c = caller.clone();
    let stat = allowed(blocking(&s, move |st| Ok(kiln_node::content::stat(st, &c)?)).await)?;
    let c = caller.clone();
    let events = allowed(
        blocking(&s, move |st| {
            Ok(kiln_node::journal::events(
                st,
                &c,
                &kiln_store::journal::Query {
                    limit: Some(RECENT),
                    newest_first: true,
                    ..Default::default()
                },
            )?)
        })
        .await,
    )?
    .unwrap_or_default();
    let you = match &caller.who {
        Who::User(id) => {
            let (c, id) = (caller.clone(), id.clone());
            Some(
                blocking(&s, move |st| {
                    let usage = kiln_node::quotas::usage(st, &c, &id.did)?;
                    let pins = kiln_node::pins::list(st, &c).map_or(0, |p| p.len());
                    Ok(You {
                        did: id.did.clone(),
                        grants: id.grants.clone(),
                        usage,
                        pins,
                    })
                })
                .await?,
            )
        }
        _ => None,
    };
    let node = &s.node;
    Ok(layout(
        "Dashboard",
        Nav::Dashboard,
        html! {
            h1 { "Dashboard" }
            (you_section(&caller, you.as_ref()))
            section aria-labelledby="node-h" {
                h2 #node-h { "Node" }
                dl.facts {
                    dt { "DID" } dd #node-did { code.cid { (node.did) } }
                    dt { "Peer ID" } dd #node-peer { code.cid { (node.peer_id) } }
                    dt { "Agent" } dd #node-agent { (node.agent_version) }
                    @if !node.addresses.is_empty() {
                        dt { "API" }
                        dd { @for a in &node.addresses { code.cid { (a) } " " } }
                    }
                    dt { "Repository" } dd { code.cid { (s.store.root().display()) } }
                }
            }
            @if let Some(stat) = &stat {
            section aria-labelledby="repo-h" {
                h2 #repo-h { "Repository" }
                ul.cards {
                    li {
                        span.label { "Size on disk" }
                        span.value #stat-size title={ (repo_size(stat)) " bytes" } {
                            (human_bytes(repo_size(stat)))
                        }
                    }
                    li {
                        span.label { "Blocks" }
                        span.value #stat-blocks { (stat.blocks) }
                        span.note { (human_bytes(stat.block_bytes)) " of block data" }
                    }
                    li {
                        span.label { "Pins" }
                        a.value #stat-pins href="/ui/pins" { (stat.pins) }
                    }
                }
            }
            }
            section aria-labelledby="browse-h" {
                h2 #browse-h { "Browse" }
                (browse::form(""))
            }
            section aria-labelledby="activity-h" {
                h2 #activity-h { "Recent activity" }
                @if events.is_empty() {
                    p.muted { "Nothing yet: adds, imports, pins, GC runs and builds — through the daemon or by the command line on the repository — are listed here." }
                } @else {
                    table.list #activity {
                        thead { tr { th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Target" } th scope="col" { "By" } th scope="col" { "Detail" } } }
                        tbody {
                            @for e in &events {
                                tr {
                                    td data-label="Time" { time { (utc(at(e.at_ms))) } }
                                    td data-label="Event" { span.tag { (e.entry.action) } @if !e.entry.ok { " " span.tag.state-failed { "failed" } } }
                                    td data-label="Target" {
                                        @if kiln_core::cids::parse_cid(&e.entry.target).is_ok() {
                                            a href=(browse_href(&e.entry.target)) { code.cid { (e.entry.target) } }
                                        } @else {
                                            (e.entry.target)
                                        }
                                    }
                                    td data-label="By" { (e.entry.who) " via " (e.entry.via) }
                                    td data-label="Detail" { (e.entry.detail) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// Who is signed in: the local administrator, or an identity with its roles, its quota
/// and what it uses of it.
fn you_section(caller: &Caller, you: Option<&You>) -> Markup {
    let limit = |l: Limit, bytes: bool| match l {
        Limit::Max(n) if bytes => human_bytes(n),
        Limit::Max(n) => n.to_string(),
        Limit::Inherit | Limit::Unlimited => "no limit".to_string(),
    };
    html! {
        section aria-labelledby="you-h" {
            h2 #you-h { "You" }
            @match you {
                None => p #you-who {
                    "Signed in as " (caller.who) ": every role in every namespace, no quota."
                },
                Some(y) => {
                    dl.facts #you {
                        dt { "Identity" } dd #you-did { code.cid { (y.did) } }
                        dt { "Roles" }
                        dd #you-roles {
                            @if y.grants.is_empty() { span.muted { "none" } }
                            @for (i, (ns, role)) in y.grants.iter().enumerate() {
                                @if i > 0 { ", " }
                                span.tag { (role) } " in " (kiln_node::users::shown(ns))
                            }
                        }
                    }
                    ul.cards {
                        li {
                            span.label { "Pinned bytes" }
                            span.value #you-bytes { (human_bytes(y.usage.pinned_bytes.unwrap_or(0))) }
                            span.note { "of " (limit(y.usage.effective.pinned_bytes, true)) }
                        }
                        li {
                            span.label { "Your pins" }
                            a.value #you-pins href="/ui/pins" { (y.pins) }
                        }
                        li {
                            span.label { "Builds at once" }
                            span.value #you-builds { (limit(y.usage.effective.builds, false)) }
                            span.note { "at most" }
                        }
                    }
                }
            }
        }
    }
}

/// A journal time (milliseconds since the epoch) as a `SystemTime`.
fn at(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
