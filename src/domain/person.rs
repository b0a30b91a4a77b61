//! Small closed vocabularies of a person's record.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a closed set of lowercase words that serialize as themselves.
macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            /// The word exactly as stored.
            pub fn from_stored(raw: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == raw)
            }

            /// Accepts the word in any letter case.
            pub fn parse(raw: &str) -> Result<$name, String> {
                let lowered = raw.trim().to_ascii_lowercase();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == lowered)
                    .ok_or_else(|| {
                        let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!("\"{raw}\" is not one of: {}", allowed.join(", "))
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// What a user may do in the product.
    Role { Member => "member", Admin => "admin", Guest => "guest" }
);

word_enum!(
    /// Which trips of the user need their manager's approval.
    ApprovalProcess { AllTrips => "all_trips", OutOfPolicy => "out_of_policy", None => "none" }
);

word_enum!(
    /// Where the person stands in the HR tool.
    EmploymentStatus { Active => "active", Terminated => "terminated", Rescinded => "rescinded" }
);

word_enum!(
    /// Where the user stands in the directory. `pending_archive` is an offboarding that waits:
    /// for the user's upcoming trips to be over, or for the grace period of a user missing from
    /// a full sync to end ([`PendingArchiveReason`]).
    UserState { Active => "active", Invited => "invited", PendingArchive => "pending_archive", Archived => "archived" }
);

word_enum!(
    /// Why a user is `pending_archive`: `upcoming_trips` is retried by every run and archived once
    /// the trips are over; `missing_from_full_sync` is archived once `archive_grace_days` have
    /// passed, unless a run contains the user again first.
    PendingArchiveReason { UpcomingTrips => "upcoming_trips", MissingFromFullSync => "missing_from_full_sync" }
);

impl ApprovalProcess {
    /// What a new user gets when the HR tool does not say: guests must have every trip approved.
    pub fn default_for(role: Role) -> ApprovalProcess {
        match role {
            Role::Guest => ApprovalProcess::AllTrips,
            Role::Member | Role::Admin => ApprovalProcess::OutOfPolicy,
        }
    }
}

/// A gender value from the organization's allowed list (by default `M` or `F`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gender(String);

impl Gender {
    /// Matches `raw` against `allowed` ignoring case, and keeps the allowed list's spelling.
    pub fn parse(raw: &str, allowed: &[String]) -> Result<Gender, String> {
        let value = raw.trim();
        allowed
            .iter()
            .find(|candidate| candidate.eq_ignore_ascii_case(value))
            .map(|candidate| Gender(candidate.clone()))
            .ok_or_else(|| format!("\"{raw}\" is not one of: {}", allowed.join(", ")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A login name: letters, digits, `.`, `_`, `@` and `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, String> {
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '@' | '+');
        if raw.is_empty() || !raw.chars().all(allowed) {
            let offending: String = raw.chars().filter(|c| !allowed(*c)).take(5).collect();
            return Err(format!(
                "\"{raw}\" may only contain letters, digits, '.', '_', '@' and '+' (found {offending:?})"
            ));
        }
        Ok(Username(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_parse_in_any_case_and_list_the_allowed_values_otherwise() {
        assert_eq!(Role::parse("Guest"), Ok(Role::Guest));
        assert_eq!(
            ApprovalProcess::parse("ALL_TRIPS"),
            Ok(ApprovalProcess::AllTrips)
        );
        assert_eq!(
            EmploymentStatus::parse("rescinded"),
            Ok(EmploymentStatus::Rescinded)
        );
        let reason = Role::parse("owner").unwrap_err();
        assert_eq!(reason, "\"owner\" is not one of: member, admin, guest");
    }

    #[test]
    fn gender_follows_the_allowed_list() {
        let default = vec!["M".to_owned(), "F".to_owned()];
        assert_eq!(Gender::parse("f", &default).unwrap().as_str(), "F");
        assert!(Gender::parse("X", &default).is_err());
        assert!(Gender::parse("", &default).is_err());
        assert!(Gender::parse("Male", &default).is_err());
        let wider = vec!["M".to_owned(), "F".to_owned(), "X".to_owned()];
        assert_eq!(Gender::parse("X", &wider).unwrap().as_str(), "X");
    }

    #[test]
    fn usernames_allow_letters_digits_and_four_symbols() {
        for raw in ["ada.lovelace", "ada_l", "ada+hr@corp", "Zoë42"] {
            assert!(Username::parse(raw).is_ok(), "{raw}");
        }
        for raw in ["", "ada lovelace", "ada-l", "ada/l", "ada!", "ada#1"] {
            assert!(Username::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn guests_default_to_approval_of_every_trip() {
        assert_eq!(
            ApprovalProcess::default_for(Role::Guest),
            ApprovalProcess::AllTrips
        );
        assert_eq!(
            ApprovalProcess::default_for(Role::Member),
            ApprovalProcess::OutOfPolicy
        );
    }
}
