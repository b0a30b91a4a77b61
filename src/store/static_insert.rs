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
