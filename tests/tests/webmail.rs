//! The webmail in a real browser: Debian's Chromium driven by Python's Playwright (no
//! browser download: `executable_path=/usr/bin/chromium`). A real PEC between two lab
//! gestori; the sender logs in with the form at `/webmail/`, sees the folder list and the
//! badges of his receipts, opens the avvenuta consegna (daticert panel, signature verdict,
//! the recipient's state); the recipient opens the envelope (daticert panel, the
//! original's text and attachment, downloaded). Then Mario writes a PEC in the compose
//! form with a `.p7m` (signed by the `openssl` command-line tool) attached and sends it;
//! "Posta inviata" holds it, the accettazione arrives in his list, the quota bar says the
//! space used; Anna gets the envelope and verifies the `.p7m` ("Verifica firma": the
//! signer, the document inside downloaded). Screenshots are kept under
//! `target/webmail-screenshots/<backend>/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use pec_e2e::{Backend, Lab, of_kind, run_python, standard, submit, wait_for, wait_for_kind};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";

/// argv: base URL, user, password, screenshot directory, subject of the message to open.
/// Prints `key<TAB>text` lines of what the pages show.
const BROWSER: &str = r#"
import sys
from playwright.sync_api import sync_playwright
base, user, password, shots, subject = sys.argv[1:6]
def flat(text):
    return " | ".join(c.strip() for l in text.splitlines() for c in l.split("\t") if c.strip())
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                args=["--no-sandbox", "--disable-dev-shm-usage"])
    context = browser.new_context(ignore_https_errors=True, accept_downloads=True)
    page = context.new_page()
    page.goto(base + "/webmail/")
    page.get_by_label("Indirizzo PEC").fill(user)
    page.get_by_label("Password").fill("sbagliata")
    page.get_by_role("button", name="Accedi").click()
    print("refused\t" + flat(page.locator("[role=alert]").inner_text()))
    page.get_by_label("Indirizzo PEC").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Accedi").click()
    page.wait_for_selector("nav")
    page.screenshot(path=shots + "/1-cartelle.png", full_page=True)
    print("nav\t" + flat(page.locator("nav").inner_text()))
    print("badges\t" + "|".join(page.locator("tbody .badge").all_inner_texts()))
    page.get_by_role("link", name=subject).first.click()
    page.wait_for_selector("section[aria-labelledby=dati]")
    page.screenshot(path=shots + "/2-messaggio.png", full_page=True)
    print("title\t" + flat(page.locator("h1").inner_text()))
    print("daticert\t" + flat(page.locator("section[aria-labelledby=dati]").inner_text()))
    print("firma\t" + flat(page.locator("section[aria-labelledby=firma]").inner_text()))
    if page.locator("section[aria-labelledby=ric]").count():
        print("ricevute\t" + flat(page.locator("section[aria-labelledby=ric] table").inner_text()))
    if page.locator("section[aria-labelledby=orig]").count():
        print("originale\t" + flat(page.locator("section[aria-labelledby=orig]").inner_text()))
        with page.expect_download() as d:
            page.get_by_role("link", name="verbale.txt").click()
        with open(d.value.path(), "rb") as f:
            print("allegato\t" + d.value.suggested_filename + " " + f.read().decode().strip())
    page.get_by_role("button", name="Esci").click()
    page.wait_for_selector("input[name=password]")
    print("logout\tok")
    browser.close()
"#;

