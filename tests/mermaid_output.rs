//! `mkipc run --mermaid FILE`: a bare diagram, or a fenced block in Markdown.

use std::process::Command;

fn run_to(file: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(["run", "examples/scenarios/capacity-zero.toml", "--mermaid"])
        .arg(file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(file).unwrap();
    let _ = std::fs::remove_file(file);
    text
}

#[test]
fn markdown_files_get_a_fenced_block_and_mmd_files_the_bare_diagram() {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let md = run_to(&dir.join(format!("mkipc-seq-{pid}.md")));
    assert!(md.starts_with("```mermaid\nsequenceDiagram\n"), "{md}");
    assert!(md.ends_with("\n```\n"), "{md}");
    let mmd = run_to(&dir.join(format!("mkipc-seq-{pid}.mmd")));
    assert!(mmd.starts_with("sequenceDiagram\n"), "{mmd}");
    assert_eq!(md, format!("```mermaid\n{mmd}```\n"));
}
