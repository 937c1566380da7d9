//! The API docs people can find (issue 22): `cargo doc` builds every crate
//! without a warning, each crate's front page says where to start, the
//! examples behind "(see the module docs)" are on pages that exist, and
//! every module page with items in it shows a runnable example (its own, or
//! one on each of its items).
//!
//! It runs `cargo doc --workspace --no-deps` with `RUSTDOCFLAGS="-D warnings"`,
//! as `.ci/run` does before the tests, so after that step it only reads the
//! pages (a second or two); on its own it documents the workspace first.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn doc_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => {
            let t = PathBuf::from(t);
            if t.is_absolute() {
                t.join("doc")
            } else {
                root().join(t).join("doc")
            }
        }
        None => root().join("target/doc"),
    }
}

/// The page's text: tags removed, the usual entities decoded.
fn text(page: &Path) -> String {
    let html = std::fs::read_to_string(page)
        .unwrap_or_else(|e| panic!("{}: {e} (a page that should exist)", page.display()));
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn html(page: &Path) -> String {
    std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()))
}

const EXAMPLE: &str = "rust-example-rendered";

fn is_redirect(html: &str) -> bool {
    html.contains("http-equiv=\"refresh\"") || html.contains("Redirecting to")
}

fn item_pages(dir: &Path) -> Vec<PathBuf> {
    let kinds = [
        "struct.",
        "enum.",
        "trait.",
        "fn.",
        "type.",
        "macro.",
        "constant.",
    ];
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".html") && kinds.iter().any(|k| n.starts_with(k))
        })
        .filter(|p| !is_redirect(&html(p)))
        .collect();
    v.sort();
    v
}

fn module_pages(dir: &Path, out: &mut Vec<PathBuf>) {
    let index = dir.join("index.html");
    if index.is_file() && !is_redirect(&html(&index)) {
        out.push(index);
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    for s in subs {
        module_pages(&s, out);
    }
}

#[test]
fn the_docs_build_clean_and_every_example_is_reachable() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .current_dir(root())
        .output()
        .expect("run cargo doc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo doc failed:\n{stderr}");
    assert!(!stderr.contains("warning"), "cargo doc warned:\n{stderr}");

    let doc = doc_dir();
    let crates = ["mkipc", "mkipc_kernel", "mkipc_sim", "mkipc_os"];

    // Each front page says where to start, with an example.
    for c in crates {
        let front = doc.join(c).join("index.html");
        assert!(
            text(&front).contains("Where to start"),
            "{c}'s front page does not say where to start"
        );
        assert!(
            html(&front).contains(EXAMPLE),
            "{c}'s front page has no example"
        );
    }

    // The examples the issue could not find: on their module pages, which
    // the items' "(see the module docs)" links reach.
    let sim = doc.join("mkipc_sim");
    let wanted: &[(&str, &[&str])] = &[
        ("sim/index.html", &["Inherit::receive(jobs)", "p.right(0)"]),
        ("process/index.html", &["p.port_allocate(", "p.now()"]),
        ("explore/index.html", &["Explorer::new().seeds(0..20)"]),
        (
            "threaded/index.html",
            &["Threaded::new()", "world.join_all()"],
        ),
        ("builder/index.html", &["Sim::builder().seed(7)"]),
    ];
    for (page, snippets) in wanted {
        let t = text(&sim.join(page));
        for s in *snippets {
            assert!(
                t.contains(s),
                "mkipc_sim/{page} lacks the example line `{s}`"
            );
        }
    }
    for (item, module) in [
        ("sim/struct.Sim.html", "sim"),
        ("process/struct.Proc.html", "process"),
        ("explore/struct.Explorer.html", "explore"),
        ("threaded/struct.Threaded.html", "threaded"),
    ] {
        let h = html(&sim.join(item));
        assert!(
            h.contains("href=\"index.html\"")
                || h.contains(&format!("href=\"../{module}/index.html\"")),
            "mkipc_sim/{item} does not link to its module's docs"
        );
    }
    let front = html(&sim.join("index.html"));
    for m in ["sim", "process", "explore", "threaded"] {
        assert!(
            front.contains(&format!("href=\"{m}/index.html\"")),
            "the mkipc_sim front page does not link to module {m}"
        );
    }

    // Every module page with items shows an example, its own or one per item.
    let mut missing = Vec::new();
    for c in crates {
        let mut mods = Vec::new();
        module_pages(&doc.join(c), &mut mods);
        assert!(!mods.is_empty(), "no module pages for {c}");
        for m in mods {
            if html(&m).contains(EXAMPLE) {
                continue;
            }
            let items = item_pages(m.parent().unwrap());
            if items.iter().all(|p| html(p).contains(EXAMPLE)) {
                continue;
            }
            missing.push(m.strip_prefix(&doc).unwrap().display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "module pages without an example: {missing:?}"
    );
}
