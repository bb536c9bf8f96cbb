//! HTML output: every value that comes from outside (subjects, addresses, file names,
//! daticert fields) goes through [`esc`] before it is written into a page; [`page`] wraps
//! a body in the common layout (language, styles, the user's bar).

use std::fmt::Write;

/// `text` escaped for HTML element content and double-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => {}
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `text` escaped for one path segment of a URL (RFC 3986 unreserved bytes kept).
pub fn url_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Styles: readable contrast (at least 4.5:1), visible keyboard focus.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fff}\
header{background:#003366;color:#fff;padding:.5em 1em;display:flex;justify-content:space-between;align-items:center}\
header a{color:#fff}header button{background:#fff;color:#003366;border:1px solid #fff;padding:.2em .8em}main{display:flex;gap:1em;padding:1em}nav{min-width:14em}\
nav ul{list-style:none;padding:0}nav li{margin:.3em 0}a{color:#0645ad}\
a:focus,button:focus,input:focus{outline:3px solid #ff9900;outline-offset:2px}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #ccc}\
tr.nonletto td{font-weight:bold}.badge{display:inline-block;padding:.1em .5em;border-radius:.3em;\
font-size:.85em;background:#e6e6e6;color:#1a1a1a;border:1px solid #555}\
.badge.ok{background:#dff0d8;color:#1e4620}.badge.ko{background:#f8d7da;color:#721c24}\
section.pannello{border:1px solid #888;border-radius:.4em;padding:.5em 1em;margin:1em 0}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}dd{margin:0}\
pre{white-space:pre-wrap;background:#f4f4f4;padding:.5em;border:1px solid #ccc}\
.errore{color:#721c24;background:#f8d7da;padding:.5em;border:1px solid #721c24}\
form.login{max-width:22em;margin:3em auto;display:grid;gap:.5em}\
form.scrivi{display:grid;gap:.3em;max-width:48em}form.scrivi label{font-weight:bold;margin-top:.5em}\
input,textarea,button{font:inherit}textarea:focus,a.scrivi:focus{outline:3px solid #ff9900;outline-offset:2px}\
a.scrivi{display:inline-block;background:#003366;color:#fff;padding:.3em .8em;border-radius:.3em}\
.aiuto{color:#3d3d3d;margin:0;font-size:.9em}.esito{color:#1e4620;background:#dff0d8;padding:.5em;border:1px solid #1e4620}\
.spazio h2{font-size:1em}.quota{margin:.3em 0 0;font-size:.9em}meter{width:100%}\
.nascosto{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}\
form.riga{display:flex;flex-wrap:wrap;gap:.5em;align-items:center;margin:.5em 0}\
main.console{display:block}";

/// What tells the gestore's web applications apart in the common layout.
pub struct Site {
    /// The name in the header bar.
    pub label: &'static str,
    /// What every page title ends with.
    pub title: &'static str,
    /// Where the logout form posts.
    pub logout: &'static str,
}

/// The webmail.
pub const WEBMAIL: Site = Site {
    label: "Posta certificata",
    title: "Webmail PEC",
    logout: "/webmail/esci",
};

/// A whole webmail page ([`page_of`] [`WEBMAIL`]).
pub fn page(title: &str, user: Option<(&str, &str)>, body: &str) -> String {
    page_of(&WEBMAIL, title, user, body)
}

/// A whole page of `site`: `title`, the user's bar when `user` is known (who, logout
/// form with its CSRF token), then `body`, all in Italian.
pub fn page_of(site: &Site, title: &str, user: Option<(&str, &str)>, body: &str) -> String {
    let bar = match user {
        Some((who, csrf)) => format!(
            "<header><span>{} &mdash; <strong>{}</strong></span>\
             <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" \
             value=\"{}\"><button type=\"submit\">Esci</button></form></header>",
            esc(site.label),
            esc(who),
            esc(site.logout),
            esc(csrf)
        ),
        None => format!("<header><span>{}</span></header>", esc(site.label)),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"it\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} &mdash; {}</title><style>{STYLE}</style></head><body>{bar}{body}</body></html>\n",
        esc(title),
        esc(site.title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{0}b\u{1b}"), "a\u{FFFD}b\u{FFFD}");
        assert_eq!(esc("riga\r\nriga"), "riga\nriga");
        assert_eq!(url_segment("a b/é\"?"), "a%20b%2F%C3%A9%22%3F");
        let p = page("<b>", Some(("x\"@y", "t<")), "");
        assert!(
            p.contains("&lt;b&gt;") && p.contains("x&quot;@y") && p.contains("value=\"t&lt;\"")
        );
        assert!(!p.contains("<b>"));
    }
}
