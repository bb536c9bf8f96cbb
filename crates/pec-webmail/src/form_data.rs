//! The compose form's `multipart/form-data` body (RFC 7578), read with multer within
//! bounds: the whole body at most the submission limit (read first, so that multer scans
//! it once), at most [`MAX_PARTS`] parts of which [`MAX_FILES`] files, each part's header
//! at most [`MAX_PART_HEADER`] bytes, the text fields shorter than their own limits, and
//! no field the form does not have.

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes};
use hyper::header::CONTENT_TYPE;
use hyper::{HeaderMap, Request};
use multer::{Constraints, Multipart, SizeLimit};

use crate::error::{Error, Result};

/// Most parts read from one form (its text fields, the files, and empty file inputs).
pub const MAX_PARTS: usize = 64;
/// Most files attached to one message.
pub const MAX_FILES: usize = 32;
/// Largest header of one part (`Content-Disposition` with the file name, `Content-Type`).
pub const MAX_PART_HEADER: usize = 4096;
/// Longest file name kept (in characters; longer ones are cut).
const MAX_FILE_NAME: usize = 200;
/// The form's text fields and the most bytes each may hold; the message text (`testo`)
/// may be as large as the whole form.
const TEXT_FIELDS: &[(&str, u64)] = &[
    ("csrf", 128),
    ("a", 16 * 1024),
    ("cc", 16 * 1024),
    ("oggetto", 2 * 1024),
    (IN_REPLY_TO, 1024),
    ("testo", u64::MAX),
];
/// The hidden field naming the Message-ID a reply answers.
pub const IN_REPLY_TO: &str = "in-risposta-a";
/// The file input's name.
pub const FILES_FIELD: &str = "allegati";

/// A file the user attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Its name, without any path the browser sent.
    pub name: String,
    /// Its media type as the browser named it (`application/octet-stream` without one).
    pub media_type: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

/// A compose form read: its text fields and its files.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ComposeForm {
    /// Text fields by name (one value each, the first one given).
    pub fields: Vec<(String, String)>,
    /// Attached files, in the order given.
    pub files: Vec<Upload>,
}

impl ComposeForm {
    /// The value of text field `name` (empty when absent).
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

fn refused(why: impl Into<String>) -> Error {
    Error::BadForm(why.into())
}

/// The bytes of a part's header, as sent (names, values and their separators).
fn header_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum()
}

/// The last segment of a file name a browser sent (old ones send a whole path), without
/// control characters, at most [`MAX_FILE_NAME`] characters.
fn file_name(given: &str) -> String {
    let base = given.rsplit(['/', '\\']).next().unwrap_or("");
    base.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILE_NAME)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Reads a compose form from `req`, a body of at most `max_total` bytes.
pub async fn read<B>(req: Request<B>, max_total: usize) -> Result<ComposeForm>
where
    B: Body + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let boundary = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| refused("Il modulo non è stato inviato come multipart/form-data."))?;
    let body = match Limited::new(req.into_body(), max_total).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return Err(refused(format!(
                "Il messaggio con i suoi allegati supera i {max_total} byte ammessi."
            )));
        }
        Err(e) => {
            tracing::debug!("webmail compose form not read: {e}");
            return Err(refused("Il modulo non è arrivato per intero: riprovare."));
        }
    };
    parse(body, &boundary, max_total).await
}

/// Parses a whole multipart body with this boundary.
pub async fn parse(body: Bytes, boundary: &str, max_total: usize) -> Result<ComposeForm> {
    let total = u64::try_from(max_total).unwrap_or(u64::MAX);
    let mut limit = SizeLimit::new().whole_stream(total).per_field(total);
    for (name, max) in TEXT_FIELDS {
        limit = limit.for_field(*name, (*max).min(total));
    }
    let mut allowed: Vec<&str> = TEXT_FIELDS.iter().map(|(n, _)| *n).collect();
    allowed.push(FILES_FIELD);
    let constraints = Constraints::new().allowed_fields(allowed).size_limit(limit);
    let stream = Full::new(body).into_data_stream();
    let mut multipart = Multipart::with_constraints(stream, boundary, constraints);
    let mut form = ComposeForm::default();
    let mut parts = 0;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multer_refusal(&e)),
        };
        parts += 1;
        if parts > MAX_PARTS {
            return Err(refused(format!("Il modulo ha più di {MAX_PARTS} parti.")));
        }
        if header_size(field.headers()) > MAX_PART_HEADER {
            return Err(refused(
                "L'intestazione di una parte del modulo è troppo lunga.",
            ));
        }
        let name = field.name().unwrap_or("").to_string();
        let upload = (name == FILES_FIELD).then(|| {
            let media_type = field
                .content_type()
                .map_or("application/octet-stream".to_string(), |m| {
                    m.essence_str().to_ascii_lowercase()
                });
            (file_name(field.file_name().unwrap_or("")), media_type)
        });
        let bytes = field.bytes().await.map_err(|e| multer_refusal(&e))?;
        match upload {
            // An empty file input sends a part without name nor contents.
            Some((name, _)) if name.is_empty() && bytes.is_empty() => {}
            Some((name, media_type)) => {
                if form.files.len() >= MAX_FILES {
                    return Err(refused(format!(
                        "Si possono allegare al più {MAX_FILES} file."
                    )));
                }
                let name = if name.is_empty() {
                    "allegato".to_string()
                } else {
                    name
                };
                form.files.push(Upload {
                    name,
                    media_type,
                    bytes: bytes.to_vec(),
                });
            }
            None => {
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| refused("Il modulo contiene testo non UTF-8."))?;
                if !form.fields.iter().any(|(k, _)| *k == name) {
                    form.fields.push((name, text.replace("\r\n", "\n")));
                }
            }
        }
    }
    Ok(form)
}

