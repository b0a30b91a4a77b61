//! The vocabulary of sync runs and their reports.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a closed set of words stored and served as themselves.
///
/// Each is also a typed `Text` column (see `store::columns`): a row holding a word outside the
/// set fails to load with an error, it is never read as some default.
macro_rules! stored_words {
    ($(#[$meta:meta])* $name:ident, $case:tt { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[serde(rename_all = $case)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            /// Reads a value written by `as_str` (the database, a query parameter).
            pub fn from_stored(raw: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == raw)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_words!(
    /// The life of a run: `pending` → `running` → a final state, or `awaiting_approval` →
    /// `approved` | `rejected`.
    RunStatus, "snake_case" {
        Pending => "pending",
        Running => "running",
        Succeeded => "succeeded",
        SucceededWithErrors => "succeeded_with_errors",
        Failed => "failed",
        AwaitingApproval => "awaiting_approval",
        Approved => "approved",
        Rejected => "rejected",
    }
);

impl RunStatus {
    /// A final run changes no more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded
                | RunStatus::SucceededWithErrors
                | RunStatus::Failed
                | RunStatus::Approved
                | RunStatus::Rejected
        )
    }
}

stored_words!(
    /// `full`: the push is the whole population, users missing from it are archived.
    /// `incremental`: the push only adds and changes.
    SyncMode, "snake_case" { Full => "full", Incremental => "incremental" }
);

stored_words!(
    /// A line of a run's report is either something applied or something that went wrong.
    EventKind, "snake_case" { Update => "update", Issue => "issue" }
);

stored_words!(
    /// What a report line is about.
    EntityKind, "snake_case" { User => "user", Team => "team" }
);

stored_words!(
    /// How bad an issue is: `error` skips the record, `warning` applies it with a problem,
    /// `info` needs nothing.
    Severity, "snake_case" { Error => "error", Warning => "warning", Info => "info" }
);

stored_words!(
    /// What an update did to the directory.
    UpdateAction, "SCREAMING_SNAKE_CASE" {
        UserCreated => "USER_CREATED",
        UserUpdated => "USER_UPDATED",
        UserArchived => "USER_ARCHIVED",
        UserReactivated => "USER_REACTIVATED",
        ManagerAssigned => "MANAGER_ASSIGNED",
        TeamCreated => "TEAM_CREATED",
        TeamAssigned => "TEAM_ASSIGNED",
        GroupAssigned => "GROUP_ASSIGNED",
        UserRestored => "USER_RESTORED",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_words_round_trip_and_match_serde() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::from_stored(status.as_str()), Some(*status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for action in UpdateAction::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
        }
        assert_eq!(RunStatus::from_stored("done"), None);
    }
}

/// How many records ended how. `skipped` counts records with an error (`duplicates` is the
/// part of them skipped as duplicates); `warnings` counts records applied with a warning;
/// `ignored` counts records that needed nothing (a rescinded hire, say).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RunCounts {
    #[schema(required = true, example = 2)]
    pub created: u32,
    #[schema(required = true, example = 0)]
    pub updated: u32,
    #[schema(required = true, example = 0)]
    pub archived: u32,
    #[schema(required = true, example = 0)]
    pub reactivated: u32,
    #[schema(required = true, example = 0)]
    pub unchanged: u32,
    #[schema(required = true, example = 1)]
    pub skipped: u32,
    #[schema(required = true, example = 0)]
    pub duplicates: u32,
    #[schema(required = true, example = 0)]
    pub warnings: u32,
    #[schema(required = true, example = 0)]
    pub ignored: u32,
    /// Users missing from a full sync marked `pending_archive` for the grace period (they are
    /// not in `archived` until the grace period ends).
    #[schema(required = true, example = 0)]
    pub pending_archive: u32,
}

/// The issues of a run and how many distinct users and teams they touch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct IssueTotals {
    #[schema(required = true, example = 1)]
    pub total: u32,
    #[schema(required = true, example = 1)]
    pub errors: u32,
    #[schema(required = true, example = 0)]
    pub warnings: u32,
    #[schema(required = true, example = 0)]
    pub infos: u32,
    #[schema(required = true, example = 1)]
    pub users_affected: u32,
    #[schema(required = true, example = 0)]
    pub teams_affected: u32,
}

/// What a planned run found, stored with the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    pub records: u32,
    pub counts: RunCounts,
    pub issues: IssueTotals,
}

/// A line of a run's log: why it failed, when it was resumed, what it ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// RFC 3339 UTC.
    #[schema(format = "date-time", example = "2026-11-25T09:00:01.450000Z")]
    pub at: String,
    pub level: LogLevel,
    #[schema(example = "run interrupted by a stop: queued again")]
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Info,
    Warning,
    Error,
}
