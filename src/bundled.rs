//! The example scenarios carried inside the `mkipc` binary.
//!
//! `build.rs` bundles every `examples/scenarios/*.toml` with `include_str!`,
//! so an installed `mkipc` runs them by name (`mkipc run capacity-zero`)
//! wherever it runs; `mkipc scenarios` lists them. A path on disk always
//! wins over a bundled name ([`resolve`]).
//!
//! ```
//! let zero = mkipc::bundled::find("capacity-zero").unwrap();
//! assert_eq!(zero.title(), "capacity: zero");
//! let scn = mkipc::scenario::parse(&zero.file(), zero.text).unwrap();
//! assert_eq!(scn.name, "capacity: zero");
//! ```

use std::path::Path;

/// One bundled scenario file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bundled {
    /// The file's name without `.toml` (`capacity-zero`).
    pub name: &'static str,
    /// The file's text.
    pub text: &'static str,
}

impl Bundled {
    /// The scenario's one-line title: its `name` key, or "" if it has none.
    pub fn title(&self) -> String {
        toml::from_str::<toml::Table>(self.text)
            .ok()
            .and_then(|t| t.get("name")?.as_str().map(str::to_string))
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }

    /// The name that errors and reports give the scenario's file.
    pub fn file(&self) -> String {
        format!("bundled:{}.toml", self.name)
    }
}

include!(concat!(env!("OUT_DIR"), "/bundled_scenarios.rs"));

/// The bundled scenario called `name` (`capacity-zero`, `capacity-zero.toml`,
/// or `bundled:capacity-zero.toml`, the name errors and replay lines give it:
/// [`Bundled::file`]).
pub fn find(name: &str) -> Option<&'static Bundled> {
    let name = name.strip_prefix("bundled:").unwrap_or(name);
    let name = name.strip_suffix(".toml").unwrap_or(name);
    SCENARIOS.iter().find(|b| b.name == name)
}

/// Where a scenario argument led.
#[derive(Debug)]
pub enum Source {
    /// A file on disk (a path always wins).
    File,
    /// No such file: the bundled scenario of that name.
    Bundled(&'static Bundled),
}

/// Resolves `mkipc run ARG`: the file `arg` if it exists, else the bundled
/// scenario of that name, else the file again (so the error names it).
pub fn resolve(arg: &Path) -> Source {
    if arg.exists() {
        return Source::File;
    }
    match arg.to_str().and_then(find) {
        Some(b) => Source::Bundled(b),
        None => Source::File,
    }
}
