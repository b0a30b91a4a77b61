//! The fast path of a JSON push's envelope check. The body is scanned in pieces; each record
//! of `users` is cut out and read by serde from its own slice, and the rest of the body (the
//! envelope, with an empty `users` list) is read whole at the end. Receiving a 32 MB push of
//! 100,000 records (spooling included) went from ~120 to ~70 ms.
//!
//! It only answers for a body it fully understood. Anything else — a body that is not valid
//! JSON, a `users` that is not a list, nesting deeper than [`MAX_DEPTH`], a large envelope —
//! is [`Scan::Undecided`], and the caller checks the body again with the streaming reader,
//! which gives the exact answer and error message. A record read alone is valid only where it
//! is valid inside the body: the pieces are cut where the scanner is outside any string at the
//! list's own level, so if every piece and the envelope are each one JSON value, so is the body.

use std::io::{self, Read};

use super::{Element, EnvelopeShape, ObjectEnvelope, UsersShape, MAX_LISTED_ERRORS};

/// Bytes read from the body at a time.
const READ_PIECE: usize = 256 * 1024;

/// Deeper nesting than this anywhere leaves the body to the streaming reader, whose limit is
/// 128 for the whole body: a record must never pass alone where it would fail in the body.
const MAX_DEPTH: u32 = 64;

/// Envelope text (the body without its records) kept at most.
const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

/// A record longer than this is left to the streaming reader (which keeps nothing of it), so
/// that a push being received holds little more than a read piece and one record.
const MAX_ELEMENT_BYTES: usize = 1024 * 1024;

/// The bytes that matter inside a record outside its strings.
const STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'}' as usize] = true;
    table[b'[' as usize] = true;
    table[b']' as usize] = true;
    table[b',' as usize] = true;
    table
};

/// What the scan made of a body.
pub enum Scan {
    /// The envelope, as the streaming reader would have read it.
    Read(EnvelopeShape),
    /// Check the body again with the streaming reader.
    Undecided,
    /// The body could not be read (the same answer as the streaming reader's).
    Failed(io::Error),
}

/// Scans the whole body (it is always read to its end, so that it is spooled whole).
pub fn scan<R: Read>(mut body: R) -> Scan {
    let mut scanner = Scanner::default();
    let mut buffer: Vec<u8> = Vec::with_capacity(2 * READ_PIECE);
    // Read into a piece allocated once (a network delivers small pieces; growing and zeroing
    // the buffer for each would cost more than the scan).
    let mut piece = vec![0u8; READ_PIECE];
    let mut scanned = 0;
    loop {
        let read = match body.read(&mut piece) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Scan::Failed(error),
        };
        if read == 0 {
            break;
        }
        buffer.extend_from_slice(&piece[..read]);
        if scanner.undecided {
            buffer.clear();
            continue;
        }
        scanner.scan(&buffer, scanned);
        if scanner
            .element_start
            .is_some_and(|start| buffer.len() - start > MAX_ELEMENT_BYTES)
        {
            scanner.undecided = true;
            buffer.clear();
            continue;
        }
        // Keep only the record being read, if any.
        let keep_from = scanner.element_start.unwrap_or(buffer.len());
        buffer.drain(..keep_from);
        scanner.element_start = scanner.element_start.map(|_| 0);
        scanned = buffer.len();
    }
    scanner.finish()
}

#[derive(Default)]
struct Scanner {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// At depth 1, the next string is a key.
    expect_key: bool,
    /// Reading a key at depth 1, whose raw text so far is `key`.
    reading_key: bool,
    key: Vec<u8>,
    /// The last key at depth 1 is `users` and its value has not started.
    users_next: bool,
    /// Inside the `users` list (its elements are at depth 2).
    in_users: bool,
    users_seen: bool,
    /// A comma was read in the list and no element since.
    after_comma: bool,
    /// The element being read starts here in the buffer.
    element_start: Option<usize>,
    /// The body minus its records.
    envelope: Vec<u8>,
    count: usize,
    not_objects: Vec<usize>,
    undecided: bool,
}

