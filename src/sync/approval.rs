//! Approval-flow rules, over the whole push plus the directory: every user's manager must
//! exist and be able to approve, and following managers must never loop.
//!
//! The rules run after the field checks, so that a record skipped for a field visibly blocks
//! the people it manages (MANAGER_DOES_NOT_EXIST naming the manager's row and issue).

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::catalogue::IssueCode;
use crate::domain::{ApprovalProcess, Role, SyncMode, UserState};
use crate::sync::candidate::{Candidate, Issue, Patch, Record};
use crate::sync::directory::{role_of, state_of, Directory};

/// Checks the approval flow and returns the order in which records can be applied: every
/// record after the record of its manager.
pub fn check_approval_flow(
    candidates: &mut [Candidate],
    directory: &Directory,
    mode: SyncMode,
    today: NaiveDate,
) -> Vec<usize> {
    let push: HashMap<String, usize> = candidates
        .iter()
        .enumerate()
        .filter_map(|(index, c)| c.external_id.clone().map(|id| (id, index)))
        .collect();
    let graph = Graph {
        push: &push,
        directory,
        mode,
        today,
    };

    check_own_rules(candidates, directory);
    check_cycles(candidates, &graph);
    let order = manager_first_order(candidates, &graph);
    for &index in &order {
        check_manager(candidates, index, &graph);
    }
    order
}

struct Graph<'a> {
    push: &'a HashMap<String, usize>,
    directory: &'a Directory,
    mode: SyncMode,
    today: NaiveDate,
}

impl Graph<'_> {
    /// The manager a record will have after the run: the one it names, or, when it says
    /// nothing, the one the directory has.
    fn manager_of(&self, record: &Record) -> Option<String> {
        match &record.manager_external_id {
            Patch::Set(manager) => Some(manager.clone()),
            Patch::Clear => None,
            Patch::Keep => {
                let user = self.directory.by_external_id(&record.external_id)?;
                self.directory.manager_external_id(user).map(str::to_owned)
            }
        }
    }

    /// A record that takes part in the approval flow after the run.
    fn staying<'c>(&self, candidates: &'c [Candidate], index: usize) -> Option<&'c Record> {
        candidates[index]
            .record
            .as_ref()
            .filter(|record| !record.is_leaving(self.today))
    }

    /// The next person up the chain from `external_id`, across the push and the directory.
    fn next(&self, candidates: &[Candidate], external_id: &str) -> Option<String> {
        match self.push.get(external_id) {
            Some(&index) => self.manager_of(self.staying(candidates, index)?),
            None if self.mode == SyncMode::Incremental => {
                let user = self.directory.by_external_id(external_id)?;
                self.directory.manager_external_id(user).map(str::to_owned)
            }
            None => None,
        }
    }
}

/// Rules a record breaks on its own: managing itself, a guest without approval of every trip.
fn check_own_rules(candidates: &mut [Candidate], directory: &Directory) {
    for candidate in candidates.iter_mut() {
        let Some(record) = &candidate.record else {
            continue;
        };
        let mut issues = Vec::new();
        if let Patch::Set(manager) = &record.manager_external_id {
            if *manager == record.external_id {
                issues.push(Issue::new(
                    IssueCode::USER_CANNOT_BE_OWN_MANAGER,
                    "manager_external_id",
                    format!("The record names itself ({manager:?}) as its manager."),
                ));
            }
        }
        let existing = directory.by_external_id(&record.external_id);
        let role = record
            .role
            .or(existing.map(role_of))
            .unwrap_or(Role::Member);
        if let (Role::Guest, Some(process)) = (role, record.approval_process) {
            if process != ApprovalProcess::AllTrips {
                issues.push(Issue::new(
                    IssueCode::GUEST_MEMBERS_REQUIRE_APPROVAL_FOR_ALL_TRIPS,
                    "approval_process",
                    format!("The user is a guest with the approval process \"{process}\"; guests need \"all_trips\"."),
                ));
            }
        }
        for issue in issues {
            candidate.report(issue);
        }
    }
}

/// Finds loops in the manager chain (each person has at most one manager, so a walk up the
/// chain either ends or comes back to a person already on it).
fn check_cycles(candidates: &mut [Candidate], graph: &Graph<'_>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    let mut marks: HashMap<String, Mark> = HashMap::with_capacity(candidates.len());
    let mut loops: Vec<Vec<String>> = Vec::new();
    for start in 0..candidates.len() {
        let Some(record) = graph.staying(candidates, start) else {
            continue;
        };
        let mut path: Vec<String> = Vec::new();
        let mut current = Some(record.external_id.clone());
        while let Some(id) = current {
            match marks.get(&id) {
                Some(Mark::Done) => break,
                Some(Mark::OnPath) => {
                    if let Some(from) = path.iter().position(|p| *p == id) {
                        loops.push(path[from..].to_vec());
                    }
                    break;
                }
                None => {
                    marks.insert(id.clone(), Mark::OnPath);
                    current = graph.next(candidates, &id);
                    path.push(id);
                }
            }
        }
        for id in path {
            marks.insert(id, Mark::Done);
        }
    }
    for members in loops {
        // A record managing itself already has its own issue.
        if members.len() < 2 {
            continue;
        }
        let mut chain: Vec<&str> = members.iter().map(String::as_str).take(10).collect();
        if members.len() > 10 {
            chain.push("…");
        }
        chain.push(&members[0]);
        let message = format!("The manager chain loops: {}.", chain.join(" → "));
        for id in &members {
            if let Some(&index) = graph.push.get(id) {
                candidates[index].report(Issue::new(
                    IssueCode::MANAGER_CYCLE,
                    "manager_external_id",
                    message.clone(),
                ));
            }
        }
    }
}

