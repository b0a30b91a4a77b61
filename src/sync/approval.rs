//! Approval-flow rules, over the whole push plus the directory: every user's manager must
//! exist and be able to approve, and following managers must never loop.
//!
//! The rules run after the field checks, so that a record skipped for a field visibly blocks
//! the people it manages (MANAGER_DOES_NOT_EXIST naming the manager's row and issue).

use ahash::AHashMap as HashMap;

use chrono::NaiveDate;

use crate::catalogue::IssueCode;
use crate::domain::{ApprovalProcess, Role, Severity, SyncMode, UserState};
use crate::sync::candidate::{Candidate, Issue, Links, Patch};
use crate::sync::directory::Directory;
use crate::sync::seats::Seats;

/// Checks the approval flow and returns the order in which records can be applied: every
/// record after the record of its manager. Seats (`seats`) are given in that order, so that a
/// manager is created before the people they manage.
///
/// A record gets every approval-flow issue it has, even when it is already skipped for a
/// field: one round of fixes is enough.
pub fn check_approval_flow(
    candidates: &mut [Candidate],
    directory: &Directory,
    mode: SyncMode,
    today: NaiveDate,
    seats: &mut Seats,
) -> Vec<usize> {
    // The last record of each external id; the checks read whether a record is it for every
    // record several times, so that is written down once (at 1,000,000 records each lookup in
    // the map misses the CPU caches).
    let mut push: HashMap<String, usize> = HashMap::with_capacity(candidates.len());
    let mut last_of_its_id = vec![false; candidates.len()];
    for (index, candidate) in candidates.iter().enumerate() {
        if let Some(id) = &candidate.external_id {
            last_of_its_id[index] = true;
            if let Some(earlier) = push.insert(id.clone(), index) {
                last_of_its_id[earlier] = false;
            }
        }
    }
    let graph = Graph {
        push: &push,
        last_of_its_id,
        directory,
        mode,
        today,
    };

    check_own_rules(candidates, &graph);
    check_cycles(candidates, &graph);
    let order = manager_first_order(candidates, &graph);
    let mut blocked = Vec::new();
    for &index in &order {
        blocked.extend(check_manager(candidates, index, &graph));
        if let Some(candidate) = candidates.get_mut(index) {
            seats.admit(candidate, directory, today);
        }
    }
    // Records skipped before this step: their issues change nobody's fate, so row order.
    let mut ordered = vec![false; candidates.len()];
    for &index in &order {
        ordered[index] = true;
    }
    let skipped: Vec<usize> = (0..candidates.len())
        .filter(|&index| candidates[index].is_skipped() && !ordered[index])
        .collect();
    for index in skipped {
        blocked.extend(check_manager(candidates, index, &graph));
    }
    // Last: whether a report really moves away from a new guest depends on the report's
    // record surviving every other check.
    check_new_guests_have_no_reports(candidates, &graph);
    explain_blocked(candidates, &blocked);
    order
}

struct Graph<'a> {
    /// Each external id of the push, and the last record with it.
    push: &'a HashMap<String, usize>,
    /// Per record: `push` has it for its external id.
    last_of_its_id: Vec<bool>,
    directory: &'a Directory,
    mode: SyncMode,
    today: NaiveDate,
}

