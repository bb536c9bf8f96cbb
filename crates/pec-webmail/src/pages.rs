//! The pages, as HTML strings made from the JMAP objects pec-jmap returns (Mailbox and
//! Email as JSON, with the `pec` property). Every outside value is escaped with
//! [`esc`]; ids and names in links with [`url_segment`].

use serde_json::Value;

use crate::html::{esc, page, url_segment};
use crate::labels;
use crate::original::Original;
use crate::receipts::State;

/// The user of a page: their address and the session's CSRF token.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    /// The mailbox address.
    pub address: &'a str,
    /// The token the page's forms carry.
    pub csrf: &'a str,
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

/// The folder list with unread counts (the security archive included).
fn nav(mailboxes: &[Value], current: Option<&str>) -> String {
    let mut out = String::from("<nav aria-label=\"Cartelle\"><h2>Cartelle</h2><ul>");
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
        "<main>{}<div class=\"contenuto\">{}{content}</div></main>",
        nav(mailboxes, current),
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

/// One folder's messages, newest first, a page of them from `position` of `total`.
pub fn folder(
    user: User<'_>,
    mailboxes: &[Value],
    mailbox: &Value,
    emails: &[Value],
    position: usize,
    total: usize,
    page_size: usize,
) -> String {
    let id = mailbox["id"].as_str().unwrap_or("");
    let name = folder_name(mailbox);
    let mut c = format!("<h1>{}</h1>", esc(&name));
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
                "<li><a href=\"/webmail/allegato/{}/{}/{}\">{}</a> ({}, {} byte)</li>",
                url_segment(blob),
                a.part,
                url_segment(&a.name),
                esc(&a.name),
                esc(&a.media_type),
                a.size
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
    let text: String = email["textBody"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["partId"].as_str())
        .filter_map(|id| email["bodyValues"][id]["value"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    c.push_str(&format!("<h2>Testo</h2><pre>{}</pre>", esc(&text)));
    let attachments = email["attachments"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if !attachments.is_empty() {
        c.push_str("<h2>Allegati</h2><ul>");
        for a in attachments {
            let name = a["name"].as_str().unwrap_or("allegato");
            let media_type = a["type"].as_str().unwrap_or("application/octet-stream");
            c.push_str(&format!(
                "<li><a href=\"{}\">{}</a> ({}, {} byte)</li>",
                download(a["blobId"].as_str().unwrap_or(""), name, media_type),
                esc(name),
                esc(media_type),
                a["size"].as_u64().unwrap_or(0)
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
