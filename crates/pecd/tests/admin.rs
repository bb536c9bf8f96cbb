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
    assert!(
        list.contains(&format!("pec.comune.test\t{}", 2u64 << 30)),
        "{list}"
    );
    assert!(
        list.contains(&format!("pec.provincia.test\t{}", 3u64 << 30)),
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
    assert!(
        list.contains(&format!("protocollo@pec.comune.test\t0\t{}", 2u64 << 30)),
        "{list}"
    );
    assert!(
        list.contains("urp@pec.provincia.test\t0\t1048576"),
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
    ok(&pecd(
        &config,
        &["mailbox", "remove", "protocollo@pec.comune.test"],
        "",
    ));
    ok(&pecd(&config, &["domain", "remove", "pec.comune.test"], ""));
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
