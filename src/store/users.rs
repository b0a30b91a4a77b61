//! The directory: users of an organization.

use diesel::prelude::*;

use diesel::sql_types::{Integer, Nullable, Text};

use crate::store::limit::LimitInline;
use crate::store::static_insert::static_insert;

use crate::domain::{search_fold, PendingArchiveReason, UserState};
use crate::store::models::{DirectoryEntry, StampedUser, UserRow};
use crate::store::schema::users;
use crate::store::{now, DbConn};

/// Users of one organization. Every statement on users names the organization: on SQLite the
/// table is clustered by (organization, id), so that a run reads its directory in one range.
type OfOrganization<'a> =
    diesel::dsl::Filter<users::table, diesel::dsl::Eq<users::organization_id, &'a str>>;

fn of_organization(organization_id: &str) -> OfOrganization<'_> {
    users::table.filter(users::organization_id.eq(organization_id))
}

/// Ids per `IN (…)` list: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const IDS_PER_QUERY: usize = 1_000;

/// What a run needs of every user of the organization.
pub fn load_directory(
    conn: &mut DbConn,
    organization_id: &str,
) -> QueryResult<Vec<DirectoryEntry>> {
    // Counted first, so that the list is allocated once at its size: grown by doubling, a
    // 100,000-user directory held up to twice its size while it was read.
    let count: i64 = users::table
        .filter(users::organization_id.eq(organization_id))
        .count()
        .get_result(conn)?;
    let mut entries = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for entry in users::table
        .filter(users::organization_id.eq(organization_id))
        .select(DirectoryEntry::as_select())
        .load_iter::<DirectoryEntry, diesel::connection::DefaultLoadingMode>(conn)?
    {
        entries.push(entry?);
    }
    // In id order, so that a run reports the users it finds missing in the same order on both
    // backends: SQLite reads them so (its table is clustered by id), PostgreSQL in whatever
    // order its heap holds them (a sort of sorted input costs one pass).
    entries.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    Ok(entries)
}

/// Full rows of the given users, a thousand per query.
pub fn load_by_ids(
    conn: &mut DbConn,
    organization_id: &str,
    ids: &[String],
) -> QueryResult<Vec<UserRow>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        rows.extend(
            users::table
                .filter(users::organization_id.eq(organization_id))
                .filter(users::id.eq_any(chunk))
                .select(UserRow::as_select())
                .load(conn)?,
        );
    }
    Ok(rows)
}

/// Moves users to another state (an offboarding), a thousand per statement. A move to
/// `pending_archive` says why (`reason`) and starts then; any other state clears both.
pub fn set_state(
    conn: &mut DbConn,
    organization_id: &str,
    ids: &[String],
    state: UserState,
    reason: Option<PendingArchiveReason>,
    at: &str,
) -> QueryResult<()> {
    let archived_at = (state == UserState::Archived).then_some(at);
    let pending = state == UserState::PendingArchive;
    let since = pending.then_some(at);
    let reason = reason.filter(|_| pending).map(PendingArchiveReason::as_str);
    for chunk in ids.chunks(IDS_PER_QUERY) {
        diesel::update(of_organization(organization_id).filter(users::id.eq_any(chunk)))
            .set((
                users::state.eq(state.as_str()),
                users::updated_at.eq(at),
                users::archived_at.eq(archived_at),
                users::pending_archive_since.eq(since),
                users::pending_archive_reason.eq(reason),
            ))
            .execute(conn)?;
    }
    Ok(())
}

static_insert!(InsertUser for UserRow into "users" {
    id: Text,
    organization_id: Text,
    external_id: Nullable<Text>,
    email: Text,
    email_key: Text,
    username: Nullable<Text>,
    first_name: Text,
    last_name: Text,
    state: Text,
    role: Text,
    approval_process: Text,
    employment_status: Text,
    manager_id: Nullable<Text>,
    teams: Text,
    start_date: Nullable<Text>,
    end_date: Nullable<Text>,
    date_of_birth: Nullable<Text>,
    gender: Nullable<Text>,
    phone: Nullable<Text>,
    custom_fields: Text,
    upcoming_trips: Integer,
    source_hash: Nullable<Text>,
    search_key: Text,
    created_at: Text,
    updated_at: Text,
    archived_at: Nullable<Text>,
    groups: Text,
    pending_archive_since: Nullable<Text>,
    pending_archive_reason: Nullable<Text>,
    text_stamp: Nullable<Text>,
});

