//! Effects that cross nodes: a cancel sent through one node stops, within a second, a task whose
//! runner is connected to another; a template changed through one node is what the next task
//! started through another node runs; a logout or a deleted token through one node ends it on
//! the others at once.

use std::time::{Duration, Instant};

use baton_testkit::{ADMIN_PASSWORD, Dialect};
use serde_json::json;

use crate::cluster::Cluster;

fn base(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread")]
async fn cancels_and_template_changes_reach_every_node() {
    let c = Cluster::start(Dialect::Postgres).await;
    let pid = c.admin.project().await;
    let tid = c.admin.template(pid, json!({"script": "echo started; sleep 30"})).await;

    // A long task, and the node its runner is connected to.
    let id = c.admin.submit(pid, tid).await;
    let task = c.admin.wait_status(pid, id, &["running"], Duration::from_secs(15)).await;
    let runner_id = task["runner_id"].as_i64().expect("a running task has a runner");
    let runners = c.runners_view().await;
    let holder = runners
        .iter()
        .find(|r| r["id"].as_i64() == Some(runner_id))
        .and_then(|r| r["node_id"].as_str())
        .expect("the runner is listed with its node")
        .to_owned();
    let other = c.nodes.iter().find(|n| n.id != holder).expect("another node");

    let sent = Instant::now();
    let path = format!("/api/v1/projects/{pid}/tasks/{id}/cancel");
    let reply = c.api.try_send(reqwest::Method::POST, &base(other.http_port), &path, None).await.expect("an answer");
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    assert_eq!(reply.node.as_deref(), Some(other.id.as_str()), "the cancel went through the other node");
    let status_path = format!("/api/v1/projects/{pid}/tasks/{id}");
    loop {
        let t = c.api.get(&base(other.http_port), &status_path, 200).await.body;
        if t["status"] == "cancelled" {
            break;
        }
        assert!(sent.elapsed() < Duration::from_secs(5), "cancel sent through {} never took effect: {t}", other.id);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = sent.elapsed();
    eprintln!("cancel through {} of a task on {holder}'s runner took {took:?}", other.id);
    assert!(took < Duration::from_secs(1), "the cross-node cancel took {took:?}");

    // A template changed through one node; tasks started through each other node run the change,
    // though each had just started one from the template before (and remembers it).
    let start = |node: &crate::node::Node| {
        let (api, url) = (c.api.clone(), base(node.http_port));
        async move {
            let path = format!("/api/v1/projects/{pid}/tasks");
            let reply = api.try_send(reqwest::Method::POST, &url, &path, Some(&json!({"template_id": tid}))).await;
            let reply = reply.expect("an answer");
            assert_eq!(reply.status, 201, "{:?}", reply.body);
            reply.body["id"].as_i64().unwrap()
        }
    };
    for (i, changer) in c.nodes.iter().enumerate() {
        for starter in c.nodes.iter().filter(|n| n.id != changer.id) {
            start(starter).await;
        }
        let version = format!("version-{i}");
        let script = format!("echo {version}");
        let path = format!("/api/v1/projects/{pid}/templates/{tid}");
        let reply = c
            .api
            .try_send(reqwest::Method::PATCH, &base(changer.http_port), &path, Some(&json!({"script": script})))
            .await
            .expect("an answer");
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        for starter in c.nodes.iter().filter(|n| n.id != changer.id) {
            let id = start(starter).await;
            c.admin.wait_final(pid, id, Duration::from_secs(15)).await;
            assert_eq!(
                c.admin.log_texts(pid, id).await,
                vec![version.clone()],
                "a task started through {} right after {} changed the template",
                starter.id,
                changer.id
            );
        }
    }

    // And a node does remember: tasks started one after another through a node without runners
    // (whose dispatcher reads nothing) read their template from SQL about once.
    let runners = c.runners_view().await;
    let idle = c
        .nodes
        .iter()
        .find(|n| runners.iter().all(|r| r["node_id"].as_str() != Some(n.id.as_str())))
        .expect("three nodes, two runners");
    let selects = r#"baton_sql_statements_total{kind="select"}"#;
    let before = crate::node::metric(idle, selects).await;
    for _ in 0..40 {
        start(idle).await;
    }
    let read = crate::node::metric(idle, selects).await - before;
    eprintln!("40 tasks started through {} took {read} SELECTs there", idle.id);
    assert!(read < 20.0, "{read} SELECTs for 40 tasks of one template: the template is read each time");
}

/// A session logged out, and an API token deleted, through one node stop working on the other
/// node at once: nodes remember who a credential is for up to a second, and the end of one makes
/// every node forget (a node that kept it would go on accepting it for that second).
#[tokio::test(flavor = "multi_thread")]
async fn a_logout_or_a_deleted_token_ends_on_every_node_at_once() {
    let c = Cluster::start_sized(Dialect::Postgres, 2, &[]).await;
    let (a, b) = (base(c.nodes[0].http_port), base(c.nodes[1].http_port));
    let http = reqwest::Client::new();
    let login = json!({"username": "admin", "password": ADMIN_PASSWORD});
    let r = http.post(format!("{a}/api/v1/auth/login")).json(&login).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let with_cookie = |base: &str| http.get(format!("{base}/api/v1/users/me")).header("cookie", &cookie);
    ends_at_once(&b, || with_cookie(&b), async {
        let out = http.post(format!("{a}/api/v1/auth/logout")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(out.status(), 204);
    })
    .await;

    let made = c.admin.post("/api/v1/tokens", json!({"name": "short-lived"})).await.expect(201);
    let (id, token) = (made["id"].as_i64().unwrap(), made["token"].as_str().unwrap().to_owned());
    let with_token = |base: &str| http.get(format!("{base}/api/v1/users/me")).bearer_auth(&token);
    ends_at_once(&b, || with_token(&b), async {
        let out = http.delete(format!("{a}/api/v1/tokens/{id}")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(out.status(), 204);
    })
    .await;
}

/// `request` is answered on `node` until `end` has run (on another node), and refused from a
/// moment later: well within the second a node may remember a caller for.
async fn ends_at_once(
    node: &str,
    request: impl Fn() -> reqwest::RequestBuilder,
    end: impl std::future::Future<Output = ()>,
) {
    // Twice: the first answer is read from SQL, the second is the node's memory of it.
    for _ in 0..2 {
        assert_eq!(request().send().await.unwrap().status(), 200, "{node} accepts the credential");
    }
    end.await;
    let ended = Instant::now();
    loop {
        let status = request().send().await.unwrap().status().as_u16();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        let after = ended.elapsed();
        assert!(after < Duration::from_millis(300), "{node} still accepted the credential {after:?} after it ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("{node} refused the ended credential {:?} after it ended", ended.elapsed());
}