impl Graph<'_> {
    /// The manager a record will have after the run: the one it names, or, when it says
    /// nothing, the one the directory has.
    fn manager_of<'s>(&'s self, external_id: &'s str, links: &'s Links) -> Option<&'s str> {
        match &links.manager_external_id {
            Patch::Set(manager) => Some(manager),
            Patch::Clear => None,
            Patch::Keep => {
                let user = self.directory.by_external_id(external_id)?;
                self.directory.manager_external_id(user)
            }
        }
    }

    /// The record's external id and links, when it takes part in the approval-flow checks:
    /// its external id was read, and it is the only record of the push with it.
    fn links<'c>(&self, candidates: &'c [Candidate], index: usize) -> Option<(&'c str, &'c Links)> {
        let candidate = &candidates[index];
        let external_id = candidate.external_id.as_deref()?;
        let links = candidate.links.as_ref()?;
        (self.last_of_its_id[index] && !candidate.has(IssueCode::DUPLICATE_EXTERNAL_ID))
            .then_some((external_id, links))
    }

    /// A record that takes part in the approval flow after the run (or would, once its own
    /// issues are fixed): not leaving, and not a new person outside the sync perimeter.
    fn staying<'c>(
        &self,
        candidates: &'c [Candidate],
        index: usize,
    ) -> Option<(&'c str, &'c Links)> {
        self.links(candidates, index).filter(|(_, links)| {
            !links.leaving && !candidates[index].has(IssueCode::OUTSIDE_SYNC_PERIMETER)
        })
    }

    /// The manager a staying record will have.
    fn staying_manager<'c>(&'c self, candidates: &'c [Candidate], index: usize) -> Option<&'c str> {
        let (external_id, links) = self.staying(candidates, index)?;
        self.manager_of(external_id, links)
    }

    /// A person of the manager graph: a record of the push (its index), or a user of the
    /// directory the push does not name (`candidates.len()` + its directory index).
    fn node(&self, candidates: &[Candidate], external_id: &str) -> Option<usize> {
        match self.push.get(external_id) {
            Some(&index) => Some(index),
            None => self
                .directory
                .index_of_external_id(external_id)
                .map(|at| candidates.len() + at),
        }
    }

    /// The next person up the chain, across the push and (incremental mode) the directory.
    fn next(&self, candidates: &[Candidate], node: usize) -> Option<usize> {
        let manager = match candidates.get(node) {
            Some(_) => self.staying_manager(candidates, node)?,
            None if self.mode == SyncMode::Incremental => {
                let user = &self.directory.users[node - candidates.len()];
                // An archived user approves nobody: the chain ends there.
                if user.state == UserState::Archived {
                    return None;
                }
                self.directory.manager_external_id(user)?
            }
            None => return None,
        };
        self.node(candidates, manager)
    }

    fn external_id<'s>(&'s self, candidates: &'s [Candidate], node: usize) -> &'s str {
        match candidates.get(node) {
            Some(candidate) => candidate.external_id.as_deref().unwrap_or(""),
            None => self.directory.users[node - candidates.len()]
                .external_id
                .as_deref()
                .unwrap_or(""),
        }
    }
}

/// A record skipped because its manager's record was: the issue's place, and the manager's
/// row and first error, to write the message once every issue of the record is known.
struct Blocked {
    index: usize,
    issue: usize,
    manager: String,
    manager_row: u32,
    reason: String,
}

/// Writes the message of each MANAGER_DOES_NOT_EXIST that points at a skipped manager: "fix
/// that row first and this one will follow" only when that is true, i.e. when the record has
/// no other error of its own.
fn explain_blocked(candidates: &mut [Candidate], blocked: &[Blocked]) {
    for blocked in blocked {
        let candidate = &mut candidates[blocked.index];
        let others = candidate
            .issues
            .iter()
            .enumerate()
            .filter(|(at, issue)| *at != blocked.issue && issue.severity() == Severity::Error)
            .count();
        let (manager, row, reason) = (&blocked.manager, blocked.manager_row, &blocked.reason);
        let message = if others == 0 {
            format!("The manager {manager:?} (row {row}) was skipped because of {reason}; fix that row first and this one will follow.")
        } else {
            format!("The manager {manager:?} (row {row}) was skipped because of {reason}; fix that row, and this record's {others} other error(s) too.")
        };
        if let Some(issue) = candidate.issues.get_mut(blocked.issue) {
            issue.message = message;
        }
    }
}

