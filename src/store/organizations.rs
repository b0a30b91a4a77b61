//! Organizations (tenants).

use diesel::prelude::*;

use crate::domain::{ProvisioningSettings, Scope};
use crate::store::models::OrganizationRow;
use crate::store::schema::organizations;
use crate::store::{
    advisory_transaction_lock, new_id, now, tokens, write_transaction, DbConn, BOOTSTRAP_LOCK,
};

/// An organization and the secret of its first admin token, shown once.
pub struct CreatedOrganization {
    pub organization: OrganizationRow,
    pub admin_token: String,
}

/// Creates an organization with default settings and an admin token.
pub fn create(conn: &mut DbConn, name: &str) -> QueryResult<CreatedOrganization> {
    write_transaction(conn, |conn| insert_with_admin_token(conn, name))
}

/// Creates the organization `default` when the database has none, in one transaction so that
/// two instances starting together cannot both create it.
pub fn bootstrap(conn: &mut DbConn) -> QueryResult<Option<CreatedOrganization>> {
    write_transaction(conn, |conn| {
        // PostgreSQL reads committed data only: without the lock, two instances could both
        // see no organization and both create one.
        advisory_transaction_lock(conn, BOOTSTRAP_LOCK)?;
        let existing: i64 = organizations::table.count().get_result(conn)?;
        if existing > 0 {
            return Ok(None);
        }
        insert_with_admin_token(conn, "default").map(Some)
    })
}

fn insert_with_admin_token(conn: &mut DbConn, name: &str) -> QueryResult<CreatedOrganization> {
    let organization = OrganizationRow {
        id: new_id(),
        name: name.to_owned(),
        settings: serde_json::to_string(&ProvisioningSettings::default())
            .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?,
        created_at: now(),
        settings_version: 0,
    };
    diesel::insert_into(organizations::table)
        .values(&organization)
        .execute(conn)?;
    let (_, admin_token) = tokens::create(conn, &organization.id, Scope::Admin, "admin")?;
    Ok(CreatedOrganization {
        organization,
        admin_token,
    })
}

/// Every organization, oldest first.
pub fn list(conn: &mut DbConn) -> QueryResult<Vec<OrganizationRow>> {
    organizations::table
        .order((organizations::created_at.asc(), organizations::id.asc()))
        .select(OrganizationRow::as_select())
        .load(conn)
}

/// The organizations whose id or name is `key` (several only when names repeat).
pub fn find_by_id_or_name(conn: &mut DbConn, key: &str) -> QueryResult<Vec<OrganizationRow>> {
    organizations::table
        .filter(organizations::id.eq(key).or(organizations::name.eq(key)))
        .order(organizations::created_at.asc())
        .select(OrganizationRow::as_select())
        .load(conn)
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<OrganizationRow>> {
    organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .get_result(conn)
        .optional()
}

/// Organizations with this exact name (names are not unique).
pub fn find_by_name(conn: &mut DbConn, name: &str) -> QueryResult<Vec<OrganizationRow>> {
    organizations::table
        .filter(organizations::name.eq(name))
        .select(OrganizationRow::as_select())
        .load(conn)
}

/// The organization's provisioning settings (see `store::settings` for their version and
/// history). Stored settings that cannot be read are an error, never a silent default.
pub fn settings(conn: &mut DbConn, id: &str) -> QueryResult<ProvisioningSettings> {
    crate::store::settings::current(conn, id).map(|current| current.settings)
}

/// Replaces the organization's provisioning settings (the whole document). The settings API
/// validates a document before it gets here.
pub fn set_settings(
    conn: &mut DbConn,
    id: &str,
    settings: &ProvisioningSettings,
) -> QueryResult<()> {
    let stored = serde_json::to_string(settings)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let updated = diesel::update(organizations::table.find(id))
        .set(organizations::settings.eq(stored))
        .execute(conn)?;
    if updated == 0 {
        return Err(diesel::result::Error::NotFound);
    }
    Ok(())
}

/// The ids of every organization.
pub fn ids(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    organizations::table
        .select(organizations::id)
        .order(organizations::id)
        .load(conn)
}
