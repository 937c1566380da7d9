//! A process the os backend kills (at `--timeout`) runs no code after the
//! signal, so it never reports its figures (issue 22). The report must say
//! so, not print zeros as if it had done nothing: its row shows `-`, the
//! JSON row carries `unknown`, the totals say they count only the
//! processes that reported, and `lost` is not claimed.

use std::process::Command;

const STUCK: &str = r#"
[[mailbox]]
name = "jobs"
capacity = 2

[[process]]
name = "feeder"
script = """
send jobs
send jobs
"""

[[process]]
name = "waiter"
script = """
receive jobs
receive jobs
receive jobs
"""

[invariants]
no_message_lost = true
"#;

fn run(file: &std::path::Path, json: bool) -> (Option<i32>, String, String) {
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--backend",
        "os",
        "--timeout",
        "1",
    ];
    if json {
        args.push("--json");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_killed_process_is_reported_as_unknown_not_as_zeros() {
    let dir = std::env::temp_dir().join(format!("mkipc-os-killed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stuck.toml");
    std::fs::write(&file, STUCK).unwrap();

    let (code, out, err) = run(&file, true);
    assert_eq!(code, Some(1), "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    let procs = r["processes"].as_array().unwrap();
    let waiter = procs.iter().find(|p| p["name"] == "waiter").unwrap();
    assert!(
        waiter["status"].as_str().unwrap().starts_with("killed"),
        "{waiter}"
    );
    assert!(waiter["unknown"].is_string(), "{waiter}");
    let feeder = procs.iter().find(|p| p["name"] == "feeder").unwrap();
    assert!(feeder.get("unknown").is_none(), "{feeder}");
    assert_eq!(feeder["sent"], 2);
    let incomplete = r["messages"]["incomplete"]
        .as_str()
        .expect("totals say they are partial");
    assert!(incomplete.contains("waiter"), "{incomplete}");
    let lost = r["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "no message lost")
        .unwrap();
    assert!(
        lost["message"].as_str().unwrap().starts_with("not known"),
        "{lost}"
    );

    let (_, text, err) = run(&file, false);
    let row = text
        .lines()
        .find(|l| l.starts_with("waiter"))
        .unwrap_or_else(|| panic!("{text}{err}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..6], ["-"; 5], "{row}");
    assert!(text.contains("lost unknown"), "{text}");
    assert!(!text.contains(" lost\n"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
