//! `mkipc demo` writes its files where the user says (`--out DIR`), by
//! default `./mkipc-demo/` in the directory it runs in.

use std::path::{Path, PathBuf};
use std::process::Command;

fn demo(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .arg("demo")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mkipc-demo-out-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn demo_writes_to_mkipc_demo_in_the_current_directory_by_default() {
    let dir = temp_dir("default");
    let text = demo(&dir, &[]);
    assert!(dir.join("mkipc-demo/queue-length.svg").is_file());
    assert!(
        !dir.join("target").exists(),
        "no ./target/ outside a cargo project"
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["mkipc-demo"], "nothing else is written");
    assert!(
        text.contains("Chart of queue length over time: mkipc-demo/queue-length.svg"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_writes_to_the_directory_given() {
    let dir = temp_dir("given");
    let chosen = dir.join("my/charts");
    let text = demo(&dir, &["--out", chosen.to_str().unwrap()]);
    let svg = chosen.join("queue-length.svg");
    assert!(svg.is_file());
    assert!(!dir.join("mkipc-demo").exists());
    assert!(text.contains(&svg.display().to_string()), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--out` naming a file (or a device) is bad input, said before the run:
/// it was run, then failed with "cannot write FILE/queue-length.svg: File
/// exists", naming a path that is not the problem.
#[test]
fn an_out_that_is_not_a_directory_is_bad_input_naming_it() {
    let dir = temp_dir("file");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    for out in [file.to_str().unwrap(), "/dev/null"] {
        let run = Command::new(env!("CARGO_BIN_EXE_mkipc"))
            .args(["demo", "--out", out])
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(
            err.contains(&format!("--out {out}: not a directory")),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    let _ = std::fs::remove_dir_all(&dir);
}
