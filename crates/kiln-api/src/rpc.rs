//! The Kubo RPC subset under `/api/v0/`: POST only, arguments in the query string
//! (`arg` repeated for positional arguments), JSON answers, errors as
//! `{"Message","Code","Type"}`, long outputs streamed.

mod add;
mod transfer;
mod upload;

use crate::auth::RpcCaller;
use crate::stream::blocking_body;
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, post};
use axum::{Json, Router};
use base64::Engine;
use kiln_core::Cid;
use kiln_core::cids::{self, parse_cid};
use kiln_core::export::Node;
use kiln_node::content;
use kiln_node::pins::Whose;
use kiln_store::{NewPin, PinMode, PinStatus, RepoStat, Store};
use serde_json::{Value, json};

/// POST `handler`; any other method → 405 with a Kubo error body.
fn rpc<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    post(handler).fallback(any(|| async { ApiError::method_not_allowed() }))
}

/// Every RPC route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v0/version", rpc(version))
        .route("/api/v0/id", rpc(id))
        .route("/api/v0/add", rpc(add::add))
        .route("/api/v0/cat", rpc(cat))
        .route("/api/v0/ls", rpc(ls))
        .route("/api/v0/block/get", rpc(block_get))
        .route("/api/v0/block/stat", rpc(block_stat))
        .route("/api/v0/block/put", rpc(block_put))
        .route("/api/v0/block/rm", rpc(block_rm))
        .route("/api/v0/pin/add", rpc(pin_add))
        .route("/api/v0/pin/rm", rpc(pin_rm))
        .route("/api/v0/pin/ls", rpc(pin_ls))
        .route("/api/v0/repo/gc", rpc(repo_gc))
        .route("/api/v0/repo/stat", rpc(repo_stat))
        .route("/api/v0/dag/export", rpc(dag_export))
        .route("/api/v0/dag/import", rpc(transfer::dag_import))
        .route("/api/v0/get", rpc(transfer::get))
        .route("/api/v0/{*command}", any(unknown_command))
}

/// A path under `/api/v0/` that names no command: 404 with Kubo's JSON error body.
async fn unknown_command(axum::extract::Path(command): axum::extract::Path<String>) -> ApiError {
    ApiError::not_found(format!("unknown command: {command:?}"))
}

/// Read and drop what is left of a multipart body (after the work it fed has failed), so a
/// client still sending it is not cut off with a broken pipe before it can read the error.
/// The body limit bounds what this reads.
pub(crate) async fn drain(m: &mut Multipart) {
    while let Ok(Some(mut field)) = m.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

/// Query arguments, in order (`arg` may repeat).
pub(crate) type Args = Query<Vec<(String, String)>>;

fn all<'a>(q: &'a Args, name: &str) -> Vec<&'a str> {
    q.0.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

pub(crate) fn one<'a>(q: &'a Args, name: &str) -> Option<&'a str> {
    q.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub(crate) fn required(q: &Args) -> Result<&str, ApiError> {
    one(q, "arg").ok_or_else(|| ApiError::bad_request("argument \"arg\" is required"))
}

pub(crate) fn flag(q: &Args, name: &str, default: bool) -> Result<bool, ApiError> {
    match one(q, name) {
        None => Ok(default),
        Some("" | "true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(ApiError::bad_request(format!(
            "invalid boolean {v:?} for {name}"
        ))),
    }
}

fn number(q: &Args, name: &str) -> Result<Option<u64>, ApiError> {
    one(q, name)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid number {v:?} for {name}")))
        })
        .transpose()
}

/// Run store work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::stream::on_store(&s.store, f).await
}

pub(crate) fn resolve(store: &Store, path: &str) -> Result<Cid, ApiError> {
    Ok(kiln_node::pins::resolve(store, path)?)
}

/// The repository's size on disk as `repo/stat` reports it: pack files plus the database.
pub(crate) fn repo_size(st: &RepoStat) -> u64 {
    st.pack_bytes + st.db_bytes
}

pub(crate) fn ndjson(lines: Vec<Value>) -> Response {
    let mut body = String::new();
    for l in lines {
        body.push_str(&l.to_string());
        body.push('\n');
    }
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn octets(body: Body) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r.headers_mut()
        .insert("x-stream-output", HeaderValue::from_static("1"));
    r
}

async fn version() -> Json<Value> {
    Json(json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Commit": "",
        "Repo": "kiln-1",
        "System": format!("{}/{}", std::env::consts::ARCH, std::env::consts::OS),
        "Golang": "",
    }))
}

