//! `pecd inspect`: what a message is, for a human or a script; its exit status says
//! whether the signature holds ([`EXIT_STATUS`]), so a script can reject a tampered message.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use pec_proto::classify::{Classified, classify};
use pec_proto::daticert::Daticert;
use pec_proto::index::ProviderIndex;
use pec_proto::smime::{SignatureReport, Trust, TrustAnchors, trust};
use serde_json::{Value, json};

/// What `--help` says about the exit status of `pecd inspect`.
pub const EXIT_STATUS: &str = "\
Exit status (the report is printed in every case but 1 and 2):
  0  signed, the signature is intact and, with --index, by a trusted gestore
  1  error: the file cannot be read or is not an e-mail message
  2  wrong arguments
  3  the signature is NOT intact (the message was altered) or cannot be checked
  4  the signature is intact but its signer is not a trusted gestore (with --index)
  5  not signed";

/// The verdict on a message's signature, as `pecd inspect` exits with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Signed, intact and (when an index was given) by a trusted gestore: 0.
    Good = 0,
    /// The signature does not verify: 3.
    NotIntact = 3,
    /// Intact, but the signer is not a trusted gestore of the index given: 4.
    NotTrusted = 4,
    /// No signature at all: 5.
    Unsigned = 5,
}

impl Verdict {
    /// The verdict for a signature `report` (`None`: unsigned) and, when an index was
    /// given, the signer's `trust`.
    pub fn of(report: Option<&SignatureReport>, trust: Option<&Trust>) -> Verdict {
        match (report, trust) {
            (None, _) => Verdict::Unsigned,
            (Some(r), _) if !r.intact => Verdict::NotIntact,
            (Some(_), Some(t)) if !t.trusted => Verdict::NotTrusted,
            (Some(_), _) => Verdict::Good,
        }
    }
}

/// Arguments of `pecd inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The message file (.eml), as received or stored.
    file: PathBuf,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
    /// Provider index (LDIF): decide whether the signer is a trusted gestore.
    #[arg(long, value_name = "LDIF")]
    index: Option<PathBuf>,
    /// PEM bundle of the CAs gestore certificates must chain to (with --index).
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
}

/// Runs `pecd inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let raw = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let index = match &args.index {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            Some(ProviderIndex::parse_ldif(&bytes).with_context(|| p.display().to_string())?)
        }
        None => None,
    };
    let anchors = match &args.ca {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            Some(TrustAnchors::from_pem(&bytes).with_context(|| p.display().to_string())?)
        }
        None => None,
    };
    if pec_proto::mime::split_header(&raw).0.is_empty() {
        anyhow::bail!(
            "{} is not an e-mail message (no header fields)",
            args.file.display()
        );
    }
    let c = classify(&raw);
    let report = c.verify_signature();
    let trusted = match (&index, &report) {
        (Some(index), Some(r)) => Some(match &r.signer {
            Some(s) => trust(&s.der, &s.chain, index, anchors.as_ref(), Utc::now()),
            None => Trust {
                trusted: false,
                provider: None,
                problem: Some("the signature carries no signer certificate".into()),
            },
        }),
        _ => None,
    };
    let verdict = Verdict::of(report.as_ref(), trusted.as_ref());
    let doc = to_json(&c, report.as_ref(), trusted.as_ref(), index.is_some());
    let text = if args.json {
        serde_json::to_string_pretty(&doc)? + "\n"
    } else {
        summary(&c, report.as_ref(), trusted.as_ref())
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // The reader went away (e.g. `| head`): the verdict is still the answer.
        Ok(()) => Ok(ExitCode::from(verdict as u8)),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::from(verdict as u8)),
        Err(e) => Err(e).context("cannot write to standard output"),
    }
}

fn daticert_json(d: &Daticert) -> Value {
    json!({
        "tipo": d.tipo.as_str(),
        "errore": d.errore.as_str(),
        "mittente": d.mittente,
        "destinatari": d.destinatari.iter().map(|x| json!({
            "indirizzo": x.indirizzo,
            "tipo": x.tipo.as_str(),
        })).collect::<Vec<_>>(),
        "risposte": d.risposte,
        "oggetto": d.oggetto,
        "gestore_emittente": d.gestore_emittente,
        "data": d.data.to_datetime().map_or_else(
            || format!("{} {} {}", d.data.giorno, d.data.ora, d.data.zona),
            |t| t.to_rfc3339(),
        ),
        "identificativo": d.identificativo,
        "msgid": d.msgid,
        "ricevuta": d.ricevuta.map(|r| r.as_str()),
        "consegna": d.consegna,
        "ricezione": d.ricezione,
        "errore_esteso": d.errore_esteso,
    })
}

