//! Streaming an object into storage from a blocking producer (file reading, tar, compression)
//! through a bounded pipe, with the upload running at the same time.

use std::io;
use std::sync::Arc;

use anyhow::Context as _;

use crate::storage::{Key, Storage};
use crate::util::pipe::{PipeWriter, pipe};

const CHUNK: usize = 256 * 1024;
/// Chunks in flight between producer and upload: bounds the memory of one stream.
const CHUNKS: usize = 4;

/// Runs `produce` on a blocking thread, writing into a pipe that `storage.put` reads from, and
/// returns what `produce` returned once the object is stored. `produce` must call
/// [`PipeWriter::finish`]; if it fails or stops early the upload fails too, so a truncated
/// object is never stored. `what` names the source in errors.
pub async fn stream_to_storage<T, F>(
    storage: &Arc<dyn Storage>,
    key: &Key,
    what: &str,
    produce: F,
) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce(PipeWriter) -> io::Result<T> + Send + 'static,
{
    let (writer, reader) = pipe(CHUNK, CHUNKS);
    let producer = tokio::task::spawn_blocking(move || produce(writer));
    let (stored, produced) = tokio::join!(storage.put(key, Box::new(reader), None), producer);
    let produced = produced.context("producer task failed")?;
    match (stored, produced) {
        (Ok(()), Ok(value)) => Ok(value),
        // The upload stopped first: its error is the cause; the producer only saw a closed pipe.
        (Err(e), Err(p)) if p.kind() == io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context(format!("uploading '{key}'")))
        }
        (_, Err(p)) => Err(anyhow::Error::new(p).context(format!("{what} for '{key}'"))),
        (Err(e), Ok(_)) => Err(anyhow::Error::new(e).context(format!("uploading '{key}'"))),
    }
}
