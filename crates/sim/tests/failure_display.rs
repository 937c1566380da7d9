//! A failure reads in a few lines, however long the run: `sim.run().unwrap()`
//! as the docs write it must not panic with megabytes of report.

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{Inherit, Sim};

#[test]
fn a_long_run_fails_in_a_few_lines_with_its_replay_line() {
    let mut sim = Sim::builder().seed(5).build();
    let port = sim.port("jobs", Capacity::Bounded(4)).unwrap();
    sim.spawn_with("producer", &[Inherit::send(port)], |p| {
        for i in 0..10_000 {
            p.send(p.right(0), Message::from_u64(1, i))?;
        }
        Ok(())
    })
    .unwrap();
    // One receive too many: a deadlock after 10,000 messages.
    sim.spawn_with("consumer", &[Inherit::receive(port)], |p| {
        for _ in 0..10_001 {
            p.receive(p.right(0))?;
        }
        Ok(())
    })
    .unwrap();
    let failure = sim.run().unwrap_err();
    assert!(failure.report.trace.events.len() > 20_000);
    for text in [format!("{failure}"), format!("{failure:?}")] {
        assert!(
            text.len() < 2_000,
            "{} bytes:\n{}",
            text.len(),
            &text[..2_000]
        );
        assert!(text.contains("deadlock"), "{text}");
        assert!(failure.replay_line().len() > 10_000);
        assert!(
            text.contains("seed 5") && text.contains("Failure::replay_line()"),
            "{text}"
        );
    }
    // The whole report is still there for whoever asks.
    assert!(format!("{failure:#?}").len() > 100_000);
}

#[test]
fn a_short_run_prints_its_whole_replay_line() {
    let mut sim = Sim::builder().seed(5).build();
    let port = sim.port("jobs", Capacity::Zero).unwrap();
    sim.spawn_with("lonely", &[Inherit::send(port)], |p| {
        p.send(p.right(0), Message::from_u64(1, 1))?;
        Ok(())
    })
    .unwrap();
    let failure = sim.run().unwrap_err();
    let text = format!("{failure:?}");
    assert!(
        text.contains(&format!("MKIPC_SIM_REPLAY='{}'", failure.replay_line())),
        "{text}"
    );
    assert!(text.lines().count() <= 3, "{text}");
}
