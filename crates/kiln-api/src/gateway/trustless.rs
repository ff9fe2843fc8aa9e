//! Trustless responses: the one block a path names (`format=raw`), or a CARv1
//! (`format=car`) holding the blocks needed to walk the path, then the named DAG cut by
//! `dag-scope` and `entity-bytes`. Depth-first (`order=dfs`); each block once (`dups=n`,
//! the default) or every time the walk meets it (`dups=y`); never identity blocks.

use super::negotiate::RAW_TYPE;
use super::{
    GatewayError, Request, Resolved, SendFirstAtOnce, X_CONTENT_TYPE_OPTIONS, content_disposition,
    immutable_headers, resolve,
};
use crate::stream::blocking_body;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kiln_core::car::CarWriter;
use kiln_core::cids::{self, ContentPath, DAG_PB, RAW};
use kiln_core::export::{self, Node};
use kiln_core::{BlockSource, Cid, Error};
use kiln_node::content::Reader;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Write;

/// How much of the DAG under the path goes into the CAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The named block only.
    Block,
    /// The named UnixFS entity: a whole file (or `entity-bytes` of it), a directory's
    /// own block(s) (every shard of a HAMT), or the one block of anything else.
    Entity,
    /// Everything reachable.
    All,
}

/// `entity-bytes=from:to`: inclusive, `*` for the end, negative counts from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EntityBytes {
    from: i64,
    to: Option<i64>,
}

impl EntityBytes {
    fn parse(s: &str) -> Result<EntityBytes, GatewayError> {
        let bad = || GatewayError::bad_request(format!("bad entity-bytes {s:?} (from:to)"));
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let from: i64 = a.parse().map_err(|_| bad())?;
        let to = match b {
            "*" => None,
            n => Some(n.parse::<i64>().map_err(|_| bad())?),
        };
        if let Some(t) = to
            && (from >= 0) == (t >= 0)
            && t < from
        {
            return Err(bad());
        }
        Ok(EntityBytes { from, to })
    }

    /// The range starts after the last byte of a file of `size` bytes (`0:…` never does:
    /// it is the whole of an empty file).
    fn past_the_end(&self, size: u64) -> bool {
        self.from > 0 && self.from.unsigned_abs() >= size
    }

    /// `[start, end)` within a file of `size` bytes (possibly empty).
    fn window(&self, size: u64) -> (u64, u64) {
        let at = |i: i64| -> u64 {
            if i >= 0 {
                (i as u64).min(size)
            } else {
                size.saturating_sub(i.unsigned_abs())
            }
        };
        let start = at(self.from);
        let end = match self.to {
            None => size,
            Some(t) if t >= 0 => (t as u64).saturating_add(1).min(size),
            Some(t) => at(t).saturating_add(1).min(size),
        };
        (start, end.max(start))
    }
}

/// The CAR request's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CarParams {
    scope: Scope,
    bytes: Option<EntityBytes>,
    /// `dups=y`: a block is sent every time the walk meets it, not only the first time.
    pub(super) dups: bool,
}

impl CarParams {
    /// `dag-scope` and `entity-bytes` from the query; `dups` as negotiated. `entity-bytes`
    /// implies `dag-scope=entity` and contradicts any other scope (400).
    pub(super) fn from_query(
        q: &HashMap<String, String>,
        dups: bool,
    ) -> Result<CarParams, GatewayError> {
        let bytes = q
            .get("entity-bytes")
            .map(|s| EntityBytes::parse(s))
            .transpose()?;
        let scope = match q.get("dag-scope").map(String::as_str) {
            None if bytes.is_some() => Scope::Entity,
            None | Some("all") => Scope::All,
            Some("entity") => Scope::Entity,
            Some("block") => Scope::Block,
            Some(other) => {
                return Err(GatewayError::bad_request(format!(
                    "unsupported dag-scope {other:?} (block, entity or all)"
                )));
            }
        };
        if bytes.is_some() && scope != Scope::Entity {
            return Err(GatewayError::bad_request(
                "entity-bytes selects bytes of an entity: it needs dag-scope=entity (or no dag-scope)",
            ));
        }
        Ok(CarParams { scope, bytes, dups })
    }

