//! JMAP keywords (RFC 8621 §4.1.1) and IMAP flags, one to one: `\Seen` is `$seen`,
//! `\Flagged` `$flagged`, `\Answered` `$answered`, `\Draft` `$draft`; an IMAP keyword is
//! the JMAP keyword in lower case. `\Deleted` and `\Recent` are not keywords.

use serde_json::{Map, Value};

/// The system flags and their keywords.
const SYSTEM: [(&str, &str); 4] = [
    ("\\Seen", "$seen"),
    ("\\Flagged", "$flagged"),
    ("\\Answered", "$answered"),
    ("\\Draft", "$draft"),
];

/// Longest keyword accepted (RFC 8621: 255 bytes).
const MAX_KEYWORD: usize = 255;

/// The `keywords` object of a message with `flags`.
pub fn from_flags(flags: &[String]) -> Value {
    let mut k = Map::new();
    for flag in flags {
        let keyword = match SYSTEM.iter().find(|(f, _)| f.eq_ignore_ascii_case(flag)) {
            Some((_, kw)) => kw.to_string(),
            None if flag.starts_with('\\') => continue,
            None => flag.to_ascii_lowercase(),
        };
        k.insert(keyword, Value::Bool(true));
    }
    Value::Object(k)
}

/// The IMAP flag of a JMAP keyword; `None` if it is not a valid keyword (RFC 8621:
/// printable ASCII without `( ) { ] % * " \` and space).
pub fn to_flag(keyword: &str) -> Option<String> {
    let lower = keyword.to_ascii_lowercase();
    if let Some((flag, _)) = SYSTEM.iter().find(|(_, kw)| *kw == lower) {
        return Some(flag.to_string());
    }
    let valid = !lower.is_empty()
        && lower.len() <= MAX_KEYWORD
        && lower
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !b"(){]%*\"\\".contains(&b));
    valid.then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_and_keywords_map_both_ways() {
        let flags =
            ["\\Seen", "\\Deleted", "\\Flagged", "$Forwarded", "\\Recent"].map(String::from);
        assert_eq!(
            from_flags(&flags),
            json!({"$seen": true, "$flagged": true, "$forwarded": true})
        );
        assert_eq!(to_flag("$Seen").as_deref(), Some("\\Seen"));
        assert_eq!(to_flag("$draft").as_deref(), Some("\\Draft"));
        assert_eq!(to_flag("Work").as_deref(), Some("work"));
        assert_eq!(to_flag("a b"), None);
        assert_eq!(to_flag("\\Deleted"), None);
        assert_eq!(to_flag(""), None);
    }
}