async fn id(State(s): State<AppState>) -> Json<Value> {
    let n = &s.node;
    Json(json!({
        "ID": n.peer_id,
        "DID": n.did,
        "PublicKey": base64::engine::general_purpose::STANDARD.encode(&n.public_key),
        "Addresses": n.addresses,
        "AgentVersion": n.agent_version,
        "Protocols": [],
    }))
}

async fn cat(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Response, ApiError> {
    let path = required(&q)?.to_string();
    let offset = number(&q, "offset")?.unwrap_or(0);
    let length = number(&q, "length")?;
    let c = caller.clone();
    let cid = blocking(&s, move |st| Ok(content::file(st, &c, &path)?)).await?;
    let store = s.store.clone();
    Ok(octets(blocking_body(move |w| {
        content::read_file(&store, &caller, &cid, offset, length, w)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })))
}

/// Kubo's link types: 1 directory, 2 file, 4 symlink.
fn kind_code(n: &Node) -> u8 {
    match n {
        Node::Directory { .. } => 1,
        Node::File { .. } => 2,
        Node::Symlink { .. } => 4,
    }
}

/// One link of an `ls` answer, as Kubo writes it.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct LsLink<'a> {
    name: &'a str,
    hash: String,
    size: u64,
    #[serde(rename = "Type")]
    kind: u8,
    target: String,
    /// kiln's extension: listed from the parent alone, the block is not here.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    missing: bool,
}

