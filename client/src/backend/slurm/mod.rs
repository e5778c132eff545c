//! The Slurm backend (declared here so its parsers build; replaced by the backend itself).

pub mod parse;
