//! A real headless Chromium driven over WebDriver, for end-to-end tests of the web console.
//!
//! [`Browser::start`] runs Debian's `/usr/bin/chromedriver` on a free loopback port (see
//! `driver.rs`) and opens one headless Chromium session with a fresh profile. Each `Browser` is
//! one independent user: start two for a test with two users, and they share no cookies, storage
//! or processes. Every helper waits for what it needs (10 s by default, [`Browser::set_timeout`])
//! and a timeout panics with what was awaited, the current URL and a screenshot of the page.

mod console;
mod driver;
mod log;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

use driver::{CHROMIUM, Driver};

/// How often a helper looks again: short enough not to slow tests, long enough not to keep a
/// core busy on a two-core machine.
const POLL: Duration = Duration::from_millis(50);

/// One headless Chromium with its own chromedriver and profile; both die when it drops.
pub struct Browser {
    client: Client,
    _driver: Driver,
    timeout: Duration,
    /// The profile and chromedriver's log. Declared after `_driver`, so it is removed only once
    /// the processes that write into it are dead.
    _dir: TempDir,
}

impl Browser {
    /// How long a helper waits unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Starts chromedriver and a headless Chromium session (1280×900, a fresh profile, the
    /// browser console log recorded). Panics, saying how to install them, when chromedriver or
    /// Chromium is missing.
    pub async fn start() -> Browser {
        let dir = tempfile::Builder::new().prefix("baton-browser-").tempdir().expect("temp dir");
        let profile = dir.path().join("profile");
        let driver = Driver::start(dir.path()).await;
        let args = [
            "--headless=new".to_owned(),
            // Root in a container has no user namespaces for the sandbox.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            // No update checks, safe-browsing lists or metrics: tests stay offline and quiet.
            "--disable-background-networking".to_owned(),
            // Containers often give /dev/shm only 64 MiB, which crashes renderers.
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            "--window-size=1280,900".to_owned(),
        ];
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        // Keeps the page's console for `console_errors`.
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("chromedriver did not open a Chromium session: {e}\n{}", driver.output()));
        Browser { client, _driver: driver, timeout: Browser::DEFAULT_TIMEOUT, _dir: dir }
    }

    /// Changes how long the helpers wait (for a step known to be slow).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The fantoccini client, for whatever the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Ends the WebDriver session, so Chromium exits cleanly, then stops chromedriver. Dropping
    /// a `Browser` kills both instead, which is fine too.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.clone().close()).await;
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) {
        match tokio::time::timeout(self.timeout, self.client.goto(url)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.fail(format!("cannot open {url}: {e}")).await,
            Err(_) => self.fail(format!("timed out after {:?} opening {url}", self.timeout)).await,
        }
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client.current_url().await.map(|u| u.to_string()).expect("the current URL")
    }

    /// Waits until the current URL contains `part` (after a client-side navigation).
    pub async fn wait_for_url(&self, part: &str) -> String {
        let client = &self.client;
        self.wait(&format!("the URL to contain {part:?}"), || async move {
            let url = client.current_url().await?.to_string();
            Ok(url.contains(part).then_some(url))
        })
        .await
    }

    /// Waits until an element matching `css` is displayed, and returns the first such element.
    pub async fn wait_for(&self, css: &str) -> Element {
        let client = &self.client;
        self.wait(&format!("`{css}` to be displayed"), || async move { first_displayed(client, css, None).await }).await
    }

    /// Waits until a displayed element matching `css` has a text containing `text`, and returns
    /// it.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Element {
        let client = &self.client;
        let what = format!("`{css}` with a text containing {text:?}");
        self.wait(&what, || async move { first_displayed(client, css, Some(text)).await }).await
    }

    /// Waits until no element matching `css` is displayed (removed or hidden).
    pub async fn wait_gone(&self, css: &str) {
        let client = &self.client;
        self.wait(&format!("`{css}` to be gone"), || async move {
            Ok(first_displayed(client, css, None).await?.is_none().then_some(()))
        })
        .await
    }

    /// Waits until exactly `n` elements match `css` (displayed or not), e.g. rows of a list.
    pub async fn wait_for_count(&self, css: &str, n: usize) {
        let client = &self.client;
        self.wait(&format!("{n} elements matching `{css}`"), || async move {
            Ok((client.find_all(Locator::Css(css)).await?.len() == n).then_some(()))
        })
        .await
    }

    /// Clicks the first displayed and enabled element matching `css`, waiting for it, and
    /// trying again while something covers it (an overlay fading out) or it is being replaced.
    pub async fn click(&self, css: &str) {
        let client = &self.client;
        self.wait(&format!("`{css}` to be clickable"), || async move {
            let Some(el) = first_enabled(client, css).await? else { return Ok(None) };
            el.click().await?;
            Ok(Some(()))
        })
        .await
    }

    /// Replaces the value of the first displayed and enabled field matching `css` with `value`
    /// (clears it, then types, so the page sees real input events).
    pub async fn fill(&self, css: &str, value: &str) {
        let client = &self.client;
        self.wait(&format!("`{css}` to be fillable"), || async move {
            let Some(el) = first_enabled(client, css).await? else { return Ok(None) };
            el.clear().await?;
            el.send_keys(value).await?;
            Ok(Some(()))
        })
        .await
    }

    /// Chooses the option of the `<select>` matching `css` whose value, or else whose visible
    /// text, is `value`; waits for the option too, since options often arrive from the API.
    pub async fn select(&self, css: &str, value: &str) {
        let client = &self.client;
        self.wait(&format!("`{css}` to offer the option {value:?}"), || async move {
            let Some(select) = first_enabled(client, css).await? else { return Ok(None) };
            let options = select.find_all(Locator::Css("option")).await?;
            let mut by_text = None;
            for option in options {
                if option.prop("value").await?.as_deref() == Some(value) {
                    option.click().await?;
                    return Ok(Some(()));
                }
                if by_text.is_none() && option.text().await?.trim() == value {
                    by_text = Some(option);
                }
            }
            let Some(option) = by_text else { return Ok(None) };
            option.click().await?;
            Ok(Some(()))
        })
        .await
    }

    /// The visible text of the first displayed element matching `css`, waiting for it.
    pub async fn text(&self, css: &str) -> String {
        let el = self.wait_for(css).await;
        match el.text().await {
            Ok(text) => text,
            Err(e) => self.fail(format!("cannot read the text of `{css}`: {e}")).await,
        }
    }

    /// How many elements match `css` now (displayed or not), without waiting.
    pub async fn count(&self, css: &str) -> usize {
        match self.client.find_all(Locator::Css(css)).await {
            Ok(found) => found.len(),
            Err(e) => self.fail(format!("cannot count `{css}`: {e}")).await,
        }
    }

    /// Runs `js` in the page as a function body and returns what it returns (`return …;`).
    pub async fn exec(&self, js: &str) -> Value {
        match self.client.execute(js, vec![]).await {
            Ok(value) => value,
            Err(e) => self.fail(format!("script failed: {e}\n{js}")).await,
        }
    }

    /// Saves a PNG of the viewport as `<name>.png` in the screenshot directory and returns its
    /// path: `$BATON_SCREENSHOTS`, or `target/screenshots/` of the workspace. Names are shared by
    /// every test, so use one that says which test took it.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        match self.try_screenshot(name).await {
            Ok(path) => path,
            Err(e) => panic!("cannot save the screenshot {name:?}: {e}"),
        }
    }

    /// The messages the page logged as errors since the last call (console errors, uncaught
    /// exceptions, failed loads): chromedriver hands each entry over once.
    pub async fn console_errors(&self) -> Vec<String> {
        match log::browser_log(&self.client).await {
            Ok(entries) => entries.into_iter().filter(|e| e.level == "SEVERE").map(|e| e.message).collect(),
            Err(e) => self.fail(format!("cannot read the browser log: {e}")).await,
        }
    }

    /// Polls `probe` until it yields a value, for at most the timeout. Errors that mean "not yet"
    /// (no such element, a stale or covered one) are retried; any other fails at once.
    async fn wait<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, CmdError>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut last = None;
        loop {
            // A single WebDriver call may hang too (a page stuck in a script): bound it.
            let left = deadline.saturating_duration_since(Instant::now()).max(POLL);
            match tokio::time::timeout(left, probe()).await {
                Ok(Ok(Some(value))) => return value,
                Ok(Ok(None)) | Err(_) => {}
                Ok(Err(e)) if not_yet(&e) => last = Some(e),
                Ok(Err(e)) => self.fail(format!("failed while waiting for {what}: {e}")).await,
            }
            if Instant::now() >= deadline {
                let last = last.map(|e| format!(" (last: {e})")).unwrap_or_default();
                self.fail(format!("timed out after {:?} waiting for {what}{last}", self.timeout)).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Panics with `msg`, the current URL and a screenshot named after the running test.
    async fn fail(&self, msg: String) -> ! {
        let bounded = Duration::from_secs(5);
        let url = match tokio::time::timeout(bounded, self.client.current_url()).await {
            Ok(Ok(url)) => url.to_string(),
            _ => "an unknown URL".to_owned(),
        };
        let test = std::thread::current().name().unwrap_or("browser").to_owned();
        let shot = match tokio::time::timeout(bounded, self.try_screenshot(&format!("{test}-failure"))).await {
            Ok(Ok(path)) => format!("screenshot: {}", path.display()),
            Ok(Err(e)) => format!("no screenshot: {e}"),
            Err(_) => "no screenshot: timed out".to_owned(),
        };
        panic!("browser: {msg}\n  at {url}\n  {shot}");
    }

    async fn try_screenshot(&self, name: &str) -> Result<PathBuf, String> {
        let png = self.client.screenshot().await.map_err(|e| e.to_string())?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(file_name(name));
        std::fs::write(&path, png).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// The first displayed element matching `css` (whose text contains `text`, if given).
async fn first_displayed(client: &Client, css: &str, text: Option<&str>) -> Result<Option<Element>, CmdError> {
    for el in client.find_all(Locator::Css(css)).await? {
        if !el.is_displayed().await? {
            continue;
        }
        match text {
            Some(text) if !el.text().await?.contains(text) => {}
            _ => return Ok(Some(el)),
        }
    }
    Ok(None)
}

/// The first displayed element matching `css` that is enabled: clicking a disabled button
/// succeeds in WebDriver and does nothing, which would make a test race its page.
async fn first_enabled(client: &Client, css: &str) -> Result<Option<Element>, CmdError> {
    for el in client.find_all(Locator::Css(css)).await? {
        if el.is_displayed().await? && el.is_enabled().await? {
            return Ok(Some(el));
        }
    }
    Ok(None)
}

/// Errors that a page still rendering produces; waiting longer may cure them.
fn not_yet(e: &CmdError) -> bool {
    use fantoccini::error::ErrorStatus::*;
    matches!(e, CmdError::Standard(w) if matches!(
        w.error,
        NoSuchElement | StaleElementReference | ElementNotInteractable | ElementClickIntercepted | InvalidElementState
    ))
}

/// `$BATON_SCREENSHOTS`, or `target/screenshots` of this workspace (where CI keeps artefacts).
fn screenshot_dir() -> PathBuf {
    match std::env::var_os("BATON_SCREENSHOTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let testkit = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            testkit.ancestors().nth(2).unwrap_or(testkit).join("target/screenshots")
        }
    }
}

/// `name` as a file name: test names contain `::`, and a name may not leave the directory.
fn file_name(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    let safe = safe.trim_start_matches('.');
    if safe.ends_with(".png") { safe.to_owned() } else { format!("{safe}.png") }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn screenshot_names_stay_in_their_directory() {
        assert_eq!(file_name("console::login::works-failure"), "console--login--works-failure.png");
        assert_eq!(file_name("../../etc/x.png"), "-..-etc-x.png");
        assert_eq!(file_name("after login"), "after-login.png");
    }
}
