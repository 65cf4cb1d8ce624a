//! The README's walk-through: log in, create a project and a template, run a task, read its log.

use std::time::Duration;

use baton_testkit::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_task_runs_end_to_end_and_its_log_is_kept() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "echo hello $BATON_TASK_ID; echo warn >&2; exit 0"})).await;
    let id = c.submit(pid, tid).await;
    let task = c.wait_final(pid, id, Duration::from_secs(20)).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["exit_code"], 0);
    assert_eq!(task["epoch"], 1);
    let mut texts = c.log_texts(pid, id).await;
    texts.sort();
    assert_eq!(texts, vec![format!("hello {id}"), "warn".to_string()]);
}
