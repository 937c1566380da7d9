//! Smoke tests of the binary itself (the rest is tested in-process).

use std::process::Command;

fn mkipc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn run_json_and_exit_codes() {
    let out = mkipc(&["run", "examples/scenarios/capacity-zero.toml", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["messages"]["received"], 10);

    let out = mkipc(&["run", "examples/scenarios/ownership.toml"]);
    assert_eq!(out.status.code(), Some(1), "a failed invariant exits 1");

    let dir = std::env::temp_dir().join(format!("mkipc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[mailbox]]\nname = \"m\"\ncapacity = \"lots\"\n").unwrap();
    let out = mkipc(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:3:12: capacity must be a number"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in ["demo", "run", "explore", "bench", "cleanup", "completions"] {
        let out = mkipc(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{cmd} --help has no example"
        );
    }
    let out = mkipc(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("mkipc"));
}
