//! Recognising a push in which nothing changed, without parsing its records.
//!
//! A run stamps every user whose record it applied cleanly — no issue of any severity, no
//! unknown field, the user active after the run — with a hash of the record's exact text and
//! of what else decides how that text applies: the organization's settings (the document
//! itself) and this build's sources ([`StampContext`]). The database keeps a stamp honest: any
//! other write of the row clears it, and so does a change of what the checks read of the
//! user's manager (triggers of the migration `user_text_stamps`).
//!
//! A push is then recognised as unchanged ([`finish_if_unchanged`]) when each of its records
//! carries the stamp of a different user, and nothing outside the records can make the run do
//! anything: every such user is active and not past an end date, their managers are users the
//! push names too and follow no loop, nobody the push does not name would be acted on (a full
//! sync names every active user, and no offboarding waits), and the approval settings would
//! not hold a run that changes nothing. Such a run would plan every record as unchanged, with
//! no issue and no report line, so it is finished as that without reading a record: a
//! 100,000-person re-push costs a scan of its text and a read of one stamp per user, not a
//! parse, a validation and a diff of each record.
//!
//! Why each record's text alone is enough: validation depends on the text, the settings and
//! the day, and only an end date can make a valid record of yesterday mean something else
//! today (a date of birth in the past stays in the past), which the end-date check covers;
//! the checks across records (duplicates, e-mail owners, managers, loops, seats, the
//! perimeter) concern new people, other people's records or managers, which the conditions
//! above rule out. Instances whose clocks disagree on the day around midnight UTC could
//! disagree on a date of birth of that very day; nothing else reads the clock.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use ahash::AHashMap as HashMap;
use anyhow::anyhow;
use chrono::{NaiveDate, Utc};
use xxhash_rust::xxh3::{xxh3_128, xxh3_128_with_seed, xxh3_64};

use crate::domain::{
    ApprovalMode, ApprovalSettings, IssueTotals, ProvisioningSettings, RunCounts, RunStatus,
    RunSummary, SyncMode, UserState,
};
use crate::store::models::{RunRow, StampedUser};
use crate::store::settings::CurrentSettings;
use crate::store::{payloads, runs, settings, users, write_transaction, DbConn};
use crate::sync::faults::RunTakenOver;
use crate::sync::gate::{self, PlannedChanges};
use crate::sync::intake::json_records::for_each_record;
use crate::sync::intake::Format;
use crate::sync::lifecycle::{self, Planned};

/// The fingerprint of this build's sources and migrations (`build.rs`): a build that may apply
/// a record differently never recognises a record stamped by another one (after a deploy, the
/// first push of each organization is planned, and stamps its users again).
const ENGINE: &str = env!("HRIS_SYNC_SOURCE_HASH");

/// The hash of a record's exact text, as the reader cut it out of the push.
pub fn text_hash(text: &str) -> u128 {
    xxh3_128(text.as_bytes())
}

/// What decides how a record's text applies, besides the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampContext {
    seed: u64,
}

impl StampContext {
    /// The organization's settings (validation rules, custom fields, group rules, perimeter,
    /// seats…: the document itself, not its version number) and this build ([`ENGINE`]).
    pub fn new(settings: &ProvisioningSettings) -> StampContext {
        // Settings that cannot be written out get a seed of their own, which nothing stamped
        // before or after matches: nothing is recognised rather than too much.
        let document =
            serde_json::to_string(settings).unwrap_or_else(|_| uuid::Uuid::now_v7().to_string());
        let context = format!("text-stamp\u{1}{ENGINE}\u{1}{document}");
        StampContext {
            seed: xxh3_64(context.as_bytes()),
        }
    }

    /// The stamp of a record text (given by its [`text_hash`]) in this context.
    pub fn stamp_of(&self, text_hash: u128) -> u128 {
        xxh3_128_with_seed(&text_hash.to_le_bytes(), self.seed)
    }

    /// The stamp as stored in `users.text_stamp`.
    pub fn stored_stamp(&self, text_hash: u128) -> String {
        format!("{:032x}", self.stamp_of(text_hash))
    }
}

