//! Provisioning settings and their history: every change is a new version, kept whole.

use diesel::prelude::*;

use crate::store::limit::LimitInline;

use crate::domain::ProvisioningSettings;
use crate::store::models::SettingsVersionRow;
use crate::store::schema::{organizations, settings_versions};
use crate::store::{now, write_transaction, DbConn};

/// An organization's settings as they are now, and their version.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentSettings {
    pub settings: ProvisioningSettings,
    /// 0 until the settings are first changed.
    pub version: i32,
}

/// The organization's current settings. A stored document that cannot be read is an error,
/// never a silent default (the validation of every write makes it unreachable by the API).
pub fn current(conn: &mut DbConn, organization_id: &str) -> QueryResult<CurrentSettings> {
    let (document, version): (String, i32) = organizations::table
        .find(organization_id)
        .select((organizations::settings, organizations::settings_version))
        .get_result(conn)?;
    let settings = serde_json::from_str(&document)
        .map_err(|error| diesel::result::Error::DeserializationError(Box::new(error)))?;
    Ok(CurrentSettings { settings, version })
}

/// What a replacement did.
#[derive(Debug)]
pub enum Replaced {
    /// The new version.
    Changed(CurrentSettings),
    /// The document is the current one: no new version.
    Unchanged(CurrentSettings),
    /// `If-Match` named another version than the current one.
    Stale { current: i32 },
}

/// Replaces the organization's settings by `settings`, recording the new version in the
/// history, unless `expected_version` is given and is not the current version.
pub fn replace(
    conn: &mut DbConn,
    organization_id: &str,
    settings: &ProvisioningSettings,
    expected_version: Option<i32>,
    changed_by: &str,
) -> QueryResult<Replaced> {
    let document = serde_json::to_string(settings)
        .map_err(|error| diesel::result::Error::SerializationError(Box::new(error)))?;
    write_transaction(conn, |conn| {
        let existing = current(conn, organization_id)?;
        if expected_version.is_some_and(|expected| expected != existing.version) {
            return Ok(Replaced::Stale {
                current: existing.version,
            });
        }
        if existing.settings == *settings {
            return Ok(Replaced::Unchanged(existing));
        }
        let version = existing.version + 1;
        // The version check in the filter makes a concurrent writer that read the same
        // version lose (PostgreSQL): its update matches no row.
        let updated = diesel::update(
            organizations::table
                .find(organization_id)
                .filter(organizations::settings_version.eq(existing.version)),
        )
        .set((
            organizations::settings.eq(&document),
            organizations::settings_version.eq(version),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Ok(Replaced::Stale {
                current: existing.version + 1,
            });
        }
        diesel::insert_into(settings_versions::table)
            .values(&SettingsVersionRow {
                organization_id: organization_id.to_owned(),
                version,
                document: document.clone(),
                changed_by: changed_by.to_owned(),
                changed_at: now(),
            })
            .execute(conn)?;
        Ok(Replaced::Changed(CurrentSettings {
            settings: settings.clone(),
            version,
        }))
    })
}

/// The organization's settings versions, newest first; `before_version` is the keyset cursor.
pub fn history(
    conn: &mut DbConn,
    organization_id: &str,
    before_version: Option<i32>,
    limit: i64,
) -> QueryResult<Vec<SettingsVersionRow>> {
    let mut query = settings_versions::table
        .filter(settings_versions::organization_id.eq(organization_id))
        .select(SettingsVersionRow::as_select())
        .order(settings_versions::version.desc())
        .into_boxed();
    if let Some(before) = before_version {
        query = query.filter(settings_versions::version.lt(before));
    }
    query.limit_inline(limit).load(conn)
}
