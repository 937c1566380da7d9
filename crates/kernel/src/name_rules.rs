//! The one rule for mailbox and service names, on every backend.
//!
//! A name given to [`Ipc::mailbox_create`](crate::Ipc::mailbox_create),
//! [`mailbox_open`](crate::Ipc::mailbox_open), [`register`](crate::Ipc::register),
//! [`unregister`](crate::Ipc::unregister) or [`look_up`](crate::Ipc::look_up)
//! is valid when it is
//!
//! * 1 to [`MAX_NAME_LEN`] bytes long (UTF-8),
//! * free of `/` and of control characters (`\n`, `\r`, NUL, DEL, the C0 and
//!   C1 ranges: [`char::is_control`]),
//! * not `.` or `..`.
//!
//! Anything else is [`IpcError::InvalidName`], checked before anything else
//! happens, so every backend refuses the same names the same way.
//!
//! Why these limits: the OS backend makes a mailbox a POSIX queue named
//! `/mkipc-<run id>-m-<name>`. Linux allows 255 bytes for it (`NAME_MAX`,
//! counting the leading `/` to be safe) and no `/` after the first one;
//! `mkipc-` plus a run id of at most [`MAX_RUN_ID_LEN`] bytes plus `-m-` take
//! 58 bytes, which leaves 197; [`MAX_NAME_LEN`] keeps a margin. A `/` or `.`
//! would also make a path out of the name wherever a backend puts it in a
//! file name, and control characters (a newline above all) break every
//! line-based record and report.
//!
//! ```
//! use mkipc_kernel::name_rules::{validate_name, MAX_NAME_LEN};
//! use mkipc_kernel::IpcError;
//! assert_eq!(validate_name("printer queue #2"), Ok(()));
//! assert_eq!(validate_name(""), Err(IpcError::InvalidName));
//! assert_eq!(validate_name("a/b"), Err(IpcError::InvalidName));
//! assert_eq!(validate_name("two\nlines"), Err(IpcError::InvalidName));
//! assert_eq!(validate_name("nul\0"), Err(IpcError::InvalidName));
//! assert_eq!(validate_name(&"x".repeat(MAX_NAME_LEN)), Ok(()));
//! assert_eq!(validate_name(&"x".repeat(MAX_NAME_LEN + 1)), Err(IpcError::InvalidName));
//! ```

use crate::error::IpcError;

/// The longest valid name, in bytes.
pub const MAX_NAME_LEN: usize = 160;

/// The longest run id a backend that prefixes names with one may use, in
/// bytes (the OS backend's run ids are at most 31).
pub const MAX_RUN_ID_LEN: usize = 48;

/// Whether `name` follows the rule (see the [module docs](self)).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c.is_control())
}

/// `Ok` for a valid name, [`IpcError::InvalidName`] for any other.
pub fn validate_name(name: &str) -> Result<(), IpcError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(IpcError::InvalidName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rule written out a second way, byte by byte.
    fn reference(name: &str) -> bool {
        let b = name.as_bytes();
        let control = name
            .chars()
            .any(|c| (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)));
        (1..=160).contains(&b.len()) && !b.contains(&b'/') && !control && b != b"." && b != b".."
    }

    #[test]
    fn smoke() {
        for bad in [
            "", ".", "..", "/", "a/b", "\n", "a\nb", "a\rb", "\0", "tab\t", "\u{7f}", "\u{85}",
        ] {
            assert_eq!(validate_name(bad), Err(IpcError::InvalidName), "{bad:?}");
        }
        for good in ["a", "...", "m-0", "with space", "ünïcödé", "%25", "a.b"] {
            assert_eq!(validate_name(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn length_counts_bytes_not_chars() {
        let two_byte = "é".repeat(MAX_NAME_LEN / 2);
        assert!(is_valid_name(&two_byte));
        assert!(!is_valid_name(&format!("{two_byte}x")));
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(name in "\\PC{0,3}[\\x00-\\x7f\\u{80}-\\u{a0}./a-z]{0,170}") {
            prop_assert_eq!(is_valid_name(&name), reference(&name));
        }
    }
}
