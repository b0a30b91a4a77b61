//! Records of one push that share an external id or an e-mail address. None of them is
//! applied: there is no way to know which one is right.

use ahash::AHashMap as HashMap;

use crate::catalogue::IssueCode;
use crate::sync::candidate::{Candidate, Issue};

pub fn mark_duplicates(candidates: &mut [Candidate]) {
    let by_external_id = duplicate_groups(candidates, |c| c.external_id.as_deref());
    let by_email = duplicate_groups(candidates, |c| c.email_key.as_deref());
    for rows in &by_external_id {
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
    for rows in &by_email {
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

/// The groups of two or more candidates with the same key, each in row order. Keys are
/// borrowed and a list is made only for a key seen twice, so that a push without duplicates
/// costs one table entry per record.
fn duplicate_groups<'c>(
    candidates: &'c [Candidate],
    key: impl Fn(&'c Candidate) -> Option<&'c str>,
) -> Vec<Vec<usize>> {
    let mut first_of: HashMap<&str, usize> = HashMap::with_capacity(candidates.len());
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for (index, candidate) in candidates.iter().enumerate() {
        let Some(key) = key(candidate) else {
            continue;
        };
        let first = *first_of.entry(key).or_insert(index);
        if first != index {
            groups
                .entry(first)
                .or_insert_with(|| vec![first])
                .push(index);
        }
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_unstable_by_key(|rows| rows[0]);
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
            text_hash: None,
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
