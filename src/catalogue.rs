//! Every issue code hris-sync can report, with what an HR admin needs to fix it.
//!
//! The engine can only emit an [`IssueCode`], and every code has exactly one [`Entry`] here, so
//! the catalogue served by `GET /v1/error-codes` is complete by construction.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Severity;

/// The family an issue belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A field or a record as the HR tool sent it.
    UserFlow,
    /// Who approves whom: managers, guests, cycles.
    ApprovalFlow,
    /// The state of the directory the record meets.
    Directory,
    /// A line of an uploaded file that cannot be read as a record (CSV uploads).
    File,
}

/// One catalogue entry: an issue code, what it means and the steps that resolve it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = ErrorCode, example = json!({
    "code": "MANAGER_DOES_NOT_EXIST", "category": "approval_flow", "severity": "error",
    "needs_action": true, "title": "The manager cannot be found",
    "message": "The manager (manager_external_id) is neither in this push nor in the directory, or their own record was skipped. A user is only created once their manager exists, so the record was skipped.",
    "remediation": [
        "If the message names the manager's row and issue, fix that issue first: this record will follow.",
        "Otherwise check the manager's employee ID on this employee's profile in your HR tool, and that the manager is included in the sync.",
        "Run the sync again."
    ]
}))]
pub struct Entry {
    #[schema(value_type = IssueCode)]
    pub code: IssueCode,
    pub category: Category,
    pub severity: Severity,
    /// False when the issue resolves itself (a later run retries) or is only informative.
    pub needs_action: bool,
    /// One line: what happened.
    pub title: &'static str,
    /// What the issue means and what hris-sync did with the record.
    pub message: &'static str,
    /// Numbered steps, in order, that resolve the issue.
    #[schema(value_type = Vec<String>)]
    pub remediation: &'static [&'static str],
}

macro_rules! catalogue {
    ($(
        $variant:ident {
            category: $category:ident,
            severity: $severity:ident,
            needs_action: $needs_action:literal,
            title: $title:literal,
            message: $message:literal,
            remediation: [$($step:literal),+ $(,)?] $(,)?
        }
    )+) => {
        /// An issue code. Serialized as its SCREAMING_SNAKE_CASE name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[allow(non_camel_case_types)]
        pub enum IssueCode { $($variant),+ }

        /// The whole catalogue, in a stable order.
        pub const ENTRIES: &[Entry] = &[$(
            Entry {
                code: IssueCode::$variant,
                category: Category::$category,
                severity: Severity::$severity,
                needs_action: $needs_action,
                title: $title,
                message: $message,
                remediation: &[$($step),+],
            }
        ),+];

        impl IssueCode {
            pub fn as_str(self) -> &'static str {
                match self { $(IssueCode::$variant => stringify!($variant)),+ }
            }
        }
    };
}

impl IssueCode {
    pub fn entry(self) -> &'static Entry {
        // ENTRIES lists the variants in declaration order.
        &ENTRIES[self as usize]
    }

    pub fn severity(self) -> Severity {
        self.entry().severity
    }

    pub fn parse(raw: &str) -> Option<IssueCode> {
        ENTRIES
            .iter()
            .map(|e| e.code)
            .find(|code| code.as_str() == raw)
    }
}

