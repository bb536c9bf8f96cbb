//! Fixed inputs shared by the message tests: one transaction, one original, every notice.
#![allow(dead_code)]

use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use pec_proto::build::{self, Emission, Notice, Transaction};
use pec_proto::daticert::{Errore, TipoDestinatario, TipoRicevuta};
use pec_proto::original::Original;
use pec_proto::smime::{Digest, Signer};

/// A signer whose "signature" is a fixed string, so golden files pin our own bytes; it
/// remembers what it was asked to sign.
pub struct FakeSigner {
    pub signed: Mutex<Vec<Vec<u8>>>,
}

impl FakeSigner {
    pub fn new() -> FakeSigner {
        FakeSigner {
            signed: Mutex::new(Vec::new()),
        }
    }
}

impl Signer for FakeSigner {
    fn address(&self) -> &str {
        "posta-certificata@pec.alfa.test"
    }
    fn digest(&self) -> Digest {
        Digest::Sha256
    }
    fn sign_detached(&self, content: &[u8], _t: DateTime<Utc>) -> pec_proto::Result<Vec<u8>> {
        self.signed.lock().unwrap().push(content.to_vec());
        Ok(b"FAKE CMS SIGNATURE".to_vec())
    }
}

/// 10/03/2025 10:30:15 +0100, the running example of the spec.
pub fn time() -> DateTime<FixedOffset> {
    FixedOffset::east_opt(3600)
        .unwrap()
        .with_ymd_and_hms(2025, 3, 10, 10, 30, 15)
        .unwrap()
}

/// The original of the running example: To two PEC recipients and an ordinary one, Cc
/// one, an attachment, non-ASCII subject.
pub const ORIGINAL: &[u8] = b"Received: from client.example (client.example [192.0.2.1])\r\n\tby smtp.pec.alfa.test; Mon, 10 Mar 2025 10:30:14 +0100\r\n\
From: Mario Rossi <mario.rossi@pec.alfa.test>\r\n\
To: anna.bianchi@pec.beta.test, paolo@posta.ordinaria.test\r\n\
Cc: luca.verdi@pec.beta.test\r\n\
Subject: =?UTF-8?Q?Fattura_12/2025_citt=C3=A0?=\r\n\
Message-ID: <20250310.abc123@client.example>\r\n\
Date: Mon, 10 Mar 2025 10:30:00 +0100\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\
\r\n\
--XYZ\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
In allegato la fattura.\r\n\
--XYZ\r\n\
Content-Type: application/pdf; name=\"fattura.pdf\"\r\n\
Content-Disposition: attachment; filename=\"fattura.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK\r\n\
--XYZ--\r\n";

pub const PEC_MSGID: &str = "opec101.20250310103015.4711.1.1@pec.alfa.test";

pub fn classify_domain(addr: &str) -> TipoDestinatario {
    if addr.ends_with("@pec.beta.test") || addr.ends_with("@pec.alfa.test") {
        TipoDestinatario::Certificato
    } else {
        TipoDestinatario::Esterno
    }
}

pub fn transaction() -> Transaction {
    Transaction::from_original(&Original::parse(ORIGINAL), PEC_MSGID, classify_domain)
}

pub fn emission<'a>(signer: &'a dyn Signer, id: &'a str) -> Emission<'a> {
    Emission {
        signer,
        gestore: "Alfa PEC (lab)",
        time: time(),
        message_id: id,
        boundary: "0123456789abcdef",
    }
}

/// Every message kind the formats core builds: (name, expected kind, bytes).
pub fn all_messages(signer: &dyn Signer) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    all_messages_about(signer, &transaction(), ORDINARY)
}

