//! The accept loop: HTTP/1.1 and HTTP/2 on a bound listener, with the connection-level
//! protections a public listener needs.
//!
//! - at most `max_connections` open connections; past that, new ones wait in the kernel's
//!   backlog instead of exhausting file descriptors;
//! - request heads larger than `max_header_bytes` are refused (431) and must arrive within
//!   `header_timeout` (slow-loris heads are dropped);
//! - a connection on which no byte moves in either direction for `idle_timeout` is closed
//!   (idle keep-alive connections, stalled uploads, clients that stop reading a download);
//! - on shutdown the listener closes at once, requests in flight finish, idle keep-alive
//!   connections are closed, and the function returns when every connection is gone.

use crate::Limits;
use crate::auth::Peer;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tower::ServiceExt;

/// A bound listener: TCP, or the repository's Unix socket (whose peers are told apart by
/// their credentials: the daemon's own user is the local administrator).
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A TCP listener whose connections speak TLS.
    Tls(TcpListener, crate::tls::Tls),
    /// A Unix socket listener.
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener::Unix(l)
    }
}

/// The address a Unix socket peer is counted under by the per-address limits.
const UNIX_PEER: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0);

impl Listener {
    async fn accept(&self) -> std::io::Result<(Conn, std::net::SocketAddr, Peer)> {
        match self {
            Listener::Tcp(l) | Listener::Tls(l, _) => {
                let (s, a) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Conn::Tcp(s), a, Peer::Tcp(a)))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept().await?;
                // SAFETY: geteuid has no preconditions.
                let me = unsafe { libc::geteuid() };
                let owner = s.peer_cred().is_ok_and(|c| c.uid() == me);
                Ok((Conn::Unix(s), UNIX_PEER, Peer::Unix { owner }))
            }
        }
    }

    /// The TLS its connections speak, if any.
    fn tls(&self) -> Option<crate::tls::Tls> {
        match self {
            Listener::Tls(_, t) => Some(t.clone()),
            Listener::Tcp(_) | Listener::Unix(_) => None,
        }
    }
}

/// An accepted connection.
enum Conn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Unix(UnixStream),
}

macro_rules! both {
    ($self:expr, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Conn::Tcp($s) => $e,
            Conn::Tls($s) => $e,
            Conn::Unix($s) => $e,
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        both!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        both!(self, s => Pin::new(s).poll_write(cx, data))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        both!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Tcp(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
            Conn::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        both!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        both!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// A stream that records when bytes last moved.
struct Watched {
    inner: Conn,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Completes once nothing has moved on the connection for `idle`.
async fn idle_for(start: Instant, last: Arc<AtomicU64>, idle: Duration) {
    loop {
        let quiet = start
            .elapsed()
            .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
        if quiet >= idle {
            return;
        }
        tokio::time::sleep(idle - quiet + Duration::from_millis(10)).await;
    }
}

/// Accept errors that pass (the peer gave up, or descriptors ran out for a moment).
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(libc_codes::EMFILE | libc_codes::ENFILE | libc_codes::ENOBUFS | libc_codes::ENOMEM)
    )
}

/// The errno values of descriptor and memory exhaustion (Linux).
mod libc_codes {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

/// Serve `router` on `listener` until `shutdown` completes; see the module docs.
pub async fn serve(
    listener: Listener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes.max(8192) as u32)
        .max_concurrent_streams(limits.per_ip_concurrency.max(1) as u32);
    let builder = Arc::new(builder);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let per_ip = Arc::new(crate::limits::InFlight::new(limits.per_ip_concurrency));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let tls = listener.tls();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer, via) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) if transient(&e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
            () = &mut shutdown => break,
        };
        let start = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        let app = router.clone();
        let counter = per_ip.counter(peer.ip());
        let (limiter, in_flight, release_to) = (per_ip.clone(), counter.clone(), per_ip.clone());
        let over_tls = tls.is_some();
        // Requests over the address's in-flight limit get 429 without running.
        let service = tower::service_fn(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                let slot = limiter.enter(&in_flight);
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(via);
                if over_tls {
                    req.extensions_mut().insert(crate::tls::OverTls);
                }
                let call = app.clone().oneshot(req.map(axum::body::Body::new));
                async move {
                    let Some(_slot) = slot else {
                        tracing::debug!(ip = %peer.ip(), "per-IP concurrency limit reached");
                        return Ok(crate::limits::too_many());
                    };
                    call.await
                }
            },
        );
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        let (idle, handshake_within) = (limits.idle_timeout, limits.header_timeout);
        tokio::spawn(async move {
            // A TLS connection's handshake happens here, off the accept loop, within the
            // time a client has to send a request head.
            let stream = match (tls, stream) {
                (Some(tls), Conn::Tcp(tcp)) => {
                    match tokio::time::timeout(handshake_within, tls.acceptor().accept(tcp)).await {
                        Ok(Ok(s)) => Conn::Tls(Box::new(s)),
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake: {e}");
                            release_to.release(peer.ip(), counter);
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            release_to.release(peer.ip(), counter);
                            return;
                        }
                    }
                }
                (_, s) => s,
            };
            let io = TokioIo::new(Watched {
                inner: stream,
                start,
                last: last.clone(),
            });
            let conn = builder
                .serve_connection_with_upgrades(io, TowerToHyperService::new(service))
                .into_owned();
            let conn = watcher.watch(conn);
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, "connection: {e}");
                    }
                }
                () = idle_for(start, last, idle) => {
                    tracing::debug!(%peer, "closing idle connection");
                }
            }
            release_to.release(peer.ip(), counter);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
