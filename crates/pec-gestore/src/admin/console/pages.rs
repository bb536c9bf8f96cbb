//! The console's HTML, in Italian: every outside value (addresses, names, messages) goes
//! through [`esc`], and every form carries the session's CSRF token.

use pec_store::{ApiToken, ArchiveOptions, ArchiveScope, Ente};
use pec_webmail::html::{Site, esc, page_of, url_segment};

use super::PREFIX;
use crate::admin::usage::{UsageReport, human_size};
use crate::admin::{Actor, MailboxView};

/// The console in the common layout.
const CONSOLE: Site = Site {
    label: "Amministrazione PEC",
    title: "Console PEC",
    logout: "/console/esci",
};

/// The administrator a page is for, and the session's CSRF token.
#[derive(Clone, Copy)]
pub struct Who<'a> {
    /// Who is logged in.
    pub actor: &'a Actor,
    /// The token every form carries.
    pub csrf: &'a str,
}

impl Who<'_> {
    /// The header bar's name: the login and what they administer.
    fn label(&self) -> String {
        match &self.actor.ente {
            Some(e) => format!("{} (ente {e})", self.actor.name),
            None => format!("{} (gestore)", self.actor.name),
        }
    }

    /// The hidden CSRF field of a form.
    fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            esc(self.csrf)
        )
    }
}

/// A page with the navigation.
fn page(who: Who<'_>, title: &str, body: &str) -> String {
    let label = who.label();
    let nav = format!(
        "<nav aria-label=\"Sezioni\"><ul style=\"display:flex;gap:1.5em\">\
         <li><a href=\"{PREFIX}\">Caselle</a></li>\
         <li><a href=\"{PREFIX}utilizzo\">Utilizzo</a></li>\
         <li><a href=\"{PREFIX}token\">Token API</a></li></ul></nav>"
    );
    page_of(
        &CONSOLE,
        title,
        Some((&label, who.csrf)),
        &format!("<main class=\"console\">{nav}{body}</main>"),
    )
}

/// The sentence an outcome code (`?esito=`) stands for.
fn outcome(code: Option<&str>) -> String {
    let text = match code {
        Some("creata") => "Casella creata.",
        Some("password") => "Password reimpostata.",
        Some("quota") => "Quota aggiornata.",
        Some("sospesa") => "Casella sospesa: gli accessi sono rifiutati, la posta è consegnata.",
        Some("riattivata") => "Casella riattivata.",
        Some("archivio") => "Opzioni dell'archivio di sicurezza aggiornate.",
        Some("revocato") => "Token revocato.",
        _ => return String::new(),
    };
    format!("<p class=\"esito\" role=\"status\">{text}</p>")
}

/// The login form.
pub fn login(csrf: &str, error: Option<&str>) -> String {
    let error = error.map_or_else(String::new, |e| {
        format!("<p class=\"errore\" role=\"alert\">{}</p>", esc(e))
    });
    let body = format!(
        "<main><form class=\"login\" method=\"post\" action=\"{PREFIX}accedi\">\
         <h1>Accesso alla console di amministrazione</h1>{error}\
         <label for=\"username\">Nome utente</label>\
         <input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">Accedi</button></form></main>",
        esc(csrf)
    );
    page_of(&CONSOLE, "Accesso", None, &body)
}

/// A message (a refusal, a missing page).
pub fn notice(who: Option<Who<'_>>, title: &str, text: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p class=\"errore\" role=\"alert\">{}</p><p><a href=\"{PREFIX}\">Torna alla console</a></p>",
        esc(title),
        esc(text)
    );
    match who {
        Some(who) => page(who, title, &body),
        None => page_of(&CONSOLE, title, None, &format!("<main>{body}</main>")),
    }
}

/// A mailbox's state as a badge.
fn state(m: &MailboxView) -> &'static str {
    if m.suspended {
        "<span class=\"badge ko\">sospesa</span>"
    } else {
        "<span class=\"badge ok\">attiva</span>"
    }
}