    /// The media type, with every parameter kiln knows.
    fn content_type(&self) -> &'static str {
        if self.dups {
            "application/vnd.ipld.car; version=1; order=dfs; dups=y"
        } else {
            "application/vnd.ipld.car; version=1; order=dfs; dups=n"
        }
    }

    /// A tag for the Etag: differs for every scope, byte range and duplicate setting.
    fn tag(&self) -> String {
        let scope = match self.scope {
            Scope::Block => "block",
            Scope::Entity => "entity",
            Scope::All => "all",
        };
        let dups = if self.dups { "y" } else { "n" };
        match self.bytes {
            None => format!("{scope}.dfs.{dups}"),
            Some(b) => format!(
                "{scope}.dfs.{dups}.{}:{}",
                b.from,
                b.to.map_or("*".to_string(), |t| t.to_string())
            ),
        }
    }
}

/// Headers of every trustless answer: `Content-Disposition: attachment` (`?filename=` or
/// `default`), `nosniff`, and the immutable caching headers.
fn trustless_headers(h: &mut HeaderMap, req: &Request, default: &str, etag: &str, r: &Resolved) {
    let name = req.filename.as_deref().unwrap_or(default);
    if let Some(v) = content_disposition("attachment", name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    immutable_headers(h, etag, r);
}

/// `format=raw`: one block.
pub(super) async fn raw(content: &Reader, req: &Request) -> Result<Response, GatewayError> {
    let path = req.path.clone();
    let (resolved, data) = crate::stream::with_blocks(content, move |src: &dyn BlockSource| {
        let r = resolve(src, &path)?;
        let data = src.get(&r.cid)?.ok_or(Error::NotFound(r.cid))?;
        Ok::<_, GatewayError>((r, data))
    })
    .await??;
    let cid = resolved.cid;
    let len = data.len();
    let mut resp = if req.head {
        Body::empty().into_response()
    } else {
        data.into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(RAW_TYPE));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    trustless_headers(
        h,
        req,
        &format!("{cid}.bin"),
        &format!("\"{cid}.raw\""),
        &resolved,
    );
    Ok(resp)
}

/// `format=car`: a CARv1 stream.
pub(super) async fn car(
    content: &Reader,
    req: &Request,
    params: CarParams,
) -> Result<Response, GatewayError> {
    let store = content.clone();
    let path = req.path.clone();
    // Resolve first, so a missing root or path answers 404 before any byte is sent, and a
    // byte range wholly past the end of a file 400.
    let resolved = tokio::task::spawn_blocking(move || {
        let src: &dyn BlockSource = &store;
        let r = resolve(src, &path)?;
        src.get(&r.cid)?.ok_or(Error::NotFound(r.cid))?;
        if let Some(b) = params.bytes
            && matches!(r.cid.codec(), DAG_PB | RAW)
            && let Node::File { size } = export::stat(src, &r.cid)?
            && b.past_the_end(size)
        {
            return Err(GatewayError::bad_request(format!(
                "entity-bytes starts at {} but {} is {size} bytes long",
                b.from, r.cid
            )));
        }
        Ok::<_, GatewayError>(r)
    })
    .await??;
    let root = req.path.root;
    let key = format!("{}|{}", req.path, params.tag());
    let digest = cids::sha256(key.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("W/\"{root}.car.{hex}\"");
    let body = if req.bodiless(&etag) {
        Body::empty()
    } else {
        let store = content.clone();
        let path = req.path.clone();
        blocking_body(move |w| {
            let mut w = SendFirstAtOnce::new(w);
            write_car(&store, &path, params, &mut w).map_err(|e| e.to_string())
        })
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(params.content_type()),
    );
    // Byte ranges of a CAR are not served: `entity-bytes` is the verifiable way.
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    trustless_headers(h, req, &format!("{root}.car"), &etag, &resolved);
    Ok(resp)
}

/// A block source that writes every block it hands out into the CAR, in the order asked
/// for: each block once, or (`dups`) every time it is asked for. Identity blocks are
/// handed out but never written.
struct Emitter<'a, W: Write> {
    src: &'a dyn BlockSource,
    car: RefCell<CarWriter<W>>,
    sent: RefCell<HashSet<Cid>>,
    dups: bool,
}

impl<W: Write> BlockSource for Emitter<'_, W> {
    fn get(&self, cid: &Cid) -> kiln_core::Result<Option<Vec<u8>>> {
        let data = self.src.get(cid)?;
        if let Some(d) = &data
            && cids::identity_data(cid).is_none()
            && (self.sent.borrow_mut().insert(*cid) || self.dups)
        {
            self.car.borrow_mut().write_block(cid, d)?;
        }
        Ok(data)
    }
}

