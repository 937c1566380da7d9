//! Fixed deadlock-free topologies, for properties that must hold on every run.
//!
//! A [`Scenario`] is a small message-passing topology (pipeline, fan-in,
//! fan-out through a mailbox, token ring) with a capacity and a message
//! count; [`Scenario::install`] spawns it on a [`Sim`]. Every scenario is
//! deadlock-free and leak-free by construction, so the natural property is
//! "any scenario, any seed: the run ends cleanly and every message arrives";
//! when a change to the kernel breaks that, proptest shrinks to the smallest
//! topology, capacity and count that still fail.
//!
//! ```
//! use proptest::prelude::*;
//! use mkipc_sim::strategy::scenario;
//! use mkipc_sim::Sim;
//!
//! proptest!(ProptestConfig::with_cases(8), |(s in scenario(), seed in 0u64..1000)| {
//!     let mut sim = Sim::builder().seed(seed).build();
//!     s.install(&mut sim);
//!     let report = sim.run().unwrap();
//!     prop_assert!(report.kernel_is_clean());
//!     prop_assert_eq!(report.procs.iter().map(|p| p.stats.received).sum::<u64>(), s.expected_receives());
//! });
//! ```

use mkipc_kernel::{Capacity, Ipc, Message};
use proptest::prelude::*;

use crate::builder::Inherit;
use crate::sim::Sim;

/// The shape of a scenario.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Topology {
    /// A source, `stages` forwarding processes, a sink, one port between each pair.
    Pipeline {
        /// Forwarding stages (0 = source straight to sink).
        stages: usize,
    },
    /// `producers` processes send to one port drained by one consumer.
    FanIn {
        /// Number of producers.
        producers: usize,
    },
    /// One producer feeds a mailbox drained by `consumers` processes.
    FanOut {
        /// Number of consumers.
        consumers: usize,
    },
    /// A token passed around `size` processes, `messages` times round.
    Ring {
        /// Processes in the ring.
        size: usize,
    },
}

/// A topology with a capacity and a message count.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Scenario {
    /// The shape.
    pub topology: Topology,
    /// Capacity of every queue in it.
    pub capacity: Capacity,
    /// Messages per producer (rounds, for a ring).
    pub messages: u32,
}

/// Any capacity model, small bounds preferred (they find more interleavings).
pub fn capacity() -> impl Strategy<Value = Capacity> {
    prop_oneof![
        Just(Capacity::Zero),
        (1usize..4).prop_map(Capacity::Bounded),
        Just(Capacity::Unbounded)
    ]
}

/// Any topology of up to `max` processes besides the fixed ones.
pub fn topology(max: usize) -> impl Strategy<Value = Topology> {
    let max = max.max(2);
    prop_oneof![
        (0..max).prop_map(|stages| Topology::Pipeline { stages }),
        (1..max).prop_map(|producers| Topology::FanIn { producers }),
        (1..max).prop_map(|consumers| Topology::FanOut { consumers }),
        (2..=max).prop_map(|size| Topology::Ring { size }),
    ]
}

/// Any scenario with up to 4 extra processes and 1..8 messages.
pub fn scenario() -> impl Strategy<Value = Scenario> {
    (topology(4), capacity(), 1u32..8).prop_map(|(topology, capacity, messages)| Scenario {
        topology,
        capacity,
        messages,
    })
}

impl Scenario {
    /// Successful receives, summed over all processes, of a clean run.
    pub fn expected_receives(&self) -> u64 {
        let m = u64::from(self.messages);
        match self.topology {
            Topology::Pipeline { stages } => m * (stages as u64 + 1),
            Topology::FanIn { producers } => m * producers as u64,
            Topology::FanOut { consumers } => m * consumers as u64,
            Topology::Ring { size } => m * size as u64,
        }
    }

    /// Spawns the scenario's processes on `sim`.
    pub fn install(&self, sim: &mut Sim) {
        let m = self.messages;
        let cap = self.capacity;
        match self.topology {
            Topology::Pipeline { stages } => {
                let ports: Vec<_> = (0..=stages)
                    .map(|i| sim.port(&format!("link{i}"), cap).expect("valid capacity"))
                    .collect();
                sim.spawn_with("source", &[Inherit::send(ports[0])], move |p| {
                    for i in 0..m {
                        p.send(p.right(0), Message::from_u64(1, u64::from(i)))?;
                    }
                    Ok(())
                })
                .expect("rights exist");
                for s in 0..stages {
                    let inherit = [Inherit::receive(ports[s]), Inherit::send(ports[s + 1])];
                    sim.spawn_with(&format!("stage{s}"), &inherit, move |p| {
                        for _ in 0..m {
                            let msg = p.receive(p.right(0))?;
                            p.send(p.right(1), msg)?;
                        }
                        Ok(())
                    })
                    .expect("rights exist");
                }
                sim.spawn_with("sink", &[Inherit::receive(ports[stages])], move |p| {
                    for i in 0..m {
                        let got = p.receive(p.right(0))?.as_u64();
                        if got != Some(u64::from(i)) {
                            return Err(crate::ProcError::msg(format!(
                                "out of order: {got:?} for {i}"
                            )));
                        }
                    }
                    Ok(())
                })
                .expect("rights exist");
            }
            Topology::FanIn { producers } => {
                let port = sim.port("inbox", cap).expect("valid capacity");
                for k in 0..producers {
                    sim.spawn_with(&format!("producer{k}"), &[Inherit::send(port)], move |p| {
                        for i in 0..m {
                            p.send(p.right(0), Message::from_u64(k as u32, u64::from(i)))?;
                        }
                        Ok(())
                    })
                    .expect("rights exist");
                }
                sim.spawn_with("consumer", &[Inherit::receive(port)], move |p| {
                    for _ in 0..m as usize * producers {
                        p.receive(p.right(0))?;
                    }
                    Ok(())
                })
                .expect("rights exist");
            }
            Topology::FanOut { consumers } => {
                sim.mailbox("jobs", cap).expect("valid capacity");
                sim.spawn("producer", move |p| {
                    let jobs = p.mailbox_open("jobs")?;
                    for i in 0..m as usize * consumers {
                        p.send(jobs, Message::from_u64(1, i as u64))?;
                    }
                    Ok(())
                });
                for k in 0..consumers {
                    sim.spawn(&format!("consumer{k}"), move |p| {
                        let jobs = p.mailbox_open("jobs")?;
                        for _ in 0..m {
                            p.receive(jobs)?;
                        }
                        Ok(())
                    });
                }
            }
            Topology::Ring { size } => {
                let ports: Vec<_> = (0..size)
                    .map(|i| sim.port(&format!("ring{i}"), cap).expect("valid capacity"))
                    .collect();
                for k in 0..size {
                    let inherit = [
                        Inherit::receive(ports[k]),
                        Inherit::send(ports[(k + 1) % size]),
                    ];
                    sim.spawn_with(&format!("node{k}"), &inherit, move |p| {
                        for round in 0..m {
                            if k == 0 {
                                p.send(p.right(1), Message::from_u64(1, u64::from(round)))?;
                                p.receive(p.right(0))?;
                            } else {
                                let token = p.receive(p.right(0))?;
                                p.send(p.right(1), token)?;
                            }
                        }
                        Ok(())
                    })
                    .expect("rights exist");
                }
            }
        }
    }
}
