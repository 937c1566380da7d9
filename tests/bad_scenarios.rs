//! Malformed scenario files give an error naming the file, line and column.

use mkipc::scenario::parse;

fn headline(text: &str) -> String {
    match parse("bad.toml", text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            // The full display shows the offending line; it must never be empty.
            assert!(e.to_string().contains(" | "), "{e}");
            e.headline()
        }
    }
}

const PORT: &str = r#"
[[port]]
name = "p"
capacity = 1
receiver = "b"
senders = ["a"]
"#;

#[test]
fn unknown_process_in_a_port() {
    let text = PORT.replace(r#"senders = ["a"]"#, r#"senders = ["zed"]"#)
        + "[[process]]\nname = \"b\"\nscript = \"receive p\"\n";
    assert_eq!(
        headline(&text),
        "bad.toml:6:12: unknown process `zed` (declared: b)"
    );
}

#[test]
fn capacity_not_a_number() {
    let text = "[[mailbox]]\nname = \"m\"\ncapacity = \"eight\"\n";
    assert_eq!(
        headline(text),
        "bad.toml:3:12: capacity must be a number (0 for a rendezvous, n for bounded) or \"unbounded\", found \"eight\""
    );
}

#[test]
fn receiving_without_a_right() {
    let text = format!(
        "{PORT}\n[[process]]\nname = \"a\"\nscript = \"\"\"\nwork 1ms\nreceive p\n\"\"\"\n\n[[process]]\nname = \"b\"\nscript = \"receive p\"\n"
    );
    assert_eq!(
        headline(&text),
        "bad.toml:12:9: process `a` receives from port `p` but holds no right to it: only its `receiver` may receive"
    );
}

#[test]
fn sending_without_a_right() {
    let text = format!("{PORT}\n[[process]]\nname = \"a\"\nscript = \"send p\"\n\n[[process]]\nname = \"b\"\nscript = \"send p\"\n");
    assert_eq!(
        headline(&text),
        "bad.toml:14:16: process `b` sends to port `p` but holds no send right to it (add it to the port's `senders`)"
    );
}

#[test]
fn unknown_statement_and_missing_end() {
    let text = "[[process]]\nname = \"a\"\nscript = \"\"\"\nrepeat 3\n  wrok 1ms\nend\n\"\"\"\n";
    assert!(headline(text).starts_with("bad.toml:5:3: unknown statement `wrok`"));
    let text = "[[process]]\nname = \"a\"\nscript = \"\"\"\nrepeat 3\n  work 1ms\n\"\"\"\n";
    assert_eq!(headline(text), "bad.toml:4:1: this block has no `end`");
}

#[test]
fn bad_duration() {
    let text = "[[process]]\nname = \"a\"\nscript = \"work 3 parsecs\"\n";
    assert_eq!(
        headline(text),
        "bad.toml:3:16: `3 parsecs` is not a duration: write 3ms, exp(3ms) or uniform(1ms, 5ms)"
    );
}

#[test]
fn toml_syntax_and_unknown_fields() {
    assert!(headline("[[process]\nname = 1\n").starts_with("bad.toml:1:"));
    let h = headline("[[mailbox]]\nname = \"m\"\ncapacity = 1\ncolour = \"red\"\n");
    assert!(h.starts_with("bad.toml:4:1: unknown field `colour`"), "{h}");
}

#[test]
fn unknown_queue_and_fault_target() {
    let text = "[[process]]\nname = \"a\"\nscript = \"send nowhere\"\n";
    assert_eq!(
        headline(text),
        "bad.toml:3:16: unknown port or mailbox `nowhere` (declared: none)"
    );
    let text =
        "[[process]]\nname = \"a\"\nscript = \"exit\"\n[[fault]]\nkill = \"b\"\nat = \"1ms\"\n";
    assert_eq!(
        headline(text),
        "bad.toml:5:8: unknown process `b` (declared: a)"
    );
}

#[test]
fn a_missing_file_names_the_file() {
    let e = mkipc::scenario::load(std::path::Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(
        e.headline()
            .starts_with("/nonexistent/x.toml: cannot read the file"),
        "{e}"
    );
}
