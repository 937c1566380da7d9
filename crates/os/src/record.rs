//! The on-disk format of one registry record (see [`crate::registry`]).
//!
//! A record is a small file in the run directory saying "this object is
//! mine": its kind is in the file name, its owner and name in the text:
//!
//! ```text
//! mkipc-record 1
//! owner 4242
//! name /mkipc-4242-0-5f3a-m-inbox
//! ```
//!
//! The name is escaped (`%` followed by two hex digits for `%`, and for every
//! byte of a control character), so a newline in a name cannot split the
//! record into lines that mean something else. Parsing is strict: a record
//! that does not parse is an error, never an empty name (cleanup then keeps
//! the record and says so, instead of deleting it and leaving the object).
//! The file name holds a readable, shortened form of the name and a hash of
//! the whole name, so any name (a FIFO path may be 4095 bytes) fits in
//! `NAME_MAX`.
//!
//! Records written before this format (`<owner>\n<name>\n`) are still read.

/// The first line of every record.
const MAGIC: &str = "mkipc-record 1";

/// How many bytes of the name the file name shows.
const READABLE_LEN: usize = 80;

/// Escapes `%` and control characters as `%XX`, one per byte.
pub(crate) fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '%' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Undoes [`escape`]; `None` for a malformed escape, a raw control
/// character, or bytes that are not UTF-8.
pub(crate) fn unescape(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut it = text.bytes();
    while let Some(b) = it.next() {
        match b {
            b'%' => {
                let hi = (it.next()? as char).to_digit(16)?;
                let lo = (it.next()? as char).to_digit(16)?;
                bytes.push((hi * 16 + lo) as u8);
            }
            b if b.is_ascii_control() => return None,
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

/// The text of the record for `name` owned by `owner`.
pub(crate) fn format(owner: u32, name: &str) -> String {
    format!("{MAGIC}\nowner {owner}\nname {}\n", escape(name))
}

/// Why a record could not be read.
pub(crate) type ParseError = &'static str;

/// The owner and name a record holds.
pub(crate) fn parse(text: &str) -> Result<(u32, String), ParseError> {
    let Some(body) = text.strip_suffix('\n') else {
        return Err("cut short (no final newline)");
    };
    let lines: Vec<&str> = body.split('\n').collect();
    match lines.as_slice() {
        [MAGIC, owner, name] => {
            let owner = owner
                .strip_prefix("owner ")
                .and_then(|o| o.parse().ok())
                .ok_or("bad owner line")?;
            let name = name
                .strip_prefix("name ")
                .and_then(unescape)
                .ok_or("bad name line")?;
            if name.is_empty() {
                return Err("empty name");
            }
            Ok((owner, name))
        }
        // The format before escaping: exactly two lines, owner then name.
        [owner, name] if !owner.is_empty() && owner.bytes().all(|b| b.is_ascii_digit()) => {
            let owner = owner.parse().map_err(|_| "bad owner line")?;
            if name.is_empty() || name.bytes().any(|b| b.is_ascii_control()) {
                return Err("bad name line");
            }
            Ok((owner, (*name).to_string()))
        }
        [first, ..] if first.starts_with("mkipc-record ") && *first != MAGIC => {
            Err("unknown record version")
        }
        _ => Err("not a registry record"),
    }
}

/// The start of the file names of every record for `name` (one file per
/// owner: this, then the owner's number): `tag`, a readable part of the
/// name, `~`, and a hash of the whole name.
pub(crate) fn file_prefix(tag: &str, name: &str) -> String {
    let mut readable: String = name
        .chars()
        .map(|c| match c {
            '/' => '%',
            c if c.is_ascii_alphanumeric() || "-_.".contains(c) => c,
            _ => '_',
        })
        .collect();
    readable.truncate(READABLE_LEN);
    format!("{tag}{readable}~{:016x}@", fnv1a(name.as_bytes()))
}

/// FNV-1a, 64 bits: stable across builds and machines (a crashed run's
/// records are read by another binary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn smoke() {
        let text = format(42, "/mkipc-1-0-a-m-two\nlines%");
        assert_eq!(
            text,
            "mkipc-record 1\nowner 42\nname /mkipc-1-0-a-m-two%0Alines%25\n"
        );
        assert_eq!(
            parse(&text),
            Ok((42, "/mkipc-1-0-a-m-two\nlines%".to_string()))
        );
    }

    #[test]
    fn old_records_are_read_and_broken_ones_refused() {
        assert_eq!(parse("7\n/mkipc-q\n"), Ok((7, "/mkipc-q".to_string())));
        // An old record of a name with a newline: three lines, not a guess.
        assert!(parse("7\n/mkipc-two\nlines\n").is_err());
        for bad in [
            "",
            "\n",
            "0\n\n",
            "7\n/mkipc-q",
            "mkipc-record 1\nowner x\nname /q\n",
            "mkipc-record 1\nowner 1\nname %zz\n",
            "mkipc-record 1\nowner 1\nname \n",
            "mkipc-record 2\nowner 1\nname /q\n",
            "garbage\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_names_fit_and_differ() {
        let long = format!("/tmp/{}", "d/".repeat(2000));
        let p = file_prefix("reg.f.", &long);
        assert!(p.len() + 10 <= 255, "{}", p.len());
        assert_ne!(
            file_prefix("reg.q.", "/a\nb"),
            file_prefix("reg.q.", "/a_b")
        );
    }

    proptest! {
        #[test]
        fn a_record_reads_back_what_was_written(owner: u32, name in "\\PC*[\\x00-\\x20%/]{0,8}\\PC*") {
            prop_assume!(!name.is_empty());
            prop_assert_eq!(parse(&format(owner, &name)), Ok((owner, name.clone())));
            prop_assert!(!format(owner, &name).trim_end_matches('\n').contains("\n\n"));
        }

        #[test]
        fn parse_never_panics(text in "\\PC*[\\x00-\\x20%]{0,8}\\PC*") {
            let _ = parse(&text);
        }
    }
}
