//! The pages, as HTML strings made from the JMAP objects pec-jmap returns (Mailbox and
//! Email as JSON, with the `pec` property). Every outside value is escaped with
//! [`esc`]; ids and names in links with [`url_segment`].

use chrono::{DateTime, Utc};
use pec_store::Usage;
use serde_json::Value;

use crate::compose::Draft;
use crate::form_data::{FILES_FIELD, IN_REPLY_TO, MAX_FILES};
use crate::html::{esc, page, url_segment};
use crate::labels;
use crate::original::Original;
use crate::receipts::State;
use crate::signed::{Layer, Verification};

/// The user of a page: their address, the session's CSRF token, and the space they use.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    /// The mailbox address.
    pub address: &'a str,
    /// The token the page's forms carry.
    pub csrf: &'a str,
    /// The space used by the mailbox and its security archive (`None` when the store did
    /// not say: the bar is left out).
    pub quota: Option<&'a Quota>,
}

/// The space used, and the quota, of a mailbox and of its security archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The mailbox's folders.
    pub mailbox: Usage,
    /// The security archive.
    pub archive: Usage,
}

/// The login form (fields `username` and `password`), with the pre-session CSRF token
/// and, after a failed attempt, why.
pub fn login(csrf: &str, error: Option<&str>) -> String {
    let error = error.map_or_else(String::new, |e| {
        format!("<p class=\"errore\" role=\"alert\">{}</p>", esc(e))
    });
    let body = format!(
        "<main><form class=\"login\" method=\"post\" action=\"/webmail/accedi\">\
         <h1>Accesso alla casella PEC</h1>{error}\
         <label for=\"username\">Indirizzo PEC</label>\
         <input id=\"username\" name=\"username\" type=\"email\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">Accedi</button></form></main>",
        esc(csrf)
    );
    page("Accesso", None, &body)
}

/// A message for the user (an error, a missing page) inside the common layout.
pub fn notice(user: Option<User<'_>>, title: &str, text: &str) -> String {
    let body = format!(
        "<main><div><h1>{}</h1><p>{}</p><p><a href=\"/webmail/\">Torna alla posta</a></p></div></main>",
        esc(title),
        esc(text)
    );
    page(title, user.map(|u| (u.address, u.csrf)), &body)
}

/// The name a folder is shown with.
fn folder_name(mailbox: &Value) -> String {
    match (mailbox["role"].as_str(), mailbox["name"].as_str()) {
        (Some("inbox"), _) => "Posta in arrivo".into(),
        (Some("sent"), _) => "Posta inviata".into(),
        (Some("drafts"), _) => "Bozze".into(),
        (Some("trash"), _) => "Cestino".into(),
        (Some("junk"), _) => "Posta indesiderata".into(),
        (_, Some(n)) => n.into(),
        _ => "?".into(),
    }
}

fn folder_link(id: &str) -> String {
    format!("/webmail/cartella/{}", url_segment(id))
}

/// Bytes for people: `512 byte`, `1,5 KiB`, `12,3 MiB`, `2,0 GiB` (decimal comma).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} byte");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit]).replace('.', ",")
}

/// One quota bar: its words (used, quota, percentage) and a `<meter>` labelled by them,
/// so the state is read, not only seen.
fn quota_bar(id: &str, label: &str, usage: Usage) -> String {
    let percent = (usage.used.saturating_mul(100))
        .checked_div(usage.quota)
        .unwrap_or(0);
    format!(
        "<p id=\"{id}\" class=\"quota\">{}: {} di {} ({percent}%)</p>\
         <meter aria-labelledby=\"{id}\" min=\"0\" max=\"{}\" low=\"{}\" high=\"{}\" \
         optimum=\"0\" value=\"{}\">{percent}%</meter>",
        esc(label),
        size(usage.used),
        size(usage.quota),
        usage.quota,
        usage.quota / 100 * 80,
        usage.quota / 100 * 90,
        usage.used.min(usage.quota)
    )
}

/// The space used by the mailbox and its security archive.
fn quota(q: &Quota) -> String {
    format!(
        "<section class=\"spazio\" aria-labelledby=\"spazio\"><h2 id=\"spazio\">Spazio occupato</h2>{}{}</section>",
        quota_bar("spazio-casella", "Casella", q.mailbox),
        quota_bar("spazio-archivio", "Archivio di sicurezza", q.archive)
    )
}

