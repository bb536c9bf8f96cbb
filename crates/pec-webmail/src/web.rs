//! The web stack of the gestore's pages, shared by the webmail and the administration
//! console (pec-gestore `admin::console`): answers with the security headers (no
//! caching, a content security policy, no sniffing, no referrer), `Secure; HttpOnly;
//! SameSite=Strict` cookies scoped to one application's path, bounded form reading, and
//! the login form's double-submit CSRF token.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes};
use hyper::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION,
    REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{HeaderMap, Request, Response, StatusCode};
use tracing::debug;

use crate::sessions;

/// Largest form body read.
pub const MAX_FORM: usize = 16 * 1024;
/// Most fields read from a form.
const MAX_FIELDS: usize = 16;
/// Most cookies read from a request.
const MAX_COOKIES: usize = 32;

/// Policy of every page: no script at all, styles inline, forms to ourselves only.
pub const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
                               form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Policy of downloads: whatever they are, they run nothing here.
pub const DOWNLOAD_POLICY: &str = "default-src 'none'; sandbox";

/// An answer.
pub type Reply = Response<Full<Bytes>>;

/// An answer with the security headers and `policy`.
pub fn reply(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
    policy: &str,
) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    for (name, value) in [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, "no-store"),
        (CONTENT_SECURITY_POLICY, policy),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ] {
        if let Ok(v) = value.parse() {
            h.insert(name, v);
        }
    }
    r
}

/// An HTML page.
pub fn html(status: StatusCode, body: String) -> Reply {
    reply(status, "text/html; charset=utf-8", body, PAGE_POLICY)
}

/// A `303 See Other` to `to`.
pub fn redirect(to: &str) -> Reply {
    let mut r = reply(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        "",
        PAGE_POLICY,
    );
    if let Ok(v) = to.parse() {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// A file for download: always `attachment`, never run here.
pub fn attachment(bytes: impl Into<Bytes>, name: &str, content_type: &str) -> Reply {
    let mut r = reply(StatusCode::OK, content_type, bytes, DOWNLOAD_POLICY);
    let name = pec_jmap::blob::safe_name(name);
    let name = if name.is_empty() {
        "allegato".to_string()
    } else {
        name
    };
    if let Ok(v) = format!("attachment; filename=\"{name}\"").parse() {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    r
}

/// A `Set-Cookie` value for the application at `path`, `value` empty to delete it.
pub fn cookie(name: &str, value: &str, path: &str) -> String {
    let age = if value.is_empty() { "; Max-Age=0" } else { "" };
    format!("{name}={value}; Secure; HttpOnly; SameSite=Strict; Path={path}{age}")
}

/// Adds a [`cookie`] to `r`.
pub fn set_cookie(r: &mut Reply, name: &str, value: &str, path: &str) {
    if let Ok(v) = cookie(name, value, path).parse() {
        r.headers_mut().append(SET_COOKIE, v);
    }
}

/// The value of cookie `name` in the request.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .take(MAX_COOKIES)
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `%XX` sequences of a path segment decoded (invalid ones kept as they are).
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A form's fields.
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The value of field `name` (empty if absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether checkbox `name` is ticked.
    pub fn ticked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// The form a request carries (at most [`MAX_FORM`] bytes); `None` if too large or
/// broken off.
pub async fn read_form<B>(req: Request<B>) -> Option<Form>
where
    B: Body + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(req.into_body(), MAX_FORM).collect().await {
        Ok(b) => Some(Form(
            form_urlencoded::parse(&b.to_bytes())
                .take(MAX_FIELDS)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )),
        Err(e) => {
            debug!("form not read: {e}");
            None
        }
    }
}

/// A login page made by `render` with a fresh double-submit token, also set in cookie
/// `name` for `path` (a login POST must carry both, equal); `None` if no random token
/// could be made.
pub fn login_page(
    status: StatusCode,
    name: &str,
    path: &str,
    render: impl FnOnce(&str) -> String,
) -> Option<Reply> {
    let token = sessions::token()?;
    let mut r = html(status, render(&token));
    set_cookie(&mut r, name, &token, path);
    Some(r)
}

/// Whether a login form carries the double-submit token of cookie `name`.
pub fn login_token_matches(headers: &HeaderMap, name: &str, form: &Form) -> bool {
    cookie_value(headers, name).is_some_and(|p| sessions::same_token(&p, form.get("csrf")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_forms() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "a=1; pecwm=abc; pecwm_login=def".parse().unwrap());
        assert_eq!(cookie_value(&h, "pecwm").as_deref(), Some("abc"));
        assert_eq!(cookie_value(&h, "pecwm_login").as_deref(), Some("def"));
        assert_eq!(cookie_value(&h, "b"), None);
        assert_eq!(
            cookie("pecwm", "x", "/webmail/"),
            "pecwm=x; Secure; HttpOnly; SameSite=Strict; Path=/webmail/"
        );
        assert!(cookie("pecwm", "", "/console/").ends_with("Path=/console/; Max-Age=0"));
        assert_eq!(percent_decode("a%20b%2Fc%zz%"), "a b/c%zz%");
        let form = Form(vec![
            ("csrf".into(), "def".into()),
            ("on".into(), "".into()),
        ]);
        assert!(login_token_matches(&h, "pecwm_login", &form));
        assert!(!login_token_matches(&h, "pecwm", &form));
        assert!(form.ticked("on") && !form.ticked("off"));
    }
}
