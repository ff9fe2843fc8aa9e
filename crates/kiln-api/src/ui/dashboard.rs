//! `GET /`: who this node is, how big its repository is, what happened recently.

use super::{Nav, UiError, blocking, browse, browse_href, human_bytes, layout, utc};
use crate::AppState;
use crate::rpc::repo_size;
use axum::extract::State;
use maud::{Markup, html};

pub(super) async fn page(State(s): State<AppState>) -> Result<Markup, UiError> {
    let stat = blocking(&s, |st| Ok(st.stat()?)).await?;
    let events = s.activity.recent();
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
                    p.muted { "Nothing yet: adds, imports, pins and GC runs made through this daemon since it started are listed here." }
                } @else {
                    table.list #activity {
                        thead { tr { th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Content" } th scope="col" { "Detail" } } }
                        tbody {
                            @for e in &events {
                                tr {
                                    td data-label="Time" { time { (utc(e.at)) } }
                                    td data-label="Event" { span.tag { (e.kind.label()) } }
                                    td data-label="Content" {
                                        @if let Some(c) = e.cid {
                                            a href=(browse_href(&c.to_string())) { code.cid { (c) } }
                                        }
                                    }
                                    td data-label="Detail" { (e.detail) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
