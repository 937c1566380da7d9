//! The `mkipc` command.

use clap::Parser;

/// mkipc: a microkernel-style message-passing runtime.
#[derive(Parser, Debug)]
#[command(version, about)]
enum Command {
    /// Print the version of each crate.
    Version,
}

fn main() {
    match Command::parse() {
        Command::Version => println!("mkipc {}", env!("CARGO_PKG_VERSION")),
    }
}
