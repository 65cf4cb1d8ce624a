//! The text a scrape gets: names, types, labels and values as Prometheus conventions want them.

use std::time::Duration;

use baton_core::TaskStatus;

use super::*;

fn metrics() -> Metrics {
    Metrics::new(Build { version: "1.2.3", node_id: "node-a", dispatcher: true, gateway: true, sql_statements: None })
}

/// The sample lines (no comments) of a scrape.
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn every_metric_is_named_typed_and_described() {
    let m = metrics();
    // A family shows once it has a label set.
    m.http_request(Some("/api/health"), "GET", 200, Duration::from_millis(1));
    let text = m.encode().unwrap();
    for (name, kind) in [
        ("baton_build_info", "gauge"),
        ("baton_tasks_submitted_total", "counter"),
        ("baton_claims_lost_total", "counter"),
        ("baton_queue_takes_lost_total", "counter"),
        ("baton_queue_returns_total", "counter"),
        ("baton_tasks_finished_total", "counter"),
        ("baton_dispatch_latency_seconds", "histogram"),
        ("baton_queue_depth", "gauge"),
        ("baton_runners_connected", "gauge"),
        ("baton_runner_slots_free", "gauge"),
        ("baton_http_requests_total", "counter"),
        ("baton_http_request_duration_seconds", "histogram"),
        ("baton_coordination_up", "gauge"),
        ("baton_database_up", "gauge"),
        ("baton_ready", "gauge"),
        ("baton_draining", "gauge"),
        ("baton_ws_connections", "gauge"),
        ("baton_events_delivered_total", "counter"),
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("process_threads", "gauge"),
    ] {
        assert!(text.contains(&format!("\n# TYPE {name} {kind}\n")), "{name} is not a {kind}:\n{text}");
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no help:\n{text}");
    }
    assert!(text.contains("baton_build_info{version=\"1.2.3\",node=\"node-a\"} 1\n"), "{text}");
    // No OpenMetrics-only syntax: the 0.0.4 text ends with a sample line, not `# EOF`.
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
}

#[test]
fn finished_statuses_and_transports_start_at_zero() {
    let text = metrics().encode().unwrap();
    for status in ["succeeded", "failed", "cancelled", "timed_out", "lost"] {
        assert!(text.contains(&format!("baton_tasks_finished_total{{status=\"{status}\"}} 0\n")), "{status}:\n{text}");
    }
    assert!(text.contains("baton_events_delivered_total{transport=\"ws\"} 0\n"), "{text}");
    assert!(text.contains("baton_events_delivered_total{transport=\"sse\"} 0\n"), "{text}");
}

#[test]
fn recorded_values_show() {
    let m = metrics();
    m.task_submitted();
    m.task_submitted();
    m.claim_lost();
    m.takes_lost(3);
    m.queue_returns(2);
    m.task_finished(TaskStatus::Succeeded);
    m.task_started(Duration::from_millis(300));
    m.set_queue_depth(7);
    m.set_runners(2, 5);
    m.set_health(Health { database: true, coordination: false, draining: true, ready: false });
    m.events_delivered(Transport::WebSocket, 3);
    let ws = m.ws_connection();
    let text = m.encode().unwrap();
    let lines = samples(&text);
    for want in [
        "baton_tasks_submitted_total 2",
        "baton_claims_lost_total 1",
        "baton_queue_takes_lost_total 3",
        "baton_queue_returns_total 2",
        "baton_tasks_finished_total{status=\"succeeded\"} 1",
        "baton_dispatch_latency_seconds_bucket{le=\"0.25\"} 0",
        "baton_dispatch_latency_seconds_bucket{le=\"0.5\"} 1",
        "baton_dispatch_latency_seconds_bucket{le=\"+Inf\"} 1",
        "baton_dispatch_latency_seconds_count 1",
        "baton_queue_depth 7",
        "baton_runners_connected 2",
        "baton_runner_slots_free 5",
        "baton_database_up 1",
        "baton_coordination_up 0",
        "baton_draining 1",
        "baton_ready 0",
        "baton_events_delivered_total{transport=\"ws\"} 3",
        "baton_ws_connections 1",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{text}");
    }
    drop(ws);
    assert!(samples(&m.encode().unwrap()).contains(&"baton_ws_connections 0"));
}

#[test]
fn http_labels_are_route_templates_and_known_methods() {
    let m = metrics();
    let route = Some("/api/v1/projects/{pid}/tasks/{id}");
    m.http_request(route, "GET", 200, Duration::from_millis(20));
    m.http_request(route, "GET", 404, Duration::from_millis(2));
    m.http_request(None, "BREW", 404, Duration::from_millis(1));
    let text = m.encode().unwrap();
    let lines = samples(&text);
    for want in [
        r#"baton_http_requests_total{route="/api/v1/projects/{pid}/tasks/{id}",method="GET",status="200"} 1"#,
        r#"baton_http_requests_total{route="/api/v1/projects/{pid}/tasks/{id}",method="GET",status="404"} 1"#,
        r#"baton_http_requests_total{route="unmatched",method="other",status="404"} 1"#,
        r#"baton_http_request_duration_seconds_count{route="/api/v1/projects/{pid}/tasks/{id}",method="GET"} 2"#,
        r#"baton_http_request_duration_seconds_bucket{route="unmatched",method="other",le="0.005"} 1"#,
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn a_process_shows_the_metrics_of_the_services_it_runs() {
    let split =
        Metrics::new(Build { version: "1", node_id: "n", dispatcher: false, gateway: false, sql_statements: None });
    let text = split.encode().unwrap();
    for absent in ["baton_queue_depth", "baton_tasks_submitted", "baton_runners_connected", "baton_ws_connections"] {
        assert!(!text.contains(absent), "{absent} in:\n{text}");
    }
    for present in ["baton_database_up", "baton_coordination_up", "baton_build_info", "process_cpu_seconds_total"] {
        assert!(text.contains(present), "no {present} in:\n{text}");
    }
}

#[test]
fn each_process_keeps_its_own_registry() {
    let (a, b) = (metrics(), metrics());
    a.task_submitted();
    assert!(samples(&b.encode().unwrap()).contains(&"baton_tasks_submitted_total 0"));
}

#[test]
fn sql_statements_are_read_from_their_source_at_each_scrape() {
    let n = Arc::new(std::sync::atomic::AtomicU64::new(3));
    let source = {
        let n = n.clone();
        SqlStatements(Arc::new(move || {
            vec![("select", n.load(std::sync::atomic::Ordering::Relaxed)), ("transaction", 1)]
        }))
    };
    let m = Metrics::new(Build {
        version: "1",
        node_id: "n",
        dispatcher: false,
        gateway: false,
        sql_statements: Some(source),
    });
    let text = m.encode().unwrap();
    assert!(text.contains("# TYPE baton_sql_statements_total counter"), "{text}");
    assert!(samples(&text).contains(&r#"baton_sql_statements_total{kind="select"} 3"#), "{text}");
    assert!(samples(&text).contains(&r#"baton_sql_statements_total{kind="transaction"} 1"#), "{text}");
    n.store(5, std::sync::atomic::Ordering::Relaxed);
    assert!(samples(&m.encode().unwrap()).contains(&r#"baton_sql_statements_total{kind="select"} 5"#));
    // Without a source the family is not shown at all (not as zeros nobody measured).
    assert!(!metrics().encode().unwrap().contains("baton_sql_statements"));
}
