//! The browser's console log, read through chromedriver's `POST /session/{id}/se/log`: not part
//! of W3C WebDriver, so fantoccini has no call for it, but it takes custom commands.

use fantoccini::Client;
use fantoccini::error::CmdError;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde::Deserialize;

/// One entry of the log (`level` is `SEVERE`, `WARNING`, `INFO`, …).
#[derive(Debug, Deserialize)]
pub(super) struct Entry {
    pub level: String,
    pub message: String,
}

/// Takes the entries logged since the last call; the session must have been opened with
/// `goog:loggingPrefs` `{"browser": "ALL"}` for there to be any.
pub(super) async fn browser_log(client: &Client) -> Result<Vec<Entry>, CmdError> {
    let value = client.issue_cmd(BrowserLog).await?;
    serde_json::from_value(value).map_err(CmdError::Json)
}

#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}
