//! `static_insert!`: an INSERT of one row whose SQL never changes, for the rows a run writes
//! one by one on SQLite (users, report lines).
//!
//! Diesel finds a prepared statement in its cache by the query's type when the query says its
//! SQL is static, and otherwise by writing the SQL out and hashing it. Its derived inserts are
//! never static (any value could be `DEFAULT`), so a 100,000-user first sync wrote two INSERTs
//! out 200,000 times only to find them in the cache. These queries are static: the SQL is
//! written once, when the statement is prepared, and each row only binds its values.

/// `static_insert!(Name for Row into "table" { column: SqlType, … })` defines `Name<'a>(&'a Row)`,
/// a query that inserts the row's fields named by the columns, with those SQL types.
macro_rules! static_insert {
    ($name:ident for $row:ident into $table:literal {
        $first:ident: $first_type:ty $(, $column:ident: $sql_type:ty)* $(,)?
    }) => {
        pub struct $name<'a>(pub &'a $row);

        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for $name<'_> {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
            ) -> diesel::QueryResult<()> {
                out.push_sql(concat!(
                    "INSERT INTO ", $table, " (\"", stringify!($first), "\""
                    $(, ", \"", stringify!($column), "\"")*,
                    ") VALUES ("
                ));
                out.push_bind_param::<$first_type, _>(&self.0.$first)?;
                $(
                    out.push_sql(", ");
                    out.push_bind_param::<$sql_type, _>(&self.0.$column)?;
                )*
                out.push_sql(")");
                Ok(())
            }
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $name<'_> {}
    };
}

pub(crate) use static_insert;

#[cfg(test)]
mod tests {
    use diesel::sqlite::Sqlite;

    use crate::domain::{ApprovalProcess, Role, UserState};
    use crate::store::events::InsertEvent;
    use crate::store::models::{EventRow, UserRow};
    use crate::store::schema::{sync_events, users};
    use crate::store::users::InsertUser;

    /// The columns and the values an INSERT's text names, quotes left out.
    fn written(query: String) -> (String, String) {
        let columns = query
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(") VALUES"))
            .map(|(columns, _)| columns.replace(['"', '`', ' '], ""))
            .unwrap_or_default();
        let binds = query
            .split_once("-- binds: ")
            .map(|(_, binds)| binds.to_owned())
            .unwrap_or_default();
        (columns, binds)
    }

    #[test]
    fn the_static_inserts_write_every_column_the_rows_have_with_their_values() {
        let mut user = UserRow::new(
            "org",
            UserState::Active,
            Role::Member,
            ApprovalProcess::OutOfPolicy,
            "2026-11-30T00:00:00Z",
        );
        user.external_id = Some("E1".to_owned());
        user.text_stamp = Some("stamp".to_owned());
        let derived = diesel::insert_into(users::table).values(&user);
        assert_eq!(
            written(diesel::debug_query::<Sqlite, _>(&InsertUser(&user)).to_string()),
            written(diesel::debug_query::<Sqlite, _>(&derived).to_string())
        );

        let event = EventRow {
            run_id: "run".to_owned(),
            seq: 1,
            kind: "update".to_owned(),
            entity: "user".to_owned(),
            action: Some("USER_CREATED".to_owned()),
            code: None,
            severity: None,
            field: None,
            message: None,
            changes: Some("[]".to_owned()),
            source_row: Some(1),
            external_id: Some("E1".to_owned()),
            email: None,
            first_name: None,
            last_name: None,
            user_id: None,
            team: None,
            search_key: "e1".to_owned(),
        };
        let derived = diesel::insert_into(sync_events::table).values(&event);
        assert_eq!(
            written(diesel::debug_query::<Sqlite, _>(&InsertEvent(&event)).to_string()),
            written(diesel::debug_query::<Sqlite, _>(&derived).to_string())
        );
    }
}
