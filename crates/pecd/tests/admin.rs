//! `pecd domain` and `pecd mailbox` as an administrator runs them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn pecd(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pecd"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pecd");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The whitespace-separated words of each line of `text`.
fn words(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// A configuration with an embedded store in a new directory.
fn new_config(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("pecd.toml");
    std::fs::write(
        &config,
        "[gestore]\ndata_dir = \"state\"\ndefault_quota = \"2GiB\"\n",
    )
    .unwrap();
    config
}

#[test]
fn sizes_are_never_ambiguous_or_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = new_config(dir.path());
    let bad = pecd(
        &config,
        &["domain", "add", "pec.x.test", "--quota", "3G"],
        "",
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("3GiB") && err.contains("3GB"), "{err}");
    assert!(
        !pecd(
            &config,
            &["domain", "add", "pec.x.test", "--quota", "0"],
            ""
        )
        .status
        .success()
    );
    ok(&pecd(
        &config,
        &["domain", "add", "pec.x.test", "--quota", "1GB"],
        "",
    ));
    let add = |quota: &str| {
        pecd(
            &config,
            &[
                "mailbox",
                "add",
                "a@pec.x.test",
                "--password-stdin",
                "--quota",
                quota,
            ],
            "secret-aaaa\n",
        )
    };
    for quota in ["0", "0GiB", "2M"] {
        assert!(!add(quota).status.success(), "{quota}");
    }
    ok(&add("500MiB"));
    let set = |quota: &str| {
        pecd(
            &config,
            &["mailbox", "set", "a@pec.x.test", "--quota", quota],
            "",
        )
    };
    assert!(!set("0").status.success());
    assert!(ok(&set("1536MiB")).contains("1.5 GiB"));
    let list = ok(&pecd(&config, &["mailbox", "list"], ""));
    assert_eq!(
        words(&list)[1],
        ["a@pec.x.test", "0", "B", "1.5", "GiB", "active"]
    );

    ok(&pecd(&config, &["mailbox", "suspend", "a@pec.x.test"], ""));
    let list = ok(&pecd(&config, &["mailbox", "list"], ""));
    assert_eq!(words(&list)[1][5], "suspended", "{list}");
}

#[test]
fn enti_their_admins_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let config = new_config(dir.path());
    ok(&pecd(&config, &["domain", "add", "pec.comune-a.test"], ""));
    ok(&pecd(&config, &["domain", "add", "pec.comune-b.test"], ""));
    ok(&pecd(
        &config,
        &[
            "ente",
            "add",
            "comune-a",
            "--domain",
            "pec.comune-a.test",
            "--allotment",
            "5GiB",
        ],
        "",
    ));
    // A domain not hosted, and one owned already, are refused.
    for domain in ["pec.altro.test", "pec.comune-a.test"] {
        let bad = pecd(
            &config,
            &[
                "ente",
                "add",
                "comune-c",
                "--domain",
                domain,
                "--allotment",
                "1GiB",
            ],
            "",
        );
        assert!(!bad.status.success(), "{domain}");
    }
    let list = ok(&pecd(&config, &["ente", "list"], ""));
    assert_eq!(
        words(&list),
        [
            vec!["ENTE", "ALLOTMENT", "DOMAINS"],
            vec!["comune-a", "5", "GiB", "pec.comune-a.test"],
        ],
        "{list}"
    );
    ok(&pecd(
        &config,
        &[
            "ente",
            "admin",
            "add",
            "comune-a",
            "admin@pec.comune-a.test",
            "--password-stdin",
        ],
        "segreto-admin\n",
    ));
    assert!(
        !pecd(
            &config,
            &[
                "ente",
                "admin",
                "add",
                "comune-z",
                "x@pec.comune-a.test",
                "--password-stdin"
            ],
            "segreto-admin\n",
        )
        .status
        .success(),
        "no such ente"
    );
    ok(&pecd(
        &config,
        &[
            "admin",
            "add",
            "provincia@pec.comune-b.test",
            "--password-stdin",
        ],
        "segreto-provincia\n",
    ));
    // Over the ente's allotment: refused by the same rule as the API's.
    let bad = pecd(
        &config,
        &[
            "mailbox",
            "add",
            "a@pec.comune-a.test",
            "--password-stdin",
            "--quota",
            "6GiB",
        ],
        "segreto-aaaa\n",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("assegnazione"));
    ok(&pecd(
        &config,
        &[
            "mailbox",
            "add",
            "a@pec.comune-a.test",
            "--password-stdin",
            "--quota",
            "1GiB",
        ],
        "segreto-aaaa\n",
    ));
    ok(&pecd(
        &config,
        &["mailbox", "add", "b@pec.comune-b.test", "--password-stdin"],
        "segreto-bbbb\n",
    ));
    let csv = ok(&pecd(&config, &["ente", "usage", "--csv"], ""));
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows,
        [
            vec![
                "ente",
                "casella",
                "giorni_casella",
                "inviati",
                "ricevuti",
                "spazio_byte"
            ],
            vec!["", "b@pec.comune-b.test", "1", "0", "0", "0"],
            vec!["comune-a", "a@pec.comune-a.test", "1", "0", "0", "0"],
            vec!["", "", "1", "0", "0", "0"],
            vec!["comune-a", "", "1", "0", "0", "0"],
        ],
        "{csv}"
    );
    let one = ok(&pecd(&config, &["ente", "usage", "comune-a"], ""));
    assert!(
        one.contains("comune-a: 1 mailboxes") && !one.contains("b@pec"),
        "{one}"
    );
    // Every change is in the legal log, naming the command that made it.
    let log = ok(&pecd(
        &config,
        &["log", "search", "--address", "a@pec.comune-a.test"],
        "",
    ));
    assert!(
        log.contains("amministrazione") && log.contains("pecd mailbox add"),
        "{log}"
    );
}