/// Issue codes are a closed set in the OpenAPI document: an `enum` of every catalogue code.
impl utoipa::PartialSchema for IssueCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "An issue code; `GET /v1/error-codes/{code}` explains it and how to fix it.",
            ))
            .enum_values(Some(ENTRIES.iter().map(|entry| entry.code.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for IssueCode {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("IssueCode")
    }
}

impl std::fmt::Display for IssueCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

catalogue! {
    MISSING_EXTERNAL_ID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The record has no external id",
        message: "Every record needs the HR tool's own identifier of the person (external_id) so that later syncs can recognise them. The record was skipped.",
        remediation: [
            "Open the employee in your HR tool and check that the employee ID is filled in.",
            "Check that your integration maps the HR tool's employee ID to external_id.",
            "Run the sync again.",
        ],
    }
    DUPLICATE_EXTERNAL_ID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "Several records share one external id",
        message: "Two or more records of this push carry the same external_id. hris-sync cannot know which one is right, so every one of them was skipped.",
        remediation: [
            "Look at the rows named in the message: they are the records that share the id.",
            "In your HR tool, keep one employee per ID (merge or delete the duplicate profile).",
            "Run the sync again.",
        ],
    }
    MISSING_EMAIL {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The record has no e-mail address",
        message: "A user needs a work e-mail address to sign in. The record was skipped.",
        remediation: [
            "Add the work e-mail address to the employee's profile in your HR tool.",
            "Run the sync again.",
        ],
    }
    EMAIL_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The e-mail address is not valid",
        message: "The e-mail address is not of the form name@company.com. The record was skipped.",
        remediation: [
            "Correct the e-mail address in the employee's profile in your HR tool (look for spaces, missing @ or domain typos).",
            "Run the sync again.",
        ],
    }
    USER_DUPLICATE_EMAIL {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The e-mail address is used by someone else",
        message: "The e-mail address is shared by several records of this push, or belongs to another user of the directory with another external id. E-mail addresses are compared without regard to case. The record was skipped.",
        remediation: [
            "Look at the rows or the user named in the message.",
            "If they are the same person, keep a single employee profile in your HR tool; otherwise give each person their own address.",
            "Run the sync again.",
        ],
    }
    USERNAME_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The username contains characters that are not allowed",
        message: "A username may only contain letters, digits, '.', '_', '@' and '+'. The record was skipped.",
        remediation: [
            "Correct the username in your HR tool, or stop sending it (the e-mail address is used to sign in).",
            "Run the sync again.",
        ],
    }
    MISSING_FIRST_NAME {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The first name is missing",
        message: "The first name is missing or blank. The record was skipped.",
        remediation: [
            "Fill in the employee's first name in your HR tool.",
            "Run the sync again.",
        ],
    }
    MISSING_LAST_NAME {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The last name is missing",
        message: "The last name is missing or blank. The record was skipped.",
        remediation: [
            "Fill in the employee's last name in your HR tool.",
            "Run the sync again.",
        ],
    }
    MISSING_START_DATE {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The start date is missing",
        message: "An active employee needs a start date (YYYY-MM-DD). The record was skipped.",
        remediation: [
            "Fill in the employee's hire or start date in your HR tool.",
            "Run the sync again.",
        ],
    }
    START_DATE_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The start date is not a date",
        message: "The start date must be a real date written YYYY-MM-DD. The record was skipped.",
        remediation: [
            "Correct the start date in your HR tool.",
            "Check that your integration sends dates as YYYY-MM-DD, e.g. 2024-03-31.",
            "Run the sync again.",
        ],
    }
    END_DATE_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The end date is not a date",
        message: "The end date must be a real date written YYYY-MM-DD. The record was skipped.",
        remediation: [
            "Correct the end date in your HR tool.",
            "Check that your integration sends dates as YYYY-MM-DD, e.g. 2024-03-31.",
            "Run the sync again.",
        ],
    }
    END_DATE_BEFORE_START_DATE {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The end date is before the start date",
        message: "The employment would end before it starts. The record was skipped.",
        remediation: [
            "Correct the start or the end date in your HR tool.",
            "Run the sync again.",
        ],
    }
    DATE_OF_BIRTH_IS_MISSING_OR_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The date of birth is missing or not valid",
        message: "The date of birth must be a real past date written MM/DD/YYYY (for example 07/14/1990), and is required when your provisioning settings say so. The record was skipped.",
        remediation: [
            "Fill in or correct the date of birth in your HR tool.",
            "Check that your integration sends it as MM/DD/YYYY with leading zeros.",
            "Run the sync again.",
        ],
    }
    SEX_IS_MISSING_OR_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The gender is missing or not allowed",
        message: "The gender must be one of the values your provisioning settings allow (by default M or F), and is required when your settings say so. The record was skipped.",
        remediation: [
            "Fill in or correct the gender in your HR tool.",
            "If the value is legitimate, add it to allowed_genders in the provisioning settings.",
            "Run the sync again.",
        ],
    }
    PHONE_IS_MISSING_OR_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The phone number is missing or not valid",
        message: "The phone number must be written +<country code> <number>: a plus, 1 to 3 digits, one space, then digits only (for example +33 612345678). It is required when your provisioning settings say so. The record was skipped.",
        remediation: [
            "Correct the phone number in your HR tool: keep one space after the country code and remove any other space, dash or bracket.",
            "Run the sync again.",
        ],
    }
    ROLE_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The role is not known",
        message: "The role must be member, admin or guest. The record was skipped.",
        remediation: [
            "Correct the role mapping of your integration.",
            "Run the sync again.",
        ],
    }
    APPROVAL_PROCESS_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The approval process is not known",
        message: "The approval process must be all_trips, out_of_policy or none. The record was skipped.",
        remediation: [
            "Correct the approval process mapping of your integration.",
            "Run the sync again.",
        ],
    }
    EMPLOYMENT_STATUS_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "The employment status is not known",
        message: "The employment status must be active, terminated or rescinded. The record was skipped.",
        remediation: [
            "Correct the employment status mapping of your integration.",
            "Run the sync again.",
        ],
    }
    FIELD_TYPE_INVALID {
        category: UserFlow, severity: Error, needs_action: true,
        title: "A field has the wrong type",
        message: "A field holds a value of the wrong JSON type, for example a number where text is expected. The record was skipped.",
        remediation: [
            "Look at the field named in the issue and the type the message expects.",
            "Fix the integration so that it sends that field with the right type (text in quotes, a list for teams, an object for custom_fields).",
            "Run the sync again.",
        ],
    }
    FIELD_TOO_LONG {
        category: UserFlow, severity: Error, needs_action: true,
        title: "A field is too long",
        message: "A text is longer than its field allows (255 characters for names, username and external id, 254 for e-mail addresses). The record was skipped.",
        remediation: [
            "Shorten the value in your HR tool.",
            "Run the sync again.",
        ],
    }
    FIELD_INVALID_CHARACTERS {
        category: UserFlow, severity: Error, needs_action: true,
        title: "A field contains control characters",
        message: "A text contains a control character (a line break, a tab, a NUL…), usually pasted by accident. The record was skipped.",
        remediation: [
            "Retype the value in your HR tool without line breaks or tabs.",
            "Run the sync again.",
        ],
    }
    CSV_LINE_UNREADABLE {
        category: File, severity: Error, needs_action: true,
        title: "A line of the file cannot be read",
        message: "A line of the uploaded CSV file does not have as many fields as the header, usually because of a stray delimiter or an unbalanced quote. The line was skipped; the rest of the file was synced.",
        remediation: [
            "Open the file in a text editor at the line number of the issue.",
            "Quote any value that contains the delimiter, a quote (written twice inside quotes) or a line break, and remove extra delimiters.",
            "Upload the file again.",
        ],
    }
    TEAM_NAME_INVALID {
        category: UserFlow, severity: Warning, needs_action: true,
        title: "A team name is not valid",
        message: "A team name is blank, too long (over 255 characters), not text, or contains control characters. The user was synced without that team.",
        remediation: [
            "Correct the team or department name in your HR tool.",
            "Run the sync again: the user will be added to the team.",
        ],
    }
    CUSTOM_FIELD_UNKNOWN {
        category: UserFlow, severity: Warning, needs_action: true,
        title: "A custom field is not defined",
        message: "The record carries a custom field that the provisioning settings do not define. The user was synced without it.",
        remediation: [
            "If the field is wanted, add its definition to custom_fields in the provisioning settings.",
            "Otherwise stop sending it from your integration.",
            "Run the sync again.",
        ],
    }
    CUSTOM_FIELD_TYPE_MISMATCH {
        category: UserFlow, severity: Warning, needs_action: true,
        title: "A custom field has the wrong type",
        message: "A custom field's value does not match the type its definition sets (string, number, boolean, or date as YYYY-MM-DD). The user was synced without that value.",
        remediation: [
            "Correct the value in your HR tool, or the field's type in the provisioning settings.",
            "Run the sync again.",
        ],
    }
    CUSTOM_FIELD_REQUIRED {
        category: UserFlow, severity: Error, needs_action: true,
        title: "A required custom field is missing",
        message: "The provisioning settings mark this custom field as required and the record does not carry it, or carries a value of the wrong type (see the CUSTOM_FIELD_TYPE_MISMATCH of the same field). The record was skipped.",
        remediation: [
            "Fill in the field in your HR tool (with a value of the field's type) and check that your integration sends it under custom_fields (CSV: a column custom.<key>).",
            "Or mark the field as not required in the provisioning settings.",
            "Run the sync again.",
        ],
    }
    RESCINDED_HIRE_NOT_CREATED {
        category: UserFlow, severity: Info, needs_action: false,
        title: "A rescinded hire was not created",
        message: "The offer was rescinded before the start date, so no user was created. Nothing needs to be done.",
        remediation: [
            "No action is needed.",
        ],
    }
    TERMINATED_USER_NOT_CREATED {
        category: UserFlow, severity: Info, needs_action: false,
        title: "A former employee was not created",
        message: "The person has left the company and has no user in the directory, so none was created. Nothing needs to be done.",
        remediation: [
            "No action is needed.",
        ],
    }
    MANAGER_DOES_NOT_EXIST {
        category: ApprovalFlow, severity: Error, needs_action: true,
        title: "The manager cannot be found",
        message: "The manager (manager_external_id) is neither in this push nor in the directory, or their own record was skipped. A user is only created once their manager exists, so the record was skipped.",
        remediation: [
            "If the message names the manager's row and issue, fix that issue first: this record will follow.",
            "Otherwise check the manager's employee ID on this employee's profile in your HR tool, and that the manager is included in the sync.",
            "Run the sync again.",
        ],
    }
    MANAGER_IS_ARCHIVED {
        category: ApprovalFlow, severity: Warning, needs_action: true,
        title: "The manager has left",
        message: "The manager is archived or is being offboarded. The user was synced with that manager, but their trips will wait for an approver who can no longer approve.",
        remediation: [
            "Assign a new manager to the employee in your HR tool.",
            "Run the sync again.",
        ],
    }
    GUEST_USERS_CANNOT_BE_APPROVERS {
        category: ApprovalFlow, severity: Error, needs_action: true,
        title: "A guest cannot approve",
        message: "The manager of this record is a guest, and guests cannot approve trips. The record was skipped.",
        remediation: [
            "Give the employee a manager who is a member or an admin, or change the manager's role.",
            "Run the sync again.",
        ],
    }
    GUEST_MEMBERS_REQUIRE_APPROVAL_FOR_ALL_TRIPS {
        category: ApprovalFlow, severity: Error, needs_action: true,
        title: "A guest must have every trip approved",
        message: "Guests must use the all_trips approval process. The record was skipped.",
        remediation: [
            "Set the approval process to all_trips for this guest, or stop sending it (guests get all_trips by default).",
            "Run the sync again.",
        ],
    }
    USER_CANNOT_BE_OWN_MANAGER {
        category: ApprovalFlow, severity: Error, needs_action: true,
        title: "The user is their own manager",
        message: "The record names itself as its manager, so nobody could approve its trips. The record was skipped.",
        remediation: [
            "Set the employee's real manager in your HR tool (or leave it empty for the head of the company).",
            "Run the sync again.",
        ],
    }
    MANAGER_CYCLE {
        category: ApprovalFlow, severity: Error, needs_action: true,
        title: "The manager chain loops",
        message: "Following manager after manager leads back to this user, so approvals would go round in circles. Every record of the loop was skipped; the message lists the loop.",
        remediation: [
            "In your HR tool, change the manager of one person of the loop so that the chain ends at someone without a manager.",
            "Run the sync again.",
        ],
    }
    USER_EXISTS_IN_INVITED_STATE {
        category: Directory, severity: Error, needs_action: true,
        title: "The person was invited by hand",
        message: "A user with this e-mail address was invited by hand and has not signed in yet, so the sync cannot take the account over. The record was skipped.",
        remediation: [
            "Revoke the invitation: POST /v1/users/{id}/revoke-invitation with the user id given in this issue.",
            "Run the sync again: the user is created from the HR record.",
        ],
    }
    USER_HAS_UPCOMING_TRIPS {
        category: Directory, severity: Warning, needs_action: false,
        title: "Offboarding waits for upcoming trips",
        message: "The user should be archived but still has upcoming trips. The user is marked pending_archive and later syncs archive them once the trips are over.",
        remediation: [
            "No action is needed: every later sync retries the offboarding.",
            "To offboard now, cancel or reassign the user's upcoming trips, then run a sync.",
        ],
    }
    EMAIL_USED_BY_ARCHIVED_USER {
        category: Directory, severity: Error, needs_action: true,
        title: "The e-mail address belongs to an archived user",
        message: "An archived user with another external id already owns this e-mail address. The record was skipped.",
        remediation: [
            "If the person is returning, give the new HR profile the same employee ID as the old one: the archived user is then reactivated.",
            "Otherwise give the new employee another e-mail address.",
            "Run the sync again.",
        ],
    }
    WORKSPACE_LIMIT_REACHED {
        category: Directory, severity: Error, needs_action: true,
        title: "The workspace has no seat left",
        message: "Creating (or reactivating) this user would take the workspace past its seat limit (seat_limit in the provisioning settings; active, invited and pending_archive users hold a seat). Seats are given in the order the run applies records: managers first, then row order. The record was skipped.",
        remediation: [
            "Check how many seats are in use: GET /v1/users?state=active and ?state=invited.",
            "Free seats by offboarding people who have left (a full sync, or employment_status terminated), or by revoking unused invitations (POST /v1/users/{id}/revoke-invitation).",
            "Or raise seat_limit in the provisioning settings (PUT /v1/settings/provisioning).",
            "Run the sync again: the skipped records are created in manager-first order.",
        ],
    }
    OUTSIDE_SYNC_PERIMETER {
        category: Directory, severity: Info, needs_action: false,
        title: "The person is outside the sync perimeter",
        message: "The record's e-mail domain or fields do not meet the sync perimeter of the provisioning settings. A new person is not created (counted as ignored); an existing user who left the perimeter is archived.",
        remediation: [
            "No action is needed if the person should not have a user.",
            "Otherwise correct the person's e-mail address or fields in your HR tool, or widen sync_perimeter in the provisioning settings.",
            "Run the sync again.",
        ],
    }
    NO_GROUP_MATCH {
        category: Directory, severity: Warning, needs_action: true,
        title: "No group rule matches the user",
        message: "The provisioning settings define group rules and none of them matches this user. The user was synced without a group.",
        remediation: [
            "Check the user's teams and custom fields in your HR tool against the conditions of group_rules.",
            "Fill in the missing value in your HR tool, or add a rule (a catch-all group, say) to group_rules in the provisioning settings.",
            "Run the sync again.",
        ],
    }
    ARCHIVE_GRACE_PERIOD_STARTED {
        category: Directory, severity: Info, needs_action: false,
        title: "A user missing from a full sync waits for the grace period",
        message: "The user is not in this full sync. Because the provisioning settings set archive_grace_days, the user is marked pending_archive and is archived only if still missing when the grace period ends; a run that contains the user again restores them.",
        remediation: [
            "No action is needed if the person has left: the user is archived when the grace period ends.",
            "If the person was left out of the push by mistake, add them back in your HR tool or integration and run a sync before the date in the message.",
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_finds_its_own_entry() {
        for entry in ENTRIES {
            assert_eq!(entry.code.entry().code, entry.code);
            assert_eq!(IssueCode::parse(entry.code.as_str()), Some(entry.code));
        }
    }

    #[test]
    fn codes_serialize_as_their_names() {
        let json = serde_json::to_value(IssueCode::MANAGER_DOES_NOT_EXIST).unwrap();
        assert_eq!(json, "MANAGER_DOES_NOT_EXIST");
    }

    #[test]
    fn errors_skip_records_and_need_action() {
        for entry in ENTRIES.iter().filter(|e| e.severity == Severity::Error) {
            assert!(entry.needs_action, "{}", entry.code);
            assert!(entry.message.contains("skipped"), "{}", entry.code);
        }
    }
}
