//! Runs an export writer off the async executor and streams what it writes.
//!
//! The writer runs on a blocking thread and writes into a [`ChunkWriter`], which hands chunks
//! of about 64 KiB to the response through a channel of a few chunks: a slow client makes the
//! writer wait (back-pressure) instead of the server buffering the file, and a client that goes
//! away stops the writer at its next chunk. Database work, CSV and XLSX encoding and
//! compression all happen on that thread, so several exports at once never stall the workers
//! that answer pushes and reads.

use std::io::{self, Write};

use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

/// Bytes per chunk sent to the client.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks waiting for the client, at most: bounds an export's memory to about 0.5 MiB.
const CHANNEL_CHUNKS: usize = 8;

/// A `Write` that sends what it gets to the response, chunk by chunk.
pub struct ChunkWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    /// Sends what is buffered now: writers flush after each page, so the first bytes leave
    /// as soon as the first page is written.
    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

/// Starts `produce` on a blocking thread and returns the stream of what it writes. An error
/// of `produce` is logged and ends the stream with an error, so that the client sees a broken
/// download rather than a file that looks complete.
pub fn stream_blocking<F>(what: &'static str, produce: F) -> impl Stream<Item = io::Result<Bytes>>
where
    F: FnOnce(&mut ChunkWriter) -> anyhow::Result<()> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    let span = tracing::Span::current();
    // The task is detached: it ends when the export is written or the client went away.
    drop(actix_web::rt::task::spawn_blocking(move || {
        let _entered = span.enter();
        let started = std::time::Instant::now();
        let mut writer = ChunkWriter {
            sender: sender.clone(),
            buffer: Vec::with_capacity(CHUNK_BYTES),
        };
        let outcome = produce(&mut writer).and_then(|()| Ok(writer.flush()?));
        match outcome {
            Ok(()) => tracing::info!(
                export = what,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "export streamed"
            ),
            Err(error) if client_went_away(&error) => {
                tracing::info!(export = what, "the client stopped an export download")
            }
            Err(error) => {
                tracing::error!(export = what, error = ?error, "an export failed while streaming");
                let _ = sender.blocking_send(Err(io::Error::other(
                    "the export failed; the cause was logged by the service",
                )));
            }
        }
    }));
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

fn client_went_away(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
