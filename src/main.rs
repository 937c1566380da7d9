//! The `mkipc` command; everything it does lives in the library ([`mkipc::cli`]).

fn main() {
    std::process::exit(mkipc::cli::main());
}
