//! API tokens: random secrets shown once and stored only as a SHA-256 hash.

use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::Scope;
use crate::store::models::TokenRow;
use crate::store::schema::api_tokens;
use crate::store::{new_id, now, write_transaction, DbConn};

/// Secrets start with this prefix so that secret scanners can spot leaked tokens.
pub const TOKEN_PREFIX: &str = "hsk_";

/// A new secret: 256 random bits, hex-encoded after the prefix.
fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a token; returns its row and the secret, which is not stored.
pub fn create(
    conn: &mut DbConn,
    organization_id: &str,
    scope: Scope,
    name: &str,
) -> QueryResult<(TokenRow, String)> {
    let secret = generate_secret();
    let row = TokenRow {
        id: new_id(),
        organization_id: organization_id.to_owned(),
        name: name.to_owned(),
        scope: scope.as_str().to_owned(),
        token_hash: hash_secret(&secret),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    diesel::insert_into(api_tokens::table)
        .values(&row)
        .execute(conn)?;
    Ok((row, secret))
}

pub fn list(conn: &mut DbConn, organization_id: &str) -> QueryResult<Vec<TokenRow>> {
    api_tokens::table
        .filter(api_tokens::organization_id.eq(organization_id))
        .order(api_tokens::id)
        .select(TokenRow::as_select())
        .load(conn)
}

/// Revokes a token; `None` when there is no such token. Revoking twice keeps the first time.
pub fn revoke(conn: &mut DbConn, id: &str) -> QueryResult<Option<TokenRow>> {
    diesel::update(
        api_tokens::table
            .find(id)
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now()))
    .execute(conn)?;
    api_tokens::table
        .find(id)
        .select(TokenRow::as_select())
        .get_result(conn)
        .optional()
}

/// The live token whose secret has this hash ([`hash_secret`]), if any. Read-only: the use is recorded later, in a batch
/// ([`record_uses`]), so that authenticating never waits for a writer.
pub fn find_live_by_hash(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<TokenRow>> {
    api_tokens::table
        .filter(api_tokens::token_hash.eq(token_hash))
        .filter(api_tokens::revoked_at.is_null())
        .select(TokenRow::as_select())
        .get_result(conn)
        .optional()
}

/// Writes the last use of several tokens at once: `(token id, RFC 3339 time)`.
pub fn record_uses(conn: &mut DbConn, uses: &[(String, String)]) -> QueryResult<()> {
    if uses.is_empty() {
        return Ok(());
    }
    write_transaction(conn, |conn| {
        for (token_id, used_at) in uses {
            diesel::update(api_tokens::table.find(token_id))
                .set(api_tokens::last_used_at.eq(used_at))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The name of a token, by id: who made a change, in histories and decisions.
pub fn name(conn: &mut DbConn, id: &str) -> QueryResult<String> {
    api_tokens::table
        .find(id)
        .select(api_tokens::name)
        .get_result(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), a);
    }
}
