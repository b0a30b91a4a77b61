//! Rows as stored. Conversions to API views live with the views.

use diesel::prelude::*;

use crate::domain::{ApprovalProcess, EmploymentStatus, Role, RunStatus, SyncMode, UserState};
use crate::store::new_id;

use crate::store::schema::{
    api_tokens, organizations, settings_versions, sync_events, sync_payload_chunks, sync_runs,
    teams, users,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
pub struct OrganizationRow {
    pub id: String,
    pub name: String,
    pub settings: String,
    pub created_at: String,
    /// The version of `settings`: 0 until they are first changed.
    pub settings_version: i32,
}

/// One version of an organization's provisioning settings.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = settings_versions)]
pub struct SettingsVersionRow {
    pub organization_id: String,
    pub version: i32,
    /// The whole document, JSON.
    pub document: String,
    /// The name of the token that made the change.
    pub changed_by: String,
    pub changed_at: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub scope: String,
    pub token_hash: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sync_runs)]
pub struct RunRow {
    pub id: String,
    pub organization_id: String,
    pub status: RunStatus,
    pub mode: SyncMode,
    pub source: String,
    pub dry_run: bool,
    pub content_type: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub attempts: i32,
    pub progress_processed: i32,
    pub progress_total: i32,
    pub summary: Option<String>,
    pub logs: String,
    pub retry_of: Option<String>,
    /// The settings version the run was planned with.
    pub settings_version: Option<i32>,
    /// JSON list of the approval limits the plan crossed (`ApprovalReason`).
    pub approval_reasons: Option<String>,
    pub awaiting_since: Option<String>,
    /// When a run awaiting approval expires (`approval.expires_after_hours` after it began to
    /// wait, with the settings of that moment).
    pub approval_expires_at: Option<String>,
    /// The token name that approved or rejected the run (`expiry` when it expired).
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub decided_at: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sync_payload_chunks)]
pub struct PayloadChunkRow {
    pub run_id: String,
    /// The chunk's place in the body, from 0.
    pub seq: i32,
    /// About 1 MiB of the push's body, LZ4-compressed on its own (JSON shrinks about
    /// sevenfold, and so does the write that makes a push durable).
    pub body_lz4: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
#[diesel(treat_none_as_default_value = false)]
pub struct UserRow {
    pub id: String,
    pub organization_id: String,
    pub external_id: Option<String>,
    pub email: String,
    pub email_key: String,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub state: String,
    pub role: String,
    pub approval_process: String,
    pub employment_status: String,
    pub manager_id: Option<String>,
    /// JSON list of team names.
    pub teams: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub date_of_birth: Option<String>,
    pub gender: Option<String>,
    pub phone: Option<String>,
    /// JSON object.
    pub custom_fields: String,
    pub upcoming_trips: i32,
    /// Fingerprint of the HR record last applied to the user.
    pub source_hash: Option<String>,
    /// Lowercased, accent-free names, e-mail and external id, for `q` searches.
    pub search_key: String,
    pub created_at: String,
    pub updated_at: String,
    pub archived_at: Option<String>,
    /// JSON list of the group names `group_rules` assign.
    pub groups: String,
    /// When the user became `pending_archive`, and why (`PendingArchiveReason`).
    pub pending_archive_since: Option<String>,
    pub pending_archive_reason: Option<String>,
    /// The stamp of the record text last applied cleanly (see `sync::unchanged`); cleared by
    /// the database whenever the row is written otherwise.
    pub text_stamp: Option<String>,
}

impl UserRow {
    /// A new user: no optional field set, no manager, no team; the caller fills in the rest.
    pub fn new(
        organization_id: &str,
        state: UserState,
        role: Role,
        approval_process: ApprovalProcess,
        now: &str,
    ) -> UserRow {
        UserRow {
            id: new_id(),
            organization_id: organization_id.to_owned(),
            external_id: None,
            email: String::new(),
            email_key: String::new(),
            username: None,
            first_name: String::new(),
            last_name: String::new(),
            state: state.as_str().to_owned(),
            role: role.as_str().to_owned(),
            approval_process: approval_process.as_str().to_owned(),
            employment_status: EmploymentStatus::Active.as_str().to_owned(),
            manager_id: None,
            teams: "[]".to_owned(),
            start_date: None,
            end_date: None,
            date_of_birth: None,
            gender: None,
            phone: None,
            custom_fields: "{}".to_owned(),
            upcoming_trips: 0,
            source_hash: None,
            search_key: String::new(),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            archived_at: None,
            groups: "[]".to_owned(),
            pending_archive_since: None,
            pending_archive_reason: None,
            text_stamp: None,
        }
    }
}

/// What a run needs of every user of the directory to check a push against it. Full rows
/// are loaded only for the users a run may change.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct DirectoryEntry {
    pub id: String,
    pub external_id: Option<String>,
    pub email: String,
    pub email_key: String,
    pub first_name: String,
    pub last_name: String,
    /// Typed (a byte, not a string per user): an unknown stored word fails the load.
    pub state: UserState,
    pub role: Role,
    pub manager_id: Option<String>,
    pub upcoming_trips: i32,
    pub source_hash: Option<String>,
    /// JSON list, as in [`UserRow::groups`].
    pub groups: String,
    pub pending_archive_since: Option<String>,
    pub pending_archive_reason: Option<String>,
    /// See [`UserRow::text_stamp`].
    pub text_stamp: Option<String>,
}

/// A user as recognising an unchanged push sees them (see `sync::unchanged`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct StampedUser {
    pub id: String,
    pub manager_id: Option<String>,
    pub state: UserState,
    /// `YYYY-MM-DD`.
    pub end_date: Option<String>,
    pub text_stamp: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = teams)]
pub struct TeamRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub name_key: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sync_events, treat_none_as_default_value = false)]
#[diesel(treat_none_as_default_value = false)]
pub struct EventRow {
    pub run_id: String,
    pub seq: i32,
    pub kind: String,
    pub entity: String,
    pub action: Option<String>,
    pub code: Option<String>,
    pub severity: Option<String>,
    pub field: Option<String>,
    pub message: Option<String>,
    /// JSON list of `{field, old, new}`.
    pub changes: Option<String>,
    pub source_row: Option<i32>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub user_id: Option<String>,
    pub team: Option<String>,
    pub search_key: String,
}
