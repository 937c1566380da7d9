//! Simulated processes on the mkipc kernel (see issue: process simulation).
