//! The base subject of RFC 5256 2.1, which SORT SUBJECT orders by and both THREAD
//! algorithms group by: the subject without the `Re:`, `Fwd:`, `[list]` and `(fwd)`
//! decorations clients add, so a reply sorts and threads with its original.
//!
//! Every marker is ASCII, so the text is cut at ASCII bytes only and stays valid UTF-8.

/// A subject reduced to its base, and whether a reply or forward marker was taken off
/// it (THREAD=REFERENCES prefers a thread started by a message that had none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseSubject {
    /// The base subject, in its original case (collation folds it later).
    pub text: String,
    /// A `Re:`/`Fw:`/`Fwd:` leader, a `(fwd)` trailer or a `[fwd: …]` wrapper was removed.
    pub reply_or_forward: bool,
}

/// The base subject of a raw Subject field value (RFC 5256 2.1, steps 1 to 7).
pub(crate) fn base_subject(raw: &[u8]) -> BaseSubject {
    // (1) Encoded words decoded, white space runs to one space.
    let decoded = crate::mime::decode_words(raw);
    let mut s: String = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        let c = if matches!(c, '\t' | '\r' | '\n') {
            ' '
        } else {
            c
        };
        if !(c == ' ' && s.ends_with(' ')) {
            s.push(c);
        }
    }
    let mut reply_or_forward = false;
    let mut start = 0;
    loop {
        // (2) Trailers: white space and "(fwd)", repeatedly.
        loop {
            let rest = &s[start..];
            if rest.ends_with(' ') {
                s.pop();
            } else if rest.len() >= 5 && ends_with_ci(rest, "(fwd)") {
                s.truncate(s.len() - 5);
                reply_or_forward = true;
            } else {
                break;
            }
        }
        // (3)-(5) Leaders, and a leading blob that leaves something behind, repeatedly.
        loop {
            let rest = &s.as_bytes()[start..];
            if let Some(n) = leader(rest) {
                start += n;
                reply_or_forward |= rest.first() != Some(&b' ');
            } else if let Some(n) = blob(rest, 0).filter(|&n| n < rest.len()) {
                start += n;
            } else {
                break;
            }
        }
        // (6) "[fwd: …]" around the whole: unwrap it and start again from (2).
        let rest = &s[start..];
        if rest.len() > 5 && starts_with_ci(rest, "[fwd:") && rest.ends_with(']') {
            s.pop();
            start += 5;
            reply_or_forward = true;
            continue;
        }
        break;
    }
    BaseSubject {
        text: s[start..].to_string(),
        reply_or_forward,
    }
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// The length of the subj-blob (`"[" *BLOBCHAR "]" *WSP`) at `at`, if one is there.
fn blob(s: &[u8], at: usize) -> Option<usize> {
    if s.get(at) != Some(&b'[') {
        return None;
    }
    let close = at + 1 + s[at + 1..].iter().position(|&b| b == b'[' || b == b']')?;
    if s[close] != b']' {
        return None;
    }
    let mut end = close + 1;
    while s.get(end) == Some(&b' ') {
        end += 1;
    }
    Some(end - at)
}

