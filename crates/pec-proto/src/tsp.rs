//! RFC 3161 time-stamp protocol messages, for the daily time stamp of the legal log (spec
//! §8.1): the request for a SHA-256 digest ([`request`]) and the checks of the
//! authority's answer ([`check_response`]): granted, a token of a `SignedData` whose
//! `TSTInfo` covers that digest and echoes the nonce. The token's signature is checked
//! against the authority's CA by whoever relies on it (`openssl ts -verify`).
//!
//! Structures are encoded and decoded with the `der` crate; the answer is read leniently
//! (only the fields checked are decoded), since every authority adds its own optional
//! ones.

use der::asn1::{Any, GeneralizedTime, ObjectIdentifier, OctetString, Uint};
use der::{Decode, Encode, Sequence, Tagged};
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::error::{Error, Result};

/// SHA-256 (RFC 5754).
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// `id-signedData` (RFC 5652).
const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// `id-ct-TSTInfo` (RFC 3161).
const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// Bytes of the largest answer read: a token with a certificate chain is a few KiB.
pub const MAX_RESPONSE: usize = 256 * 1024;

/// `MessageImprint` (RFC 3161 §2.4.1).
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

/// `TimeStampReq` (RFC 3161 §2.4.1) without a policy or extensions; `certReq` is always
/// TRUE, so the token carries the authority's certificate and verifies with its CA alone.
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct TimeStampReq {
    version: u8,
    message_imprint: MessageImprint,
    nonce: Uint,
    cert_req: bool,
}

/// What a checked answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// The authority's time, Unix seconds.
    pub gen_time: i64,
    /// The token's serial number, hex.
    pub serial: String,
}

fn der_error(what: &str) -> impl FnOnce(der::Error) -> Error + '_ {
    move |e| Error::Input(format!("time stamp {what}: {e}"))
}

/// The imprint of a SHA-256 `digest`.
fn imprint(digest: &[u8; 32]) -> Result<MessageImprint> {
    Ok(MessageImprint {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: SHA256,
            parameters: None,
        },
        hashed_message: OctetString::new(digest.as_slice()).map_err(der_error("digest"))?,
    })
}

/// The DER `TimeStampReq` for the SHA-256 `digest` with `nonce` (random, chosen by the
/// caller), sent as `application/timestamp-query`.
pub fn request(digest: &[u8; 32], nonce: &[u8; 8]) -> Result<Vec<u8>> {
    TimeStampReq {
        version: 1,
        message_imprint: imprint(digest)?,
        nonce: Uint::new(nonce).map_err(der_error("nonce"))?,
        cert_req: true,
    }
    .to_der()
    .map_err(der_error("request"))
}

/// The elements of a DER SEQUENCE, each undecoded.
fn elements(der: &[u8], what: &str) -> Result<Vec<Any>> {
    Vec::<Any>::from_der(der).map_err(der_error(what))
}

/// Decodes `any` as `T`.
fn decode<T: for<'a> Decode<'a>>(any: &Any, what: &str) -> Result<T> {
    let der = any.to_der().map_err(der_error(what))?;
    T::from_der(&der).map_err(der_error(what))
}

/// Checks a DER `TimeStampResp` answering [`request`] for `digest` and `nonce`: status
/// granted (with or without modifications), a `SignedData` token whose `TSTInfo` has
/// this SHA-256 imprint and this nonce.
pub fn check_response(response: &[u8], digest: &[u8; 32], nonce: &[u8; 8]) -> Result<Stamped> {
    if response.len() > MAX_RESPONSE {
        return Err(Error::Input("time stamp answer too large".into()));
    }
    let resp = elements(response, "answer")?;
    let status_info = resp
        .first()
        .ok_or_else(|| Error::Input("time stamp answer without status".into()))?;
    let status_fields = elements(
        &status_info.to_der().map_err(der_error("status"))?,
        "status",
    )?;
    let status: u8 = status_fields
        .first()
        .ok_or_else(|| Error::Input("time stamp status empty".into()))
        .and_then(|s| decode(s, "status"))?;
    if status > 1 {
        return Err(Error::Input(format!(
            "the time-stamping authority refused the request (PKIStatus {status})"
        )));
    }
    let token = resp
        .get(1)
        .ok_or_else(|| Error::Input("time stamp answer without a token".into()))?;
    let info: cms::content_info::ContentInfo = decode(token, "token")?;
    if info.content_type != SIGNED_DATA {
        return Err(Error::Input("time stamp token is not SignedData".into()));
    }
    let signed: cms::signed_data::SignedData = decode(&info.content, "token")?;
    let encap = signed.encap_content_info;
    if encap.econtent_type != TST_INFO {
        return Err(Error::Input(
            "time stamp token does not hold a TSTInfo".into(),
        ));
    }
    let content = encap
        .econtent
        .ok_or_else(|| Error::Input("time stamp token without TSTInfo".into()))?;
    let octets: OctetString = decode(&content, "TSTInfo")?;
    let tst = elements(octets.as_bytes(), "TSTInfo")?;
    let [
        _version,
        _policy,
        imprint_any,
        serial_any,
        time_any,
        rest @ ..,
    ] = tst.as_slice()
    else {
        return Err(Error::Input("time stamp TSTInfo too short".into()));
    };
    let got: MessageImprint = decode(imprint_any, "imprint")?;
    if got.hash_algorithm.oid != SHA256 || got.hashed_message.as_bytes() != digest.as_slice() {
        return Err(Error::Input(
            "the time stamp covers another digest than the one asked".into(),
        ));
    }
    // After genTime: accuracy (SEQUENCE), ordering (BOOLEAN), nonce (the first INTEGER).
    let nonce_any = rest
        .iter()
        .find(|a| a.tag() == der::Tag::Integer)
        .ok_or_else(|| Error::Input("time stamp without the nonce asked".into()))?;
    let got_nonce: Uint = decode(nonce_any, "nonce")?;
    let want = Uint::new(nonce).map_err(der_error("nonce"))?;
    if got_nonce != want {
        return Err(Error::Input(
            "time stamp nonce differs from the request's".into(),
        ));
    }
    let serial: Uint = decode(serial_any, "serial")?;
    let time: GeneralizedTime = decode(time_any, "genTime")?;
    let gen_time = i64::try_from(time.to_unix_duration().as_secs())
        .map_err(|_| Error::Input("time stamp genTime out of range".into()))?;
    Ok(Stamped {
        gen_time,
        serial: serial
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_refusals_are_errors() {
        let digest = [7u8; 32];
        let nonce = [0x80, 1, 2, 3, 4, 5, 6, 7];
        let der = request(&digest, &nonce).unwrap();
        let req = TimeStampReq::from_der(&der).unwrap();
        assert_eq!(req.version, 1);
        assert!(req.cert_req);
        assert_eq!(req.message_imprint.hashed_message.as_bytes(), &digest);
        assert_eq!(req.nonce, Uint::new(&nonce).unwrap());
        // A rejection: PKIStatusInfo { status 2 } and no token.
        let rejection = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02];
        let e = check_response(&rejection, &digest, &nonce).unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        assert!(check_response(b"junk", &digest, &nonce).is_err());
    }
}
