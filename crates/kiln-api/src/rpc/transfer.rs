//! `get` (a tar stream of a file, directory or symlink tree) and `dag/import` (CAR files
//! in a multipart body, every block hash-checked, roots pinned).

use super::{Args, blocking, flag, ndjson, required, resolve};
use crate::archive;
use crate::stream::{ChannelReader, blocking_body};
use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kiln_core::export;
use kiln_store::PinMode;
use serde_json::json;
use tokio::sync::mpsc;

pub async fn get(
    State(s): State<AppState>,
    crate::auth::RpcCaller(caller): crate::auth::RpcCaller,
    q: Args,
) -> Result<Response, ApiError> {
    let path = required(&q)?.to_string();
    if flag(&q, "compress", false)? {
        return Err(ApiError::bad_request("compressed output is not supported"));
    }
    // Authorized before anything is read.
    let content = kiln_node::content::reader(&s.store, &caller)?;
    let (cid, name) = blocking(&s, move |st| {
        let cid = resolve(st, &path)?;
        export::stat(st, &cid)?;
        let name = path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        Ok((cid, name))
    })
    .await?;
    let name = if kiln_core::names::is_safe(&name) {
        name
    } else {
        cid.to_string()
    };
    let mut r =
        blocking_body(move |w| archive::write_tar(&content, &cid, &name, w)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    r.headers_mut()
        .insert("x-stream-output", HeaderValue::from_static("1"));
    Ok(r)
}

pub async fn dag_import(
    State(s): State<AppState>,
    crate::auth::RpcCaller(caller): crate::auth::RpcCaller,
    q: Args,
    super::upload::Upload(mut m, tail): super::upload::Upload,
) -> Result<Response, ApiError> {
    // Refused before a byte of the body is read.
    kiln_node::content::may_add(&caller)?;
    let pin_roots = flag(&q, "pin-roots", true)?;
    // kiln's extension: the roots' pins for another owner, named (`kiln rootfs import`).
    let pin = kiln_node::pins::pin_for(
        &caller,
        super::one(&q, "pin-owner"),
        PinMode::Recursive,
        super::one(&q, "pin-name"),
        super::one(&q, "pin-namespace"),
    )?;
    let action = kiln_node::content::import_action(&pin);
    let bad = ApiError::multipart;
    // Each part streams into the CAR reader on the blocking pool, block by block, so a CAR
    // of any size is imported in bounded memory.
    let (tx, mut parts) = mpsc::channel::<(String, mpsc::Receiver<Bytes>)>(1);
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let job = {
        let store = s.store.clone();
        let failed = failed.clone();
        tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
            let mut session = kiln_node::content::session(&store, &caller)?;
            let (mut roots, mut blocks, mut bytes, mut cars) = (Vec::new(), 0u64, 0u64, 0);
            while let Some((name, rx)) = parts.blocking_recv() {
                cars += 1;
                let reader = std::io::BufReader::with_capacity(1 << 20, ChannelReader::new(rx));
                let got = kiln_core::car::import(reader, &mut session).map_err(|e| {
                    let e = ApiError::from(e);
                    match name.as_str() {
                        "" => e,
                        n => ApiError::bad_request(format!("{n}: {}", e.message())),
                    }
                })?;
                roots.extend(got.roots);
                if roots.len() > kiln_core::car::MAX_ROOTS {
                    return Err(ApiError::bad_request(format!(
                        "the CARs of one request list more than {} roots",
                        kiln_core::car::MAX_ROOTS
                    )));
                }
                blocks += got.blocks;
                bytes += got.bytes;
            }
            if cars == 0 {
                return Err(ApiError::bad_request("file argument 'path' is required"));
            }
            if failed.load(std::sync::atomic::Ordering::SeqCst) {
                // The body broke part way: keep nothing (the feed's error is reported).
                return Ok((Vec::new(), 0, 0));
            }
            crate::metrics::blocks_added(session.blocks_written());
            kiln_node::content::commit(
                session,
                &caller,
                action,
                &roots,
                pin_roots.then_some(&pin),
            )?;
            Ok((roots, blocks, bytes))
        })
    };
    let feed = async {
        while let Some(mut field) = m.next_field().await.map_err(bad)? {
            let name = field.file_name().unwrap_or_default().to_string();
            let (ctx, crx) = mpsc::channel::<Bytes>(8);
            if tx.send((name, crx)).await.is_err() {
                return Ok(());
            }
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                if ctx.send(chunk).await.is_err() {
                    return Ok(());
                }
            }
        }
        Ok::<(), ApiError>(())
    };
    let fed = feed.await;
    if fed.is_err() {
        failed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    drop(tx);
    // Read the rest of the body, so the client, still sending, gets the answer.
    super::drain(&mut m).await;
    tail.finish().await;
    let result = job
        .await
        .map_err(|e| ApiError::internal(format!("import task failed: {e}")))?;
    // A broken body is its own error; a feed that stopped because the import failed
    // returns Ok, and the import's error explains it.
    fed?;
    let (roots, blocks, bytes) = result?;
    let mut lines: Vec<_> = if pin_roots {
        roots
            .iter()
            .map(|r| json!({"Root": {"Cid": {"/": r.to_string()}, "PinErrorMsg": ""}}))
            .collect()
    } else {
        Vec::new()
    };
    lines.push(json!({"Stats": {"BlockCount": blocks, "BlockBytesCount": bytes}}));
    Ok(ndjson(lines))
}
