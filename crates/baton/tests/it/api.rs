//! The API surface of API.md as an administrator sees it: probes, identity (login, sessions,
//! tokens, users), projects, templates, tasks, and the `X-Baton-Node` header.

mod identity;
mod projects;
mod tasks;
mod templates;

use baton_testkit::{Client, Resp, TestServer};
use serde_json::{Value, json};

/// Whether `v` is an RFC 3339 time in UTC (ending in `Z`).
fn is_utc_time(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

/// Parses an RFC 3339 time of a response.
fn time_of(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().to_utc()
}

/// Creates a non-admin user `name` (password `<name>-password`) and returns its id and a client
/// logged in as it.
async fn user_client(srv: &TestServer, name: &str) -> (i64, Client) {
    let password = format!("{name}-password");
    let u = srv.client.post("/api/v1/users", json!({"username": name, "password": password})).await.expect(201);
    let c = srv.anonymous();
    c.login(name, &password).await;
    (u["id"].as_i64().unwrap(), c)
}

/// Asserts that `r` is an API error with `status` and `code`.
fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "unexpected status; body: {}", r.text);
    assert_eq!(r.error_code(), code, "unexpected error code; body: {}", r.text);
    assert!(!r.error_message().is_empty(), "error without a message: {}", r.text);
}

/// The ids of a list page's items.
fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {page}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

/// Follows `next` cursors from `path` (which has a query string) with `limit`, returning every id
/// in order and the number of pages.
async fn all_pages(c: &Client, path: &str, limit: usize) -> (Vec<i64>, usize) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut pages = 0;
    let mut before: Option<String> = None;
    loop {
        let url = match &before {
            Some(b) => format!("{path}{sep}limit={limit}&before={b}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page = c.get(&url).await.expect(200);
        pages += 1;
        let got = ids(&page);
        assert!(got.len() <= limit, "page larger than limit {limit}: {page}");
        out.extend(got);
        match &page["next"] {
            Value::Null => return (out, pages),
            Value::String(s) => before = Some(s.clone()),
            Value::Number(n) => before = Some(n.to_string()),
            other => panic!("bad cursor {other}"),
        }
        assert!(pages < 100, "paging does not end");
    }
}