/// Inserts users in the given order (managers before the people they manage).
/// SQLite: one cached prepared statement per row (`InsertUser`, static SQL), which inside a
/// transaction is as fast as a multi-row insert. PostgreSQL: one `COPY … FROM STDIN` (binary)
/// for the batch, faster than a multi-row INSERT (no statement of 25,000 parameters to parse
/// and plan).
pub fn insert_all(conn: &mut DbConn, rows: &[UserRow]) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            for row in rows {
                InsertUser(row).execute(c)?;
            }
        }
        DbConn::Postgres(c) => {
            if !rows.is_empty() {
                diesel::copy_from(users::table)
                    .from_insertable(rows)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Writes every column of each row but its id and organization (and `created_at`,
/// `upcoming_trips`, which a run does not own). SQLite: a cached prepared UPDATE per row, on
/// SQLite's own connection (the `MultiConnection` would write each UPDATE out once more per
/// row, see `store::on_backend!`); PostgreSQL: one `UPDATE … FROM (VALUES …)` per thousand
/// rows.
pub fn update_all(conn: &mut DbConn, rows: &[UserRow]) -> QueryResult<()> {
    let sqlite = match conn {
        DbConn::Sqlite(sqlite) => sqlite,
        DbConn::Postgres(pg) => {
            for chunk in rows.chunks(POSTGRES_UPDATE_CHUNK) {
                update_chunk_postgres(pg, chunk)?;
            }
            return Ok(());
        }
    };
    for row in rows {
        diesel::update(of_organization(row.organization_id.as_str()).filter(users::id.eq(&row.id)))
            .set((
                users::external_id.eq(&row.external_id),
                users::email.eq(&row.email),
                users::email_key.eq(&row.email_key),
                users::username.eq(&row.username),
                users::first_name.eq(&row.first_name),
                users::last_name.eq(&row.last_name),
                users::state.eq(&row.state),
                users::role.eq(&row.role),
                users::approval_process.eq(&row.approval_process),
                users::employment_status.eq(&row.employment_status),
                users::manager_id.eq(&row.manager_id),
                users::teams.eq(&row.teams),
                users::start_date.eq(&row.start_date),
                users::end_date.eq(&row.end_date),
                users::date_of_birth.eq(&row.date_of_birth),
                users::gender.eq(&row.gender),
                users::phone.eq(&row.phone),
                users::custom_fields.eq(&row.custom_fields),
                users::source_hash.eq(&row.source_hash),
                users::search_key.eq(&row.search_key),
                users::updated_at.eq(&row.updated_at),
                users::archived_at.eq(&row.archived_at),
                users::groups.eq(&row.groups),
                users::pending_archive_since.eq(&row.pending_archive_since),
                users::pending_archive_reason.eq(&row.pending_archive_reason),
                users::text_stamp.eq(&row.text_stamp),
            ))
            .execute(sqlite)?;
    }
    Ok(())
}

/// Rows per `UPDATE … FROM (VALUES …)`: 28 parameters a row, under PostgreSQL's 65,535.
const POSTGRES_UPDATE_CHUNK: usize = 1_000;

/// The columns [`update_all`] writes, in the order of the VALUES rows (all text).
const UPDATED_COLUMNS: [&str; 26] = [
    "external_id",
    "email",
    "email_key",
    "username",
    "first_name",
    "last_name",
    "state",
    "role",
    "approval_process",
    "employment_status",
    "manager_id",
    "teams",
    "start_date",
    "end_date",
    "date_of_birth",
    "gender",
    "phone",
    "custom_fields",
    "source_hash",
    "search_key",
    "updated_at",
    "archived_at",
    "\"groups\"",
    "pending_archive_since",
    "pending_archive_reason",
    "text_stamp",
];

/// One statement for many rows, every value a bound parameter:
/// `UPDATE users SET c = v.c, … FROM (VALUES ($1::text, …), …) AS v(organization_id, id, c, …)
/// WHERE users.organization_id = v.organization_id AND users.id = v.id`.
fn update_chunk_postgres(conn: &mut diesel::PgConnection, rows: &[UserRow]) -> QueryResult<()> {
    use diesel::pg::Pg;
    use diesel::sql_types::{Nullable, Text};
    use std::fmt::Write;

    if rows.is_empty() {
        return Ok(());
    }
    let per_row = UPDATED_COLUMNS.len() + 2;
    let mut sql = String::from("UPDATE users SET ");
    for (i, column) in UPDATED_COLUMNS.iter().enumerate() {
        let separator = if i == 0 { "" } else { ", " };
        let _ = write!(sql, "{separator}{column} = v.{column}");
    }
    sql.push_str(" FROM (VALUES ");
    for row in 0..rows.len() {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..per_row {
            let separator = if column == 0 { "" } else { ", " };
            let _ = write!(sql, "{separator}${}::text", row * per_row + column + 1);
        }
        sql.push(')');
    }
    let _ = write!(
        sql,
        ") AS v(organization_id, id, {}) WHERE users.organization_id = v.organization_id AND users.id = v.id",
        UPDATED_COLUMNS.join(", ")
    );

    let mut query = diesel::sql_query(sql).into_boxed::<Pg>();
    for row in rows {
        query = query
            .bind::<Text, _>(&row.organization_id)
            .bind::<Text, _>(&row.id)
            .bind::<Nullable<Text>, _>(&row.external_id)
            .bind::<Text, _>(&row.email)
            .bind::<Text, _>(&row.email_key)
            .bind::<Nullable<Text>, _>(&row.username)
            .bind::<Text, _>(&row.first_name)
            .bind::<Text, _>(&row.last_name)
            .bind::<Text, _>(&row.state)
            .bind::<Text, _>(&row.role)
            .bind::<Text, _>(&row.approval_process)
            .bind::<Text, _>(&row.employment_status)
            .bind::<Nullable<Text>, _>(&row.manager_id)
            .bind::<Text, _>(&row.teams)
            .bind::<Nullable<Text>, _>(&row.start_date)
            .bind::<Nullable<Text>, _>(&row.end_date)
            .bind::<Nullable<Text>, _>(&row.date_of_birth)
            .bind::<Nullable<Text>, _>(&row.gender)
            .bind::<Nullable<Text>, _>(&row.phone)
            .bind::<Text, _>(&row.custom_fields)
            .bind::<Nullable<Text>, _>(&row.source_hash)
            .bind::<Text, _>(&row.search_key)
            .bind::<Text, _>(&row.updated_at)
            .bind::<Nullable<Text>, _>(&row.archived_at)
            .bind::<Text, _>(&row.groups)
            .bind::<Nullable<Text>, _>(&row.pending_archive_since)
            .bind::<Nullable<Text>, _>(&row.pending_archive_reason)
            .bind::<Nullable<Text>, _>(&row.text_stamp);
    }
    let updated = query.execute(conn)?;
    if updated != rows.len() {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("{} of {} users to update were found", updated, rows.len()).into(),
        ));
    }
    Ok(())
}

/// Writes (or, with `None`, clears) the text stamps of users a run found unchanged (see
/// `sync::unchanged`), and nothing else of their rows. SQLite: a cached prepared UPDATE per
/// user, on SQLite's own connection (as in [`update_all`]); PostgreSQL: one
/// `UPDATE … FROM (VALUES …)` per thousand users.
pub fn set_text_stamps(
    conn: &mut DbConn,
    organization_id: &str,
    stamps: &[(String, Option<String>)],
) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(sqlite) => {
            for (id, stamp) in stamps {
                diesel::update(of_organization(organization_id).filter(users::id.eq(id)))
                    .set(users::text_stamp.eq(stamp))
                    .execute(sqlite)?;
            }
        }
        DbConn::Postgres(pg) => {
            for chunk in stamps.chunks(IDS_PER_QUERY) {
                set_text_stamps_postgres(pg, organization_id, chunk)?;
            }
        }
    }
    Ok(())
}