/// Finishes a claimed run as unchanged when its push is recognised as such (see the module);
/// `None` when the run must be planned. A dry run, a CSV upload and a run the approval
/// settings hold whatever it does are always planned.
pub fn finish_if_unchanged(conn: &mut DbConn, run: &RunRow) -> anyhow::Result<Option<RunStatus>> {
    if run.dry_run || Format::of(&run.content_type) != Some(Format::Json) {
        return Ok(None);
    }
    let CurrentSettings { settings, version } = settings::current(conn, &run.organization_id)?;
    if settings.approval.mode == ApprovalMode::Always {
        return Ok(None);
    }
    // As when a run is planned: the claim is read as the work starts, and must still hold
    // when the run ends.
    let holder = runs::claim_holder(conn, &run.id)?;
    let context = StampContext::new(&settings);
    let body = payloads::load(conn, &run.id)?;
    let situation = Situation {
        mode: run.mode,
        today: Utc::now().date_naive(),
        approval: &settings.approval,
    };
    let give_up = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // The push is scanned on a second thread while the directory is read.
        let scan = std::thread::Builder::new()
            .name("run-stamps".into())
            .spawn_scoped(scope, || push_stamps(body.into_reader(), context, &give_up))?;
        let finished = write_transaction(conn, |conn| -> anyhow::Result<Option<RunStatus>> {
            let directory = users::load_stamped(conn, &run.organization_id)?;
            let stamped = directory.iter().filter(|u| u.text_stamp.is_some()).count();
            if stamped < usize::try_from(run.progress_total).unwrap_or(usize::MAX) {
                // Fewer stamps than records (a first sync, say): no need to read the push.
                give_up.store(true, Ordering::Relaxed);
                return Ok(None);
            }
            let stamps = scan
                .join()
                .map_err(|_| anyhow!("the thread reading the push's stamps panicked"))?;
            let Some(stamps) = stamps else {
                return Ok(None);
            };
            if !is_unchanged(&directory, &situation, &stamps) {
                return Ok(None);
            }
            if let Some(holder) = &holder {
                if !runs::confirm_claim(conn, &run.id, holder)? {
                    return Err(RunTakenOver.into());
                }
            }
            let records = u32::try_from(stamps.len()).unwrap_or(u32::MAX);
            let summary = RunSummary {
                records,
                counts: RunCounts {
                    unchanged: records,
                    ..RunCounts::default()
                },
                issues: IssueTotals::default(),
            };
            let planned = Planned {
                summary: &summary,
                settings_version: version,
                approval_reasons: &[],
                log: &[],
            };
            lifecycle::finish(conn, &run.id, RunStatus::Succeeded, &planned)?;
            Ok(Some(RunStatus::Succeeded))
        });
        give_up.store(true, Ordering::Relaxed);
        finished
    })
}

/// The stamp of every record of a stored JSON push, in push order; `None` when the push
/// cannot be read (the run is then planned, and says why) or `give_up` was set meanwhile.
fn push_stamps(body: impl Read, context: StampContext, give_up: &AtomicBool) -> Option<Vec<u128>> {
    let mut stamps = Vec::new();
    let body = UntilGivenUp { body, give_up };
    let read = for_each_record(body, |text| stamps.push(context.stamp_of(text_hash(text))));
    read.ok().map(|()| stamps)
}

/// A body that stops being read (an error) once `give_up` is set.
struct UntilGivenUp<'a, R> {
    body: R,
    give_up: &'a AtomicBool,
}

impl<R: Read> Read for UntilGivenUp<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.give_up.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("no longer wanted"));
        }
        self.body.read(buf)
    }
}

/// What the decision reads besides the push's stamps and the directory.
struct Situation<'a> {
    mode: SyncMode,
    today: NaiveDate,
    approval: &'a ApprovalSettings,
}

