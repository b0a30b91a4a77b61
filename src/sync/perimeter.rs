//! The sync perimeter (`sync_perimeter`): the people the syncs manage, by e-mail domain and/or
//! a field condition.
//!
//! A new person outside it is not created: their record keeps an OUTSIDE_SYNC_PERIMETER issue
//! (info), which the approval flow reads (nobody can have them as manager) and the planner
//! reads (counted as ignored). An existing user who leaves it is archived by the planner,
//! which judges the user as the run leaves them (a record may omit fields the directory has).

use serde_json::Value;

use crate::catalogue::IssueCode;
use crate::domain::{SyncPerimeter, UserState};
use crate::sync::candidate::{Candidate, Issue};
use crate::sync::condition::{holds, record_values};
use crate::sync::directory::Directory;

/// Why a person with this e-mail address and these field values is outside the perimeter;
/// `None` when inside.
pub fn outside(
    perimeter: &SyncPerimeter,
    email: &str,
    values: impl Fn(&str) -> Vec<Value>,
) -> Option<String> {
    let domain = email
        .rsplit_once('@')
        .map(|(_, domain)| domain.trim().to_lowercase())
        .unwrap_or_default();
    let allowed = perimeter.email_domains.is_empty()
        || perimeter
            .email_domains
            .iter()
            .any(|allowed| allowed.trim().trim_start_matches('@').to_lowercase() == domain);
    if !allowed {
        return Some(format!(
            "the e-mail domain {domain:?} is not one of the perimeter's ({})",
            perimeter.email_domains.join(", ")
        ));
    }
    match &perimeter.when {
        Some(condition) if !holds(condition, values) => Some(format!(
            "the field {:?} does not meet the perimeter's condition",
            condition.field
        )),
        _ => None,
    }
}

/// Marks the new people (unknown to the directory, and joining rather than leaving) whose
/// records are outside the perimeter.
pub fn check_new_records(
    candidates: &mut [Candidate],
    directory: &Directory,
    perimeter: Option<&SyncPerimeter>,
    today: chrono::NaiveDate,
) {
    let Some(perimeter) = perimeter else {
        return;
    };
    for candidate in candidates.iter_mut() {
        let Some(record) = &candidate.record else {
            continue;
        };
        if record.is_leaving(today) || directory.by_external_id(&record.external_id).is_some() {
            continue;
        }
        let why = outside(perimeter, record.email.as_str(), |field| {
            record_values(record, field)
        });
        if let Some(why) = why {
            candidate.report(not_created(&why));
        }
    }
}

fn not_created(why: &str) -> Issue {
    Issue::new(
        IssueCode::OUTSIDE_SYNC_PERIMETER,
        "email",
        format!("The person is outside the sync perimeter ({why}): no user was created."),
    )
}

/// The issue of an existing user outside the perimeter, offboarded from `before` to `after`.
pub fn left(why: &str, before: UserState, after: UserState) -> Issue {
    let what = match (before, after) {
        (UserState::Archived, _) => "stays archived",
        (_, UserState::PendingArchive) => "is offboarded once their upcoming trips are over",
        _ => "was archived",
    };
    Issue::new(
        IssueCode::OUTSIDE_SYNC_PERIMETER,
        "email",
        format!("The user is outside the sync perimeter ({why}) and {what}."),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sync::test_fixtures::{candidates, codes, directory, person, stored, today};

    fn perimeter(value: Value) -> SyncPerimeter {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn domains_are_compared_without_case_and_an_empty_list_allows_any() {
        let domains = perimeter(json!({"email_domains": ["Example.com", "@corp.io"]}));
        assert_eq!(outside(&domains, "ada@EXAMPLE.COM", |_| Vec::new()), None);
        assert_eq!(outside(&domains, "ada@corp.io", |_| Vec::new()), None);
        let why = outside(&domains, "ada@gmail.com", |_| Vec::new()).unwrap();
        assert!(why.contains("\"gmail.com\""), "{why}");
        assert!(outside(&domains, "ada@sub.example.com", |_| Vec::new()).is_some());
        let anyone = perimeter(json!({"email_domains": []}));
        assert_eq!(outside(&anyone, "ada@gmail.com", |_| Vec::new()), None);
    }

    #[test]
    fn the_condition_must_hold_as_well() {
        let sales = perimeter(json!({
            "email_domains": ["example.com"],
            "when": {"field": "teams", "equals": "Sales"}
        }));
        let in_sales = |_: &str| vec![json!("Sales")];
        assert_eq!(outside(&sales, "a@example.com", in_sales), None);
        let why = outside(&sales, "a@example.com", |_| Vec::new()).unwrap();
        assert!(why.contains("\"teams\""), "{why}");
    }

    #[test]
    fn only_new_joining_people_are_marked_and_they_stay_applicable() {
        let rows = [stored("u-1", "KNOWN")];
        let mut candidates = candidates(vec![
            person("KNOWN", json!({"email": "known@gmail.com"})),
            person("NEW", json!({"email": "new@gmail.com"})),
            person(
                "LEAVER",
                json!({"email": "l@gmail.com", "employment_status": "terminated"}),
            ),
            person("INSIDE", json!({})),
        ]);
        let limits = perimeter(json!({"email_domains": ["example.com"]}));
        check_new_records(
            &mut candidates,
            &directory(&rows, &[]),
            Some(&limits),
            today(),
        );
        assert_eq!(codes(&candidates[0]), Vec::<&str>::new());
        assert_eq!(codes(&candidates[1]), ["OUTSIDE_SYNC_PERIMETER"]);
        assert!(!candidates[1].is_skipped());
        assert_eq!(codes(&candidates[2]), Vec::<&str>::new());
        assert_eq!(codes(&candidates[3]), Vec::<&str>::new());
    }
}
