//! `export.zip`: several runs at once, one folder per run with its `log.json` and
//! `report.csv`.
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

/// Most runs one archive holds.
pub const MAX_RUNS: usize = 50;

/// The folder of a run in the archive.
pub fn folder(run: &RunRow) -> String {
    format!("sync-{}/", run.id)
}

/// Writes the archive of `runs`, in the order given.
pub fn write(source: &dyn EventSource, runs: &[RunRow], out: impl Write) -> anyhow::Result<()> {
    let mut archive = zip::ZipWriter::new_stream(out);
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for run in runs {
        let folder = folder(run);
        archive.add_directory(folder.as_str(), options)?;
        archive.start_file(format!("{folder}log.json"), options)?;
        log_json::write(source, run, &mut archive)?;
        archive.start_file(format!("{folder}report.csv"), options)?;
        report_csv::write(source, &run.id, &mut archive)?;
    }
    archive.finish()?.flush()?;
    Ok(())
}
