//! README.md says what users look for: every command, how to install, and
//! on which platform mkipc runs.

use clap::CommandFactory;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn readme_names_every_command() {
    let text = readme();
    for sub in mkipc::cli::Cli::command().get_subcommands() {
        let name = sub.get_name();
        assert!(
            text.contains(&format!("mkipc {name}")) || text.contains(&format!("-- {name}")),
            "README never shows `mkipc {name}`"
        );
    }
    assert!(text.contains("cargo install --path ."));
}

#[test]
fn readme_says_linux_only_and_that_windows_named_pipes_are_out_of_reach() {
    let text = readme();
    let platforms = text
        .split("\n## ")
        .find(|s| s.starts_with("Platforms"))
        .expect("a Platforms section");
    assert!(platforms.contains("Linux only"), "{platforms}");
    assert!(platforms.contains("Windows named pipes"), "{platforms}");
    assert!(platforms.contains("out of reach"), "{platforms}");
}
