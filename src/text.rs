//! Small text helpers shared across layers: making a message fit on one line,
//! quoting a bounded excerpt of input, and percent-decoding. Pure; no domain
//! knowledge, so any module may use it.
//!
//! There are three one-line policies on purpose, one per kind of message; their
//! outputs differ and tests pin each of them exactly, so they are not merged:
//! - [`one_line_clipped`]: a parser's message about a document we were handed,
//!   which must never carry much of that document nor a raw control character;
//! - [`one_line_joined`]: an operator's own config file, where every line of the
//!   TOML library's message is worth keeping and reads as a list;
//! - [`one_line_spaced`]: a JSON Schema error, whose nested parts are kept whole,
//!   only its line breaks turned into spaces.

/// A piece of input quoted in a message (a key, a number, a tag): at most 60
/// characters, so a message never quotes the whole input.
pub fn excerpt(s: &str) -> String {
    bounded(s, 60)
}

/// A parser library's own message, kept to one line of reasonable length: at most
/// 240 characters (then `…`), control characters (newlines too) escaped. For
/// messages about documents we only read, which may be hostile or hold secrets.
pub fn one_line_clipped(s: &str) -> String {
    bounded(s, 240)
}

/// Each non-blank line trimmed, joined by `; `. For the TOML library's messages
/// about our own config file: they span lines (what is wrong, then what was
/// expected), and an operator wants all of it, in one line of the log.
pub fn one_line_joined(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every CR and LF replaced by a space, nothing else changed. For schema errors,
/// whose texts may hold newlines (nested errors) while reports want one line; the
/// text is already ours (values masked), so it is kept whole.
pub fn one_line_spaced(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// At most `max_chars` characters (then `…`), control characters escaped.
fn bounded(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `%XX` escapes decoded to bytes, and the result read as UTF-8 (URI fragments
/// such as `#/$defs/a%20b`, OTLP header values). `None` when an escape is cut short
/// or not hex, or the bytes are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_one_line_policies_differ_as_documented() {
        let multi = "  bad value\n\n  expected a number \r\n";
        assert_eq!(one_line_joined(multi), "bad value; expected a number");
        assert_eq!(
            one_line_spaced(multi),
            "  bad value    expected a number   "
        );
        assert_eq!(
            one_line_clipped(multi),
            "  bad value\\n\\n  expected a number \\r\\n"
        );
    }

    #[test]
    fn clipped_text_is_bounded_in_characters() {
        let long = "é".repeat(300);
        assert_eq!(one_line_clipped(&long).chars().count(), 241);
        assert!(one_line_clipped(&long).ends_with('…'));
        assert_eq!(excerpt(&long).chars().count(), 61);
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn percent_decoding_refuses_cut_or_non_hex_escapes_and_bad_utf8() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%e2%82%ac").as_deref(), Some("€"));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
