//! experiment
use mkipc_kernel::*;
use std::hint::black_box;
fn main() {
    let n: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let kernel = Kernel::new();
    let task = kernel.spawn_task();
    let port = task.port_allocate(Capacity::Bounded(1024)).unwrap();
    for i in 0..n {
        task.send(port, Message::from_u64(1, i)).unwrap();
        black_box(task.receive(port).unwrap());
    }
}
