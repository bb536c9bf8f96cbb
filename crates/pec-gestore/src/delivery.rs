//! The delivery point (punto di consegna, spec §2.4, §3.8): which receipt each recipient
//! of a transport envelope gets.

use pec_proto::build::receipt_variant;
use pec_proto::daticert::TipoRicevuta;
use pec_proto::original::Original;

/// Whether `recipient` was a Cc recipient of the envelope: `Some(true)` for Cc only,
/// `Some(false)` for To only, `None` when it is in both or neither (then it is treated as
/// a primary recipient, checklist 62).
pub fn in_cc(envelope: &[u8], recipient: &str) -> Option<bool> {
    let o = Original::parse(envelope);
    let is = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case(recipient));
    match (is(o.to()), is(o.cc())) {
        (true, false) => Some(false),
        (false, true) => Some(true),
        _ => None,
    }
}

/// The delivery receipt variant for `recipient` of `envelope` given the requested one.
pub fn variant_for(envelope: &[u8], requested: TipoRicevuta, recipient: &str) -> TipoRicevuta {
    receipt_variant(requested, in_cc(envelope, recipient))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &[u8] =
        b"To: anna@pec.b.it, both@pec.b.it\r\nCc: luca@pec.b.it, Both@pec.b.it\r\n\r\nx";

    #[test]
    fn cc_recipients_get_sintetica_and_ambiguous_ones_are_primary() {
        use TipoRicevuta::*;
        assert_eq!(variant_for(ENV, Completa, "anna@pec.b.it"), Completa);
        assert_eq!(variant_for(ENV, Breve, "ANNA@pec.b.it"), Breve);
        assert_eq!(variant_for(ENV, Completa, "luca@pec.b.it"), Sintetica);
        assert_eq!(variant_for(ENV, Breve, "both@pec.b.it"), Breve);
        assert_eq!(variant_for(ENV, Completa, "nobody@pec.b.it"), Completa);
        assert_eq!(variant_for(ENV, Sintetica, "anna@pec.b.it"), Sintetica);
    }
}
