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

/// `/dev/zero` has no end and `/dev/urandom` no end nor valid UTF-8: a
/// scenario "file" read without a bound took memory until the system
/// refused it (or hung). Both are refused at `MAX_FILE_SIZE`, as is a
/// regular file past it; a file at the limit is read.
#[test]
fn an_endless_or_oversized_file_is_refused_at_the_size_limit() {
    use mkipc::scenario::{load, read_bounded, MAX_FILE_SIZE};
    use std::path::Path;
    for dev in ["/dev/zero", "/dev/urandom"] {
        let e = load(Path::new(dev)).unwrap_err();
        assert_eq!(
            e.headline(),
            format!("{dev}: cannot read the file: larger than {MAX_FILE_SIZE} bytes, the limit")
        );
    }
    let dir = std::env::temp_dir().join(format!("mkipc-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.toml");
    std::fs::write(&big, vec![b'#'; 1001]).unwrap();
    assert_eq!(
        read_bounded(&big, 1000).unwrap_err(),
        "larger than 1000 bytes, the limit"
    );
    assert_eq!(read_bounded(&big, 1001).unwrap().len(), 1001);
    let e = load(&dir).unwrap_err();
    assert!(
        e.headline()
            .contains("cannot read the file: Is a directory"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each member of a family parses and keeps its own copy of the script: a
/// family of 4096 with a 20,000-line script (half a megabyte of file) was
/// 82 million statements to parse and hold. The scripts' total size,
/// families expanded, is limited, and the error points at the script.
#[test]
fn a_family_whose_scripts_add_up_past_the_limit_is_a_located_error() {
    use mkipc::scenario::{MAX_PROCESSES, MAX_SCRIPTS_SIZE};
    let family = |script: &str| {
        format!(
            "[[process]]\nname = \"a\"\ncount = {MAX_PROCESSES}\nscript = \"\"\"\n{script}\"\"\"\n"
        )
    };
    // Exactly at the limit (the script as TOML reads it has no first
    // newline); a comment keeps the test quick to parse.
    let per_member = MAX_SCRIPTS_SIZE / MAX_PROCESSES;
    let fits = "exit\n#".to_string() + &"-".repeat(per_member - 7) + "\n";
    assert_eq!(fits.len() * MAX_PROCESSES, MAX_SCRIPTS_SIZE);
    let scn = parse("ok.toml", &family(&fits)).unwrap();
    assert_eq!(scn.processes.len(), MAX_PROCESSES);
    let over = fits + "\n";
    assert_eq!(
        headline(&family(&over)),
        format!(
            "bad.toml:4:10: the scripts are too long: at most {MAX_SCRIPTS_SIZE} bytes in all, \
             each member of a family (`count = N`) counting its own copy"
        )
    );
}

#[test]
fn an_error_after_escapes_and_unicode_does_not_panic_and_points_at_the_word() {
    // The script is a basic string with escapes: its decoded offsets differ
    // from the file's, and mapping them naively landed inside an `é`.
    let text = "[[process]]\nname = \"a\"\nscript = \"\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n# éééééééééé\\nsend nowhere\"\n";
    let e = parse("bad.toml", text).unwrap_err();
    assert_eq!(
        e.headline(),
        "bad.toml:3:52: unknown port or mailbox `nowhere` (declared: none)"
    );
    // A \u escape, a tab escape and a line-ending backslash before the error.
    let text = "[[process]]\nname = \"a\"\nscript = \"\"\"\n# \\u00e9t\\u00e9 \\\n   # x\n\\twork 3 parsecs\n\"\"\"\n";
    assert_eq!(
        headline(text),
        "bad.toml:6:8: `3 parsecs` is not a duration: write 3ms, exp(3ms) or uniform(1ms, 5ms)"
    );
}

#[test]
fn a_forever_loop_around_nothing_is_refused() {
    // It would spin without ever reaching a scheduling point: a hang.
    for script in ["forever\nend", "forever\n  repeat 3\n  end\nend"] {
        let text = format!("[[process]]\nname = \"a\"\nscript = \"\"\"\n{script}\n\"\"\"\n");
        assert!(
            headline(&text).starts_with("bad.toml:4:1: this `forever` loop has nothing to run"),
            "{script}"
        );
    }
}

#[test]
fn a_huge_repeat_around_nothing_ends_at_once() {
    let text = "[[process]]\nname = \"a\"\nscript = \"\"\"\nrepeat 18446744073709551615\n  repeat 18446744073709551615\n  end\nend\nexit 3\n\"\"\"\n";
    let scn = parse("ok.toml", text).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = mkipc::scenario::run_sim(&scn, &Default::default()).unwrap();
        let _ = tx.send(r.result);
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("an empty repeat loop spun for 20 s");
    assert_eq!(r.processes[0].status, "exited(3)");
}

/// A small deterministic generator (no dependency needed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Mutated scenario files (every example, cut, spliced, with characters
/// swapped for quotes, escapes, digits, unicode...) are accepted or refused
/// with an error that names the file; the parser never panics.
#[test]
fn mutated_scenarios_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut seeds: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    seeds.sort();
    let pieces = [
        "\"",
        "'",
        "\"\"\"",
        "\\",
        "\\n",
        "\\u00e9",
        "\\t",
        "é",
        "€",
        "😀",
        "\n",
        "\r\n",
        "#",
        "[",
        "]",
        "=",
        "0",
        "-1",
        "18446744073709551615",
        "1e400",
        "nan",
        "end\n",
        "forever\n",
        "repeat 99999999999\n",
        "spawn ",
        "send ",
        "receive ",
        " timeout 1ms",
        "exit 99999999999",
        "work exp(",
        ")",
        "uniform(2ms,1ms)",
        "capacity",
        "owner",
        "if x < 3\n",
        "else\n",
        "while i\n",
        "select\n",
        "on receive q (ACQ, p)\n",
        "on send q v if ok\n",
        "on timeout 2ms\n",
        "try-send q 1 else\n",
        "assert ",
        "expect q ",
        "x = ",
        "a[i] = ",
        "(((((",
        "!!!!!!",
        "\"ACQ\"",
        "[params]\nN = 3\n",
        "count = 3\n",
        "count = \"N\"\n",
        "array(99999999999, 0)",
        " && ",
        "%",
        "\u{0}",
        "\u{feff}",
        "close ",
        "load counter x\n",
        "store counter ",
        "lock m\n",
        "unlock ",
        "[[pipe]]\nname = \"p\"\nreader = ",
        "[[fifo]]\n",
        "writers = [",
        "[[shared]]\nname = ",
        "value = 9223372036854775807\n",
        "[[lock]]\nname = \"m\"\n",
        "EOF",
        // Receives through variables, mailbox families, call/reply values,
        // `select any`, `end:` labels.
        "receive mine (REQ, r, h)\n",
        "expect mine ANS\n",
        "on receive mine x\n",
        "mine = req[id]\n",
        "req[0]",
        "[[mailbox]]\nname = \"req\"\ncount = 3\ncapacity = 1\n",
        "count = 99999\n",
        "call q (REQ, 1) -> ANS\n",
        "call next x -> (ANS, y)\n",
        " -> ",
        "reply ANS\n",
        "reply (ANS, x + 1)\n",
        "select any\n",
        "end: receive q x\n",
        "end: ",
        "end:select\n",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..3000 {
        let mut text = seeds[case % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => text.insert_str(at, pieces[rng.below(pieces.len())]),
                1 => {
                    let mut end = (at + 1 + rng.below(8)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, pieces[rng.below(pieces.len())]);
                }
                _ => text.truncate(at),
            }
        }
        match std::panic::catch_unwind(|| parse("fuzz.toml", &text)) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => assert!(e.headline().starts_with("fuzz.toml"), "{e}"),
            Err(_) => panic!("the parser panicked on:\n{text}"),
        }
    }
}

/// A sender and a receiver whose one statement sits inside `depth` nested
/// `repeat 1` blocks.
fn nested(depth: usize) -> String {
    let wrap = |stmt: &str| "repeat 1\n".repeat(depth) + stmt + "\n" + &"end\n".repeat(depth);
    format!(
        "{PORT}\n[[process]]\nname = \"a\"\nscript = \"\"\"\n{}\"\"\"\n\n[[process]]\nname = \"b\"\nscript = \"\"\"\n{}\"\"\"\n",
        wrap("send p"),
        wrap("receive p")
    )
}

#[test]
fn blocks_nested_too_deeply_are_a_located_error_naming_the_limit() {
    // Ten thousand levels overflowed the parser's stack (abort) before.
    let limit = mkipc::scenario::MAX_NESTING;
    assert!(limit >= 70, "70 nested blocks must stay allowed");
    let first_script_line = 11;
    let expected = format!(
        "bad.toml:{}:1: blocks nest too deeply: at most {limit} blocks (`repeat`, `forever`, `if`, `while`, `select`, `try-send ... else`) may be open at once, and this `repeat` would be level {}",
        first_script_line + limit,
        limit + 1
    );
    assert_eq!(headline(&nested(10_000)), expected);
    assert_eq!(headline(&nested(limit + 1)), expected);
    // A `forever` counts as a level too.
    let script = "repeat 1\n".repeat(limit) + "forever\nreceive p\nend\n" + &"end\n".repeat(limit);
    let text = format!("{PORT}\n[[process]]\nname = \"a\"\nscript = \"send p\"\n\n[[process]]\nname = \"b\"\nscript = \"\"\"\n{script}\"\"\"\n");
    assert!(
        headline(&text).ends_with(&format!("this `forever` would be level {}", limit + 1)),
        "{}",
        headline(&text)
    );
    // At the limit, the file is fine.
    let scn = parse("ok.toml", &nested(limit)).unwrap();
    let outcome = mkipc::scenario::run_sim(&scn, &Default::default()).unwrap();
    assert!(outcome.result.ok);
    assert_eq!(outcome.result.messages.received, 1);
}

/// Every statement's line was found by counting the newlines before it
/// from the start of the file, so parsing a script of n lines took time in
/// n² (40,000 lines: a minute; 100,000: a quarter of an hour, in a debug
/// build). Now linear: 100,000 lines, and an error on the last one located
/// exactly, well within the bound, which is generous for a loaded machine.
#[test]
fn a_long_script_parses_in_linear_time_with_exact_lines() {
    let lines = 100_000;
    let body = "work 1ms\n".repeat(lines - 1) + "frobnicate";
    let started = std::time::Instant::now();
    let h = headline(&script(&body));
    assert!(
        h.starts_with(&format!(
            "bad.toml:{}:1: unknown statement `frobnicate`",
            7 + lines
        )),
        "{h}"
    );
    let body = "work 1ms\n".repeat(lines);
    let scn = parse("ok.toml", &script(&body)).unwrap();
    let stmts = &scn.processes[0].script;
    assert_eq!(stmts.len(), lines);
    assert_eq!((stmts[0].line, stmts[lines - 1].line), (8, 7 + lines));
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
}

fn script(body: &str) -> String {
    format!("[[mailbox]]\nname = \"q\"\ncapacity = 1\n\n[[process]]\nname = \"a\"\nscript = \"\"\"\n{body}\n\"\"\"\n")
}

#[test]
fn expressions_nested_or_long_beyond_the_limits_are_located_errors() {
    use mkipc::scenario::{MAX_EXPR_DEPTH, MAX_EXPR_TOKENS};
    // Ten thousand parentheses or `!` would overflow a recursive parser.
    let deep = format!("x = {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let h = headline(&script(&deep));
    assert!(
        h.starts_with("bad.toml:8:")
            && h.ends_with(&format!(
                "this expression is too long: at most {MAX_EXPR_TOKENS} tokens"
            )),
        "{h}"
    );
    let deep = format!("x = {}1{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(
        headline(&script(&deep)),
        format!(
            "bad.toml:8:{}: this expression nests too deeply: at most {MAX_EXPR_DEPTH} levels",
            5 + MAX_EXPR_DEPTH
        )
    );
    let h = headline(&script(&format!("x = {}1", "!".repeat(100))));
    assert!(h.contains("nests too deeply"), "{h}");
    let h = headline(&script(&format!(
        "receive q {}_{}",
        "(".repeat(100),
        ")".repeat(100)
    )));
    assert!(h.contains("nests too deeply"), "{h}");
    // Within the limits, fine.
    parse(
        "ok.toml",
        &script(&format!("x = {}1{}", "(".repeat(20), ")".repeat(20))),
    )
    .unwrap();
}

#[test]
fn language_mistakes_are_located_errors() {
    for (body, expected) in [
        ("y = x + 1", "bad.toml:8:5: variable `x` is read here but never set in this script (set it with `x = ...` or bind it in a receive pattern)"),
        ("send q blok", "bad.toml:8:8: unknown send policy or unset variable `blok` (policies: block, fail, drop-newest, drop-oldest)"),
        ("else", "bad.toml:8:1: `else` belongs alone on a line inside an `if` block (once)"),
        ("on receive q", "bad.toml:8:1: `on` starts an arm of a `select` block"),
        ("select\nwork 1ms\nend", "bad.toml:9:1: the statements of a `select` go in its arms: start one with `on receive QUEUE [PATTERN]`, `on send QUEUE [VALUE]` or `on timeout D`"),
        ("select\non timeout 1ms\nend", "bad.toml:8:1: this `select` has no `on receive` or `on send` arm"),
        ("if 1\nwork 1ms", "bad.toml:8:1: this block has no `end`"),
        ("x = (1, 2", "bad.toml:8:10: expected `)` here"),
        ("q = 3", "bad.toml:8:1: `q` cannot be assigned: it is a process's index (`id`), a symbol or `[params]` name (upper case), or a port or mailbox"),
        ("receive q x timeout", "bad.toml:8:9: write `receive QUEUE timeout D`"),
        ("x = 1 $ 2", "bad.toml:8:7: unexpected `$` in an expression"),
    ] {
        assert_eq!(headline(&script(body)), expected, "{body}");
    }
}

#[test]
fn params_and_families_are_checked() {
    let text = "[params]\nn = 3\n";
    assert!(headline(text).starts_with("bad.toml:2:5: a param name is upper case"));
    let text = "[[process]]\nname = \"w\"\ncount = 0\nscript = \"exit\"\n";
    assert_eq!(
        headline(text),
        "bad.toml:3:9: `count` must be between 1 and 4096, found 0"
    );
    let text = "[[port]]\nname = \"p\"\ncapacity = 1\nreceiver = \"w\"\n\n[[process]]\nname = \"w\"\ncount = 2\nscript = \"exit\"\n";
    assert_eq!(
        headline(text),
        "bad.toml:4:12: `w` is a family of 2 processes: name one, `w[0]`..`w[1]`"
    );
    let e = mkipc::scenario::parse_with("bad.toml", "[params]\nN = 1\n", &[("M".into(), 2)])
        .unwrap_err();
    assert_eq!(
        e.headline(),
        "bad.toml: `--set M=...`: no such param in `[params]` (declared: N)"
    );
    // A family member is named `w[i]`, and its script sees its index as `id`.
    let text =
        "[params]\nN = 3\n\n[[process]]\nname = \"w\"\ncount = \"N\"\nscript = \"assert id < N\"\n";
    let scn = mkipc::scenario::parse_with("ok.toml", text, &[("N".into(), 5)]).unwrap();
    let names: Vec<&str> = scn.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["w[0]", "w[1]", "w[2]", "w[3]", "w[4]"]);
    let r = mkipc::scenario::run_sim(&scn, &Default::default())
        .unwrap()
        .result;
    assert!(r.ok, "{r}");
}
