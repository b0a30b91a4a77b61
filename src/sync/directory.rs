//! The organization's directory as a run finds it, indexed for the checks and the planner.

use ahash::AHashMap as HashMap;

use crate::domain::{Role, UserState};
use crate::store::models::{DirectoryEntry, TeamRow};

pub struct Directory {
    pub users: Vec<DirectoryEntry>,
    by_external_id: HashMap<String, usize>,
    by_email_key: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
    /// Teams by lowercased name.
    pub teams: HashMap<String, TeamRow>,
}

impl Directory {
    pub fn new(users: Vec<DirectoryEntry>, teams: Vec<TeamRow>) -> Directory {
        let mut by_external_id = HashMap::with_capacity(users.len());
        let mut by_email_key = HashMap::with_capacity(users.len());
        let mut by_id = HashMap::with_capacity(users.len());
        for (index, user) in users.iter().enumerate() {
            if let Some(external_id) = &user.external_id {
                by_external_id.insert(external_id.clone(), index);
            }
            by_email_key.insert(user.email_key.clone(), index);
            by_id.insert(user.id.clone(), index);
        }
        let teams = teams
            .into_iter()
            .map(|team| (team.name_key.clone(), team))
            .collect();
        Directory {
            users,
            by_external_id,
            by_email_key,
            by_id,
            teams,
        }
    }

    pub fn by_external_id(&self, external_id: &str) -> Option<&DirectoryEntry> {
        self.by_external_id
            .get(external_id)
            .map(|&i| &self.users[i])
    }

    /// Position of the user in `users`.
    pub fn index_of_external_id(&self, external_id: &str) -> Option<usize> {
        self.by_external_id.get(external_id).copied()
    }

    pub fn by_email_key(&self, email_key: &str) -> Option<&DirectoryEntry> {
        self.by_email_key.get(email_key).map(|&i| &self.users[i])
    }

    pub fn by_id(&self, id: &str) -> Option<&DirectoryEntry> {
        self.by_id.get(id).map(|&i| &self.users[i])
    }

    /// The external id of a user's current manager.
    pub fn manager_external_id(&self, user: &DirectoryEntry) -> Option<&str> {
        let manager = self.by_id(user.manager_id.as_deref()?)?;
        manager.external_id.as_deref()
    }
}

/// The state of a stored user; an unreadable value counts as active, the safe reading for
/// every check that uses it.
pub fn state_of(user: &DirectoryEntry) -> UserState {
    UserState::parse(&user.state).unwrap_or(UserState::Active)
}

pub fn role_of(user: &DirectoryEntry) -> Role {
    Role::parse(&user.role).unwrap_or(Role::Member)
}
