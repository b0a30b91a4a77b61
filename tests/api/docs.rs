//! The repository's docs stand alone: every relative link of every Markdown file resolves to a
//! file (and heading) inside the repository.

use std::path::{Path, PathBuf};

fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                markdown_files(&path, found);
            }
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

/// The targets of `[text](target)` links, outside code blocks and code spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_block = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        // Code spans may hold `[x](y)`-looking text; drop them.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].trim().to_owned());
            rest = &after[end..];
        }
    }
    targets
}

/// GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_relative_link_in_the_docs_resolves_inside_the_repository() {
    let root = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).unwrap();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    for required in [
        "README.md",
        "API-DESIGN.md",
        "docs/product.md",
        "docs/architecture.md",
    ] {
        assert!(
            files.contains(&root.join(required)),
            "{required} is missing"
        );
    }
    let mut checked = 0;
    for file in &files {
        let markdown = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(&root).unwrap().display().to_string();
        for target in link_targets(&markdown) {
            if target.contains("://") || target.starts_with("mailto:") {
                assert!(
                    shown != "README.md" || target.starts_with("http://127.0.0.1"),
                    "{shown} links outside the repository: {target}"
                );
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let resolved = std::fs::canonicalize(&resolved)
                .unwrap_or_else(|_| panic!("{shown}: the link {target} leads nowhere"));
            assert!(
                resolved.starts_with(&root),
                "{shown}: the link {target} leaves the repository"
            );
            if !fragment.is_empty() {
                let text = std::fs::read_to_string(&resolved).unwrap();
                assert!(
                    anchors(&text).contains(&fragment.to_owned()),
                    "{shown}: the link {target} names no heading of its file"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} links were checked");
}

#[test]
fn the_link_reader_finds_links_and_skips_code() {
    let markdown =
        "See [a](docs/a.md) and `[b](not/this.md)`.\n```\n[c](nor/this.md)\n```\n[d](../out.md#x)";
    assert_eq!(link_targets(markdown), ["docs/a.md", "../out.md#x"]);
    assert_eq!(anchor("A record"), "a-record");
    assert_eq!(anchor("What a run does"), "what-a-run-does");
}
