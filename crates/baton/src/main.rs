//! `baton`: every Baton service, the runner and the operator tools in one binary.

mod cli;

use clap::Parser;

/// mimalloc instead of the C library's allocator: a server and a runner allocate and free small
/// buffers for every message, and glibc's malloc was 14% of a busy SQLite node's CPU samples
/// (`perf`), much of it consolidating free lists; mimalloc's thread-local free lists cost a
/// fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let start = cli::Start::new(cli::Args::parse());
    let workers = start.worker_threads();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli::run(start)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