fn to_json(
    c: &Classified,
    report: Option<&SignatureReport>,
    trusted: Option<&Trust>,
    index_given: bool,
) -> Value {
    let h = &c.headers;
    let signature = report.map(|r| {
        json!({
            "present": true,
            "intact": r.intact,
            "digest": r.digest.map(|d| d.name()),
            "signer": r.signer.as_ref().map(|s| s.subject.clone()),
            "signer_email": r.signer.as_ref().and_then(|s| s.email.clone()),
            "signer_sha1": r.signer.as_ref().map(|s| s.sha1_hex.clone()),
            "signing_time": r.signing_time.map(|t| t.to_rfc3339()),
            "trusted": if index_given { trusted.map(|t| t.trusted) } else { None },
            "provider": trusted.and_then(|t| t.provider.clone()),
            "problem": r.problem.clone().or_else(|| trusted.and_then(|t| t.problem.clone())),
        })
    });
    json!({
        "kind": c.kind.as_str(),
        "consegna_variant": c.consegna_variant.map(|v| v.as_str()),
        "headers": {
            "x_trasporto": h.trasporto,
            "x_ricevuta": h.ricevuta,
            "x_verifica_sicurezza": h.verifica_sicurezza,
            "x_tipo_ricevuta": h.tipo_ricevuta,
            "x_riferimento_message_id": h.riferimento_message_id,
            "x_mittente": h.mittente,
            "subject": h.subject,
            "from": h.from,
            "to": h.to,
            "date": h.date,
            "message_id": h.message_id,
        },
        "daticert": c.daticert.as_ref().map(daticert_json),
        "postacert_bytes": c.postacert.as_ref().map(Vec::len),
        "signature": signature,
        "problems": c.problems,
    })
}

fn summary(c: &Classified, report: Option<&SignatureReport>, trusted: Option<&Trust>) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<22}{v}\n"));
    let kind = match c.consegna_variant {
        Some(v) => format!("{} ({})", c.kind.as_str(), v.as_str()),
        None => c.kind.as_str().to_string(),
    };
    line("Kind:", &kind);
    let h = &c.headers;
    for (name, value) in [
        ("Subject:", &h.subject),
        ("From:", &h.from),
        ("To:", &h.to),
        ("Date:", &h.date),
        ("Message-ID:", &h.message_id),
        ("X-Trasporto:", &h.trasporto),
        ("X-Ricevuta:", &h.ricevuta),
        ("X-VerificaSicurezza:", &h.verifica_sicurezza),
        ("X-TipoRicevuta:", &h.tipo_ricevuta),
        ("X-Riferimento-Msg-ID:", &h.riferimento_message_id),
        ("X-Mittente:", &h.mittente),
    ] {
        if let Some(v) = value {
            line(name, v);
        }
    }
    match &c.daticert {
        Some(d) => {
            line(
                "daticert.xml:",
                &format!("tipo={} errore={}", d.tipo.as_str(), d.errore.as_str()),
            );
            line("  mittente:", &d.mittente);
            for x in &d.destinatari {
                line(
                    "  destinatario:",
                    &format!("{} ({})", x.indirizzo, x.tipo.as_str()),
                );
            }
            line("  oggetto:", d.oggetto.as_deref().unwrap_or(""));
            line("  gestore:", &d.gestore_emittente);
            line(
                "  data:",
                &format!("{} {} {}", d.data.giorno, d.data.ora, d.data.zona),
            );
            line("  identificativo:", &d.identificativo);
            for (k, v) in [
                ("  msgid:", d.msgid.as_deref()),
                ("  ricevuta:", d.ricevuta.map(|r| r.as_str())),
                ("  consegna:", d.consegna.as_deref()),
                ("  errore-esteso:", d.errore_esteso.as_deref()),
            ] {
                if let Some(v) = v {
                    line(k, v);
                }
            }
            for r in &d.ricezione {
                line("  ricezione:", r);
            }
        }
        None => line("daticert.xml:", "none"),
    }
    if let Some(p) = &c.postacert {
        line("postacert.eml:", &format!("{} bytes", p.len()));
    }
    match report {
        None => line("Signature:", "none"),
        Some(r) => {
            let verdict = if r.intact { "intact" } else { "NOT INTACT" };
            let digest = r.digest.map_or("?", |d| d.name());
            line("Signature:", &format!("{verdict}, {digest}"));
            if let Some(s) = &r.signer {
                line("  signer:", &s.subject);
                line("  signer e-mail:", s.email.as_deref().unwrap_or("none"));
            }
            if let Some(t) = r.signing_time {
                line("  signing time:", &t.to_rfc3339());
            }
            if let Some(p) = &r.problem {
                line("  problem:", p);
            }
            if let Some(t) = trusted {
                let v = match (&t.provider, t.trusted) {
                    (Some(p), true) => format!("yes ({p})"),
                    _ => format!("no ({})", t.problem.as_deref().unwrap_or("unknown signer")),
                };
                line("  trusted gestore:", &v);
            }
        }
    }
    for p in &c.problems {
        line("Problem:", p);
    }
    out
}
