//! Bad input of every kind gets a clear error of API.md's shape, never a 500, and loses nothing:
//! after it the server still runs tasks and the data sent before is intact.

mod body;
mod requests;
mod rules;

use std::time::Duration;

use baton_testkit::{Client, Resp};
use serde_json::{Value, json};

/// Asserts that `r` is an error of API.md's shape, `{"error": {"code": <snake_case>, "message":
/// <text>}}`, as JSON, with `status` and `code`.
fn assert_error_shape(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "unexpected status; body: {}", r.text);
    let ctype = r.headers.get("content-type").map(|v| v.to_str().unwrap_or("")).unwrap_or("");
    assert!(ctype.starts_with("application/json"), "error is not JSON ({ctype}): {}", r.text);
    let obj = r.body.as_object().unwrap_or_else(|| panic!("error body is not a JSON object: {:?}", r.text));
    assert_eq!(obj.keys().collect::<Vec<_>>(), vec!["error"], "error body: {}", r.text);
    let c = r.body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error.code: {}", r.text));
    let snake = !c.is_empty() && c.split('_').all(|w| !w.is_empty() && w.chars().all(|ch| ch.is_ascii_lowercase()));
    assert!(snake, "error code {c:?} is not snake_case");
    assert_eq!(c, code, "unexpected error code; body: {}", r.text);
    let msg = r.body["error"]["message"].as_str().unwrap_or_else(|| panic!("no error.message: {}", r.text));
    assert!(!msg.trim().is_empty(), "empty error message: {}", r.text);
}

/// Asserts a 400 `invalid_input` whose message names each of `fields` (as `field`, in backticks).
fn assert_names(r: &Resp, fields: &[&str]) {
    assert_error_shape(r, 400, "invalid_input");
    for f in fields {
        assert!(
            r.error_message().contains(&format!("`{f}`")),
            "the message does not name `{f}`: {}",
            r.error_message()
        );
    }
}

/// Asserts a 400 `invalid_input` whose message mentions each of `words`.
fn assert_mentions(r: &Resp, words: &[&str]) {
    assert_error_shape(r, 400, "invalid_input");
    for w in words {
        assert!(r.error_message().contains(w), "the message does not mention {w:?}: {}", r.error_message());
    }
}

async fn post_raw(c: &Client, path: &str, body: impl Into<reqwest::Body>) -> Resp {
    c.send_raw(reqwest::Method::POST, path, body).await
}

/// Creates a project (with a template) to aim bad requests at; returns `(pid, tid)`.
async fn target(c: &Client) -> (i64, i64) {
    let pid = c.project().await;
    let tid = c.template(pid, json!({"name": "good", "script": "echo good"})).await;
    (pid, tid)
}

/// Asserts that the project and template made by [`target`] are unchanged and hold exactly
/// `tasks` tasks, then that a new task runs to success.
async fn still_works(c: &Client, pid: i64, tid: i64, tasks: usize) {
    let p = c.get(&format!("/api/v1/projects/{pid}")).await.expect(200);
    assert_eq!(p["description"], "", "{p}");
    let t = c.get(&format!("/api/v1/projects/{pid}/templates/{tid}")).await.expect(200);
    assert_eq!((&t["name"], &t["script"], &t["priority"]), (&json!("good"), &json!("echo good"), &json!(0)), "{t}");
    let templates = c.get(&format!("/api/v1/projects/{pid}/templates")).await.expect(200);
    assert_eq!(templates["items"].as_array().unwrap().len(), 1, "a bad request made a template: {templates}");
    let list = c.get(&format!("/api/v1/projects/{pid}/tasks")).await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), tasks, "unexpected tasks: {list}");
    let id = c.submit(pid, tid).await;
    let done = c.wait_final(pid, id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(c.log_texts(pid, id).await, vec!["good".to_string()]);
}

/// The number of projects the admin sees.
async fn project_count(c: &Client) -> usize {
    let page: Value = c.get("/api/v1/projects?limit=500").await.expect(200);
    page["items"].as_array().unwrap().len()
}
