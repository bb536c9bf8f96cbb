//! The compose form's POST (`/webmail/invia`): the form read within bounds and its CSRF
//! token checked, the message built, then judged by the gestore's access point — the
//! SMTP submission handler, given the browser's address so that the legal log says
//! where the message came from. Accepted: a copy is kept in "Posta inviata" and the user
//! is sent there; refused: the form again, with the reason in Italian.

use std::net::IpAddr;

use hyper::body::Body;
use hyper::{Request, StatusCode};
use pec_jmap::Verdict;
use pec_jmap::ids::account_id;
use serde_json::json;
use tracing::{info, warn};

use crate::compose::{self, Draft};
use crate::error::{Error, Result};
use crate::form_data;
use crate::html::url_segment;
use crate::pages::{self, User};
use crate::routes::{Webmail, failure, forged, result};
use crate::sessions::{self, Session, same_token};
use crate::web::{Reply, html, redirect};

/// The HTTP status of a refusal.
fn status(verdict: &Verdict) -> StatusCode {
    match verdict {
        Verdict::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Verdict::Temporary(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl Webmail {
    /// The compose form's POST from `peer` in `session`.
    pub(crate) async fn send<B>(&self, req: Request<B>, session: &Session, peer: IpAddr) -> Reply
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // A form that cannot be read is refused for what it is (nothing of it is acted
        // on); one that can is acted on only with the session's token.
        let form = form_data::read(req, self.max_message).await;
        if let Ok(f) = &form
            && !same_token(f.get("csrf"), &session.csrf)
        {
            return forged(peer);
        }
        let quota = self.quota(&session.address).await;
        let user = User {
            address: &session.address,
            csrf: &session.csrf,
            quota: quota.as_ref(),
        };
        let form = match form {
            Ok(f) => f,
            Err(e) => return failure(Some(user), &e),
        };
        let draft = Draft::from_form(form);
        let (to, cc) = match draft.recipients() {
            Ok(r) => r,
            Err(why) => {
                return self
                    .again(user, &draft, &why, StatusCode::BAD_REQUEST)
                    .await;
            }
        };
        let Some(access) = self.jmap.access.clone() else {
            let why = "Questo servizio non invia messaggi.";
            return self
                .again(user, &draft, why, StatusCode::SERVICE_UNAVAILABLE)
                .await;
        };
        let Some(message_id) = sessions::token() else {
            return failure(Some(user), &Error::Unavailable);
        };
        let domain = session.address.rsplit('@').next().unwrap_or("localhost");
        let raw = draft.build(
            &session.address,
            &to,
            &cc,
            &format!("{}@{domain}", &message_id[..32]),
        );
        let rcpt: Vec<String> = to.iter().chain(&cc).cloned().collect();
        let verdict = access
            .submit(peer, &session.address, &session.address, &rcpt, raw.clone())
            .await;
        if let Some(why) = compose::refusal(&verdict) {
            info!(address = %session.address, %peer, "webmail: message not accepted: {why}");
            return self.again(user, &draft, &why, status(&verdict)).await;
        }
        match self.keep_sent(&session.address, raw).await {
            Ok(sent) => redirect(&format!(
                "/webmail/cartella/{}?esito=inviato",
                url_segment(&sent)
            )),
            Err(e) => {
                warn!(address = %session.address, "webmail: sent, but no copy kept: {e}");
                redirect("/webmail/?esito=senza-copia")
            }
        }
    }

    /// The compose form again, holding `draft`, with why it was not sent.
    async fn again(&self, user: User<'_>, draft: &Draft, why: &str, status: StatusCode) -> Reply {
        match self.mailboxes(user.address).await {
            Ok(mailboxes) => html(status, pages::compose(user, &mailboxes, draft, Some(why))),
            Err(e) => failure(Some(user), &e),
        }
    }

    /// Keeps the message sent in "Posta inviata", read (Email/import of an upload, as a
    /// JMAP client would): the id of that folder.
    async fn keep_sent(&self, address: &str, raw: Vec<u8>) -> Result<String> {
        let mailboxes = self.mailboxes(address).await?;
        let sent = mailboxes
            .iter()
            .find(|m| m["role"] == "sent")
            .and_then(|m| m["id"].as_str())
            .ok_or(Error::NotFound)?
            .to_string();
        let hash = self
            .jmap
            .uploads
            .put(address, raw)
            .map_err(|_| Error::Unavailable)?;
        let r = self
            .call(
                address,
                json!([["Email/import", {"accountId": account_id(address), "emails": {"copia": {
                    "blobId": format!("b{hash}"),
                    "mailboxIds": {sent.as_str(): true},
                    "keywords": {"$seen": true}}}}, "i"]]),
            )
            .await?;
        let imported = result(&r[0])?;
        if imported["created"]["copia"].is_null() {
            let why = &imported["notCreated"]["copia"];
            return Err(Error::Method(
                why["type"].as_str().unwrap_or("notCreated").to_string(),
                why["description"].as_str().unwrap_or("").to_string(),
            ));
        }
        Ok(sent)
    }
}
