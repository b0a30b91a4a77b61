//! Records of one push that share an external id or an e-mail address. None of them is
//! applied: there is no way to know which one is right.

use ahash::AHashMap as HashMap;

use crate::catalogue::IssueCode;
use crate::sync::candidate::{Candidate, Issue};

pub fn mark_duplicates(candidates: &mut [Candidate]) {
    let by_external_id = group(candidates, |c| c.external_id.clone());
    let by_email = group(candidates, |c| c.email_key.clone());
    for rows in by_external_id.values().filter(|rows| rows.len() > 1) {
        for &index in rows {
            let value = candidates[index].external_id.clone().unwrap_or_default();
            let others = other_rows(candidates, rows, index);
            candidates[index].report(Issue::new(
                IssueCode::DUPLICATE_EXTERNAL_ID,
                "external_id",
                format!("The external_id {value:?} is also used by {others}."),
            ));
        }
    }
    for rows in by_email.values().filter(|rows| rows.len() > 1) {
        for &index in rows {
            let value = candidates[index].shown.email.clone().unwrap_or_default();
            let others = other_rows(candidates, rows, index);
            candidates[index].report(Issue::new(
                IssueCode::USER_DUPLICATE_EMAIL,
                "email",
                format!("The email {value:?} is also used by {others} (e-mail addresses are compared without regard to case)."),
            ));
        }
    }
}

fn group(
    candidates: &[Candidate],
    key: impl Fn(&Candidate) -> Option<String>,
) -> HashMap<String, Vec<usize>> {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::with_capacity(candidates.len());
    for (index, candidate) in candidates.iter().enumerate() {
        if let Some(key) = key(candidate) {
            groups.entry(key).or_default().push(index);
        }
    }
    groups
}

/// "row 4" or "rows 4, 9 and 12" (at most ten listed).
fn other_rows(candidates: &[Candidate], rows: &[usize], me: usize) -> String {
    // A group can hold thousands of rows (a placeholder e-mail): name ten, count the rest.
    let mut others: Vec<String> = rows
        .iter()
        .filter(|&&i| i != me)
        .take(10)
        .map(|&i| candidates[i].row.to_string())
        .collect();
    let more = rows.len().saturating_sub(1 + others.len());
    if more > 0 {
        return format!("rows {} and {more} more", others.join(", "));
    }
    match others.pop() {
        Some(last) if others.is_empty() => format!("row {last}"),
        Some(last) => format!("rows {} and {last}", others.join(", ")),
        None => "another row".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::candidate::Shown;

    fn candidate(row: u32, external_id: &str, email: &str) -> Candidate {
        Candidate {
            row,
            shown: Shown {
                email: Some(email.to_owned()),
                ..Shown::default()
            },
            external_id: Some(external_id.to_owned()),
            email_key: Some(email.to_lowercase()),
            record: None,
            links: None,
            issues: Vec::new(),
        }
    }

    fn codes(candidate: &Candidate) -> Vec<&'static str> {
        candidate.issues.iter().map(|i| i.code.as_str()).collect()
    }

    #[test]
    fn every_record_sharing_an_id_or_an_email_is_flagged_and_names_the_others() {
        let mut candidates = vec![
            candidate(1, "E1", "a@x.io"),
            candidate(2, "E1", "b@x.io"),
            candidate(3, "E3", "A@X.io"),
            candidate(4, "E4", "d@x.io"),
            candidate(5, "E1", "e@x.io"),
        ];
        mark_duplicates(&mut candidates);
        assert_eq!(
            codes(&candidates[0]),
            ["DUPLICATE_EXTERNAL_ID", "USER_DUPLICATE_EMAIL"]
        );
        assert_eq!(codes(&candidates[1]), ["DUPLICATE_EXTERNAL_ID"]);
        assert_eq!(codes(&candidates[2]), ["USER_DUPLICATE_EMAIL"]);
        assert!(candidates[3].issues.is_empty());
        assert!(candidates[0].issues[0].message.contains("rows 2 and 5"));
        assert!(candidates[2].issues[0].message.contains("row 1"));
    }
}
