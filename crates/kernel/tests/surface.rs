//! The crate root's public names, pinned: adding a name to the root (or
//! taking one away) is a decision, made here as well as in `src/lib.rs`.
//!
//! The root holds what code written against `Ipc` names; a backend's
//! machinery is in `runtime`, statistics in `introspect`, rarer vocabulary in
//! its own module (see the crate's front page, "The root"). Two checks:
//!
//! * `root_names_are_the_pinned_list` reads `src/lib.rs` and lists every
//!   public item it puts at the root (`pub use`, `pub mod`, `pub fn`...,
//!   and `#[macro_export]` macros anywhere in the crate, which land at the
//!   root too), then compares with [`ROOT`] and [`ROOT_MODULES`].
//! * The `use` lists below fail to compile if a pinned name is gone from
//!   where it is pinned.

use std::collections::BTreeSet;
use std::path::Path;

#[allow(unused_imports)]
use mkipc_kernel::{
    CallError, Capacity, CarriedRight, Disposition, Filter, Ipc, IpcError, Kernel, KernelConfig,
    MailboxConfig, Message, Notification, NotifyKind, OnFull, Pid, PortName, ReceiveError,
    SendError, SendErrorKind, Sent, SmallMessage, SmallReceiveError, Task, Wait,
};
// The backend's and the statistics' names, where they live now.
#[allow(unused_imports)]
use mkipc_kernel::introspect::{queue_cost, BlockedOn, KernelStats, QueueStats, TaskRights};
#[allow(unused_imports)]
use mkipc_kernel::runtime::{
    Begin, Blocker, CanonicalOptions, Destination, KernelHold, KernelSnapshot, Source, WaitOutcome,
    WaitToken, Wake, Waker,
};

/// The items at the root (re-exported types, traits and functions).
const ROOT: &[&str] = &[
    "CallError",
    "Capacity",
    "CarriedRight",
    "Disposition",
    "Filter",
    "Ipc",
    "IpcError",
    "Kernel",
    "KernelConfig",
    "MailboxConfig",
    "Message",
    "Notification",
    "NotifyKind",
    "OnFull",
    "Pid",
    "PortName",
    "ReceiveError",
    "SendError",
    "SendErrorKind",
    "Sent",
    "SmallMessage",
    "SmallReceiveError",
    "Task",
    "Wait",
];

/// The root's public modules and macros (`lane` is public but hidden from
/// the docs, for the loom tests; `conformance_tests!` is the conformance
/// suite's macro, which `#[macro_export]` puts at the root).
const ROOT_MODULES: &[&str] = &[
    "capacity",
    "conformance",
    "conformance_tests!",
    "error",
    "filter",
    "introspect",
    "ipc",
    "lane",
    "message",
    "name",
    "name_rules",
    "runtime",
    "task",
];

/// The last segment (or the alias) of each path in a `use` tree such as
/// `crate::core::{Kernel, KernelConfig}`.
fn use_tree_names(tree: &str, out: &mut BTreeSet<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let inner = &tree[open + 1..tree.rfind('}').expect("balanced use tree")];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    use_tree_names(&inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        use_tree_names(&inner[start..], out);
    } else if !tree.is_empty() {
        let name = match tree.split_once(" as ") {
            Some((_, alias)) => alias.trim(),
            None => tree.rsplit("::").next().expect("a segment"),
        };
        out.insert(name.to_string());
    }
}

/// The public names `src/lib.rs` puts at the root: (items, modules and macros).
fn root_names(src: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    // Code only: drop comments (the front page's doc example has `use` lines).
    let code: String = lib
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut items = BTreeSet::new();
    let mut modules = BTreeSet::new();
    for statement in code.split(';') {
        let s = statement.trim();
        // Attributes (`#[doc(hidden)]`) may stand before the item.
        let s = s.rsplit(']').next().unwrap_or(s).trim();
        if let Some(tree) = s.strip_prefix("pub use ") {
            use_tree_names(tree, &mut items);
        } else if let Some(name) = s.strip_prefix("pub mod ") {
            modules.insert(name.trim().to_string());
        }
    }
    for kind in [
        "pub fn ",
        "pub struct ",
        "pub enum ",
        "pub trait ",
        "pub const ",
        "pub static ",
        "pub type ",
    ] {
        for rest in code.split(kind).skip(1) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            items.insert(name);
        }
    }
    // `#[macro_export]` macros land at the root wherever they are defined.
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                for rest in text.split("#[macro_export]").skip(1) {
                    let after = rest.split("macro_rules!").nth(1).expect("a macro");
                    let name: String = after
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    modules.insert(format!("{name}!"));
                }
            }
        }
    }
    (items, modules)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn root_names_are_the_pinned_list() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (items, modules) = root_names(&src);
    let pinned = set(ROOT);
    let added: Vec<_> = items.difference(&pinned).collect();
    let removed: Vec<_> = pinned.difference(&items).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the root's public items changed: added {added:?}, removed {removed:?}; \
         a user's name goes at the root (and in ROOT here), a backend's in `runtime`, \
         statistics in `introspect`"
    );
    let pinned = set(ROOT_MODULES);
    let added: Vec<_> = modules.difference(&pinned).collect();
    let removed: Vec<_> = pinned.difference(&modules).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the root's public modules or macros changed: added {added:?}, removed {removed:?}"
    );
}

#[test]
fn the_root_stays_about_twenty_names() {
    assert!(ROOT.len() <= 24, "{} names at the root", ROOT.len());
}

#[test]
fn use_trees_are_read_whole() {
    let mut out = BTreeSet::new();
    use_tree_names("crate::a::{B, c::{D, E as F}, G}", &mut out);
    assert_eq!(out, set(&["B", "D", "F", "G"]));
}
