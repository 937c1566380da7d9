//! The mkipc API on real Linux processes (see issue: real-OS backend).
