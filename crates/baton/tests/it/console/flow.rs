//! An administrator's day in the console: a project, a template written in the editor, a run
//! whose lines arrive while the script still runs, a cancel, a live task list, and a schedule
//! whose next times are previewed as the expression is typed.

use std::time::Duration;

use baton_testkit::{ADMIN_PASSWORD, Browser, TestServer};
use serde_json::json;

use super::{accept_confirms, click_text, log_lines, login, unexpected_errors, wait_log_complete};

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_runs_a_project_from_the_console() {
    let srv = TestServer::start().await;
    let b = Browser::start().await;
    login(&b, &srv.url, "admin", ADMIN_PASSWORD).await;
    b.screenshot("console-projects").await;

    // A project, created on the projects page.
    b.fill("[name=name]", "Deploys").await;
    b.click("form.card button[type=submit]").await;
    let url = b.wait_for_url("/ui/projects/").await;
    let pid: i64 = url.rsplit('/').next().unwrap().parse().expect("the project page's address ends with its id");

    // A template, written in the editor, then run from its page. The script prints half its
    // lines, then waits for the test to have seen them in the page before it prints the rest.
    let gate = tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    let script = format!(
        "for i in $(seq 1 20); do echo line $i; done; while [ ! -e {go} ]; do sleep 0.05; done; \
         for i in $(seq 21 40); do echo line $i; done; echo done >&2",
        go = go.display()
    );
    b.goto(&format!("{}/ui/projects/{pid}/templates/new", srv.url)).await;
    b.fill("[name=name]", "count").await;
    b.fill("[name=script]", &script).await;
    b.click("form.card button.primary").await;
    b.wait_for_url(&format!("/ui/projects/{pid}/templates/1")).await;
    b.screenshot("console-template").await;
    click_text(&b, "button", "Run").await;

    // The task page follows the script: lines arrive while it runs, each once, stderr apart.
    b.wait_for_url("/tasks/").await;
    b.wait_for(".log .ln[data-seq='20']").await;
    assert_eq!(log_lines(&b).await, 20, "only what the script printed so far");
    b.wait_for_text(".title-row .badge", "running").await;
    std::fs::write(&go, "").unwrap();
    wait_log_complete(&b, 41, Duration::from_secs(30)).await;
    b.wait_for_text(".badge", "succeeded").await;
    assert_eq!(b.count(".log .ln.stderr").await, 1, "the one stderr line is marked");
    let seqs = b.exec("return [...document.querySelectorAll('.log .ln')].map((e) => Number(e.dataset.seq));").await;
    let seqs: Vec<i64> = seqs.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "lines in order, without gaps: {seqs:?}");
    let exit = "const dt = [...document.querySelectorAll('.facts dt')].find((e) => e.textContent === 'Exit code'); \
                return dt.nextElementSibling.textContent;";
    assert_eq!(b.exec(exit).await, "0", "the exit code shows, also when it is 0");
    b.wait_for_text("main td", "local@").await; // the attempts history names the runner
    b.screenshot("console-task").await;

    // A sleeping task, cancelled from its page.
    let sleepy = srv.client.template(pid, json!({"name": "sleepy", "script": "echo started; sleep 60"})).await;
    let id = srv.client.submit(pid, sleepy).await;
    b.goto(&format!("{}/ui/projects/{pid}/tasks/{id}", srv.url)).await;
    b.wait_for_text(".log .ln .t", "started").await;
    accept_confirms(&b).await;
    click_text(&b, "button", "Cancel").await;
    b.wait_for_text(".title-row .badge", "cancelled").await;
    assert_eq!(srv.client.task(pid, id).await["status"], "cancelled");

    // The task list is live: a task submitted elsewhere appears and finishes without a reload.
    b.goto(&format!("{}/ui/projects/{pid}", srv.url)).await;
    b.wait_for("table.tasks").await;
    let quick = srv.client.template(pid, json!({"name": "quick", "script": "sleep 0.5"})).await;
    let id = srv.client.submit(pid, quick).await;
    b.wait_for(&format!("tr[data-id='{id}']")).await;
    b.wait_for(&format!("tr[data-id='{id}'][data-status='succeeded']")).await;
    b.screenshot("console-tasks").await;

    // A schedule: the next five times appear as the expression is typed; a bad one is named.
    b.goto(&format!("{}/ui/projects/{pid}/schedules/new", srv.url)).await;
    b.fill("[name=timezone]", "Europe/Berlin").await;
    b.fill("[name=cron]", "30 4 * * *").await;
    b.wait_for_count("ol.times li", 5).await;
    b.wait_for_text("ol.times", "04:30").await;
    b.screenshot("console-schedule").await;
    b.fill("[name=cron]", "61 4 * * *").await;
    b.wait_for_text(".field-error", "cron").await;
    b.wait_for_text("ol.times", "problem").await;

    let errors = unexpected_errors(&b).await;
    assert!(errors.is_empty(), "the pages logged errors: {errors:#?}");
    b.close().await;
}
