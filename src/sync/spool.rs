//! A push's body as it arrives: checked while it is read, and spooled to a temporary file in
//! compressed chunks, so that no push is ever whole in memory whatever its size.
//!
//! [`SpoolingReader`] sits between the network and the push's checks: every byte the checks
//! read is counted against the size limit, checked to be UTF-8 and appended to a [`Spool`].
//! Once the push passes its checks, the store copies the spooled chunks into the run's
//! transaction ([`SpooledBody`] is a [`PayloadChunks`]). The temporary file has no name and
//! is gone when the push is done, even if the process is killed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use crate::store::payloads::{PayloadChunks, CHUNK_BYTES};

/// Why a body was refused while it was read.
#[derive(Debug)]
pub enum BodyFailure {
    /// Over the size limit (after any decompression).
    TooLarge { limit: u64 },
    /// Not UTF-8: the line (from 1) of the first byte that is not.
    NotUtf8 { line: usize },
    /// The body could not be read: the client went away, or its gzip encoding is corrupt.
    Unreadable { reason: String, transport: bool },
    /// The spool could not be written (a full disk).
    Spool(io::Error),
}

/// Reads a body through the checks: counts, validates and spools every byte read. The first
/// failure stops it; [`SpoolingReader::failure`] says which.
pub struct SpoolingReader<R> {
    inner: R,
    spool: Spool,
    limit: u64,
    read: u64,
    utf8: Utf8Check,
    failure: Option<BodyFailure>,
}

impl<R: Read> SpoolingReader<R> {
    pub fn new(inner: R, spool: Spool, limit: u64) -> SpoolingReader<R> {
        SpoolingReader {
            inner,
            spool,
            limit,
            read: 0,
            utf8: Utf8Check::default(),
            failure: None,
        }
    }

    /// The failure that stopped the reader, if any: it explains any error the checks saw.
    pub fn failure(&self) -> Option<&BodyFailure> {
        self.failure.as_ref()
    }

    /// Reads what the checks left (so that the limit and UTF-8 apply to the whole body) and
    /// closes the spool.
    pub fn finish(mut self) -> Result<SpooledBody, BodyFailure> {
        let drained = io::copy(&mut self, &mut io::sink());
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        drained.map_err(|error| BodyFailure::Unreadable {
            reason: error.to_string(),
            transport: true,
        })?;
        self.spool.finish().map_err(BodyFailure::Spool)
    }

    fn fail(&mut self, failure: BodyFailure) -> io::Error {
        let error = io::Error::other(format!("{failure:?}"));
        self.failure = Some(failure);
        error
    }
}

impl<R: Read> Read for SpoolingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.is_some() {
            return Err(io::Error::other("the body was refused"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Err(error),
            Err(error) => {
                return Err(self.fail(BodyFailure::Unreadable {
                    transport: error.kind() == io::ErrorKind::ConnectionAborted,
                    reason: error.to_string(),
                }))
            }
        };
        if n == 0 {
            if let Err(line) = self.utf8.finish() {
                return Err(self.fail(BodyFailure::NotUtf8 { line }));
            }
            return Ok(0);
        }
        self.read += n as u64;
        if self.read > self.limit {
            let limit = self.limit;
            return Err(self.fail(BodyFailure::TooLarge { limit }));
        }
        if let Err(line) = self.utf8.feed(&buf[..n]) {
            return Err(self.fail(BodyFailure::NotUtf8 { line }));
        }
        if let Err(error) = self.spool.write_all(&buf[..n]) {
            return Err(self.fail(BodyFailure::Spool(error)));
        }
        Ok(n)
    }
}

/// UTF-8 checked piece by piece: a character cut between two pieces is completed from the
/// next one. Counts lines to name the line of the first bad byte.
#[derive(Debug, Default)]
struct Utf8Check {
    carry: Vec<u8>,
    newlines: usize,
}

impl Utf8Check {
    /// `Err(line)` at the first byte that is not UTF-8.
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), usize> {
        if !self.carry.is_empty() {
            let width = utf8_width(self.carry[0]);
            let take = (width - self.carry.len()).min(bytes.len());
            self.carry.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.carry.len() < width {
                return Ok(());
            }
            if std::str::from_utf8(&self.carry).is_err() {
                return Err(self.newlines + 1);
            }
            self.carry.clear();
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => {
                self.newlines += count_newlines(bytes);
                Ok(())
            }
            Err(error) => {
                let valid = &bytes[..error.valid_up_to()];
                self.newlines += count_newlines(valid);
                match error.error_len() {
                    Some(_) => Err(self.newlines + 1),
                    None => {
                        self.carry = bytes[error.valid_up_to()..].to_vec();
                        Ok(())
                    }
                }
            }
        }
    }

    /// `Err(line)` when the body ends inside a character.
    fn finish(&self) -> Result<(), usize> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(self.newlines + 1)
        }
    }
}

