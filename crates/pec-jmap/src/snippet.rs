//! SearchSnippet/get (RFC 8621 §5), simple: the subject with the filter's `text` and
//! `subject` texts marked (`<mark>`, HTML-escaped), `null` when none occurs in it;
//! `preview` is always `null` (no body snippets yet).

use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::args;
use crate::email::Index;
use crate::error::{Error, Result};
use crate::ids::EmailId;
use crate::protocol::Arguments;
use crate::query;

/// `text` HTML-escaped, with every occurrence of `terms` (lower case, ignoring ASCII
/// case) in `<mark>`; `None` if none occurs.
pub fn mark(text: &str, terms: &[String]) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut marked = vec![false; text.len()];
    for term in terms.iter().filter(|t| !t.is_empty()) {
        let mut from = 0;
        while let Some(at) = lower.get(from..).and_then(|rest| rest.find(term.as_str())) {
            let start = from + at;
            marked[start..start + term.len()].fill(true);
            from = start + term.len();
        }
    }
    if !marked.contains(&true) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut open = false;
    for (i, c) in text.char_indices() {
        if marked[i] != open {
            out.push_str(if open { "</mark>" } else { "<mark>" });
            open = marked[i];
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    if open {
        out.push_str("</mark>");
    }
    Some(out)
}

/// SearchSnippet/get.
pub fn get(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let ids = args::strings(args, "emailIds", ctx.limits.max_objects_in_get)?
        .ok_or_else(|| Error::InvalidArguments("emailIds is required".into()))?;
    let terms = match args.get("filter") {
        None | Some(Value::Null) => Vec::new(),
        Some(f) => query::subject_terms(f, ctx.using_pec)?,
    };
    let mut index = Index::new(ctx)?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for id in ids {
        let Some(email) = EmailId::parse(&id) else {
            not_found.push(id);
            continue;
        };
        if index.meta(email)?.is_none() {
            not_found.push(id);
            continue;
        }
        let raw = index.bytes(email)?;
        let subject = pec_proto::bounded::parse_headers(&raw)
            .and_then(|m| m.subject().and_then(|s| mark(s, &terms)));
        list.push(json!({"emailId": id, "subject": subject, "preview": null}));
    }
    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("list".into(), Value::Array(list));
    r.insert(
        "notFound".into(),
        if not_found.is_empty() {
            Value::Null
        } else {
            not_found.into()
        },
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_escaped_and_merged() {
        let terms = vec!["verbale".to_string(), "ale 7".to_string()];
        assert_eq!(
            mark("Il VERBALE 7 <urgente> & co", &terms).as_deref(),
            Some("Il <mark>VERBALE 7</mark> &lt;urgente&gt; &amp; co")
        );
        assert_eq!(
            mark("Perché è così", &["così".to_string()]).as_deref(),
            Some("Perché è <mark>così</mark>")
        );
        assert_eq!(mark("nulla", &terms), None);
    }
}