/// argv: base URL, user, password, screenshot directory, recipient, subject, file.
/// Composes and sends a PEC with the file attached, then waits (reloading, 60 s at most)
/// for its accettazione in the inbox.
const COMPOSE: &str = r#"
import sys, time
from playwright.sync_api import sync_playwright
base, user, password, shots, to, subject, path = sys.argv[1:8]
def flat(text):
    return " | ".join(c.strip() for l in text.splitlines() for c in l.split("\t") if c.strip())
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                args=["--no-sandbox", "--disable-dev-shm-usage"])
    page = browser.new_context(ignore_https_errors=True).new_page()
    page.goto(base + "/webmail/")
    page.get_by_label("Indirizzo PEC").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Accedi").click()
    page.wait_for_selector("nav")
    print("quota\t" + flat(page.locator("section.spazio").inner_text()))
    # The keyboard reaches the compose link (no mouse).
    page.get_by_role("link", name="Scrivi un messaggio").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("form.scrivi")
    page.get_by_label("A", exact=True).fill(to)
    page.get_by_label("Oggetto").fill(subject)
    page.get_by_label("Testo").fill("Si trasmette la determina firmata digitalmente.")
    page.get_by_label("Allegati").set_input_files(path)
    page.screenshot(path=shots + "/3-scrivi.png", full_page=True)
    page.get_by_role("button", name="Invia").click()
    page.wait_for_selector("[role=status]")
    page.screenshot(path=shots + "/4-inviata.png", full_page=True)
    print("esito\t" + flat(page.locator("[role=status]").inner_text()))
    print("cartella\t" + flat(page.locator("h1").inner_text()))
    print("inviati\t" + flat(page.locator("table").inner_text()))
    deadline = time.monotonic() + 60
    while True:
        page.goto(base + "/webmail/")
        found = page.get_by_role("link", name="ACCETTAZIONE: " + subject)
        if found.count() or time.monotonic() > deadline:
            break
        page.wait_for_timeout(500)
    page.screenshot(path=shots + "/5-accettazione.png", full_page=True)
    print("arrivo\t" + flat(page.locator("table").inner_text()))
    browser.close()
"#;

/// argv: base URL, user, password, screenshot directory, subject, file name, download
/// path. Opens the envelope and verifies its `.p7m` attachment.
const VERIFY: &str = r#"
import sys
from playwright.sync_api import sync_playwright
base, user, password, shots, subject, name, out = sys.argv[1:8]
def flat(text):
    return " | ".join(c.strip() for l in text.splitlines() for c in l.split("\t") if c.strip())
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                args=["--no-sandbox", "--disable-dev-shm-usage"])
    page = browser.new_context(ignore_https_errors=True, accept_downloads=True).new_page()
    page.goto(base + "/webmail/")
    page.get_by_label("Indirizzo PEC").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Accedi").click()
    page.wait_for_selector("nav")
    page.get_by_role("link", name=subject).first.click()
    page.wait_for_selector("section[aria-labelledby=orig]")
    print("originale\t" + flat(page.locator("section[aria-labelledby=orig]").inner_text()))
    page.get_by_role("link", name="Verifica firma di " + name).click()
    page.wait_for_selector("section[aria-labelledby=firma-1]")
    page.screenshot(path=shots + "/3-verifica.png", full_page=True)
    print("firma\t" + flat(page.locator("section[aria-labelledby=firma-1]").inner_text()))
    print("documento\t" + flat(page.locator("section[aria-labelledby=documento]").inner_text()))
    with page.expect_download() as d:
        page.get_by_role("link", name="Scarica il documento").click()
    d.value.save_as(out)
    print("scaricato\t" + d.value.suggested_filename)
    browser.close()
"#;

/// A PDF signed with `openssl cms -sign -nodetach` by a fresh self-signed "Mario Rossi"
/// certificate, written as `dir/determina.pdf.p7m`; the PDF.
fn signed_pdf(dir: &Path) -> Vec<u8> {
    const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("the openssl command-line tool");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "30",
        "-subj",
        "/CN=Mario Rossi/O=Comune di Alfa",
    ]);
    std::fs::write(dir.join("determina.pdf"), PDF).expect("the PDF");
    openssl(&[
        "cms",
        "-sign",
        "-nodetach",
        "-binary",
        "-signer",
        "cert.pem",
        "-inkey",
        "key.pem",
        "-outform",
        "DER",
        "-in",
        "determina.pdf",
        "-out",
        "determina.pdf.p7m",
    ]);
    PDF.to_vec()
}

