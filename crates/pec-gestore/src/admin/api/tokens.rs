//! `tokens` under the API: an administrator's own API tokens ([`crate::admin::tokens`]).
//! `GET` lists them (names and dates, never the tokens), `POST {"name"}` makes one and
//! answers the token once, `DELETE tokens/{name}` revokes one. Only with the
//! administrator's password: a request with a token is refused (403 `token-not-allowed`),
//! so a leaked token cannot make itself a successor.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;

use super::{AdminApi, Answer, failure, json, no_content, problem};
use crate::admin::{Actor, Administration};
use crate::service::blocking;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
}

/// The answer to a request on `tokens/<rest>`.
pub(super) async fn answer(
    a: &Administration,
    actor: &Actor,
    bearer: bool,
    method: Method,
    rest: &[&str],
    req: Request<Incoming>,
) -> Answer {
    if bearer {
        return problem(
            StatusCode::FORBIDDEN,
            "token-not-allowed",
            "i token si gestiscono con la password dell'amministratore, non con un token",
        );
    }
    match (method, rest) {
        (Method::GET, []) => match blocking(|| a.tokens(actor)) {
            Ok(list) => json(
                StatusCode::OK,
                &serde_json::Value::Array(
                    list.iter()
                        .map(|t| serde_json::json!({"name": t.name, "created_at": t.created_at}))
                        .collect(),
                ),
            ),
            Err(e) => failure(&e),
        },
        (Method::POST, []) => {
            let new: NewToken = match AdminApi::body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match blocking(|| a.create_token(actor, &new.name)) {
                Ok(token) => json(
                    StatusCode::CREATED,
                    &serde_json::json!({"name": new.name.trim(), "token": token}),
                ),
                Err(e) => failure(&e),
            }
        }
        (Method::DELETE, [name]) => match blocking(|| a.revoke_token(actor, name)) {
            Ok(()) => no_content(),
            Err(e) => failure(&e),
        },
        _ => problem(
            StatusCode::NOT_FOUND,
            "not-found",
            "risorsa o metodo inesistente",
        ),
    }
}
