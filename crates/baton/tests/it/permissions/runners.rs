//! Runners that serve one project: its owners mint their registration tokens, and see, pause and
//! revoke them; its other members are refused (403 naming the owner role); global runners and
//! other projects' runners stay the administrators' (404 for everyone else).

use baton_testkit::TestServer;
use serde_json::json;

use super::{assert_error, assert_needs, ids, register_runner, set_role, team};

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_manages_the_runners_of_their_project_and_no_other() {
    let srv = TestServer::start_without_runner().await;
    let t = team(&srv, "r").await;
    let p = t.pid;
    let mint = format!("/api/v1/projects/{p}/runner-registration-tokens");
    assert_needs(&t.manager.client.post(&mint, json!({})).await, "owner");
    let q = srv.client.project().await;
    let elsewhere = t.owner.client.post(&mint, json!({"project_id": q})).await;
    assert_error(&elsewhere, 400, "invalid_input", "`project_id`");
    let minted = t.owner.client.post(&mint, json!({"labels": ["build"]})).await.expect(201);
    assert!(minted["id"].as_i64().is_some() && minted["expires_at"].as_str().is_some(), "{minted}");
    let mine = register_runner(&srv, minted["token"].as_str().unwrap(), "project-runner").await;

    // Runners that are not the owner's: a global one, and one of a project they are not in.
    let global = register_runner(&srv, &srv.client.registration_token().await, "global-runner").await;
    let q_token = srv.client.post(&format!("/api/v1/projects/{q}/runner-registration-tokens"), json!({})).await;
    let other = register_runner(&srv, q_token.expect(201)["token"].as_str().unwrap(), "other-runner").await;

    let row = srv.client.get(&format!("/api/v1/runners/{mine}")).await.expect(200);
    assert_eq!((row["project_id"].as_i64(), row["labels"].clone()), (Some(p), json!(["build"])), "{row}");
    assert_eq!(srv.client.get(&format!("/api/v1/runners/{global}")).await.expect(200)["project_id"], json!(null));
    let mut every = ids(&srv.client.get("/api/v1/runners").await.expect(200));
    every.sort();
    assert_eq!(every, [mine, global, other]);

    // The owner sees and pauses theirs, and nothing of the others.
    let o = &t.owner.client;
    assert_eq!(ids(&o.get("/api/v1/runners").await.expect(200)), [mine]);
    let paused = o.patch(&format!("/api/v1/runners/{mine}"), json!({"paused": true})).await.expect(200);
    assert_eq!((paused["id"].as_i64(), paused["paused"].as_bool()), (Some(mine), Some(true)), "{paused}");
    assert_eq!(srv.client.get(&format!("/api/v1/runners/{mine}")).await.expect(200)["paused"], true);
    for id in [global, other] {
        assert_error(&o.get(&format!("/api/v1/runners/{id}")).await, 404, "not_found", "");
        assert_error(&o.patch(&format!("/api/v1/runners/{id}"), json!({"paused": true})).await, 404, "not_found", "");
        assert_error(&o.delete(&format!("/api/v1/runners/{id}")).await, 404, "not_found", "");
    }
    // A token of the owner narrowed below owner loses the runners with the role.
    let (_, narrowed) = t.owner.token(json!({"project_id": p, "role": "manager"})).await;
    assert_eq!(narrowed.get("/api/v1/runners").await.expect(200)["items"], json!([]));
    assert_needs(&narrowed.get(&format!("/api/v1/runners/{mine}")).await, "owner");

    // The project's other members see none and are refused the project's runner.
    for member in [&t.manager, &t.runner, &t.viewer] {
        let c = &member.client;
        assert_eq!(c.get("/api/v1/runners").await.expect(200)["items"], json!([]), "{}", member.name);
        assert_needs(&c.get(&format!("/api/v1/runners/{mine}")).await, "owner");
        assert_needs(&c.patch(&format!("/api/v1/runners/{mine}"), json!({"paused": false})).await, "owner");
        assert_needs(&c.delete(&format!("/api/v1/runners/{mine}")).await, "owner");
        assert_error(&c.get(&format!("/api/v1/runners/{global}")).await, 404, "not_found", "");
    }
    assert_eq!(srv.client.get(&format!("/api/v1/runners/{mine}")).await.expect(200)["paused"], true);

    // Made owner, the manager may; the owner revokes it for good.
    set_role(o, p, t.manager.id, "owner").await.expect(200);
    t.manager.client.get(&format!("/api/v1/runners/{mine}")).await.expect(200);
    o.delete(&format!("/api/v1/runners/{mine}")).await.expect(204);
    assert_error(&o.get(&format!("/api/v1/runners/{mine}")).await, 404, "not_found", "");
    assert_eq!(o.get("/api/v1/runners").await.expect(200)["items"], json!([]));
}
