//! The records of a stored JSON push, cut out of the body as it is read: each record's text is
//! handed over whole, so that `serde_json` reads it from a slice (several times faster than
//! through its streaming reader), and the body is never whole in memory.
//!
//! The stored body passed the push's checks (a JSON object whose `users` is a list of
//! objects), so only the structure that finds the records is followed here: strings and their
//! escapes, nesting, and the top-level key `users`. Everything inside a record is left to
//! `serde_json`.

use std::io::{self, Read};
use std::ops::Range;

/// Bytes read from the body at a time.
const READ_PIECE: usize = 64 * 1024;

/// Where the scan is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Users {
    /// Before the `users` list.
    Before,
    /// Inside the `users` list.
    Inside,
    /// After it.
    Done,
}

/// The scanner's state between two bytes. Positions are offsets into the buffer.
#[derive(Debug)]
struct Scanner {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// At depth 1, the next string is a key.
    expect_key: bool,
    /// The text of the top-level key being read starts here.
    key_start: Option<usize>,
    /// The last top-level key read is `users`, and its value has not started.
    users_key: bool,
    users: Users,
    /// The record being read starts here.
    record_start: Option<usize>,
}

/// Calls `each` with the text of every record of the stored push's `users`, in order.
/// `Err` says why the body cannot be read (it was damaged in storage, or cannot be read).
pub fn for_each_record<R: Read>(mut body: R, mut each: impl FnMut(&str)) -> Result<(), String> {
    let mut scanner = Scanner {
        depth: 0,
        in_string: false,
        escaped: false,
        expect_key: false,
        key_start: None,
        users_key: false,
        users: Users::Before,
        record_start: None,
    };
    let mut buffer: Vec<u8> = Vec::with_capacity(2 * READ_PIECE);
    let mut scanned = 0;
    loop {
        let before = buffer.len();
        buffer.resize(before + READ_PIECE, 0);
        let read = match body.read(&mut buffer[before..]) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {
                buffer.truncate(before);
                continue;
            }
            Err(error) => return Err(error.to_string()),
        };
        buffer.truncate(before + read);
        if read == 0 && buffer.len() == before {
            break;
        }
        let mut records = Vec::new();
        scanner.scan(&buffer, scanned, &mut records);
        for range in records {
            let text = std::str::from_utf8(&buffer[range])
                .map_err(|_| "a record is not UTF-8 text".to_owned())?;
            each(text);
        }
        scanned = buffer.len();
        // Keep only what a record or key being read still needs.
        let keep_from = [scanner.record_start, scanner.key_start]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(scanned);
        if keep_from > 0 {
            buffer.drain(..keep_from);
            scanned -= keep_from;
            scanner.record_start = scanner.record_start.map(|at| at - keep_from);
            scanner.key_start = scanner.key_start.map(|at| at - keep_from);
        }
    }
    match scanner.users {
        Users::Done => Ok(()),
        Users::Before => Err("it has no \"users\" list".to_owned()),
        Users::Inside => Err("it ends inside its \"users\" list".to_owned()),
    }
}

