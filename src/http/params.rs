//! Query parameters where an empty value (`?status=&cursor=`) means "not given", as HTML
//! forms and many clients send them.

use std::str::FromStr;

use serde::de::{Deserializer, Error as _, IntoDeserializer};
use serde::Deserialize;

/// An optional word (an enum value or a text) that may be sent empty.
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => T::deserialize(text.into_deserializer()).map(Some),
    }
}

/// An optional number that may be sent empty.
pub fn optional_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e| D::Error::custom(format!("{text:?}: {e}"))),
    }
}
