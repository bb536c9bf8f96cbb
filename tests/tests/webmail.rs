//! The webmail in a real browser: Debian's Chromium driven by Python's Playwright (no
//! browser download: `executable_path=/usr/bin/chromium`). A real PEC between two lab
//! gestori; the sender logs in with the form at `/webmail/`, sees the folder list and the
//! badges of his receipts, opens the avvenuta consegna (daticert panel, signature verdict,
//! the recipient's state); the recipient opens the envelope (daticert panel, the
//! original's text and attachment, downloaded). Screenshots are kept under
//! `target/webmail-screenshots/<backend>/`.

use std::path::{Path, PathBuf};

use pec_e2e::{Backend, Lab, of_kind, run_python, standard, submit, wait_for};

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
    let (user, subject) = (user.to_string(), subject.to_string());
    let out = tokio::task::spawn_blocking(move || {
        let base = format!("https://localhost:{port}");
        let shots = shots.display().to_string();
        let password = format!("secret-{}", user.split('@').next().unwrap_or(""));
        run_python(
            BROWSER,
            &[&base, &user, &password, &shots, &subject],
            &[],
            b"",
        )
    })
    .await
    .expect("the browser task");
    let out = out.unwrap_or_else(|e| panic!("playwright: {e}"));
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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

pec_e2e::e2e_tests!(chromium_shows_receipts_and_daticert);