/// Runs one of the scripts above; its `key<TAB>text` lines.
async fn drive(script: &'static str, args: Vec<String>) -> Vec<(String, String)> {
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(script, &args, &[], b"")
    })
    .await
    .expect("the browser task");
    let out = out.unwrap_or_else(|e| panic!("playwright: {e}"));
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn chromium_sends_a_pec_and_verifies_a_p7m(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let shots = screenshots(backend);
    let files = tempfile::tempdir().expect("a directory");
    let pdf = signed_pdf(files.path());
    let p7m = files.path().join("determina.pdf.p7m");
    let subject = "Determina 15";

    let mario = drive(
        COMPOSE,
        vec![
            format!("https://localhost:{}", alfa.https_port),
            MARIO.into(),
            "secret-mario.rossi".into(),
            shots.join("mario").display().to_string(),
            ANNA.into(),
            subject.into(),
            p7m.display().to_string(),
        ],
    )
    .await;
    let quota = get(&mario, "quota");
    assert!(
        quota.contains("Casella: ")
            && quota.contains("Archivio di sicurezza: ")
            && quota.contains("%)"),
        "{quota}"
    );
    assert_eq!(
        get(&mario, "esito"),
        "Messaggio accettato dal gestore: la ricevuta di accettazione è in arrivo."
    );
    assert_eq!(get(&mario, "cartella"), "Posta inviata");
    assert!(get(&mario, "inviati").contains(subject), "{mario:?}");
    let arrivo = get(&mario, "arrivo");
    assert!(
        arrivo.contains("Accettazione") && arrivo.contains(&format!("ACCETTAZIONE: {subject}")),
        "{arrivo}"
    );
    // The gestore's own view: the accettazione in Mario's mailbox, the envelope in
    // Anna's, carrying the original with the trace of the browser's address.
    let inbox = wait_for_kind(alfa.store.as_ref(), MARIO, "accettazione", 1).await;
    assert_eq!(of_kind(&inbox, "accettazione").len(), 1);
    let anna_inbox = wait_for_kind(beta.store.as_ref(), ANNA, "posta-certificata", 1).await;
    let envelope = String::from_utf8_lossy(&anna_inbox[0]).into_owned();
    assert!(
        envelope.contains(&format!("POSTA CERTIFICATA: {subject}")),
        "{envelope}"
    );
    assert!(
        envelope.contains("Received: from jmap ([127.0.0.1])"),
        "the original keeps the browser's address: {envelope}"
    );

    let downloaded = files.path().join("scaricato.pdf");
    let anna = drive(
        VERIFY,
        vec![
            format!("https://localhost:{}", beta.https_port),
            ANNA.into(),
            "secret-anna.bianchi".into(),
            shots.join("anna").display().to_string(),
            format!("POSTA CERTIFICATA: {subject}"),
            "determina.pdf.p7m".into(),
            downloaded.display().to_string(),
        ],
    )
    .await;
    assert!(
        get(&anna, "originale").contains("determina.pdf.p7m"),
        "{anna:?}"
    );
    let firma = get(&anna, "firma");
    for fact in [
        "Firma integra",
        "Firmatario | ",
        "Mario Rossi",
        "Certificato valido alla data della firma | sì",
        "Certificato valido oggi | sì",
    ] {
        assert!(firma.contains(fact), "{fact}: {firma}");
    }
    assert!(
        get(&anna, "documento").contains("Formato | PDF"),
        "{anna:?}"
    );
    assert_eq!(get(&anna, "scaricato"), "determina.pdf");
    assert_eq!(std::fs::read(&downloaded).expect("the download"), pdf);
    for (who, shot) in [
        ("mario", "3-scrivi.png"),
        ("mario", "4-inviata.png"),
        ("mario", "5-accettazione.png"),
        ("anna", "3-verifica.png"),
    ] {
        let png = std::fs::read(shots.join(who).join(shot)).expect("a screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 1000,
            "{who}/{shot}"
        );
    }
    lab.shutdown().await;
}

fn screenshots(backend: Backend) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("webmail-screenshots")
        .join(format!("{backend:?}").to_lowercase());
    for who in ["mario", "anna"] {
        std::fs::create_dir_all(dir.join(who)).expect("screenshot directory");
    }
    dir
}

/// Drives Chromium as `user` at `https://localhost:port`, opening the message `subject`.
async fn browse(port: u16, user: &str, subject: &str, shots: PathBuf) -> Vec<(String, String)> {
    let password = format!("secret-{}", user.split('@').next().unwrap_or(""));
    drive(
        BROWSER,
        vec![
            format!("https://localhost:{port}"),
            user.into(),
            password,
            shots.display().to_string(),
            subject.into(),
        ],
    )
    .await
}

fn get<'a>(lines: &'a [(String, String)], key: &str) -> &'a str {
    lines
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
}

