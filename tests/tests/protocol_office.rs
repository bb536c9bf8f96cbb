//! A protocol office's document policy, end to end: messages written by Python's email
//! package with a `.docx`, a PDF, a PDF/A, a TIFF and a PDF signed by `openssl cms -sign
//! -nodetach`, submitted at alfa to beta's `ufficio.protocollo`. Every one is delivered;
//! only the `.docx` carries `$NonConforme`, as Python's imaplib sees it, and only its
//! sender gets a ripudio — a PEC from the office, with its accettazione at the office
//! and a copy to the competent office — whose text Python's email package reads.

use pec_e2e::{
    Backend, Lab, mailbox, of_kind, run_python, send_to_mx, standard, submit, wait_for,
    wait_for_kind,
};
use pec_gestore::protocol::ripudio::ACCESS_POINT;
use pec_proto::classify::classify;

const MARIO: &str = "mario.rossi@pec.alfa.test";
const PROTOCOLLO: &str = "ufficio.protocollo@pec.comune.beta.test";
const COMPETENTE: &str = "luca.verdi@pec.beta.test";

/// Writes one message per attachment into the directory `argv[1]` (`<subject>.eml`),
/// each attachment under its ordinary name (the policy's unit tests cover misleading
/// names), the `.p7m` signed by the `openssl` command-line tool.
const MAKE_MESSAGES: &str = r#"
import email.policy, io, os, subprocess, sys, zipfile
from email.message import EmailMessage
d, sender, rcpt = sys.argv[1], sys.argv[2], sys.argv[3]

docx = io.BytesIO()
with zipfile.ZipFile(docx, "w") as z:
    z.writestr("[Content_Types].xml", "<?xml version='1.0'?><Types/>")
    z.writestr("word/document.xml", "<?xml version='1.0'?><w:document/>")
pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
pdfa = (b"%PDF-1.4\n2 0 obj << /Type /Metadata /Subtype /XML >> stream\n"
        b"<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?><x:xmpmeta xmlns:x='adobe:ns:meta/'>"
        b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
        b"<rdf:Description rdf:about='' xmlns:pdfaid='http://www.aiim.org/pdfa/ns/id/'>"
        b"<pdfaid:part>1</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>"
        b"</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end='w'?>\nendstream endobj\n%%EOF\n")
tiff = b"II*\x00\x08\x00\x00\x00\x00\x00"

def run(*args):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
    "cert.pem", "-days", "2", "-subj", "/CN=Mario Rossi")
open(os.path.join(d, "atto.pdf"), "wb").write(pdf)
run("cms", "-sign", "-nodetach", "-binary", "-signer", "cert.pem", "-inkey", "key.pem",
    "-outform", "DER", "-in", "atto.pdf", "-out", "atto.pdf.p7m")
p7m = open(os.path.join(d, "atto.pdf.p7m"), "rb").read()

for subject, name, data in [
    ("docx", "istanza.docx", docx.getvalue()),
    ("pdf", "istanza.pdf", pdf),
    ("pdfa", "istanza.pdf", pdfa),
    ("tiff", "planimetria.tif", tiff),
    ("p7m", "atto.pdf.p7m", p7m),
]:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, rcpt, "Istanza " + subject
    m.set_content("In allegato l'istanza.")
    m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    open(os.path.join(d, subject + ".eml"), "wb").write(m.as_bytes(policy=email.policy.SMTP))
"#;

/// Prints, for each message of INBOX with the keyword `argv[5]`, its subject.
const SEARCH_KEYWORD: &str = r#"
import email, imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
m.login(sys.argv[3], sys.argv[4])
m.select("INBOX", readonly=True)
typ, data = m.search(None, "KEYWORD", sys.argv[5])
assert typ == "OK", data
for num in data[0].split():
    typ, parts = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    print(email.message_from_bytes(parts[0][1])["Subject"])
typ, data = m.search(None, "ALL")
print("all", len(data[0].split()))
m.logout()
"#;

/// Prints the decoded text of the message on stdin.
const READ_BODY: &str = r#"
import email, email.policy, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
print(m.get_body(("plain",)).get_content().replace("\r\n", "\n"), end="")
"#;

