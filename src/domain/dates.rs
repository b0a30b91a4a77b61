use std::fmt;

use chrono::{Datelike, NaiveDate};

/// A calendar date written `YYYY-MM-DD` (ISO 8601), e.g. a start or an end date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsoDate(NaiveDate);

impl IsoDate {
    /// Checks the exact shape before asking chrono, which would also take `2024-1-2`.
    pub fn parse(raw: &str) -> Result<IsoDate, String> {
        let shaped = matches_shape(raw, "dddd-dd-dd");
        shaped
            .then(|| date(number(&raw[0..4]), number(&raw[5..7]), number(&raw[8..10])))
            .flatten()
            .map(IsoDate)
            .ok_or_else(|| {
                format!("\"{raw}\" is not a date of the form YYYY-MM-DD, e.g. 2024-03-31")
            })
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

impl fmt::Display for IsoDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written by hand: chrono's format strings are parsed at every call.
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }
}

/// A date of birth written `MM/DD/YYYY`, a real calendar date between 1900 and yesterday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateOfBirth(NaiveDate);

impl DateOfBirth {
    /// `today` is passed in so that a run validates all its records against the same day.
    pub fn parse(raw: &str, today: NaiveDate) -> Result<DateOfBirth, String> {
        let shaped = matches_shape(raw, "dd/dd/dddd");
        let Some(date) = shaped
            .then(|| date(number(&raw[6..10]), number(&raw[0..2]), number(&raw[3..5])))
            .flatten()
        else {
            return Err(format!(
                "\"{raw}\" is not a real date of the form MM/DD/YYYY, e.g. 07/14/1990"
            ));
        };
        if date >= today {
            return Err(format!("\"{raw}\" is not in the past"));
        }
        if date < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
            return Err(format!("\"{raw}\" is before 1900"));
        }
        Ok(DateOfBirth(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

impl fmt::Display for DateOfBirth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}/{:02}/{:04}",
            self.0.month(),
            self.0.day(),
            self.0.year()
        )
    }
}

/// The value of ASCII digits (the shape was checked).
fn number(digits: &str) -> u32 {
    digits.bytes().fold(0, |n, b| n * 10 + u32::from(b - b'0'))
}

fn date(year: u32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// `shape` uses `d` for an ASCII digit; every other character must match itself.
fn matches_shape(raw: &str, shape: &str) -> bool {
    raw.len() == shape.len()
        && raw.bytes().zip(shape.bytes()).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            _ => c == s,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn iso_dates_must_have_the_exact_shape() {
        assert_eq!(
            IsoDate::parse("2024-02-29").unwrap().to_string(),
            "2024-02-29"
        );
        for raw in [
            "2024-2-29",
            "2023-02-29",
            "24-02-29",
            "2024/02/29",
            "02/29/2024",
            "",
            "2024-02-29T00:00:00",
        ] {
            assert!(IsoDate::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn date_of_birth_accepts_month_day_year() {
        let dob = DateOfBirth::parse("07/14/1990", today()).unwrap();
        assert_eq!(dob.date(), NaiveDate::from_ymd_opt(1990, 7, 14).unwrap());
        assert_eq!(dob.to_string(), "07/14/1990");
        assert!(DateOfBirth::parse("02/29/2000", today()).is_ok());
    }

    #[test]
    fn date_of_birth_rejects_other_shapes_and_unreal_dates() {
        for raw in [
            "02/30/1990", // no such day
            "1/2/1990",   // missing leading zeros
            "01/02/90",   // two-digit year
            "1990-01-02", // ISO
            "13/01/1990", // month 13 (a DD/MM date)
            "00/10/1990",
            "02/29/2001",
            "01-02-1990",
            " 01/02/1990",
            "",
        ] {
            let reason = DateOfBirth::parse(raw, today()).expect_err(raw);
            assert!(reason.contains(raw), "{reason}");
        }
    }

    #[test]
    fn date_of_birth_must_be_in_the_past_and_after_1900() {
        assert!(DateOfBirth::parse("11/25/2026", today()).is_err());
        assert!(DateOfBirth::parse("12/01/2030", today()).is_err());
        assert!(DateOfBirth::parse("12/31/1899", today()).is_err());
        assert!(DateOfBirth::parse("11/24/2026", today()).is_ok());
    }
}