/// The folder list with unread counts (the security archive included).
fn nav(mailboxes: &[Value], current: Option<&str>) -> String {
    let mut out = String::from(
        "<nav aria-label=\"Cartelle\"><p><a class=\"scrivi\" href=\"/webmail/scrivi\">Scrivi un messaggio</a></p>\
         <h2>Cartelle</h2><ul>",
    );
    for m in mailboxes {
        let id = m["id"].as_str().unwrap_or("");
        let unread = m["unreadEmails"].as_u64().unwrap_or(0);
        let aria = if current == Some(id) {
            " aria-current=\"page\""
        } else {
            ""
        };
        let count = if unread > 0 {
            format!(" <span class=\"nonletti\">({unread} non letti)</span>")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<li><a href=\"{}\"{aria}>{}</a>{count}</li>",
            folder_link(id),
            esc(&folder_name(m))
        ));
    }
    out.push_str("</ul></nav>");
    out
}

fn shell(
    user: User<'_>,
    mailboxes: &[Value],
    current: Option<&str>,
    title: &str,
    content: &str,
) -> String {
    let body = format!(
        "<main><div class=\"lato\">{}{}</div><div class=\"contenuto\">{}{content}</div></main>",
        nav(mailboxes, current),
        user.quota.map(quota).unwrap_or_default(),
        search_form("")
    );
    page(title, Some((user.address, user.csrf)), &body)
}

/// The search box of every page, holding `query`.
fn search_form(query: &str) -> String {
    format!(
        "<form role=\"search\" method=\"get\" action=\"/webmail/cerca\">\
         <label for=\"q\">Cerca nei messaggi</label> <input id=\"q\" name=\"q\" type=\"search\" \
         maxlength=\"200\" value=\"{}\"> <button type=\"submit\">Cerca</button></form>",
        esc(query)
    )
}

/// The badge of a message's PEC kind; nothing for ordinary mail.
fn badge(pec: &Value) -> String {
    match pec["kind"].as_str() {
        Some(k) => format!(
            "<span class=\"{}\">{}</span>",
            labels::kind_class(k),
            esc(labels::kind(k))
        ),
        None => String::new(),
    }
}

fn sender(email: &Value) -> String {
    let from = &email["from"][0];
    match (from["name"].as_str(), from["email"].as_str()) {
        (Some(n), Some(e)) if !n.is_empty() => format!("{n} <{e}>"),
        (_, Some(e)) => e.to_string(),
        _ => String::new(),
    }
}

fn message_link(id: &str) -> String {
    format!("/webmail/messaggio/{}", url_segment(id))
}

fn subject(email: &Value) -> String {
    match email["subject"].as_str() {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => "(senza oggetto)".to_string(),
    }
}

/// The table of a list of messages: badge, sender, subject (a link), date.
fn table(emails: &[Value]) -> String {
    let mut c = String::new();
    if emails.is_empty() {
        c.push_str("<p>Nessun messaggio.</p>");
    } else {
        c.push_str(
            "<table><caption>Messaggi</caption><thead><tr><th scope=\"col\">Tipo</th>\
             <th scope=\"col\">Da</th><th scope=\"col\">Oggetto</th><th scope=\"col\">Data</th>\
             </tr></thead><tbody>",
        );
        for e in emails {
            let unread = e["keywords"].get("$seen").is_none();
            let class = if unread { " class=\"nonletto\"" } else { "" };
            c.push_str(&format!(
                "<tr{class}><td>{}</td><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td></tr>",
                badge(&e["pec"]),
                esc(&sender(e)),
                message_link(e["id"].as_str().unwrap_or("")),
                esc(&subject(e)),
                esc(e["receivedAt"].as_str().unwrap_or(""))
            ));
        }
        c.push_str("</tbody></table>");
    }
    c
}

/// The results of a search for `query` (at most a page), or why there are none.
pub fn search(
    user: User<'_>,
    mailboxes: &[Value],
    query: &str,
    emails: &[Value],
    note: Option<&str>,
) -> String {
    let mut c = format!("<h1>Ricerca: {}</h1>", esc(query));
    match note {
        Some(n) => c.push_str(&format!(
            "<p class=\"errore\" role=\"alert\">{}</p>",
            esc(n)
        )),
        None => c.push_str(&table(emails)),
    }
    shell(user, mailboxes, None, "Ricerca", &c)
}

