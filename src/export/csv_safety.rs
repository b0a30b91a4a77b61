//! Spreadsheet formula injection (OWASP "CSV injection"): a cell that starts with `=`, `+`,
//! `-`, `@`, a tab or a carriage return may be run as a formula when a spreadsheet program
//! opens the file. Every text cell of every export goes through [`neutralise`], which puts a
//! single quote in front of such a cell: the program then shows it as text.

use std::borrow::Cow;

/// The characters that make a spreadsheet program read a cell as a formula.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as text that no spreadsheet program runs.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_TRIGGERS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_like_a_formula_get_a_quote_in_front() {
        for hostile in [
            "=HYPERLINK(\"http://evil.example\",\"click\")",
            "+1",
            "-2",
            "@SUM(A1:A2)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(neutralise(hostile), format!("'{hostile}"));
        }
    }

    #[test]
    fn ordinary_cells_are_left_as_they_are() {
        for cell in ["Zoë", "ada@example.com", "", "1+1", "O'Brien", "🙂 =1"] {
            assert!(matches!(neutralise(cell), Cow::Borrowed(_)), "{cell}");
            assert_eq!(neutralise(cell), cell);
        }
    }
}
