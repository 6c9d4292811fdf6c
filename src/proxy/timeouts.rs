//! Timeouts of the phases a client controls (SPEC §4 "Timeouts and limits").
//!
//! - [`BodyReadTimeout`]: a request body that stalls — no bytes for the
//!   body read timeout — fails with [`BodyStalled`]; the front door answers
//!   408 and closes the connection (nginx's `client_body_timeout`).
//! - [`SendTimeout`]: a client that stops reading our response — one write
//!   blocked for the send timeout — has its connection closed (nginx's
//!   `send_timeout`). It wraps the client's socket, so it covers responses,
//!   HTTP/2 and upgraded connections alike.
//!
//! The request-header timeout is hyper's own (`header_read_timeout`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The error of a request body that stalled.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body bytes for {}s", .0.as_secs_f64())]
pub struct BodyStalled(pub Duration);

/// A request body whose every frame must arrive within `limit` of the
/// previous one (or of the first poll).
pub struct BodyReadTimeout<B> {
    inner: B,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<B> BodyReadTimeout<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<B> Body for BodyReadTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = Instant::now() + this.limit;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled(this.limit))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an error (or one of its sources) is a stalled request body.
pub fn is_body_stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyStalled>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A client socket whose writes may not stay blocked longer than `limit`.
pub struct SendTimeout<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is blocked.
    blocked: Option<Pin<Box<Sleep>>>,
}

impl<S> SendTimeout<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            blocked: None,
        }
    }

    fn poll_blocked<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match result {
            Poll::Ready(r) => {
                self.blocked = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self.blocked.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client read nothing for {}s", limit.as_secs_f64()),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendTimeout<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendTimeout<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.poll_blocked(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.poll_blocked(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.poll_blocked(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_limit() {
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(4);
        tx.send_data(Bytes::from_static(b"hello")).await.unwrap();
        let timed = BodyReadTimeout::new(body, Duration::from_secs(5));
        let Err(err) = timed.collect().await else {
            panic!("the stalled body must fail");
        };
        assert!(is_body_stalled(err.as_ref()), "{err}");
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_is_read_whole() {
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(4);
        tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                tx.send_data(Bytes::from_static(b"ab")).await.unwrap();
            }
        });
        let timed = BodyReadTimeout::new(body, Duration::from_secs(5));
        let all = timed.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"ababababab");
    }
}
