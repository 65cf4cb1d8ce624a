//! The async runtime a real server process starts: half the CPUs as workers by default, and
//! `runtime.worker_threads` when its configuration sets it.

use crate::child_server::ChildServer;

/// The `workers` of the server's "baton started" line (it logs JSON: its output is no terminal).
fn workers(srv: &ChildServer) -> u64 {
    let log = srv.log_text();
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "baton started")
        .and_then(|l| l["workers"].as_u64())
        .unwrap_or_else(|| panic!("no \"baton started\" line with its workers:\n{log}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_starts_half_the_cpus_as_workers_unless_configured() {
    let (dir, pids) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = baton_testkit::TestDatabase::create().await;
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    let srv = ChildServer::start(dir.path(), pids.path(), &db).await;
    assert_eq!(workers(&srv), cpus.div_ceil(2));
    drop(srv);

    // The server reads ./baton.toml from its working directory, the data directory here.
    std::fs::write(dir.path().join("baton.toml"), "[runtime]\nworker_threads = 3\n").unwrap();
    let srv = ChildServer::start(dir.path(), pids.path(), &db).await;
    assert_eq!(workers(&srv), 3);
}
