//! How scripts run: exit codes, the status path, environment, working directories, and the log
//! (streams, sequence numbers, times, paging, the raw form, odd output).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use baton_testkit::{Client, TestServer};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::child_server::ChildServer;

const WAIT: Duration = Duration::from_secs(60);

async fn submit_with(c: &Client, pid: i64, body: Value) -> Value {
    c.post(&format!("/api/v1/projects/{pid}/tasks"), body).await.expect(201)
}

fn time(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    let t = DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"));
    assert_eq!(t.offset().local_minus_utc(), 0, "{s} is not UTC");
    t.with_timezone(&Utc)
}

/// Runs `script` as a new template's task and waits for its end.
async fn run(c: &Client, pid: i64, script: &str) -> (i64, Value) {
    let tid = c.template(pid, json!({ "script": script })).await;
    let id = c.submit(pid, tid).await;
    (id, c.wait_final(pid, id, WAIT).await)
}

#[tokio::test]
async fn exit_codes_decide_success_and_failure() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let (_, ok) = run(c, pid, "true").await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    assert_eq!(ok["exit_code"], 0, "{ok}");
    let (_, bad) = run(c, pid, "echo about to fail; exit 3").await;
    assert_eq!(bad["status"], "failed", "{bad}");
    assert_eq!(bad["exit_code"], 3, "{bad}");
    let (_, last) = run(c, pid, "false").await;
    assert_eq!(last["status"], "failed", "{last}");
    assert_eq!(last["exit_code"], 1, "{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_path_is_queued_assigned_running_succeeded() {
    // One slot, taken by a blocker until `$GO` exists: the task is surely seen queued first.
    let srv = TestServer::start_with(|cfg| cfg.runner.capacity = 1).await;
    let c = &srv.client;
    let pid = c.project().await;
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let blocker = "for i in $(seq 1 600); do [ -e \"$GO\" ] && exit 0; sleep 0.05; done; exit 1";
    let btid = c.template(pid, json!({"script": blocker, "env": {"GO": go.display().to_string()}})).await;
    let b = c.submit(pid, btid).await;
    c.wait_status(pid, b, &["running"], WAIT).await;
    let tid = c.template(pid, json!({"script": "sleep 1"})).await;
    let created = submit_with(c, pid, json!({"template_id": tid})).await;
    assert_eq!(created["status"], "queued", "{created}");
    assert_eq!(created["epoch"], 0, "{created}");
    assert_eq!(created["attempt"], 1, "{created}");
    assert!(created["runner_id"].is_null() && created["started_at"].is_null(), "{created}");
    assert!(created["finished_at"].is_null() && created["exit_code"].is_null(), "{created}");
    let id = created["id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.task(pid, id).await["status"], "queued");
    std::fs::write(&go, "").unwrap();
    let mut seen = vec!["queued".to_string()];
    let deadline = Instant::now() + WAIT;
    let task = loop {
        let t = c.task(pid, id).await;
        let st = t["status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if !["queued", "assigned", "running"].contains(&st.as_str()) {
            break t;
        }
        assert!(Instant::now() < deadline, "task did not end: {t}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let order = ["queued", "assigned", "running", "succeeded"];
    let idx: Vec<usize> = seen.iter().map(|s| order.iter().position(|o| o == s).unwrap_or(99)).collect();
    assert!(idx.windows(2).all(|w| w[0] < w[1]) && idx.iter().all(|i| *i < 4), "status path {seen:?}");
    assert!(seen.contains(&"running".to_string()), "a 1 s script was never seen running: {seen:?}");
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["epoch"], 1, "{task}");
    assert_eq!(task["attempt"], 1, "{task}");
    assert!(task["runner_id"].as_i64().is_some(), "{task}");
    let (created_at, started, finished) =
        (time(&task["created_at"]), time(&task["started_at"]), time(&task["finished_at"]));
    assert!(created_at <= started + chrono::Duration::milliseconds(50), "{task}");
    assert!(finished - started >= chrono::Duration::milliseconds(900), "sleep 1 took less than a second: {task}");
}

#[tokio::test]
async fn template_and_task_env_reach_the_script_and_no_server_variable_leaks() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let script = r#"echo "T=$FROM_TEMPLATE"; echo "K=$FROM_TASK"; echo "S=$SHARED"; env | grep '^BATON_' | sort"#;
    let tid = c
        .template(pid, json!({"script": script, "env": {"FROM_TEMPLATE": "template value", "SHARED": "template"}}))
        .await;
    let body = json!({"template_id": tid, "env": {"FROM_TASK": "task 'value' $x", "SHARED": "task"}});
    let id = submit_with(c, pid, body).await["id"].as_i64().unwrap();
    let task = c.wait_final(pid, id, WAIT).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let expected = [
        "T=template value".to_string(),
        "K=task 'value' $x".to_string(),
        "S=task".to_string(),
        "BATON_ATTEMPT=1".to_string(),
        format!("BATON_PROJECT_ID={pid}"),
        format!("BATON_TASK_ID={id}"),
        format!("BATON_TEMPLATE_ID={tid}"),
    ];
    assert_eq!(c.log_texts(pid, id).await, expected);
}

/// The server's own configuration lives in `BATON_` variables of its process (data dir, admin
/// password, listen addresses): none of them may reach a script.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_server_process_does_not_leak_its_baton_variables() {
    let dir = tempfile::tempdir().unwrap();
    let pids = tempfile::tempdir().unwrap();
    let db = baton_testkit::TestDatabase::create().await;
    let srv = ChildServer::start(dir.path(), pids.path(), &db).await;
    let c = &srv.client;
    let pid = c.project().await;
    let tid = c.template(pid, json!({"script": "env | grep '^BATON_' | cut -d= -f1 | sort; echo end"})).await;
    let id = c.submit(pid, tid).await;
    let task = c.wait_final(pid, id, WAIT).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let names = c.log_texts(pid, id).await;
    assert_eq!(names, ["BATON_ATTEMPT", "BATON_PROJECT_ID", "BATON_TASK_ID", "BATON_TEMPLATE_ID", "end"]);
}

