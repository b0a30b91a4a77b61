use std::fmt;

use validator::ValidateEmail;

/// An e-mail address as the HR tool spelled it (trimmed), compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// RFC 5321 limit on a forward path.
pub const EMAIL_MAX_LENGTH: usize = 254;

impl Email {
    /// Accepts `local@domain.tld`: the syntax of the WHATWG/HTML e-mail rule, plus a dot in the
    /// domain (an address on a bare host name cannot receive mail from outside), and a local
    /// part that is an RFC 5322 dot-atom (no leading, trailing or doubled dot), so that every
    /// accepted address is `format: email` in the OpenAPI sense.
    pub fn parse(raw: &str) -> Result<Email, String> {
        let value = raw.trim();
        if value.chars().count() > EMAIL_MAX_LENGTH {
            return Err(format!(
                "the address has more than {EMAIL_MAX_LENGTH} characters"
            ));
        }
        let (local, domain) = value.rsplit_once('@').unwrap_or(("", ""));
        let dot_atom = !local.starts_with('.') && !local.ends_with('.') && !local.contains("..");
        let has_dotted_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.starts_with('[');
        if !value.validate_email() || !has_dotted_domain || !dot_atom {
            return Err(format!(
                "\"{value}\" is not a valid e-mail address (expected name@company.com)"
            ));
        }
        Ok(Email(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness: the whole address lowercased.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted_and_trimmed() {
        for raw in [
            "ada@example.com",
            "  ada.lovelace+hr@mail.example.co.uk ",
            "o'brien@example.ie",
            "UPPER@Example.COM",
        ] {
            let email = Email::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(email.as_str(), raw.trim());
        }
    }

    #[test]
    fn malformed_addresses_are_rejected_with_the_value_in_the_reason() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada example@example.com",
            "ada@example..com",
            "ada@.example.com",
            "ada@example.com.",
            ".ada@example.com",
            "ada.@example.com",
            "ada..lovelace@example.com",
        ] {
            let reason = Email::parse(raw).expect_err(raw);
            assert!(reason.contains(raw.trim()), "{reason}");
        }
    }

    #[test]
    fn normalized_form_ignores_case() {
        let a = Email::parse("Ada@Example.com").unwrap();
        let b = Email::parse("ada@example.COM").unwrap();
        assert_eq!(a.normalized(), b.normalized());
    }
}
