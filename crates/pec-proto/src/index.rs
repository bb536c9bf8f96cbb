//! The provider index (Indice dei gestori di PEC, spec §9): read and write its LDIF,
//! look up providers by managed domain and by certificate hash, case-insensitively.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::{Error, Result};

/// The largest index accepted, far above the real one (a few hundred records).
pub const MAX_LDIF_BYTES: usize = 64 * 1024 * 1024;

/// Base DN of the index (spec §9.2).
pub const BASE_DN: &str = "o=postacert";

/// Lines are folded at this many columns when writing (RFC 2849 recommends 76).
const FOLD_AT: usize = 76;

/// Standard base64, padding optional on input, written with padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One provider record (`objectClass: provider`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Provider {
    /// `providerName`.
    pub name: String,
    /// `providerUnit`, for a secondary operating environment.
    pub unit: Option<String>,
    /// `providerCertificateHash` values (hex SHA-1, as written).
    pub certificate_hashes: Vec<String>,
    /// `providerCertificate;binary` values (DER).
    pub certificates: Vec<Vec<u8>>,
    /// `mailReceipt`: the service mailbox for presa in carico and rilevazione virus.
    pub mail_receipt: String,
    /// `managedDomains`.
    pub managed_domains: Vec<String>,
    /// `LDIFLocationURL`.
    pub ldif_location_url: Option<String>,
    /// `description`.
    pub description: Option<String>,
}

/// The whole index: every provider record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderIndex {
    /// The records, in file order.
    pub providers: Vec<Provider>,
}

impl ProviderIndex {
    /// Reads an LDIF file (RFC 2849): folded lines, `::` base64 values, comments,
    /// `version: 1`, CRLF or LF, attribute names and `objectClass` values in any case;
    /// entries that are not providers are skipped.
    ///
    /// The index decides who is a gestore, so anything doubtful is an error rather than a
    /// guess: bad base64, a line that is not `attr: value`, change records, a provider
    /// without `providerName` or `mailReceipt` (the error names the DN).
    pub fn parse_ldif(input: &[u8]) -> Result<ProviderIndex> {
        if input.len() > MAX_LDIF_BYTES {
            return Err(Error::Index(format!(
                "LDIF of {} bytes is larger than the {MAX_LDIF_BYTES} bytes accepted",
                input.len()
            )));
        }
        let text = std::str::from_utf8(input)
            .map_err(|e| Error::Index(format!("LDIF is not UTF-8: {e}")))?;
        let mut providers = Vec::new();
        let mut first = true;
        for record in records(text) {
            let mut lines = record.lines.as_slice();
            if first {
                first = false;
                if let Some((n, l)) = lines.first()
                    && let Some(version) = l
                        .get(..8)
                        .filter(|p| p.eq_ignore_ascii_case("version:"))
                        .and_then(|_| l.get(8..))
                {
                    if version.trim() != "1" {
                        return Err(Error::Index(format!("line {n}: unsupported LDIF {l:?}")));
                    }
                    lines = &lines[1..];
                }
            }
            if lines.is_empty() {
                continue;
            }
            let entry = Entry::parse(lines)?;
            if entry.values("objectclass").any(|v| {
                String::from_utf8_lossy(v)
                    .trim()
                    .eq_ignore_ascii_case("provider")
            }) {
                providers.push(entry.into_provider()?);
            }
        }
        Ok(ProviderIndex { providers })
    }

