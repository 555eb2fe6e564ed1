//! `get`: a streamed GetObject whose body is watched while it is read.
//!
//! The request (up to the response headers) is retried like any other. The body is then
//! streamed, never buffered whole: a body that yields no bytes for `request_timeout` fails
//! with [`StorageError::Unavailable`], and so does a body that ends short of (or runs past)
//! its Content-Length (WAL-G compat, format §1.6). The errors travel through the reader as
//! `io::Error`s made by [`into_io`], so [`crate::storage::read_error`] recovers them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::Stream;
use tokio::time::{Instant, Sleep};
use tokio_util::io::StreamReader;

use super::Inner;
use super::retry::{self, chain_text, seconds};
use crate::storage::{BoxReader, Key, StorageError, into_io};

/// Streams the object at `key`.
pub(super) async fn get(inner: &Inner, key: &Key) -> Result<BoxReader, StorageError> {
    let object = inner.object_key(key);
    let shown = key.as_str();
    let out = retry::run(
        &inner.retry,
        "get",
        shown,
        inner.request_timeout,
        || async {
            inner
                .client
                .get_object()
                .bucket(&inner.bucket)
                .key(&object)
                .send()
                .await
                .map_err(|e| inner.classify("get", shown, &e))
        },
    )
    .await?;
    let expected = out.content_length().and_then(|l| u64::try_from(l).ok());
    let body = WatchedBody::new(out.body, expected, inner.request_timeout, shown.to_string());
    Ok(Box::new(StreamReader::new(body)))
}

/// A body stream with an idle deadline and a length check.
struct WatchedBody {
    inner: ByteStream,
    idle_limit: Duration,
    idle: Pin<Box<Sleep>>,
    expected: Option<u64>,
    seen: u64,
    key: String,
    finished: bool,
}

impl WatchedBody {
    fn new(inner: ByteStream, expected: Option<u64>, idle_limit: Duration, key: String) -> Self {
        WatchedBody {
            inner,
            idle_limit,
            idle: Box::pin(tokio::time::sleep(idle_limit)),
            expected,
            seen: 0,
            key,
            finished: false,
        }
    }

    fn fail(&mut self, message: String) -> Poll<Option<std::io::Result<Bytes>>> {
        self.finished = true;
        Poll::Ready(Some(Err(into_io(StorageError::Unavailable {
            op: "get",
            key: self.key.clone(),
            message,
        }))))
    }
}

impl Stream for WatchedBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.seen += chunk.len() as u64;
                if let Some(expected) = this.expected.filter(|e| this.seen > *e) {
                    return this.fail(format!(
                        "body is longer than its content-length of {expected} bytes"
                    ));
                }
                let deadline = Instant::now() + this.idle_limit;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.fail(format!("body stream failed: {}", chain_text(&e)))
            }
            Poll::Ready(None) => match this.expected {
                Some(expected) if this.seen != expected => {
                    let seen = this.seen;
                    this.fail(format!("body ended after {seen} of {expected} bytes"))
                }
                _ => {
                    this.finished = true;
                    Poll::Ready(None)
                }
            },
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_ready() {
                    let limit = seconds(this.idle_limit);
                    return this.fail(format!("no data received for {limit}"));
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::read_error;
    use tokio::io::AsyncReadExt;

    async fn read_all(body: WatchedBody) -> Result<Vec<u8>, StorageError> {
        let mut reader = StreamReader::new(body);
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .await
            .map_err(|e| read_error("k", e))?;
        Ok(out)
    }

    #[tokio::test]
    async fn a_whole_body_passes() {
        let body = WatchedBody::new(
            ByteStream::from_static(b"hello"),
            Some(5),
            Duration::from_secs(1),
            "k".into(),
        );
        assert_eq!(read_all(body).await.ok().as_deref(), Some(&b"hello"[..]));
    }

    #[tokio::test]
    async fn a_short_or_long_body_is_unavailable() {
        let short = WatchedBody::new(
            ByteStream::from_static(b"hell"),
            Some(5),
            Duration::from_secs(1),
            "k".into(),
        );
        let err = read_all(short).await.err();
        assert!(
            err.as_ref().is_some_and(StorageError::is_unavailable),
            "{err:?}"
        );
        let long = WatchedBody::new(
            ByteStream::from_static(b"hello!"),
            Some(5),
            Duration::from_secs(1),
            "k".into(),
        );
        let err = read_all(long).await.err();
        assert!(
            err.as_ref().is_some_and(StorageError::is_unavailable),
            "{err:?}"
        );
    }
}