async fn only_the_docx_is_flagged_and_all_are_delivered(backend: Backend) {
    let mut specs = standard();
    specs[1].extra = format!(
        "[[protocol_office]]\nmailbox = \"{PROTOCOLLO}\"\nripudio = true\n\
         ripudio_text = \"Il messaggio non è protocollabile.\"\ncopy_to = \"{COMPETENTE}\"\n"
    );
    let lab = Lab::start_on(backend, specs, &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().display().to_string();
    run_python(MAKE_MESSAGES, &[&dir, MARIO, PROTOCOLLO], &[], b"").expect("messages");
    let subjects = ["docx", "pdf", "pdfa", "tiff", "p7m"];
    for s in subjects {
        let message = std::fs::read_to_string(work.path().join(format!("{s}.eml"))).unwrap();
        submit(
            alfa.submission_port,
            &lab.ca(),
            MARIO,
            &[PROTOCOLLO],
            &message,
        )
        .unwrap();
    }
    let delivered = wait_for_kind(
        beta.store.as_ref(),
        PROTOCOLLO,
        "posta-certificata",
        subjects.len(),
    )
    .await;
    assert_eq!(
        of_kind(&delivered, "posta-certificata").len(),
        subjects.len(),
        "every PEC is delivered"
    );

    let docx_id = of_kind(&delivered, "posta-certificata")
        .into_iter()
        .filter_map(|c| c.daticert)
        .find(|d| d.oggetto.as_deref() == Some("Istanza docx"))
        .expect("the .docx PEC")
        .identificativo;

    // The ripudio is a PEC: accepted at the office, delivered to the sender and the copy.
    let office = wait_for_kind(beta.store.as_ref(), PROTOCOLLO, "avvenuta-consegna", 2).await;
    assert_eq!(of_kind(&office, "accettazione").len(), 1);
    let copy = wait_for(beta.store.as_ref(), COMPETENTE, 1).await;
    let mario = wait_for_kind(alfa.store.as_ref(), MARIO, "posta-certificata", 1).await;
    for inbox in [&copy, &mario] {
        let ripudi = of_kind(inbox, "posta-certificata");
        assert_eq!(ripudi.len(), 1, "one ripudio");
        let d = ripudi[0].daticert.as_ref().expect("daticert");
        assert_eq!(d.mittente, PROTOCOLLO);
        assert_eq!(d.oggetto.as_deref(), Some("RIPUDIO: Istanza docx"));
        let text = run_python(
            READ_BODY,
            &[],
            &[],
            ripudi[0].postacert.as_deref().expect("postacert"),
        )
        .expect("email");
        assert!(
            text.starts_with("Il messaggio non è protocollabile."),
            "{text}"
        );
        assert!(text.contains("Oggetto: Istanza docx\n"), "{text}");
        assert!(
            text.contains(&format!("Identificativo: {docx_id}\n")),
            "{text}"
        );
        assert!(text.contains("Ricevuto il: "), "{text}");
        assert!(
            text.contains("- istanza.docx: formato non ammesso ("),
            "{text}"
        );
    }

    // The .docx envelope relayed again, exactly: stored once, so repudiated once (the
    // ripudio is queued in the delivery's step). The office's INBOX is read before the
    // queue: a second ripudio, whichever step it has reached, is seen in one of them.
    let docx = delivered
        .iter()
        .find(|m| {
            classify(m)
                .daticert
                .is_some_and(|d| d.identificativo == docx_id)
        })
        .expect("the .docx envelope");
    send_to_mx(beta.mx_port, MARIO, &[PROTOCOLLO], docx).expect("exact replay");
    let inbox = mailbox(beta.store.as_ref(), PROTOCOLLO, "INBOX");
    let queued = beta.store.list_queue().expect("queue");
    assert_eq!(of_kind(&inbox, "posta-certificata").len(), subjects.len());
    let ripudi = of_kind(&inbox, "accettazione").len()
        + queued.iter().filter(|q| q.domain == ACCESS_POINT).count();
    assert_eq!(ripudi, 1, "one ripudio, however often the PEC arrives");

    let flagged = run_python(
        SEARCH_KEYWORD,
        &[
            &beta.imaps_port.to_string(),
            &lab.ca().display().to_string(),
            PROTOCOLLO,
            "secret-ufficio.protocollo",
            "$NonConforme",
        ],
        &[],
        b"",
    )
    .expect("imaplib");
    // The envelope's subject is "POSTA CERTIFICATA: <original subject>".
    let lines: Vec<&str> = flagged.lines().collect();
    assert_eq!(lines.len(), 2, "{flagged}");
    assert!(lines[0].ends_with("Istanza docx"), "{flagged}");
    // The PEC received and the ripudio's accettazione and two consegne.
    assert_eq!(lines[1], format!("all {}", subjects.len() + 3), "{flagged}");
}

pec_e2e::e2e_tests!(only_the_docx_is_flagged_and_all_are_delivered);
