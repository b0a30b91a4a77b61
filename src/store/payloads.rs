//! The body of a push, stored exactly as it was accepted, in chunks.
//!
//! A body is cut into chunks of [`CHUNK_BYTES`] (the last one shorter), each LZ4-compressed on
//! its own and stored as one row; the chunks of a run, in `seq` order, concatenate to the body.
//! So a push is written as it arrives and a run reads its records back one chunk at a time:
//! neither ever holds the whole body uncompressed, whatever its size.

use std::collections::VecDeque;
use std::io::{self, Read};

use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::store::models::PayloadChunkRow;
use crate::store::schema::sync_payload_chunks;
use crate::store::DbConn;

/// Bytes of body per chunk, before compression.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Where the compressed chunks of a body come from when it is stored: read again from the
/// start each time they are asked for, so that a transaction that is retried stores them
/// again.
pub trait PayloadChunks {
    /// Chunks in the body.
    fn chunk_count(&self) -> usize;
    /// Chunk `seq` (from 0), LZ4-compressed with its size prepended.
    fn compressed_chunk(&self, seq: usize) -> io::Result<Vec<u8>>;
}

/// A body already whole in memory (tests, and bodies built by the service itself).
pub struct WholeBody<'a>(pub &'a [u8]);

impl PayloadChunks for WholeBody<'_> {
    fn chunk_count(&self) -> usize {
        self.0.len().div_ceil(CHUNK_BYTES).max(1)
    }

    fn compressed_chunk(&self, seq: usize) -> io::Result<Vec<u8>> {
        Ok(lz4_flex::compress_prepend_size(self.slice(seq)))
    }
}

impl WholeBody<'_> {
    fn slice(&self, seq: usize) -> &[u8] {
        let start = (seq * CHUNK_BYTES).min(self.0.len());
        let end = (start + CHUNK_BYTES).min(self.0.len());
        &self.0[start..end]
    }
}

/// Stores the chunks of a run's body. Part of the caller's transaction.
pub fn insert(conn: &mut DbConn, run_id: &str, body: &dyn PayloadChunks) -> QueryResult<()> {
    for seq in 0..body.chunk_count() {
        let body_lz4 = body.compressed_chunk(seq).map_err(|error| {
            diesel::result::Error::SerializationError(
                format!("the spooled body cannot be read back: {error}").into(),
            )
        })?;
        diesel::insert_into(sync_payload_chunks::table)
            .values(&PayloadChunkRow {
                run_id: run_id.to_owned(),
                seq: i32::try_from(seq).unwrap_or(i32::MAX),
                body_lz4,
            })
            .execute(conn)?;
    }
    Ok(())
}

/// Copies the body of one run to another, inside the database. Part of the caller's
/// transaction.
pub fn copy(conn: &mut DbConn, from_run_id: &str, to_run_id: &str) -> QueryResult<usize> {
    let copied = sync_payload_chunks::table
        .filter(sync_payload_chunks::run_id.eq(from_run_id))
        .select((
            to_run_id.into_sql::<diesel::sql_types::Text>(),
            sync_payload_chunks::seq,
            sync_payload_chunks::body_lz4,
        ));
    diesel::insert_into(sync_payload_chunks::table)
        .values(copied)
        .into_columns((
            sync_payload_chunks::run_id,
            sync_payload_chunks::seq,
            sync_payload_chunks::body_lz4,
        ))
        .execute(conn)
}

/// Chunks stored for a run (tests and checks).
pub fn chunk_count(conn: &mut DbConn, run_id: &str) -> QueryResult<i64> {
    sync_payload_chunks::table
        .filter(sync_payload_chunks::run_id.eq(run_id))
        .select(count_star())
        .get_result(conn)
}

/// A stored body, still compressed: about a seventh of its size for JSON.
#[derive(Debug)]
pub struct StoredBody {
    chunks: VecDeque<Vec<u8>>,
}