/// Rules a record breaks on its own: managing itself, a guest without approval of every trip.
fn check_own_rules(candidates: &mut [Candidate], graph: &Graph<'_>) {
    for index in 0..candidates.len() {
        let Some((external_id, links)) = graph.links(candidates, index) else {
            continue;
        };
        let mut issues = Vec::new();
        if let Patch::Set(manager) = &links.manager_external_id {
            if manager == external_id {
                issues.push(Issue::new(
                    IssueCode::USER_CANNOT_BE_OWN_MANAGER,
                    "manager_external_id",
                    format!("The record names itself ({manager:?}) as its manager."),
                ));
            }
        }
        let existing = graph.directory.by_external_id(external_id);
        let role = links
            .role
            .or(existing.map(|user| user.role))
            .unwrap_or(Role::Member);
        if let (Role::Guest, Some(process)) = (role, links.approval_process) {
            if process != ApprovalProcess::AllTrips {
                issues.push(Issue::new(
                    IssueCode::GUEST_MEMBERS_REQUIRE_APPROVAL_FOR_ALL_TRIPS,
                    "approval_process",
                    format!("The user is a guest with the approval process \"{process}\"; guests need \"all_trips\"."),
                ));
            }
        }
        for issue in issues {
            candidates[index].report(issue);
        }
    }
}

/// A user who becomes a guest cannot keep managing people of the directory whose manager the
/// push does not change (reports named in the push get their own issue in `check_manager`).
fn check_new_guests_have_no_reports(candidates: &mut [Candidate], graph: &Graph<'_>) {
    let directory = graph.directory;
    let becoming_guests: Vec<usize> = (0..candidates.len())
        .filter(|&index| {
            let Some(record) = candidates[index].record.as_ref() else {
                return false;
            };
            if graph.staying(candidates, index).is_none() {
                return false;
            }
            let existing = directory.by_external_id(&record.external_id);
            record.role == Some(Role::Guest)
                && existing.is_some_and(|user| user.role != Role::Guest)
        })
        .collect();
    if becoming_guests.is_empty() {
        return;
    }
    let mut reports: HashMap<&str, Vec<&str>> = HashMap::new();
    for user in &directory.users {
        let (Some(manager_id), Some(external_id)) = (&user.manager_id, &user.external_id) else {
            continue;
        };
        let stays = matches!(user.state, UserState::Active | UserState::PendingArchive);
        let repointed = graph.push.get(external_id).is_some_and(|&index| {
            candidates[index]
                .record
                .as_ref()
                .is_some_and(|record| !matches!(record.manager_external_id, Patch::Keep))
        });
        if stays && !repointed {
            reports
                .entry(manager_id.as_str())
                .or_default()
                .push(external_id.as_str());
        }
    }
    let mut issues = Vec::new();
    for index in becoming_guests {
        let Some(record) = &candidates[index].record else {
            continue;
        };
        let Some(user) = directory.by_external_id(&record.external_id) else {
            continue;
        };
        let Some(theirs) = reports.get(user.id.as_str()) else {
            continue;
        };
        let mut named: Vec<String> = theirs.iter().take(5).map(|id| format!("{id:?}")).collect();
        if theirs.len() > 5 {
            named.push(format!("and {} more", theirs.len() - 5));
        }
        issues.push((
            index,
            Issue::new(
                IssueCode::GUEST_USERS_CANNOT_BE_APPROVERS,
                "role",
                format!(
                    "The user would become a guest but still manages {} in the directory, and guests cannot approve trips.",
                    named.join(", ")
                ),
            ),
        ));
    }
    for (index, issue) in issues {
        candidates[index].report(issue);
    }
}

