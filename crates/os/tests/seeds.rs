//! The course's classic examples, on real processes, pipes and FIFOs.

mod common;
role_entry!();

use std::time::Duration;

use mkipc_kernel::{Ipc, Message};
use mkipc_os::Spawn;

#[test]
fn smoke_child_sees_eof_when_parent_closes_the_pipe() {
    let os = common::os();
    let mut child = os.spawn(Spawn::new("count-until-eof")).unwrap();
    for i in 0..3 {
        os.send_to(child.pid(), Message::from_u64(1, i)).unwrap();
    }
    // Closing our end is the only "end of data" signal a pipe has.
    os.close_link(child.pid()).unwrap();
    assert_eq!(
        child.wait_code().unwrap(),
        3,
        "the child counted 3 messages, then saw EOF"
    );
    common::finish(os);
}

#[test]
fn two_unrelated_processes_meet_through_a_fifo() {
    let os = common::os();
    let path = os.fifo_path("meeting-point").unwrap();
    let mut reader = os
        .spawn(Spawn::new("fifo-reader").arg(path.to_str().unwrap()))
        .unwrap();
    // Wait until the FIFO exists (the reader says so), then start the writer,
    // which knows nothing but the path.
    assert_eq!(&os.receive_from(reader.pid()).unwrap().body[..], b"ready");
    let mut writer = os
        .spawn(Spawn::new("fifo-writer").arg(path.to_str().unwrap()))
        .unwrap();
    assert_eq!(writer.wait_code().unwrap(), 0);
    let sum = os.receive_from(reader.pid()).unwrap();
    assert_eq!(sum.as_u64(), Some(15));
    assert_eq!(reader.wait_code().unwrap(), 0);
    assert!(!path.exists(), "the reader removed its FIFO when it exited");
    common::finish(os);
}

#[test]
fn three_stage_pipeline_source_filter_sink() {
    let os = common::os();
    let specs = vec![
        Spawn::new("source"),
        Spawn::new("filter"),
        Spawn::new("sink"),
    ];
    let mut kids = os.spawn_group(specs, &[(0, 1), (1, 2)]).unwrap();
    let sink = kids[2].pid();
    let total = os.receive_from(sink).unwrap();
    assert_eq!(total.as_u64(), Some(4 + 16 + 36 + 64 + 100));
    for k in &mut kids {
        assert_eq!(k.wait_code().unwrap(), 0, "{k:?}");
    }
    common::finish(os);
}

#[test]
fn master_worker_fan_out_fan_in() {
    let os = common::os();
    let mut workers: Vec<_> = (0..3)
        .map(|_| os.spawn(Spawn::new("squarer")).unwrap())
        .collect();
    for i in 0..30u32 {
        let w = workers[i as usize % 3].pid();
        os.send_to(w, Message::from_u64(i, u64::from(i))).unwrap();
    }
    let mut results = vec![0u64; 30];
    let mut senders = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let m = os
            .receive_from_any_with(mkipc_kernel::Wait::For(Duration::from_secs(10)))
            .unwrap();
        senders.insert(m.sender().unwrap());
        results[m.id as usize] = m.as_u64().unwrap();
    }
    assert_eq!(results, (0..30u64).map(|i| i * i).collect::<Vec<_>>());
    assert_eq!(senders.len(), 3, "every worker answered");
    for w in &workers {
        os.close_link(w.pid()).unwrap();
    }
    for w in &mut workers {
        assert_eq!(w.wait_code().unwrap(), 10, "each worker did its 10 tasks");
    }
    common::finish(os);
}
