//! Cursor pagination: `limit` 1–1000 (default 50) and opaque cursors that only we issue.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::error::AppError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 1000;

/// `limit` and `cursor`, shared by every list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 50, example = 50)]
    #[serde(default, deserialize_with = "crate::http::params::optional_number")]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page, as it is (unpadded base64url). Empty: the first page.
    #[param(pattern = "^[A-Za-z0-9_-]*$", max_length = 400)]
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, AppError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            Some(limit) => Err(AppError::bad_request(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}."
            ))),
        }
    }

    /// The position a cursor of `kind` carries, if a cursor was given.
    pub fn position(&self, kind: &str) -> Result<Option<String>, AppError> {
        self.cursor
            .as_deref()
            .map(|cursor| decode(kind, cursor))
            .transpose()
    }

    /// The id a cursor of `kind` carries: lists keyed by id only issue cursors holding one.
    pub fn id_position(&self, kind: &str) -> Result<Option<String>, AppError> {
        let position = self.position(kind)?;
        match &position {
            Some(id) if uuid::Uuid::try_parse(id).is_err() => Err(not_ours()),
            _ => Ok(position),
        }
    }
}

/// A page of a list, as handlers build and serialize it. Its OpenAPI schema is declared per
/// item type with [`page_schema!`], so that the document names it `<Item>Page`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Declares the OpenAPI schema of `Page<$item>` under the name `$name` (`RunPage`,
/// `UserPage`…): items by `$ref`, `next_cursor` required and nullable. Handlers return
/// `Page<$item>` and declare `body = $name`; a test checks both serialize the same keys.
macro_rules! page_schema {
    ($(#[$meta:meta])* $name:ident, $item:ty) => {
        $(#[$meta])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        #[allow(dead_code)] // Documents `Page<$item>`; never built.
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` to get the next page; `null` on the last page.
            #[schema(required = true, example = "cnVuczowMTkzYTZkMi0xYzRlLTdkMmEtOWYzYi01ZTZhN2I4YzlkMGU", pattern = "^[A-Za-z0-9_-]+$")]
            pub next_cursor: Option<String>,
        }
    };
}
pub(crate) use page_schema;

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only says there is more.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: i64,
        kind: &str,
        position: impl Fn(&R) -> String,
        view: impl Fn(R) -> T,
    ) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|last| encode(kind, &position(last)))
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

pub fn encode(kind: &str, position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{position}"))
}

fn not_ours() -> AppError {
    AppError::bad_request(
        "cursor is not a cursor of this list; use next_cursor of the previous page as it is.",
    )
}

fn decode(kind: &str, cursor: &str) -> Result<String, AppError> {
    let invalid = not_ours;
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let position = text
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or_else(invalid)?;
    if position.is_empty() {
        return Err(invalid());
    }
    Ok(position.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_list() {
        let params = PageParams {
            limit: None,
            cursor: Some(encode("runs", "0192-abc")),
        };
        assert_eq!(
            params.position("runs").unwrap().as_deref(),
            Some("0192-abc")
        );
        assert!(params.position("users").is_err());
        let forged = PageParams {
            limit: None,
            cursor: Some("not base64!".into()),
        };
        assert!(forged.position("runs").is_err());
    }

    #[test]
    fn limits_outside_1_to_1000_are_refused() {
        for (limit, ok) in [
            (None, true),
            (Some(1), true),
            (Some(1000), true),
            (Some(0), false),
            (Some(1001), false),
            (Some(-5), false),
        ] {
            assert_eq!(
                PageParams {
                    limit,
                    cursor: None
                }
                .limit()
                .is_ok(),
                ok,
                "{limit:?}"
            );
        }
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_exist() {
        let page = Page::from_rows(vec![1, 2, 3], 2, "n", |n| n.to_string(), |n| n);
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next_cursor, Some(encode("n", "2")));
        let last = Page::from_rows(vec![1, 2], 2, "n", |n| n.to_string(), |n| n);
        assert_eq!(last.next_cursor, None);
    }
}
