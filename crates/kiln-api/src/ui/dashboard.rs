//! `GET /`: who this node is, how big its repository is, what happened recently.

use super::{Nav, UiError, blocking, browse, browse_href, human_bytes, layout, utc};
use crate::AppState;
use crate::rpc::repo_size;
use axum::extract::State;
use maud::{Markup, html};

/// How many events the dashboard lists.
const RECENT: usize = 50;

pub(super) async fn page(State(s): State<AppState>) -> Result<Markup, UiError> {
    let stat = blocking(&s, |st| {
        Ok(kiln_node::content::stat(st, &super::ui_caller())?)
    })
    .await?;
    let events = blocking(&s, |st| {
        Ok(kiln_node::journal::events(
            st,
            &super::ui_caller(),
            &kiln_store::journal::Query {
                limit: Some(RECENT),
                newest_first: true,
                ..Default::default()
            },
        )?)
    })
    .await?;
    let node = &s.node;
    Ok(layout(
        "Dashboard",
        Nav::Dashboard,
        html! {
            h1 { "Dashboard" }
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
            section aria-labelledby="repo-h" {
                h2 #repo-h { "Repository" }
                ul.cards {
                    li {
                        span.label { "Size on disk" }
                        span.value #stat-size title={ (repo_size(&stat)) " bytes" } {
                            (human_bytes(repo_size(&stat)))
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

/// A journal time (milliseconds since the epoch) as a `SystemTime`.
fn at(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
