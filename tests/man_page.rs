//! `mkipc man`: a manual generated from the clap definitions, naming every
//! command and every option, that groff reads without a warning.

use std::process::{Command, Stdio};

use clap::CommandFactory;

fn mkipc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .output()
        .unwrap()
}

/// How roff writes a literal `-` (every one is escaped).
fn roff(s: &str) -> String {
    s.replace('-', "\\-")
}

#[test]
fn the_man_page_mentions_every_command_and_option() {
    let out = mkipc(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH mkipc 1"), "{page}");
    let cli = mkipc::cli::Cli::command();
    let subs: Vec<_> = cli.get_subcommands().collect();
    assert!(subs.len() >= 8);
    for sub in subs {
        let name = sub.get_name();
        // Listed on mkipc(1), and a page of its own with its options.
        assert!(
            page.contains(&roff(&format!("mkipc-{name}(1)"))),
            "{name} not listed"
        );
        assert!(
            page.contains(&format!(".TH mkipc-{name} 1  \"mkipc ")),
            "no page for {name}"
        );
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    page.contains(&roff(&format!("--{long}"))),
                    "{name} --{long} missing"
                );
            }
        }
    }
}

#[test]
fn groff_reads_the_page_without_a_warning() {
    let page = mkipc(&["man"]).stdout;
    let Ok(mut groff) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("groff not installed: skipped");
        return;
    };
    use std::io::Write;
    groff.stdin.take().unwrap().write_all(&page).unwrap();
    let out = groff.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warned");
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let dir = std::env::temp_dir().join(format!("mkipc-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = mkipc(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(dir.join("mkipc.1").is_file());
    for sub in mkipc::cli::Cli::command().get_subcommands() {
        let file = dir.join(format!("mkipc-{}.1", sub.get_name()));
        assert!(file.is_file(), "{} missing", file.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