/// `UPDATE users SET text_stamp = v.text_stamp FROM (VALUES ($2, $3), …) AS v(id, text_stamp)
/// WHERE users.organization_id = $1 AND users.id = v.id`.
fn set_text_stamps_postgres(
    conn: &mut diesel::PgConnection,
    organization_id: &str,
    stamps: &[(String, Option<String>)],
) -> QueryResult<()> {
    use diesel::pg::Pg;
    use diesel::sql_types::{Nullable, Text};
    use std::fmt::Write;

    if stamps.is_empty() {
        return Ok(());
    }
    let mut sql = String::from("UPDATE users SET text_stamp = v.text_stamp FROM (VALUES ");
    for row in 0..stamps.len() {
        let separator = if row == 0 { "" } else { ", " };
        let _ = write!(
            sql,
            "{separator}(${}::text, ${}::text)",
            2 * row + 2,
            2 * row + 3
        );
    }
    sql.push_str(") AS v(id, text_stamp) WHERE users.organization_id = $1 AND users.id = v.id");
    let mut query = diesel::sql_query(sql)
        .into_boxed::<Pg>()
        .bind::<Text, _>(organization_id);
    for (id, stamp) in stamps {
        query = query.bind::<Text, _>(id).bind::<Nullable<Text>, _>(stamp);
    }
    let updated = query.execute(conn)?;
    if updated != stamps.len() {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("{} of {} users to stamp were found", updated, stamps.len()).into(),
        ));
    }
    Ok(())
}

