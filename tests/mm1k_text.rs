//! `mm1k.toml` describes the system it runs: K counts the buffer and the
//! message in service, the printed loss is the M/M/1/K formula for that K,
//! and the simulated loss is near it.

use std::path::Path;
use std::process::Command;

fn file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios/mm1k.toml")
}

/// The M/M/1/K loss (blocking) probability.
fn loss(rho: f64, k: i32) -> f64 {
    (1.0 - rho) * rho.powi(k) / (1.0 - rho.powi(k + 1))
}

#[test]
fn the_description_prints_the_formula_for_the_systems_k() {
    let text = std::fs::read_to_string(file()).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let capacity = doc["mailbox"][0]["capacity"].as_integer().unwrap() as i32;
    let description = doc["description"].as_str().unwrap().replace('\n', " ");
    // The server holds one message while it serves it.
    let k = capacity + 1;
    assert!(description.contains(&format!("K = {k} ")), "{description}");
    assert!(
        !description.contains(&format!("K = {capacity} ")),
        "{description}"
    );
    let expected = format!("= {:.3}", loss(0.8, k));
    assert_eq!(expected, "= 0.122");
    assert!(description.contains(&expected), "{description}");
}

#[test]
fn the_simulated_loss_is_near_the_formula() {
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .arg("run")
        .arg(file())
        .arg("--json")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &doc["messages"];
    let rate = m["dropped"].as_f64().unwrap() / m["sent"].as_f64().unwrap();
    let (k4, k3) = (loss(0.8, 4), loss(0.8, 3));
    assert!((rate - k4).abs() < (rate - k3).abs(), "loss {rate}");
    assert!((rate - k4).abs() < 0.03, "loss {rate} vs {k4}");
}
