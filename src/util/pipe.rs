//! A bounded pipe from a blocking producer (a compressor on a blocking thread) to an async
//! consumer (a storage upload).
//!
//! Unlike a plain channel or `tokio::io::duplex`, the end of the stream is explicit: the
//! reader sees EOF only after [`PipeWriter::finish`]. A producer that fails or is dropped
//! midway makes the reader fail, so an upload can never store a truncated object as if it
//! were complete.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

enum Msg {
    Data(Bytes),
    End,
    Error(io::Error),
}

/// The blocking end. Must be used from a blocking thread (`spawn_blocking`), never from async code.
pub struct PipeWriter {
    tx: mpsc::Sender<Msg>,
    buf: Vec<u8>,
    chunk: usize,
}

/// The async end.
pub struct PipeReader {
    rx: mpsc::Receiver<Msg>,
    current: Bytes,
    done: bool,
}

/// A pipe that holds at most `chunks` chunks of `chunk` bytes in flight (plus one being filled).
pub fn pipe(chunk: usize, chunks: usize) -> (PipeWriter, PipeReader) {
    let (tx, rx) = mpsc::channel(chunks.max(1));
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(chunk),
            chunk: chunk.max(1),
        },
        PipeReader {
            rx,
            current: Bytes::new(),
            done: false,
        },
    )
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the reading side of the pipe stopped",
    )
}

impl PipeWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk),
        ));
        self.tx.blocking_send(Msg::Data(data)).map_err(|_| closed())
    }

    /// Sends what is buffered and marks the end of the stream.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.tx.blocking_send(Msg::End).map_err(|_| closed())
    }

    /// Makes the reader fail with `err`.
    pub fn fail(self, err: io::Error) {
        let _ = self.tx.blocking_send(Msg::Error(err));
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.chunk {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.current.is_empty() {
                let n = self.current.len().min(out.remaining());
                let chunk = self.current.split_to(n);
                out.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Msg::Data(data))) => self.current = data,
                Poll::Ready(Some(Msg::End)) => self.done = true,
                Poll::Ready(Some(Msg::Error(err))) => return Poll::Ready(Err(err)),
                Poll::Ready(None) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the producer stopped before the end of the stream",
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn finished_stream_reads_whole() {
        let (mut w, mut r) = pipe(4, 2);
        let producer = tokio::task::spawn_blocking(move || {
            w.write_all(b"hello, pipe").unwrap();
            w.finish().unwrap();
        });
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        producer.await.unwrap();
        assert_eq!(out, b"hello, pipe");
    }

    #[tokio::test]
    async fn dropped_producer_is_an_error_not_eof() {
        let (mut w, mut r) = pipe(4, 2);
        tokio::task::spawn_blocking(move || {
            w.write_all(b"partial data").unwrap();
            drop(w);
        });
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn failed_producer_passes_its_error() {
        let (w, mut r) = pipe(4, 2);
        tokio::task::spawn_blocking(move || w.fail(io::Error::other("disk on fire")));
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).await.unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
    }
}
