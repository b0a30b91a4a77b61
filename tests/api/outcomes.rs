//! What a run did, in a form two servers given the same pushes must agree on: for the tests
//! that run one scenario on two differently configured servers and compare every run.

use serde_json::{json, Value};

use crate::helpers::TestApp;

/// A value with every id (a UUID) replaced, and the keys that only carry ids or times removed:
/// what two servers given the same pushes must agree on.
fn comparable(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| {
                    !matches!(
                        key.as_str(),
                        "id" | "user_id"
                            | "at"
                            | "manager_id"
                            | "created_at"
                            | "updated_at"
                            | "started_at"
                            | "finished_at"
                            | "archived_at"
                            | "pending_archive_since"
                    )
                })
                .map(|(key, value)| (key.clone(), comparable(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(comparable).collect()),
        Value::String(text) => Value::String(without_uuids(text)),
        other => other.clone(),
    }
}

fn without_uuids(text: &str) -> String {
    let shape = |word: &str| {
        word.len() == 36
            && word.char_indices().all(|(at, c)| match at {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() >= 36 && rest.is_char_boundary(36) && shape(&rest[..36]) {
            out.push_str("<id>");
            rest = &rest[36..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Where two values differ: the paths and both sides, for a failure to say what it is.
pub fn differences(a: &Value, b: &Value, at: &str) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .flat_map(|key| {
                    let null = Value::Null;
                    differences(
                        x.get(key).unwrap_or(&null),
                        y.get(key).unwrap_or(&null),
                        &format!("{at}/{key}"),
                    )
                })
                .collect()
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .flat_map(|(i, (x, y))| differences(x, y, &format!("{at}/{i}")))
            .collect(),
        _ if a == b => Vec::new(),
        _ => vec![format!("{at}: {a} vs {b}")],
    }
}

/// What a run did, as two servers given the same pushes must agree on.
pub fn outcome(app: &TestApp, run: &Value) -> Value {
    let mut users = app.users("");
    users.sort_by(|a, b| a["external_id"].as_str().cmp(&b["external_id"].as_str()));
    json!({
        "status": run["status"],
        "counts": run["counts"],
        "issues": run["issues"],
        "logs": comparable(&run["logs"]),
        "events": comparable(&json!(app.events(run["id"].as_str().unwrap(), ""))),
        "users": comparable(&json!(users)),
    })
}