/// What recognising an unchanged push reads of each user of the organization that is not
/// archived (see `sync::unchanged`).
pub fn load_stamped(conn: &mut DbConn, organization_id: &str) -> QueryResult<Vec<StampedUser>> {
    of_organization(organization_id)
        .filter(users::state.ne(UserState::Archived.as_str()))
        .select(StampedUser::as_select())
        .load(conn)
}

/// Users of the organization whose manager is not a user of the organization: what the
/// foreign key on `manager_id` forbids, counted in one statement for a run that wrote without
/// the per-row check (see [`crate::store::begin_bulk_write`]). The managers are looked up in
/// the order of the manager index, so each lookup lands next to the last.
pub fn count_missing_managers(conn: &mut DbConn, organization_id: &str) -> QueryResult<i64> {
    let managers = diesel::alias!(users as managers);
    of_organization(organization_id)
        .filter(users::manager_id.is_not_null())
        .filter(diesel::dsl::not(diesel::dsl::exists(
            managers
                .filter(managers.field(users::organization_id).eq(organization_id))
                .filter(managers.field(users::id).nullable().eq(users::manager_id)),
        )))
        .count()
        .get_result(conn)
}

/// Filters of `GET /v1/users`.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub state: Option<UserState>,
    /// Matched, folded, against names, e-mail and external id.
    pub query: Option<String>,
}

/// Users in id order after `after_id`.
pub fn list(
    conn: &mut DbConn,
    organization_id: &str,
    filter: &UserFilter,
    after_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table
        .filter(users::organization_id.eq(organization_id))
        .select(UserRow::as_select())
        .order(users::id)
        .into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(users::state.eq(state.as_str()));
    }
    if let Some(text) = &filter.query {
        query = query.filter(users::search_key.like(like_pattern(text)).escape('\\'));
    }
    if let Some(after_id) = after_id {
        query = query.filter(users::id.gt(after_id.to_owned()));
    }
    query.limit_inline(limit).load(conn)
}

/// `%folded%` with LIKE's wildcards escaped.
pub fn like_pattern(text: &str) -> String {
    let folded = search_fold(text);
    let escaped = folded
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

pub fn find(conn: &mut DbConn, organization_id: &str, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .filter(users::organization_id.eq(organization_id))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_by_email(
    conn: &mut DbConn,
    organization_id: &str,
    email_key: &str,
) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::organization_id.eq(organization_id))
        .filter(users::email_key.eq(email_key))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn set_upcoming_trips(
    conn: &mut DbConn,
    organization_id: &str,
    id: &str,
    upcoming_trips: i32,
) -> QueryResult<()> {
    diesel::update(of_organization(organization_id).filter(users::id.eq(id)))
        .set((
            users::upcoming_trips.eq(upcoming_trips),
            users::updated_at.eq(now()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn insert(conn: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn delete(conn: &mut DbConn, organization_id: &str, id: &str) -> QueryResult<()> {
    diesel::delete(of_organization(organization_id).filter(users::id.eq(id)))
        .execute(conn)
        .map(|_| ())
}

/// External ids of the given users (for showing managers), by user id.
pub fn external_ids(
    conn: &mut DbConn,
    organization_id: &str,
    ids: &[String],
) -> QueryResult<std::collections::HashMap<String, Option<String>>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let pairs: Vec<(String, Option<String>)> = users::table
        .filter(users::organization_id.eq(organization_id))
        .filter(users::id.eq_any(ids))
        .select((users::id, users::external_id))
        .load(conn)?;
    Ok(pairs.into_iter().collect())
}
