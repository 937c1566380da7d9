//! Bundles the example scenarios into the `mkipc` binary, so an installed
//! `mkipc` (`cargo install --path .`) carries them: writes
//! `$OUT_DIR/bundled_scenarios.rs`, one `include_str!` per
//! `examples/scenarios/*.toml`, which `src/bundled.rs` includes.

use std::fmt::Write;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dir = root.join("examples/scenarios");
    // A directory: cargo reruns this script when any file in it changes,
    // is added or is removed.
    println!("cargo:rerun-if-changed=examples/scenarios");
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code = String::from(
        "/// Every bundled scenario, sorted by name.\npub const SCENARIOS: &[Bundled] = &[\n",
    );
    for (name, path) in &files {
        let _ = writeln!(
            code,
            "    Bundled {{ name: {name:?}, text: include_str!({:?}) }},",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("bundled_scenarios.rs"), code).expect("OUT_DIR is writable");
}
