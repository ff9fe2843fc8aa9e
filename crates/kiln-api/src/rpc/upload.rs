//! Multipart uploads whose end is read before the answer goes out.
//!
//! A client streaming a body (chunked) writes its last part, then the closing boundary, then
//! the end of the chunked body. The multipart parser stops at the closing boundary; if the
//! handler answers then — at once, when the upload failed — hyper finds the request body not
//! finished, reads what has arrived, and closes the connection. A client still writing the
//! chunked end then gets a broken pipe instead of the answer (seen: `kiln dag import` of a
//! bad CAR through the daemon failing with "error writing a body to connection", now and
//! then). [`Upload`] keeps a handle on the raw body under the parser, and [`Tail::finish`]
//! reads what is left of it — a little, for a little while — once the parts are drained.

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

/// The most bytes read after the closing boundary (the epilogue is normally two bytes).
const TAIL_BYTES: usize = 64 << 10;
/// The longest the end of the body is waited for.
const TAIL_WAIT: Duration = Duration::from_secs(2);

type Shared = Arc<Mutex<Option<BodyDataStream>>>;

/// The raw body under a [`Multipart`], to read to its end.
pub(crate) struct Tail(Shared);

/// A multipart body and its [`Tail`].
pub(crate) struct Upload(pub Multipart, pub Tail);

struct SharedStream(Shared);

impl Stream for SharedStream {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match inner.as_mut() {
            Some(s) => s.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = axum::extract::multipart::MultipartRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let shared: Shared = Arc::new(Mutex::new(Some(body.into_data_stream())));
        let body = Body::from_stream(SharedStream(shared.clone()));
        let m = Multipart::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Upload(m, Tail(shared)))
    }
}

impl Tail {
    /// Read what is left of the body (after the parts are drained): up to [`TAIL_BYTES`],
    /// for up to [`TAIL_WAIT`]. A body that goes on past that is left unread (hyper then
    /// closes the connection, as it would have). How many bytes it read.
    pub(crate) async fn finish(self) -> usize {
        let Some(mut rest) = self.0.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return 0;
        };
        let mut n = 0;
        let read = async {
            while let Some(Ok(chunk)) = rest.next().await {
                n += chunk.len();
                if n > TAIL_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(TAIL_WAIT, read).await;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_follows_the_closing_boundary_is_read_by_the_tail() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let parts = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nhello\r\n--b--";
        tx.send(Ok(Bytes::from(parts))).await.unwrap();
        let req = Request::builder()
            .method("POST")
            .header("content-type", "multipart/form-data; boundary=b")
            .body(Body::from_stream(stream))
            .unwrap();
        let Upload(mut m, tail) = Upload::from_request(req, &()).await.unwrap();
        let field = m.next_field().await.unwrap().unwrap();
        assert_eq!(field.bytes().await.unwrap(), "hello");
        assert!(m.next_field().await.unwrap().is_none());
        // The rest arrives after the parser is done: the tail reads it, to the end.
        tx.send(Ok(Bytes::from_static(b"\r\nlast"))).await.unwrap();
        drop(tx);
        assert_eq!(tail.finish().await, 6);
    }
}
