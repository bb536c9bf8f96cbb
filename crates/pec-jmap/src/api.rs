//! The API endpoint's work once the user is known: a request checked against the
//! capabilities and limits (request-level problems), then each method call, with its
//! result references resolved, dispatched to the module that serves it.

use pec_store::Store;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::pec::SignerTrust;
use crate::protocol::{Arguments, Invocation, Problem, Request, Response, resolve_references};
use crate::session::{self, CAPABILITIES, Limits};
use crate::{
    args, changes, email, identity, import, mailbox, mailbox_set, query, set, snippet, submission,
    thread,
};

/// What one method call runs with: the store, the user and the request's options.
pub struct Ctx<'a> {
    /// Where the mail is.
    pub store: &'a dyn Store,
    /// The authenticated user's address.
    pub address: &'a str,
    /// Their account id.
    pub account_id: String,
    /// The API's bounds.
    pub limits: &'a Limits,
    /// Judges signers for the `pec` property.
    pub trust: &'a dyn SignerTrust,
    /// Told `(address, folder)` of each change made (see [`crate::http::Jmap::changed`]).
    pub changed: &'a (dyn Fn(&str, &str) + Send + Sync),
    /// The uploads Email/import reads.
    pub uploads: &'a crate::upload::Uploads,
    /// The gestore's access point EmailSubmission/set sends through (`None`: no sending).
    pub access: Option<&'a dyn crate::submission::AccessPoint>,
    /// The client's address, for the trace of what it submits.
    pub peer: std::net::IpAddr,
    /// Whether the request uses the PEC capability (`pec`, `pecKind`, `pecRefersTo`).
    pub using_pec: bool,
}

/// Parses and checks a request body: not JSON, not a request, a capability we do not
/// have or too many calls are request-level problems.
pub fn parse_request(body: &[u8], limits: &Limits) -> std::result::Result<Request, Problem> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::new("notJSON", format!("the body is not JSON: {e}")))?;
    let request: Request = serde_json::from_value(value)
        .map_err(|e| Problem::new("notRequest", format!("not a JMAP request: {e}")))?;
    if let Some(unknown) = request
        .using
        .iter()
        .find(|c| !CAPABILITIES.contains(&c.as_str()))
    {
        return Err(Problem::new(
            "unknownCapability",
            format!("unknown capability {unknown}"),
        ));
    }
    if request.method_calls.len() > limits.max_calls_in_request {
        return Err(Problem::limit(
            "maxCallsInRequest",
            format!("at most {} method calls", limits.max_calls_in_request),
        ));
    }
    Ok(request)
}

/// The capability a method belongs to, `None` if we do not serve it.
fn capability(method: &str) -> Option<&'static str> {
    match method {
        "Core/echo" => Some(session::CORE),
        "Mailbox/get"
        | "Mailbox/changes"
        | "Mailbox/query"
        | "Mailbox/queryChanges"
        | "Mailbox/set"
        | "Email/get"
        | "Email/query"
        | "Email/changes"
        | "Email/set"
        | "Email/import"
        | "Email/queryChanges"
        | "SearchSnippet/get"
        | "Thread/get"
        | "Thread/changes" => Some(session::MAIL),
        "Identity/get" | "EmailSubmission/set" => Some(session::SUBMISSION),
        _ => None,
    }
}

/// Runs one method call.
fn call(ctx: &Ctx<'_>, using: &[String], name: &str, arguments: &Arguments) -> Result<Arguments> {
    let unknown = || Error::UnknownMethod(name.to_string());
    let needed = capability(name).ok_or_else(unknown)?;
    if !using.iter().any(|u| u == needed) {
        return Err(unknown());
    }
    if name == "Core/echo" {
        return Ok(arguments.clone());
    }
    args::account(arguments, &ctx.account_id)?;
    match name {
        "Mailbox/get" => mailbox::get(ctx, arguments),
        "Mailbox/changes" => mailbox::changes(ctx, arguments),
        "Mailbox/query" => mailbox::query(ctx, arguments),
        "Mailbox/queryChanges" => mailbox::query_changes(ctx, arguments),
        "Mailbox/set" => mailbox_set::set(ctx, arguments),
        "Email/get" => email::get(ctx, arguments),
        "Email/query" => query::query(ctx, arguments),
        "Email/changes" => changes::email_changes(ctx, arguments),
        "Email/set" => set::set(ctx, arguments),
        "Email/import" => import::import(ctx, arguments),
        "SearchSnippet/get" => snippet::get(ctx, arguments),
        "Email/queryChanges" => query::query_changes(ctx, arguments),
        "Thread/get" => thread::get(ctx, arguments),
        "Thread/changes" => thread::changes(ctx, arguments),
        "Identity/get" => identity::get(ctx, arguments),
        "EmailSubmission/set" => submission::set(ctx, arguments),
        _ => Err(unknown()),
    }
}

/// The `["error", {type, description}, callId]` of a failed call.
fn error_invocation(e: &Error, call_id: String) -> Invocation {
    let mut error = Map::new();
    error.insert("type".into(), e.kind().into());
    error.insert("description".into(), e.to_string().into());
    Invocation("error".into(), error, call_id)
}

/// Runs the calls of `request` in order for the user of `ctx` (synchronous: the store
/// is called directly, so run it where blocking is allowed).
pub fn process(ctx: &Ctx<'_>, request: Request) -> Response {
    let mut responses: Vec<Invocation> = Vec::with_capacity(request.method_calls.len());
    // Creation ids known so far: the client's and those of this request's creations.
    let mut created_ids = request.created_ids.clone().unwrap_or_default();
    for Invocation(name, mut arguments, call_id) in request.method_calls {
        submission::resolve_creation_ids(&name, &mut arguments, &created_ids);
        let result = resolve_references(&mut arguments, &responses)
            .and_then(|()| call(ctx, &request.using, &name, &arguments));
        if let Ok(r) = &result {
            submission::record_creation_ids(&name, r, &mut created_ids);
        }
        let implicit = match &result {
            Ok(r) if name == "EmailSubmission/set" => submission::on_success(&arguments, r),
            _ => None,
        };
        let invocation = match result {
            Ok(r) => Invocation(name, r, call_id),
            Err(e) => {
                if let Error::Store(inner) = &e {
                    tracing::warn!(method = %name, "JMAP call failed in the store: {inner}");
                }
                error_invocation(&e, call_id)
            }
        };
        responses.push(invocation);
        if let Some(set_args) = implicit {
            let id = responses.last().map(|i| i.2.clone()).unwrap_or_default();
            responses.push(match set::set(ctx, &set_args) {
                Ok(r) => Invocation("Email/set".into(), r, id),
                Err(e) => error_invocation(&e, id),
            });
        }
    }
    Response {
        method_responses: responses,
        created_ids: request.created_ids.map(|_| created_ids),
        session_state: session::SESSION_STATE.into(),
    }
}
