//! Mutated scenarios that the parser accepts are run, not only parsed: on
//! the simulator with a step limit, through the topology check, and through
//! the stateful checker with a depth and a memory limit. Whatever the
//! mutation made of the script (absurd counts, capacities, durations,
//! values at the limits, statements spliced anywhere), each must end with
//! a report or a typed error, never a panic or a hang.
//!
//! `tests/bad_scenarios.rs::mutated_scenarios_never_panic` does the same to
//! the parser alone. `MKIPC_MUTATED_RUNS=N` runs N cases instead of the
//! default few hundred (a soak: `MKIPC_MUTATED_RUNS=20000 cargo test
//! --release --test mutated_runs`); `MKIPC_MUTATED_SEED` changes the seed.

use std::sync::Arc;

use mkipc::explore::{explore, ExploreOptions};
use mkipc::scenario::{build_sim, check_topology, parse, Scenario};
use mkipc::sim::Sim;

/// xorshift64: deterministic, no dependency.
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

/// Script and file pieces that stress the interpreter rather than the
/// parser: values at the limits, huge and zero counts and durations,
/// arithmetic at the edges, self-sends at capacity 0, spawns in loops.
const PIECES: &[&str] = &[
    "\n",
    "end\n",
    "forever\n",
    "repeat 9223372036854775807\n",
    "repeat 0\n",
    "while 1\n",
    "if x\n",
    "else\n",
    "spawn ",
    "send q\n",
    "send q (A, 9223372036854775807)\n",
    "send q array(4095, -1)\n",
    "send q drop-oldest\n",
    "send q fail\n",
    "receive q x\n",
    "receive q (A, x)\n",
    "receive q timeout 0ms\n",
    "receive q timeout 18446744073709ms\n",
    "receive-any timeout 1ms\n",
    "send-to a\n",
    "receive-from a timeout 1ms\n",
    "expect q _\n",
    "call q 1 -> x\n",
    "reply x\n",
    "try-send q 1 else\n",
    "select\non receive q x\non timeout 1ms\nend\n",
    "select any\non receive q x\non send q 1\nend\n",
    "work 18446744073709ms\n",
    "sleep 18446744073709ms\n",
    "work exp(18446744073709ms)\n",
    "sleep uniform(0ms, 18446744073709ms)\n",
    "x = 9223372036854775807\n",
    "x = x + 1\n",
    "x = x * x\n",
    "x = 0 - x - 1\n",
    "x = x / 0\n",
    "x = x % -1\n",
    "x = -x\n",
    "x = array(4096, x)\n",
    "x = (x, x, x, x)\n",
    "x = x[9223372036854775807]\n",
    "x = len(x)\n",
    "assert x == x\n",
    "exit 2147483647\n",
    "exit -2147483648\n",
    "destroy q\n",
    "close p\n",
    "lock m\n",
    "unlock m\n",
    "load c x\n",
    "store c x\n",
    "end: receive q x\n",
    "capacity = 0\n",
    "capacity = 9223372036854775807\n",
    "capacity = \"unbounded\"\n",
    "on_full = \"drop-oldest\"\n",
    "count = 4096\n",
    "count = 1\n",
    "server = true\n",
    "expect_error = true\n",
    "[[fault]]\nkill = \"a\"\nat = \"0ms\"\n",
    "[[fault]]\nkill = \"a\"\nchance = 1.0\n",
    "[[fault]]\nkill = \"a\"\nstep = 18446744073709551615\n",
    "[invariants]\nno_message_lost = true\nnever_exceeds = { q = 0 }\n",
];

/// A scenario every piece can name: a mailbox `q`, a pipe `p`, a shared
/// cell `c`, a lock `m`, processes `a` and `b`, a spawned `w`.
const BASE: &str = r#"
[[mailbox]]
name = "q"
capacity = 1

[[pipe]]
name = "p"
reader = "b"
writers = ["a"]

[[shared]]
name = "c"

[[lock]]
name = "m"

[[process]]
name = "a"
script = """
x = 1
send q (A, x)
spawn w
send p x
"""

[[process]]
name = "b"
script = """
receive q (A, x)
receive p y
lock m
load c z
store c z + 1
unlock m
"""

[[process]]
name = "w"
start = "spawned"
script = """
x = 0
work 1ms
"""
"#;

fn seeds() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut seeds: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    seeds.sort();
    // The base first and often: every piece means something there.
    let base = BASE.to_string();
    let mut all = vec![base.clone(), base.clone(), base];
    all.extend(seeds);
    all
}

/// One mutation of `text`: a piece inserted (mostly at a line start),
/// a span replaced by one, or a line duplicated.
fn mutate(rng: &mut Rng, text: &mut String) {
    let mut at = rng.below(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let piece = PIECES[rng.below(PIECES.len())];
    match rng.below(4) {
        0 | 1 => {
            // At the start of the line `at` is in.
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            text.insert_str(start, piece);
        }
        2 => {
            let mut end = (at + 1 + rng.below(12)).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(at..end, piece);
        }
        _ => {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
            let line = text[start..end].to_string();
            text.insert_str(start, &line);
        }
    }
}

/// Runs an accepted scenario every way this test can: a panic anywhere is
/// the failure (caught and reported with the text by the caller).
fn exercise(scn: &Scenario, seed: u64) {
    let scn = Arc::new(scn.clone());
    let _ = check_topology(&scn);
    let builder = Sim::builder()
        .seed(seed)
        .max_steps(20_000)
        .trace_limit(2_000);
    if let Ok((sim, _handles)) = build_sim(&scn, builder) {
        let _ = sim.run().map_err(|f| f.to_string());
    }
    let opts = ExploreOptions {
        exhaustive: Some(6),
        max_depth: Some(40),
        max_memory: Some(8 << 20),
        max_runs: 200,
        keep_going: true,
        progress: false,
        ..Default::default()
    };
    if let Ok(r) = explore(&scn, &opts) {
        for f in &r.failures {
            assert!(!f.reason.is_empty());
        }
    }
}

#[test]
fn mutated_scenarios_run_without_panicking() {
    let cases: usize = std::env::var("MKIPC_MUTATED_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("MKIPC_MUTATED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x2545_F491_4F6C_DD1D);
    let seeds = seeds();
    let mut rng = Rng(seed | 1);
    let mut accepted = 0;
    for case in 0..cases {
        let mut text = seeds[case % seeds.len()].clone();
        for _ in 0..1 + rng.below(5) {
            mutate(&mut rng, &mut text);
        }
        let Ok(scn) = parse("mutated.toml", &text) else {
            continue;
        };
        accepted += 1;
        let run_seed = rng.next();
        if std::panic::catch_unwind(|| exercise(&scn, run_seed)).is_err() {
            panic!("case {case} (seed {run_seed}) panicked on:\n{text}");
        }
    }
    // The mutations must leave enough scenarios valid for this to test
    // the interpreter at all.
    assert!(
        accepted * 10 >= cases,
        "only {accepted} of {cases} accepted"
    );
}
