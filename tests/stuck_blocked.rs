//! `mkipc run`: a process stuck at the end of a run shows the time it
//! waited, up to the end (it showed `blocked ms 0.000`).

use std::process::Command;

use serde_json::Value;

const SCENARIO: &str = r#"
name = "stuck"
[[mailbox]]
name = "m"
capacity = 1
[[process]]
name = "waiter"
script = "receive m"
[[process]]
name = "sleeper"
script = """
sleep 5000ms
receive m
"""
"#;

#[test]
fn a_stuck_process_reports_its_wait_up_to_the_end() {
    let dir = std::env::temp_dir().join(format!("mkipc-stuck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stuck.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkipc"));
        cmd.arg("run").arg(&file);
        if json {
            cmd.arg("--json");
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let (text, json) = (run(false), run(true));
    let _ = std::fs::remove_dir_all(&dir);
    let doc: Value = serde_json::from_str(&json).unwrap();
    let blocked: Vec<(String, f64)> = doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["blocked_ms"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        blocked,
        [("waiter".to_string(), 5000.0), ("sleeper".to_string(), 0.0)]
    );
    let waiter = text.lines().find(|l| l.starts_with("waiter ")).unwrap();
    assert!(waiter.contains(" 5000.000 "), "{text}");
    assert!(waiter.ends_with("stuck"), "{text}");
}
