//! An HTTP client for tests where a request may fail: nodes die under it, so errors are values
//! here, not panics (testkit's `Client` panics when a request cannot be sent). It authenticates
//! with an admin API token, which every node accepts because tokens live in SQL.

use std::time::{Duration, Instant};

use serde_json::Value;

/// An answer: status, the node that gave it (`X-Baton-Node`) and the JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub node: Option<String>,
    pub body: Value,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    token: String,
}

impl Api {
    pub fn new(token: &str) -> Api {
        // A node that hangs must not hang the test: a request gets 20 s, then counts as failed.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("http client");
        Api { http, token: token.to_owned() }
    }

    /// Sends one request to `base` (a node or HAProxy); `Err` when no answer came back.
    pub async fn try_send(
        &self,
        method: reqwest::Method,
        base: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut req = self.http.request(method, format!("{base}{path}")).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.map_err(|e| format!("{e:?}"))?;
        let status = r.status().as_u16();
        let node = r.headers().get("x-baton-node").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = r.text().await.map_err(|e| format!("reading the body: {e:?}"))?;
        Ok(Reply { status, node, body: serde_json::from_str(&text).unwrap_or(Value::Null) })
    }

    /// A GET that must end with `want`: transient failures (no answer, 502/503/504 while a node
    /// dies or HAProxy has no server yet) are retried for up to 30 s, anything else panics.
    pub async fn get(&self, base: &str, path: &str, want: u16) -> Reply {
        self.call(base, path, None, want).await
    }

    /// Like [`Api::get`], for a request that is safe to repeat (a PUT-like POST such as drain).
    pub async fn post_idempotent(&self, base: &str, path: &str, body: &Value, want: u16) -> Reply {
        self.call(base, path, Some(body), want).await
    }

    /// A POST when there is a body, else a GET.
    async fn call(&self, base: &str, path: &str, body: Option<&Value>, want: u16) -> Reply {
        let method = if body.is_some() { reqwest::Method::POST } else { reqwest::Method::GET };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match self.try_send(method.clone(), base, path, body).await {
                Ok(r) if r.status == want => return r,
                Ok(r) if ![502, 503, 504].contains(&r.status) => {
                    panic!("{method} {base}{path}: expected {want}, got {} from {:?}: {}", r.status, r.node, r.body)
                }
                Ok(r) => format!("{} from {:?}: {}", r.status, r.node, r.body),
                Err(e) => e,
            };
            assert!(Instant::now() < deadline, "{method} {base}{path} kept failing for 30 s; last: {last}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every task of project `pid`, following the `before` cursor, newest first.
    pub async fn all_tasks(&self, base: &str, pid: i64) -> Vec<Value> {
        let mut tasks = Vec::new();
        let mut before = String::new();
        loop {
            let page = self.get(base, &format!("/api/v1/projects/{pid}/tasks?limit=500{before}"), 200).await.body;
            tasks.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(next) => before = format!("&before={next}"),
                None => return tasks,
            }
        }
    }
}
