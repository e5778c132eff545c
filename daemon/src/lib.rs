//! vovd: the host side of vov.
//!
//! This crate holds the training engine that every trial runs: the benchmark's
//! models ([`model`]), its data sets and input pipeline ([`data`]), the Keras-faithful
//! trainer with the published timings ([`train`]), and process-level settings
//! ([`runtime`]). The `vovd` binary wraps it in a command line.

pub mod cli;
pub mod config;
pub mod data;
pub mod instance;
pub mod jobs;
pub mod model;
pub mod runtime;
pub mod server;
pub mod service;
pub mod store;
pub mod train;