/// The length of the character a UTF-8 lead byte starts (1 for anything else, which
/// `from_utf8` has already refused).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&byte| byte == b'\n').count()
}

/// An unnamed temporary file of LZ4-compressed chunks, and the hash and size of what was
/// written.
pub struct Spool {
    file: File,
    /// Where each compressed chunk is in the file, and its length.
    chunks: Vec<(u64, usize)>,
    end: u64,
    pending: Vec<u8>,
    hash: Xxh3,
    len: u64,
}

impl Spool {
    /// A spool in `dir` (the system's temporary directory by default).
    pub fn new(dir: &Path) -> io::Result<Spool> {
        Ok(Spool {
            file: tempfile::tempfile_in(dir)?,
            chunks: Vec::new(),
            end: 0,
            pending: Vec::with_capacity(CHUNK_BYTES),
            hash: Xxh3::new(),
            len: 0,
        })
    }

    fn write_chunk(&mut self) -> io::Result<()> {
        let compressed = lz4_flex::compress_prepend_size(&self.pending);
        self.file.write_all_at(&compressed, self.end)?;
        self.chunks.push((self.end, compressed.len()));
        self.end += compressed.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Writes the last chunk (an empty body is one empty chunk).
    pub fn finish(mut self) -> io::Result<SpooledBody> {
        if !self.pending.is_empty() || self.chunks.is_empty() {
            self.write_chunk()?;
        }
        Ok(SpooledBody {
            file: self.file,
            chunks: self.chunks,
            len: self.len,
            hash: self.hash.digest128(),
        })
    }
}

impl Write for Spool {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = bytes.len().min(CHUNK_BYTES - self.pending.len());
        self.pending.extend_from_slice(&bytes[..n]);
        self.hash.update(&bytes[..n]);
        self.len += n as u64;
        if self.pending.len() == CHUNK_BYTES {
            self.write_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body received in full and spooled.
pub struct SpooledBody {
    file: File,
    chunks: Vec<(u64, usize)>,
    len: u64,
    hash: u128,
}

impl SpooledBody {
    /// Bytes in the body.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The XXH3-128 of the body: two pushes with the same body have the same hash.
    pub fn hash(&self) -> u128 {
        self.hash
    }
}

impl PayloadChunks for SpooledBody {
    fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    fn compressed_chunk(&self, seq: usize) -> io::Result<Vec<u8>> {
        let (offset, len) = self.chunks[seq];
        let mut compressed = vec![0; len];
        self.file.read_exact_at(&mut compressed, offset)?;
        Ok(compressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::payloads::WholeBody;

    fn spooled(body: &[u8], limit: u64) -> Result<SpooledBody, BodyFailure> {
        let spool = Spool::new(&std::env::temp_dir()).unwrap();
        // Read in odd pieces, as a network would deliver them.
        let mut reader = SpoolingReader::new(body, spool, limit);
        let mut piece = [0u8; 7];
        while let Ok(n) = reader.read(&mut piece) {
            if n == 0 {
                break;
            }
        }
        reader.finish()
    }

    #[test]
    fn a_spooled_body_has_the_chunks_and_hash_of_the_body() {
        let body: Vec<u8> = "héllo, wörld\n"
            .repeat(CHUNK_BYTES / 5)
            .into_bytes()
            .into_iter()
            .collect();
        let spooled = spooled(&body, u64::MAX).unwrap();
        let whole = WholeBody(&body);
        assert_eq!(spooled.len(), body.len() as u64);
        assert_eq!(spooled.hash(), xxhash_rust::xxh3::xxh3_128(&body));
        assert_eq!(spooled.chunk_count(), whole.chunk_count());
        for seq in 0..whole.chunk_count() {
            assert_eq!(
                spooled.compressed_chunk(seq).unwrap(),
                whole.compressed_chunk(seq).unwrap()
            );
        }
    }

    #[test]
    fn a_body_over_the_limit_is_refused() {
        assert!(matches!(
            spooled(b"0123456789", 9),
            Err(BodyFailure::TooLarge { limit: 9 })
        ));
        assert!(spooled(b"0123456789", 10).is_ok());
    }

    #[test]
    fn the_first_byte_that_is_not_utf8_is_named_by_its_line() {
        assert!(matches!(
            spooled(b"a\nb\n\xffc", u64::MAX),
            Err(BodyFailure::NotUtf8 { line: 3 })
        ));
        // A character cut at the end of the body.
        assert!(matches!(
            spooled("a\né".as_bytes().split_last().unwrap().1, u64::MAX),
            Err(BodyFailure::NotUtf8 { line: 2 })
        ));
        // Characters cut between pieces are whole again.
        assert!(spooled("日本語のテキスト\n".repeat(100).as_bytes(), u64::MAX).is_ok());
    }
}