/// Finds loops in the manager chain (each person has at most one manager, so a walk up the
/// chain either ends or comes back to a person already on it).
fn check_cycles(candidates: &mut [Candidate], graph: &Graph<'_>) {
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut marks = vec![UNSEEN; candidates.len() + graph.directory.users.len()];
    let mut loops: Vec<Vec<usize>> = Vec::new();
    let mut path: Vec<usize> = Vec::new();
    for start in 0..candidates.len() {
        if graph.staying(candidates, start).is_none() || marks[start] != UNSEEN {
            continue;
        }
        path.clear();
        let mut current = Some(start);
        while let Some(node) = current {
            match marks[node] {
                DONE => break,
                ON_PATH => {
                    if let Some(from) = path.iter().position(|&p| p == node) {
                        loops.push(path[from..].to_vec());
                    }
                    break;
                }
                _ => {
                    marks[node] = ON_PATH;
                    path.push(node);
                    current = graph.next(candidates, node);
                }
            }
        }
        for &node in &path {
            marks[node] = DONE;
        }
    }
    for members in loops {
        // A record managing itself already has its own issue.
        if members.len() < 2 {
            continue;
        }
        let mut chain: Vec<&str> = members
            .iter()
            .take(10)
            .map(|&node| graph.external_id(candidates, node))
            .collect();
        if members.len() > 10 {
            chain.push("…");
        }
        chain.push(graph.external_id(candidates, members[0]));
        let message = format!("The manager chain loops: {}.", chain.join(" → "));
        let records = candidates.len();
        for &node in members.iter().filter(|&&node| node < records) {
            candidates[node].report(Issue::new(
                IssueCode::MANAGER_CYCLE,
                "manager_external_id",
                message.clone(),
            ));
        }
    }
}

/// Records that will be applied, each after the record of its manager (stable in row order).
fn manager_first_order(candidates: &[Candidate], graph: &Graph<'_>) -> Vec<usize> {
    let mut depth: Vec<Option<u32>> = vec![None; candidates.len()];
    let mut on_path = vec![false; candidates.len()];
    for start in 0..candidates.len() {
        if candidates[start].record.is_none() || depth[start].is_some() {
            continue;
        }
        // Walk up through records of this push whose depth is unknown, then fill in downwards.
        let mut path = vec![start];
        on_path[start] = true;
        let mut base = 0;
        loop {
            let last = path[path.len() - 1];
            // Leaving records too: their manager is still written, so it must exist first.
            let manager = graph
                .links(candidates, last)
                .and_then(|(external_id, links)| graph.manager_of(external_id, links));
            let up = manager
                .and_then(|id| graph.push.get(id).copied())
                .filter(|&index| candidates[index].record.is_some() && index != last);
            match up {
                Some(index) if depth[index].is_some() => {
                    base = depth[index].unwrap_or(0) + 1;
                    break;
                }
                // Loops among staying records are gone (check_cycles ran); a leaving record
                // may still close one, which ends the walk.
                Some(index) if !on_path[index] => {
                    on_path[index] = true;
                    path.push(index);
                }
                _ => break,
            }
        }
        for &index in &path {
            on_path[index] = false;
        }
        for (offset, &index) in path.iter().rev().enumerate() {
            depth[index] = Some(base + offset as u32);
        }
    }
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| depth[i].is_some())
        .collect();
    order.sort_by_key(|&i| depth[i]);
    order
}

/// The manager of the record at `index` must exist, stay, and be able to approve. Returns the
/// issue that blocks the record because its manager's record was skipped, if any, for
/// [`explain_blocked`] to word.
fn check_manager(candidates: &mut [Candidate], index: usize, graph: &Graph<'_>) -> Option<Blocked> {
    let (external_id, _) = graph.staying(candidates, index)?;
    let manager = graph.staying_manager(candidates, index)?;
    if manager == external_id {
        return None;
    }
    let manager = manager.to_owned();
    let (issues, blocked) = match graph.push.get(&manager).copied() {
        Some(at) => push_manager_issues(candidates, index, at, &manager, graph),
        None => (directory_manager_issues(&manager, graph), None),
    };
    let candidate = &mut candidates[index];
    let first = candidate.issues.len();
    for issue in issues {
        candidate.report(issue);
    }
    blocked.map(|(manager_row, reason)| Blocked {
        index,
        issue: first,
        manager,
        manager_row,
        reason,
    })
}

