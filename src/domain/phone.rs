use std::fmt;

/// A phone number written `+<country code> <number>`, e.g. `+33 612345678`.
///
/// The space after the country code is mandatory (it is how the country code is told apart from
/// the number); everything else is digits. Country codes have 1 to 3 digits and never start with
/// 0; together with the number they fit E.164's 15 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Phone, String> {
        let reject = || {
            Err(format!(
                "\"{raw}\" is not a phone number of the form +<country code> <number>, e.g. +33 612345678"
            ))
        };
        let Some(rest) = raw.strip_prefix('+') else {
            return reject();
        };
        let Some((country_code, number)) = rest.split_once(' ') else {
            return reject();
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let country_code_ok =
            all_digits(country_code) && country_code.len() <= 3 && !country_code.starts_with('0');
        let number_ok =
            all_digits(number) && number.len() >= 4 && country_code.len() + number.len() <= 15;
        if !country_code_ok || !number_ok {
            return reject();
        }
        Ok(Phone(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_code_space_digits_is_accepted() {
        for raw in [
            "+33 612345678",
            "+1 4155550123",
            "+353 871234567",
            "+44 2071838750",
        ] {
            assert_eq!(Phone::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn anything_else_is_rejected() {
        for raw in [
            "",
            "+33612345678",       // no space
            "33 612345678",       // no plus
            "+33  612345678",     // two spaces
            "+33 6 12 34 56 78",  // spaces inside the number
            "+33 61-23-45-67",    // dashes
            "+1234 5551234",      // four-digit country code
            "+0 5551234",         // country code starting with 0
            "+ 612345678",        // empty country code
            "+33 ",               // empty number
            "+33 123",            // too short to be a number
            "+33 12345678901234", // over 15 digits in all
            "+33 61234567x",
            " +33 612345678",
            "+33 612345678 ",
            "+٣٣ ٦١٢٣٤٥٦٧٨", // non-ASCII digits
        ] {
            let reason = Phone::parse(raw).expect_err(raw);
            assert!(reason.contains(raw), "{reason}");
        }
    }
}