/// The length of the subj-leader at the start of `s`: one space, or
/// `*subj-blob ("re" / "fw" ["d"]) *WSP [subj-blob] ":"`.
fn leader(s: &[u8]) -> Option<usize> {
    if s.first() == Some(&b' ') {
        return Some(1);
    }
    let mut at = 0;
    while let Some(n) = blob(s, at) {
        at += n;
    }
    let word = s.get(at..at + 2)?;
    if word.eq_ignore_ascii_case(b"re") {
        at += 2;
    } else if word.eq_ignore_ascii_case(b"fw") {
        at += 2;
        if s.get(at).is_some_and(|b| b.eq_ignore_ascii_case(&b'd')) {
            at += 1;
        }
    } else {
        return None;
    }
    while s.get(at) == Some(&b' ') {
        at += 1;
    }
    if let Some(n) = blob(s, at) {
        at += n;
    }
    (s.get(at) == Some(&b':')).then_some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(raw: &str) -> (String, bool) {
        let b = base_subject(raw.as_bytes());
        (b.text, b.reply_or_forward)
    }

    #[test]
    fn plain_subjects_are_kept() {
        assert_eq!(base("hello world"), ("hello world".into(), false));
        assert_eq!(base("b (a)"), ("b (a)".into(), false));
        assert_eq!(base("Ad: Re: Ad: x"), ("Ad: Re: Ad: x".into(), false));
        assert_eq!(base(""), (String::new(), false));
        // "Rex:" is not "Re:", "Fwx:" is not "Fw:".
        assert_eq!(base("Rex: a"), ("Rex: a".into(), false));
        assert_eq!(base("Fwx: a"), ("Fwx: a".into(), false));
    }

    #[test]
    fn white_space_is_collapsed_and_trimmed() {
        assert_eq!(base("  a \t  b  "), ("a b".into(), false));
        assert_eq!(base("=?iso-8859-1?q?_?="), (String::new(), false));
    }

    #[test]
    fn leaders_are_removed() {
        assert_eq!(base("Re: a"), ("a".into(), true));
        assert_eq!(base("RE:a"), ("a".into(), true));
        assert_eq!(base("fw: a"), ("a".into(), true));
        assert_eq!(base("Fwd: a"), ("a".into(), true));
        assert_eq!(base("re  : a"), ("a".into(), true));
        assert_eq!(base("Re[2]: a"), ("a".into(), true));
        assert_eq!(base("Re: Re: Fwd: a"), ("a".into(), true));
        assert_eq!(base("[list] Re: a"), ("a".into(), true));
        assert_eq!(base("[foo] Fwd: [bar] Re: fw: b"), ("b".into(), true));
    }

    #[test]
    fn a_blob_goes_only_when_something_is_left() {
        assert_eq!(base("[list] a"), ("a".into(), false));
        assert_eq!(base("[a] [b] c"), ("c".into(), false));
        assert_eq!(base("[xyz]"), ("[xyz]".into(), false));
        assert_eq!(base("[a] [b]"), ("[b]".into(), false));
        // A '[' inside is not a blob.
        assert_eq!(base("[a [b] c"), ("[a [b] c".into(), false));
    }

    #[test]
    fn trailers_are_removed() {
        assert_eq!(base("a (fwd)"), ("a".into(), true));
        assert_eq!(base("a (fWd)  (FWD) "), ("a".into(), true));
        assert_eq!(base("a(fwd)"), ("a".into(), true));
        assert_eq!(base("(fwd)"), (String::new(), true));
        assert_eq!(
            base("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)"),
            ("b".into(), true)
        );
    }

    #[test]
    fn fwd_wrappers_are_unwrapped() {
        assert_eq!(base("[Fwd: a]"), ("a".into(), true));
        assert_eq!(base("Re: [FWD: c]"), ("c".into(), true));
        assert_eq!(
            base("re: [fwd: [fwd: re: [fwd: babylon]]]"),
            ("babylon".into(), true)
        );
        // Only around the whole subject.
        assert_eq!(base("[fwd: a] b"), ("b".into(), false));
    }

    #[test]
    fn encoded_words_are_decoded_first() {
        assert_eq!(base("Re: =?utf-8?q?b?="), ("b".into(), true));
        assert_eq!(base("=?iso-8859-1?q?RE:_C?="), ("C".into(), true));
        assert_eq!(base("=?us-ascii?b?UmU6IGM=?="), ("c".into(), true));
        assert_eq!(base("=?utf-8?q?Re:_Citt=C3=A0?="), ("Città".into(), true));
    }

    #[test]
    fn non_ascii_text_is_never_split() {
        assert_eq!(base("Ré: à (fwd)"), ("Ré: à".into(), true));
        assert_eq!(base("[é] è"), ("è".into(), false));
    }
}
