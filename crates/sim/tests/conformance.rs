//! The kernel's conformance suite (`mkipc_kernel::conformance`), unchanged,
//! on simulated processes: under several seeds of the random scheduler, under
//! PCT and under round robin, so each case holds in many interleavings.

use mkipc_sim::conformance::SimBackend;
use mkipc_sim::SchedulerKind;

mod random_seed_0 {
    mkipc_kernel::conformance_tests!(super::SimBackend::seed(0));
}
mod random_seed_1 {
    mkipc_kernel::conformance_tests!(super::SimBackend::seed(1));
}
mod random_seed_2 {
    mkipc_kernel::conformance_tests!(super::SimBackend::seed(2));
}
mod pct_seed_3 {
    mkipc_kernel::conformance_tests!(super::SimBackend::with_scheduler(
        3,
        super::SchedulerKind::pct()
    ));
}
mod round_robin {
    mkipc_kernel::conformance_tests!(super::SimBackend::with_scheduler(
        0,
        super::SchedulerKind::RoundRobin
    ));
}
mod threaded {
    mkipc_kernel::conformance_tests!(mkipc_sim::conformance::ThreadedBackend);
}

/// The same cases on async processes ([`AsyncBackend`]): every operation a
/// role makes is its async process's future, under the same schedulers.
mod on_async_processes {
    use mkipc_sim::conformance::AsyncBackend;
    use mkipc_sim::SchedulerKind;

    mod random_seed_0 {
        mkipc_kernel::conformance_tests!(super::AsyncBackend::seed(0));
    }
    mod random_seed_1 {
        mkipc_kernel::conformance_tests!(super::AsyncBackend::seed(1));
    }
    mod random_seed_2 {
        mkipc_kernel::conformance_tests!(super::AsyncBackend::seed(2));
    }
    mod pct_seed_3 {
        mkipc_kernel::conformance_tests!(super::AsyncBackend::with_scheduler(
            3,
            super::SchedulerKind::pct()
        ));
    }
    mod round_robin {
        mkipc_kernel::conformance_tests!(super::AsyncBackend::with_scheduler(
            0,
            super::SchedulerKind::RoundRobin
        ));
    }
}
