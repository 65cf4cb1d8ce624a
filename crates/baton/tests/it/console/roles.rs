//! Controls a role may not use are not offered: a viewer reads everything of the project but
//! sees no Run, Cancel or editing controls, and none of the administration. (The API refuses
//! them regardless; the permission matrix tests that.)

use baton_testkit::{Browser, TestServer};
use serde_json::json;

use super::{login, member, unexpected_errors};

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_sees_no_run_button() {
    let srv = TestServer::start().await;
    let admin = &srv.client;
    let pid = admin.project().await;
    let tid = admin.template(pid, json!({"name": "deploy", "script": "echo deploying; sleep 30"})).await;
    let running = admin.submit(pid, tid).await;
    member(admin, pid, "vera", "vera-password-1", "viewer").await;

    let b = Browser::start().await;
    login(&b, &srv.url, "vera", "vera-password-1").await;
    b.wait_for_text("main td", "viewer").await;
    assert_eq!(b.count("form.card").await, 0, "a viewer is offered no project creation");
    for admin_only in ["Cluster", "Users"] {
        assert!(!b.text(".top nav").await.contains(admin_only), "{admin_only} is for administrators");
    }

    b.goto(&format!("{}/ui/projects/{pid}", srv.url)).await;
    b.wait_for(&format!("tr[data-id='{running}']")).await;
    assert_eq!(b.count("form.run").await, 0, "the tasks page offers a viewer no Run form");
    b.screenshot("console-viewer-tasks").await;

    b.goto(&format!("{}/ui/projects/{pid}/tasks/{running}", srv.url)).await;
    b.wait_for_text(".log .ln .t", "deploying").await;
    let buttons = b.exec("return [...document.querySelectorAll('main button')].map((e) => e.textContent);").await;
    assert!(!buttons.to_string().contains("Cancel"), "a viewer sees no Cancel: {buttons}");

    b.goto(&format!("{}/ui/projects/{pid}/templates/{tid}", srv.url)).await;
    b.wait_for("[name=script]").await;
    let buttons = b.exec("return [...document.querySelectorAll('main button')].map((e) => e.textContent);").await;
    for hidden in ["Run", "Save", "Delete"] {
        assert!(!buttons.as_array().unwrap().iter().any(|t| t == hidden), "a viewer sees {hidden}: {buttons}");
    }
    b.goto(&format!("{}/ui/projects/{pid}/templates", srv.url)).await;
    b.wait_for_text("main td", "deploy").await;
    let buttons = b.exec("return [...document.querySelectorAll('main button')].map((e) => e.textContent);").await;
    assert!(!buttons.to_string().contains("Run"), "a viewer sees no Run on the template list: {buttons}");
    b.screenshot("console-viewer-templates").await;

    let errors = unexpected_errors(&b).await;
    assert!(errors.is_empty(), "the pages logged errors: {errors:#?}");
}
