//! Process-level concerns shared by every command: seeds, threads, memory and the
//! hardware fingerprint stored beside every timing.

pub mod fingerprint;
pub mod gpu;
pub mod heap;
pub mod hugepages;
pub mod memory;
pub mod peak;
pub mod seed;
pub mod threads;
