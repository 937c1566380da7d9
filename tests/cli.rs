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

fn temp_scenario(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mkipc-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_no_panic(out: &std::process::Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{what} panicked:\n{err}");
    assert_ne!(out.status.code(), Some(101), "{what}");
    assert!(out.status.code().is_some(), "{what} died by a signal");
}

#[test]
fn explore_with_absurd_jobs_or_a_last_seed_does_not_panic_or_wrap() {
    let deadlock = "examples/scenarios/deadlock.toml";
    // More threads than the system allows: fewer workers, same answer.
    let out = mkipc(&["explore", deadlock, "--seeds", "8", "--jobs", "1000000"]);
    assert_no_panic(&out, "--jobs 1000000");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("seed 0:"));
    // The last seeds before u64::MAX: exactly those, no wrap-around to 0.
    let out = mkipc(&[
        "explore",
        deadlock,
        "--seeds",
        "5",
        "--first-seed",
        "18446744073709551614",
    ]);
    assert_no_panic(&out, "--first-seed near u64::MAX");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("--seed 18446744073709551614") || stdout.contains("no failure in 2 runs"),
        "{stdout}"
    );
    let out = mkipc(&[
        "explore",
        "examples/scenarios/capacity-zero.toml",
        "--seeds",
        "5",
        "--first-seed",
        "18446744073709551615",
    ]);
    assert_no_panic(&out, "--first-seed u64::MAX");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no failure in 1 runs"));
}

#[test]
fn bench_refuses_a_scale_that_is_not_a_positive_number() {
    for scale in ["nan", "-1", "0", "inf"] {
        let out = mkipc(&["bench", &format!("--scale={scale}")]);
        assert_eq!(out.status.code(), Some(2), "--scale={scale}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--scale must be a number > 0"),
            "--scale={scale}"
        );
    }
}

#[test]
fn a_huge_time_scale_on_the_os_backend_does_not_panic() {
    let path = temp_scenario(
        "scale",
        "[[process]]\nname = \"a\"\nscript = \"work 1ms\"\n\n[[fault]]\nkill = \"a\"\nat = \"1ms\"\n",
    );
    let out = mkipc(&[
        "run",
        path.to_str().unwrap(),
        "--backend",
        "os",
        "--time-scale",
        "1e300",
        "--timeout",
        "1",
        "--json",
    ]);
    assert_no_panic(&out, "--time-scale 1e300");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false, "{json}");
    assert!(
        json["failure"].as_str().unwrap().contains("timed out"),
        "{json}"
    );
    let left = mkipc::os::leftovers(json["run_id"].as_str().unwrap());
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