/// Records that will be applied, each after the record of its manager (stable in row order).
fn manager_first_order(candidates: &[Candidate], graph: &Graph<'_>) -> Vec<usize> {
    let mut depth: Vec<Option<u32>> = vec![None; candidates.len()];
    for start in 0..candidates.len() {
        if candidates[start].record.is_none() || depth[start].is_some() {
            continue;
        }
        // Walk up through records of this push whose depth is unknown, then fill in downwards.
        let mut path = vec![start];
        let mut base = 0;
        loop {
            let last = path[path.len() - 1];
            let manager = graph
                .staying(candidates, last)
                .and_then(|record| graph.manager_of(record));
            let up = manager
                .and_then(|id| graph.push.get(&id).copied())
                .filter(|&index| candidates[index].record.is_some() && index != last);
            match up {
                Some(index) if depth[index].is_some() => {
                    base = depth[index].unwrap_or(0) + 1;
                    break;
                }
                // No loop is left among applicable records (check_cycles ran), but stay safe.
                Some(index) if !path.contains(&index) => path.push(index),
                _ => break,
            }
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

/// The manager of the record at `index` must exist, stay, and be able to approve.
fn check_manager(candidates: &mut [Candidate], index: usize, graph: &Graph<'_>) {
    let Some(record) = graph.staying(candidates, index) else {
        return;
    };
    let Some(manager) = graph.manager_of(record) else {
        return;
    };
    if manager == record.external_id {
        return;
    }
    let issue = match graph.push.get(&manager).copied() {
        Some(at) => {
            let theirs = &candidates[at];
            match (&theirs.record, theirs.first_error()) {
                (None, error) => {
                    let reason = error.map(|e| e.code.as_str()).unwrap_or("an error");
                    Some(Issue::new(
                        IssueCode::MANAGER_DOES_NOT_EXIST,
                        "manager_external_id",
                        format!("The manager {manager:?} (row {}) was skipped because of {reason}; fix that row first and this one will follow.", theirs.row),
                    ))
                }
                (Some(theirs_record), _) if theirs_record.is_leaving(graph.today) => {
                    Some(match graph.directory.by_external_id(&manager) {
                        Some(_) => Issue::new(
                            IssueCode::MANAGER_IS_ARCHIVED,
                            "manager_external_id",
                            format!("The manager {manager:?} (row {}) is being offboarded by this sync.", theirs.row),
                        ),
                        None => Issue::new(
                            IssueCode::MANAGER_DOES_NOT_EXIST,
                            "manager_external_id",
                            format!("The manager {manager:?} (row {}) has left the company (terminated, rescinded or past end date), so this sync does not create them.", theirs.row),
                        ),
                    })
                }
                (Some(theirs_record), _) => {
                    let existing = graph.directory.by_external_id(&manager);
                    let role = theirs_record.role.or(existing.map(role_of)).unwrap_or(Role::Member);
                    (role == Role::Guest).then(|| guest_issue(&manager))
                }
            }
        }
        None => match graph.directory.by_external_id(&manager) {
            None => Some(Issue::new(
                IssueCode::MANAGER_DOES_NOT_EXIST,
                "manager_external_id",
                format!("The manager {manager:?} is neither in this push nor in the directory."),
            )),
            Some(user) if role_of(user) == Role::Guest => Some(guest_issue(&manager)),
            Some(user) => {
                let gone = match state_of(user) {
                    UserState::Archived => Some("is archived"),
                    UserState::PendingArchive => Some("is being offboarded"),
                    _ if graph.mode == SyncMode::Full => {
                        Some("is not in this full sync and will be archived")
                    }
                    _ => None,
                };
                gone.map(|why| {
                    Issue::new(
                        IssueCode::MANAGER_IS_ARCHIVED,
                        "manager_external_id",
                        format!("The manager {manager:?} {why}."),
                    )
                })
            }
        },
    };
    if let Some(issue) = issue {
        candidates[index].report(issue);
    }
}

fn guest_issue(manager: &str) -> Issue {
    Issue::new(
        IssueCode::GUEST_USERS_CANNOT_BE_APPROVERS,
        "manager_external_id",
        format!("The manager {manager:?} is a guest, and guests cannot approve trips."),
    )
}
