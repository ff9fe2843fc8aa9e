//! Pins: `GET /ui/pins` lists them (newest first, paged) with a form to add one;
//! `POST /ui/pins` adds, `POST /ui/pins/remove` removes. Both answer with a 303 redirect to
//! `/ui/pins?added=CID` or `?removed=CID`, from which the list page words its notice —
//! checked against the pins themselves, so a crafted link cannot make the page claim what
//! did not happen, and no cookie is needed (the gateway on another port of this host could
//! set one).

use super::{
    Nav, Paging, SameOrigin, UiCaller, UiError, blocking, browse_href, human_bytes, layout, param,
    utc,
};
use crate::AppState;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use kiln_core::Cid;
use kiln_core::cids::{DAG_CBOR, DAG_JSON, DAG_PB, RAW, parse_cid};
use kiln_core::dag_pb::PbNode;
use kiln_core::unixfs::{DataType, UnixfsData};
use kiln_node::Caller;
use kiln_store::{Pin, PinMode, Store};
use maud::{Markup, html};
use std::collections::HashSet;

/// Pins per page.
const PER_PAGE: usize = 100;
/// Longest pin name accepted, in bytes.
const MAX_NAME: usize = 256;
/// Blocks visited at most to size a DAG whose root is neither dag-pb nor raw.
const WALK_LIMIT: usize = 1000;

/// The cumulative size of a pinned DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DagSize {
    bytes: u64,
    /// The walk stopped at [`WALK_LIMIT`] blocks: the DAG is at least this big.
    at_least: bool,
}

struct PinRow {
    pin: Pin,
    kind: String,
    size: Option<DagSize>,
}

struct Listing {
    rows: Vec<PinRow>,
    paging: Paging,
    /// Every pinned CID with its name, to word the notice.
    all: Vec<(Cid, Option<String>)>,
}

/// What the form held, to show it again after a failure.
#[derive(Default)]
struct Prefill {
    path: String,
    name: String,
    namespace: String,
    direct: bool,
}

