//! Downloads of runs' reports: the report CSV and JSON log of one run, the period sync log
//! (CSV and XLSX) across runs, and a ZIP of several runs.
//!
//! Every writer reads events in keyset pages through an [`EventSource`] and writes to any
//! `std::io::Write`, so memory stays flat whatever the size of a run. The HTTP layer runs a
//! writer on a blocking thread whose output goes to the client through a bounded channel
//! ([`stream`]); the writers themselves know nothing of HTTP, and unit tests feed them events
//! from memory.

pub mod csv_safety;
pub mod log_json;
pub mod report_csv;
pub mod stream;
pub mod sync_log;
pub mod zip;

use crate::domain::EventKind;
use crate::store::models::EventRow;
use crate::store::{events, DbPool};

/// Events read per query: big enough that a 100,000-event run takes 50 queries, small enough
/// that a page is a few hundred kilobytes.
pub const PAGE_SIZE: i64 = 2_000;

/// A run's events, one page after another, in planned order; an empty page ends them.
pub trait EventPages {
    fn next_page(&mut self) -> anyhow::Result<Vec<EventRow>>;
}

/// Where the writers read events from.
pub trait EventSource {
    /// The events of a run, of one kind or all.
    fn events<'a>(&'a self, run_id: &'a str, kind: Option<EventKind>) -> Box<dyn EventPages + 'a>;

    /// How many events of a run carry an issue code.
    fn count_with_code(&self, run_id: &str, code: &str) -> anyhow::Result<u64>;
}

/// Events from the database. A reader thread fetches the next page while the writer formats
/// the current one (one page ahead at most); each page takes a connection from the pool and
/// gives it back at once, so a slow client never holds a connection.
pub struct DbSource {
    pub pool: DbPool,
}

impl EventSource for DbSource {
    fn events<'a>(&'a self, run_id: &'a str, kind: Option<EventKind>) -> Box<dyn EventPages + 'a> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let pool = self.pool.clone();
        let run_id = run_id.to_owned();
        let spawned = std::thread::Builder::new()
            .name("export-reader".into())
            .spawn(move || {
                let mut after = None;
                loop {
                    let page = read_page(&pool, &run_id, kind, after);
                    let next = match &page {
                        Ok(rows) if rows.len() == PAGE_ROWS => rows.last().map(|row| row.seq),
                        _ => None,
                    };
                    // An error means the writer stopped (the client went away): stop too.
                    if sender.send(page).is_err() || next.is_none() {
                        return;
                    }
                    after = next;
                }
            });
        match spawned {
            Ok(_) => Box::new(Prefetched {
                receiver,
                finished: false,
            }),
            Err(error) => Box::new(Failed(Some(error.into()))),
        }
    }

    fn count_with_code(&self, run_id: &str, code: &str) -> anyhow::Result<u64> {
        let mut conn = self.pool.get()?;
        let count = events::count_with_code(&mut conn, run_id, code)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

const PAGE_ROWS: usize = PAGE_SIZE as usize;

fn read_page(
    pool: &DbPool,
    run_id: &str,
    kind: Option<EventKind>,
    after: Option<i32>,
) -> anyhow::Result<Vec<EventRow>> {
    let mut conn = pool.get()?;
    Ok(events::page(&mut conn, run_id, kind, after, PAGE_SIZE)?)
}

/// Pages read ahead by the reader thread.
struct Prefetched {
    receiver: std::sync::mpsc::Receiver<anyhow::Result<Vec<EventRow>>>,
    /// A short page was received: the events are all read.
    finished: bool,
}

impl EventPages for Prefetched {
    fn next_page(&mut self) -> anyhow::Result<Vec<EventRow>> {
        if self.finished {
            return Ok(Vec::new());
        }
        match self.receiver.recv() {
            Ok(page) => {
                let page = page?;
                self.finished = page.len() < PAGE_ROWS;
                Ok(page)
            }
            // The reader ended without a short page: it died, and the export must not look
            // complete.
            Err(_) => Err(anyhow::anyhow!("the export's reader thread stopped early")),
        }
    }
}

/// No reader thread could be started.
struct Failed(Option<anyhow::Error>);

impl EventPages for Failed {
    fn next_page(&mut self) -> anyhow::Result<Vec<EventRow>> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| anyhow::anyhow!("no export reader")))
    }
}

/// Events held in memory, served in small pages (unit tests of the writers).
#[cfg(test)]
pub(crate) mod memory {
    use super::*;

    pub struct MemorySource {
        pub events: Vec<EventRow>,
        pub page_size: usize,
    }

    struct MemoryPages {
        rows: std::vec::IntoIter<EventRow>,
        page_size: usize,
    }

    impl EventPages for MemoryPages {
        fn next_page(&mut self) -> anyhow::Result<Vec<EventRow>> {
            Ok(self.rows.by_ref().take(self.page_size).collect())
        }
    }

    impl EventSource for MemorySource {
        fn events<'a>(
            &'a self,
            run_id: &'a str,
            kind: Option<EventKind>,
        ) -> Box<dyn EventPages + 'a> {
            let rows: Vec<EventRow> = self
                .events
                .iter()
                .filter(|e| e.run_id == run_id)
                .filter(|e| kind.is_none_or(|k| e.kind == k.as_str()))
                .cloned()
                .collect();
            Box::new(MemoryPages {
                rows: rows.into_iter(),
                page_size: self.page_size,
            })
        }

        fn count_with_code(&self, run_id: &str, code: &str) -> anyhow::Result<u64> {
            Ok(self
                .events
                .iter()
                .filter(|e| e.run_id == run_id && e.code.as_deref() == Some(code))
                .count() as u64)
        }
    }

    /// An event with only its identity set; tests fill in the rest.
    pub fn event(run_id: &str, seq: i32, kind: EventKind) -> EventRow {
        EventRow {
            run_id: run_id.to_owned(),
            seq,
            kind: kind.as_str().to_owned(),
            entity: "user".to_owned(),
            action: None,
            code: None,
            severity: None,
            field: None,
            message: None,
            changes: None,
            source_row: None,
            external_id: None,
            email: None,
            first_name: None,
            last_name: None,
            user_id: None,
            team: None,
            search_key: String::new(),
        }
    }
}
