//! What the incoming point spends checking one signature: `verify_detached` then `trust`
//! (provider index, path to the root through the intermediate the signature carries), in
//! a loop over one signed 4 KB part. The measurement of BENCHMARKS.md ("Parse each
//! certificate once"), counted in instructions so that a loaded machine does not blur it:
//!
//! ```sh
//! cargo build --release -p pec-proto --example verify_loop
//! valgrind --tool=callgrind --toggle-collect='*verify_many*' \
//!     target/release/examples/verify_loop 100
//! ```
//!
//! The argument is the number of verifications (200 by default); the time per
//! verification is printed too.

use chrono::{DateTime, Utc};
use pec_proto::index::ProviderIndex;
use pec_proto::labpki::{self, GestoreSpec};
use pec_proto::smime::{self, Digest, OpensslSigner, Signer, TrustAnchors};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 200,
    };
    let now = Utc::now();
    let spec = GestoreSpec {
        id: "alfa".into(),
        provider_name: "Alfa PEC (lab)".into(),
        domains: vec!["pec.alfa.test".into()],
    };
    let pki = labpki::generate(&[spec], now, 30)?;
    let g = &pki.gestori[0];
    let signer = OpensslSigner::from_pem(
        g.sign_cert_pem.as_bytes(),
        g.sign_key_pem.as_bytes(),
        Digest::Sha256,
    )?;
    let content = vec![b'a'; 4096];
    let sig = signer.sign_detached(&content, now)?;
    let index = ProviderIndex::parse_ldif(pki.index_ldif.as_bytes())?;
    let anchors = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes())?;
    let started = std::time::Instant::now();
    let trusted = verify_many(n, &content, &sig, &index, &anchors, now);
    eprintln!(
        "{trusted} of {n} trusted, {:?} per verification",
        started.elapsed() / n.max(1)
    );
    Ok(())
}

/// Verifies and trusts `sig` `n` times; how many times it was intact and trusted. Not
/// inlined, so that callgrind can count only this.
#[inline(never)]
fn verify_many(
    n: u32,
    content: &[u8],
    sig: &[u8],
    index: &ProviderIndex,
    anchors: &TrustAnchors,
    now: DateTime<Utc>,
) -> u32 {
    let mut trusted = 0;
    for _ in 0..n {
        let report = smime::verify_detached(content, sig);
        if let (true, Some(s)) = (report.intact, report.signer)
            && smime::trust(&s.der, &s.chain, index, Some(anchors), now).trusted
        {
            trusted += 1;
        }
    }
    trusted
}
