//! Migrations are embedded at compile time: rebuild when they change. And the sources'
//! fingerprint, `HRIS_SYNC_SOURCE_HASH`: the engine's version in the stamps of unchanged
//! records (`sync::unchanged`), so that a build that may apply a record differently never
//! recognises a record stamped by another one.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=src");
    let mut files = Vec::new();
    for root in ["src", "migrations"] {
        collect(Path::new(root), &mut files);
    }
    files.sort();
    // FNV-1a over every file's path and bytes: stable across toolchains and machines, so that
    // instances built from the same sources agree.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for path in &files {
        let bytes = std::fs::read(path).unwrap_or_default();
        for byte in path.to_string_lossy().bytes().chain([0]).chain(bytes) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=HRIS_SYNC_SOURCE_HASH={hash:016x}");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
