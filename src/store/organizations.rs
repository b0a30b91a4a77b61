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

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<OrganizationRow>> {
    organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .first(conn)
        .optional()
}

/// The organization's provisioning settings; unreadable settings fall back to the defaults
/// with an error in the log rather than blocking every run.
pub fn settings(conn: &mut DbConn, id: &str) -> QueryResult<ProvisioningSettings> {
    let stored: String = organizations::table
        .find(id)
        .select(organizations::settings)
        .first(conn)?;
    Ok(serde_json::from_str(&stored).unwrap_or_else(|error| {
        tracing::error!(organization_id = id, %error, "stored provisioning settings are unreadable; using defaults");
        ProvisioningSettings::default()
    }))
}
