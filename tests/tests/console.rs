//! The administration console in a real browser: Debian's Chromium driven by Python's
//! Playwright (`executable_path=/usr/bin/chromium`), on both stores. The province's
//! administrator logs in at `/console/` (a wrong password first), sees both enti and
//! creates a mailbox in one; that ente's administrator logs in, sees its own domain's
//! mailboxes only, resets the new mailbox's password (which IMAP then takes), suspends
//! and reactivates it, downloads the usage CSV, and cannot open another ente's mailbox by
//! URL (403). Every change is in the legal log with who made it. Screenshots are kept
//! under `target/console-screenshots/<backend>/`.

use std::path::{Path, PathBuf};

use chrono_tz::Europe::Rome;
use pec_e2e::{Backend, Lab, e2e_tests, run_python, standard};
use pec_gestore::clock::Clock;
use pec_store::LogQuery;

const PROVINCE: (&str, &str) = ("provincia@pec.beta.test", "provincia-segreta");
const ENTE_ADMIN: (&str, &str) = ("admin@pec.comune.beta.test", "comune-segreta");
const NUOVA: &str = "nuova@pec.comune.beta.test";
const OTHER: &str = "anna.bianchi@pec.beta.test";

/// argv: base URL, then the steps' data. Prints `key<TAB>text` lines of what the pages
/// show.
const BROWSER: &str = r#"
import csv, io, sys
from playwright.sync_api import sync_playwright
base, shots, province, province_pw, ente_admin, ente_pw, nuova, other, day = sys.argv[1:10]
def flat(text):
    return " | ".join(c.strip() for l in text.splitlines() for c in l.split("\t") if c.strip())
def login(page, user, password):
    page.goto(base + "/console/")
    page.get_by_label("Nome utente").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Accedi").click()
def logout(page):
    page.get_by_role("button", name="Esci").click()
    page.wait_for_selector("input[name=password]")
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                args=["--no-sandbox", "--disable-dev-shm-usage"])
    context = browser.new_context(ignore_https_errors=True, accept_downloads=True)
    page = context.new_page()

    login(page, province, "sbagliata")
    print("refused\t" + flat(page.locator("[role=alert]").inner_text()))
    login(page, province, province_pw)
    page.wait_for_selector("table[aria-label=Enti]")
    print("province-enti\t" + flat(page.locator("table[aria-label=Enti] tbody").inner_text()))
    page.get_by_label("Indirizzo").fill(nuova)
    page.get_by_label("Password iniziale").fill("iniziale-1234")
    page.get_by_label("Quota (es. 2GiB; vuota: quella del dominio)").fill("5MiB")
    page.screenshot(path=shots + "/1-provincia.png", full_page=True)
    page.get_by_role("button", name="Crea casella").click()
    page.wait_for_selector("[role=status]")
    print("created\t" + flat(page.locator("[role=status]").inner_text()))
    print("created-state\t" + flat(page.locator("section[aria-labelledby=stato] dl").inner_text()))
    logout(page)

    login(page, ente_admin, ente_pw)
    page.wait_for_selector("table[aria-label=Caselle]")
    page.screenshot(path=shots + "/2-ente.png", full_page=True)
    print("ente-enti\t" + flat(page.locator("table[aria-label=Enti] tbody").inner_text()))
    rows = page.locator("table[aria-label=Caselle] tbody tr td:first-child").all_inner_texts()
    print("ente-mailboxes\t" + "|".join(rows))
    page.get_by_role("link", name=nuova).click()
    page.get_by_label("Nuova password").fill("reimpostata-5678")
    page.get_by_role("button", name="Reimposta password").click()
    page.wait_for_selector("[role=status]")
    print("reset\t" + flat(page.locator("[role=status]").inner_text()))
    page.screenshot(path=shots + "/3-password.png", full_page=True)
    page.get_by_role("button", name="Sospendi casella").click()
    page.wait_for_selector("text=Riattiva casella")
    print("suspended\t" + flat(page.locator("section[aria-labelledby=stato] dl").inner_text()))
    page.get_by_role("button", name="Riattiva casella").click()
    page.wait_for_selector("text=Sospendi casella")
    print("reactivated\t" + flat(page.locator("[role=status]").inner_text()))
    page.get_by_label("Nuova quota (es. 3GiB, 500MiB)").fill("1GiB")
    page.get_by_role("button", name="Cambia quota").click()
    print("quota-refused\t" + flat(page.locator("[role=alert]").inner_text()))
    page.go_back()

    r = page.goto(base + "/console/caselle/" + other)
    print("other-status\t" + str(r.status))
    print("other-text\t" + flat(page.locator("[role=alert]").inner_text()))
    page.screenshot(path=shots + "/4-altro-ente.png", full_page=True)

    page.get_by_role("link", name="Utilizzo").click()
    page.get_by_label("Dal", exact=True).fill(day)
    page.get_by_label("al", exact=True).fill(day)
    page.get_by_role("button", name="Mostra").click()
    page.wait_for_selector("table[aria-label=Utilizzo]")
    page.screenshot(path=shots + "/5-utilizzo.png", full_page=True)
    with page.expect_download() as d:
        page.get_by_role("link", name="Scarica CSV").click()
    with open(d.value.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    print("csv-enti\t" + "|".join(sorted(set(r["ente"] for r in rows))))
    print("csv-name\t" + d.value.suggested_filename)
    logout(page)
    browser.close()
"#;

/// Logs in over IMAPS with imaplib: prints `OK` or `NO`.
const IMAP_LOGIN: &str = r#"
import imaplib, ssl, sys
port, ca, user, password = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx, timeout=60)
try:
    m.login(user, password)
    print("OK")
    m.logout()