/// Why multer refused a form, in Italian.
fn multer_refusal(e: &multer::Error) -> Error {
    tracing::debug!("webmail compose form refused: {e}");
    match e {
        multer::Error::FieldSizeExceeded { field_name, .. } => refused(format!(
            "Il campo «{}» è troppo lungo.",
            field_name.as_deref().unwrap_or("?")
        )),
        multer::Error::StreamSizeExceeded { .. } => {
            refused("Il messaggio con i suoi allegati è troppo grande.")
        }
        multer::Error::UnknownField { .. } => refused("Il modulo contiene un campo sconosciuto."),
        _ => refused("Il modulo non è leggibile."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "XyZ";

    fn part(name: &str, file: Option<&str>, body: &str) -> String {
        let file = file.map_or(String::new(), |f| format!("; filename=\"{f}\""));
        format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\
             Content-Type: text/plain\r\n\r\n{body}\r\n"
        )
    }

    fn body(parts: &[String]) -> Bytes {
        Bytes::from(format!("{}--{B}--\r\n", parts.concat()))
    }

    fn run(parts: &[String], max: usize) -> Result<ComposeForm> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(parse(body(parts), B, max))
    }

    fn reason(r: Result<ComposeForm>) -> String {
        match r {
            Err(Error::BadForm(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn fields_and_files_are_read() {
        let f = run(
            &[
                part("csrf", None, "t0k"),
                part("a", None, "anna@pec.it"),
                part("oggetto", None, "Verbale"),
                part("testo", None, "riga 1\r\nriga 2"),
                part("allegati", Some("C:\\Documenti\\verbale.txt"), "contenuto"),
                part("allegati", Some(""), ""),
            ],
            1 << 20,
        )
        .unwrap();
        assert_eq!(f.get("csrf"), "t0k");
        assert_eq!(f.get("a"), "anna@pec.it");
        assert_eq!(f.get("testo"), "riga 1\nriga 2");
        assert_eq!(f.get("cc"), "");
        assert_eq!(
            f.files,
            vec![Upload {
                name: "verbale.txt".into(),
                media_type: "text/plain".into(),
                bytes: b"contenuto".to_vec(),
            }],
            "the path is dropped, the empty file input skipped"
        );
    }

    #[test]
    fn the_total_size_is_bounded() {
        let big = "x".repeat(5000);
        let why = reason(run(
            &[
                part("csrf", None, "t"),
                part("allegati", Some("a.bin"), &big),
            ],
            4096,
        ));
        assert_eq!(why, "Il messaggio con i suoi allegati è troppo grande.");
        assert!(
            run(&[part("allegati", Some("a.bin"), &big)], 8192).is_ok(),
            "within the bound"
        );
    }

    #[test]
    fn the_count_of_files_and_parts_is_bounded() {
        let files: Vec<String> = (0..=MAX_FILES)
            .map(|i| part("allegati", Some(&format!("f{i}.txt")), "x"))
            .collect();
        assert_eq!(
            reason(run(&files, 1 << 20)),
            format!("Si possono allegare al più {MAX_FILES} file.")
        );
        assert_eq!(
            run(&files[..MAX_FILES], 1 << 20).unwrap().files.len(),
            MAX_FILES
        );
        let empties: Vec<String> = (0..=MAX_PARTS)
            .map(|_| part("allegati", Some(""), ""))
            .collect();
        assert_eq!(
            reason(run(&empties, 1 << 20)),
            format!("Il modulo ha più di {MAX_PARTS} parti.")
        );
    }

    #[test]
    fn part_headers_and_text_fields_are_bounded() {
        let long_name = format!("{}.txt", "n".repeat(MAX_PART_HEADER));
        assert_eq!(
            reason(run(&[part("allegati", Some(&long_name), "x")], 1 << 20)),
            "L'intestazione di una parte del modulo è troppo lunga."
        );
        let subject = "s".repeat(3000);
        assert_eq!(
            reason(run(&[part("oggetto", None, &subject)], 1 << 20)),
            "Il campo «oggetto» è troppo lungo."
        );
        assert_eq!(
            reason(run(&[part("bcc", None, "x@y.it")], 1 << 20)),
            "Il modulo contiene un campo sconosciuto."
        );
        assert_eq!(
            reason(run(
                &[part("testo", None, "\u{0}")[..20].to_string()],
                1 << 20
            )),
            "Il modulo non è leggibile."
        );
    }
}
