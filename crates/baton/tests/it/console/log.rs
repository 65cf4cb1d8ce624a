//! A log of 100,000 lines: the page holds all of them but puts only a window of them in the
//! DOM, so the tab stays responsive; scrolling to the top shows the first line.

use std::time::Duration;

use baton_testkit::{ADMIN_PASSWORD, Browser, TestServer};
use serde_json::json;

use super::{login, wait_log_complete};

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_thousand_lines_render_as_a_window() {
    let srv = TestServer::start().await;
    let pid = srv.client.project().await;
    let tid = srv.client.template(pid, json!({"name": "long", "script": "seq 1 100000"})).await;
    let b = Browser::start().await;
    login(&b, &srv.url, "admin", ADMIN_PASSWORD).await;
    let id = srv.client.submit(pid, tid).await;
    b.goto(&format!("{}/ui/projects/{pid}/tasks/{id}", srv.url)).await;
    wait_log_complete(&b, 100_000, Duration::from_secs(120)).await;
    let in_dom = b.count(".log .ln").await;
    assert!(in_dom < 500, "{in_dom} lines in the DOM");
    // Following: the last line is in view.
    b.wait_for_text(".log .ln .t", "100000").await;
    // Scrolled to the top, the first line is drawn (and following stops).
    b.exec(
        "const l = document.querySelector('.log'); l.scrollTop = 0; l.dispatchEvent(new Event('scroll')); return null;",
    )
    .await;
    b.wait_for(".log .ln[data-seq='1']").await;
    assert_eq!(b.exec("return document.getElementById('follow').checked;").await, false);
    b.screenshot("console-long-log").await;
}
