//! Judging arbitrary bytes as a protocol office's attachment (content sniffing, CAdES
//! envelopes opened with OpenSSL, the PDF/A scan) must never panic, and the nesting it
//! reports stays within its bound; the same bytes as a message's attachments too.
#![no_main]
use pec_proto::document::{Format, MAX_ATTACHMENTS, MAX_SIGNED_LAYERS, attachments, sniff};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let f = sniff(data);
    assert!(f.signatures().len() <= MAX_SIGNED_LAYERS);
    if let Format::PdfA { part, .. } = f.innermost() {
        assert!((1..=4).contains(part));
    }
    let _ = f.name();
    let (list, total) = attachments(data);
    assert!(list.len() <= MAX_ATTACHMENTS && list.len() <= total);
});
