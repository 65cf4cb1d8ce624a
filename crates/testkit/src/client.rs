//! An HTTP client for API.md with the helpers tests share.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// A response: status, headers and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Panics unless the status is `want`; returns the body.
    pub fn expect(self, want: u16) -> Value {
        assert_eq!(self.status.as_u16(), want, "unexpected status; body: {}", self.text);
        self.body
    }

    /// The error code of an error body.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    pub base: String,
    token: Option<String>,
}

impl Client {
    /// A client with its own cookie jar.
    pub fn new(base: &str) -> Client {
        let http = reqwest::Client::builder().cookie_store(true).build().expect("http client");
        Client { http, base: base.trim_end_matches('/').to_owned(), token: None }
    }

    /// A copy that sends `Authorization: Bearer <token>` instead of cookies.
    pub fn with_token(&self, token: &str) -> Client {
        let http = reqwest::Client::builder().build().expect("http client");
        Client { http, base: self.base.clone(), token: Some(token.to_owned()) }
    }

    pub async fn login(&self, username: &str, password: &str) {
        self.post("/api/v1/auth/login", json!({"username": username, "password": password})).await.expect(200);
    }

    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
        self.send_with(method, path, body, &[]).await
    }

    /// Like [`Client::send`], with extra headers (say, the `Origin` a browser would send).
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Client::finish(req.send().await.expect("request sent")).await
    }

    /// Sends raw bytes as the body, for malformed-input tests.
    pub async fn send_raw(&self, method: reqwest::Method, path: &str, body: impl Into<reqwest::Body>) -> Resp {
        let mut req =
            self.http.request(method, format!("{}{path}", self.base)).header("content-type", "application/json");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        Client::finish(req.body(body).send().await.expect("request sent")).await
    }

    async fn finish(r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a project with a unique name; returns its id.
    pub async fn project(&self) -> i64 {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("project-{n}-{}", std::process::id());
        self.post("/api/v1/projects", json!({"name": name})).await.expect(201)["id"].as_i64().unwrap()
    }

    /// Creates a template in `pid` from `body` (a JSON object with at least `script`; a name is
    /// made up when missing); returns its id.
    pub async fn template(&self, pid: i64, mut body: Value) -> i64 {
        if body.get("name").is_none() {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            body["name"] = json!(format!("t{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        }
        self.post(&format!("/api/v1/projects/{pid}/templates"), body).await.expect(201)["id"].as_i64().unwrap()
    }

    /// Mints a runner registration token (no label or project limits); returns the token.
    pub async fn registration_token(&self) -> String {
        let r = self.post("/api/v1/runner-registration-tokens", json!({})).await.expect(201);
        r["token"].as_str().expect("a minted token").to_owned()
    }

    /// Submits a task of template `tid`; returns its id.
    pub async fn submit(&self, pid: i64, tid: i64) -> i64 {
        self.post(&format!("/api/v1/projects/{pid}/tasks"), json!({"template_id": tid})).await.expect(201)["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn task(&self, pid: i64, id: i64) -> Value {
        self.get(&format!("/api/v1/projects/{pid}/tasks/{id}")).await.expect(200)
    }

    /// Polls until the task reaches a status in `statuses` (panics after `timeout`).
    pub async fn wait_status(&self, pid: i64, id: i64, statuses: &[&str], timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.task(pid, id).await;
            if statuses.contains(&t["status"].as_str().unwrap_or("")) {
                return t;
            }
            assert!(Instant::now() < deadline, "task {id} did not reach {statuses:?} within {timeout:?}; it is {t}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the task has ended.
    pub async fn wait_final(&self, pid: i64, id: i64, timeout: Duration) -> Value {
        self.wait_status(pid, id, &["succeeded", "failed", "cancelled", "timed_out", "lost"], timeout).await
    }

    /// Every log line of a task, following the `after` cursor.
    pub async fn log_lines(&self, pid: i64, id: i64) -> Vec<Value> {
        let mut lines = Vec::new();
        let mut after = 0;
        loop {
            let page =
                self.get(&format!("/api/v1/projects/{pid}/tasks/{id}/log?after={after}&limit=500")).await.expect(200);
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return lines;
            }
            after = page["next_after"].as_i64().unwrap();
            lines.extend(items);
        }
    }

    /// The log's texts, in order.
    pub async fn log_texts(&self, pid: i64, id: i64) -> Vec<String> {
        self.log_lines(pid, id).await.iter().map(|l| l["text"].as_str().unwrap_or("").to_owned()).collect()
    }
}