/// A page of a folder: its messages from `position` of `total`, `size` a page.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// The messages shown, newest first.
    pub emails: &'a [Value],
    /// Where they start in the folder.
    pub position: usize,
    /// How many the folder holds.
    pub total: usize,
    /// How many a page holds.
    pub size: usize,
}

/// One folder's messages, newest first, a page of them; `notice` is the outcome of what
/// the user just did (a message sent).
pub fn folder(
    user: User<'_>,
    mailboxes: &[Value],
    mailbox: &Value,
    listing: Listing<'_>,
    notice: Option<&str>,
) -> String {
    let Listing {
        emails,
        position,
        total,
        size: page_size,
    } = listing;
    let id = mailbox["id"].as_str().unwrap_or("");
    let name = folder_name(mailbox);
    let mut c = format!("<h1>{}</h1>", esc(&name));
    if let Some(n) = notice {
        c.push_str(&format!(
            "<p class=\"esito\" role=\"status\">{}</p>",
            esc(n)
        ));
    }
    c.push_str(&table(emails));
    let link = folder_link(id);
    let mut pages = Vec::new();
    if position > 0 {
        let back = position.saturating_sub(page_size);
        pages.push(format!("<a href=\"{link}?da={back}\">Più recenti</a>"));
    }
    if position + emails.len() < total {
        let next = position + emails.len();
        pages.push(format!("<a href=\"{link}?da={next}\">Meno recenti</a>"));
    }
    c.push_str(&format!(
        "<p>{} messaggi. {}</p>",
        total,
        pages.join(" &middot; ")
    ));
    shell(user, mailboxes, Some(id), &name, &c)
}

/// Whether an attachment looks like a CAdES envelope (`.p7m`, or a PKCS #7 type).
fn is_p7m(name: &str, media_type: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".p7m")
        || matches!(
            media_type,
            "application/pkcs7-mime" | "application/x-pkcs7-mime"
        )
}

/// The query naming an attachment: its blob, its part inside `postacert.eml` if it is
/// the original's, and its name.
pub fn attachment_query(blob: &str, part: Option<u32>, name: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("blob", blob);
    if let Some(p) = part {
        q.append_pair("parte", &p.to_string());
    }
    q.append_pair("nome", name);
    q.finish()
}

/// The "Verifica firma" link of a `.p7m` attachment; nothing for other files.
fn verify_link(blob: &str, part: Option<u32>, name: &str, media_type: &str) -> String {
    if !is_p7m(name, media_type) {
        return String::new();
    }
    format!(
        " &mdash; <a href=\"/webmail/verifica?{}\">Verifica firma<span class=\"nascosto\"> di {}</span></a>",
        esc(&attachment_query(blob, part, name)),
        esc(name)
    )
}

/// A download link of a blob of the user's messages.
fn download(blob: &str, name: &str, media_type: &str) -> String {
    format!(
        "/webmail/scarica/{}/{}?type={}",
        url_segment(blob),
        url_segment(name),
        url_segment(media_type)
    )
}

fn row(label: &str, value: &str) -> String {
    format!("<dt>{}</dt><dd>{}</dd>", esc(label), esc(value))
}

/// The daticert panel, in Italian.
fn daticert(d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
    let mut c = String::from(
        "<section class=\"pannello\" aria-labelledby=\"dati\"><h2 id=\"dati\">Dati di certificazione</h2><dl>",
    );
    c.push_str(&row("Tipo", labels::kind(&s("tipo"))));
    c.push_str(&row("Mittente", &s("mittente")));
    let destinatari: Vec<String> = d["destinatari"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} ({})",
                r["indirizzo"].as_str().unwrap_or(""),
                labels::recipient_type(r["tipo"].as_str().unwrap_or(""))
            )
        })
        .collect();
    c.push_str(&row("Destinatari", &destinatari.join(", ")));
    c.push_str(&row("Oggetto", &s("oggetto")));
    let data = &d["data"];
    c.push_str(&row(
        "Data e ora",
        &format!(
            "{} {} (UTC{})",
            data["giorno"].as_str().unwrap_or(""),
            data["ora"].as_str().unwrap_or(""),
            data["zona"].as_str().unwrap_or("")
        ),
    ));
    c.push_str(&row("Identificativo", &s("identificativo")));
    if let Some(m) = d["msgid"].as_str() {
        c.push_str(&row("Message-ID originale", m));
    }
    c.push_str(&row("Gestore", &s("gestoreEmittente")));
    if let Some(r) = d["ricevuta"].as_str() {
        c.push_str(&row("Tipo di ricevuta", r));
    }
    if let Some(r) = d["consegna"].as_str() {
        c.push_str(&row("Consegnato a", r));
    }
    let errore = s("errore");
    if !errore.is_empty() && errore != "nessuno" {
        c.push_str(&row("Errore", &errore));
    }
    if let Some(e) = d["erroreEsteso"].as_str() {
        c.push_str(&row("Dettaglio dell'errore", e));
    }
    c.push_str("</dl></section>");
    c
}

