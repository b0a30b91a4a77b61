//! `export.zip`: several runs at once, one folder per run with its `log.json` and
//! `report.csv`, and for a CSV upload its `log.csv`.
//!
//! The archive is written with the `zip` crate's streaming writer (`ZipWriter::new_stream`):
//! it needs no `Seek`, because sizes and checksums go in a data descriptor after each file
//! instead of being patched into its header. So the archive streams to the client as it is
//! compressed, with no temporary file.

use std::io::Write;

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use crate::export::{log_json, report_csv, EventSource};
use crate::store::models::RunRow;
use crate::sync::intake::Format;

/// Most runs one archive holds.
pub const MAX_RUNS: usize = 50;

/// The folder of a run in the archive.
pub fn folder(run: &RunRow) -> String {
    format!("sync-{}/", run.id)
}

/// Writes a run's `log.csv` (the uploaded file with a status per line) into the archive.
pub type CsvLogWriter<'a> = &'a dyn Fn(&RunRow, &mut dyn Write) -> anyhow::Result<()>;

/// Writes the archive of `runs`, in the order given. Runs that were CSV uploads also get their
/// `log.csv`, written by `csv_log`.
pub fn write(
    source: &dyn EventSource,
    runs: &[RunRow],
    csv_log: CsvLogWriter<'_>,
    out: impl Write,
) -> anyhow::Result<()> {
    let mut archive = zip::ZipWriter::new_stream(out);
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for run in runs {
        let folder = folder(run);
        archive.add_directory(folder.as_str(), options)?;
        archive.start_file(format!("{folder}log.json"), options)?;
        log_json::write(source, run, &mut archive)?;
        archive.start_file(format!("{folder}report.csv"), options)?;
        report_csv::write(source, &run.id, &mut archive)?;
        if Format::of(&run.content_type) == Some(Format::Csv) {
            archive.start_file(format!("{folder}log.csv"), options)?;
            csv_log(run, &mut archive)?;
        }
    }
    archive.finish()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventKind;
    use crate::export::memory::{event, MemorySource};
    use std::io::Read;

    fn run(id: &str) -> RunRow {
        RunRow {
            id: id.into(),
            organization_id: "org".into(),
            status: crate::domain::RunStatus::Succeeded,
            mode: crate::domain::SyncMode::Full,
            source: "test".into(),
            dry_run: false,
            content_type: "application/json".into(),
            created_at: "2026-11-30T09:00:00.000000Z".into(),
            started_at: None,
            finished_at: None,
            attempts: 1,
            progress_processed: 0,
            progress_total: 0,
            summary: None,
            logs: "[]".into(),
            retry_of: None,
            settings_version: None,
            approval_reasons: None,
            awaiting_since: None,
            approval_expires_at: None,
            decided_by: None,
            decision_reason: None,
            decided_at: None,
        }
    }

    #[test]
    fn the_archive_streams_one_folder_per_run_without_seeking() {
        let source = MemorySource {
            events: vec![
                event("a", 1, EventKind::Update),
                event("b", 1, EventKind::Issue),
                event("b", 2, EventKind::Issue),
            ],
            page_size: 1,
        };
        // A Vec behind a plain `Write` (no `Seek`), as the response stream is.
        struct WriteOnly(Vec<u8>);
        impl Write for WriteOnly {
            fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
                self.0.write(data)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = WriteOnly(Vec::new());
        write(&source, &[run("a"), run("b")], &|_, _| Ok(()), &mut out).unwrap();
        let mut archive = ::zip::ZipArchive::new(std::io::Cursor::new(out.0)).unwrap();
        let mut names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "sync-a/",
                "sync-a/log.json",
                "sync-a/report.csv",
                "sync-b/",
                "sync-b/log.json",
                "sync-b/report.csv"
            ]
        );
        let mut report = String::new();
        archive
            .by_name("sync-b/report.csv")
            .unwrap()
            .read_to_string(&mut report)
            .unwrap();
        assert_eq!(report.lines().count(), 3, "header and two events: {report}");
    }
}