/// Write the CAR for `path`: the blocks walked to reach its end, then what `params`
/// selects under it, depth first. Every block is fetched through the emitter exactly as
/// often as the walk meets it (decisions that need a block a second time read the store
/// directly), so with `dups` the CAR holds each occurrence, in walk order.
pub(crate) fn write_car(
    src: &dyn BlockSource,
    path: &ContentPath,
    params: CarParams,
    w: &mut dyn Write,
) -> kiln_core::Result<()> {
    let em = Emitter {
        src,
        car: RefCell::new(CarWriter::new(w, &[path.root])?),
        sent: RefCell::new(HashSet::new()),
        dups: params.dups,
    };
    let mut cur = path.root;
    for seg in &path.segments {
        cur = export::lookup(&em, &cur, seg)?;
    }
    let need = |cid: &Cid| em.get(cid)?.ok_or(Error::NotFound(*cid));
    match params.scope {
        Scope::Block => {
            need(&cur)?;
        }
        Scope::Entity if cur.codec() != DAG_PB => {
            need(&cur)?;
        }
        Scope::Entity => match export::stat(src, &cur)? {
            Node::File { size } => match params.bytes.map_or((0, size), |b| b.window(size)) {
                // No bytes selected: the file's root alone (as dag-scope=block).
                (start, end) if start == end && size > 0 => {
                    need(&cur)?;
                }
                (start, end) => {
                    export::read_file(&em, &cur, start, Some(end - start), &mut std::io::sink())?;
                }
            },
            Node::Directory { sharded: true } => {
                export::list(&em, &cur)?;
            }
            Node::Directory { sharded: false } | Node::Symlink { .. } => {
                need(&cur)?;
            }
        },
        Scope::All => {
            let mut seen = HashSet::new();
            let mut stack = vec![cur];
            while let Some(c) = stack.pop() {
                if !params.dups && !seen.insert(c) {
                    continue;
                }
                let data = need(&c)?;
                stack.extend(kiln_core::links::links_of(&c, &data)?.into_iter().rev());
            }
        }
    }
    em.car.into_inner().finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_bytes() {
        let w = |s: &str, size| EntityBytes::parse(s).unwrap().window(size);
        assert_eq!(w("0:*", 100), (0, 100));
        assert_eq!(w("10:19", 100), (10, 20));
        assert_eq!(w("-10:*", 100), (90, 100));
        assert_eq!(w("-10:-1", 100), (90, 100));
        assert_eq!(w("50:1000", 100), (50, 100));
        assert_eq!(w("200:*", 100), (100, 100));
        assert_eq!(w("-500:10", 100), (0, 11));
        for bad in ["", "1", "a:b", "5:1", "-1:-5", "1:x"] {
            assert!(EntityBytes::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entity_bytes_imply_the_entity_scope() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let p = |pairs: &[(&str, &str)]| CarParams::from_query(&q(pairs), false);
        assert_eq!(p(&[]).unwrap().scope, Scope::All);
        assert_eq!(p(&[("entity-bytes", "0:9")]).unwrap().scope, Scope::Entity);
        let both = p(&[("dag-scope", "entity"), ("entity-bytes", "0:9")]).unwrap();
        assert_eq!(both, p(&[("entity-bytes", "0:9")]).unwrap());
        for scope in ["block", "all"] {
            let e = p(&[("dag-scope", scope), ("entity-bytes", "0:9")]).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{scope}");
        }
        // Etags: every scope, range and duplicate setting is a different tag.
        let dups = CarParams::from_query(&q(&[]), true).unwrap();
        assert_ne!(dups.tag(), p(&[]).unwrap().tag());
        assert_ne!(
            p(&[("entity-bytes", "0:9")]).unwrap().tag(),
            p(&[("entity-bytes", "0:10")]).unwrap().tag()
        );
        assert_eq!(
            dups.content_type(),
            "application/vnd.ipld.car; version=1; order=dfs; dups=y"
        );
    }

    #[test]
    fn ranges_past_the_end() {
        let past = |s: &str, size| EntityBytes::parse(s).unwrap().past_the_end(size);
        assert!(past("100:*", 100));
        assert!(past("500:600", 100));
        assert!(!past("99:*", 100));
        assert!(!past("0:*", 0));
        assert!(!past("-500:*", 100));
        assert!(past("1:*", 0));
    }
}
