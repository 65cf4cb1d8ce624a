//! The web console on a two-node cluster behind HAProxy: the page is on one node, the runner on
//! the other, and the log still arrives live. Then the page's node is SIGKILLed and started
//! again: the page says it is offline, reconnects by itself and resumes the log exactly after its
//! last line — the complete log, no line twice. The same task through HAProxy shows the same, and
//! the cluster page the database's connections.

use std::time::Duration;

use baton_testkit::{ADMIN_PASSWORD, Browser, Dialect};
use serde_json::json;

use crate::cluster::Cluster;
use crate::runner::Runner;

const LINES: u64 = 300;

#[tokio::test(flavor = "multi_thread")]
async fn the_console_follows_a_task_run_on_the_other_node_across_a_node_restart() {
    let mut c = Cluster::start_sized(Dialect::Postgres, 2, &[]).await;
    let grpc_b = format!("http://127.0.0.1:{}", c.nodes[1].grpc_port);
    let runner = Runner::start_at(&c.api, &c.haproxy, &grpc_b, c.dir.path(), "runner-b").await;
    c.runners.push(runner);
    c.wait_runner_online(0, Duration::from_secs(20)).await;
    assert_eq!(c.runner_node(0).await.as_deref(), Some("node-2"), "the runner dialled node-2 directly");

    let pid =
        c.admin.post("/api/v1/projects", json!({"name": "cluster console"})).await.expect(201)["id"].as_i64().unwrap();
    let script = format!("for i in $(seq 1 {LINES}); do echo line $i; sleep 0.04; done");
    let tid = c.admin.template(pid, json!({"name": "count", "script": script})).await;

    // The page on node-1, run from the console.
    let page = c.nodes[0].url.clone();
    let b = Browser::start().await;
    b.console_login(&page, "admin", ADMIN_PASSWORD).await;
    b.goto(&format!("{page}/ui/projects/{pid}")).await;
    b.select("form.run [name=template_id]", &tid.to_string()).await;
    b.click("form.run button[type=submit]").await;
    let url = b.wait_for_url("/tasks/").await;
    let id: i64 = url.rsplit('/').next().unwrap().parse().unwrap();
    b.wait_for_text(".log .ln .t", "line 1").await;
    b.wait_for_text("#served-by", "node-1").await;
    b.wait_for("#connection[data-state='live']").await;
    b.screenshot("console-cluster-task").await;

    // Its node dies while the script runs on the runner of node-2, and comes back.
    let before = b.console_log_lines().await;
    assert!(before < LINES, "the task ended before the node was killed ({before} lines)");
    c.node_mut("node-1").sigkill();
    b.wait_for("#connection:not([data-state='live'])").await;
    b.screenshot("console-cluster-offline").await;
    c.node_mut("node-1").restart().await;
    // The page retries with a growing backoff (at most 10 s apart).
    let mut b = b;
    b.set_timeout(Browser::DEFAULT_TIMEOUT * 4);
    b.wait_for("#connection[data-state='live']").await;
    b.wait_console_log_complete(LINES, Duration::from_secs(60)).await;
    let t = c.admin.wait_final(pid, id, Duration::from_secs(30)).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert_eq!(c.admin.log_texts(pid, id).await.len() as u64, LINES, "the stored log");
    b.wait_for_text(".title-row .badge", "succeeded").await;

    // The same task through HAProxy (the session cookie is the browser's, whichever node).
    b.goto(&format!("{}/ui/projects/{pid}/tasks/{id}", c.http())).await;
    b.wait_console_log_complete(LINES, Duration::from_secs(30)).await;
    b.wait_for("#connection[data-state='live']").await;

    // The cluster page shows the database server's connections, both nodes' pools among them.
    b.goto(&format!("{}/ui/cluster", c.http())).await;
    b.wait_for_text("#db-connections", "connections open").await;
    let shown = b.text("#db-connections").await;
    let open: u64 = shown.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(open >= 2, "{shown}");
    let view = c.admin.get("/api/v1/cluster").await.expect(200);
    let pools = view["database"]["connections"]["pools"].as_u64().unwrap();
    assert!(shown.contains(&format!("the nodes' pools may open {pools}")), "{shown}");
    assert!(!shown.contains("more than the database allows"), "{shown}");
    b.screenshot("console-cluster-view").await;
    b.close().await;
}
