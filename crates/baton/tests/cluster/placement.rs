//! Placement across nodes whose runners differ. A node takes the tasks it wants off the queue
//! before reading them, so no two nodes read and claim the same task; a task that only another
//! node's runner can take is put back by the node that took it first, once, and runs there.

use std::time::Duration;

use baton_testkit::Dialect;
use serde_json::json;

use crate::cluster::Cluster;
use crate::runner::{Runner, Spec};

#[tokio::test(flavor = "multi_thread")]
async fn a_task_only_another_nodes_runner_fits_goes_back_once_and_runs_there() {
    let mut c = Cluster::start_sized(Dialect::Postgres, 2, &[]).await;
    let grpc = |i: usize| format!("http://127.0.0.1:{}", c.nodes[i].grpc_port);
    let (dir, api, haproxy) = (c.dir.path(), &c.api, &c.haproxy);
    let plain = Runner::start_at(api, haproxy, &grpc(0), dir, "plain").await;
    let gpu = Runner::start_with(api, haproxy, dir, Spec { name: "gpu", grpc_url: &grpc(1), labels: &["gpu"] }).await;
    let gpu_id = gpu.id;
    c.runners.extend([plain, gpu]);
    for i in 0..2 {
        c.wait_runner_online(i, Duration::from_secs(20)).await;
        assert_eq!(c.runner_node(i).await.as_deref(), Some(c.nodes[i].id.as_str()), "runner {i} dialled its node");
    }

    let pid = c.admin.project().await;
    let needs_gpu = c.admin.template(pid, json!({"script": "sleep 0.2", "labels": ["gpu"]})).await;
    let anywhere = c.admin.template(pid, json!({"script": "true"})).await;
    // Three times the GPU runner's 8 slots, submitted round-robin to both nodes: GPU tasks wait on
    // the queue while node-1, whose runner is idle, is woken by every enqueue (its own putting
    // back included) and must leave them there.
    let (mut gpu_tasks, mut other_tasks) = (Vec::new(), Vec::new());
    for i in 0..24 {
        gpu_tasks.push(c.admin.submit(pid, needs_gpu).await);
        if i % 2 == 0 {
            other_tasks.push(c.admin.submit(pid, anywhere).await);
        }
    }
    for id in &gpu_tasks {
        let t = c.admin.wait_final(pid, *id, Duration::from_secs(60)).await;
        assert_eq!((t["status"].as_str(), t["runner_id"].as_i64()), (Some("succeeded"), Some(gpu_id)), "{t}");
    }
    for id in &other_tasks {
        assert_eq!(c.admin.wait_final(pid, *id, Duration::from_secs(30)).await["status"], "succeeded");
    }

    let returned = crate::node::metric(&c.nodes[0], "baton_queue_returns_total").await;
    eprintln!("node-1 put {returned} GPU tasks back");
    assert!(returned >= 1.0, "node-1 never took a GPU task it could not run: the test proved nothing");
    assert!(returned <= gpu_tasks.len() as f64, "node-1 put GPU tasks back {returned} times: at most once each");
    // Two nodes claim one task only when the reconciler (every 2 s on every node) puts it back on
    // the queue between one node's take and its claim: a few milliseconds per task.
    for n in &c.nodes {
        let lost = crate::node::metric(n, "baton_claims_lost_total").await;
        assert!(lost <= 3.0, "{} lost {lost} claims of 36 tasks: nodes are racing for them", n.id);
    }
}
