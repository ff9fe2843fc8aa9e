//! Trustless responses: the one block a path names (`format=raw`), or a CARv1
//! (`format=car`) holding the blocks needed to walk the path, then the named DAG cut by
//! `dag-scope` and `entity-bytes`. Depth-first, each block once, never identity blocks.

use super::{
    GatewayError, Request, SendFirstAtOnce, content_disposition, immutable_headers, resolve,
};
use crate::AppState;
use crate::stream::blocking_body;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kiln_core::car::CarWriter;
use kiln_core::cids::{self, ContentPath, DAG_PB};
use kiln_core::export::{self, Node};
use kiln_core::{BlockSource, Cid, Error};
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
#[derive(Debug, Clone, Copy)]
pub(crate) struct CarParams {
    scope: Scope,
    bytes: Option<EntityBytes>,
}

impl CarParams {
    pub(super) fn from_query(q: &HashMap<String, String>) -> Result<CarParams, GatewayError> {
        let scope = match q.get("dag-scope").map(String::as_str) {
            None | Some("all") => Scope::All,
            Some("entity") => Scope::Entity,
            Some("block") => Scope::Block,
            Some(other) => {
                return Err(GatewayError::bad_request(format!(
                    "unsupported dag-scope {other:?} (block, entity or all)"
                )));
            }
        };
        let bytes = q
            .get("entity-bytes")
            .map(|s| EntityBytes::parse(s))
            .transpose()?;
        Ok(CarParams { scope, bytes })
    }

    /// A tag for the Etag: differs for every scope and byte range.
    fn tag(&self) -> String {
        let scope = match self.scope {
            Scope::Block => "block",
            Scope::Entity => "entity",
            Scope::All => "all",
        };
        match self.bytes {
            None => scope.to_string(),
            Some(b) => format!(
                "{scope}.{}:{}",
                b.from,
                b.to.map_or("*".to_string(), |t| t.to_string())
            ),
        }
    }
}

fn store_of(s: &AppState) -> kiln_store::Store {
    s.store.clone()
}

/// `format=raw`: one block.
pub(super) async fn raw(s: &AppState, req: &Request) -> Result<Response, GatewayError> {
    let store = store_of(s);
    let path = req.path.clone();
    let (resolved, data) = tokio::task::spawn_blocking(move || {
        let src: &dyn BlockSource = &store;
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
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.ipld.raw"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(v) = content_disposition("attachment", &format!("{cid}.bin")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    immutable_headers(h, &format!("\"{cid}.raw\""), &resolved);
    Ok(resp)
}

/// `format=car`: a CARv1 stream.
pub(super) async fn car(
    s: &AppState,
    req: &Request,
    params: CarParams,
) -> Result<Response, GatewayError> {
    let store = store_of(s);
    let path = req.path.clone();
    // Resolve first, so a missing root or path answers 404 before any byte is sent.
    let resolved = tokio::task::spawn_blocking(move || {
        let src: &dyn BlockSource = &store;
        let r = resolve(src, &path)?;
        src.get(&r.cid)?.ok_or(Error::NotFound(r.cid))?;
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
        let store = store_of(s);
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
        HeaderValue::from_static("application/vnd.ipld.car; version=1; order=dfs; dups=n"),
    );
    if let Some(v) = content_disposition("attachment", &format!("{root}.car")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    immutable_headers(h, &etag, &resolved);
    Ok(resp)
}

/// A block source that writes every block it hands out into the CAR, once, in the order
/// asked for; identity blocks are handed out but never written.
struct Emitter<'a, W: Write> {
    src: &'a dyn BlockSource,
    car: RefCell<CarWriter<W>>,
    sent: RefCell<HashSet<Cid>>,
}

impl<W: Write> BlockSource for Emitter<'_, W> {
    fn get(&self, cid: &Cid) -> kiln_core::Result<Option<Vec<u8>>> {
        let data = self.src.get(cid)?;
        if let Some(d) = &data
            && cids::identity_data(cid).is_none()
            && self.sent.borrow_mut().insert(*cid)
        {
            self.car.borrow_mut().write_block(cid, d)?;
        }
        Ok(data)
    }
}

/// Write the CAR for `path`: the blocks walked to reach its end, then what `params`
/// selects under it.
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
        Scope::Entity => match export::stat(&em, &cur)? {
            Node::File { size } => {
                let (start, end) = params.bytes.map_or((0, size), |b| b.window(size));
                export::read_file(&em, &cur, start, Some(end - start), &mut std::io::sink())?;
            }
            Node::Directory { sharded: true } => {
                export::list(&em, &cur)?;
            }
            Node::Directory { sharded: false } | Node::Symlink { .. } => {}
        },
        Scope::All => {
            let mut seen = HashSet::new();
            let mut stack = vec![cur];
            while let Some(c) = stack.pop() {
                if !seen.insert(c) {
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
}
