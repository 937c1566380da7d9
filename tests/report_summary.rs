//! A large run's text report is a summary: how the processes ended, the
//! rows' sums (which are the message totals), the top ten processes by
//! messages and by time blocked and the top ten queues; `--all-rows`
//! prints every row, and `--json` always has them. Checked against the
//! JSON's full table: the sums add up, the top lists are the top rows in
//! order, and a small run still prints every row.

use std::process::Command;

use serde_json::Value;

/// `N` workers, each on its own mailbox; worker `k` gets `k % 7 + 1` jobs
/// from the master and works a random 0-4 ms on each, so the rows differ.
fn scenario(n: usize) -> String {
    format!(
        r#"
name = "many workers"
seed = 3

[params]
N = {n}

[[mailbox]]
name = "inbox"
count = {n}
capacity = 2

[[mailbox]]
name = "done"
capacity = "unbounded"

[[process]]
name = "master"
script = """
k = 0
while k < N
  j = 0
  while j < k % 7 + 1
    q = inbox[k]
    send q (JOB, j)
    j = j + 1
  end
  k = k + 1
end
k = 0
while k < N
  receive done _
  k = k + 1
end
"""

[[process]]
name = "worker"
count = {n}
script = """
mine = inbox[id]
j = 0
while j < id % 7 + 1
  receive mine (JOB, x)
  work uniform(0ms, 4ms)
  j = j + 1
end
send done id
"""
"#
    )
}

fn run(text: &str, args: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!("mkipc-summary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("s{}.toml", text.len()));
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .arg("run")
        .arg(&file)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The numbers on the line that follows `title`'s table header, for each
/// of the next `rows` lines: (name, sent, received, blocked ms).
fn table(text: &str, title: &str, rows: usize) -> Vec<(String, u64, u64, f64)> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(title))
        .unwrap_or_else(|| panic!("no `{title}` in\n{text}"));
    lines[at + 2..at + 2 + rows]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_large_run_prints_a_summary_that_adds_up() {
    let n = 120;
    let text = scenario(n);
    let summary = run(&text, &[]);
    let json: Value = serde_json::from_str(&run(&text, &["--json"])).unwrap();
    let procs = json["processes"].as_array().unwrap();
    assert_eq!(procs.len(), n + 1, "--json keeps every row");
    // Far fewer lines than rows.
    assert!(summary.lines().count() < 90, "{summary}");
    assert!(summary.contains("every row with --all-rows"), "{summary}");

    // The rows' sums: the message totals.
    let sum = |f: &str| procs.iter().map(|p| p[f].as_u64().unwrap()).sum::<u64>();
    let m = &json["messages"];
    assert_eq!(sum("sent"), m["sent"].as_u64().unwrap());
    assert_eq!(sum("received"), m["received"].as_u64().unwrap());
    let line = format!(
        "processes: {} ({} exited(0)); their rows add up to {} sent, {} received, {} drops",
        n + 1,
        n + 1,
        sum("sent"),
        sum("received"),
        sum("drops")
    );
    assert!(summary.contains(&line), "{line}\n{summary}");
    let blocked: f64 = procs
        .iter()
        .map(|p| p["blocked_ms"].as_f64().unwrap())
        .sum();
    assert!(
        summary.contains(&format!("{blocked:.3} ms blocked")),
        "{blocked}\n{summary}"
    );

    // The top lists: the JSON's rows sorted by the key, ties by row order.
    let ranked = |key: &dyn Fn(&Value) -> f64| {
        let mut order: Vec<usize> = (0..procs.len()).collect();
        order.sort_by(|&a, &b| key(&procs[b]).total_cmp(&key(&procs[a])).then(a.cmp(&b)));
        order
            .into_iter()
            .take(10)
            .map(|i| procs[i]["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let by_messages = table(&summary, "top 10 processes by messages", 10);
    let names: Vec<String> = by_messages.iter().map(|r| r.0.clone()).collect();
    let want = ranked(&|p| (p["sent"].as_u64().unwrap() + p["received"].as_u64().unwrap()) as f64);
    assert_eq!(names, want, "{summary}");
    assert_eq!(names[0], "master");
    let by_blocked = table(&summary, "top 10 processes by time blocked", 10);
    let names: Vec<String> = by_blocked.iter().map(|r| r.0.clone()).collect();
    assert_eq!(
        names,
        ranked(&|p| p["blocked_ms"].as_f64().unwrap()),
        "{summary}"
    );
    assert!(by_blocked.windows(2).all(|w| w[0].3 >= w[1].3));

    // Queues: the sums, and the busiest queue first.
    let queues = json["queues"].as_array().unwrap();
    assert_eq!(queues.len(), n + 1);
    let qsum = |f: &str| queues.iter().map(|q| q[f].as_u64().unwrap()).sum::<u64>();
    let qline = format!(
        "queues: {}; their rows add up to {} sent, {} dropped, {} received",
        n + 1,
        qsum("sent"),
        qsum("dropped"),
        qsum("received")
    );
    assert!(summary.contains(&qline), "{qline}\n{summary}");
    let lines: Vec<&str> = summary.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("top 10 queues by messages"))
        .unwrap();
    assert!(lines[at + 2].starts_with("done "), "{summary}");

    // Every row when asked.
    let all = run(&text, &["--all-rows"]);
    for p in procs {
        let name = p["name"].as_str().unwrap();
        assert!(
            all.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing from --all-rows"
        );
    }
    assert!(!all.contains("top 10"), "{all}");
}

#[test]
fn a_small_run_prints_every_row() {
    let text = scenario(5);
    let out = run(&text, &[]);
    assert!(!out.contains("top 10"), "{out}");
    for k in 0..5 {
        let row = format!("worker[{k}] ");
        assert!(out.lines().any(|l| l.starts_with(&row)), "{row}\n{out}");
    }
    assert_eq!(out, run(&text, &["--all-rows"]));
}
