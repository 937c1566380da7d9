//! Arbitrary bytes, read as UTF-8, through the scenario parser and checker:
//! it must return a scenario or a located error, never panic, hang or
//! overflow a stack (nesting and expression limits), and the error must
//! display.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match mkipc::scenario::parse("fuzz.toml", &text) {
        Ok(scn) => {
            // Every process has a script; walking it must not overflow either.
            for p in &scn.processes {
                let _ = p.script.len();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
