//! The vocabulary of hris-sync: values that can only be built valid.
//!
//! Every type here is parsed once at the edge (a pushed record, a query parameter, a command-line
//! flag); code past that point trusts it. A parse error is a sentence for an HR admin that names
//! the rejected value, so that the sync report can show it as it is.

mod dates;
mod email;
mod person;
mod phone;
mod run;
mod scope;
mod settings;
mod text;

pub use dates::{DateOfBirth, IsoDate};
pub use email::{Email, EMAIL_MAX_LENGTH};
pub use person::{
    ApprovalProcess, EmploymentStatus, Gender, PendingArchiveReason, Role, UserState, Username,
};
pub use phone::Phone;
pub use run::{
    EntityKind, EventKind, IssueTotals, LogLevel, LogLine, RunCounts, RunStatus, RunSummary,
    Severity, SyncMode, UpdateAction,
};
pub use scope::Scope;
pub use settings::{
    ApprovalMode, ApprovalSettings, ConditionField, ConditionTest, CustomFieldDefinition,
    CustomFieldType, FieldCondition, GroupRule, ProvisioningSettings, RequirableField,
    SyncPerimeter, CONDITION_FIELDS,
};
pub use text::{check_search_text, check_text, search_fold, search_key, TextProblem};
