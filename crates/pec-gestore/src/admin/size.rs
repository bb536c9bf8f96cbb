//! Sizes as administrators write them: `2GiB`, `512 MiB`, `3GB`, `1048576`. Binary units
//! (KiB, MiB, GiB, TiB: powers of 1024) and decimal ones (KB, MB, GB, TB: powers of 1000)
//! are both taken; a bare `K`, `M`, `G` or `T` is refused as ambiguous, so that `3G`
//! never means something the administrator did not.

use crate::error::{Refusal, Result};

/// The bytes `text` means.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let invalid = |why: String| Refusal::invalid("bad-size", why);
    let n: u64 = number.parse().map_err(|_| {
        invalid(format!(
            "{text:?} non è una dimensione: si scrive per esempio 2GiB o 512MiB"
        ))
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        "tb" => 1000 * 1000 * 1000 * 1000,
        "tib" => 1 << 40,
        u @ ("k" | "m" | "g" | "t") => {
            return Err(invalid(format!(
                "{text:?} è ambiguo: scrivere {n}{}iB (binario) o {n}{}B (decimale)",
                u.to_ascii_uppercase(),
                u.to_ascii_uppercase()
            )));
        }
        other => {
            return Err(invalid(format!(
                "unità {other:?} sconosciuta in {text:?}: B, KiB, MiB, GiB, TiB, KB, MB, GB, TB"
            )));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| invalid(format!("{text:?} è troppo grande")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512 mib").unwrap(), 512 << 20);
        assert_eq!(parse_size("3 GB").unwrap(), 3_000_000_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        for bad in [
            "3G",
            "2m",
            "1 T",
            "2 parsecs",
            "GiB",
            "99999999999999TiB",
            "",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        let e = parse_size("3G").unwrap_err().to_string();
        assert!(e.contains("ambiguo") && e.contains("3GiB"), "{e}");
    }
}
