//! Reading method arguments: each helper names the argument it found wrong, so the
//! client's `invalidArguments` says what to fix.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::protocol::Arguments;

fn invalid(name: &str, what: &str) -> Error {
    Error::InvalidArguments(format!("{name}: {what}"))
}

/// Checks `accountId` names the user's account.
pub fn account(args: &Arguments, account_id: &str) -> Result<()> {
    match args.get("accountId") {
        Some(Value::String(id)) if id == account_id => Ok(()),
        Some(Value::String(_)) => Err(Error::AccountNotFound),
        _ => Err(invalid("accountId", "a string is required")),
    }
}

/// An optional list of strings (`null` or absent: `None`), at most `max` long.
pub fn strings(args: &Arguments, name: &str, max: usize) -> Result<Option<Vec<String>>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            if items.len() > max {
                return Err(Error::RequestTooLarge(format!(
                    "{name}: at most {max} are allowed"
                )));
            }
            items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| invalid(name, "a list of strings is required"))
        }
        Some(_) => Err(invalid(name, "a list of strings is required")),
    }
}

/// An optional string.
pub fn string<'a>(args: &'a Arguments, name: &str) -> Result<Option<&'a str>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name, "a string is required")),
    }
}

/// A required string.
pub fn required_string<'a>(args: &'a Arguments, name: &str) -> Result<&'a str> {
    string(args, name)?.ok_or_else(|| invalid(name, "a string is required"))
}

/// An optional boolean, `default` when absent.
pub fn boolean(args: &Arguments, name: &str, default: bool) -> Result<bool> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(name, "a boolean is required")),
    }
}

/// An optional unsigned integer.
pub fn unsigned(args: &Arguments, name: &str) -> Result<Option<u64>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(name, "an unsigned integer is required")),
    }
}

/// An optional signed integer.
pub fn signed(args: &Arguments, name: &str) -> Result<Option<i64>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(name, "an integer is required")),
    }
}

/// An optional object.
pub fn object<'a>(args: &'a Arguments, name: &str) -> Result<Option<&'a Map<String, Value>>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(invalid(name, "an object is required")),
    }
}

/// Keeps only `properties` of `object` (and its `id`, always returned, RFC 8620 §5.1).
pub fn select(mut object: Map<String, Value>, properties: Option<&[String]>) -> Value {
    if let Some(wanted) = properties {
        object.retain(|k, _| k == "id" || wanted.iter().any(|w| w == k));
    }
    Value::Object(object)
}

/// The standard `/get` response.
pub fn get_response(
    account_id: &str,
    state: String,
    list: Vec<Value>,
    not_found: Vec<String>,
) -> Arguments {
    let mut r = Map::new();
    r.insert("accountId".into(), account_id.into());
    r.insert("state".into(), state.into());
    r.insert("list".into(), Value::Array(list));
    r.insert(
        "notFound".into(),
        Value::Array(not_found.into_iter().map(Value::String).collect()),
    );
    r
}

/// The standard `/changes` response.
pub fn changes_response(
    account_id: &str,
    old_state: &str,
    new_state: String,
    lists: [Vec<String>; 3],
) -> Arguments {
    let [created, updated, destroyed] = lists;
    let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let mut r = Map::new();
    r.insert("accountId".into(), account_id.into());
    r.insert("oldState".into(), old_state.into());
    r.insert("newState".into(), new_state.into());
    r.insert("hasMoreChanges".into(), false.into());
    r.insert("created".into(), strings(created));
    r.insert("updated".into(), strings(updated));
    r.insert("destroyed".into(), strings(destroyed));
    r
}

/// The page of a query's result `ids` the client asked for (RFC 8620 §5.5: `position`,
/// negative from the end, or `anchor` and `anchorOffset`; `limit` at most
/// `default_limit`), with the position it starts at.
pub fn window(
    args: &Arguments,
    ids: &[String],
    default_limit: usize,
) -> Result<(usize, Vec<String>)> {
    let limit = unsigned(args, "limit")?.map_or(default_limit, |l| {
        usize::try_from(l).unwrap_or(usize::MAX).min(default_limit)
    });
    let start = if let Some(anchor) = string(args, "anchor")? {
        let at = ids
            .iter()
            .position(|i| i == anchor)
            .ok_or(Error::AnchorNotFound)?;
        let offset = signed(args, "anchorOffset")?.unwrap_or(0);
        let at = i64::try_from(at).unwrap_or(i64::MAX).saturating_add(offset);
        usize::try_from(at.max(0)).unwrap_or(0)
    } else {
        let position = signed(args, "position")?.unwrap_or(0);
        let total = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        let p = if position < 0 {
            (total + position).max(0)
        } else {
            position
        };
        usize::try_from(p).unwrap_or(usize::MAX)
    };
    let start = start.min(ids.len());
    let end = start.saturating_add(limit).min(ids.len());
    Ok((start, ids.get(start..end).unwrap_or_default().to_vec()))
}
