//! The workspace seat limit (`seat_limit`): a run creates or reactivates users only while
//! seats are left.
//!
//! A seat is held by every active, invited and pending_archive user (a pending_archive user is
//! still a user until archived). Seats are given in the order the run applies records —
//! managers first, then row order — so that a manager is never left out in favour of the
//! people they manage. Seats freed by this run's own archives count from the next run on: the
//! order of a run's offboardings and creations must not decide who gets a user.

use chrono::NaiveDate;

use crate::catalogue::IssueCode;
use crate::domain::UserState;
use crate::sync::candidate::{Candidate, Issue};
use crate::sync::directory::Directory;

/// The seats left for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Seats {
    limit: Option<u32>,
    taken: u32,
}

impl Seats {
    /// The seats of an organization with this limit, given its directory before the run.
    pub fn new(limit: Option<u32>, directory: &Directory) -> Seats {
        let taken = directory
            .users
            .iter()
            .filter(|user| {
                matches!(
                    user.state,
                    UserState::Active | UserState::Invited | UserState::PendingArchive
                )
            })
            .count();
        Seats {
            limit,
            taken: u32::try_from(taken).unwrap_or(u32::MAX),
        }
    }

    pub fn unlimited() -> Seats {
        Seats {
            limit: None,
            taken: 0,
        }
    }

    /// Seats held once the run is applied (so far).
    pub fn taken(&self) -> u32 {
        self.taken
    }

    /// Gives a seat to a record that creates or reactivates a user, or skips the record with
    /// WORKSPACE_LIMIT_REACHED when none is left. Records that change no seat pass.
    pub fn admit(&mut self, candidate: &mut Candidate, directory: &Directory, today: NaiveDate) {
        let Some(record) = &candidate.record else {
            return;
        };
        if record.is_leaving(today) || candidate.has(IssueCode::OUTSIDE_SYNC_PERIMETER) {
            return;
        }
        let verb = match directory.by_external_id(&record.external_id) {
            None => "created",
            Some(user) if user.state == UserState::Archived => "reactivated",
            Some(_) => return,
        };
        match self.limit {
            Some(limit) if self.taken >= limit => candidate.report(Issue::new(
                IssueCode::WORKSPACE_LIMIT_REACHED,
                "external_id",
                format!(
                    "The workspace's {limit} seat(s) are all taken, so the user was not {verb}."
                ),
            )),
            _ => self.taken = self.taken.saturating_add(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::SyncMode;
    use crate::store::models::UserRow;
    use crate::sync::approval::check_approval_flow;
    use crate::sync::test_fixtures::{candidates, codes, directory, person, stored, today};

    fn with_state(row: UserRow, state: &str) -> UserRow {
        UserRow {
            state: state.to_owned(),
            ..row
        }
    }

    /// Codes per record after the approval-flow checks with `limit` seats.
    fn admitted(
        limit: Option<u32>,
        rows: &[UserRow],
        records: Vec<serde_json::Value>,
    ) -> Vec<Vec<&'static str>> {
        let mut candidates = candidates(records);
        let directory = directory(rows, &[]);
        let mut seats = Seats::new(limit, &directory);
        check_approval_flow(
            &mut candidates,
            &directory,
            SyncMode::Incremental,
            today(),
            &mut seats,
        );
        candidates.iter().map(codes).collect()
    }

    #[test]
    fn active_invited_and_pending_archive_users_hold_seats_and_archived_ones_do_not() {
        let rows = [
            stored("u-1", "A"),
            with_state(stored("u-2", "B"), "invited"),
            with_state(stored("u-3", "C"), "pending_archive"),
            with_state(stored("u-4", "D"), "archived"),
        ];
        assert_eq!(Seats::new(Some(10), &directory(&rows, &[])).taken(), 3);
    }

    #[test]
    fn creations_up_to_the_limit_pass_and_the_next_one_is_skipped() {
        let rows = [stored("u-1", "A")];
        let codes = admitted(
            Some(3),
            &rows,
            vec![
                person("A", json!({})),
                person("N1", json!({})),
                person("N2", json!({})),
                person("N3", json!({})),
            ],
        );
        assert_eq!(
            codes,
            [vec![], vec![], vec![], vec!["WORKSPACE_LIMIT_REACHED"]]
        );
    }

    #[test]
    fn managers_get_seats_before_the_people_they_manage_whatever_the_row_order() {
        let codes = admitted(
            Some(1),
            &[],
            vec![
                person("R", json!({"manager_external_id": "M"})),
                person("M", json!({})),
            ],
        );
        assert_eq!(codes[1], Vec::<&str>::new());
        assert_eq!(codes[0], ["WORKSPACE_LIMIT_REACHED"]);
    }

    #[test]
    fn a_manager_past_the_limit_blocks_the_existing_people_it_would_manage() {
        let rows = [stored("u-1", "R")];
        let codes = admitted(
            Some(1),
            &rows,
            vec![
                person("R", json!({"manager_external_id": "M"})),
                person("M", json!({})),
            ],
        );
        assert_eq!(codes[1], ["WORKSPACE_LIMIT_REACHED"]);
        assert_eq!(codes[0], ["MANAGER_DOES_NOT_EXIST"]);
    }

    #[test]
    fn a_reactivation_counts_as_a_creation_and_leavers_take_no_seat() {
        let rows = [
            stored("u-1", "A"),
            with_state(stored("u-2", "B"), "archived"),
        ];
        let codes = admitted(
            Some(1),
            &rows,
            vec![
                person("N1", json!({"employment_status": "terminated"})),
                person("B", json!({})),
            ],
        );
        assert_eq!(codes[0], Vec::<&str>::new());
        assert_eq!(codes[1], ["WORKSPACE_LIMIT_REACHED"]);
    }

    #[test]
    fn without_a_limit_everyone_is_admitted() {
        let codes = admitted(
            None,
            &[],
            vec![person("N1", json!({})), person("N2", json!({}))],
        );
        assert!(codes.iter().all(Vec::is_empty), "{codes:?}");
    }
}
