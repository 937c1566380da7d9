//! Scale: more simulated processes than one-mapping-per-stack designs allow.
//!
//! `vm.max_map_count` (65,530) stops designs with a mapping and a guard page
//! per stack at about 32,700 processes. 40,000 processes alive at once here
//! prove the pooled stacks get past that; the 100,000-process measurement
//! lives in `benches/sim.rs` and `examples/scale.rs`.

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{ms, Sim};

#[test]
fn forty_thousand_processes_alive_at_once() {
    const N: u32 = 40_000;
    let mut sim = Sim::builder()
        .seed(1)
        .trace(false)
        .stack_size(32 * 1024)
        .build();
    sim.mailbox("done", Capacity::Unbounded).unwrap();
    for i in 0..N {
        sim.spawn("p", move |p| {
            let done = p.mailbox_open("done")?;
            p.sleep(ms(1)); // every process is parked here at the same time
            p.send(done, Message::from_u64(1, u64::from(i)))?;
            Ok(())
        });
    }
    sim.spawn("collector", |p| {
        let done = p.mailbox_open("done")?;
        for _ in 0..N {
            p.receive(done)?;
        }
        Ok(())
    });
    let r = sim.run().unwrap();
    assert_eq!(r.procs.len(), N as usize + 1);
    assert!(r.procs.iter().all(|p| p.status.is_success()));
    assert_eq!(r.port("done").unwrap().messages, u64::from(N));
    assert!(r.kernel_is_clean());
}