/// Whether a push whose records have `stamps` (in push order) is unchanged, as the module
/// says, given the organization's users who are not archived.
fn is_unchanged(directory: &[StampedUser], situation: &Situation<'_>, stamps: &[u128]) -> bool {
    if stamps.is_empty() {
        return false;
    }
    let Some(matched) = match_stamps(directory, stamps) else {
        return false;
    };
    // A run also acts on people the push does not name: a full sync offboards the active
    // ones, and any run retries (or reports) the offboardings that wait.
    let bystanders_left_alone = directory.iter().zip(&matched).all(|(user, &named)| {
        named
            || match user.state {
                UserState::Invited => true,
                UserState::Active => situation.mode == SyncMode::Incremental,
                UserState::PendingArchive | UserState::Archived => false,
            }
    });
    if !bystanders_left_alone {
        return false;
    }
    let today = situation.today.format("%Y-%m-%d").to_string();
    let settled = matched.iter().enumerate().all(|(at, &named)| {
        let user = &directory[at];
        !named
            || (user.state == UserState::Active
                && user
                    .end_date
                    .as_deref()
                    .is_none_or(|end| end.len() == today.len() && *end >= *today.as_str()))
    });
    if !settled || !managers_named_and_without_loops(directory, &matched) {
        return false;
    }
    let counts = RunCounts {
        unchanged: u32::try_from(stamps.len()).unwrap_or(u32::MAX),
        ..RunCounts::default()
    };
    let active_before = directory
        .iter()
        .filter(|user| user.state == UserState::Active)
        .count();
    gate::reasons(
        situation.approval,
        &PlannedChanges::new(&counts, active_before),
    )
    .is_empty()
}

/// Which users the push's records name by their stamps (`true` at the user's position), when
/// every record carries the stamp of a user of its own.
fn match_stamps(directory: &[StampedUser], stamps: &[u128]) -> Option<Vec<bool>> {
    /// Two users with one stamp (which one text cannot give): neither can be recognised.
    const AMBIGUOUS: usize = usize::MAX;
    let mut by_stamp: HashMap<u128, usize> = HashMap::with_capacity(directory.len());
    for (at, user) in directory.iter().enumerate() {
        let Some(stamp) = user
            .text_stamp
            .as_deref()
            .and_then(|text| u128::from_str_radix(text, 16).ok())
        else {
            continue;
        };
        by_stamp
            .entry(stamp)
            .and_modify(|found| *found = AMBIGUOUS)
            .or_insert(at);
    }
    let mut matched = vec![false; directory.len()];
    for stamp in stamps {
        let at = *by_stamp.get(stamp)?;
        if at == AMBIGUOUS || matched[at] {
            return None;
        }
        matched[at] = true;
    }
    Some(matched)
}

