//! Response bodies produced by blocking code (store reads) and streamed as they are made.

use axum::body::{Body, Bytes};
use kiln_node::content::Reader;
use std::io::Write;
use tokio::sync::mpsc;

/// A `Write` that hands 256 KiB pieces to an async body.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const PIECE: usize = 256 << 10;

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Run `produce` on the blocking pool, streaming what it writes. An error after the first
/// bytes ends the stream early (the client sees a truncated body) and is logged.
pub fn blocking_body<F>(produce: F) -> Body
where
    F: FnOnce(&mut dyn Write) -> Result<(), String> + Send + 'static,
{
    // Two pieces in flight per stream: enough to keep the socket busy, and bounded memory
    // when many clients download at once.
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(PIECE),
        };
        let result = produce(&mut w).and_then(|()| w.flush().map_err(|e| e.to_string()));
        if let Err(e) = result {
            tracing::warn!("stream ended early: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// A blocking `Read` over body pieces arriving from the async side (an upload streamed into
/// blocking store work); end of input when the sender is dropped.
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl ChannelReader {
    /// Read what arrives on `rx`.
    pub fn new(rx: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// The blocks a reader (kiln-node's) can read that are in the store's memory cache, as a
/// [`BlockSource`]; any other block is an error, and is noted so the caller can retry
/// against the reader itself.
pub(crate) struct CachedOnly<'a> {
    store: &'a Reader,
    missed: std::cell::Cell<bool>,
}

impl<'a> CachedOnly<'a> {
    pub(crate) fn new(store: &'a Reader) -> Self {
        CachedOnly {
            store,
            missed: std::cell::Cell::new(false),
        }
    }

    /// Did a lookup need a block that is not in memory?
    pub(crate) fn missed(&self) -> bool {
        self.missed.get()
    }
}

impl kiln_core::BlockSource for CachedOnly<'_> {
    fn get(&self, cid: &kiln_core::Cid) -> kiln_core::Result<Option<Vec<u8>>> {
        match self.store.get_cached(cid) {
            Some(d) => Ok(Some(d)),
            None => {
                self.missed.set(true);
                Err(kiln_core::Error::Io {
                    context: format!("block {cid}"),
                    source: std::io::Error::other("not in the memory cache"),
                })
            }
        }
    }
}

/// Run `f` over a reader's blocks: first inline over the cached blocks alone (hot content
/// is answered without a hop to the blocking pool), and, if that needed a block that is not
/// in memory, again on the blocking pool against the reader. `f` must not have side effects
/// beyond its result, since it may run twice.
pub(crate) async fn with_blocks<T, E, F>(
    store: &Reader,
    f: F,
) -> Result<Result<T, E>, tokio::task::JoinError>
where
    T: Send + 'static,
    E: Send + 'static,
    F: Fn(&dyn kiln_core::BlockSource) -> Result<T, E> + Send + 'static,
{
    {
        let fast = CachedOnly::new(store);
        let r = f(&fast);
        if !fast.missed() {
            return Ok(r);
        }
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store)).await
}

/// Bodies up to this size whose blocks are all in memory are made inline.
const INLINE_BODY: u64 = 256 << 10;

/// A body written by `produce` from a reader's blocks: made at once when it is at most
/// 256 KiB (`len`) and every block it needs is cached, else streamed from the blocking pool
/// as [`blocking_body`] does.
pub(crate) fn store_body<F>(store: &Reader, len: u64, produce: F) -> Body
where
    F: Fn(&dyn kiln_core::BlockSource, &mut dyn Write) -> Result<(), String> + Send + 'static,
{
    if len <= INLINE_BODY {
        let fast = CachedOnly::new(store);
        let mut out = Vec::with_capacity(len as usize);
        if produce(&fast, &mut out).is_ok() && !fast.missed() {
            return Body::from(out);
        }
    }
    let store = store.clone();
    blocking_body(move |w| produce(&store, w))
}

/// Run `f` on the store from the blocking pool; a task that panicked or was cancelled
/// becomes the caller's error type.
pub(crate) async fn on_store<T, E>(
    store: &kiln_store::Store,
    f: impl FnOnce(&kiln_store::Store) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<tokio::task::JoinError> + Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store)).await?
}

/// A streamed answer of newline-delimited JSON: each value sent on `rx` becomes a line as
/// soon as it is made (Kubo's streaming outputs, `X-Chunked-Output: 1`).
pub(crate) fn ndjson_stream(rx: mpsc::Receiver<serde_json::Value>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        let line = Bytes::from(format!("{v}\n"));
        Some((Ok::<_, std::convert::Infallible>(line), rx))
    }));
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-chunked-output",
        axum::http::HeaderValue::from_static("1"),
    );
    r
}
