//! The scenario language's constructs for real models: receives from a
//! queue held in a variable, mailbox families, values in `call`/`reply`,
//! `select any`, `end:` labels. Each verdict is checked on the simulator
//! and, where it is a verdict on every schedule, on the stateful checker.

use mkipc::explore::{explore, Engine, ExploreOptions, ExploreResult};
use mkipc::scenario::{self, parse, run_sim, RunOptions, RunResult};

fn run(text: &str, seed: u64) -> RunResult {
    let scn = parse("lang.toml", text).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        seed: Some(seed),
        ..RunOptions::default()
    };
    run_sim(&scn, &opts).unwrap().result
}

fn check(text: &str) -> ExploreResult {
    let scn = parse("lang.toml", text).unwrap_or_else(|e| panic!("{e}"));
    let opts = ExploreOptions {
        exhaustive: Some(100_000),
        max_runs: 100_000,
        jobs: 1,
        engine: Engine::Stateful,
        ..ExploreOptions::default()
    };
    explore(&scn, &opts).unwrap()
}

fn parse_err(text: &str) -> String {
    match parse("lang.toml", text) {
        Ok(_) => panic!("parsed:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A family of three, each receiving on its own mailbox of a family.
const FAMILY: &str = r#"
[[mailbox]]
name = "inbox"
count = 3
capacity = 1

[[mailbox]]
name = "done"
capacity = 3

[[process]]
name = "member"
count = 3
script = """
mine = inbox[id]
receive mine (HELLO, who)
assert who == id
expect mine BYE
send done id
"""

[[process]]
name = "boss"
script = """
k = 0
while k < len(inbox)
  box = inbox[k]
  send box (HELLO, k)
  send box BYE
  k = k + 1
end
n = 0
repeat 3
  receive done x
  n = n + x
end
assert n == 0 + 1 + 2
"""
"#;

#[test]
fn a_family_receives_each_on_its_own_mailbox() {
    for seed in 0..20 {
        let r = run(FAMILY, seed);
        assert!(r.ok, "seed {seed}: {r}");
        assert_eq!(r.messages.received, 9, "seed {seed}");
    }
    let c = check(FAMILY);
    assert!(c.failure.is_none() && c.complete, "{:?}", c.failure);
    // The wrong mailbox: member 0's value check fails.
    let wrong = FAMILY.replace("send box (HELLO, k)", "send box (HELLO, k + 1)");
    let r = run(&wrong, 1);
    assert!(
        r.failure
            .as_deref()
            .unwrap_or("")
            .contains("assertion failed: who == id"),
        "{r}"
    );
}

#[test]
fn a_select_arm_receives_from_a_queue_held_in_a_variable() {
    let text = r#"
[[mailbox]]
name = "a"
capacity = 1

[[mailbox]]
name = "b"
capacity = 1

[[process]]
name = "p"
script = """
q = b
select
on receive a x
  assert 0
on receive q (V, x)
  assert x == 7
end
"""

[[process]]
name = "s"
script = "send b (V, 7)"
"#;
    assert!(run(text, 0).ok);
    let c = check(text);
    assert!(c.failure.is_none() && c.complete, "{:?}", c.failure);
}

#[test]
fn family_and_held_queue_errors_are_located() {
    let bare = FAMILY.replace("receive mine (HELLO, who)", "receive inbox (HELLO, who)");
    let e = parse_err(&bare);
    assert!(
        e.contains("lang.toml:") && e.contains("family of 3 mailboxes"),
        "{e}"
    );
    let indexed = FAMILY.replace("send box BYE", "send inbox[k] BYE");
    let e = parse_err(&indexed);
    assert!(e.contains("through a variable"), "{e}");
    let unset = FAMILY.replace("receive mine (HELLO, who)", "receive mien (HELLO, who)");
    let e = parse_err(&unset);
    assert!(e.contains("unknown port or mailbox `mien`"), "{e}");
    let port = r#"
[[port]]
name = "p"
count = 2
capacity = 1
receiver = "a"

[[process]]
name = "a"
script = "exit"
"#;
    let e = parse_err(port);
    assert!(e.contains("only a mailbox can be a family"), "{e}");
    let big = FAMILY.replace("count = 3\ncapacity = 1", "count = 5000\ncapacity = 1");
    let e = parse_err(&big);
    assert!(e.contains("between 1 and 1024"), "{e}");
}

#[test]
fn receiving_from_a_variable_that_holds_no_queue_fails_the_process() {
    let text = r#"
[[process]]
name = "p"
script = """
q = 3
receive q x
"""
"#;
    let r = run(text, 0);
    assert!(
        r.failure
            .as_deref()
            .unwrap_or("")
            .contains("`q` holds 3, not a port or mailbox"),
        "{r}"
    );
}

/// A server whose valid end is its loop top: a client that stops early
/// leaves it there (ok); one that leaves it inside a request (waiting for
/// the second part, at an unlabelled receive) is a deadlock.
const LABELLED: &str = r#"
[[mailbox]]
name = "req"
capacity = 2

[[process]]
name = "server"
script = """
forever
  end: receive req (FIRST, n)
  receive req (SECOND, m)
end
"""

[[process]]
name = "client"
script = """
send req (FIRST, 1)
send req (SECOND, 2)
send req (FIRST, 3)
"""
"#;

#[test]
fn an_end_label_marks_the_one_place_a_server_may_wait_forever() {
    // Left at the unlabelled receive (the last request is half sent).
    for seed in 0..10 {
        let r = run(LABELLED, seed);
        assert!(r.deadlock, "seed {seed}: {r}");
    }
    let c = check(LABELLED);
    assert!(
        c.failure.as_ref().is_some_and(|f| f.deadlock),
        "{:?}",
        c.failure
    );
    // Whole requests only: it ends at its labelled receive, a valid end.
    let whole = LABELLED.replace("send req (FIRST, 3)\n", "");
    for seed in 0..10 {
        let r = run(&whole, seed);
        assert!(r.ok, "seed {seed}: {r}");
    }
    let c = check(&whole);
    assert!(c.failure.is_none() && c.complete, "{:?}", c.failure);
    // `server = true` (any receive) accepts the half request: the label is
    // what makes it a deadlock.
    let server = LABELLED
        .replace("end: receive", "receive")
        .replace("name = \"server\"", "name = \"server\"\nserver = true");
    assert!(run(&server, 0).ok);
    assert!(check(&server).failure.is_none());
    // The label wins over `server = true`.
    let both = LABELLED.replace("name = \"server\"", "name = \"server\"\nserver = true");
    assert!(run(&both, 0).deadlock);
    assert!(check(&both).failure.is_some_and(|f| f.deadlock));
}

#[test]
fn an_end_label_on_a_statement_that_cannot_wait_is_an_error() {
    let bad = LABELLED.replace("end: receive req (FIRST, n)", "end: send req (FIRST, 0)");
    let e = parse_err(&bad);
    assert!(
        e.contains("lang.toml:") && e.contains("write `end: STATEMENT`"),
        "{e}"
    );
}

#[test]
fn threads_and_os_refuse_end_labels_before_starting() {
    let scn = parse("lang.toml", LABELLED).unwrap();
    let why = scenario::check_os(&scn).unwrap_err().to_string();
    assert!(why.contains("an `end:` label on `server`"), "{why}");
    let why = scenario::run_threads(&scn, std::time::Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(why.contains("an `end:` label on `server`"), "{why}");
}

/// Two messages ready on two queues before the `select` starts.
const TWO_READY: &str = r#"
[[mailbox]]
name = "a"
capacity = 1

[[mailbox]]
name = "b"
capacity = 1

[[mailbox]]
name = "go"
capacity = 1

[[process]]
name = "p"
script = """
expect go GO
took = NONE
select any
on receive a x
  took = A
on receive b x
  took = B
end
assert took == A
"""

[[process]]
name = "s"
script = """
send a 1
send b 2
send go GO
"""
"#;

#[test]
fn select_any_takes_any_ready_arm_and_select_the_first() {
    // On the simulator: both arms, across seeds.
    let (mut a, mut b) = (0, 0);
    for seed in 0..40 {
        let r = run(TWO_READY, seed);
        if r.ok {
            a += 1;
        } else {
            assert!(
                r.failure
                    .as_deref()
                    .unwrap_or("")
                    .contains("took == A (took = B)"),
                "seed {seed}: {r}"
            );
            b += 1;
        }
    }
    assert!(a > 0 && b > 0, "a {a}, b {b}");
    // The checker branches on the choice: it finds the B arm.
    let c = check(TWO_READY);
    let f = c.failure.expect("the B arm is reachable");
    assert!(f.reason.contains("took == A"), "{}", f.reason);
    // A priority select takes A whenever both are ready: never B.
    let first = TWO_READY.replace("select any", "select");
    for seed in 0..20 {
        assert!(run(&first, seed).ok, "seed {seed}");
    }
    let c = check(&first);
    assert!(c.failure.is_none() && c.complete, "{:?}", c.failure);
}

#[test]
fn select_any_with_one_ready_arm_takes_it_and_waits_like_select() {
    // Only b has a message: every choice takes b.
    let only_b = TWO_READY
        .replace("send a 1\n", "")
        .replace("assert took == A", "assert took == B");
    for seed in 0..20 {
        let r = run(&only_b, seed);
        assert!(r.ok, "seed {seed}: {r}");
    }
    let c = check(&only_b);
    assert!(c.failure.is_none() && c.complete, "{:?}", c.failure);
    // Nothing ready when it starts: it waits for the first message.
    let late = only_b.replace("expect go GO\n", "");
    for seed in 0..20 {
        assert!(run(&late, seed).ok, "seed {seed}");
    }
    let c = check(&late);
    assert!(c.failure.is_none() && c.complete, "{:?}", c.failure);
}

#[test]
fn select_takes_no_argument_but_any() {
    let e = parse_err(&TWO_READY.replace("select any", "select all"));
    assert!(
        e.contains("lang.toml:") && e.contains("`select any`"),
        "{e}"
    );
}

/// A `select` whose one arm sends to a queue nobody will ever read.
const BLOCKED_SEND: &str = r#"
[[mailbox]]
name = "q"
capacity = 1

[[mailbox]]
name = "r"
capacity = 1

[[process]]
name = "p"
script = """
send q FIRST
select
on send q SECOND
  exit
end
"""

[[process]]
name = "c"
script = """
receive r x
"""
"#;

#[test]
fn a_select_blocked_only_on_full_queues_is_a_deadlock() {
    // Before send-possible notifications it polled every 10 µs forever.
    let r = run(BLOCKED_SEND, 0);
    assert!(r.deadlock, "{r}");
    let c = check(BLOCKED_SEND);
    assert!(
        c.failure.as_ref().is_some_and(|f| f.deadlock),
        "{:?}",
        c.failure
    );
    // Someone makes room: the select wakes (no poll) and sends.
    let drained = BLOCKED_SEND.replace("receive r x", "receive q x\nreceive q y");
    for seed in 0..20 {
        let r = run(&drained, seed);
        assert!(r.ok, "seed {seed}: {r}");
    }
    let c = check(&drained);
    assert!(c.failure.is_none() && c.complete, "{:?}", c.failure);
}

#[test]
fn a_select_waiting_for_room_wakes_without_virtual_time_passing() {
    // The consumer takes the first message at 1 ms: the select's send goes
    // then, not at the next 10 µs tick of a poll.
    let text = BLOCKED_SEND.replace("receive r x", "sleep 1ms\nreceive q x\nreceive q y");
    let scn = parse("lang.toml", &text).unwrap();
    let out = run_sim(&scn, &RunOptions::default()).unwrap();
    assert!(out.result.ok, "{}", out.result);
    assert!(
        out.report.trace.events.len() < 40,
        "{} events",
        out.report.trace.events.len()
    );
}

#[test]
fn a_call_without_its_reply_pattern_is_a_located_error() {
    let text = r#"
[[port]]
name = "p"
capacity = 1
receiver = "s"
senders = ["c"]

[[process]]
name = "s"
script = """
receive p x
reply (ANS, x)
"""

[[process]]
name = "c"
script = """
call p 3 ->
"""
"#;
    let e = parse_err(text);
    assert!(
        e.contains("lang.toml:18:") && e.contains("after `->`"),
        "{e}"
    );
    // Written out, the reply's value is bound: the call checks it.
    let ok = text.replace("call p 3 ->", "call p 3 -> (ANS, y)\nassert y == 3");
    assert!(run(&ok, 0).ok);
    let c = check(&ok);
    assert!(c.failure.is_none() && c.complete, "{:?}", c.failure);
    let wrong = text.replace("call p 3 ->", "call p 3 -> (ANS, 4)");
    let r = run(&wrong, 0);
    assert!(
        r.failure.as_deref().unwrap_or("").contains("got (ANS, 3)"),
        "{r}"
    );
}

#[test]
fn a_select_that_sends_to_and_receives_from_one_rendezvous_does_not_spin() {
    // Its own wait on `q` is "a waiting receiver", which is room on a
    // rendezvous: a send-possible notification would wake it at once,
    // forever, without virtual time passing. It polls instead.
    let text = r#"
[[mailbox]]
name = "q"
capacity = 0

[[process]]
name = "p"
script = """
select
on receive q x
  exit 1
on send q HELLO
  exit
end
"""

[[process]]
name = "c"
script = """
sleep 1ms
receive q x
assert x == HELLO
"""
"#;
    let scn = parse("lang.toml", text).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = run_sim(&scn, &RunOptions::default()).unwrap().result;
        let _ = tx.send(r);
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the select spun for 20 s");
    assert!(r.ok, "{r}");
}