/// True when every named user's manager is a named user too, and following managers from any
/// of them never comes back (so the approval-flow checks have nothing to say).
fn managers_named_and_without_loops(directory: &[StampedUser], matched: &[bool]) -> bool {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(directory.len());
    for (at, user) in directory.iter().enumerate().filter(|&(at, _)| matched[at]) {
        position.insert(user.id.as_str(), at);
    }
    let mut manager_of = vec![None; directory.len()];
    for (at, user) in directory.iter().enumerate().filter(|&(at, _)| matched[at]) {
        if let Some(manager_id) = user.manager_id.as_deref() {
            let Some(&manager) = position.get(manager_id) else {
                return false;
            };
            manager_of[at] = Some(manager);
        }
    }
    // 0: not visited, 1: on the chain being followed, 2: leads to the top of the chart.
    let mut mark = vec![0u8; directory.len()];
    let mut chain = Vec::new();
    for start in (0..directory.len()).filter(|&at| matched[at]) {
        let mut at = Some(start);
        while let Some(node) = at {
            match mark[node] {
                2 => break,
                1 => return false,
                _ => {
                    mark[node] = 1;
                    chain.push(node);
                    at = manager_of[node];
                }
            }
        }
        for node in chain.drain(..) {
            mark[node] = 2;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ApprovalMode;

    fn user(id: &str, manager: Option<&str>, stamp: u128) -> StampedUser {
        StampedUser {
            id: id.to_owned(),
            manager_id: manager.map(str::to_owned),
            state: UserState::Active,
            end_date: None,
            text_stamp: Some(format!("{stamp:032x}")),
        }
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn decide(directory: &[StampedUser], mode: SyncMode, stamps: &[u128]) -> bool {
        let approval = ApprovalSettings::default();
        let situation = Situation {
            mode,
            today: day("2026-11-30"),
            approval: &approval,
        };
        is_unchanged(directory, &situation, stamps)
    }

    fn chart() -> Vec<StampedUser> {
        vec![
            user("u1", None, 1),
            user("u2", Some("u1"), 2),
            user("u3", Some("u2"), 3),
        ]
    }

    #[test]
    fn a_push_naming_every_user_by_their_stamp_once_is_unchanged_in_any_order() {
        assert!(decide(&chart(), SyncMode::Full, &[3, 1, 2]));
        assert!(decide(&chart(), SyncMode::Incremental, &[1, 2, 3]));
    }

    #[test]
    fn a_record_without_a_stamp_or_named_twice_is_not() {
        assert!(!decide(&chart(), SyncMode::Full, &[1, 2, 4]));
        assert!(!decide(&chart(), SyncMode::Incremental, &[1, 2, 2]));
        let mut cleared = chart();
        cleared[2].text_stamp = None;
        assert!(!decide(&cleared, SyncMode::Full, &[1, 2, 3]));
    }

    #[test]
    fn a_full_sync_that_leaves_someone_out_is_not_but_an_incremental_one_is() {
        assert!(!decide(&chart(), SyncMode::Full, &[1, 2]));
        assert!(decide(&chart(), SyncMode::Incremental, &[1, 2]));
    }

    #[test]
    fn a_waiting_offboarding_outside_the_push_is_not_but_an_invitation_is() {
        let mut waiting = chart();
        waiting.push(user("u4", None, 4));
        waiting[3].state = UserState::PendingArchive;
        assert!(!decide(&waiting, SyncMode::Incremental, &[1, 2, 3]));
        waiting[3].state = UserState::Invited;
        assert!(decide(&waiting, SyncMode::Incremental, &[1, 2, 3]));
        assert!(decide(&waiting, SyncMode::Full, &[1, 2, 3]));
    }

    #[test]
    fn a_manager_outside_the_push_or_a_loop_is_not() {
        // u3's manager u2 is not in this incremental push.
        assert!(!decide(&chart(), SyncMode::Incremental, &[1, 3]));
        let mut looped = chart();
        looped[0].manager_id = Some("u3".to_owned());
        assert!(!decide(&looped, SyncMode::Full, &[1, 2, 3]));
        let mut own_manager = chart();
        own_manager[0].manager_id = Some("u1".to_owned());
        assert!(!decide(&own_manager, SyncMode::Full, &[1, 2, 3]));
    }

    #[test]
    fn a_user_not_active_or_past_their_end_date_is_not() {
        let mut waiting = chart();
        waiting[1].state = UserState::PendingArchive;
        assert!(!decide(&waiting, SyncMode::Full, &[1, 2, 3]));
        let mut ended = chart();
        ended[2].end_date = Some("2026-11-29".to_owned());
        assert!(!decide(&ended, SyncMode::Full, &[1, 2, 3]));
        let mut ends_today = chart();
        ends_today[2].end_date = Some("2026-11-30".to_owned());
        assert!(decide(&ends_today, SyncMode::Full, &[1, 2, 3]));
    }

    #[test]
    fn two_users_with_one_stamp_are_never_recognised() {
        let mut twins = chart();
        twins[2].text_stamp = twins[1].text_stamp.clone();
        assert!(!decide(&twins, SyncMode::Incremental, &[1, 2]));
    }

    #[test]
    fn a_run_the_approval_settings_would_hold_is_not() {
        let approval = ApprovalSettings {
            mode: ApprovalMode::Always,
            ..ApprovalSettings::default()
        };
        let situation = Situation {
            mode: SyncMode::Full,
            today: day("2026-11-30"),
            approval: &approval,
        };
        assert!(!is_unchanged(&chart(), &situation, &[1, 2, 3]));
    }

    #[test]
    fn a_stamp_depends_on_the_text_and_the_settings() {
        let text = r#"{"external_id": "E1"}"#;
        let settings = ProvisioningSettings::default();
        let first = StampContext::new(&settings);
        assert_eq!(
            first.stamp_of(text_hash(text)),
            StampContext::new(&settings.clone()).stamp_of(text_hash(text))
        );
        let seats = ProvisioningSettings {
            seat_limit: Some(10),
            ..settings
        };
        assert_ne!(
            first.stamp_of(text_hash(text)),
            StampContext::new(&seats).stamp_of(text_hash(text))
        );
        assert_ne!(
            first.stamp_of(text_hash(text)),
            first.stamp_of(text_hash(r#"{"external_id":"E1"}"#))
        );
        assert_eq!(
            u128::from_str_radix(&first.stored_stamp(text_hash(text)), 16).unwrap(),
            first.stamp_of(text_hash(text))
        );
    }
}
