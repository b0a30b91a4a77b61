//! Intake: the records of a stored push, read by the reader of its content type and validated
//! as they are read.
//!
//! JSON (`json.rs`) and CSV (`csv.rs`) are two readers feeding one [`RecordStream`]: each
//! turns its format into [`RawRecord`]s (or says that a record cannot be read), and the stream
//! validates them into [`Candidate`]s. Everything after intake — duplicates, approval-flow
//! checks, planning, applying — is the same for both formats.

pub mod csv;
pub mod json;
pub mod json_records;

use std::io::Read;
use std::sync::mpsc;

use crate::sync::candidate::{Candidate, Issue};
use crate::sync::record::RawRecord;
use crate::sync::validate::{validate, Rules};

/// The content type of JSON pushes, as stored with the run.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The content types of CSV uploads. Each is stored as received; all are read the same way
/// (the delimiter is detected from the header line).
pub const CSV_CONTENT_TYPES: &[&str] =
    &["text/csv", "text/tab-separated-values", "application/csv"];

/// Progress is reported every this many records.
pub const PROGRESS_EVERY: usize = 10_000;

/// The format of a stored push, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// The reader for a media type (lowercase, without parameters); `None` when there is none.
    pub fn of(content_type: &str) -> Option<Format> {
        if content_type == JSON_CONTENT_TYPE {
            Some(Format::Json)
        } else if CSV_CONTENT_TYPES.contains(&content_type) {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

/// The records of a stored push, validated as they were read.
#[derive(Debug)]
pub struct ReadRecords {
    pub candidates: Vec<Candidate>,
    /// Sentences for the run's log about what the reader ignored (unknown fields or columns).
    pub warnings: Vec<String>,
}

/// Why a stored push cannot be read at all: the run fails with this sentence as its log line
/// and nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// Reads a stored push with the reader its content type names, as a stream: the body is
/// never whole in memory. `expected_records` (counted when the push was stored) sizes the
/// list once, instead of growing it by doubling, and decides whether records are validated on
/// a second thread while this one reads on (see [`RecordStream`]).
pub fn read_records<R: Read>(
    content_type: &str,
    body: R,
    expected_records: usize,
    rules: &Rules<'_>,
    progress: &mut dyn FnMut(usize),
) -> Result<ReadRecords, Unreadable> {
    let Some(format) = Format::of(content_type) else {
        return Err(Unreadable(format!(
            "The stored push has the content type {content_type:?}, which no reader knows."
        )));
    };
    std::thread::scope(|scope| {
        let validator = if expected_records >= VALIDATE_ASIDE_FROM {
            Validator::start(scope, rules)
        } else {
            None
        };
        let mut stream = RecordStream::new(rules, progress, validator);
        stream.reserve(expected_records);
        let warnings = match format {
            Format::Json => json::read(body, &mut stream)?,
            Format::Csv => csv::read(body, rules, &mut stream)?,
        };
        Ok(ReadRecords {
            candidates: stream.finish(),
            warnings,
        })
    })
}

/// A record validated, with the hash of its text.
fn validate_with_hash(
    row: u32,
    raw: &RawRecord,
    text_hash: Option<u128>,
    rules: &Rules<'_>,
) -> Candidate {
    Candidate {
        text_hash,
        ..validate(row, raw, rules)
    }
}

/// Records handed to the validating thread at a time.
const BATCH: usize = 1024;

/// Batches waiting for the validating thread at most (bounds the raw records in memory).
const BATCHES_IN_FLIGHT: usize = 4;

/// From this many records a push is validated on a second thread while it is read (parsing
/// JSON or CSV and validating cost about the same, so a large push reads in ~60 % of the
/// time); a small push is validated as it is read, without a thread.
const VALIDATE_ASIDE_FROM: usize = 4 * BATCH;

/// A record on its way to the validating thread: read, or already a candidate (a record that
/// could not be read), so that the candidates come back in the order of the push.
enum Item {
    Read(u32, RawRecord, Option<u128>),
    Ready(Candidate),
}

/// The validating thread's two ends: batches go, candidates come back in the same order.
struct Validator {
    batches: mpsc::SyncSender<Vec<Item>>,
    validated: mpsc::Receiver<Vec<Candidate>>,
    /// The batch being filled.
    batch: Vec<Item>,
    /// Batches sent and not yet received back.
    in_flight: usize,
}

impl Validator {
    /// `None` when no thread can be started: records are then validated as they are read.
    fn start<'scope, 'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        rules: &'env Rules<'env>,
    ) -> Option<Validator> {
        let (batches, arriving) = mpsc::sync_channel::<Vec<Item>>(BATCHES_IN_FLIGHT);
        let (returned, validated) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name("run-validator".into())
            .spawn_scoped(scope, move || {
                for batch in arriving {
                    let candidates: Vec<Candidate> = batch
                        .into_iter()
                        .map(|item| match item {
                            Item::Read(row, raw, text_hash) => {
                                validate_with_hash(row, &raw, text_hash, rules)
                            }
                            Item::Ready(candidate) => candidate,
                        })
                        .collect();
                    // The reader stopped (the push is unreadable): nothing more to do.
                    if returned.send(candidates).is_err() {
                        break;
                    }
                }
            });
        if let Err(error) = started {
            tracing::warn!(%error, "cannot start a thread to validate records; validating them as they are read");
            return None;
        }
        Some(Validator {
            batches,
            validated,
            batch: Vec::with_capacity(BATCH),
            in_flight: 0,
        })
    }
}

/// Where readers put records, in the order of the push: each is validated as it arrives (on
/// the validating thread for a large push), so that the raw records of a large push are never
/// all in memory at once.
pub struct RecordStream<'r, 'p> {
    rules: &'r Rules<'r>,
    progress: &'p mut dyn FnMut(usize),
    candidates: Vec<Candidate>,
    /// Records put so far (validated or on their way).
    records: usize,
    validator: Option<Validator>,
}

impl<'r, 'p> RecordStream<'r, 'p> {
    fn new(
        rules: &'r Rules<'r>,
        progress: &'p mut dyn FnMut(usize),
        validator: Option<Validator>,
    ) -> Self {
        RecordStream {
            rules,
            progress,
            candidates: Vec::new(),
            records: 0,
            validator,
        }
    }

    fn reserve(&mut self, records: usize) {
        self.candidates.reserve(records);
    }

    /// A record read at `row` (its position in a JSON push, its line in a CSV file), with the
    /// hash of its text when the run may stamp the user with it (see `sync::unchanged`).
    pub fn record(&mut self, row: u32, raw: RawRecord, text_hash: Option<u128>) {
        self.put(Item::Read(row, raw, text_hash));
    }

    /// A record that cannot be read: it gets `issue` and nothing else, and the rest of the
    /// push goes on.
    pub fn unreadable(&mut self, row: u32, issue: Issue) {
        let mut candidate = Candidate::unreadable(row, "");
        candidate.issues = vec![issue];
        self.put(Item::Ready(candidate));
    }

    /// A record that cannot be read, for `reason` (a FIELD_TYPE_INVALID issue).
    pub fn unreadable_record(&mut self, row: u32, reason: &str) {
        self.put(Item::Ready(Candidate::unreadable(row, reason)));
    }

    /// A record that cannot be read, named by the identity that could still be recovered from
    /// it, so that its issue says who it is and a full sync does not offboard that person.
    pub fn unreadable_record_named(
        &mut self,
        row: u32,
        reason: &str,
        external_id: Option<String>,
        email: Option<String>,
    ) {
        self.put(Item::Ready(
            Candidate::unreadable(row, reason).named(external_id, email),
        ));
    }

    /// Records put so far.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    fn put(&mut self, item: Item) {
        self.records += 1;
        let Some(validator) = &mut self.validator else {
            let candidate = match item {
                Item::Ready(candidate) => candidate,
                Item::Read(row, raw, text_hash) => {
                    validate_with_hash(row, &raw, text_hash, self.rules)
                }
            };
            self.add(vec![candidate]);
            return;
        };
        validator.batch.push(item);
        if validator.batch.len() < BATCH {
            return;
        }
        let batch = std::mem::replace(&mut validator.batch, Vec::with_capacity(BATCH));
        let mut returned = Vec::new();
        // Take back what is validated, so that at most a few batches are in memory.
        while let Ok(candidates) = validator.validated.try_recv() {
            validator.in_flight -= 1;
            returned.push(candidates);
        }
        // A send fails only if the thread died (it panicked): the scope then panics when the
        // read ends, and the run fails as a panicked run does.
        let sent = validator.batches.send(batch).is_ok();
        validator.in_flight += usize::from(sent);
        for candidates in returned {
            self.add(candidates);
        }
    }

    /// Every candidate, once the reader is done: the last batch is validated and every batch
    /// taken back.
    fn finish(mut self) -> Vec<Candidate> {
        if let Some(mut validator) = self.validator.take() {
            let last = std::mem::take(&mut validator.batch);
            if !last.is_empty() && validator.batches.send(last).is_ok() {
                validator.in_flight += 1;
            }
            drop(validator.batches);
            while validator.in_flight > 0 {
                let Ok(candidates) = validator.validated.recv() else {
                    break;
                };
                validator.in_flight -= 1;
                self.add(candidates);
            }
        }
        self.candidates
    }

    /// Adds validated candidates, reporting progress every [`PROGRESS_EVERY`] records.
    fn add(&mut self, candidates: Vec<Candidate>) {
        for candidate in candidates {
            self.candidates.push(candidate);
            if self.candidates.len().is_multiple_of(PROGRESS_EVERY) {
                (self.progress)(self.candidates.len());
            }
        }
    }
}