/// The overview: the enti (with the quota given out of their allotment), the mailboxes,
/// the form to create one.
pub fn overview(
    who: Who<'_>,
    enti: &[(&Ente, u64)],
    mailboxes: &[MailboxView],
    code: Option<&str>,
) -> String {
    let mut rows = String::new();
    for (e, assigned) in enti {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} di {}</td></tr>",
            esc(&e.name),
            esc(&e.domains.join(", ")),
            human_size(*assigned),
            human_size(e.allotment)
        ));
    }
    let enti_table = if enti.is_empty() {
        "<p>Nessun ente.</p>".to_string()
    } else {
        format!(
            "<table aria-label=\"Enti\"><thead><tr><th>Ente</th><th>Domini</th>\
             <th>Quota assegnata</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let mut rows = String::new();
    for m in mailboxes {
        rows.push_str(&format!(
            "<tr><td><a href=\"{PREFIX}caselle/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            url_segment(&m.address),
            esc(&m.address),
            human_size(m.used),
            human_size(m.quota),
            state(m)
        ));
    }
    let body = format!(
        "<h1>Caselle</h1>{}\
         <section class=\"pannello\" aria-labelledby=\"enti\"><h2 id=\"enti\">Enti</h2>{enti_table}</section>\
         <section class=\"pannello\" aria-labelledby=\"elenco\"><h2 id=\"elenco\">Caselle gestite</h2>\
         <table aria-label=\"Caselle\"><thead><tr><th>Casella</th><th>Occupato</th><th>Quota</th>\
         <th>Stato</th></tr></thead><tbody>{rows}</tbody></table></section>\
         <section class=\"pannello\" aria-labelledby=\"nuova\"><h2 id=\"nuova\">Nuova casella</h2>\
         <form class=\"riga\" method=\"post\" action=\"{PREFIX}caselle\">{}\
         <label for=\"address\">Indirizzo</label><input id=\"address\" name=\"address\" type=\"email\" required>\
         <label for=\"new-password\">Password iniziale</label>\
         <input id=\"new-password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"8\">\
         <label for=\"new-quota\">Quota (es. 2GiB; vuota: quella del dominio)</label>\
         <input id=\"new-quota\" name=\"quota\" type=\"text\">\
         <button type=\"submit\">Crea casella</button></form></section>",
        outcome(code),
        who.csrf_field()
    );
    page(who, "Caselle", &body)
}

/// A mailbox's page: its state and the forms of every action on it.
pub fn mailbox(
    who: Who<'_>,
    m: &MailboxView,
    archive: &ArchiveOptions,
    code: Option<&str>,
) -> String {
    let base = format!("{PREFIX}caselle/{}", url_segment(&m.address));
    let csrf = who.csrf_field();
    let (action, label) = if m.suspended {
        ("riattiva", "Riattiva casella")
    } else {
        ("sospendi", "Sospendi casella")
    };
    let checked = |on: bool| if on { " checked" } else { "" };
    let selected = |s: ArchiveScope| if archive.scope == s { " selected" } else { "" };
    let body = format!(
        "<h1>{address}</h1>{outcome}\
         <section class=\"pannello\" aria-labelledby=\"stato\"><h2 id=\"stato\">Stato</h2><dl>\
         <dt>Stato</dt><dd>{state}</dd><dt>Occupato</dt><dd>{used}</dd><dt>Quota</dt><dd>{quota}</dd></dl>\
         <form method=\"post\" action=\"{base}/{action}\">{csrf}<button type=\"submit\">{label}</button></form></section>\
         <section class=\"pannello\" aria-labelledby=\"pw\"><h2 id=\"pw\">Reimposta password</h2>\
         <form class=\"riga\" method=\"post\" action=\"{base}/password\">{csrf}\
         <label for=\"password\">Nuova password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"8\">\
         <button type=\"submit\">Reimposta password</button></form></section>\
         <section class=\"pannello\" aria-labelledby=\"q\"><h2 id=\"q\">Quota</h2>\
         <form class=\"riga\" method=\"post\" action=\"{base}/quota\">{csrf}\
         <label for=\"quota\">Nuova quota (es. 3GiB, 500MiB)</label>\
         <input id=\"quota\" name=\"quota\" type=\"text\" required placeholder=\"{quota}\">\
         <button type=\"submit\">Cambia quota</button></form></section>\
         <section class=\"pannello\" aria-labelledby=\"arch\"><h2 id=\"arch\">Archivio di sicurezza</h2>\
         <form class=\"riga\" method=\"post\" action=\"{base}/archivio\">{csrf}\
         <label for=\"scope\">Conserva</label><select id=\"scope\" name=\"scope\">\
         <option value=\"tutto\"{all}>tutti i messaggi</option><option value=\"pec\"{pec}>solo PEC</option></select>\
         <label><input type=\"checkbox\" name=\"sent\"{sent}> inviati</label>\
         <label><input type=\"checkbox\" name=\"received\"{received}> ricevuti</label>\
         <label for=\"archive-quota\">Quota dell'archivio (vuota: invariata)</label>\
         <input id=\"archive-quota\" name=\"quota\" type=\"text\" placeholder=\"{archive_quota}\">\
         <button type=\"submit\">Salva archivio</button></form></section>",
        address = esc(&m.address),
        outcome = outcome(code),
        state = state(m),
        used = human_size(m.used),
        quota = human_size(m.quota),
        all = selected(ArchiveScope::All),
        pec = selected(ArchiveScope::Pec),
        sent = checked(archive.sent),
        received = checked(archive.received),
        archive_quota = human_size(archive.quota),
    );
    page(who, &m.address, &body)
}

/// The usage page: the period form and, once asked, the report with its CSV link.
pub fn usage(who: Who<'_>, enti: &[Ente], report: Option<&UsageReport>, query: &str) -> String {
    let mut options = String::new();
    if who.actor.ente.is_none() {
        options.push_str("<option value=\"\">tutti gli enti</option>");
    }
    for e in enti {
        options.push_str(&format!("<option value=\"{0}\">{0}</option>", esc(&e.name)));
    }
    let mut out = format!(
        "<h1>Utilizzo</h1><form class=\"riga\" method=\"get\" action=\"{PREFIX}utilizzo\">\
         <label for=\"da\">Dal</label><input id=\"da\" name=\"da\" type=\"date\" required>\
         <label for=\"a\">al</label><input id=\"a\" name=\"a\" type=\"date\" required>\
         <label for=\"ente\">Ente</label><select id=\"ente\" name=\"ente\">{options}</select>\
         <button type=\"submit\">Mostra</button></form>"
    );
    if let Some(r) = report {
        let mut rows = String::new();
        for m in &r.mailboxes {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&m.ente),
                esc(&m.mailbox),
                m.mailbox_days,
                m.sent,
                m.received,
                human_size(m.storage_bytes)
            ));
        }
        for e in &r.enti {
            rows.push_str(&format!(
                "<tr><td><strong>{}</strong></td><td>totale ({} caselle)</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                esc(&e.ente),
                e.mailboxes,
                e.mailbox_days,
                e.sent,
                e.received,
                human_size(e.storage_bytes)
            ));
        }
        out.push_str(&format!(
            "<section class=\"pannello\" aria-labelledby=\"rep\"><h2 id=\"rep\">Dal {} al {}</h2>\
             <p><a href=\"{PREFIX}utilizzo.csv?{}\">Scarica CSV</a></p>\
             <table aria-label=\"Utilizzo\"><thead><tr><th>Ente</th><th>Casella</th><th>Giorni casella</th>\
             <th>Inviati</th><th>Ricevuti</th><th>Spazio</th></tr></thead><tbody>{rows}</tbody></table></section>",
            esc(&r.from),
            esc(&r.to),
            esc(query)
        ));
    }
    page(who, "Utilizzo", &out)
}