impl Scanner {
    fn scan(&mut self, buffer: &[u8], from: usize) {
        let mut at = from;
        while at < buffer.len() && !self.undecided {
            if self.in_users && self.element_start.is_some() {
                // Inside a record only quotes, escapes and structure matter: skip to the next.
                let rest = &buffer[at..];
                at += if !self.in_string {
                    rest.iter()
                        .position(|&byte| STRUCTURAL[usize::from(byte)])
                        .unwrap_or(rest.len())
                } else if self.escaped {
                    0
                } else {
                    memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len())
                };
                if at == buffer.len() {
                    return;
                }
            }
            self.byte(buffer, at);
            at += 1;
        }
    }

    /// One byte of the body, at `at` in the buffer.
    fn byte(&mut self, buffer: &[u8], at: usize) {
        let byte = buffer[at];
        if self.in_users && self.depth == 2 && self.element_start.is_none() && !self.in_string {
            self.between_elements(byte, at);
            return;
        }
        if !self.in_users {
            self.envelope.push(byte);
            if self.envelope.len() > MAX_ENVELOPE_BYTES {
                self.undecided = true;
                return;
            }
        }
        if self.in_string {
            self.in_string_byte(byte);
            return;
        }
        if self.users_next && !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b':' | b'[') {
            // `users` is not a list: the streaming reader says so.
            self.undecided = true;
            return;
        }
        match byte {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.expect_key && !self.in_users {
                    self.expect_key = false;
                    self.reading_key = true;
                    self.key.clear();
                }
            }
            b'{' | b'[' => {
                if self.users_next && byte == b'[' && self.depth == 1 {
                    self.users_next = false;
                    self.in_users = true;
                    self.users_seen = true;
                    self.depth = 2;
                    return;
                }
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    self.undecided = true;
                    return;
                }
                if self.depth == 1 && byte == b'{' {
                    self.expect_key = true;
                }
            }
            b'}' | b']' => {
                if self.in_users && self.depth == 2 {
                    // The list's end or a closer out of place inside an element: either
                    // way the element is cut here, and serde judges it.
                    self.end_element(buffer, at, byte);
                    return;
                }
                let Some(depth) = self.depth.checked_sub(1) else {
                    self.undecided = true;
                    return;
                };
                self.depth = depth;
            }
            b',' => {
                if self.in_users && self.depth == 2 {
                    self.end_element(buffer, at, byte);
                } else if self.depth == 1 {
                    self.expect_key = true;
                }
            }
            _ => {}
        }
    }

    fn in_string_byte(&mut self, byte: u8) {
        if self.escaped {
            self.escaped = false;
            if self.reading_key {
                // An escaped key is not taken for `users` (if it is one, serde reads that
                // list inside the envelope, which stays right, only slower).
                self.key.push(0);
            }
            return;
        }
        match byte {
            b'\\' => self.escaped = true,
            b'"' => {
                self.in_string = false;
                if self.reading_key {
                    self.reading_key = false;
                    self.users_next = self.key == b"users";
                }
            }
            _ => {
                if self.reading_key {
                    self.key.push(byte);
                }
            }
        }
    }

    /// In the list, outside any element: an element starts, or the list ends.
    fn between_elements(&mut self, byte: u8, at: usize) {
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b']' => {
                if self.after_comma {
                    // A comma before the end: invalid, the streaming reader says where.
                    self.undecided = true;
                    return;
                }
                self.close_users();
            }
            b',' => self.undecided = true,
            _ => {
                self.element_start = Some(at);
                self.after_comma = false;
                if byte == b'"' {
                    self.in_string = true;
                } else if byte == b'{' || byte == b'[' {
                    self.depth += 1;
                }
            }
        }
    }

    /// The element that started at `element_start` ends before `at`, cut by `byte`.
    fn end_element(&mut self, buffer: &[u8], at: usize, byte: u8) {
        let Some(start) = self.element_start.take() else {
            self.undecided = true;
            return;
        };
        match serde_json::from_slice::<Element>(&buffer[start..at]) {
            Ok(element) => {
                if element == Element::Other && self.not_objects.len() < MAX_LISTED_ERRORS {
                    self.not_objects.push(self.count);
                }
                self.count += 1;
            }
            Err(_) => {
                self.undecided = true;
                return;
            }
        }
        match byte {
            b',' => self.after_comma = true,
            b']' => self.close_users(),
            _ => self.undecided = true,
        }
    }

    /// The list ends (its `[` is already in the envelope).
    fn close_users(&mut self) {
        self.in_users = false;
        self.depth = 1;
        self.envelope.push(b']');
    }

    fn finish(self) -> Scan {
        if self.undecided || self.in_string || self.in_users || self.depth != 0 {
            return Scan::Undecided;
        }
        let Ok(ObjectEnvelope(mut shape)) = serde_json::from_slice(&self.envelope) else {
            return Scan::Undecided;
        };
        if self.users_seen {
            match &shape.users {
                Some(UsersShape::List { count: 0, .. }) => {
                    shape.users = Some(UsersShape::List {
                        count: self.count,
                        not_objects: self.not_objects,
                    });
                }
                _ => return Scan::Undecided,
            }
        }
        Scan::Read(shape)
    }
}