#[test]
fn domains_and_mailboxes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pecd.toml");
    std::fs::write(
        &config,
        "[gestore]\ndata_dir = \"state\"\ndefault_quota = \"2GiB\"\n",
    )
    .unwrap();

    ok(&pecd(&config, &["domain", "add", "PEC.Comune.Test"], ""));
    ok(&pecd(
        &config,
        &["domain", "add", "pec.provincia.test", "--quota", "3GiB"],
        "",
    ));
    let list = ok(&pecd(&config, &["domain", "list"], ""));
    assert_eq!(
        words(&list),
        [
            vec!["DOMAIN", "DEFAULT", "QUOTA"],
            vec!["pec.comune.test", "2", "GiB"],
            vec!["pec.provincia.test", "3", "GiB"],
        ],
        "{list}"
    );

    ok(&pecd(
        &config,
        &[
            "mailbox",
            "add",
            "protocollo@pec.comune.test",
            "--password-stdin",
        ],
        "secret-protocollo\n",
    ));
    ok(&pecd(
        &config,
        &[
            "mailbox",
            "add",
            "urp@pec.provincia.test",
            "--password-stdin",
            "--quota",
            "1MiB",
        ],
        "secret-urp-1234\n",
    ));
    let list = ok(&pecd(&config, &["mailbox", "list"], ""));
    assert_eq!(
        words(&list),
        [
            vec!["MAILBOX", "USED", "QUOTA", "STATE"],
            vec!["protocollo@pec.comune.test", "0", "B", "2", "GiB", "active"],
            vec!["urp@pec.provincia.test", "0", "B", "1", "MiB", "active"],
        ],
        "{list}"
    );

    // The password is stored as an argon2id hash, never in clear.
    let db = std::fs::read(dir.path().join("state/store.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(text.contains("$argon2id$"), "argon2 hash stored");
    assert!(!text.contains("secret-protocollo"), "password in clear");

    // Refusals: unknown domain, short password, duplicate, removing a domain in use.
    let bad = pecd(
        &config,
        &["mailbox", "add", "x@pec.altro.test", "--password-stdin"],
        "secret-xxxx\n",
    );
    assert!(!bad.status.success());
    let bad = pecd(
        &config,
        &["mailbox", "add", "y@pec.comune.test", "--password-stdin"],
        "short\n",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at least 8"));
    let bad = pecd(
        &config,
        &[
            "mailbox",
            "add",
            "protocollo@pec.comune.test",
            "--password-stdin",
        ],
        "secret-again\n",
    );
    assert!(!bad.status.success());
    assert!(
        !pecd(&config, &["domain", "remove", "pec.comune.test"], "")
            .status
            .success()
    );

    ok(&pecd(
        &config,
        &[
            "mailbox",
            "passwd",
            "protocollo@pec.comune.test",
            "--password-stdin",
        ],
        "another-secret\n",
    ));
    // Destructive commands: refused without --yes when nobody can be asked.
    let bad = pecd(
        &config,
        &["mailbox", "remove", "protocollo@pec.comune.test"],
        "protocollo@pec.comune.test\n",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--yes"));
    ok(&pecd(
        &config,
        &["mailbox", "remove", "protocollo@pec.comune.test", "--yes"],
        "",
    ));
    assert!(
        !pecd(&config, &["domain", "remove", "pec.comune.test"], "")
            .status
            .success()
    );
    ok(&pecd(
        &config,
        &["domain", "remove", "pec.comune.test", "--yes"],
        "",
    ));
    let list = ok(&pecd(&config, &["domain", "list"], ""));
    assert!(!list.contains("pec.comune.test"), "{list}");

    // A configuration with a typo is a clear error.
    std::fs::write(
        &config,
        "[gestore]\ndata_dir = \"state\"\ndefault_qouta = \"1GiB\"\n",
    )
    .unwrap();
    let bad = pecd(&config, &["domain", "list"], "");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("default_qouta"));
}

#[test]
fn store_migrate_copies_the_embedded_store_into_postgres() {
    use pec_store::test_util::{contents, populate, shared_server};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let sqlite = pec_store::SqliteStore::open(&state).unwrap();
    populate(&sqlite);
    let before = contents(&sqlite);
    drop(sqlite);
    let embedded = dir.path().join("embedded.toml");
    std::fs::write(&embedded, "[gestore]\ndata_dir = \"state\"\n").unwrap();
    let url = shared_server().database();
    let postgres = dir.path().join("postgres.toml");
    std::fs::write(
        &postgres,
        format!("[gestore]\ndata_dir = \"node1\"\n[store]\nurl = \"{url}\"\n"),
    )
    .unwrap();

    let out = ok(&pecd(&embedded, &["store", "migrate", "--to", &url], ""));
    assert!(out.contains("accounts\t3\n"), "{out}");
    assert!(out.contains("legal_log\t2\n"), "{out}");
    let check = ok(&pecd(&postgres, &["store", "check"], ""));
    assert!(check.contains("store OK"), "{check}");
    let verify = ok(&pecd(&postgres, &["log", "verify"], ""));
    assert!(verify.contains("log intact: 2 records checked"), "{verify}");
    assert_eq!(
        ok(&pecd(&postgres, &["mailbox", "list"], "")),
        ok(&pecd(&embedded, &["mailbox", "list"], ""))
    );
    let pg = pec_store::PgStore::open(&pec_store::PgOptions::new(&url)).unwrap();
    assert_eq!(contents(&pg), before);

    // Twice is refused, as is a configuration that is PostgreSQL already.
    let again = pecd(&embedded, &["store", "migrate", "--to", &url], "");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let from_pg = pecd(&postgres, &["store", "migrate", "--to", &url], "");
    assert!(!from_pg.status.success());
}

#[test]
fn security_archive_options() {
    let dir = tempfile::tempdir().unwrap();
    let config = new_config(dir.path());
    ok(&pecd(&config, &["domain", "add", "pec.comune.test"], ""));
    ok(&pecd(
        &config,
        &[
            "mailbox",
            "add",
            "protocollo@pec.comune.test",
            "--password-stdin",
        ],
        "secret-protocollo\n",
    ));
    let shown = ok(&pecd(
        &config,
        &["mailbox", "archive", "protocollo@pec.comune.test"],
        "",
    ));
    assert!(
        shown.contains("scope tutto, sent on, received on, quota 6 GiB, used 0 B"),
        "the default: everything, 6 GiB: {shown}"
    );
    let set = ok(&pecd(
        &config,
        &[
            "mailbox",
            "archive",
            "protocollo@pec.comune.test",
            "--scope",
            "pec",
            "--sent",
            "off",
            "--quota",
            "500MiB",
        ],
        "",
    ));
    assert!(
        set.contains("scope pec, sent off, received on, quota 500 MiB"),
        "{set}"
    );
    // Kept: shown again unchanged.
    let shown = ok(&pecd(
        &config,
        &["mailbox", "archive", "protocollo@pec.comune.test"],
        "",
    ));
    assert!(
        shown.contains("scope pec, sent off, received on, quota 500 MiB"),
        "{shown}"
    );
    for bad in [
        vec!["--quota", "0"],
        vec!["--quota", "3G"],
        vec!["--scope", "qualcosa"],
    ] {
        let mut args = vec!["mailbox", "archive", "protocollo@pec.comune.test"];
        args.extend(bad.iter());
        assert!(!pecd(&config, &args, "").status.success(), "{bad:?}");
    }
    assert!(
        !pecd(
            &config,
            &[
                "mailbox",
                "archive",
                "nessuno@pec.comune.test",
                "--scope",
                "pec"
            ],
            ""
        )
        .status
        .success()
    );
    // The change is in the legal log, with who made it.
    let log = ok(&pecd(
        &config,
        &[
            "log",
            "search",
            "--address",
            "protocollo@pec.comune.test",
            "--format",
            "jsonl",
        ],
        "",
    ));
    assert!(
        log.contains(
            "archivio di sicurezza: conserva solo PEC, inviati no, ricevuti sì, quota 500 MiB"
        ),
        "{log}"
    );
    assert!(log.contains("pecd mailbox archive"), "{log}");
}
