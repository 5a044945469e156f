//! An object read as a byte stream and handed to a synchronous parser on the blocking pool, so a
//! large identity export is never held whole in memory: at most [`CHUNKS_IN_FLIGHT`] chunks of
//! it are buffered between the store and the CSV / JSONL reader.

use std::io::{self, Read};

use bytes::{Buf, Bytes};
use futures::StreamExt;
use tokio::sync::mpsc;

/// Chunks buffered between the store and the parser. object_store yields chunks of at most a
/// few MiB (a local file: 8 KiB; S3: what the connection delivers), so this bounds the raw bytes
/// in memory to a few MiB whatever the file size.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Why the pump stopped before the end of the object.
#[derive(Debug)]
pub(crate) enum PumpError {
    /// The store failed mid-read.
    Store(object_store::Error),
    /// More bytes arrived than the cap allows (the object grew, or its size was not reported).
    TooLarge,
}

/// A [`Read`] over the chunks the pump sends. Blocking: only for `spawn_blocking` threads.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    /// Whether a byte other than ASCII whitespace has been read, to tell an empty export apart.
    pub(crate) saw_content: bool,
}

impl ChannelReader {
    /// Read the rest of the stream, noting whether it holds anything but whitespace (used only
    /// after a parse failed, to name an empty file as such).
    pub(crate) fn drain(&mut self) {
        let mut buf = [0u8; 8192];
        while !self.saw_content {
            match self.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.current = chunk?,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        if !self.saw_content {
            self.saw_content = buf[..n].iter().any(|b| !b.is_ascii_whitespace());
        }
        Ok(n)
    }
}

/// Start copying `stream` into a [`ChannelReader`]. The returned task ends when the stream ends,
/// the reader is dropped (the parser stopped early) or the stream fails or passes `cap` bytes;
/// its result says which, and a failure also reaches the reader as an I/O error so the parser
/// stops.
pub(crate) fn pump(
    mut stream: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    cap: u64,
) -> (ChannelReader, tokio::task::JoinHandle<Result<(), PumpError>>) {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let task = tokio::spawn(async move {
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let failure = match chunk {
                Ok(chunk) => {
                    total += chunk.len() as u64;
                    if total <= cap {
                        if tx.send(Ok(chunk)).await.is_err() {
                            return Ok(()); // the parser is done with the file
                        }
                        continue;
                    }
                    PumpError::TooLarge
                }
                Err(e) => PumpError::Store(e),
            };
            let _ = tx.send(Err(io::Error::other("the read of the file failed"))).await;
            return Err(failure);
        }
        Ok(())
    });
    (ChannelReader { rx, current: Bytes::new(), saw_content: false }, task)
}
