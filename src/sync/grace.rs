//! The archive grace period (`archive_grace_days`): a user missing from a full sync is marked
//! `pending_archive` (reason `missing_from_full_sync`) instead of being archived, and is
//! archived only if still missing once the grace period is over — checked by every run, and
//! by [`archive_expired`], which the worker calls daily. A run that contains the user again
//! restores them (USER_RESTORED).

use chrono::{Days, NaiveDate};
use diesel::QueryResult;

use crate::domain::{PendingArchiveReason, UserState};
use crate::store::models::DirectoryEntry;
use crate::store::{now, organizations, users, write_transaction, DbConn};

/// Why a user is pending_archive; users marked before reasons were kept waited for trips.
pub fn pending_reason(user: &DirectoryEntry) -> Option<PendingArchiveReason> {
    (user.state == UserState::PendingArchive).then(|| {
        user.pending_archive_reason
            .as_deref()
            .and_then(|reason| PendingArchiveReason::parse(reason).ok())
            .unwrap_or(PendingArchiveReason::UpcomingTrips)
    })
}

/// The day the grace period of a user marked at `since` (RFC 3339) ends.
pub fn grace_ends(since: &str, days: u32) -> Option<NaiveDate> {
    let marked = chrono::DateTime::parse_from_rfc3339(since)
        .ok()?
        .date_naive();
    marked.checked_add_days(Days::new(u64::from(days)))
}

/// Whether a user waiting for the grace period has waited long enough (a user whose start
/// cannot be read has).
pub fn is_expired(user: &DirectoryEntry, days: u32, today: NaiveDate) -> bool {
    user.pending_archive_since
        .as_deref()
        .and_then(|since| grace_ends(since, days))
        .is_none_or(|ends| ends <= today)
}

/// What [`archive_expired`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Users archived.
    pub archived: usize,
    /// Users whose grace period ended while they have upcoming trips: they now wait for the
    /// trips (`pending_archive`, reason `upcoming_trips`), like any offboarding.
    pub waiting_for_trips: usize,
}

/// Archives the organization's users whose grace period is over on `today`, in one
/// transaction. For the worker's daily pass; runs do the same as part of their plan.
pub fn archive_expired(
    conn: &mut DbConn,
    organization_id: &str,
    today: NaiveDate,
) -> QueryResult<Expired> {
    let settings = organizations::settings(conn, organization_id)?;
    write_transaction(conn, |conn| {
        let expired: Vec<DirectoryEntry> = users::load_directory(conn, organization_id)?
            .into_iter()
            .filter(|user| pending_reason(user) == Some(PendingArchiveReason::MissingFromFullSync))
            .filter(|user| is_expired(user, settings.archive_grace_days, today))
            .collect();
        let (with_trips, without): (Vec<_>, Vec<_>) = expired
            .into_iter()
            .partition(|user| user.upcoming_trips > 0);
        let ids = |users: Vec<DirectoryEntry>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
        let (archive, wait) = (ids(without), ids(with_trips));
        let at = now();
        users::set_state(
            conn,
            organization_id,
            &archive,
            UserState::Archived,
            None,
            &at,
        )?;
        users::set_state(
            conn,
            organization_id,
            &wait,
            UserState::PendingArchive,
            Some(PendingArchiveReason::UpcomingTrips),
            &at,
        )?;
        if !archive.is_empty() || !wait.is_empty() {
            tracing::info!(
                organization_id,
                archived = archive.len(),
                waiting_for_trips = wait.len(),
                "archive grace periods ended"
            );
        }
        Ok(Expired {
            archived: archive.len(),
            waiting_for_trips: wait.len(),
        })
    })
}

/// [`archive_expired`] for every organization, one transaction each: the worker's daily pass.
/// An organization whose pass fails is logged and the others go on.
pub fn archive_expired_everywhere(conn: &mut DbConn, today: NaiveDate) -> QueryResult<Expired> {
    let mut total = Expired::default();
    for organization_id in organizations::ids(conn)? {
        match archive_expired(conn, &organization_id, today) {
            Ok(done) => {
                total.archived += done.archived;
                total.waiting_for_trips += done.waiting_for_trips;
            }
            Err(error) => {
                tracing::error!(%organization_id, %error, "cannot end the archive grace periods")
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::test_fixtures::{entry, stored};

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn waiting_since(since: Option<&str>) -> DirectoryEntry {
        let mut row = stored("u-1", "E1");
        row.state = "pending_archive".to_owned();
        row.pending_archive_reason = Some("missing_from_full_sync".to_owned());
        row.pending_archive_since = since.map(str::to_owned);
        entry(&row)
    }

    #[test]
    fn the_grace_period_ends_that_many_days_after_the_day_of_marking() {
        assert_eq!(
            grace_ends("2026-11-25T23:59:00Z", 7),
            Some(day("2026-12-02"))
        );
        let user = waiting_since(Some("2026-11-25T09:00:00Z"));
        assert!(!is_expired(&user, 7, day("2026-12-01")));
        assert!(is_expired(&user, 7, day("2026-12-02")));
        assert!(is_expired(&user, 0, day("2026-11-25")));
        assert!(is_expired(&waiting_since(None), 7, day("2026-11-25")));
    }

    #[test]
    fn a_pending_archive_user_without_a_reason_waits_for_trips() {
        let mut row = stored("u-1", "E1");
        row.state = "pending_archive".to_owned();
        assert_eq!(
            pending_reason(&entry(&row)),
            Some(PendingArchiveReason::UpcomingTrips)
        );
        assert_eq!(
            pending_reason(&waiting_since(None)),
            Some(PendingArchiveReason::MissingFromFullSync)
        );
        assert_eq!(pending_reason(&entry(&stored("u-2", "E2"))), None);
    }
}
