//! Database trouble is handled, not fatal: while PostgreSQL is down the API answers 503 with a
//! reason, the runner keeps its script running and keeps what it has to report, and when the
//! database returns everything resumes by itself with nothing lost and nothing run twice.

use std::time::{Duration, Instant};

use baton_testkit::{PrivatePostgres, TestDatabase, TestServer};
use serde_json::json;

/// Polls `path` until it answers `status`, or panics after `within`.
async fn wait_for_status(srv: &TestServer, path: &str, status: u16, within: Duration) -> baton_testkit::Resp {
    let deadline = Instant::now() + within;
    loop {
        let r = srv.client.get(path).await;
        if r.status.as_u16() == status {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not answer {status} within {within:?}; last: {} {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_restart_in_the_middle_of_a_run_loses_nothing() {
    let pg = PrivatePostgres::start();
    let srv = TestServer::start_on(TestDatabase::existing(&pg.url()), |_| {}).await;
    let c = &srv.client;
    let pid = c.project().await;
    let out = tempfile::tempdir().unwrap();
    let marker = out.path().join("runs");
    // Eight lines over four seconds; each run of the script leaves a mark, to count executions.
    let script = format!("echo run >> {}; for i in $(seq 1 8); do echo line $i; sleep 0.5; done", marker.display());
    let tid = c.template(pid, json!({"script": script, "max_attempts": 3})).await;
    let id = c.submit(pid, tid).await;
    c.wait_status(pid, id, &["running"], Duration::from_secs(20)).await;

    pg.stop();
    // Readiness and the API report the outage instead of failing obscurely.
    let ready = wait_for_status(&srv, "/api/ready", 503, Duration::from_secs(10)).await;
    assert_eq!(ready.error_code(), "unavailable");
    assert!(ready.error_message().contains("database"), "{}", ready.text);
    let r = wait_for_status(&srv, &format!("/api/v1/projects/{pid}/tasks/{id}"), 503, Duration::from_secs(15)).await;
    assert_eq!(r.error_code(), "unavailable", "{}", r.text);
    // The script ends while the database is away; its report must wait.
    tokio::time::sleep(Duration::from_secs(5)).await;
    pg.start_again();

    wait_for_status(&srv, "/api/ready", 200, Duration::from_secs(30)).await;
    let task = c.wait_final(pid, id, Duration::from_secs(40)).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["attempt"], 1, "the attempt was retried: {task}");
    let lines = c.log_lines(pid, id).await;
    let texts: Vec<_> = lines.iter().map(|l| l["text"].as_str().unwrap().to_owned()).collect();
    let want: Vec<_> = (1..=8).map(|i| format!("line {i}")).collect();
    assert_eq!(texts, want, "lost or duplicated lines");
    let seqs: Vec<_> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 1, "the script ran more than once");

    // And work goes on.
    let next = c.submit(pid, c.template(pid, json!({"script": "echo after"})).await).await;
    assert_eq!(c.wait_final(pid, next, Duration::from_secs(30)).await["status"], "succeeded");
}

/// A ping that waits for a connection while the database is away waits the outage out and is
/// answered when it ends: no ping saw the outage. The leases, which no runner could renew
/// meanwhile, must still run a whole lease from its end before any expires.
#[tokio::test(flavor = "multi_thread")]
async fn an_outage_that_pings_wait_out_expires_no_lease_when_it_ends() {
    let pg = PrivatePostgres::start();
    // The pool waits longer for a connection than the outage lasts.
    let srv = TestServer::start_on(TestDatabase::existing(&pg.url()), |cfg| {
        cfg.database.acquire_timeout_seconds = 20;
    })
    .await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "sleep 2; echo done", "max_attempts": 3})).await;
    let id = c.submit(pid, tid).await;
    c.wait_status(pid, id, &["running"], Duration::from_secs(20)).await;

    pg.stop();
    // Longer than a lease (4 s in tests).
    tokio::time::sleep(Duration::from_secs(7)).await;
    pg.start_again();

    let task = c.wait_final(pid, id, Duration::from_secs(40)).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["attempt"], 1, "the lease expired as the outage ended: {task}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_names_a_database_outage_without_the_drivers_words() {
    let pg = PrivatePostgres::start();
    // Pool waits shorter than the probe's own 2 s, so the driver's error reaches the probe.
    let srv =
        TestServer::start_on(TestDatabase::existing(&pg.url()), |cfg| cfg.database.acquire_timeout_seconds = 1).await;
    pg.stop();
    let ready = wait_for_status(&srv, "/api/ready", 503, Duration::from_secs(10)).await;
    // A short reason only: no host, port, user or driver message for an unauthenticated caller.
    // The request id is the only other field, so support can find the node's log line.
    let mut body = ready.body.clone();
    assert!(body["error"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{}", ready.text);
    body["error"].as_object_mut().unwrap().remove("request_id");
    assert_eq!(body, json!({"error": {"code": "unavailable", "message": "database unreachable"}}), "{}", ready.text);
}
