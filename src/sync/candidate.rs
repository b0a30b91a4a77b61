//! A record on its way through a run: what it says, what is wrong with it, and whether it can
//! still be applied.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::catalogue::IssueCode;
use crate::domain::{
    check_text, ApprovalProcess, DateOfBirth, Email, EmploymentStatus, Gender, IsoDate, Phone,
    Role, Severity, Username,
};
use crate::sync::validate::TEXT_MAX_LENGTH;

/// Something wrong with a record (or one of its teams), for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub code: IssueCode,
    /// The record field at fault (`email`, `custom_fields.cost_center`…), when there is one.
    pub field: Option<String>,
    /// A sentence naming the offending value.
    pub message: String,
    /// The team at fault, for team issues.
    pub team: Option<String>,
}

impl Issue {
    pub fn new(code: IssueCode, field: &str, message: impl Into<String>) -> Issue {
        Issue {
            code,
            field: Some(field.to_owned()),
            message: message.into(),
            team: None,
        }
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }
}

/// What an optional field asks for: leave the directory's value, clear it, or set it.
/// A field absent from the record is `Keep`; an explicit `null` (or empty text) is `Clear`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

/// A record whose fields all passed their rules. Text is trimmed.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub external_id: String,
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    pub username: Patch<Username>,
    pub start_date: Patch<IsoDate>,
    pub end_date: Patch<IsoDate>,
    pub date_of_birth: Patch<DateOfBirth>,
    pub gender: Patch<Gender>,
    pub phone: Patch<Phone>,
    pub manager_external_id: Patch<String>,
    pub role: Option<Role>,
    pub approval_process: Option<ApprovalProcess>,
    pub employment_status: EmploymentStatus,
    /// The complete list of the person's teams, when the record says it.
    pub teams: Option<Vec<String>>,
    /// Custom fields to set (`Some`) or clear (`None`); keys the record does not name are kept.
    pub custom_fields: BTreeMap<String, Option<Value>>,
    /// A hash of all the above: two records with the same fingerprint apply the same way.
    pub fingerprint: String,
}

/// The values of a record as the HR tool sent them, to name the person in the report even
/// when the values are invalid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shown {
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// One record of a push between validation and planning.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// 1-based position in the push (the line for CSV uploads).
    pub row: u32,
    pub shown: Shown,
    /// The external id when it is valid, even if other fields are not.
    pub external_id: Option<String>,
    /// The lowercased e-mail address when it is valid, even if other fields are not.
    pub email_key: Option<String>,
    /// The record while nothing prevents applying it.
    pub record: Option<Record>,
    /// What the approval-flow checks read, kept when the record is skipped (whenever its
    /// external id is valid), so that a skipped record still gets every one of its issues.
    pub links: Option<Links>,
    pub issues: Vec<Issue>,
    /// The hash of the record's exact text (`unchanged::text_hash`), when the run may stamp the
    /// user with it: a JSON record without unknown fields.
    pub text_hash: Option<u128>,
}

/// A record's place in the approval flow, as far as its fields could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Links {
    pub manager_external_id: Patch<String>,
    pub role: Option<Role>,
    pub approval_process: Option<ApprovalProcess>,
    /// Terminated, rescinded or past the end date (see [`Record::is_leaving`]).
    pub leaving: bool,
}

impl Candidate {
    /// A record that could not be read at all.
    pub fn unreadable(row: u32, reason: &str) -> Candidate {
        Candidate {
            row,
            shown: Shown::default(),
            external_id: None,
            email_key: None,
            record: None,
            links: None,
            issues: vec![Issue {
                code: IssueCode::FIELD_TYPE_INVALID,
                field: None,
                message: format!("The record cannot be read: {reason}."),
                team: None,
            }],
            text_hash: None,
        }
    }

    /// Names an unreadable record by whatever identity could be recovered from it (see
    /// `record::recover_identity`): the report shows who it is, and a full sync does not
    /// offboard the person because their record could not be read.
    pub fn named(mut self, external_id: Option<String>, email: Option<String>) -> Candidate {
        self.external_id = external_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty() && check_text(id, TEXT_MAX_LENGTH).is_ok())
            .map(str::to_owned);
        self.email_key = email
            .as_deref()
            .and_then(|email| Email::parse(email).ok())
            .map(|email| email.normalized());
        self.shown.external_id = external_id;
        self.shown.email = email;
        self
    }

    /// Whether the record has an issue with this code.
    pub fn has(&self, code: IssueCode) -> bool {
        self.issues.iter().any(|issue| issue.code == code)
    }

    /// Adds an issue; an error means the record will not be applied.
    pub fn report(&mut self, issue: Issue) {
        if issue.severity() == Severity::Error {
            self.record = None;
        }
        self.issues.push(issue);
    }

    pub fn is_skipped(&self) -> bool {
        self.record.is_none()
    }

    /// The first error of a skipped record: what a dependent record's message points at.
    pub fn first_error(&self) -> Option<&Issue> {
        self.issues
            .iter()
            .find(|issue| issue.severity() == Severity::Error)
    }
}

impl Record {
    /// Hashes every field in a fixed order with separators (xxh3, 128 bits), so that a record
    /// pushed again unchanged is recognised without comparing it field by field.
    pub fn compute_fingerprint(&self) -> String {
        use std::fmt::Write as _;
        fn patch<T: std::fmt::Display>(out: &mut String, patch: &Patch<T>) {
            let _ = match patch {
                Patch::Keep => write!(out, "\u{1}k"),
                Patch::Clear => write!(out, "\u{1}c"),
                Patch::Set(value) => write!(out, "\u{1}s{value}"),
            };
        }
        let mut out = String::with_capacity(256);
        let _ = write!(
            out,
            "v1\u{1}{}\u{1}{}\u{1}{}\u{1}{}",
            self.external_id, self.email, self.first_name, self.last_name
        );
        patch(&mut out, &self.username);
        patch(&mut out, &self.start_date);
        patch(&mut out, &self.end_date);
        patch(&mut out, &self.date_of_birth);
        patch(&mut out, &self.gender);
        patch(&mut out, &self.phone);
        patch(&mut out, &self.manager_external_id);
        let _ = write!(
            out,
            "\u{1}{:?}\u{1}{:?}\u{1}{}\u{1}{:?}\u{1}{:?}",
            self.role,
            self.approval_process,
            self.employment_status,
            self.teams,
            self.custom_fields
        );
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(out.as_bytes()))
    }

    /// True when the record offboards the person (or never onboards them): terminated,
    /// rescinded, or past their end date. Such a record needs no approver.
    pub fn is_leaving(&self, today: chrono::NaiveDate) -> bool {
        self.employment_status != EmploymentStatus::Active
            || matches!(&self.end_date, Patch::Set(end) if end.date() < today)
    }
}
