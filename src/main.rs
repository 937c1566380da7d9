//! The `mkipc` command; everything it does lives in the library ([`mkipc::cli`]).

fn main() {
    // A re-executed `mkipc` playing a scenario process for `--backend os`
    // runs its role here and exits; the command itself returns at once.
    mkipc_os::child_main(mkipc::scenario::OS_ROLES);
    // A guard that cleans up after an os-backend run killed by a signal.
    if let Some(code) = mkipc::cli::guard_main() {
        std::process::exit(code);
    }
    // Behave like other Unix filters when the reader of our output goes away
    // (`mkipc demo | head`): end quietly instead of panicking in `print!`.
    // SAFETY: called before any other thread exists; restoring the default
    // disposition of SIGPIPE has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(mkipc::cli::main());
}