#[tokio::test]
async fn stdout_and_stderr_are_captured_with_stream_sequence_and_time() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done";
    let (id, task) = run(c, pid, script).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let lines = c.log_lines(pid, id).await;
    assert_eq!(lines.len(), 10, "{lines:?}");
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let of = |stream: &str| -> Vec<String> {
        lines.iter().filter(|l| l["stream"] == stream).map(|l| l["text"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(of("stdout"), ["out1", "out2", "out3", "out4", "out5"]);
    assert_eq!(of("stderr"), ["err1", "err2", "err3", "err4", "err5"]);
    let times: Vec<_> = lines.iter().map(|l| time(&l["time"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times go back: {lines:?}");
    let (started, finished) = (time(&task["started_at"]), time(&task["finished_at"]));
    let slack = chrono::Duration::seconds(1);
    assert!(times.iter().all(|t| *t >= started - slack && *t <= finished + slack), "{lines:?} vs {task}");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_thousand_lines_arrive_complete_in_order_and_page_without_duplicates() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let (id, task) = run(c, pid, "seq 1 5000").await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let want: Vec<String> = (1..=5000).map(|i| i.to_string()).collect();
    assert_eq!(c.log_texts(pid, id).await, want);

    // Pages of 1000 by `after`: no duplicate, no gap, `complete` only on the last page.
    let log = format!("/api/v1/projects/{pid}/tasks/{id}/log");
    let (mut after, mut seen, mut pages) = (0, Vec::new(), 0);
    loop {
        let page = c.get(&format!("{log}?after={after}&limit=1000")).await.expect(200);
        let items = page["items"].as_array().unwrap().clone();
        pages += 1;
        assert!(items.len() <= 1000, "page larger than its limit");
        seen.extend(items.iter().map(|l| l["seq"].as_i64().unwrap()));
        assert_eq!(page["next_after"].as_i64(), seen.last().copied().or(Some(after)), "{page}");
        after = page["next_after"].as_i64().unwrap();
        if page["complete"] == true {
            break;
        }
        assert!(!items.is_empty(), "an empty page that is not complete: {page}");
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen, (1..=5000).collect::<Vec<i64>>());
    assert_eq!(pages, 5, "5000 lines in pages of 1000 should take exactly 5 pages");
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 5000);

    // From the middle: exactly the rest; past the end: nothing, complete.
    let rest = c.get(&format!("{log}?after=4990")).await.expect(200);
    let rest_seqs: Vec<i64> = rest["items"].as_array().unwrap().iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(rest_seqs, (4991..=5000).collect::<Vec<i64>>());
    assert_eq!(rest["complete"], true, "{rest}");
    let end = c.get(&format!("{log}?after=5000")).await.expect(200);
    assert_eq!(end["items"], json!([]), "{end}");
    assert_eq!(end["complete"], true, "{end}");
    assert_eq!(end["next_after"], 5000, "{end}");
}

#[tokio::test]
async fn the_raw_log_is_the_lines_joined_with_newlines() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let (id, task) = run(c, pid, "echo one; echo two >&2; echo '  three  '; echo; echo five").await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let texts = c.log_texts(pid, id).await;
    assert_eq!(texts.len(), 5, "{texts:?}");
    let r = c.get(&format!("/api/v1/projects/{pid}/tasks/{id}/log/raw")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ctype = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ctype.starts_with("text/plain"), "content-type {ctype}");
    let joined = texts.join("\n");
    assert!(r.text == joined || r.text == format!("{joined}\n"), "raw log {:?} vs lines {texts:?}", r.text);
    let mut sorted = texts.clone();
    sorted.sort();
    assert_eq!(sorted, ["", "  three  ", "five", "one", "two"]);
}

#[tokio::test]
async fn every_task_runs_in_a_fresh_empty_working_directory() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    // The first task leaves files behind; the second must not see them.
    let tid = c.template(pid, json!({"script": "ls -A | wc -l; pwd; touch left-over .hidden; mkdir sub"})).await;
    let first = c.submit(pid, tid).await;
    assert_eq!(c.wait_final(pid, first, WAIT).await["status"], "succeeded");
    let second = c.submit(pid, tid).await;
    assert_eq!(c.wait_final(pid, second, WAIT).await["status"], "succeeded");
    let a = c.log_texts(pid, first).await;
    let b = c.log_texts(pid, second).await;
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(a[0].trim(), "0", "first working directory not empty: {a:?}");
    assert_eq!(b[0].trim(), "0", "second working directory not empty: {b:?}");
    assert!(a[1].starts_with('/') && b[1].starts_with('/'), "{a:?} {b:?}");
    assert_ne!(a[1], b[1], "two tasks shared a working directory");
}

#[tokio::test]
async fn a_last_line_without_newline_is_kept() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let (id, task) = run(c, pid, "printf 'first\\nno newline at end'; printf 'err without newline' >&2").await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let lines = c.log_lines(pid, id).await;
    let of = |stream: &str| -> Vec<String> {
        lines.iter().filter(|l| l["stream"] == stream).map(|l| l["text"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(of("stdout"), ["first", "no newline at end"]);
    assert_eq!(of("stderr"), ["err without newline"]);
}

#[tokio::test]
async fn invalid_utf8_output_is_kept_readable() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let (id, task) = run(c, pid, "printf 'bad \\xff\\xfe bytes\\n'; printf '\\xc3\\n' >&2; echo after").await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let lines = c.log_lines(pid, id).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    let stdout: Vec<&str> =
        lines.iter().filter(|l| l["stream"] == "stdout").map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(stdout.len(), 2, "{lines:?}");
    assert!(stdout[0].starts_with("bad ") && stdout[0].ends_with(" bytes"), "{stdout:?}");
    assert!(stdout[0].contains('\u{fffd}'), "invalid bytes should show as U+FFFD: {stdout:?}");
    assert_eq!(stdout[1], "after");
    let raw = c.get(&format!("/api/v1/projects/{pid}/tasks/{id}/log/raw")).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    assert!(raw.text.contains("after"), "{}", raw.text);
    // The server still works after it.
    let (_, next) = run(c, pid, "echo fine").await;
    assert_eq!(next["status"], "succeeded", "{next}");
}
