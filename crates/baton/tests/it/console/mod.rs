//! The web console in a real headless Chromium against a real server: what a person does with
//! it (log in, create a project and a template, run it and watch it live, cancel, preview a
//! schedule), what a viewer is not offered, a huge log, and every page once with a screenshot.
//! Screenshots land in `target/screenshots/` (or `$BATON_SCREENSHOTS`).

use std::time::Duration;

use baton_testkit::{Browser, Client};
use serde_json::{Value, json};

mod flow;
mod log;
mod pages;
mod roles;

/// Logs `user` in through the login page and waits for the projects page.
pub async fn login(b: &Browser, base: &str, user: &str, password: &str) {
    b.goto(&format!("{base}/")).await;
    b.wait_for_url("/ui/login").await;
    b.fill("[name=username]", user).await;
    b.fill("[name=password]", password).await;
    b.click("form.login button[type=submit]").await;
    b.wait_for_text("main h1", "Projects").await;
}

/// Clicks the first displayed element matching `css` whose text contains `text`.
pub async fn click_text(b: &Browser, css: &str, text: &str) {
    let el = b.wait_for_text(css, text).await;
    el.click().await.unwrap_or_else(|e| panic!("clicking {css} {text:?}: {e}"));
}

/// Confirmation dialogs answer "yes" (WebDriver cannot see `window.confirm` otherwise).
pub async fn accept_confirms(b: &Browser) {
    b.exec("window.confirm = () => true; return null;").await;
}

/// The number of lines the task page's log holds, from its "N lines" counter.
pub async fn log_lines(b: &Browser) -> u64 {
    let text = b.text(".log-head").await;
    let digits: String = text.split(" lines").next().unwrap_or("").chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no line count in {text:?}"))
}

/// Waits until the task page's log holds `n` lines and says it is complete.
pub async fn wait_log_complete(b: &Browser, n: u64, timeout: Duration) {
    let end = std::time::Instant::now() + timeout;
    loop {
        let held = log_lines(b).await;
        let done = b.text(".log-head").await.contains("complete");
        if held == n && done {
            return;
        }
        assert!(held <= n, "the page holds {held} lines of {n}: a line came twice");
        if std::time::Instant::now() > end {
            let shot = b.screenshot("console-log-incomplete").await;
            panic!("the log showed {held} of {n} lines (complete: {done}); see {}", shot.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Page errors other than the expected 401 of the first `users/me` (not logged in yet) and
/// failed loads the test provoked on purpose.
pub async fn unexpected_errors(b: &Browser) -> Vec<String> {
    b.console_errors()
        .await
        .into_iter()
        .filter(|e| !(e.contains("users/me") && e.contains("401")))
        .filter(|e| !e.contains("the server responded with a status of 4"))
        .collect()
}

/// A user (not an administrator) with `role` in project `pid`; returns their id.
pub async fn member(admin: &Client, pid: i64, username: &str, password: &str, role: &str) -> i64 {
    let user = admin
        .post("/api/v1/users", json!({"username": username, "password": password, "admin": false}))
        .await
        .expect(201);
    let uid = user["id"].as_i64().unwrap();
    let resp = admin.send(reqwest::Method::PUT, &format!("/api/v1/projects/{pid}/members/{uid}"), Some(json!({"role": role}))).await;
    assert!(resp.status.is_success(), "adding {username}: {}", resp.text);
    uid
}

pub fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}
