//! The browser harness against a real server: headless Chromium, driven over WebDriver, opens
//! the gateway's pages. The web console's own tests live in `console/`.

use std::time::Duration;

use base64::Engine;
use baton_testkit::{Browser, TestServer};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

#[tokio::test]
async fn chromium_opens_the_health_endpoint() {
    let srv = TestServer::start().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/api/health", srv.url)).await;
    let body = browser.wait_for_text("body", r#""status":"ok""#).await;
    assert!(body.text().await.unwrap().contains(r#""status":"ok""#));
    let shot = browser.screenshot("browser-health").await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(PNG_SIGNATURE), "{} is not a PNG", shot.display());
    browser.close().await;
}

/// Console tests with two users start two browsers: they must not share a session.
#[tokio::test]
async fn two_browsers_are_independent_and_their_console_errors_are_read() {
    let srv = TestServer::start().await;
    let (alice, bob) = tokio::join!(Browser::start(), Browser::start());
    let health = format!("{}/api/health", srv.url);
    alice.goto(&health).await;
    bob.goto(&health).await;
    alice.exec("document.cookie = 'who=alice; path=/'; return null;").await;
    assert_eq!(alice.exec("return document.cookie;").await, "who=alice");
    assert_eq!(bob.exec("return document.cookie;").await, "");

    let _ = alice.console_errors().await; // whatever loading the page logged (a missing favicon)
    alice.exec("console.error('boom from the test'); return null;").await;
    // The log reaches chromedriver as DevTools events: give it a moment rather than race it.
    let mut errors = Vec::new();
    for _ in 0..50 {
        errors.extend(alice.console_errors().await);
        if errors.iter().any(|e| e.contains("boom from the test")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the console error never reached the log: {errors:?}");
}

/// A page of the kind the console will have, to prove every helper before the console exists:
/// a form whose button enables itself on input, a list it fills, a spinner that goes away.
const FORM_PAGE: &str = r#"<!doctype html>
<input id="name"> <select id="role"><option value="viewer">Viewer</option><option value="owner">Owner</option></select>
<button id="add" disabled>Add</button> <ul id="list"></ul> <p id="spinner">loading</p>
<script>
  const name = document.getElementById("name"), add = document.getElementById("add");
  name.addEventListener("input", () => { add.disabled = !name.value; });
  add.addEventListener("click", () => {
    const li = document.createElement("li");
    li.textContent = name.value + " as " + document.getElementById("role").value;
    document.getElementById("list").append(li);
  });
  setTimeout(() => document.getElementById("spinner").remove(), 300);
</script>"#;

#[tokio::test]
async fn the_helpers_fill_select_click_and_wait() {
    let browser = Browser::start().await;
    let page = base64::engine::general_purpose::STANDARD.encode(FORM_PAGE);
    browser.goto(&format!("data:text/html;base64,{page}")).await;
    browser.wait_gone("#spinner").await;
    browser.fill("#name", "dana").await;
    browser.select("#role", "Owner").await; // by its visible text
    browser.click("#add").await;
    browser.wait_for_text("#list li", "dana as owner").await;
    browser.fill("#name", "erin").await; // replaces, does not append
    browser.select("#role", "viewer").await; // by its value
    browser.click("#add").await;
    browser.wait_for_count("#list li", 2).await;
    assert_eq!(browser.count("#list li").await, 2);
    assert_eq!(browser.text("#list li:last-child").await, "erin as viewer");
    assert_eq!(browser.exec("return document.getElementById('name').value;").await, "erin");
}
