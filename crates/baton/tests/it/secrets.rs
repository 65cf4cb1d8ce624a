//! Project secrets: stored sealed, never returned, given to scripts as variables, and masked in
//! every log line — including a value that an over-long line would have cut in two.

use std::time::Duration;

use baton_testkit::TestServer;
use serde_json::json;

const VALUE: &str = "s3cr3t-Value-123";

#[tokio::test]
async fn secrets_are_sealed_never_returned_and_checked() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let base = format!("/api/v1/projects/{pid}/secrets");
    let made = c.post(&base, json!({"name": "DB_PASSWORD", "value": VALUE})).await.expect(201);
    assert_eq!(made["name"], "DB_PASSWORD");
    // The same shape as the list's items (and the OpenAPI document's `Secret`).
    assert!(made["created_at"].is_string() && made["updated_at"].is_string(), "{made}");
    assert!(!made.to_string().contains(VALUE));
    let dup = c.post(&base, json!({"name": "DB_PASSWORD", "value": "x-other"})).await;
    assert_eq!(dup.status.as_u16(), 409);
    let bad = c.post(&base, json!({"name": "1BAD", "value": "x"})).await;
    assert_eq!(bad.status.as_u16(), 400);
    assert!(bad.error_message().contains("`name`"), "{}", bad.text);
    c.send(reqwest::Method::PUT, &format!("{base}/DB_PASSWORD"), Some(json!({"value": VALUE}))).await.expect(200);
    let missing = c.send(reqwest::Method::PUT, &format!("{base}/NOPE"), Some(json!({"value": "x"}))).await;
    assert_eq!(missing.status.as_u16(), 404);
    let list = c.get(&base).await;
    assert!(!list.text.contains(VALUE), "{}", list.text);
    assert_eq!(list.body["items"][0]["name"], "DB_PASSWORD");

    // At rest the value is sealed.
    let store = srv.store().await;
    let rows = store.project_secrets(pid).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].sealed.contains(VALUE) && !rows[0].sealed.is_empty());

    // A task of a template naming an undefined secret is refused, naming the problem.
    let tid = c.template(pid, json!({"script": "true", "secrets": ["UNDEFINED"]})).await;
    let r = c.post(&format!("/api/v1/projects/{pid}/tasks"), json!({"template_id": tid})).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    assert!(r.error_message().contains("UNDEFINED"), "{}", r.text);

    c.delete(&format!("{base}/DB_PASSWORD")).await.expect(204);
    assert_eq!(c.get(&base).await.body["items"], json!([]));
}

#[tokio::test]
async fn scripts_get_secrets_and_logs_never_show_them() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid = c.project().await;
    let base = format!("/api/v1/projects/{pid}/secrets");
    c.post(&base, json!({"name": "DB_PASSWORD", "value": VALUE})).await.expect(201);
    c.post(&base, json!({"name": "CERT", "value": "-----first-line-----\n-----second-line-----"})).await.expect(201);
    // The last line is longer than the runner's 16 KiB line limit, with the value right across
    // the place where it is cut.
    let script = r#"echo "pw=$DB_PASSWORD"
echo "$DB_PASSWORD" >&2
printf '%s\n' "$CERT"
echo "length=${#DB_PASSWORD}"
printf 'x%.0s' $(seq 1 16380); echo "$DB_PASSWORD tail""#;
    let tid = c.template(pid, json!({"script": script, "secrets": ["DB_PASSWORD", "CERT"]})).await;
    let id = c.submit(pid, tid).await;
    let t = c.wait_final(pid, id, Duration::from_secs(30)).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    let texts = c.log_texts(pid, id).await;
    assert!(texts.contains(&"pw=********".to_owned()), "{texts:?}");
    assert!(texts.contains(&"length=16".to_owned()), "the variable was not set: {texts:?}");
    assert_eq!(
        texts.iter().filter(|l| l.as_str() == "********").count(),
        3,
        "stderr and both lines of CERT: {texts:?}"
    );
    let joined = texts.concat();
    let tails: Vec<_> = texts.iter().map(|l| (l.len(), l.chars().rev().take(20).collect::<String>())).collect();
    assert!(joined.contains("******** tail"), "the long line lost its mask: {tails:?}");
    for leaked in [VALUE, "first-line", "second-line"] {
        assert!(!joined.contains(leaked), "{leaked} leaked into the log");
    }
    let raw = c.get(&format!("/api/v1/projects/{pid}/tasks/{id}/log/raw")).await;
    assert!(!raw.text.contains(VALUE));
    // The task's own record does not carry the value either.
    assert!(!c.get(&format!("/api/v1/projects/{pid}/tasks/{id}")).await.text.contains(VALUE));
}