    /// Writes the index as LDIF, with the `o=postacert` root entry first, then one entry
    /// per provider (`providerName=<name>,o=postacert`, or with `providerUnit=` in front).
    /// Certificates and values that are not LDIF-safe are base64; lines are folded at 76
    /// columns.
    pub fn to_ldif(&self) -> String {
        let mut out = String::new();
        write_line(&mut out, "dn", BASE_DN.as_bytes());
        write_line(&mut out, "objectclass", b"top");
        write_line(&mut out, "objectclass", b"organization");
        write_line(&mut out, "o", b"postacert");
        for p in &self.providers {
            out.push('\n');
            let mut dn = format!("providerName={},{BASE_DN}", escape_rdn_value(&p.name));
            if let Some(unit) = &p.unit {
                dn = format!("providerUnit={},{dn}", escape_rdn_value(unit));
            }
            write_line(&mut out, "dn", dn.as_bytes());
            write_line(&mut out, "objectclass", b"top");
            write_line(&mut out, "objectclass", b"provider");
            write_line(&mut out, "providerName", p.name.as_bytes());
            if let Some(unit) = &p.unit {
                write_line(&mut out, "providerUnit", unit.as_bytes());
            }
            for h in &p.certificate_hashes {
                write_line(&mut out, "providerCertificateHash", h.as_bytes());
            }
            for c in &p.certificates {
                write_base64(&mut out, "providerCertificate;binary", c);
            }
            write_line(&mut out, "mailReceipt", p.mail_receipt.as_bytes());
            if let Some(url) = &p.ldif_location_url {
                write_line(&mut out, "LDIFLocationURL", url.as_bytes());
            }
            for d in &p.managed_domains {
                write_line(&mut out, "managedDomains", d.as_bytes());
            }
            if let Some(d) = &p.description {
                write_line(&mut out, "description", d.as_bytes());
            }
        }
        out
    }

    /// The provider managing `domain` (case-insensitive), if any.
    pub fn by_domain(&self, domain: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| {
            p.managed_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain.trim()))
        })
    }

    /// The provider one of whose certificate hashes is `sha1_hex` (case-insensitive).
    pub fn by_certificate_hash(&self, sha1_hex: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| {
            p.certificate_hashes
                .iter()
                .any(|h| h.trim().eq_ignore_ascii_case(sha1_hex.trim()))
        })
    }

    /// Whether `address` (or a bare domain) is in a PEC domain.
    pub fn is_certified(&self, address: &str) -> bool {
        let domain = address.rsplit('@').next().unwrap_or(address);
        self.by_domain(domain).is_some()
    }
}

/// One record of the file: its logical (unfolded) lines with their starting line numbers.
struct Record {
    lines: Vec<(usize, String)>,
}

/// Splits LDIF text into records: unfolds continuation lines, drops comments, splits at
/// blank lines.
fn records(text: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut lines: Vec<(usize, String)> = Vec::new();
    // Whether the logical line being built is a comment (its continuations are too).
    let mut in_comment = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = line.strip_prefix(' ') {
            if in_comment {
                continue;
            }
            if let Some((_, last)) = lines.last_mut() {
                last.push_str(cont);
                continue;
            }
            // A continuation with nothing to continue: keep it, so that it is reported.
            lines.push((i + 1, line.to_owned()));
            continue;
        }
        in_comment = false;
        if line.is_empty() {
            if !lines.is_empty() {
                out.push(Record {
                    lines: std::mem::take(&mut lines),
                });
            }
            continue;
        }
        if line.starts_with('#') {
            in_comment = true;
            continue;
        }
        lines.push((i + 1, line.to_owned()));
    }
    if !lines.is_empty() {
        out.push(Record { lines });
    }
    out
}

/// One parsed entry: its DN and attributes (lower-case name without options, raw value).
struct Entry {
    dn: String,
    attrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    fn parse(lines: &[(usize, String)]) -> Result<Entry> {
        let mut attrs = Vec::with_capacity(lines.len());
        for (n, line) in lines {
            attrs.push(parse_attr_line(*n, line)?);
        }
        let Some(((first_name, dn), rest)) = attrs.split_first() else {
            return Err(Error::Index("empty entry".into()));
        };
        if first_name != "dn" {
            return Err(Error::Index(format!(
                "line {}: an entry must start with dn:",
                lines[0].0
            )));
        }
        let dn = String::from_utf8(dn.clone())
            .map_err(|_| Error::Index(format!("line {}: dn is not UTF-8", lines[0].0)))?;
        if let Some((name, _)) = rest
            .iter()
            .find(|(name, _)| name == "changetype" || name == "dn")
        {
            return Err(Error::Index(format!(
                "entry {dn:?}: unexpected {name}: (LDIF change records are not supported)"
            )));
        }
        Ok(Entry {
            dn,
            attrs: rest.to_vec(),
        })
    }

