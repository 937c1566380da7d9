//! A property over random models fails, proptest shrinks the failing model
//! to a minimal one, and it is printed as a scenario file that reproduces
//! the failure.
//!
//! ```sh
//! cargo run --example shrink_to_scenario                  # prints the file
//! cargo run --example shrink_to_scenario -- deadlock.toml # writes it
//! mkipc explore deadlock.toml --exhaustive                # the same deadlock
//! ```
//!
//! The property is "no schedule of a model with RPC and a server
//! deadlocks"; models come from `mkipc_sim::strategy::models`.

use mkipc::scenario::{check_scenario, from_model, parse};
use mkipc::sim::check::Checker;
use mkipc::sim::strategy::{models, ModelConfig, Verdict};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

fn main() {
    let checker = Checker::new().keep_going().max_memory(64 << 20);
    let config = ModelConfig {
        procs: 2..=3,
        ..ModelConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 1000,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]),
    );
    let result = runner.run(&models(config), |m| {
        let deadlocks = m
            .verdicts(&checker)
            .is_ok_and(|v| v.contains(&Verdict::Deadlock));
        prop_assert!(!deadlocks, "deadlocks");
        Ok(())
    });
    let m = match result {
        Err(TestError::Fail(_, m)) => m,
        other => {
            println!("no model failed: {other:?}");
            return;
        }
    };
    eprintln!("minimal failing model:\n{m}");
    let text = from_model(&m);
    // The file reproduces it: the checker finds the deadlock there too.
    let scn = parse("model.toml", &text).expect("a printed model parses");
    let check = check_scenario(&scn, &checker).expect("the checker runs it");
    let found = check
        .outcome
        .failures
        .iter()
        .any(|f| f.reason.is_deadlock());
    eprintln!("the scenario deadlocks too: {found}");
    match std::env::args().nth(1) {
        Some(path) => {
            std::fs::write(&path, &text).expect("writes the file");
            eprintln!("written to {path}");
        }
        None => print!("{text}"),
    }
}