async fn chromium_shows_receipts_and_daticert(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let msg = format!(
        "From: Mario Rossi <{MARIO}>\r\nTo: {ANNA}\r\nSubject: Verbale 7\r\n\
         Message-ID: <verbale-7@client.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nIn allegato il verbale.\r\n--b\r\n\
         Content-Type: text/plain; name=verbale.txt\r\n\
         Content-Disposition: attachment; filename=verbale.txt\r\n\r\n\
         Verbale della seduta n. 7\r\n--b--\r\n"
    );
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &msg).expect("submitted");
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 2).await;
    let accettazione = &of_kind(&inbox, "accettazione")[0];
    let identificativo = accettazione
        .daticert
        .as_ref()
        .expect("daticert")
        .identificativo
        .clone();
    wait_for(beta.store.as_ref(), ANNA, 1).await;
    let shots = screenshots(backend);

    let mario = browse(
        alfa.https_port,
        MARIO,
        "CONSEGNA: Verbale 7",
        shots.join("mario"),
    )
    .await;
    assert_eq!(get(&mario, "refused"), "Indirizzo o password non corretti.");
    let nav = get(&mario, "nav");
    assert!(nav.contains("Posta in arrivo (2 non letti)"), "{nav}");
    assert!(nav.contains("Archivio di sicurezza"), "{nav}");
    let badges = get(&mario, "badges");
    assert!(
        badges.contains("Avvenuta consegna") && badges.contains("Accettazione"),
        "{badges}"
    );
    assert!(get(&mario, "title").contains("Avvenuta consegna"));
    let daticert = get(&mario, "daticert");
    for fact in [
        format!("Mittente | {MARIO}"),
        format!("Destinatari | {ANNA} (certificato (PEC))"),
        format!("Identificativo | {identificativo}"),
        "Gestore | Beta PEC (lab)".to_string(),
        format!("Consegnato a | {ANNA}"),
        "Oggetto | Verbale 7".to_string(),
    ] {
        assert!(daticert.contains(&fact), "{fact}: {daticert}");
    }
    assert!(daticert.contains("Data e ora | "), "{daticert}");
    let firma = get(&mario, "firma");
    assert!(
        firma.contains("Firma valida di un gestore PEC accreditato"),
        "{firma}"
    );
    assert!(firma.contains("posta-certificata@pec.beta.test"), "{firma}");
    let ricevute = get(&mario, "ricevute");
    assert!(
        ricevute.contains(&format!("{ANNA} | consegnata")),
        "{ricevute}"
    );
    assert_eq!(get(&mario, "logout"), "ok");

    let anna = browse(
        beta.https_port,
        ANNA,
        "POSTA CERTIFICATA: Verbale 7",
        shots.join("anna"),
    )
    .await;
    let badges = get(&anna, "badges");
    assert!(badges.contains("Posta certificata"), "{badges}");
    let daticert = get(&anna, "daticert");
    assert!(
        daticert.contains(&format!("Mittente | {MARIO}")),
        "{daticert}"
    );
    assert!(
        daticert.contains(&format!("Identificativo | {identificativo}")),
        "{daticert}"
    );
    assert!(daticert.contains("Gestore | Alfa PEC (lab)"), "{daticert}");
    assert!(get(&anna, "firma").contains("Firma valida di un gestore PEC accreditato"));
    let originale = get(&anna, "originale");
    assert!(originale.contains("In allegato il verbale."), "{originale}");
    assert!(originale.contains("Oggetto | Verbale 7"), "{originale}");
    assert_eq!(
        get(&anna, "allegato"),
        "verbale.txt Verbale della seduta n. 7"
    );
    assert!(
        !anna.iter().any(|(k, _)| k == "ricevute"),
        "Anna sent nothing: {anna:?}"
    );
    for who in ["mario", "anna"] {
        for shot in ["1-cartelle.png", "2-messaggio.png"] {
            let png = std::fs::read(shots.join(who).join(shot)).expect("a screenshot");
            assert!(
                png.starts_with(b"\x89PNG") && png.len() > 1000,
                "{who}/{shot}"
            );
        }
    }
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    chromium_shows_receipts_and_daticert,
    chromium_sends_a_pec_and_verifies_a_p7m
);
