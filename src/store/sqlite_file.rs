//! The SQLite file must be writable, and so must its directory (SQLite writes its WAL and
//! journal files beside it). Checked before the pool opens it, so that a read-only bind mount
//! fails at start with a sentence saying what to change, not SQLite's "unable to open database
//! file" ten seconds later.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use anyhow::bail;

/// The file of a SQLite URL (`sqlite://PATH`, `file:PATH`, a bare path); `None` for another
/// backend or an in-memory database.
pub fn path_of(url: &str) -> Option<PathBuf> {
    if url.contains("://") && !url.starts_with("sqlite://") {
        return None;
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("file:"))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// The directory of a SQLite URL's file, where SQLite also writes its WAL.
pub fn directory_of(url: &str) -> Option<PathBuf> {
    let path = path_of(url)?;
    Some(match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    })
}

/// Fails with advice when this process cannot write the database file of `url` or its directory.
pub fn check_writable(url: &str) -> anyhow::Result<()> {
    let (Some(path), Some(directory)) = (path_of(url), directory_of(url)) else {
        return Ok(());
    };
    let probe = directory.join(format!(".hris-sync-write-check-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(error) => bail!(advice(&path, &directory, &error)),
    }
    if path.exists() {
        if let Err(error) = OpenOptions::new().read(true).write(true).open(&path) {
            bail!(advice(&path, &directory, &error));
        }
    }
    Ok(())
}

fn advice(path: &Path, directory: &Path, error: &std::io::Error) -> String {
    let user = current_uid().map_or_else(
        || "the user hris-sync runs as".to_owned(),
        |uid| format!("the user hris-sync runs as (uid {uid})"),
    );
    format!(
        "cannot write the SQLite database {} ({error}). The file and its directory {} must exist \
and be writable by {user}. In the Docker image hris-sync runs as uid 10001: give a bind-mounted \
directory to that user (`sudo chown 10001 DIR`), or use a named volume.",
        path.display(),
        directory.display()
    )
}

/// The real uid of this process, read from /proc (Linux); `None` elsewhere.
fn current_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(1).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file_and_other_backends_none() {
        assert_eq!(
            path_of("sqlite://hris-sync.db"),
            Some(PathBuf::from("hris-sync.db"))
        );
        assert_eq!(
            path_of("sqlite:///var/lib/hris-sync/hris-sync.db"),
            Some(PathBuf::from("/var/lib/hris-sync/hris-sync.db"))
        );
        assert_eq!(
            path_of("file:data.db?mode=rwc"),
            Some(PathBuf::from("data.db"))
        );
        assert_eq!(
            path_of("/srv/db.sqlite"),
            Some(PathBuf::from("/srv/db.sqlite"))
        );
        assert_eq!(path_of("postgres://u:p@db/hris"), None);
        assert_eq!(path_of("sqlite://:memory:"), None);
    }

    #[test]
    fn the_directory_of_a_sqlite_file_is_its_parent_or_the_current_one() {
        assert_eq!(
            directory_of("sqlite:///var/lib/hris/db.sqlite"),
            Some(PathBuf::from("/var/lib/hris"))
        );
        assert_eq!(
            directory_of("sqlite://hris-sync.db"),
            Some(PathBuf::from("."))
        );
        assert_eq!(directory_of("postgres://u@db/hris"), None);
    }

    #[test]
    fn a_missing_directory_is_refused_with_advice_for_docker() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/missing/hris-sync.db", dir.path().display());
        let message = check_writable(&url).unwrap_err().to_string();
        assert!(message.contains("must exist and be writable"), "{message}");
        assert!(message.contains("uid 10001"), "{message}");
        let writable = format!("sqlite://{}/hris-sync.db", dir.path().display());
        assert!(check_writable(&writable).is_ok());
    }
}
