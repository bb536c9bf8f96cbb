//! The human-readable part of every generated message, in Italian as the network writes
//! it (spec §3.3–§3.12), rendered as ISO-8859-1 plain text and as an HTML twin that carries
//! the same information and references nothing (spec §5.1).

use crate::mime::{quoted_printable, to_latin1};

/// A body: a title line and the lines that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The first line (`Ricevuta di accettazione`, ...), also the HTML title.
    pub title: String,
    /// The remaining lines, in order.
    pub lines: Vec<String>,
}

impl Body {
    /// The plain-text rendering, CRLF line endings, UTF-8 (converted to Latin-1 on output).
    pub fn plain(&self) -> String {
        let mut out = format!("{}\r\n", self.title);
        for line in &self.lines {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out
    }

    /// The HTML rendering: no scripts, no styles, no external or internal references.
    pub fn html(&self) -> String {
        let title = html_escape(&self.title);
        let mut out = format!(
            "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<h3>{title}</h3>\r\n<hr><br>\r\n"
        );
        for line in &self.lines {
            out.push_str(&html_escape(line));
            out.push_str("<br>\r\n");
        }
        out.push_str("</body>\r\n</html>\r\n");
        out
    }

    /// The `multipart/alternative` entity (text/plain + text/html, ISO-8859-1,
    /// quoted-printable) with the given boundary, ending with its close delimiter line.
    pub fn alternative_entity(&self, boundary: &str) -> String {
        let part = |subtype: &str, text: &str| {
            format!(
                "--{boundary}\r\nContent-Type: text/{subtype}; charset=\"iso-8859-1\"\r\n\
                 Content-Disposition: inline\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}",
                quoted_printable(&to_latin1(text))
            )
        };
        format!(
            "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n{}\r\n{}\r\n--{boundary}--\r\n",
            part("plain", &self.plain()),
            part("html", &self.html()),
        )
    }
}

/// Escapes HTML specials and writes every non-ASCII character as a numeric reference, so
/// the HTML is plain ASCII whatever the charset.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("&#{};", u32::from(c))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_has_no_references_and_escapes() {
        let b = Body {
            title: "Ricevuta di accettazione".into(),
            lines: vec!["\"<script>\" è".into()],
        };
        let html = b.html();
        assert!(html.contains("&quot;&lt;script&gt;&quot; &#232;<br>"));
        for forbidden in ["<script", "src=", "href=", "<style", "<link", "url("] {
            assert!(!html.to_lowercase().contains(forbidden), "{forbidden}");
        }
    }

    #[test]
    fn plain_is_latin1_qp() {
        let b = Body {
            title: "T".into(),
            lines: vec!["è".into()],
        };
        let e = b.alternative_entity("B");
        assert!(e.contains("T\r\n=E8\r\n"), "{e}");
        assert!(e.ends_with("--B--\r\n"));
    }
}
