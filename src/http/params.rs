//! Query parameters where an empty value (`?status=&cursor=`) means "not given", as HTML
//! forms and many clients send them (numbers excepted: `?limit=` is refused).

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

/// An optional number. Unlike a filter, a number sent empty (`?limit=`) is refused: the
/// OpenAPI document declares it an integer, so an empty value is not one.
pub fn optional_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) if text.is_empty() => {
            Err(D::Error::custom("a number is expected, got an empty value"))
        }
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e| D::Error::custom(format!("{text:?}: {e}"))),
    }
}

/// A whole number sent as JSON: `3` or `3.0` (JSON Schema's `integer` accepts both), never
/// `3.5`.
pub fn whole_number<'de, D>(deserializer: D) -> Result<i64, D::Error>
where
    D: Deserializer<'de>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(whole) = number.as_i64() {
        return Ok(whole);
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && value.abs() < 9.0e15 => Ok(value as i64),
        _ => Err(D::Error::custom(format!(
            "expected a whole number, got {number}"
        ))),
    }
}