    /// Values of attribute `name` (lower case).
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        self.attrs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Values of a text attribute, which must be UTF-8.
    fn texts(&self, name: &str) -> Result<Vec<String>> {
        self.values(&name.to_ascii_lowercase())
            .map(|v| {
                String::from_utf8(v.clone())
                    .map_err(|_| Error::Index(format!("entry {:?}: {name} is not UTF-8", self.dn)))
            })
            .collect()
    }

    /// A single-valued text attribute: absent, or exactly once.
    fn single(&self, name: &str) -> Result<Option<String>> {
        let mut v = self.texts(name)?;
        if v.len() > 1 {
            return Err(Error::Index(format!(
                "entry {:?}: {name} given {} times",
                self.dn,
                v.len()
            )));
        }
        Ok(v.pop())
    }

    fn into_provider(self) -> Result<Provider> {
        let missing = |attr: &str| Error::Index(format!("provider {:?}: no {attr}", self.dn));
        let name = self
            .single("providerName")?
            .ok_or_else(|| missing("providerName"))?;
        let mail_receipt = self
            .single("mailReceipt")?
            .ok_or_else(|| missing("mailReceipt"))?;
        let unit = match self.single("providerUnit")? {
            Some(u) => Some(u),
            None => unit_from_dn(&self.dn),
        };
        let certificate_hashes = self.texts("providerCertificateHash")?;
        let certificates = self.values("providercertificate").cloned().collect();
        let managed_domains = self.texts("managedDomains")?;
        let ldif_location_url = self.texts("LDIFLocationURL")?.into_iter().next();
        let description = self.texts("description")?.into_iter().next();
        Ok(Provider {
            name,
            unit,
            certificate_hashes,
            certificates,
            mail_receipt,
            managed_domains,
            ldif_location_url,
            description,
        })
    }
}

/// Parses `attr[;options]: value`, `attr[;options]:: base64`; refuses `:<` URLs.
fn parse_attr_line(n: usize, line: &str) -> Result<(String, Vec<u8>)> {
    let Some((desc, rest)) = line.split_once(':') else {
        return Err(Error::Index(format!(
            "line {n}: not an attribute line: {}",
            shorten(line)
        )));
    };
    let name = desc.split(';').next().unwrap_or(desc).trim();
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !name_ok {
        return Err(Error::Index(format!(
            "line {n}: bad attribute name {}",
            shorten(desc)
        )));
    }
    let name = name.to_ascii_lowercase();
    if let Some(b64) = rest.strip_prefix(':') {
        let clean: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let value = B64
            .decode(clean.as_bytes())
            .map_err(|e| Error::Index(format!("line {n}: bad base64 in {name}: {e}")))?;
        Ok((name, value))
    } else if rest.starts_with('<') {
        Err(Error::Index(format!(
            "line {n}: URL values (:<) are not supported"
        )))
    } else {
        Ok((name, rest.trim_start_matches(' ').as_bytes().to_vec()))
    }
}

fn shorten(s: &str) -> String {
    let short: String = s.chars().take(60).collect();
    format!("{short:?}")
}

/// `providerUnit` from a DN like `providerUnit=X,providerName=Y,o=postacert`.
fn unit_from_dn(dn: &str) -> Option<String> {
    let (attr, value) = first_rdn(dn)?;
    attr.trim()
        .eq_ignore_ascii_case("providerUnit")
        .then_some(value)
}

/// The first RDN of a DN (RFC 4514), value unescaped; `None` if it is not `attr=value`.
fn first_rdn(dn: &str) -> Option<(String, String)> {
    let (attr, rest) = dn.split_once('=')?;
    let mut value = Vec::new();
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b',' | b'+' => break,
            b'\\' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(b) = hex {
                    value.push(b);
                    i += 3;
                } else {
                    value.push(*bytes.get(i + 1)?);
                    i += 2;
                }
            }
            b => {
                value.push(b);
                i += 1;
            }
        }
    }
    let value = String::from_utf8(value).ok()?;
    Some((attr.to_owned(), value.trim().to_owned()))
}

