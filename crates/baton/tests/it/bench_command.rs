//! `baton bench` against a real node: it runs its tasks, reports latency and throughput, and what
//! the tasks cost the server (CPU and SQL statements per task, read from the node's /metrics).

use baton_testkit::{ADMIN_PASSWORD, TestServer};

/// Runs `baton bench` against `srv` with `args`; its standard output and error.
async fn bench(srv: &TestServer, args: &[&str]) -> (String, String) {
    let url = srv.url.to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["bench", "--url", url.trim_end_matches('/'), "--password", ADMIN_PASSWORD])
        .args(args)
        .env_clear()
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    (stdout.into_owned(), stderr.into_owned())
}

/// The number after `label` on the line that starts with it.
fn figure(out: &str, label: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} in:\n{out}"));
    line[label.len()..].split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bench_reports_what_each_task_cost_the_server() {
    let srv = TestServer::start().await;
    let (out, err) = bench(&srv, &["--tasks", "20", "--concurrency", "4", "--script", "true"]).await;
    assert!(out.contains("tasks 20  concurrency 4  failed 0"), "{out}");
    assert!(figure(&out, "server CPU per task") > 0.0, "{out}");
    // A task's life is several statements at least: its insert, claim, start and finish.
    let statements = figure(&out, "SQL statements per task");
    assert!((4.0..1000.0).contains(&statements), "{out}");
    // One node races nobody for its queue.
    assert_eq!(figure(&out, "claims lost per task"), 0.0, "{out}");
    for kind in ["select", "insert", "update", "transaction"] {
        assert!(out.contains(&format!("{kind} ")), "{kind} missing: {out}");
    }
    assert!(!err.contains("not measured"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metrics_url_that_does_not_answer_is_named_and_the_run_goes_on() {
    let srv = TestServer::start().await;
    let bad = format!("{}/no-metrics-here", srv.url.as_str().trim_end_matches('/'));
    let (out, err) = bench(&srv, &["--tasks", "3", "--script", "true", "--metrics", &bad]).await;
    assert!(err.contains("server cost not measured") && err.contains(&bad) && err.contains("404"), "{err}");
    assert!(out.contains("failed 0") && !out.contains("server CPU per task"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_logs_the_bench_follows_only_the_task_events() {
    let srv = TestServer::start().await;
    let (out, _) = bench(&srv, &["--tasks", "6", "--concurrency", "3"]).await;
    assert!(out.contains("failed 0") && out.contains("POST -> first line received"), "{out}");
    let (out, _) = bench(&srv, &["--tasks", "6", "--concurrency", "3", "--no-logs"]).await;
    assert!(out.contains("tasks 6  concurrency 3  failed 0") && out.contains("POST -> script started"), "{out}");
    assert!(!out.contains("first line received"), "no log was followed: {out}");
}
