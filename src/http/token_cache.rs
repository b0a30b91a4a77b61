//! Authentication without a database round trip per request, and without a write.
//!
//! Tokens are looked up by the hash of their secret and kept in memory for a short time
//! (`Config::token_cache_ttl`, 10 s by default): a token revoked by the command line or on
//! another instance stops working within that time. A token's `last_used_at` is not written
//! by the request: uses go to a bookkeeping thread that writes them in one batch every
//! `Config::token_use_flush_interval`, so that a read never waits behind a run's write lock.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::store::models::TokenRow;
use crate::store::{now, timestamp, tokens, DbPool};

/// At most this many tokens are kept; past it, the cache starts afresh.
const CAPACITY: usize = 10_000;
/// `last_used_at` is recorded at most this often per token.
const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

struct Cached {
    token: TokenRow,
    fetched: Instant,
}

pub struct TokenCache {
    ttl: Duration,
    by_hash: Mutex<HashMap<String, Cached>>,
    uses: Mutex<mpsc::Sender<(String, String)>>,
}

impl TokenCache {
    /// The cache, and the bookkeeping thread that writes token uses until the cache is dropped
    /// (it then writes what is left and ends).
    pub fn start(
        pool: DbPool,
        ttl: Duration,
        flush_interval: Duration,
    ) -> std::io::Result<TokenCache> {
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("token-uses".into())
            .spawn(move || write_uses_until_closed(&pool, &receiver, flush_interval))?;
        Ok(TokenCache {
            ttl,
            by_hash: Mutex::new(HashMap::new()),
            uses: Mutex::new(sender),
        })
    }

    /// The token with this secret hash, if it was fetched less than the TTL ago.
    pub fn get(&self, token_hash: &str) -> Option<TokenRow> {
        let entries = self.by_hash.lock().ok()?;
        entries
            .get(token_hash)
            .filter(|cached| cached.fetched.elapsed() < self.ttl)
            .map(|cached| cached.token.clone())
    }

    /// Remembers a token just read from the database.
    pub fn put(&self, token: TokenRow) {
        let Ok(mut entries) = self.by_hash.lock() else {
            return;
        };
        if entries.len() >= CAPACITY {
            entries.retain(|_, cached| cached.fetched.elapsed() < self.ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            token.token_hash.clone(),
            Cached {
                token,
                fetched: Instant::now(),
            },
        );
    }

    /// Notes that a request used `token`; written later, at most once a minute per token.
    pub fn record_use(&self, token: &TokenRow) {
        let stale_before =
            timestamp(Utc::now() - chrono::Duration::seconds(LAST_USED_RESOLUTION_SECONDS));
        if token
            .last_used_at
            .as_deref()
            .is_some_and(|used| used >= stale_before.as_str())
        {
            return;
        }
        let used_at = now();
        if let Ok(mut entries) = self.by_hash.lock() {
            if let Some(cached) = entries.get_mut(&token.token_hash) {
                cached.token.last_used_at = Some(used_at.clone());
            }
        }
        if let Ok(sender) = self.uses.lock() {
            // A closed channel means the service is stopping: the use is not worth keeping.
            let _ = sender.send((token.id.clone(), used_at));
        }
    }
}

/// The bookkeeping thread: gathers uses, writes them every `flush_interval` in one
/// transaction, and once more when the cache is dropped. Best effort: a failed write is
/// logged and its uses dropped (they are only "last seen" times).
fn write_uses_until_closed(
    pool: &DbPool,
    receiver: &mpsc::Receiver<(String, String)>,
    flush_interval: Duration,
) {
    let mut pending: HashMap<String, String> = HashMap::new();
    let mut next_flush = Instant::now() + flush_interval;
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        let closed = match receiver.recv_timeout(wait) {
            Ok((token_id, used_at)) => {
                pending.insert(token_id, used_at);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if closed || Instant::now() >= next_flush {
            flush(pool, &mut pending);
            next_flush = Instant::now() + flush_interval;
        }
        if closed {
            return;
        }
    }
}

fn flush(pool: &DbPool, pending: &mut HashMap<String, String>) {
    if pending.is_empty() {
        return;
    }
    let uses: Vec<(String, String)> = pending.drain().collect();
    let written = pool
        .get()
        .map_err(anyhow::Error::from)
        .and_then(|mut conn| Ok(tokens::record_uses(&mut conn, &uses)?));
    if let Err(error) = written {
        tracing::warn!(%error, tokens = uses.len(), "cannot record the tokens' last use");
    }
}