/// `ls`: the directories are resolved and listed first (an error there is an error status);
/// then the answer streams, one link at a time, each child looked up as it is written, so
/// a directory of 300,000 entries costs its listing, not a JSON tree of it.
async fn ls(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Response, ApiError> {
    let paths: Vec<String> = all(&q, "arg").into_iter().map(str::to_string).collect();
    if paths.is_empty() {
        return Err(ApiError::bad_request("argument \"arg\" is required"));
    }
    let c = caller.clone();
    let listed = blocking(&s, move |st| {
        let caller = c;
        paths
            .into_iter()
            .map(|p| {
                let cid = content::resolve(st, &caller, &p)?;
                Ok((p, content::list(st, &caller, &cid)?))
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await?;
    let store = s.store.clone();
    let body = blocking_body(move |w| {
        let io = |e: std::io::Error| e.to_string();
        w.write_all(b"{\"Objects\":[").map_err(io)?;
        for (i, (p, entries)) in listed.iter().enumerate() {
            if i > 0 {
                w.write_all(b",").map_err(io)?;
            }
            write!(w, "{{\"Hash\":{},\"Links\":[", Value::from(p.as_str())).map_err(io)?;
            for (j, e) in entries.iter().enumerate() {
                let link = match content::child(&store, &caller, e) {
                    // Files report their byte size, symlinks their link size, directories 0.
                    Ok(Some(node)) => {
                        let (size, target) = match &node {
                            Node::File { size } => (*size, String::new()),
                            Node::Symlink { target } => {
                                (e.tsize, String::from_utf8_lossy(target).into_owned())
                            }
                            Node::Directory { .. } => (0, String::new()),
                        };
                        LsLink {
                            name: &e.name,
                            hash: e.cid.to_string(),
                            size,
                            kind: kind_code(&node),
                            target,
                            missing: false,
                        }
                    }
                    Ok(None) => LsLink {
                        name: &e.name,
                        hash: e.cid.to_string(),
                        size: e.tsize,
                        kind: 0,
                        target: String::new(),
                        missing: true,
                    },
                    Err(err) => return Err(err.to_string()),
                };
                if j > 0 {
                    w.write_all(b",").map_err(io)?;
                }
                serde_json::to_writer(&mut *w, &link).map_err(|e| e.to_string())?;
            }
            w.write_all(b"]}").map_err(io)?;
        }
        w.write_all(b"]}\n").map_err(io)?;
        Ok(())
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn block_get(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Response, ApiError> {
    let cid = parse_cid(required(&q)?)?;
    let data = blocking(&s, move |st| Ok(content::block(st, &caller, &cid)?)).await?;
    Ok(octets(Body::from(data)))
}

async fn block_stat(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Json<Value>, ApiError> {
    let cid = parse_cid(required(&q)?)?;
    let size = blocking(&s, move |st| Ok(content::block_size(st, &caller, &cid)?)).await?;
    Ok(Json(json!({"Key": cid.to_string(), "Size": size})))
}

/// The first file part of a multipart body.
async fn first_file(mut m: Multipart) -> Result<Vec<u8>, ApiError> {
    let bad = ApiError::multipart;
    let field = m
        .next_field()
        .await
        .map_err(bad)?
        .ok_or_else(|| ApiError::bad_request("file argument 'data' is required"))?;
    Ok(field.bytes().await.map_err(bad)?.to_vec())
}

async fn block_put(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
    m: Multipart,
) -> Result<Json<Value>, ApiError> {
    let codec = cids::codec_from_name(one(&q, "cid-codec").or(one(&q, "format")).unwrap_or("raw"))?;
    if let Some(mh) = one(&q, "mhtype").filter(|m| *m != "sha2-256") {
        return Err(ApiError::bad_request(format!(
            "unsupported hash function {mh:?}"
        )));
    }
    let pin = flag(&q, "pin", false)?;
    let data = first_file(m).await?;
    if data.len() > 4 << 20 {
        return Err(ApiError::bad_request("block larger than the 4 MiB limit"));
    }
    blocking(&s, move |st| {
        let cid = cids::cid_of(cid::Version::V1, codec, &data);
        let links = kiln_core::links::links_of(&cid, &data)?;
        let mut session = kiln_node::content::session(st, &caller)?;
        session.put(&cid, &data, &links)?;
        let pin = pin.then(|| NewPin::new(caller.owner(), PinMode::Recursive));
        crate::metrics::blocks_added(session.blocks_written());
        kiln_node::content::commit(
            session,
            &caller,
            kiln_node::journal::action::BLOCK_PUT,
            &[cid],
            pin.as_ref(),
        )?;
        Ok(Json(json!({"Key": cid.to_string(), "Size": data.len()})))
    })
    .await
}

async fn block_rm(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Response, ApiError> {
    let cids = all(&q, "arg")
        .into_iter()
        .map(parse_cid)
        .collect::<Result<Vec<_>, _>>()?;
    let force = flag(&q, "force", false)?;
    kiln_node::content::may_remove_blocks(&caller)?;
    let lines = blocking(&s, move |st| {
        Ok(cids
            .iter()
            .filter_map(
                |c| match kiln_node::content::remove_block(st, &caller, c, force) {
                    Ok(true) => Some(json!({"Hash": c.to_string(), "Error": ""})),
                    Ok(false) => None,
                    Err(e) => Some(json!({"Hash": c.to_string(), "Error": e.to_string()})),
                },
            )
            .collect())
    })
    .await?;
    Ok(ndjson(lines))
}

async fn pin_add(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Json<Value>, ApiError> {
    let paths: Vec<String> = all(&q, "arg").into_iter().map(str::to_string).collect();
    let mode = if flag(&q, "recursive", true)? {
        PinMode::Recursive
    } else {
        PinMode::Direct
    };
    let name = one(&q, "name").map(str::to_string);
    // kiln's extension: the namespace the pins live in (default: `default`).
    let namespace = one(&q, "namespace").map(str::to_string);
    blocking(&s, move |st| {
        let mut pins = Vec::new();
        for p in &paths {
            let cid =
                kiln_node::pins::add(st, &caller, p, mode, name.as_deref(), namespace.as_deref())?;
            pins.push(cid.to_string());
        }
        Ok(Json(json!({"Pins": pins})))
    })
    .await
}

/// `pin/rm`: the caller's pins; kiln's extensions `owner=OWNER` (another owner's) and
/// `all=true` (every owner's), for the administrator.
async fn pin_rm(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Json<Value>, ApiError> {
    let paths: Vec<String> = all(&q, "arg").into_iter().map(str::to_string).collect();
    let whose = match (one(&q, "owner"), flag(&q, "all", false)?) {
        (Some(_), true) => {
            return Err(ApiError::bad_request(
                "owner and all cannot be given together",
            ));
        }
        (Some(o), false) => Whose::Of(
            kiln_store::PinOwner::new(o).map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
        (None, true) => Whose::All,
        (None, false) => Whose::Mine,
    };
    blocking(&s, move |st| {
        let mut pins = Vec::new();
        for p in &paths {
            let removed = kiln_node::pins::remove(st, &caller, p, &whose)?;
            pins.push(removed.cid.to_string());
        }
        Ok(Json(json!({"Pins": pins})))
    })
    .await
}

async fn pin_ls(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Json<Value>, ApiError> {
    let args = all(&q, "arg")
        .into_iter()
        .map(parse_cid)
        .collect::<Result<Vec<_>, _>>()?;
    let kind = one(&q, "type").unwrap_or("all").to_string();
    let names = flag(&q, "names", false)?;
    if !matches!(kind.as_str(), "all" | "recursive" | "direct" | "indirect") {
        return Err(ApiError::bad_request(format!("invalid pin type {kind:?}")));
    }
    blocking(&s, move |st| {
        let mut keys = serde_json::Map::new();
        if !args.is_empty() {
            for c in &args {
                let t = match kiln_node::pins::status(st, &caller, c)? {
                    Some(PinStatus::Indirect { via }) => format!("indirect through {via}"),
                    Some(p) => p.to_string(),
                    None => return Err(ApiError::internal(format!("path '{c}' is not pinned"))),
                };
                keys.insert(c.to_string(), json!({"Type": t}));
            }
        } else {
            // A CID held by several owners is one key, of its strongest mode.
            let mut pins = kiln_node::pins::list(st, &caller)?;
            pins.sort_by_key(|p| p.mode == PinMode::Recursive);
            for p in pins {
                if kind == "all" || kind == p.mode.to_string() {
                    let mut v = json!({"Type": p.mode.to_string()});
                    if let Some(n) = p.name.as_deref().filter(|_| names) {
                        v["Name"] = json!(n);
                    }
                    keys.insert(p.cid.to_string(), v);
                }
            }
            if kind == "all" || kind == "indirect" {
                for c in kiln_node::pins::indirect(st, &caller)? {
                    keys.entry(c.to_string())
                        .or_insert_with(|| json!({"Type": "indirect"}));
                }
            }
        }
        Ok(Json(json!({"Keys": keys})))
    })
    .await
}

/// Kubo's `repo/gc`: one `{"Key": {"/": CID}}` line per removed block, streamed as GC
/// commits them (none with `quiet=true`); a failure ends the stream with `{"Error": …}`.
async fn repo_gc(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Response, ApiError> {
    let quiet = flag(&q, "quiet", false)?;
    // Refused here, with its status, not as a line of a stream that has begun.
    kiln_node::content::may_gc(&caller)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(256);
    let (store, keep) = (s.store.clone(), s.keep_events);
    tokio::task::spawn_blocking(move || {
        let mut send = |c: &Cid| {
            if !quiet {
                // A client that stopped reading does not stop the collection.
                let _ = tx.blocking_send(json!({"Key": {"/": c.to_string()}}));
            }
        };
        match kiln_node::content::gc(&store, &caller, keep, &mut send) {
            Ok(report) => {
                tracing::info!(
                    blocks = report.store.blocks_removed,
                    bytes = report.store.bytes_freed,
                    build_dirs = report.build_dirs.total(),
                    "gc via RPC"
                );
            }
            Err(e) => {
                tracing::warn!("gc via RPC failed: {e}");
                let _ = tx.blocking_send(json!({"Error": e.to_string()}));
            }
        }
    });
    Ok(crate::stream::ndjson_stream(rx))
}

async fn repo_stat(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
) -> Result<Json<Value>, ApiError> {
    let root = s.store.root().display().to_string();
    let st = blocking(&s, move |st| Ok(kiln_node::content::stat(st, &caller)?)).await?;
    Ok(Json(json!({
        "RepoSize": repo_size(&st),
        "StorageMax": 0,
        "NumObjects": st.blocks,
        "RepoPath": root,
        "Version": "kiln-1",
    })))
}

async fn dag_export(
    State(s): State<AppState>,
    RpcCaller(caller): RpcCaller,
    q: Args,
) -> Result<Response, ApiError> {
    let path = required(&q)?.to_string();
    // Authorized before anything is read.
    let content = content::reader(&s.store, &caller)?;
    let cid = blocking(&s, move |st| {
        let cid = resolve(st, &path)?;
        st.get(&cid)?
            .ok_or_else(|| ApiError::internal(format!("block {cid} not found")))?;
        Ok(cid)
    })
    .await?;
    let mut r = blocking_body(move |w| {
        kiln_core::car::export_dag(&content, &cid, w)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.ipld.car"),
    );
    r.headers_mut()
        .insert("x-stream-output", HeaderValue::from_static("1"));
    Ok(r)
}
