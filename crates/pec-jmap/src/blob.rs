//! Blobs for download (RFC 8620 §6.2): a whole message as stored, or one MIME part of it
//! decoded, found among the user's own messages only.

use crate::error::Result;
use crate::ids::{BlobId, EmailId};
use crate::mailbox;
use pec_store::Store;

/// Longest file name echoed in `Content-Disposition`.
const MAX_NAME: usize = 200;

/// The bytes of `blob` if one of `address`'s messages is it (or holds it).
pub fn read(store: &dyn Store, address: &str, blob: &BlobId) -> Result<Option<Vec<u8>>> {
    let mut holder = None;
    for view in mailbox::snapshot(store, address)? {
        let metas = mailbox::messages(store, address, &view)?;
        if let Some(m) = metas.iter().find(|m| m.hash == blob.hash) {
            let id = EmailId {
                place: view.place,
                uid: m.uid,
            };
            holder = Some((view, id));
            break;
        }
    }
    let Some((view, id)) = holder else {
        return Ok(None);
    };
    let raw = match &view.folder {
        Some(f) => store.fetch(address, &f.name, id.uid)?,
        None => store.read_archive_of(address, id.uid)?,
    };
    let Some(part) = blob.part else {
        return Ok(Some(raw));
    };
    let parsed = pec_proto::bounded::parse(&raw);
    Ok(parsed
        .message()
        .and_then(|m| m.part(part))
        .map(|p| p.contents().to_vec()))
}

/// The `Content-Type` of a download: the client's `type` if it is a plain media type,
/// else `application/octet-stream`.
pub fn content_type(query: &str) -> String {
    let asked = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "type")
        .map(|(_, v)| v.replace("%2F", "/").replace("%2f", "/"));
    asked
        .filter(|t| {
            t.len() <= 100
                && t.split_once('/').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && t.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"/.+-_".contains(&c))
                })
        })
        .unwrap_or_else(|| "application/octet-stream".to_string())
}

/// A file name safe inside a quoted `Content-Disposition` parameter.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '/' | '%'))
        .take(MAX_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_names_are_sanitised() {
        assert_eq!(content_type("type=message/rfc822"), "message/rfc822");
        assert_eq!(content_type("type=message%2Frfc822"), "message/rfc822");
        assert_eq!(
            content_type("type=text/html\r\nX: y"),
            "application/octet-stream"
        );
        assert_eq!(content_type(""), "application/octet-stream");
        assert_eq!(safe_name("a \"b\"/c.eml"), "abc.eml");
    }
}