/// The signature panel: the verdict and the signer.
fn signature(sig: &Value) -> String {
    let (verdict, good) = labels::signature(sig);
    let class = if good { "badge ok" } else { "badge ko" };
    let mut c = format!(
        "<section class=\"pannello\" aria-labelledby=\"firma\"><h2 id=\"firma\">Firma del gestore</h2>\
         <p><span class=\"{class}\">{}</span></p>",
        esc(verdict)
    );
    if !sig.is_null() {
        c.push_str("<dl>");
        let signer = &sig["signer"];
        c.push_str(&row("Firmatario", signer["subject"].as_str().unwrap_or("")));
        c.push_str(&row(
            "Indirizzo del firmatario",
            signer["email"].as_str().unwrap_or(""),
        ));
        c.push_str(&row(
            "Impronta SHA-1",
            signer["sha1"].as_str().unwrap_or(""),
        ));
        c.push_str(&row(
            "Data della firma",
            sig["signingTime"].as_str().unwrap_or(""),
        ));
        if let Some(p) = sig["problem"].as_str() {
            c.push_str(&row("Problema", p));
        }
        c.push_str("</dl>");
    }
    c.push_str("</section>");
    c
}

/// The original carried as `postacert.eml`: its header, text and attachments.
fn original(blob: &str, o: &Original) -> String {
    let mut c = String::from(
        "<section class=\"pannello\" aria-labelledby=\"orig\"><h2 id=\"orig\">Messaggio originale</h2><dl>",
    );
    c.push_str(&row("Da", &o.from));
    c.push_str(&row("A", &o.to.join(", ")));
    c.push_str(&row("Oggetto", &o.subject));
    c.push_str(&row("Data", &o.date));
    c.push_str("</dl>");
    c.push_str(&format!("<pre>{}</pre>", esc(&o.text)));
    if !o.attachments.is_empty() {
        c.push_str("<h3>Allegati del messaggio originale</h3><ul>");
        for a in &o.attachments {
            c.push_str(&format!(
                "<li><a href=\"/webmail/allegato/{}/{}/{}\">{}</a> ({}, {} byte){}</li>",
                url_segment(blob),
                a.part,
                url_segment(&a.name),
                esc(&a.name),
                esc(&a.media_type),
                a.size,
                verify_link(blob, Some(a.part), &a.name, &a.media_type)
            ));
        }
        c.push_str("</ul>");
    }
    c.push_str(&format!(
        "<p><a href=\"{}\">Scarica il messaggio originale (.eml)</a></p></section>",
        download(blob, "postacert.eml", "message/rfc822")
    ));
    c
}

/// The receipts of a sent message and each recipient's state.
fn receipts(emails: &[Value], states: &[(String, State)]) -> String {
    let mut c = String::from(
        "<section class=\"pannello\" aria-labelledby=\"ric\"><h2 id=\"ric\">Ricevute e stato della consegna</h2>\
         <table><caption>Stato per destinatario</caption><thead><tr><th scope=\"col\">Destinatario</th>\
         <th scope=\"col\">Stato</th></tr></thead><tbody>",
    );
    for (address, state) in states {
        let class = match state.good() {
            Some(true) => "badge ok",
            Some(false) => "badge ko",
            None => "badge",
        };
        c.push_str(&format!(
            "<tr><td>{}</td><td><span class=\"{class}\">{}</span></td></tr>",
            esc(address),
            esc(state.label())
        ));
    }
    c.push_str("</tbody></table><h3>Ricevute</h3><ul>");
    for e in emails {
        c.push_str(&format!(
            "<li>{} <a href=\"{}\">{}</a> &mdash; {}</li>",
            badge(&e["pec"]),
            message_link(e["id"].as_str().unwrap_or("")),
            esc(&subject(e)),
            esc(e["receivedAt"].as_str().unwrap_or(""))
        ));
    }
    c.push_str("</ul></section>");
    c
}

