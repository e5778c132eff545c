//! vovctl: the client side of vov.
//!
//! It turns a sweep file into trials ([`sweep`]), resolves the hosts to use
//! ([`hosts`]) and which data sets they have ([`datasets`]), reaches each as a
//! [`backend`], places trials on their slots and
//! follows them ([`schedule`]), keeps every result in a local SQLite store
//! ([`store`]), and turns stored results into the published table and plots
//! ([`report`]), and serves them live as a web dashboard ([`ui`]). The `vovctl` binary wraps it.

pub mod backend;
pub mod cli;
pub mod datasets;
pub mod evaluate;
pub mod hosts;
pub mod kept;
pub mod local;
pub mod progress;
#[cfg(test)]
mod readme;
pub mod report;
pub mod schedule;
pub mod search;
pub mod store;
pub mod sweep;
pub mod ui;
pub mod weights;
