//! A response body wrapper that cuts or stalls the body after some bytes.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Sleep;

/// How long the cut body waits before failing, so that hyper flushes the bytes
/// sent so far before it closes the connection.
const FLUSH_GRACE: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) enum AfterLimit {
    /// Fail the body: hyper closes the connection.
    Cut,
    /// Send nothing more, forever, with the connection open.
    Stall,
}

#[derive(Debug)]
enum Phase {
    Passing,
    Waiting(Pin<Box<Sleep>>),
    Stalled,
    Failed,
}

/// Passes `remaining` bytes of the inner body through, then cuts or stalls.
/// The size hint stays the inner one, so `Content-Length` announces the whole body.
#[derive(Debug)]
pub(crate) struct LimitedBody {
    inner: Body,
    remaining: u64,
    after: AfterLimit,
    phase: Phase,
}

impl LimitedBody {
    pub(crate) fn new(inner: Body, after_bytes: u64, after: AfterLimit) -> Self {
        Self {
            inner,
            remaining: after_bytes,
            after,
            phase: Phase::Passing,
        }
    }

    fn limit_reached(&mut self) {
        self.phase = match self.after {
            AfterLimit::Cut => Phase::Waiting(Box::pin(tokio::time::sleep(FLUSH_GRACE))),
            AfterLimit::Stall => Phase::Stalled,
        };
    }
}

#[derive(Debug, thiserror::Error)]
#[error("body cut by an injected fault")]
pub(crate) struct BodyCut;

impl HttpBody for LimitedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            match &mut this.phase {
                Phase::Failed => return Poll::Ready(None),
                Phase::Stalled => return Poll::Pending,
                Phase::Waiting(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    this.phase = Phase::Failed;
                    return Poll::Ready(Some(Err(Box::new(BodyCut))));
                }
                Phase::Passing if this.remaining == 0 => this.limit_reached(),
                Phase::Passing => {
                    let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                        None => return Poll::Ready(None),
                        Some(Err(e)) => return Poll::Ready(Some(Err(Box::new(e)))),
                        Some(Ok(frame)) => frame,
                    };
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(other) => return Poll::Ready(Some(Ok(other))),
                    };
                    let len = data.len() as u64;
                    if len <= this.remaining {
                        this.remaining -= len;
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    let keep = usize::try_from(this.remaining).unwrap_or(usize::MAX);
                    let head = data.slice(..keep);
                    this.remaining = 0;
                    this.limit_reached();
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.phase, Phase::Failed)
            || (matches!(self.phase, Phase::Passing) && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_first_bytes_then_fails() {
        let mut body = LimitedBody::new(Body::from("hello world"), 5, AfterLimit::Cut);
        assert_eq!(body.size_hint().exact(), Some(11));
        let mut body = Pin::new(&mut body);
        let first = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"hello"));
        let second = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))
            .await
            .unwrap();
        assert!(second.is_err());
    }

    #[tokio::test]
    async fn a_limit_past_the_end_changes_nothing() {
        let mut body = LimitedBody::new(Body::from("hi"), 50, AfterLimit::Cut);
        let mut body = Pin::new(&mut body);
        let first = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"hi"));
        assert!(
            std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))
                .await
                .is_none()
        );
    }
}
