//! The `vovd` binary: parse, run the library's command, print errors with their
//! exit code.

use std::process::ExitCode;

use clap::Parser;

/// Large tensors on transparent huge pages: far fewer page faults while training.
#[global_allocator]
static ALLOC: vovd::runtime::hugepages::HugePageAlloc = vovd::runtime::hugepages::HugePageAlloc;

fn main() -> ExitCode {
    // Freed tensors stay in the heap for the next step instead of being unmapped.
    vovd::runtime::heap::retain_freed_blocks();
    let cli = vovd::cli::Cli::parse();
    match vovd::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vovd: error: {err}");
            err.exit_code()
        }
    }
}
