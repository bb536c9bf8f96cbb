//! Sending a PEC through JMAP: Python's `jmapc` logs in at the lab gestore Alfa over TLS,
//! uploads a draft, imports it into Drafts (Email/import) and submits it
//! (EmailSubmission/set). The access point is the one SMTP submission uses: the sender gets
//! the accettazione, the recipient at Beta the busta; a submission whose envelope names
//! another sender is refused as SMTP refuses `MAIL FROM` (nothing issued), and a draft whose
//! `From:` is another mailbox gets the avviso di non accettazione, as over SMTP.

use pec_e2e::{Backend, Lab, of_kind, run_python, standard, wait_for, wait_for_kind};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";

/// Logs in as argv[3] (password argv[4]) at https://argv[1], CA file argv[2]; uploads the
/// three drafts read from stdin (separated by a line `--8<--`), imports them into Drafts
/// and submits them: the first as it is, the second with an envelope from argv[5], the
/// third (a foreign `From:`) as it is. Prints `created <n> <undoStatus>` or
/// `refused <n> <type>` for each, and `drafts <count>`.
const CLIENT: &str = r#"
import os, sys
host, ca, user, password, foreign = sys.argv[1:6]
os.environ["REQUESTS_CA_BUNDLE"] = ca
from jmapc import Client
from jmapc.methods import MailboxGet

client = Client.create_with_password(host=host, user=user, password=password)
session = client.jmap_session
account = client.account_id
mailboxes = client.request(MailboxGet(ids=None), raise_errors=True, single_response=True)
drafts = next(m.id for m in mailboxes.data if m.role == "drafts")

def call(name, arguments):
    body = {"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
                      "urn:ietf:params:jmap:submission"],
            "methodCalls": [[name, dict(arguments, accountId=account), "c"]]}
    r = client.requests_session.post(session.api_url, json=body, timeout=60)
    r.raise_for_status()
    name, result, _ = r.json()["methodResponses"][0]
    assert name != "error", result
    return result

texts = sys.stdin.read().split("--8<--\n")
for n, text in enumerate(texts):
    url = session.upload_url.replace("{accountId}", account)
    up = client.requests_session.post(url, data=text.encode(), timeout=30,
                                      headers={"Content-Type": "message/rfc822"})
    assert up.status_code == 201, up.text
    blob = up.json()["blobId"]
    imported = call("Email/import", {"emails": {"d": {
        "blobId": blob, "mailboxIds": {drafts: True}, "keywords": {"$draft": True}}}})
    email = imported["created"]["d"]["id"]
    create = {"emailId": email, "identityId": "self"}
    if n == 1:
        create["envelope"] = {"mailFrom": {"email": foreign}, "rcptTo": [{"email": foreign}]}
    sent = call("EmailSubmission/set", {"create": {"s": create}})
    if "s" in (sent.get("created") or {}):
        print("created", n, sent["created"]["s"]["undoStatus"])
    else:
        print("refused", n, sent["notCreated"]["s"]["type"])
q = call("Email/query", {"filter": {"inMailbox": drafts}})
print("drafts", len(q["ids"]))
"#;

async fn a_pec_sent_by_email_submission_is_accepted(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let draft = |from: &str, subject: &str| {
        format!(
            "From: {from}\r\nTo: {ANNA}\r\nSubject: {subject}\r\n\
             Message-ID: <{}@client.test>\r\n\r\nTesto.\r\n",
            subject.replace(' ', "-")
        )
    };
    let stdin = [
        draft(MARIO, "Verbale JMAP"),
        draft(MARIO, "Mittente altrui"),
        draft(ANNA, "Intestazione altrui"),
    ]
    .join("--8<--\n");
    let host = format!("localhost:{}", alfa.https_port);
    let ca = lab.ca().display().to_string();
    let out = run_python(
        CLIENT,
        &[&host, &ca, MARIO, "secret-mario.rossi", ANNA],
        &[],
        stdin.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("jmapc: {e}"));
    let lines: Vec<&str> = out.lines().collect();
    for line in [
        "created 0 final",
        "refused 1 forbiddenFrom",
        "refused 2 forbiddenToSend",
        "drafts 3",
    ] {
        assert!(lines.contains(&line), "{line}: {out}");
    }

    // The access point's outcome, as for SMTP: one accettazione (for the first draft),
    // one avviso di non accettazione (the foreign From:), nothing for the foreign envelope.
    let acc = wait_for_kind(alfa.store.as_ref(), MARIO, "accettazione", 1).await;
    let acc = &of_kind(&acc, "accettazione")[0];
    let daticert = acc.daticert.as_ref().expect("daticert");
    assert_eq!(daticert.oggetto.as_deref(), Some("Verbale JMAP"));
    assert_eq!(
        daticert.msgid.as_deref(),
        Some("<Verbale-JMAP@client.test>")
    );
    let non = wait_for_kind(alfa.store.as_ref(), MARIO, "non-accettazione", 1).await;
    let non = &of_kind(&non, "non-accettazione")[0];
    assert_eq!(
        non.daticert.as_ref().and_then(|d| d.oggetto.as_deref()),
        Some("Intestazione altrui")
    );
    // The recipient at Beta gets the busta of the accepted one only.
    let anna = wait_for(beta.store.as_ref(), ANNA, 1).await;
    let buste = of_kind(&anna, "posta-certificata");
    assert_eq!(buste.len(), 1);
    assert_eq!(
        buste[0]
            .daticert
            .as_ref()
            .map(|d| d.identificativo.as_str()),
        Some(daticert.identificativo.as_str())
    );
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(a_pec_sent_by_email_submission_is_accepted);
