//! `docs/openapi.yaml`, the administration API's document, is valid OpenAPI 3.0 by an
//! independent judge: openapi-spec-validator (pinned), installed with pip into a
//! private virtual environment; and it documents every route the API serves.

use std::path::Path;
use std::process::Command;

/// The validator's version: pinned, so a new release cannot change the verdict.
const VALIDATOR: &str = "openapi-spec-validator==0.7.1";

/// Every route of `pec_gestore::admin::api` (method, path under `/api/v1`).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/enti"),
    ("post", "/enti"),
    ("post", "/enti/{ente}/admins"),
    ("get", "/mailboxes"),
    ("post", "/mailboxes"),
    ("delete", "/mailboxes/{address}"),
    ("put", "/mailboxes/{address}/password"),
    ("put", "/mailboxes/{address}/quota"),
    ("post", "/mailboxes/{address}/suspend"),
    ("post", "/mailboxes/{address}/reactivate"),
    ("get", "/mailboxes/{address}/archive"),
    ("put", "/mailboxes/{address}/archive"),
    ("get", "/usage"),
    ("get", "/events"),
    ("put", "/events/{id}/protocol"),
    ("get", "/tokens"),
    ("post", "/tokens"),
    ("delete", "/tokens/{name}"),
];

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_openapi_document_is_valid_and_complete() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.yaml");
    let venv = tempfile::tempdir().unwrap();
    run(Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(venv.path()));
    let bin = venv.path().join("bin");
    run(Command::new(bin.join("pip")).args(["install", "-q", VALIDATOR]));
    let verdict = run(Command::new(bin.join("openapi-spec-validator")).arg(&doc));
    assert!(verdict.trim().ends_with("OK"), "{verdict}");

    let listed = run(Command::new(bin.join("python"))
        .arg("-c")
        .arg(
            "import sys, yaml\n\
         doc = yaml.safe_load(open(sys.argv[1]))\n\
         for path, item in doc['paths'].items():\n    \
             for method in item:\n        \
                 if method != 'parameters':\n            \
                     print(method, path)\n",
        )
        .arg(&doc));
    let mut documented: Vec<&str> = listed.lines().collect();
    documented.sort_unstable();
    let mut served: Vec<String> = ROUTES.iter().map(|(m, p)| format!("{m} {p}")).collect();
    served.sort_unstable();
    assert_eq!(documented, served);
}
