//! The session resource (RFC 8620 §2) at `/.well-known/jmap`: who the user is, the
//! capabilities and limits of the server, the one account and where the API lives.

use serde_json::{Value, json};

use crate::ids;

/// RFC 8620's core capability.
pub const CORE: &str = "urn:ietf:params:jmap:core";
/// RFC 8621's mail capability (Mailbox, Email, Thread).
pub const MAIL: &str = "urn:ietf:params:jmap:mail";
/// RFC 8621's submission capability (Identity; EmailSubmission is not served yet).
pub const SUBMISSION: &str = "urn:ietf:params:jmap:submission";
/// Ours: the `pec` property of Email and the `pecKind` / `pecRefersTo` filter conditions
/// of Email/query (docs/JMAP.md).
pub const PEC: &str = "urn:pecd:params:jmap:pec";

/// Every capability the server knows; a request `using` another is refused.
pub const CAPABILITIES: [&str; 4] = [CORE, MAIL, SUBMISSION, PEC];

/// The bounds of the API, announced in the core capability and enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_size_request: usize,
    /// Most method calls in one request.
    pub max_calls_in_request: usize,
    /// Most ids one `*/get` may name (and the default `limit` of a query).
    pub max_objects_in_get: usize,
    /// Most objects one `*/set` may change.
    pub max_objects_in_set: usize,
    /// Most requests of one user at once (announced; the listener's per-client
    /// connection limit is what bounds them).
    pub max_concurrent_requests: usize,
    /// Most messages a query reads the content of (text, header and PEC conditions);
    /// a query that would read more is refused with `unsupportedFilter`.
    pub max_scanned: usize,
    /// Largest body value returned by Email/get whatever `maxBodyValueBytes` asks.
    pub max_body_value: usize,
    /// Most folders an account may have (IMAP's `max_folders` by default).
    pub max_mailboxes: usize,
    /// Largest upload, in bytes (announced as `maxSizeUpload`).
    pub max_size_upload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size_request: 4 * 1024 * 1024,
            max_calls_in_request: 32,
            max_objects_in_get: 256,
            max_objects_in_set: 256,
            max_concurrent_requests: 4,
            max_scanned: 20_000,
            max_body_value: 1024 * 1024,
            max_mailboxes: 1000,
            max_size_upload: 25 * 1024 * 1024,
        }
    }
}

/// The session object for `address`, whose API is under `base` (`https://host:port`).
pub fn session(address: &str, base: &str, limits: &Limits) -> Value {
    let account = ids::account_id(address);
    json!({
        "capabilities": {
            CORE: {
                "maxSizeUpload": limits.max_size_upload,
                "maxConcurrentUpload": 1,
                "maxSizeRequest": limits.max_size_request,
                "maxConcurrentRequests": limits.max_concurrent_requests,
                "maxCallsInRequest": limits.max_calls_in_request,
                "maxObjectsInGet": limits.max_objects_in_get,
                "maxObjectsInSet": limits.max_objects_in_set,
                "collationAlgorithms": ["i;ascii-casemap"],
            },
            MAIL: {},
            SUBMISSION: {},
            PEC: {},
        },
        "accounts": {
            account.clone(): {
                "name": address,
                "isPersonal": true,
                "isReadOnly": false,
                "accountCapabilities": {
                    MAIL: {
                        "maxMailboxesPerEmail": 1,
                        "maxMailboxDepth": 1,
                        "maxSizeMailboxName": crate::mailbox_set::MAX_NAME,
                        "maxSizeAttachmentsPerEmail": limits.max_size_upload,
                        "emailQuerySortOptions": ["receivedAt"],
                        "mayCreateTopLevelMailbox": true,
                    },
                    SUBMISSION: {
                        "maxDelayedSend": 0,
                        "submissionExtensions": {},
                    },
                    PEC: {
                        "kinds": pec_kinds(),
                        "filterConditions": ["pecKind", "pecRefersTo"],
                    },
                },
            },
        },
        "primaryAccounts": {
            CORE: account.clone(),
            MAIL: account.clone(),
            SUBMISSION: account.clone(),
            PEC: account,
        },
        "username": address,
        "apiUrl": format!("{base}{}", crate::http::API_PATH),
        "downloadUrl": format!(
            "{base}{}{{accountId}}/{{blobId}}/{{name}}?type={{type}}",
            crate::http::DOWNLOAD_PREFIX
        ),
        "uploadUrl": format!("{base}{}{{accountId}}/", crate::http::UPLOAD_PREFIX),
        "eventSourceUrl": format!(
            "{base}{}?types={{types}}&closeafter={{closeafter}}&ping={{ping}}",
            crate::http::EVENT_SOURCE_PATH
        ),
        "state": SESSION_STATE,
    })
}

/// The session's state: it changes only when this server's capabilities do.
pub const SESSION_STATE: &str = "pecd-1";

/// The values the `pec` property's `kind` takes.
fn pec_kinds() -> Vec<&'static str> {
    use pec_proto::classify::Kind;
    [
        Kind::PostaCertificata,
        Kind::Anomalia,
        Kind::Accettazione,
        Kind::NonAccettazione,
        Kind::PresaInCarico,
        Kind::AvvenutaConsegna,
        Kind::ErroreConsegna,
        Kind::PreavvisoErroreConsegna,
        Kind::RilevazioneVirus,
    ]
    .into_iter()
    .map(Kind::as_str)
    .collect()
}
