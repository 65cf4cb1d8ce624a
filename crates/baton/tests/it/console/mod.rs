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
    b.console_login(base, user, password).await;
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

pub async fn log_lines(b: &Browser) -> u64 {
    b.console_log_lines().await
}

pub async fn wait_log_complete(b: &Browser, n: u64, timeout: Duration) {
    b.wait_console_log_complete(n, timeout).await;
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
    let resp = admin
        .send(reqwest::Method::PUT, &format!("/api/v1/projects/{pid}/members/{uid}"), Some(json!({"role": role})))
        .await;
    assert!(resp.status.is_success(), "adding {username}: {}", resp.text);
    uid
}

pub fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}