/// The text of an Email's `textBody` parts (their `bodyValues`), one after another.
pub fn body_text(email: &Value) -> String {
    email["textBody"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["partId"].as_str())
        .filter_map(|id| email["bodyValues"][id]["value"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a message page shows besides the message itself.
#[derive(Debug, Default)]
pub struct Extras<'a> {
    /// The original the message carries: the blob id of `postacert.eml` and its contents.
    pub original: Option<(&'a str, &'a Original)>,
    /// For a message the user sent: the receipts found and each recipient's state.
    pub receipts: Option<Receipts<'a>>,
}

/// A sent message's receipts (Email objects with `pec`) and each recipient's state.
#[derive(Debug, Clone, Copy)]
pub struct Receipts<'a> {
    /// The receipts found.
    pub emails: &'a [Value],
    /// Each recipient and where the message stands for them.
    pub states: &'a [(String, State)],
}

/// One message: its header, PEC panels, text and attachments, downloads.
pub fn message(user: User<'_>, mailboxes: &[Value], email: &Value, extras: &Extras<'_>) -> String {
    let title = subject(email);
    let pec = &email["pec"];
    let mut c = format!("<h1>{} {}</h1><dl>", badge(pec), esc(&title));
    c.push_str(&row("Da", &sender(email)));
    let to: Vec<&str> = email["to"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["email"].as_str())
        .collect();
    c.push_str(&row("A", &to.join(", ")));
    c.push_str(&row("Ricevuto", email["receivedAt"].as_str().unwrap_or("")));
    c.push_str("</dl>");
    if pec.is_null() || pec["kind"] == "posta-certificata" {
        let id = url_segment(email["id"].as_str().unwrap_or(""));
        c.push_str(&format!(
            "<p class=\"azioni\"><a href=\"/webmail/scrivi?rispondi={id}\">Rispondi</a> \
             <a href=\"/webmail/scrivi?rispondi={id}&amp;tutti=1\">Rispondi a tutti</a></p>"
        ));
    }
    if !pec.is_null() {
        if !pec["daticert"].is_null() {
            c.push_str(&daticert(&pec["daticert"]));
        }
        c.push_str(&signature(&pec["signature"]));
    }
    if let Some(r) = extras.receipts {
        c.push_str(&receipts(r.emails, r.states));
    }
    if let Some((blob, o)) = extras.original {
        c.push_str(&original(blob, o));
    }
    c.push_str(&format!(
        "<h2>Testo</h2><pre>{}</pre>",
        esc(&body_text(email))
    ));
    let attachments = email["attachments"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if !attachments.is_empty() {
        c.push_str("<h2>Allegati</h2><ul>");
        for a in attachments {
            let name = a["name"].as_str().unwrap_or("allegato");
            let media_type = a["type"].as_str().unwrap_or("application/octet-stream");
            let blob = a["blobId"].as_str().unwrap_or("");
            c.push_str(&format!(
                "<li><a href=\"{}\">{}</a> ({}, {} byte){}</li>",
                download(blob, name, media_type),
                esc(name),
                esc(media_type),
                a["size"].as_u64().unwrap_or(0),
                verify_link(blob, None, name, media_type)
            ));
        }
        c.push_str("</ul>");
    }
    c.push_str(&format!(
        "<p><a href=\"{}\">Scarica il messaggio (.eml)</a></p>",
        download(
            email["blobId"].as_str().unwrap_or(""),
            "messaggio.eml",
            "message/rfc822"
        )
    ));
    let current = email["mailboxIds"]
        .as_object()
        .and_then(|m| m.keys().next())
        .map(String::as_str);
    shell(user, mailboxes, current, &title, &c)
}

/// One field of the compose form: its label, then the input.
fn field(id: &str, label: &str, input: &str) -> String {
    format!("<label for=\"{id}\">{}</label>{input}", esc(label))
}

/// The compose form (`A`, `Cc`, `Oggetto`, `Testo`, `Allegati`), holding what `draft`
/// says (not its files: a browser cannot be handed them back) and, after a refusal,
/// why.
pub fn compose(user: User<'_>, mailboxes: &[Value], draft: &Draft, error: Option<&str>) -> String {
    let mut c = String::from("<h1>Nuovo messaggio PEC</h1>");
    if let Some(e) = error {
        c.push_str(&format!(
            "<p class=\"errore\" role=\"alert\">{}</p>",
            esc(e)
        ));
        if !draft.files.is_empty() {
            c.push_str("<p>Gli allegati vanno scelti di nuovo.</p>");
        }
    }
    c.push_str(&format!(
        "<form class=\"scrivi\" method=\"post\" action=\"/webmail/invia\" enctype=\"multipart/form-data\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"{IN_REPLY_TO}\" value=\"{}\">{}{}{}{}{}\
         <p id=\"aiuto-destinatari\" class=\"aiuto\">Più indirizzi separati da virgole.</p>\
         <p><button type=\"submit\">Invia</button></p></form>",
        esc(user.csrf),
        esc(&draft.in_reply_to),
        field(
            "a",
            "A",
            &format!(
                "<input id=\"a\" name=\"a\" type=\"text\" required autocomplete=\"email\" \
                 aria-describedby=\"aiuto-destinatari\" maxlength=\"16000\" value=\"{}\">",
                esc(&draft.to)
            )
        ),
        field(
            "cc",
            "Cc",
            &format!(
                "<input id=\"cc\" name=\"cc\" type=\"text\" autocomplete=\"email\" \
                 aria-describedby=\"aiuto-destinatari\" maxlength=\"16000\" value=\"{}\">",
                esc(&draft.cc)
            )
        ),
        field(
            "oggetto",
            "Oggetto",
            &format!(
                "<input id=\"oggetto\" name=\"oggetto\" type=\"text\" maxlength=\"500\" value=\"{}\">",
                esc(&draft.subject)
            )
        ),
        field(
            "testo",
            "Testo",
            &format!(
                "<textarea id=\"testo\" name=\"testo\" rows=\"14\">{}</textarea>",
                esc(&draft.text)
            )
        ),
        field(
            FILES_FIELD,
            &format!("Allegati (al più {MAX_FILES} file)"),
            &format!("<input id=\"{FILES_FIELD}\" name=\"{FILES_FIELD}\" type=\"file\" multiple>")
        ),
    ));
    shell(user, mailboxes, None, "Nuovo messaggio", &c)
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "non indicata".to_string(),
        |t| t.format("%d/%m/%Y %H:%M:%S UTC").to_string(),
    )
}

fn yes_no(v: Option<bool>, yes: &str, no: &str, unknown: &str) -> String {
    match v {
        Some(true) => yes.to_string(),
        Some(false) => no.to_string(),
        None => unknown.to_string(),
    }
}

/// One signature of a `.p7m`: the verdict in words and a badge, then its facts.
fn layer(n: usize, l: &Layer) -> String {
    let (verdict, class) = if !l.intact {
        (
            "Firma non valida: il documento non corrisponde alla firma",
            "badge ko",
        )
    } else if l.valid_at_signing == Some(false) {
        (
            "Firma integra, ma il certificato non era valido quando è stata apposta",
            "badge ko",
        )
    } else {
        ("Firma integra", "badge ok")
    };
    let mut c = format!(
        "<section class=\"pannello\" aria-labelledby=\"firma-{n}\"><h2 id=\"firma-{n}\">Firma {n}</h2>\
         <p><span class=\"{class}\">{}</span></p><dl>",
        esc(verdict)
    );
    c.push_str(&row("Firmatario", &l.signer));
    if let Some(e) = &l.email {
        c.push_str(&row("Indirizzo del firmatario", e));
    }
    c.push_str(&row("Emesso da", &l.issuer));
    c.push_str(&row("Data della firma", &when(l.signing_time)));
    c.push_str(&row(
        "Validità del certificato",
        &format!("dal {} al {}", when(l.valid_from), when(l.valid_until)),
    ));
    c.push_str(&row(
        "Certificato valido alla data della firma",
        &yes_no(l.valid_at_signing, "sì", "no", "non verificabile"),
    ));
    c.push_str(&row(
        "Certificato valido oggi",
        if l.valid_now { "sì" } else { "no" },
    ));
    c.push_str(&row(
        "Certificatore",
        "non verificato rispetto agli elenchi dei certificatori qualificati",
    ));
    if let Some(p) = &l.problem {
        c.push_str(&row("Problema", p));
    }
    c.push_str("</dl></section>");
    c
}

/// "Verifica firma" of the `.p7m` named `name`: each signature and the document inside
/// (`query` names the attachment for the download); `None` for a file that is no
/// signed document.
pub fn verification(
    user: User<'_>,
    mailboxes: &[Value],
    name: &str,
    v: Option<&Verification>,
    query: &str,
) -> String {
    let mut c = format!("<h1>Verifica firma: {}</h1>", esc(name));
    match v {
        None => c.push_str(
            "<p class=\"errore\" role=\"alert\">Il file non è un documento firmato (CAdES, .p7m).</p>",
        ),
        Some(v) => {
            for (i, l) in v.layers.iter().enumerate() {
                c.push_str(&layer(i + 1, l));
            }
            c.push_str(&format!(
                "<section class=\"pannello\" aria-labelledby=\"documento\"><h2 id=\"documento\">Documento firmato</h2>\
                 <dl>{}</dl>",
                row("Formato", &v.document)
            ));
            if v.has_document {
                c.push_str(&format!(
                    "<p><a href=\"/webmail/documento?{}\">Scarica il documento ({})</a></p>",
                    esc(query),
                    esc(&v.document_name)
                ));
            }
            c.push_str("</section>");
        }
    }
    shell(user, mailboxes, None, "Verifica firma", &c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_daticert_panel_is_italian_and_escaped() {
        let email = json!({
            "id": "e1_2", "subject": "CONSEGNA: <i>x</i>", "blobId": "babc",
            "from": [{"name": null, "email": "posta-certificata@pec.beta.it"}],
            "pec": {"kind": "avvenuta-consegna", "signature": {"intact": true, "trusted": true,
                "signer": {"subject": "CN=<Beta>", "email": "pc@pec.beta.it", "sha1": "AB"},
                "signingTime": "2026-11-30T06:59:46Z", "problem": null},
                "daticert": {"tipo": "avvenuta-consegna", "errore": "nessuno",
                "mittente": "mario@pec.alfa.it", "oggetto": "<script>x</script>",
                "destinatari": [{"indirizzo": "anna@pec.beta.it", "tipo": "certificato"}],
                "gestoreEmittente": "Beta & C.", "identificativo": "opec1@pec.alfa.it",
                "data": {"giorno": "30/11/2026", "ora": "07:59:46", "zona": "+0100"},
                "consegna": "anna@pec.beta.it", "msgid": null, "ricevuta": "completa"}}
        });
        let user = User {
            address: "mario@pec.alfa.it",
            csrf: "t",
            quota: None,
        };
        let html = message(user, &[], &email, &Extras::default());
        for fact in [
            "<dt>Mittente</dt><dd>mario@pec.alfa.it</dd>",
            "<dt>Destinatari</dt><dd>anna@pec.beta.it (certificato (PEC))</dd>",
            "<dt>Data e ora</dt><dd>30/11/2026 07:59:46 (UTC+0100)</dd>",
            "<dt>Identificativo</dt><dd>opec1@pec.alfa.it</dd>",
            "<dt>Gestore</dt><dd>Beta &amp; C.</dd>",
            "<dt>Oggetto</dt><dd>&lt;script&gt;x&lt;/script&gt;</dd>",
            "Firma valida di un gestore PEC accreditato",
            "<dt>Firmatario</dt><dd>CN=&lt;Beta&gt;</dd>",
            "<span class=\"badge ok\">Avvenuta consegna</span>",
        ] {
            assert!(html.contains(fact), "{fact}: {html}");
        }
        assert!(!html.contains("<i>") && !html.contains("<script>"));
        let states = [("anna@pec.beta.it".to_string(), State::NotDelivered)];
        let receipts =
            [json!({"id": "e1_3", "subject": "<b>", "pec": {"kind": "errore-consegna"}})];
        let extras = Extras {
            original: None,
            receipts: Some(Receipts {
                emails: &receipts,
                states: &states,
            }),
        };
        let html = message(user, &[], &email, &extras);
        assert!(
            html.contains(
                "<td>anna@pec.beta.it</td><td><span class=\"badge ko\">mancata consegna</span>"
            ),
            "{html}"
        );
        assert!(
            html.contains("href=\"/webmail/messaggio/e1_3\">&lt;b&gt;</a>"),
            "{html}"
        );
    }
}
