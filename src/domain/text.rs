//! Rules shared by every free-text field of a pushed record.

/// Why a text field cannot be accepted as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextProblem {
    /// Longer than the field's limit (`length` is counted in characters, not bytes).
    TooLong { length: usize, limit: usize },
    /// Contains a control character (tab, newline, NUL…), which would corrupt exports.
    ControlCharacter,
}

/// Checks the length limit and the absence of control characters.
pub fn check_text(value: &str, limit: usize) -> Result<(), TextProblem> {
    let length = value.chars().count();
    if length > limit {
        return Err(TextProblem::TooLong { length, limit });
    }
    if value.chars().any(char::is_control) {
        return Err(TextProblem::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_within_the_limit_without_control_characters_is_accepted() {
        assert_eq!(check_text("Zoë O'Brien-Łukasz", 255), Ok(()));
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        assert_eq!(check_text(&"é".repeat(255), 255), Ok(()));
        assert_eq!(
            check_text(&"é".repeat(256), 255),
            Err(TextProblem::TooLong {
                length: 256,
                limit: 255
            })
        );
    }

    #[test]
    fn control_characters_are_rejected() {
        for value in ["a\tb", "a\nb", "nul\0", "bell\u{7}", "del\u{7f}"] {
            assert_eq!(
                check_text(value, 255),
                Err(TextProblem::ControlCharacter),
                "{value:?}"
            );
        }
    }
}

/// The form of a text used by case- and accent-insensitive searches: lowercase, with accents
/// removed (`Zoë Łukasz` → `zoe łukasz`; letters without a decomposition are only lowercased).
pub fn search_fold(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod fold_tests {
    use super::search_fold;

    #[test]
    fn folding_drops_case_and_accents() {
        assert_eq!(
            search_fold("Zoë Béatrice ÅNGSTRÖM"),
            "zoe beatrice angstrom"
        );
        assert_eq!(search_fold("Jose"), search_fold("JOSÉ"));
    }
}

/// The search key of a person (or a report line): the given parts — names, e-mail, external
/// id, team — folded and joined, so that `q` finds any of them whatever the case and accents.
pub fn search_key(parts: &[Option<&str>]) -> String {
    let joined: Vec<&str> = parts.iter().flatten().copied().collect();
    search_fold(&joined.join(" "))
}

/// Longest accepted search text (`q` parameters).
pub const SEARCH_MAX_LENGTH: usize = 200;

/// Checks a search text from a query parameter.
pub fn check_search_text(text: &str) -> Result<(), String> {
    check_text(text, SEARCH_MAX_LENGTH).map_err(|problem| match problem {
        TextProblem::TooLong { limit, .. } => format!("q must be at most {limit} characters."),
        TextProblem::ControlCharacter => "q must not contain control characters.".to_owned(),
    })
}
