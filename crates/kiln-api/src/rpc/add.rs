//! `POST /api/v0/add`: multipart files, directories (`application/x-directory`) and
//! symlinks (`application/symlink`), with kubo's add options. File bodies stream from the
//! request into the importer; the answer is one NDJSON line per entry, roots last.

use super::{Args, flag, ndjson, one};
use crate::stream::ChannelReader;
use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::response::Response;
use kiln_core::import::{self, DirEntry, ImportOptions, Imported};
use kiln_core::{BlockSink, NullSink, names};
use kiln_store::{PinMode, Session, Store};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;

enum Event {
    Dir(String),
    Symlink(String, Vec<u8>),
    File(String, mpsc::Receiver<Bytes>),
    /// The request failed part way (a bad part, a broken body): nothing may be kept.
    Abort,
}

/// A multipart file name as a clean relative path: percent-decoded, no `.`/`..`/empty
/// segments, each segment a name kiln stores ([`names::check`]: no NUL, at most 255 bytes)
/// and at most [`names::MAX_DEPTH`] of them. An empty name (a bare stream) is allowed: it is
/// reported by its CID, as kubo does.
fn clean_path(raw: &str) -> Result<String, ApiError> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request(format!("file name {raw:?} is not UTF-8")))?;
    let mut parts = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                return Err(ApiError::bad_request(format!(
                    "file name {} leaves its directory",
                    names::shown(raw)
                )));
            }
            s => {
                names::check(s)?;
                parts.push(s);
                if parts.len() > names::MAX_DEPTH {
                    return Err(ApiError::bad_request(format!(
                        "file name {} is more than {} directories deep",
                        names::shown(raw),
                        names::MAX_DEPTH
                    )));
                }
            }
        }
    }
    Ok(parts.join("/"))
}

/// Prefix of the internal names given to parts without a file name (never a valid name).
const UNNAMED: &str = "\0unnamed-";