/// The API tokens page: the administrator's tokens, a new one shown once, the form.
pub fn tokens(
    who: Who<'_>,
    tokens: &[ApiToken],
    new: Option<(&str, &str)>,
    code: Option<&str>,
) -> String {
    let csrf = who.csrf_field();
    let shown = new.map_or_else(String::new, |(name, token)| {
        format!(
            "<section class=\"pannello\" aria-labelledby=\"nuovo\"><h2 id=\"nuovo\">Token {}</h2>\
             <p>Copiarlo ora: non sarà più mostrato. Si usa con l'intestazione \
             <code>Authorization: Bearer &lt;token&gt;</code>.</p><pre id=\"token\">{}</pre></section>",
            esc(name),
            esc(token)
        )
    });
    let mut rows = String::new();
    for t in tokens {
        let when = chrono::DateTime::from_timestamp(t.created_at, 0)
            .map(|d| {
                crate::clock::italian(d)
                    .format("%d/%m/%Y %H:%M")
                    .to_string()
            })
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{when}</td><td><form method=\"post\" action=\"{PREFIX}token/{}/revoca\">\
             {csrf}<button type=\"submit\">Revoca {}</button></form></td></tr>",
            esc(&t.name),
            url_segment(&t.name),
            esc(&t.name)
        ));
    }
    let body = format!(
        "<h1>Token API</h1>{}{shown}\
         <p>Un token permette a un'applicazione di usare l'API <code>/api/v1/</code> \
         con i permessi di questo amministratore.</p>\
         <table aria-label=\"Token\"><thead><tr><th>Nome</th><th>Creato</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <form class=\"riga\" method=\"post\" action=\"{PREFIX}token\">{csrf}\
         <label for=\"name\">Nome del nuovo token</label><input id=\"name\" name=\"name\" type=\"text\" required>\
         <button type=\"submit\">Crea token</button></form>",
        outcome(code)
    );
    page(who, "Token API", &body)
}
