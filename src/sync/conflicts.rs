//! Checks of a record against the users already in the directory: whose is this e-mail?

use crate::catalogue::IssueCode;
use crate::domain::UserState;
use crate::sync::candidate::{Candidate, Issue};
use crate::sync::directory::Directory;

/// Flags records whose e-mail address belongs to another user of the directory.
pub fn check_email_owners(candidates: &mut [Candidate], directory: &Directory) {
    for candidate in candidates.iter_mut() {
        let Some(email_key) = &candidate.email_key else {
            continue;
        };
        let Some(owner) = directory.by_email_key(email_key) else {
            continue;
        };
        if owner.external_id.is_some() && owner.external_id == candidate.external_id {
            continue;
        }
        let email = candidate.shown.email.clone().unwrap_or_default();
        let owner_name = describe_owner(owner);
        let issue = match owner.state {
            UserState::Invited => Issue::new(
                IssueCode::USER_EXISTS_IN_INVITED_STATE,
                "email",
                format!(
                    "{email:?} belongs to {owner_name}, invited by hand and not yet active. Revoke the invitation (POST /v1/users/{}/revoke-invitation) and sync again.",
                    owner.id
                ),
            ),
            UserState::Archived => Issue::new(
                IssueCode::EMAIL_USED_BY_ARCHIVED_USER,
                "email",
                format!("{email:?} belongs to the archived user {owner_name}."),
            ),
            UserState::Active | UserState::PendingArchive => Issue::new(
                IssueCode::USER_DUPLICATE_EMAIL,
                "email",
                format!("{email:?} already belongs to {owner_name}."),
            ),
        };
        candidate.report(issue);
    }
}

fn describe_owner(owner: &crate::store::models::DirectoryEntry) -> String {
    let external = match &owner.external_id {
        Some(id) => format!("external id {id:?}"),
        None => "no external id".to_owned(),
    };
    format!(
        "{} {} (user {}, {external})",
        owner.first_name, owner.last_name, owner.id
    )
}

#[cfg(test)]
#[path = "conflicts_tests.rs"]
mod tests;
