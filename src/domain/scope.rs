use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a token may do. Scopes nest: `sync:read` ⊂ `sync:write` ⊂ `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "sync:read")]
    SyncRead,
    #[serde(rename = "sync:write")]
    SyncWrite,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::SyncRead, Scope::SyncWrite, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SyncRead => "sync:read",
            Scope::SyncWrite => "sync:write",
            Scope::Admin => "admin",
        }
    }

    /// True when a token of this scope may do what `required` allows.
    pub fn grants(self, required: Scope) -> bool {
        self >= required
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(raw: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == raw)
            .ok_or_else(|| format!("\"{raw}\" is not a scope (sync:read, sync:write, admin)"))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest() {
        assert!(Scope::Admin.grants(Scope::SyncWrite));
        assert!(Scope::Admin.grants(Scope::SyncRead));
        assert!(Scope::SyncWrite.grants(Scope::SyncRead));
        assert!(!Scope::SyncRead.grants(Scope::SyncWrite));
        assert!(!Scope::SyncWrite.grants(Scope::Admin));
    }

    #[test]
    fn scopes_parse_from_their_names() {
        assert_eq!("sync:write".parse(), Ok(Scope::SyncWrite));
        assert!("write".parse::<Scope>().is_err());
    }
}
