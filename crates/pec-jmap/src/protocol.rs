//! The JSON shapes of RFC 8620 §3: the request a client POSTs, the invocations in it,
//! the response, and result references (§3.7) resolved against earlier responses.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The arguments of one method call or response: a JSON object.
pub type Arguments = Map<String, Value>;

/// `[name, arguments, call id]`: one method call, or one response to it (§3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation(pub String, pub Arguments, pub String);

/// The body of an API request (§3.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The capabilities the client uses; methods of others are unknown to it.
    pub using: Vec<String>,
    /// The calls, processed in order.
    pub method_calls: Vec<Invocation>,
    /// Creation ids the client already knows (echoed back).
    #[serde(default)]
    pub created_ids: Option<Map<String, Value>>,
}

/// The body of an API response (§3.4).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// One or more responses per call, in order.
    pub method_responses: Vec<Invocation>,
    /// Creation ids, when the request had them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_ids: Option<Map<String, Value>>,
    /// The session resource's state, so the client knows when to fetch it again.
    pub session_state: String,
}

/// A reference to the result of an earlier call of the same request (§3.7).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResultReference {
    result_of: String,
    name: String,
    path: String,
}

/// Longest JSON pointer accepted in a result reference.
const MAX_POINTER: usize = 1024;

/// Replaces every `#name` argument of `args` by the value its result reference points
/// at in `earlier` (the responses so far).
pub fn resolve_references(args: &mut Arguments, earlier: &[Invocation]) -> Result<()> {
    let referencing: Vec<String> = args
        .keys()
        .filter(|k| k.starts_with('#'))
        .cloned()
        .collect();
    for key in referencing {
        let plain = key.trim_start_matches('#').to_string();
        if args.contains_key(&plain) {
            return Err(Error::InvalidArguments(format!(
                "both {plain} and {key} are given"
            )));
        }
        let value = args.remove(&key).unwrap_or(Value::Null);
        let reference: ResultReference = serde_json::from_value(value)
            .map_err(|e| Error::InvalidResultReference(format!("{key}: {e}")))?;
        let response = earlier
            .iter()
            .find(|r| r.2 == reference.result_of && r.0 == reference.name)
            .ok_or_else(|| {
                Error::InvalidResultReference(format!(
                    "no {} response for call {}",
                    reference.name, reference.result_of
                ))
            })?;
        let target = Value::Object(response.1.clone());
        let resolved = evaluate_pointer(&target, &reference.path)?;
        args.insert(plain, resolved);
    }
    Ok(())
}

/// Evaluates a JSON pointer (RFC 6901) with JMAP's `*` (§3.7): `*` applies the rest of
/// the path to every item of an array, and arrays found that way are flattened into
/// one. Iterative, so a path of many `*` costs no stack.
pub fn evaluate_pointer(root: &Value, path: &str) -> Result<Value> {
    if path.len() > MAX_POINTER {
        return Err(Error::InvalidResultReference("path too long".into()));
    }
    let bad = || Error::InvalidResultReference(format!("path {path:?} leads nowhere"));
    if path.is_empty() {
        return Ok(root.clone());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(bad());
    };
    let mut current: Vec<&Value> = vec![root];
    let mut mapped = false;
    for raw in rest.split('/') {
        let token = raw.replace("~1", "/").replace("~0", "~");
        let mut next = Vec::with_capacity(current.len());
        for value in current {
            match value {
                Value::Array(items) if token == "*" => next.extend(items.iter()),
                Value::Array(items) => {
                    let index: usize = token.parse().map_err(|_| bad())?;
                    next.push(items.get(index).ok_or_else(bad)?);
                }
                Value::Object(map) => next.push(map.get(&token).ok_or_else(bad)?),
                _ => return Err(bad()),
            }
        }
        mapped |= token == "*";
        current = next;
    }
    if !mapped {
        return current.first().map(|v| (*v).clone()).ok_or_else(bad);
    }
    let mut flat = Vec::new();
    for value in current {
        match value {
            Value::Array(items) => flat.extend(items.iter().cloned()),
            other => flat.push(other.clone()),
        }
    }
    Ok(Value::Array(flat))
}

/// A request-level error (RFC 8620 §3.6.1), answered as an RFC 7807 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `urn:ietf:params:jmap:error:…`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status.
    pub status: u16,
    /// For humans.
    pub detail: String,
    /// The limit passed, for `urn:ietf:params:jmap:error:limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<&'static str>,
}

impl Problem {
    /// A problem of `kind` (the last part of the URN) with status 400.
    pub fn new(kind: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:ietf:params:jmap:error:{kind}"),
            status: 400,
            detail: detail.into(),
            limit: None,
        }
    }

    /// The `limit` problem for the limit named `limit`.
    pub fn limit(limit: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            limit: Some(limit),
            ..Problem::new("limit", detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_with_star_flattens() {
        let v = json!({"list": [{"id": "a", "ids": ["1", "2"]}, {"id": "b", "ids": ["3"]}]});
        assert_eq!(
            evaluate_pointer(&v, "/list/*/id").unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(
            evaluate_pointer(&v, "/list/*/ids").unwrap(),
            json!(["1", "2", "3"])
        );
        assert_eq!(evaluate_pointer(&v, "/list/1/id").unwrap(), json!("b"));
        assert!(evaluate_pointer(&v, "/list/2/id").is_err());
        assert!(evaluate_pointer(&v, "/nope").is_err());
        assert!(evaluate_pointer(&v, "list").is_err());
        let escaped = json!({"a/b": {"~": 1}});
        assert_eq!(evaluate_pointer(&escaped, "/a~1b/~0").unwrap(), json!(1));
    }

    #[test]
    fn references_resolve_and_conflicts_are_refused() {
        let earlier = vec![Invocation(
            "Email/query".into(),
            json!({"ids": ["x", "y"]}).as_object().unwrap().clone(),
            "c0".into(),
        )];
        let mut args = json!({"#ids": {"resultOf": "c0", "name": "Email/query", "path": "/ids"}})
            .as_object()
            .unwrap()
            .clone();
        resolve_references(&mut args, &earlier).unwrap();
        assert_eq!(args["ids"], json!(["x", "y"]));
        let mut both =
            json!({"ids": [], "#ids": {"resultOf": "c0", "name": "Email/query", "path": "/ids"}})
                .as_object()
                .unwrap()
                .clone();
        assert_eq!(
            resolve_references(&mut both, &earlier).unwrap_err().kind(),
            "invalidArguments"
        );
        let mut wrong = json!({"#ids": {"resultOf": "c0", "name": "Email/get", "path": "/ids"}})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            resolve_references(&mut wrong, &earlier).unwrap_err().kind(),
            "invalidResultReference"
        );
    }
}
