//! `baton`: every Baton service, the runner and the operator tools in one binary.

mod cli;

use clap::Parser;

/// A task crosses many small allocations (HTTP and gRPC frames, JSON, rows): with glibc's
/// allocator they were about 15% of a busy server's CPU, and mimalloc's thread-local pages
/// make them cheaper.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
