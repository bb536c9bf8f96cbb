//! Trace fields (RFC 5321 §4.4): the `Received:` line a server prepends to each message
//! it accepts, and the `Return-Path:` and `Delivered-To:` lines of the final delivery into
//! a mailbox, written as Postfix writes them so that tools and people reading real mail
//! find what they expect. They go in front of the message as transported: a PEC message
//! signs only its first MIME part, so they never touch the signed bytes.

use std::net::IpAddr;

use crate::server::SessionInfo;

/// The longest name, address or HELO argument copied into a trace field.
const MAX_TEXT: usize = 255;

/// `text` reduced to the characters `allowed` keeps, at most [`MAX_TEXT`] of them: what a
/// client says goes into a header field, so it must not bring line breaks, comment
/// delimiters or angle brackets.
fn clean(text: &str, allowed: impl Fn(char) -> bool) -> String {
    text.chars()
        .filter(|&c| allowed(c))
        .take(MAX_TEXT)
        .collect()
}

/// Characters of a domain, an address literal or a mailbox (no space, parenthesis,
/// angle bracket, semicolon or control character).
fn plain(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '(' | ')' | '<' | '>' | ';' | '\\' | '"')
}

/// An RFC 5321 address literal: `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
fn address_literal(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    }
}

/// The `with` protocol of RFC 3848: `ESMTP` plus `S` over TLS and `A` after AUTH, or
/// `SMTP` for a client that said HELO.
fn protocol(info: &SessionInfo) -> String {
    if !info.esmtp {
        return "SMTP".into();
    }
    let mut p = String::from("ESMTP");
    if info.tls {
        p.push('S');
    }
    if info.authenticated.is_some() {
        p.push('A');
    }
    p
}

/// The `Received:` field (with its CRLF) that `by`, our host name, prepends to a message
/// accepted in `info`'s session for `rcpt_to` at `date` (an RFC 5322 date-time):
///
/// ```text
/// Received: from client.example ([192.0.2.1])
///         (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
///         by mx.pec.example (pecd) with ESMTPSA
///         for <anna@pec.example>; Mon, 10 Mar 2025 10:30:15 +0100
/// ```
///
/// The `for` clause is written only for a single recipient (as Postfix does: the others of
/// a transaction are not told to each recipient).
pub fn received(info: &SessionInfo, by: &str, rcpt_to: &[String], date: &str) -> String {
    let helo = clean(&info.helo, plain);
    let helo = if helo.is_empty() { "unknown" } else { &helo };
    let mut out = format!(
        "Received: from {helo} ({})\r\n",
        address_literal(info.peer.ip())
    );
    if let Some(t) = &info.tls_parameters {
        out.push_str(&format!(
            "\t(using {} with cipher {} ({}/{} bits))\r\n",
            t.version, t.cipher, t.bits, t.bits
        ));
    }
    out.push_str(&format!(
        "\tby {} (pecd) with {}",
        clean(by, plain),
        protocol(info)
    ));
    if let [one] = rcpt_to {
        out.push_str(&format!("\r\n\tfor <{}>", clean(one, plain)));
    }
    out.push_str(&format!("; {date}\r\n"));
    out
}

/// The fields the final delivery into `mailbox` prepends (with their CRLFs):
/// `Return-Path:` with the SMTP reverse path (`<>` for the null sender) and
/// `Delivered-To:` with the mailbox.
pub fn delivered(return_path: &str, mailbox: &str) -> String {
    format!(
        "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
        clean(return_path, plain),
        clean(mailbox, plain)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Mode;
    use pec_net::tls::TlsParameters;

    fn session(tls: bool, authenticated: bool) -> SessionInfo {
        SessionInfo {
            peer: "192.0.2.1:52000".parse().unwrap(),
            tls,
            tls_parameters: tls.then_some(TlsParameters {
                version: "TLSv1.3",
                cipher: "TLS_AES_256_GCM_SHA384",
                bits: 256,
            }),
            authenticated: authenticated.then(|| "mario@pec.alfa.test".to_string()),
            helo: "client.example".into(),
            esmtp: true,
            mode: Mode::Mx,
        }
    }

    const DATE: &str = "Mon, 10 Mar 2025 10:30:15 +0100";

    #[test]
    fn received_is_written_as_postfix_writes_it() {
        let one = ["anna@pec.beta.test".to_string()];
        assert_eq!(
            received(&session(true, true), "mx.pec.alfa.test", &one, DATE),
            "Received: from client.example ([192.0.2.1])\r\n\
             \t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\
             \tby mx.pec.alfa.test (pecd) with ESMTPSA\r\n\
             \tfor <anna@pec.beta.test>; Mon, 10 Mar 2025 10:30:15 +0100\r\n"
        );
        let two = [one[0].clone(), "luca@pec.beta.test".to_string()];
        assert_eq!(
            received(&session(false, false), "mx.pec.beta.test", &two, DATE),
            "Received: from client.example ([192.0.2.1])\r\n\
             \tby mx.pec.beta.test (pecd) with ESMTP; Mon, 10 Mar 2025 10:30:15 +0100\r\n"
        );
        let tls_only = received(&session(true, false), "mx", &two, DATE);
        assert!(tls_only.contains("with ESMTPS;"), "{tls_only}");
    }

    #[test]
    fn what_the_client_says_cannot_break_the_field() {
        let mut s = session(false, false);
        s.helo = "evil\r\nX-Injected: yes (comment)".into();
        s.esmtp = false;
        s.peer = "[::ffff:192.0.2.7]:25".parse().unwrap();
        let rcpt = ["a>\r\nb@x.test".to_string()];
        let r = received(&s, "mx", &rcpt, DATE);
        assert_eq!(
            r,
            "Received: from evilX-Injected:yescomment ([192.0.2.7])\r\n\
             \tby mx (pecd) with SMTP\r\n\tfor <ab@x.test>; Mon, 10 Mar 2025 10:30:15 +0100\r\n"
        );
        s.helo.clear();
        s.peer = "[2001:db8::1]:25".parse().unwrap();
        assert!(
            received(&s, "mx", &[], DATE)
                .starts_with("Received: from unknown ([IPv6:2001:db8::1])\r\n")
        );
        assert_eq!(
            delivered("", "anna@pec.beta.test"),
            "Return-Path: <>\r\nDelivered-To: anna@pec.beta.test\r\n"
        );
        assert_eq!(
            delivered("x>\r\ny@z.test", "a@b.test"),
            "Return-Path: <xy@z.test>\r\nDelivered-To: a@b.test\r\n"
        );
    }
}