/// Loads the compressed chunks of a run's body; `NotFound` when it has none.
pub fn load(conn: &mut DbConn, run_id: &str) -> QueryResult<StoredBody> {
    let chunks: Vec<Vec<u8>> = sync_payload_chunks::table
        .filter(sync_payload_chunks::run_id.eq(run_id))
        .order(sync_payload_chunks::seq)
        .select(sync_payload_chunks::body_lz4)
        .load(conn)?;
    if chunks.is_empty() {
        return Err(diesel::result::Error::NotFound);
    }
    Ok(StoredBody {
        chunks: chunks.into(),
    })
}

impl StoredBody {
    /// A body held in memory, chunked as the store would (tests, and callers that already
    /// have a body whole).
    pub fn from_whole(body: &[u8]) -> StoredBody {
        let whole = WholeBody(body);
        StoredBody {
            chunks: (0..whole.chunk_count())
                .map(|seq| lz4_flex::compress_prepend_size(whole.slice(seq)))
                .collect(),
        }
    }

    /// The body, decompressed one chunk at a time as it is read. Each compressed chunk is
    /// dropped once it is decompressed.
    pub fn into_reader(self) -> BodyReader {
        BodyReader {
            chunks: self.chunks,
            current: Decompressed::default(),
        }
    }
}

/// The chunk being read, decompressed, and how much of it was read.
#[derive(Debug, Default)]
struct Decompressed {
    bytes: Vec<u8>,
    at: usize,
}

impl Decompressed {
    /// Reads on from the current chunk; once it is used up, decompresses the one `next` gives
    /// (`None`: the body ends).
    fn read(
        &mut self,
        buf: &mut [u8],
        mut next: impl FnMut() -> io::Result<Option<Vec<u8>>>,
    ) -> io::Result<usize> {
        while self.at == self.bytes.len() {
            let Some(compressed) = next()? else {
                return Ok(0);
            };
            self.bytes = lz4_flex::decompress_size_prepended(&compressed).map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a stored chunk of the body is corrupt: {error}"),
                )
            })?;
            self.at = 0;
        }
        let n = buf.len().min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads a stored body: at most one chunk is decompressed at a time.
#[derive(Debug)]
pub struct BodyReader {
    chunks: VecDeque<Vec<u8>>,
    current: Decompressed,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunks = &mut self.chunks;
        self.current.read(buf, || Ok(chunks.pop_front()))
    }
}

/// Reads any body's chunks back in order, decompressing one at a time (a spooled push read
/// again before it is stored).
pub struct ChunksReader<'a> {
    body: &'a dyn PayloadChunks,
    next: usize,
    current: Decompressed,
}

impl<'a> ChunksReader<'a> {
    pub fn new(body: &'a dyn PayloadChunks) -> ChunksReader<'a> {
        ChunksReader {
            body,
            next: 0,
            current: Decompressed::default(),
        }
    }
}

impl Read for ChunksReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (body, next) = (self.body, &mut self.next);
        self.current.read(buf, || {
            if *next == body.chunk_count() {
                return Ok(None);
            }
            let compressed = body.compressed_chunk(*next)?;
            *next += 1;
            Ok(Some(compressed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_read_back_from_its_chunks_is_the_body() {
        let body: Vec<u8> = (0..CHUNK_BYTES * 2 + 17).map(|i| (i % 251) as u8).collect();
        assert_eq!(WholeBody(&body).chunk_count(), 3);
        let stored = StoredBody::from_whole(&body);
        let mut read = Vec::new();
        stored.into_reader().read_to_end(&mut read).unwrap();
        assert_eq!(read, body);
        let mut again = Vec::new();
        ChunksReader::new(&WholeBody(&body))
            .read_to_end(&mut again)
            .unwrap();
        assert_eq!(again, body);
    }

    #[test]
    fn an_empty_body_is_one_empty_chunk() {
        assert_eq!(WholeBody(b"").chunk_count(), 1);
        let stored = StoredBody::from_whole(b"");
        let mut read = Vec::new();
        stored.into_reader().read_to_end(&mut read).unwrap();
        assert!(read.is_empty());
    }
}