pub(super) async fn page(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    match listing(&s, &caller, &q).await {
        Ok(l) => {
            let notice = notice(&l, &q);
            render(&l, notice.as_deref(), None, &Prefill::default()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The pins `caller` may see (an administrator's: all of them; anyone else's: its own).
async fn listing(
    s: &AppState,
    caller: &Caller,
    q: &[(String, String)],
) -> Result<Listing, UiError> {
    let (q, caller) = (q.to_vec(), caller.clone());
    blocking(s, move |st| {
        let mut pins = kiln_node::pins::list(st, &caller)?;
        pins.reverse();
        let all = pins.iter().map(|p| (p.cid, p.name.clone())).collect();
        let paging = Paging::new(&q, PER_PAGE, pins.len());
        let rows = pins[paging.range()]
            .iter()
            .map(|p| {
                let (kind, size) = summary(st, &p.cid)?;
                Ok(PinRow {
                    pin: p.clone(),
                    kind,
                    size,
                })
            })
            .collect::<Result<_, UiError>>()?;
        Ok(Listing { rows, paging, all })
    })
    .await
}

/// What a pinned root is and how big its DAG is, from as few reads as the codec allows:
/// - raw: the block's own length (exact);
/// - dag-pb: the root's length plus its links' `Tsize`, which is what Kubo reports as the
///   cumulative size. One read, but approximate: `Tsize` is what the DAG's producer wrote,
///   and a block linked from two places is counted twice;
/// - anything else (dag-cbor, …): a walk of the links the store recorded, each block counted
///   once, stopped after [`WALK_LIMIT`] blocks (then reported as a lower bound).
fn summary(st: &Store, cid: &Cid) -> Result<(String, Option<DagSize>), UiError> {
    match cid.codec() {
        RAW => Ok((
            "file".into(),
            st.size(cid)?.map(|bytes| DagSize {
                bytes,
                at_least: false,
            }),
        )),
        DAG_PB => {
            let Some(data) = st.get(cid)? else {
                return Ok(("missing".into(), None));
            };
            let Ok(node) = PbNode::decode(&data, Some(*cid)) else {
                return Ok(("malformed dag-pb".into(), None));
            };
            let kind = match node
                .data
                .as_deref()
                .and_then(|d| UnixfsData::decode(d, Some(*cid)).ok())
                .map(|u| u.kind)
            {
                Some(DataType::Directory | DataType::HamtShard) => "directory",
                Some(DataType::File | DataType::Raw) => "file",
                Some(DataType::Symlink) => "symlink",
                Some(DataType::Metadata) | None => "dag-pb",
            };
            let links: u64 = node.links.iter().map(|l| l.tsize).sum();
            Ok((
                kind.into(),
                Some(DagSize {
                    bytes: (data.len() as u64).saturating_add(links),
                    at_least: false,
                }),
            ))
        }
        codec => {
            let kind = match codec {
                DAG_CBOR => "dag-cbor".to_string(),
                DAG_JSON => "dag-json".to_string(),
                c => format!("codec 0x{c:x}"),
            };
            Ok((kind, walk_size(st, cid)?))
        }
    }
}

fn walk_size(st: &Store, root: &Cid) -> Result<Option<DagSize>, UiError> {
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    let mut bytes = 0u64;
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        if seen.len() > WALK_LIMIT {
            return Ok(Some(DagSize {
                bytes,
                at_least: true,
            }));
        }
        let Some(n) = st.size(&c)? else {
            if c == *root {
                return Ok(None);
            }
            continue;
        };
        bytes = bytes.saturating_add(n);
        stack.extend(st.links(&c)?.unwrap_or_default());
    }
    Ok(Some(DagSize {
        bytes,
        at_least: false,
    }))
}

/// The notice for `?added=` / `?removed=`, if the pins agree that it happened.
fn notice(l: &Listing, q: &[(String, String)]) -> Option<String> {
    let find = |c: &Cid| l.all.iter().find(|(p, _)| p == c);
    if let Some(c) = param(q, "added").and_then(|v| parse_cid(v).ok()) {
        let (_, name) = find(&c)?;
        return Some(match name {
            Some(n) => format!("Pinned “{n}” ({c})."),
            None => format!("Pinned {c}."),
        });
    }
    if let Some(c) = param(q, "removed").and_then(|v| parse_cid(v).ok()) {
        return find(&c)
            .is_none()
            .then(|| format!("Removed the pin on {c}."));
    }
    None
}

pub(super) async fn add(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    _: SameOrigin,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let prefill = Prefill {
        path: param(&f, "path").unwrap_or("").trim().to_string(),
        name: param(&f, "name").unwrap_or("").trim().to_string(),
        namespace: param(&f, "namespace").unwrap_or("").trim().to_string(),
        direct: param(&f, "mode") == Some("direct"),
    };
    let checked = match param(&f, "mode") {
        None | Some("recursive") => check_name(&prefill.name).map(|()| PinMode::Recursive),
        Some("direct") => check_name(&prefill.name).map(|()| PinMode::Direct),
        Some(other) => Err(UiError::bad_request(format!(
            "unknown pin mode {other:?}: use recursive or direct"
        ))),
    };
    let result = match checked {
        Ok(mode) => {
            let path = prefill.path.clone();
            let name = Some(prefill.name.clone()).filter(|n| !n.is_empty());
            let namespace = Some(prefill.namespace.clone()).filter(|n| !n.is_empty());
            let caller = caller.clone();
            blocking(&s, move |st| {
                Ok(kiln_node::pins::add(
                    st,
                    &caller,
                    &path,
                    mode,
                    name.as_deref(),
                    namespace.as_deref(),
                )?)
            })
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(cid) => Redirect::to(&format!("/ui/pins?added={cid}")).into_response(),
        Err(e) => failed(&s, &caller, e, &prefill).await,
    }
}

fn check_name(name: &str) -> Result<(), UiError> {
    if name.len() > MAX_NAME {
        return Err(UiError::bad_request(format!(
            "the name is {} bytes long; at most {MAX_NAME} are allowed",
            name.len()
        ))
        .titled("Name too long"));
    }
    if name.chars().any(char::is_control) {
        return Err(
            UiError::bad_request("the name holds control characters").titled("Invalid name")
        );
    }
    Ok(())
}

pub(super) async fn remove(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    _: SameOrigin,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let target = param(&f, "cid").unwrap_or("").trim().to_string();
    // The row's owner: the administrator removes the pin the row shows, whoever holds it.
    let owner = param(&f, "owner").map(str::to_string);
    let who = caller.clone();
    let result = blocking(&s, move |st| {
        let whose = match owner {
            Some(o) => kiln_node::pins::Whose::Of(
                kiln_store::PinOwner::new(o).map_err(kiln_node::Error::from)?,
            ),
            None => kiln_node::pins::Whose::Mine,
        };
        Ok(kiln_node::pins::remove(st, &who, &target, &whose)?.cid)
    })
    .await;
    match result {
        Ok(cid) => Redirect::to(&format!("/ui/pins?removed={cid}")).into_response(),
        Err(e) => failed(&s, &caller, e, &Prefill::default()).await,
    }
}

/// The list page again, with the error, the form as it was, and the error's status.
async fn failed(s: &AppState, caller: &Caller, e: UiError, prefill: &Prefill) -> Response {
    let status = e.status();
    match listing(s, caller, &[]).await {
        Ok(l) => (status, render(&l, None, Some(&e), prefill)).into_response(),
        Err(_) => e.into_response(),
    }
}

fn size_cell(size: Option<DagSize>) -> Markup {
    html! {
        @match size {
            Some(d) => span title={ (d.bytes) " bytes" } {
                @if d.at_least { "≥ " } (human_bytes(d.bytes))
            },
            None => span.muted { "—" },
        }
    }
}

fn render(l: &Listing, notice: Option<&str>, error: Option<&UiError>, f: &Prefill) -> Markup {
    layout(
        "Pins",
        Nav::Pins,
        html! {
            h1 { "Pins" }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            @if let Some(e) = error { (e.panel()) }
            section aria-labelledby="add-h" {
                h2 #add-h { "Add a pin" }
                form.stack method="post" action="/ui/pins" {
                    div {
                        label for="pin-path" { "CID or path" }
                        input #pin-path type="text" name="path" value=(f.path) required
                            placeholder="bafy… or bafy…/dir" autocomplete="off"
                            autocapitalize="off" spellcheck="false";
                    }
                    div {
                        label for="pin-name" { "Name " span.muted { "(optional)" } }
                        input #pin-name type="text" name="name" value=(f.name) maxlength="256";
                    }
                    div {
                        label for="pin-ns" { "Namespace " span.muted { "(default if empty)" } }
                        input #pin-ns type="text" name="namespace" value=(f.namespace)
                            placeholder="default" autocomplete="off" spellcheck="false";
                    }
                    div {
                        label for="pin-mode" { "Mode" }
                        select #pin-mode name="mode" {
                            option value="recursive" selected[!f.direct] { "Recursive: the whole DAG" }
                            option value="direct" selected[f.direct] { "Direct: the root block only" }
                        }
                    }
                    div { button type="submit" { "Pin" } }
                }
            }
            section aria-labelledby="list-h" {
                h2 #list-h { "Pinned " span.muted { "(" (l.paging.total) ")" } }
                @if l.rows.is_empty() {
                    p.muted { "Nothing is pinned yet. Unpinned content is removed by the next garbage collection." }
                } @else {
                    (l.paging.links(|n| format!("/ui/pins?page={n}")))
                    table.list #pins {
                        thead {
                            tr {
                                th scope="col" { "Name" }
                                th scope="col" { "Owner" }
                                th scope="col" { "Namespace" }
                                th scope="col" { "CID" }
                                th scope="col" { "Type" }
                                th scope="col" { abbr title="cumulative size of the pinned DAG" { "Size" } }
                                th scope="col" { "Pinned" }
                                th scope="col" { span.visually-hidden { "Actions" } }
                            }
                        }
                        tbody {
                            @for r in &l.rows {
                                @let cid = r.pin.cid.to_string();
                                tr {
                                    td data-label="Name" {
                                        @if let Some(n) = &r.pin.name { span.pin-name { (n) } }
                                        @else { span.muted { "—" } }
                                    }
                                    td data-label="Owner" { (r.pin.owner) }
                                    td data-label="Namespace" { (r.pin.namespace) }
                                    td data-label="CID" {
                                        a href=(browse_href(&cid)) { code.cid { (cid) } }
                                    }
                                    td data-label="Type" { (r.pin.mode) ", " (r.kind) }
                                    td data-label="Size" { (size_cell(r.size)) }
                                    td data-label="Pinned" { time { (utc(r.pin.created)) } }
                                    td {
                                        form.inline-action method="post" action="/ui/pins/remove" {
                                            input type="hidden" name="cid" value=(cid);
                                            input type="hidden" name="owner" value=(r.pin.owner);
                                            button.danger type="submit" {
                                                "Remove"
                                                span.visually-hidden {
                                                    " pin " (r.pin.name.as_deref().unwrap_or(&cid))
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    (l.paging.links(|n| format!("/ui/pins?page={n}")))
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn names() {
        assert!(check_name("photos 2026 ✓").is_ok());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME + 1)).is_err());
        assert_eq!(
            check_name(&"x".repeat(MAX_NAME + 1))
                .map_err(|e| e.status())
                .unwrap_err(),
            StatusCode::BAD_REQUEST
        );
    }
}
