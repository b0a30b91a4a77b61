//! The organization's directory as a run finds it, indexed for the checks and the planner.

use ahash::AHashMap as HashMap;
use hashbrown::HashTable;

use crate::store::models::{DirectoryEntry, TeamRow};

pub struct Directory {
    pub users: Vec<DirectoryEntry>,
    by_external_id: KeyIndex,
    by_email_key: KeyIndex,
    by_id: KeyIndex,
    /// Teams by lowercased name.
    pub teams: HashMap<String, TeamRow>,
}

fn external_id_of(user: &DirectoryEntry) -> Option<&str> {
    user.external_id.as_deref()
}

fn email_key_of(user: &DirectoryEntry) -> Option<&str> {
    Some(&user.email_key)
}

fn id_of(user: &DirectoryEntry) -> Option<&str> {
    Some(&user.id)
}

/// The positions of the users by one of their keys. The keys are not copied: the table holds
/// positions, and a lookup compares the key of the user at a position (a 1,000,000-user
/// directory would otherwise hold three more million strings).
struct KeyIndex {
    table: HashTable<u32>,
    hasher: ahash::RandomState,
    key: fn(&DirectoryEntry) -> Option<&str>,
}

impl KeyIndex {
    /// When two users have the same key, the later one is found (the store's unique indexes
    /// keep that from happening).
    fn new(users: &[DirectoryEntry], key: fn(&DirectoryEntry) -> Option<&str>) -> KeyIndex {
        let hasher = ahash::RandomState::new();
        let mut table = HashTable::with_capacity(users.len());
        for (index, user) in users.iter().enumerate() {
            let Some(wanted) = key(user) else {
                continue;
            };
            let position = u32::try_from(index).unwrap_or(u32::MAX);
            let entry = table.entry(
                hasher.hash_one(wanted),
                |&at: &u32| key(&users[at as usize]) == Some(wanted),
                |&at: &u32| key(&users[at as usize]).map_or(0, |k| hasher.hash_one(k)),
            );
            match entry {
                hashbrown::hash_table::Entry::Occupied(mut found) => *found.get_mut() = position,
                hashbrown::hash_table::Entry::Vacant(free) => {
                    free.insert(position);
                }
            }
        }
        KeyIndex { table, hasher, key }
    }

    fn get(&self, users: &[DirectoryEntry], wanted: &str) -> Option<usize> {
        self.table
            .find(self.hasher.hash_one(wanted), |&at| {
                (self.key)(&users[at as usize]) == Some(wanted)
            })
            .map(|&at| at as usize)
    }
}

impl Directory {
    pub fn new(users: Vec<DirectoryEntry>, teams: Vec<TeamRow>) -> Directory {
        let by_external_id = KeyIndex::new(&users, external_id_of);
        let by_email_key = KeyIndex::new(&users, email_key_of);
        let by_id = KeyIndex::new(&users, id_of);
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
        self.index_of_external_id(external_id)
            .map(|i| &self.users[i])
    }

    /// Position of the user in `users`.
    pub fn index_of_external_id(&self, external_id: &str) -> Option<usize> {
        self.by_external_id.get(&self.users, external_id)
    }

    pub fn by_email_key(&self, email_key: &str) -> Option<&DirectoryEntry> {
        self.by_email_key
            .get(&self.users, email_key)
            .map(|i| &self.users[i])
    }

    pub fn by_id(&self, id: &str) -> Option<&DirectoryEntry> {
        self.by_id.get(&self.users, id).map(|i| &self.users[i])
    }

    /// The external id of a user's current manager.
    pub fn manager_external_id(&self, user: &DirectoryEntry) -> Option<&str> {
        let manager = self.by_id(user.manager_id.as_deref()?)?;
        manager.external_id.as_deref()
    }
}
