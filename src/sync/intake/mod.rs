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
/// list once, instead of growing it by doubling.
pub fn read_records<R: Read>(
    content_type: &str,
    body: R,
    expected_records: usize,
    rules: &Rules<'_>,
    progress: &mut dyn FnMut(usize),
) -> Result<ReadRecords, Unreadable> {
    let mut stream = RecordStream::new(rules, progress);
    stream.reserve(expected_records);
    let warnings = match Format::of(content_type) {
        Some(Format::Json) => json::read(body, &mut stream)?,
        Some(Format::Csv) => csv::read(body, rules, &mut stream)?,
        None => {
            return Err(Unreadable(format!(
                "The stored push has the content type {content_type:?}, which no reader knows."
            )))
        }
    };
    Ok(ReadRecords {
        candidates: stream.candidates,
        warnings,
    })
}

/// Where readers put records: each is validated as it arrives, so that the raw records of a
/// large push are never all in memory at once.
pub struct RecordStream<'r, 'p> {
    rules: &'r Rules<'r>,
    progress: &'p mut dyn FnMut(usize),
    candidates: Vec<Candidate>,
}

impl<'r, 'p> RecordStream<'r, 'p> {
    pub fn new(rules: &'r Rules<'r>, progress: &'p mut dyn FnMut(usize)) -> Self {
        RecordStream {
            rules,
            progress,
            candidates: Vec::new(),
        }
    }

    pub fn reserve(&mut self, records: usize) {
        self.candidates.reserve(records);
    }

    /// A record read at `row` (its position in a JSON push, its line in a CSV file).
    pub fn record(&mut self, row: u32, raw: &RawRecord) {
        let candidate = validate(row, raw, self.rules);
        self.push(candidate);
    }

    /// A record that cannot be read: it gets `issue` and nothing else, and the rest of the
    /// push goes on.
    pub fn unreadable(&mut self, row: u32, issue: Issue) {
        let mut candidate = Candidate::unreadable(row, "");
        candidate.issues = vec![issue];
        self.push(candidate);
    }

    /// A record that cannot be read, for `reason` (a FIELD_TYPE_INVALID issue).
    pub fn unreadable_record(&mut self, row: u32, reason: &str) {
        self.push(Candidate::unreadable(row, reason));
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
        self.push(Candidate::unreadable(row, reason).named(external_id, email));
    }

    /// Records read so far.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    fn push(&mut self, candidate: Candidate) {
        self.candidates.push(candidate);
        if self.candidates.len().is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(self.candidates.len());
        }
    }
}
