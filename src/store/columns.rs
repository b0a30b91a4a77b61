//! Typed columns: the closed sets of words (a run's status and mode, an event's kind…) are
//! read and written as themselves on both backends. A stored word outside its set makes the
//! row fail to load with an error that names it; it is never read as some default.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteValue};

use crate::domain::{
    EntityKind, EventKind, Role, RunStatus, Severity, SyncMode, UpdateAction, UserState,
};
use crate::store::MultiBackend;

/// Implements `FromSql`/`ToSql` of `Text` for each backend (and so for `MultiBackend`, which
/// dispatches to them) through the type's `as_str` and `from_stored`.
macro_rules! text_columns {
    ($($name:ident),+ $(,)?) => {$(
        impl FromSql<Text, Sqlite> for $name {
            fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<$name> {
                let raw = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
                parse(&raw, $name::from_stored, stringify!($name))
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(value: PgValue<'_>) -> deserialize::Result<$name> {
                let raw = <String as FromSql<Text, Pg>>::from_sql(value)?;
                parse(&raw, $name::from_stored, stringify!($name))
            }
        }

        impl FromSql<Text, MultiBackend> for $name {
            fn from_sql(
                value: <MultiBackend as Backend>::RawValue<'_>,
            ) -> deserialize::Result<$name> {
                value.from_sql::<$name, Text>()
            }
        }

        impl ToSql<Text, Sqlite> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                <str as ToSql<Text, Sqlite>>::to_sql(self.as_str(), out)
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl ToSql<Text, MultiBackend> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                out.set_value((Text, self));
                Ok(IsNull::No)
            }
        }
    )+};
}

text_columns!(
    RunStatus,
    SyncMode,
    EventKind,
    EntityKind,
    Severity,
    UpdateAction,
    UserState,
    Role
);

fn parse<T>(raw: &str, from_stored: fn(&str) -> Option<T>, what: &str) -> deserialize::Result<T> {
    from_stored(raw).ok_or_else(|| format!("{raw:?} is not a stored {what} word").into())
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use crate::domain::{RunStatus, SyncMode};
    use crate::store::runs::{self, NewRun, Stored};
    use crate::store::schema::sync_runs;
    use crate::store::{connect, organizations};

    #[test]
    fn typed_columns_round_trip_and_an_unknown_stored_word_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("columns.db").display());
        let mut conn = connect(&url, 1).unwrap().get().unwrap();
        let organization = organizations::create(&mut conn, "acme")
            .unwrap()
            .organization;
        let new = NewRun {
            organization_id: &organization.id,
            mode: SyncMode::Full,
            source: "test",
            dry_run: false,
            content_type: "application/json",
            body: &crate::store::payloads::WholeBody(b"{}"),
            record_count: 0,
            retry_of: None,
            idempotency: None,
        };
        let Stored::Created(run) = runs::insert(&mut conn, &new).unwrap() else {
            panic!("a new run");
        };
        let found = runs::find(&mut conn, &organization.id, &run.id)
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.status, found.mode),
            (RunStatus::Pending, SyncMode::Full)
        );
        let stored: String = sync_runs::table
            .find(&run.id)
            .select(sync_runs::status)
            .first::<RunStatus>(&mut conn)
            .map(|status| status.as_str().to_owned())
            .unwrap();
        assert_eq!(stored, "pending");

        diesel::update(sync_runs::table.find(&run.id))
            .set(sync_runs::status.eq("done"))
            .execute(&mut conn)
            .unwrap();
        let error = runs::find(&mut conn, &organization.id, &run.id).unwrap_err();
        assert!(
            matches!(error, diesel::result::Error::DeserializationError(_)),
            "{error:?}"
        );
        assert!(format!("{error:?}").contains("done"), "{error:?}");
    }
}
