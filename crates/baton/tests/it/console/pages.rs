//! Every page of the console, once, as an administrator on a project with something in it:
//! each renders without an error and without a script error, and leaves a screenshot.

use std::time::Duration;

use baton_testkit::{ADMIN_PASSWORD, Browser, TestServer};
use serde_json::json;

use super::{id_of, login, member, unexpected_errors};

#[tokio::test(flavor = "multi_thread")]
async fn every_page_renders_without_errors() {
    let srv = TestServer::start().await;
    let c = &srv.client;
    let pid =
        id_of(&c.post("/api/v1/projects", json!({"name": "Deploys", "description": "production"})).await.expect(201));
    c.post(&format!("/api/v1/projects/{pid}/secrets"), json!({"name": "DEPLOY_KEY", "value": "s3cret-value"}))
        .await
        .expect(201);
    let tid = c
        .template(pid, json!({"name": "deploy", "script": "echo deploying\necho warning >&2", "secrets": ["DEPLOY_KEY"], "labels": []}))
        .await;
    let task = c.submit(pid, tid).await;
    c.wait_final(pid, task, Duration::from_secs(20)).await;
    let sid = id_of(
        &c.post(
            &format!("/api/v1/projects/{pid}/schedules"),
            json!({"template_id": tid, "cron": "0 3 * * *", "timezone": "Europe/Berlin"}),
        )
        .await
        .expect(201),
    );
    member(c, pid, "maria", "maria-password-1", "manager").await;
    c.post("/api/v1/tokens", json!({"name": "ci read-only", "project_id": pid, "role": "viewer"})).await.expect(201);

    let b = Browser::start().await;
    login(&b, &srv.url, "admin", ADMIN_PASSWORD).await;
    let project = format!("/ui/projects/{pid}");
    let pages = [
        ("projects", "/ui/".to_owned(), "Deploys"),
        ("tasks", project.clone(), "deploy"),
        ("task", format!("{project}/tasks/{task}"), "deploying"),
        ("templates", format!("{project}/templates"), "deploy"),
        ("template-edit", format!("{project}/templates/{tid}"), "Script"),
        ("schedules", format!("{project}/schedules"), "0 3 * * *"),
        ("schedule-edit", format!("{project}/schedules/{sid}"), "Next fire times"),
        ("secrets", format!("{project}/secrets"), "DEPLOY_KEY"),
        ("members", format!("{project}/members"), "maria"),
        ("project-audit", format!("{project}/audit"), "secret"),
        ("settings", format!("{project}/settings"), "Name"),
        ("runners", "/ui/runners".into(), "local"),
        ("cluster", "/ui/cluster".into(), &srv.node_id()),
        ("users", "/ui/users".into(), "maria"),
        ("audit", "/ui/audit".into(), "login"),
        ("account", "/ui/account".into(), "ci read-only"),
    ];
    let _ = unexpected_errors(&b).await;
    for (name, path, expect) in &pages {
        b.goto(&format!("{}{path}", srv.url)).await;
        b.wait_for_text("main", expect).await;
        // Let the page's second reads and live subscriptions settle before judging it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(b.count("main .error:not([hidden])").await, 0, "{name} shows an error: {}", b.text("main").await);
        b.screenshot(&format!("console-page-{name}")).await;
        let errors = unexpected_errors(&b).await;
        assert!(errors.is_empty(), "{name} logged errors: {errors:#?}");
    }
    // No page shows a secret's value.
    for path in [format!("{project}/secrets"), format!("{project}/templates/{tid}"), format!("{project}/audit")] {
        b.goto(&format!("{}{path}", srv.url)).await;
        b.wait_for(".page-head").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let html = b.exec("return document.documentElement.outerHTML;").await;
        assert!(!html.to_string().contains("s3cret-value"), "{path} shows a secret value");
    }
}

/// A node whose pool may open more connections than PostgreSQL allows: the cluster API says so
/// and the cluster page flags it (a cluster like that starts fine and fails under load).
#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_page_flags_pools_larger_than_the_database_allows() {
    let db = baton_testkit::TestDatabase::create_on(baton_testkit::Dialect::Postgres).await;
    let srv = TestServer::start_on(db, |cfg| cfg.database.max_connections = 100_000).await;
    let view = srv.client.get("/api/v1/cluster").await.expect(200);
    let connections = &view["database"]["connections"];
    assert_eq!(connections["pools"], 100_000, "{view}");
    assert!(connections["limit"].as_u64().is_some_and(|l| l < 100_000), "{view}");

    let b = Browser::start().await;
    login(&b, &srv.url, "admin", ADMIN_PASSWORD).await;
    b.goto(&format!("{}/ui/cluster", srv.url)).await;
    b.wait_for_text("#db-connections", "more than the database allows").await;
    assert!(b.text("#db-connections").await.contains("the nodes' pools may open 100000"));
    b.screenshot("console-cluster-pools-too-large").await;
    assert!(unexpected_errors(&b).await.is_empty());
}