/// Issues of the record at `index` whose manager is the record at `at`; with the manager's row
/// and the reason it was skipped, when the record is blocked by it.
fn push_manager_issues(
    candidates: &[Candidate],
    index: usize,
    at: usize,
    manager: &str,
    graph: &Graph<'_>,
) -> (Vec<Issue>, Option<(u32, String)>) {
    let theirs = &candidates[at];
    let existing = graph.directory.by_external_id(manager);
    let their_role = theirs
        .links
        .as_ref()
        .and_then(|links| links.role)
        .or(existing.map(|user| user.role))
        .unwrap_or(Role::Member);
    let row = theirs.row;
    let mut issues = Vec::new();
    let Some(their_record) = &theirs.record else {
        // Two records of one loop: the loop is the whole story of each.
        let errors: Vec<&Issue> = theirs
            .issues
            .iter()
            .filter(|issue| issue.severity() == Severity::Error)
            .collect();
        let same_loop = candidates[index].has(IssueCode::MANAGER_CYCLE)
            && errors
                .iter()
                .all(|issue| issue.code == IssueCode::MANAGER_CYCLE);
        if same_loop {
            return (issues, None);
        }
        let reason = match errors.as_slice() {
            [] => "an error".to_owned(),
            [only] => only.code.as_str().to_owned(),
            [first, rest @ ..] => format!("{} and {} more error(s)", first.code, rest.len()),
        };
        issues.push(Issue::new(
            IssueCode::MANAGER_DOES_NOT_EXIST,
            "manager_external_id",
            // Worded by explain_blocked once every issue of the record is known.
            format!("The manager {manager:?} (row {row}) was skipped."),
        ));
        // Fixing the manager's row would not be enough if they are a guest.
        if their_role == Role::Guest {
            issues.push(guest_issue(manager));
        }
        return (issues, Some((row, reason)));
    };
    if theirs.has(IssueCode::OUTSIDE_SYNC_PERIMETER) && existing.is_none() {
        issues.push(Issue::new(
            IssueCode::MANAGER_DOES_NOT_EXIST,
            "manager_external_id",
            format!("The manager {manager:?} (row {row}) is outside the sync perimeter, so this sync does not create them."),
        ));
    } else if their_record.is_leaving(graph.today) {
        issues.push(match existing {
            Some(_) => Issue::new(
                IssueCode::MANAGER_IS_ARCHIVED,
                "manager_external_id",
                format!("The manager {manager:?} (row {row}) is being offboarded by this sync."),
            ),
            None => Issue::new(
                IssueCode::MANAGER_DOES_NOT_EXIST,
                "manager_external_id",
                format!("The manager {manager:?} (row {row}) has left the company (terminated, rescinded or past end date), so this sync does not create them."),
            ),
        });
    } else if their_role == Role::Guest {
        issues.push(guest_issue(manager));
    }
    (issues, None)
}

/// Issues of a record whose manager is not in the push.
fn directory_manager_issues(manager: &str, graph: &Graph<'_>) -> Vec<Issue> {
    let Some(user) = graph.directory.by_external_id(manager) else {
        return vec![Issue::new(
            IssueCode::MANAGER_DOES_NOT_EXIST,
            "manager_external_id",
            format!("The manager {manager:?} is neither in this push nor in the directory."),
        )];
    };
    if user.role == Role::Guest {
        return vec![guest_issue(manager)];
    }
    let gone = match user.state {
        UserState::Archived => Some("is archived"),
        UserState::PendingArchive => Some("is being offboarded"),
        _ if graph.mode == SyncMode::Full => Some("is not in this full sync and will be archived"),
        _ => None,
    };
    gone.map(|why| {
        Issue::new(
            IssueCode::MANAGER_IS_ARCHIVED,
            "manager_external_id",
            format!("The manager {manager:?} {why}."),
        )
    })
    .into_iter()
    .collect()
}

fn guest_issue(manager: &str) -> Issue {
    Issue::new(
        IssueCode::GUEST_USERS_CANNOT_BE_APPROVERS,
        "manager_external_id",
        format!("The manager {manager:?} is a guest, and guests cannot approve trips."),
    )
}

#[cfg(test)]
#[path = "approval_tests.rs"]
mod tests;
