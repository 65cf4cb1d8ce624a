//! Steps of the web console that its tests share, in the single-node suite and in the cluster
//! suite alike: logging in, and reading the task page's log.

use std::time::{Duration, Instant};

use super::Browser;

impl Browser {
    /// Logs `user` in through the console's login page at `base` and waits for the projects page.
    pub async fn console_login(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/")).await;
        self.wait_for_url("/ui/login").await;
        self.fill("[name=username]", user).await;
        self.fill("[name=password]", password).await;
        self.click("form.login button[type=submit]").await;
        self.wait_for_text("main h1", "Projects").await;
    }

    /// The number of lines the task page's log holds, from its "N lines" counter.
    pub async fn console_log_lines(&self) -> u64 {
        let text = self.text(".log-head").await;
        let digits: String = text.split(" lines").next().unwrap_or("").chars().filter(char::is_ascii_digit).collect();
        digits.parse().unwrap_or_else(|_| panic!("no line count in {text:?}"))
    }

    /// Waits until the task page's log holds exactly `n` lines and says it is complete; more
    /// than `n` at any time is a repeated line.
    pub async fn wait_console_log_complete(&self, n: u64, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let held = self.console_log_lines().await;
            let done = self.text(".log-head").await.contains("complete");
            if held == n && done {
                return;
            }
            assert!(held <= n, "the page holds {held} lines of {n}: a line came twice");
            if Instant::now() > end {
                let shot = self.screenshot("console-log-incomplete").await;
                panic!("the log showed {held} of {n} lines (complete: {done}); see {}", shot.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