/// [`all_messages`] about `tx` (for the envelope and the notices) and with `ordinary` in
/// the busta di anomalia.
pub fn all_messages_about(
    signer: &dyn Signer,
    tx: &Transaction,
    ordinary: &[u8],
) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let original = Original::parse(ORIGINAL);
    let postacert = original.with_pec_msgid(PEC_MSGID);
    let sender = "mario.rossi@pec.alfa.test";
    let anna = "anna.bianchi@pec.beta.test";
    let e = emission(signer, "opec101.20250310103015.4711.1.2@pec.alfa.test");
    let ricezione = vec![anna.to_string(), "luca.verdi@pec.beta.test".to_string()];
    let notices: Vec<(&str, &str, Notice<'_>, &str)> = vec![
        ("accettazione", "accettazione", Notice::Accettazione, sender),
        (
            "non-accettazione",
            "non-accettazione",
            Notice::NonAccettazione {
                reason: "Il mittente del messaggio non coincide con il mittente SMTP",
            },
            sender,
        ),
        (
            "non-accettazione-virus",
            "non-accettazione",
            Notice::NonAccettazioneVirus {
                virus: "Win.Test.EICAR_HDB-1",
            },
            sender,
        ),
        (
            "presa-in-carico",
            "presa-in-carico",
            Notice::PresaInCarico {
                ricezione: &ricezione,
            },
            "ricevute@pec.alfa.test",
        ),
        (
            "consegna-completa",
            "avvenuta-consegna",
            Notice::AvvenutaConsegna {
                recipient: anna,
                variant: TipoRicevuta::Completa,
                postacert: Some(&postacert),
            },
            sender,
        ),
        (
            "consegna-breve",
            "avvenuta-consegna",
            Notice::AvvenutaConsegna {
                recipient: anna,
                variant: TipoRicevuta::Breve,
                postacert: Some(&postacert),
            },
            sender,
        ),
        (
            "consegna-sintetica",
            "avvenuta-consegna",
            Notice::AvvenutaConsegna {
                recipient: anna,
                variant: TipoRicevuta::Sintetica,
                postacert: None,
            },
            sender,
        ),
        (
            "errore-consegna-no-dest",
            "errore-consegna",
            Notice::ErroreConsegna {
                recipient: anna,
                errore: Errore::NoDest,
                detail: "5.1.1 - Beta PEC (lab) - indirizzo non valido",
            },
            sender,
        ),
        (
            "errore-consegna-no-dominio",
            "errore-consegna",
            Notice::ErroreConsegna {
                recipient: anna,
                errore: Errore::NoDominio,
                detail: "5.1.2 - Beta PEC (lab) - dominio non valido",
            },
            sender,
        ),
        (
            "errore-consegna-altro",
            "errore-consegna",
            Notice::ErroreConsegna {
                recipient: anna,
                errore: Errore::Altro,
                detail: "5.2.2 - Beta PEC (lab) - casella piena",
            },
            sender,
        ),
        (
            "errore-consegna-virus",
            "errore-consegna",
            Notice::ErroreConsegnaVirus {
                recipient: anna,
                virus: "Win.Test.EICAR_HDB-1",
            },
            sender,
        ),
        (
            "preavviso-12h",
            "preavviso-errore-consegna",
            Notice::Preavviso12h { recipient: anna },
            sender,
        ),
        (
            "preavviso-24h",
            "preavviso-errore-consegna",
            Notice::Preavviso24h { recipient: anna },
            sender,
        ),
        (
            "rilevazione-virus",
            "rilevazione-virus",
            Notice::RilevazioneVirus {
                recipient: anna,
                virus: "Win.Test.EICAR_HDB-1",
            },
            "ricevute@pec.alfa.test",
        ),
    ];
    let mut out = vec![
        (
            "busta-trasporto",
            "posta-certificata",
            build::transport_envelope(&e, tx, &original).unwrap().bytes,
        ),
        (
            "busta-anomalia",
            "anomalia",
            build::anomaly_envelope(
                &e,
                ordinary,
                "paolo@posta.ordinaria.test",
                "Messaggio non firmato",
            )
            .unwrap(),
        ),
    ];
    for (name, kind, n, to) in notices {
        out.push((name, kind, build::notice(&e, tx, &n, to).unwrap()));
    }
    out
}

/// An ordinary message from the Internet.
pub const ORDINARY: &[u8] = b"Received: from mx.posta.ordinaria.test\r\n\
From: Paolo <paolo@posta.ordinaria.test>\r\n\
To: anna.bianchi@pec.beta.test\r\n\
Subject: Ciao\r\n\
Message-ID: <ord-1@posta.ordinaria.test>\r\n\
\r\n\
Testo ordinario.\r\n";

/// A real message of another gestore kept under `tests/fixtures/samples/`.
pub fn sample(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