except imaplib.IMAP4.error:
    print("NO")
"#;

fn screenshots(backend: Backend) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("console-screenshots")
        .join(format!("{backend:?}").to_lowercase());
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

fn get<'a>(lines: &'a [(String, String)], key: &str) -> &'a str {
    lines
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
}

fn pecd_ok(lab: &Lab, args: &[&str], input: &str) {
    let out = lab.pecd_with_input("beta", args, input.as_bytes());
    assert!(
        out.status.success(),
        "pecd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn chromium_administers_an_ente(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let beta = lab.node("beta");
    // The ente's allotment: what ufficio.protocollo has, and 10 MiB more.
    let protocollo = "ufficio.protocollo@pec.comune.beta.test";
    let allotment = (beta.store.account(protocollo).unwrap().quota + (10 << 20)).to_string();
    pecd_ok(
        &lab,
        &["admin", "add", PROVINCE.0, "--password-stdin"],
        &format!("{}\n", PROVINCE.1),
    );
    pecd_ok(
        &lab,
        &[
            "ente",
            "add",
            "comune-beta",
            "--domain",
            "pec.comune.beta.test",
            "--allotment",
            &allotment,
        ],
        "",
    );
    pecd_ok(
        &lab,
        &[
            "ente",
            "add",
            "beta-spa",
            "--domain",
            "pec.beta.test",
            "--allotment",
            "1GiB",
        ],
        "",
    );
    pecd_ok(
        &lab,
        &[
            "ente",
            "admin",
            "add",
            "comune-beta",
            ENTE_ADMIN.0,
            "--password-stdin",
        ],
        &format!("{}\n", ENTE_ADMIN.1),
    );

    let shots = screenshots(backend);
    let day = lab
        .clock
        .now()
        .with_timezone(&Rome)
        .date_naive()
        .to_string();
    let csv_name = format!("utilizzo-{day}-{day}.csv");
    let base = format!("https://localhost:{}", beta.https_port);
    let out = tokio::task::spawn_blocking(move || {
        let shots = shots.display().to_string();
        run_python(
            BROWSER,
            &[
                &base,
                &shots,
                PROVINCE.0,
                PROVINCE.1,
                ENTE_ADMIN.0,
                ENTE_ADMIN.1,
                NUOVA,
                OTHER,
                &day,
            ],
            &[],
            b"",
        )
    })
    .await
    .expect("the browser task")
    .unwrap_or_else(|e| panic!("playwright: {e}"));
    let lines: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    assert_eq!(
        get(&lines, "refused"),
        "Nome utente o password non corretti."
    );
    let enti = get(&lines, "province-enti");
    assert!(
        enti.contains("beta-spa") && enti.contains("comune-beta"),
        "{enti}"
    );
    assert_eq!(get(&lines, "created"), "Casella creata.");
    let state = get(&lines, "created-state");
    assert!(
        state.contains("attiva") && state.contains("5 MiB"),
        "{state}"
    );

    let enti = get(&lines, "ente-enti");
    assert!(
        enti.contains("comune-beta") && !enti.contains("beta-spa"),
        "{enti}"
    );
    let mine: Vec<&str> = get(&lines, "ente-mailboxes").split('|').collect();
    assert!(
        mine.contains(&NUOVA) && mine.contains(&protocollo),
        "{mine:?}"
    );
    assert!(
        mine.iter().all(|a| a.ends_with("@pec.comune.beta.test")),
        "only its own domain: {mine:?}"
    );
    assert_eq!(get(&lines, "reset"), "Password reimpostata.");
    assert!(get(&lines, "suspended").contains("sospesa"));
    assert_eq!(get(&lines, "reactivated"), "Casella riattivata.");
    let refused = get(&lines, "quota-refused");
    assert!(
        refused.contains("assegnazione dell'ente comune-beta"),
        "{refused}"
    );
    assert_eq!(get(&lines, "other-status"), "403");
    assert!(get(&lines, "other-text").contains("non appartiene"));
    assert_eq!(get(&lines, "csv-enti"), "comune-beta");
    assert_eq!(get(&lines, "csv-name"), csv_name);

    // The reset password is the one IMAP takes.
    let ca = lab.ca();
    let imap = |password: &str| {
        run_python(
            IMAP_LOGIN,
            &[
                &beta.imaps_port.to_string(),
                &ca.to_string_lossy(),
                NUOVA,
                password,
            ],
            &[],
            b"",
        )
        .expect("imaplib")
        .trim()
        .to_string()
    };
    assert_eq!(imap("reimpostata-5678"), "OK");
    assert_eq!(imap("iniziale-1234"), "NO");

    // Who did what, in the legal log.
    let log = beta
        .store
        .search_log(&LogQuery {
            address: Some(NUOVA.into()),
            ..LogQuery::default()
        })
        .unwrap();
    let changes: Vec<(&str, &str)> = log
        .iter()
        .filter(|r| r.entry.event == "amministrazione")
        .map(|r| (r.entry.sender.as_str(), r.entry.detail.as_str()))
        .collect();
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert_eq!(changes[0].0, PROVINCE.0);
    assert!(
        changes[0].1.starts_with("casella creata, quota 5 MiB"),
        "{changes:?}"
    );
    assert!(
        changes[1..].iter().all(|(who, _)| *who == ENTE_ADMIN.0),
        "{changes:?}"
    );
    assert!(
        changes[1].1.starts_with("password reimpostata"),
        "{changes:?}"
    );
    lab.shutdown().await;
}

e2e_tests!(chromium_administers_an_ente);