/// Escapes an attribute value for a DN (RFC 4514 §2.4).
fn escape_rdn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
        } else {
            if special {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Whether a value can be written as `attr: value` (RFC 2849 SAFE-STRING, and no trailing
/// space, which some readers drop).
fn is_safe(v: &[u8]) -> bool {
    match v.first() {
        None => true,
        Some(b' ' | b':' | b'<') => false,
        Some(_) => {
            v.last() != Some(&b' ')
                && v.iter()
                    .all(|&b| b.is_ascii() && b != 0 && b != b'\n' && b != b'\r')
        }
    }
}

fn write_line(out: &mut String, attr: &str, value: &[u8]) {
    if is_safe(value) {
        // Safe values are ASCII, so this conversion never replaces anything.
        let text = String::from_utf8_lossy(value);
        fold(out, &format!("{attr}: {text}"));
    } else {
        write_base64(out, attr, value);
    }
}

fn write_base64(out: &mut String, attr: &str, value: &[u8]) {
    fold(out, &format!("{attr}:: {}", B64.encode(value)));
}

/// Appends an ASCII logical line folded so that no physical line exceeds [`FOLD_AT`].
fn fold(out: &mut String, line: &str) {
    let mut rest = line;
    let mut width = FOLD_AT;
    loop {
        let cut = if rest.len() <= width {
            rest.len()
        } else {
            // Lines are ASCII (unsafe values are base64), but stay on a char boundary anyway.
            (1..=width)
                .rev()
                .find(|&i| rest.is_char_boundary(i))
                .unwrap_or(rest.len())
        };
        out.push_str(&rest[..cut]);
        out.push('\n');
        rest = &rest[cut..];
        if rest.is_empty() {
            break;
        }
        out.push(' ');
        width = FOLD_AT - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The spec §9.3 example, with `{CERT}` and `{HASH}` to fill in.
    const SPEC_EXAMPLE: &str = "\
dn: o=postacert
objectclass: top
objectclass: organization
objectClass: LDIFLocationURLObject
o: postacert
LDIFLocationURL: https://igpec.rupa.example.com/igpec.ldif.p7m
description: Base root for the PEC providers directory

dn: providerName=Alfa PEC S.p.A.,o=postacert
objectclass: top
objectclass: provider
providerName: Alfa PEC S.p.A.
providerCertificateHash: {HASH}
providerCertificate;binary:: {CERT}
mailReceipt: ricevute@alfa.example
LDIFLocationURL: https://alfa.example/igpec/alfa.ldif.p7m
managedDomains: pec.alfa.example
managedDomains: pec.cliente-uno.example
description: Servizio PEC Alfa

dn: providerUnit=Ambiente secondario,providerName=Alfa PEC S.p.A.,o=postacert
objectclass: top
objectclass: provider
providerName: Alfa PEC S.p.A.
providerUnit: Ambiente secondario
providerCertificateHash: {HASH}
providerCertificate;binary:: {CERT}
mailReceipt: ricevute@secondario.alfa.example
managedDomains: pec.interno.alfa.example
";

    fn lab_cert() -> (Vec<u8>, String) {
        let pki = crate::labpki::generate(
            &[crate::labpki::GestoreSpec {
                id: "alfa".into(),
                provider_name: "Alfa PEC S.p.A.".into(),
                domains: vec!["pec.alfa.example".into()],
            }],
            chrono::Utc::now(),
            10,
        )
        .unwrap();
        let der = openssl::x509::X509::from_pem(pki.gestori[0].sign_cert_pem.as_bytes())
            .unwrap()
            .to_der()
            .unwrap();
        let hash = crate::smime::sha1_hex(&der);
        (der, hash)
    }

    /// Folds a long line the way other writers do (76 columns, CRLF).
    fn fold_crlf(text: &str) -> String {
        let mut out = String::new();
        for line in text.lines() {
            let mut tmp = String::new();
            fold(&mut tmp, line);
            out.push_str(&tmp.replace('\n', "\r\n"));
        }
        out
    }

    #[test]
    fn spec_example_with_a_real_certificate() {
        let (der, hash) = lab_cert();
        let text = SPEC_EXAMPLE
            .replace("{HASH}", &hash)
            .replace("{CERT}", &B64.encode(&der));
        for input in [text.clone(), fold_crlf(&text)] {
            let index = ProviderIndex::parse_ldif(input.as_bytes()).unwrap();
            assert_eq!(index.providers.len(), 2);
            let main = &index.providers[0];
            assert_eq!(main.name, "Alfa PEC S.p.A.");
            assert_eq!(main.unit, None);
            assert_eq!(main.certificates, vec![der.clone()]);
            assert_eq!(main.certificate_hashes, vec![hash.clone()]);
            assert_eq!(main.mail_receipt, "ricevute@alfa.example");
            assert_eq!(
                main.ldif_location_url.as_deref(),
                Some("https://alfa.example/igpec/alfa.ldif.p7m")
            );
            assert_eq!(
                main.managed_domains,
                vec!["pec.alfa.example", "pec.cliente-uno.example"]
            );
            assert_eq!(main.description.as_deref(), Some("Servizio PEC Alfa"));
            let second = &index.providers[1];
            assert_eq!(second.unit.as_deref(), Some("Ambiente secondario"));

            assert_eq!(index.by_domain("PEC.Alfa.EXAMPLE").unwrap().name, main.name);
            assert_eq!(
                index
                    .by_domain("pec.INTERNO.alfa.example")
                    .unwrap()
                    .unit
                    .as_deref(),
                Some("Ambiente secondario")
            );
            assert!(index.is_certified("mario.rossi@Pec.Cliente-Uno.Example"));
            assert!(!index.is_certified("mario.rossi@gmail.example"));
            assert!(index.by_certificate_hash(&hash.to_lowercase()).is_some());
            assert!(index.by_certificate_hash(&hash.to_uppercase()).is_some());
            assert!(index.by_certificate_hash(&"0".repeat(40)).is_none());
            // And it survives a write and a read.
            assert_eq!(
                ProviderIndex::parse_ldif(index.to_ldif().as_bytes()).unwrap(),
                index
            );
        }
    }

    #[test]
    fn syntax_variants() {
        let input = "version: 1\r\n\
# a comment\r\n\
#  folded comment\r\n\
\x20continues here\r\n\
DN: providerName=Beta \\2C s.r.l.\\, Roma,o=postacert\r\n\
OBJECTCLASS: Top\r\n\
objectClass: PROVIDER\r\n\
providername:: QmV0YSwgcy5yLmwu\r\n\
providerCertificate;binary:: AAEC\r\n\
\x20Aw==\r\n\
MAILRECEIPT:    ricevute@beta.test\r\n\
managedDomains: pec.be\r\n ta.test\r\n\
\r\n\
dn: cn=somebody else,o=postacert\r\n\
objectclass: person\r\n\
cn: somebody else\r\n";
        let index = ProviderIndex::parse_ldif(input.as_bytes()).unwrap();
        assert_eq!(index.providers.len(), 1);
        let p = &index.providers[0];
        assert_eq!(p.name, "Beta, s.r.l.");
        assert_eq!(p.certificates, vec![vec![0, 1, 2, 3]]);
        assert_eq!(p.mail_receipt, "ricevute@beta.test");
        assert_eq!(p.managed_domains, vec!["pec.beta.test"]);
        assert_eq!(
            first_rdn("providerName=Beta \\2C s.r.l.\\, Roma,o=x")
                .unwrap()
                .1,
            "Beta , s.r.l., Roma"
        );
        // providerUnit only in the DN.
        let input = "dn: providerUnit=Sec\\,ondo,providerName=X,o=postacert\n\
objectclass: provider\nproviderName: X\nmailReceipt: r@x.test\n";
        let index = ProviderIndex::parse_ldif(input.as_bytes()).unwrap();
        assert_eq!(index.providers[0].unit.as_deref(), Some("Sec,ondo"));
    }

    #[test]
    fn errors() {
        let cases = [
            // missing mailReceipt, named by DN
            (
                "dn: providerName=X,o=postacert\nobjectclass: provider\nproviderName: X\n",
                "providerName=X,o=postacert",
            ),
            // missing providerName
            (
                "dn: providerName=Y,o=postacert\nobjectclass: provider\nmailReceipt: r@y.test\n",
                "providerName=Y",
            ),
            (
                "dn: providerName=Z,o=postacert\nobjectclass: provider\nproviderName: Z\nmailReceipt: r@z.test\nproviderCertificate;binary:: ***\n",
                "base64",
            ),
            (
                "dn: o=postacert\nthis line has no colon\n",
                "not an attribute line",
            ),
            ("objectclass: provider\n", "must start with dn"),
            ("dn: o=x\nchangetype: delete\n", "change records"),
            ("dn: o=x\nproviderName:< file:///etc/passwd\n", "URL"),
            (
                "dn: providerName=D,o=postacert\nobjectclass: provider\nproviderName: D\nproviderName: E\nmailReceipt: r@d.test\n",
                "2 times",
            ),
            ("version: 2\n\ndn: o=x\n", "unsupported"),
        ];
        for (input, want) in cases {
            match ProviderIndex::parse_ldif(input.as_bytes()) {
                Err(Error::Index(msg)) => assert!(msg.contains(want), "{msg:?} lacks {want:?}"),
                other => panic!("{input:?} gave {other:?}"),
            }
        }
        assert!(ProviderIndex::parse_ldif(&[0xff, 0xfe]).is_err());
        assert!(ProviderIndex::parse_ldif(b"").unwrap().providers.is_empty());
    }

    #[test]
    fn writes_the_root_entry_and_folds() {
        let index = ProviderIndex {
            providers: vec![Provider {
                name: "Ämbiente, \"uno\"".into(),
                unit: Some(" spazi ".into()),
                certificate_hashes: vec!["AB".repeat(20)],
                certificates: vec![vec![7u8; 300]],
                mail_receipt: "ricevute@uno.test".into(),
                managed_domains: vec!["uno.test".into(), ":colon.test".into()],
                ldif_location_url: Some("https://uno.test/x.ldif.p7m".into()),
                description: Some("line\nbreak".into()),
            }],
        };
        let text = index.to_ldif();
        assert!(text.starts_with("dn: o=postacert\nobjectclass: top\n"));
        assert!(text.lines().all(|l| l.len() <= 76), "{text}");
        assert!(text.contains("\nproviderCertificate;binary:: "));
        assert!(text.contains("\nmanagedDomains:: "));
        assert_eq!(ProviderIndex::parse_ldif(text.as_bytes()).unwrap(), index);
    }

    fn arb_text() -> impl Strategy<Value = String> {
        "[ -~\\n\\r\\u{e0}\\u{20ac}\\u{0}]{0,90}"
    }

    proptest! {
        #[test]
        fn round_trip(
            providers in proptest::collection::vec(
                (
                    arb_text(),
                    proptest::option::of(arb_text()),
                    proptest::collection::vec("[0-9A-Fa-f]{40}", 0..3),
                    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..3),
                    arb_text(),
                    proptest::collection::vec(arb_text(), 0..3),
                    proptest::option::of(arb_text()),
                    proptest::option::of(arb_text()),
                ),
                0..4,
            )
        ) {
            let index = ProviderIndex {
                providers: providers
                    .into_iter()
                    .map(|(name, unit, certificate_hashes, certificates, mail_receipt, managed_domains, ldif_location_url, description)| Provider {
                        name, unit, certificate_hashes, certificates, mail_receipt, managed_domains, ldif_location_url, description,
                    })
                    .collect(),
            };
            let text = index.to_ldif();
            prop_assert!(text.lines().all(|l| l.len() <= 76));
            prop_assert_eq!(ProviderIndex::parse_ldif(text.as_bytes()).unwrap(), index);
        }

        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = ProviderIndex::parse_ldif(&input);
        }

        #[test]
        fn never_panics_on_ldif_like_text(input in "(dn|objectclass|providerName|mailReceipt|providerCertificate;binary|[a-z]{1,4})(:|::|:<)? ?[ -~]{0,20}(\r?\n ?){0,2}") {
            let _ = ProviderIndex::parse_ldif(input.as_bytes());
        }
    }
}