fn parent(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

struct Importer {
    opts: ImportOptions,
    session: Option<Session>,
    null: NullSink,
    /// Every entry made so far, by path.
    nodes: HashMap<String, Imported>,
    /// The entries of each directory still to build, by the directory's path.
    children: HashMap<String, Vec<DirEntry>>,
    /// Every directory named, explicitly or as a parent.
    dirs: HashSet<String>,
    order: Vec<String>,
    /// The answer's lines, when they are sent at the end.
    lines: Vec<Value>,
    /// Where lines go as they are made, with `progress=true`.
    stream: Option<mpsc::Sender<Value>>,
}

impl Importer {
    fn sink(&mut self) -> &mut dyn BlockSink {
        match self.session.as_mut() {
            Some(s) => s,
            None => &mut self.null,
        }
    }

    /// Note `dir` and its parents as directories. Each is inserted once, and the walk up
    /// stops at the first one already known, so a whole add costs time linear in its paths.
    fn add_dir(&mut self, dir: &str) {
        let mut d = Some(dir);
        while let Some(x) = d {
            if !self.dirs.insert(x.to_string()) {
                break;
            }
            d = parent(x);
        }
    }

    fn record(&mut self, path: String, node: Imported) -> Result<(), ApiError> {
        if self.nodes.contains_key(&path) {
            return Err(ApiError::bad_request(format!(
                "{} given twice",
                names::shown(&path)
            )));
        }
        if let Some(p) = parent(&path) {
            self.add_dir(p);
            self.children
                .entry(p.to_string())
                .or_default()
                .push(DirEntry::new(base(&path), &node));
        }
        // A part without a file name is reported, and wrapped, under its CID, as kubo does.
        let name = if path.starts_with(UNNAMED) {
            node.cid.to_string()
        } else {
            path.clone()
        };
        self.emit(
            json!({"Name": name, "Hash": node.cid.to_string(), "Size": node.tsize.to_string()}),
        );
        self.order.push(path.clone());
        self.nodes.insert(path, node);
        Ok(())
    }

    fn emit(&mut self, line: Value) {
        match &self.stream {
            // A client that went away stops reading; the add still completes.
            Some(tx) => drop(tx.blocking_send(line)),
            None => self.lines.push(line),
        }
    }

    fn event(&mut self, e: Event) -> Result<(), ApiError> {
        match e {
            Event::Dir(p) => {
                self.add_dir(&p);
                Ok(())
            }
            Event::Abort => Err(ApiError::bad_request("the request failed part way")),
            Event::Symlink(p, target) => {
                let opts = self.opts.clone();
                let node = import::symlink(self.sink(), &target, &opts)?;
                self.record(p, node)
            }
            Event::File(p, rx) => {
                let opts = self.opts.clone();
                let mut reader = ChannelReader::new(rx);
                // Progress lines (`{"Name","Bytes"}`) at most every MiB, as the bytes go in.
                let progress = self.stream.clone();
                let shown = if p.starts_with(UNNAMED) {
                    String::new()
                } else {
                    p.clone()
                };
                let mut last = 0u64;
                let mut report = |n: u64| {
                    if let Some(tx) = &progress
                        && n >= last + (1 << 20)
                    {
                        last = n;
                        let _ = tx.blocking_send(json!({"Name": shown, "Bytes": n}));
                    }
                };
                let node = import::import_reader(self.sink(), &mut reader, &opts, &mut report)?;
                if let Some(tx) = &self.stream {
                    let _ = tx.blocking_send(json!({"Name": shown, "Bytes": node.size}));
                }
                self.record(p, node)
            }
        }
    }

    /// Build directories deepest first; returns the top-level entries.
    fn finish(&mut self, wrap: bool) -> Result<Vec<Imported>, ApiError> {
        let mut dirs: Vec<String> = self.dirs.iter().cloned().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
        for d in dirs {
            if self.nodes.contains_key(&d) {
                return Err(ApiError::bad_request(format!(
                    "{} is both a file and a directory",
                    names::shown(&d)
                )));
            }
            // Every entry of `d` is recorded by now: its subdirectories are deeper.
            let entries = self.children.remove(&d).unwrap_or_default();
            let opts = self.opts.clone();
            let node = import::build_directory(self.sink(), entries, &opts)?;
            self.record(d, node)?;
        }
        let tops: Vec<(String, Imported)> = self
            .order
            .iter()
            .filter(|p| !p.contains('/'))
            .map(|p| (p.clone(), self.nodes[p]))
            .collect();
        if !wrap {
            return Ok(tops.into_iter().map(|(_, n)| n).collect());
        }
        let entries = tops
            .iter()
            .map(|(p, n)| {
                let name = if p.starts_with(UNNAMED) {
                    n.cid.to_string()
                } else {
                    p.clone()
                };
                DirEntry::new(name, n)
            })
            .collect();
        let opts = self.opts.clone();
        let w = import::build_directory(self.sink(), entries, &opts)?;
        self.emit(json!({"Name": "", "Hash": w.cid.to_string(), "Size": w.tsize.to_string()}));
        Ok(vec![w])
    }
}

/// The add flags that are not import options.
#[derive(Clone, Copy)]
struct Flags {
    pin: bool,
    wrap: bool,
    only_hash: bool,
}

fn run(
    store: Store,
    caller: kiln_node::Caller,
    mut events: mpsc::Receiver<Event>,
    opts: ImportOptions,
    Flags {
        pin,
        wrap,
        only_hash,
    }: Flags,
    stream: Option<mpsc::Sender<Value>>,
) -> Result<Vec<Value>, ApiError> {
    let session = if only_hash {
        None
    } else {
        Some(kiln_node::content::session(&store, &caller)?)
    };
    let mut imp = Importer {
        opts,
        session,
        null: NullSink,
        nodes: HashMap::new(),
        children: HashMap::new(),
        dirs: HashSet::new(),
        order: Vec::new(),
        lines: Vec::new(),
        stream,
    };
    while let Some(e) = events.blocking_recv() {
        imp.event(e)?;
    }
    let roots = imp.finish(wrap)?;
    if let Some(s) = imp.session.take() {
        let pin = pin.then(|| kiln_store::NewPin::new(caller.owner(), PinMode::Recursive));
        crate::metrics::blocks_added(s.blocks_written());
        let cids: Vec<_> = roots.iter().map(|r| r.cid).collect();
        kiln_node::content::commit(
            s,
            &caller,
            kiln_node::journal::action::ADD,
            &cids,
            pin.as_ref(),
        )?;
    }
    Ok(imp.lines)
}

fn multipart_err(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::multipart(e)
}

pub async fn add(
    State(s): State<AppState>,
    crate::auth::RpcCaller(caller): crate::auth::RpcCaller,
    q: Args,
    super::upload::Upload(mut m, tail): super::upload::Upload,
) -> Result<Response, ApiError> {
    // Refused before a byte of the body is read.
    kiln_node::content::may_add(&caller)?;
    let cid_version = one(&q, "cid-version")
        .map(|v| {
            v.parse::<u8>()
                .map_err(|_| ApiError::bad_request(format!("invalid cid-version {v:?}")))
        })
        .transpose()?;
    let raw_leaves = one(&q, "raw-leaves")
        .map(|_| flag(&q, "raw-leaves", true))
        .transpose()?;
    let opts = ImportOptions::from_flags(
        one(&q, "profile"),
        cid_version,
        raw_leaves,
        one(&q, "chunker"),
    )?;
    let pin = flag(&q, "pin", true)?;
    let wrap = flag(&q, "wrap-with-directory", false)?;
    let only_hash = flag(&q, "only-hash", false)?;

    let progress = flag(&q, "progress", false)?;

    // With progress=true the answer streams: progress and entry lines as they are made, and
    // an error line if the add fails part way. Otherwise it comes whole at the end, with an
    // error status if the add failed.
    let (line_tx, line_rx) = if progress {
        let (t, r) = mpsc::channel::<Value>(64);
        (Some(t), Some(r))
    } else {
        (None, None)
    };
    let (tx, rx) = mpsc::channel::<Event>(4);
    let store = s.store.clone();
    let stream = line_tx.clone();
    let job = tokio::task::spawn_blocking(move || {
        let flags = Flags {
            pin,
            wrap,
            only_hash,
        };
        run(store, caller, rx, opts, flags, stream)
    });
    let work = async move {
        let fed = feed(&mut m, &tx).await;
        if fed.is_err() {
            // The importer must not commit what came before the failure.
            let _ = tx.send(Event::Abort).await;
        }
        drop(tx);
        // Read the rest of the body, so the client, still sending, gets the answer.
        super::drain(&mut m).await;
        tail.finish().await;
        let result = job
            .await
            .map_err(|e| ApiError::internal(format!("add task failed: {e}")))?;
        // A bad part or body is its own error (the importer was told to keep nothing); a
        // feed that stopped because the importer failed returns Ok, and the importer's error
        // explains it.
        fed?;
        result
    };
    let (Some(line_tx), Some(line_rx)) = (line_tx, line_rx) else {
        return Ok(ndjson(work.await?));
    };
    tokio::spawn(async move {
        if let Err(e) = work.await {
            let _ = line_tx
                .send(json!({"Message": e.message(), "Code": 0, "Type": "error"}))
                .await;
        }
    });
    Ok(crate::stream::ndjson_stream(line_rx))
}

/// Hand the multipart parts to the importer as events; file bytes stream through.
async fn feed(m: &mut Multipart, tx: &mpsc::Sender<Event>) -> Result<(), ApiError> {
    let mut unnamed = 0u32;
    while let Some(mut field) = m.next_field().await.map_err(multipart_err)? {
        let name = field
            .file_name()
            .or(field.name())
            .map(str::to_string)
            .ok_or_else(|| ApiError::bad_request("a multipart part has no file name"))?;
        let mut path = clean_path(&name)?;
        if path.is_empty() {
            unnamed += 1;
            path = format!("{UNNAMED}{unnamed}");
        }
        let ctype = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let event = match ctype.as_str() {
            "application/x-directory" => Event::Dir(path),
            "application/symlink" => {
                Event::Symlink(path, field.bytes().await.map_err(multipart_err)?.to_vec())
            }
            _ => {
                let (ctx, crx) = mpsc::channel::<Bytes>(8);
                if tx.send(Event::File(path, crx)).await.is_err() {
                    return Ok(());
                }
                while let Some(chunk) = field.chunk().await.map_err(multipart_err)? {
                    if ctx.send(chunk).await.is_err() {
                        return Ok(());
                    }
                }
                continue;
            }
        };
        if tx.send(event).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}