impl Scanner {
    /// Scans `text[from..]`, adding the range of each record that ends there.
    fn scan(&mut self, text: &[u8], from: usize, records: &mut Vec<Range<usize>>) {
        let mut at = from;
        while at < text.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    at += 1;
                    continue;
                }
                // Strings are most of a push: jump to the next quote or backslash.
                let Some(offset) = memchr::memchr2(b'"', b'\\', &text[at..]) else {
                    return;
                };
                at += offset;
                if text[at] == b'\\' {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                    if let Some(start) = self.key_start.take() {
                        self.users_key = is_users(&text[start..at]);
                    }
                }
                at += 1;
                continue;
            }
            let byte = text[at];
            let in_users = self.depth == 2 && self.users == Users::Inside;
            match byte {
                b'"' => {
                    self.in_string = true;
                    if self.depth == 1 && self.expect_key {
                        self.key_start = Some(at + 1);
                        self.expect_key = false;
                    } else if in_users && self.record_start.is_none() {
                        self.record_start = Some(at);
                    }
                }
                b'[' if self.depth == 1 && self.users_key && self.users == Users::Before => {
                    self.users = Users::Inside;
                    self.users_key = false;
                    self.depth = 2;
                }
                b'{' | b'[' => {
                    if in_users && self.record_start.is_none() {
                        self.record_start = Some(at);
                    }
                    self.depth += 1;
                    if self.depth == 1 {
                        self.expect_key = byte == b'{';
                    }
                }
                b']' if in_users => {
                    if let Some(start) = self.record_start.take() {
                        records.push(trimmed(text, start..at));
                    }
                    self.users = Users::Done;
                    self.depth = 1;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 2 && self.users == Users::Inside {
                        if let Some(start) = self.record_start.take() {
                            records.push(start..at + 1);
                        }
                    }
                }
                b',' => {
                    if self.depth == 1 {
                        self.expect_key = true;
                        self.users_key = false;
                    } else if in_users {
                        if let Some(start) = self.record_start.take() {
                            records.push(trimmed(text, start..at));
                        }
                    }
                }
                b' ' | b'\t' | b'\n' | b'\r' | b':' => {}
                _ => {
                    // A number or a literal where a record should be (the push's checks
                    // refuse them): handed over as it is, to be an issue of its row.
                    if in_users && self.record_start.is_none() {
                        self.record_start = Some(at);
                    }
                }
            }
            at += 1;
        }
    }
}

/// A top-level key is `users`, written plainly or with escapes.
fn is_users(key: &[u8]) -> bool {
    if key == b"users" {
        return true;
    }
    key.contains(&b'\\')
        && std::str::from_utf8(key)
            .ok()
            .and_then(|key| serde_json::from_str::<String>(&format!("\"{key}\"")).ok())
            .is_some_and(|key| key == "users")
}

fn trimmed(text: &[u8], range: Range<usize>) -> Range<usize> {
    let mut end = range.end;
    while end > range.start && text[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    range.start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `body` in pieces of `piece` bytes, as the stored chunks come.
    struct Pieces<'a> {
        body: &'a [u8],
        piece: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.piece.min(buf.len()).min(self.body.len());
            buf[..n].copy_from_slice(&self.body[..n]);
            self.body = &self.body[n..];
            Ok(n)
        }
    }

    fn records(body: &str, piece: usize) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        for_each_record(
            Pieces {
                body: body.as_bytes(),
                piece,
            },
            |text| found.push(text.to_owned()),
        )?;
        Ok(found)
    }

    #[test]
    fn records_are_cut_out_whole_whatever_the_pieces_the_body_comes_in() {
        let body = r#" { "source" : "a \"users\" [x]", "us\u0065rs_not": [1],
            "users" : [ {"external_id": "E1", "teams": ["a]", "{b"]},
                        {"note": "quote \" and \\", "nested": {"a": [1, {"b": 2}]}} ,
                        {} ],
            "mode": "full" } "#;
        let expected = [
            r#"{"external_id": "E1", "teams": ["a]", "{b"]}"#,
            r#"{"note": "quote \" and \\", "nested": {"a": [1, {"b": 2}]}}"#,
            "{}",
        ];
        for piece in [1, 2, 3, 7, 64, 100_000] {
            assert_eq!(records(body, piece).unwrap(), expected, "pieces of {piece}");
        }
    }

    #[test]
    fn a_users_key_written_with_escapes_is_the_users_key() {
        assert_eq!(
            records(r#"{"us\u0065rs": [{"a": 1}]}"#, 5).unwrap(),
            [r#"{"a": 1}"#]
        );
    }

    #[test]
    fn an_empty_list_has_no_records_and_a_body_without_one_is_unreadable() {
        assert!(records(r#"{"users": []}"#, 3).unwrap().is_empty());
        assert!(records(r#"{"source": "x"}"#, 3)
            .unwrap_err()
            .contains("users"));
        assert!(records(r#"{"users": [{"a": 1}"#, 3)
            .unwrap_err()
            .contains("ends inside"));
    }

    #[test]
    fn elements_that_are_not_objects_are_handed_over_for_their_rows() {
        assert_eq!(
            records(r#"{"users": [ 3 , "x", {"a": [1]}, null ]}"#, 4).unwrap(),
            ["3", "\"x\"", r#"{"a": [1]}"#, "null"]
        );
    }
}
